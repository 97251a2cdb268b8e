"""The standard gRPC services every server offers besides its own: health checking
(`grpc.health.v1.Health`) and server reflection, both `grpc.reflection.v1` (what current
grpcurl and clients ask first) and the older `grpc.reflection.v1alpha`.

grpcio-reflection ships only v1alpha. v1 is the same protocol renamed (same messages, same
field numbers), so v1 calls are served by the v1alpha servicer on the same bytes, and the v1
file descriptor, derived from v1alpha's, is added to the descriptor pool so that reflection
can describe itself under both names.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from services.common.logs import clip

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_V1ALPHA = reflection.SERVICE_NAME
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Health with List (the reference servicer lacks it: it answered INTERNAL), and a Watch
    that ends once shutdown is announced, right after it sent NOT_SERVING: an open Watch then
    does not hold the server's grace period (the reference servicer's Watch streams until
    the grace period is over and it is cancelled)."""

    def __init__(self) -> None:
        self._status: dict[str, int] = {"": _NOT_SERVING}
        self._changed = asyncio.Condition()
        self._stopping = False

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"service {clip(request.service)!r} is unknown here"
            )
        return health_pb2.HealthCheckResponse(status=status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        return health_pb2.HealthListResponse(
            statuses={
                service: health_pb2.HealthCheckResponse(status=status)
                for service, status in self._status.items()
            }
        )

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> None:
        # A coroutine writing with context.write(), as the reference servicer: the edge
        # interceptor must serve this shape too.
        service = request.service
        sent = None
        while True:
            status = self._status.get(service, _UNKNOWN)
            if status != sent:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                sent = status
                # Look again: shutdown may have been announced while the write waited (a
                # watcher that reacts to SERVING with SIGTERM made it so), and its
                # NOT_SERVING must still go out before the stream ends.
                continue
            if self._stopping:
                return
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._moved, service, sent))

    def _moved(self, service: str, sent: int | None) -> bool:
        return self._stopping or self._status.get(service, _UNKNOWN) != sent

    async def set(self, service: str, status: int) -> None:
        """Sets the status of `service` ("" is the server as a whole); ignored once stopping."""
        if self._stopping:
            return
        async with self._changed:
            self._status[service] = status
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING for good; watchers get it, then their streams end."""
        async with self._changed:
            self._stopping = True
            for service in self._status:
                self._status[service] = _NOT_SERVING
            self._changed.notify_all()


def add_standard_services(server: grpc.aio.Server, names: Sequence[str]) -> HealthServicer:
    """Registers health and reflection (v1 and v1alpha, describing `names` and themselves) on
    `server`; returns the health servicer, whose statuses the caller sets."""
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    _add_reflection_v1_descriptor()
    described = [*names, HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA]
    servicer = reflection.aio.ReflectionServicer(described)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=_V1Request.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    return health_servicer


_V1_FILE = "grpc/reflection/v1/reflection.proto"


class _V1Request:
    """Parses a v1 request into the v1alpha message the servicer takes (the same bytes);
    named as v1 where the edge names the message a body failed to be."""

    DESCRIPTOR: Any = None  # set once the v1 file is in the pool

    @classmethod
    def FromString(cls, raw: bytes) -> reflection_pb2.ServerReflectionRequest:
        return reflection_pb2.ServerReflectionRequest.FromString(raw)


def _add_reflection_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)  # a newer grpcio-reflection (or an earlier call) added it
    except KeyError:
        pool.AddSerializedFile(reflection_v1_file().SerializeToString())
    _V1Request.DESCRIPTOR = pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")


def reflection_v1_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto, made from v1alpha's by renaming the package."""
    file = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(file)
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    file.name = _V1_FILE
    file.package = "grpc.reflection.v1"
    file.options.Clear()
    file.options.java_package = "io.grpc.reflection.v1"
    file.options.java_outer_classname = "ServerReflectionProto"
    file.options.java_multiple_files = True
    file.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    for message in file.message_type:
        for field in message.field:
            if field.type_name:  # only message fields have one (setting "" marks it set)
                field.type_name = field.type_name.replace(old, new)
    for service in file.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    return file


def reflection_v1_types() -> tuple[Any, Any]:
    """(request, response) message classes of grpc.reflection.v1, for clients and tests."""
    _add_reflection_v1_descriptor()
    pool = descriptor_pool.Default()
    return (
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
        ),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")
        ),
    )

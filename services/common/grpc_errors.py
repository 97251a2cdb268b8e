"""The edge of every RPC, as one interceptor: request parsing, error mapping, metrics, and the
access log.

`ErrorInterceptor` wraps every method handler of every service on the server (ours, dead
letters, health, reflection), of all four shapes, whether the servicer is an async generator
or a coroutine that writes with `context.write()`. Its handlers take the raw request bytes and
parse them themselves, so that

- a body that is not the method's protobuf message is INVALID_ARGUMENT ("request is not a
  valid <Message>"), never UNKNOWN with a Python exception text;
- with tokens configured, `AuthInterceptor` (which runs inside this one) refuses a caller
  before the body is parsed at all: its refusals take the bytes unparsed.

`status_for` is the one place where errors become statuses, with AIP-193 details:
`ErrorInfo` (reason, domain) on every error, `BadRequest` on INVALID_ARGUMENT,
`PreconditionFailure` on FAILED_PRECONDITION, `ResourceInfo` on NOT_FOUND and `RetryInfo` on
UNAVAILABLE and ABORTED.

Every call ends in one INFO access line (`rpc`, `code`, `duration_ms`, `peer`, and the
request's `order_id` / `line_id` / `sku`, clipped) and in the per-method metrics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from services.common.db import DATABASE_UNREACHABLE
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    MalformedRequest,
    NotFound,
    ServiceError,
)
from services.common.logs import clip, correlation

log = logging.getLogger(__name__)
access_log = logging.getLogger("backorder.access")

RPC_TOTAL = Counter("backorder_rpc_total", "gRPC calls handled", ["method", "code"])
RPC_SECONDS = Histogram(
    "backorder_rpc_seconds",
    "gRPC call latency",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# ErrorInfo.domain of every error this system answers (AIP-193: the service's logical name).
ERROR_DOMAIN = "backorder"

# Failures of the database connection rather than of the request: the client may retry.
_UNAVAILABLE = DATABASE_UNREACHABLE
# RetryInfo.retry_delay: a conflict clears at once, an outage takes a while.
_RETRY_ABORTED = duration_pb2.Duration(nanos=100_000_000)
_RETRY_UNAVAILABLE = duration_pb2.Duration(seconds=1)
_MAX_WRAPPED = 1024


def status_for(exc: BaseException, request: Any = None) -> grpc.Status | None:
    """The status a client sees for `exc` (None: not ours to map), with AIP-193 details;
    `request` (when parsed) names the resource when the error does not."""
    if isinstance(exc, ServiceError):
        return _status(getattr(code_pb2, exc.code_name), exc.message, exc, request)
    if isinstance(exc, asyncpg.exceptions.SerializationError | asyncpg.DeadlockDetectedError):
        return _status(
            code_pb2.ABORTED,
            "conflict with a concurrent change; retry",
            ServiceError("", reason="CONCURRENT_CHANGE"),
            request,
        )
    if isinstance(exc, _UNAVAILABLE):
        return _status(
            code_pb2.UNAVAILABLE,
            "the database is not reachable; retry shortly",
            ServiceError("", reason="DATABASE_UNAVAILABLE"),
            request,
        )
    return None


def internal_status() -> grpc.Status:
    """What a client sees for a bug: nothing of its text, only that it was logged."""
    return _status(
        code_pb2.INTERNAL, "internal error; it was logged", ServiceError("internal"), None
    )


def _status(code: int, message: str, exc: ServiceError, request: Any) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN)
    details: list[Message] = [info]
    if isinstance(exc, InvalidArgument):
        info.metadata["field"] = exc.field
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=exc.field, description=exc.description
                    )
                ]
            )
        )
    elif isinstance(exc, MalformedRequest):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field="", description=message)
                ]
            )
        )
    elif isinstance(exc, NotFound):
        kind, name = _resource(exc, request)
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=kind, resource_name=name, description=message
            )
        )
    elif isinstance(exc, FailedPrecondition):
        kind, name = _resource(exc, request)
        details.append(
            error_details_pb2.PreconditionFailure(
                violations=[
                    error_details_pb2.PreconditionFailure.Violation(
                        type=exc.reason,
                        subject=f"{kind}/{name}" if kind else "",
                        description=message,
                    )
                ]
            )
        )
    elif code == code_pb2.ABORTED:
        details.append(error_details_pb2.RetryInfo(retry_delay=_RETRY_ABORTED))
    elif code == code_pb2.UNAVAILABLE:
        details.append(error_details_pb2.RetryInfo(retry_delay=_RETRY_UNAVAILABLE))
    packed = []
    # The code's own detail first, ErrorInfo last: clients that read the first detail as the
    # BadRequest (as before ErrorInfo was added) keep working.
    for detail in [*details[1:], info]:
        one = any_pb2.Any()
        one.Pack(detail)
        packed.append(one)
    return rpc_status.to_status(status_pb2.Status(code=code, message=message, details=packed))


def _resource(exc: ServiceError, request: Any) -> tuple[str, str]:
    """(type, name) of what the error is about: as the raiser said, else the request's most
    specific key (an inbound, a line, a SKU)."""
    if exc.resource_type:
        return exc.resource_type, exc.resource_name
    if request is None:
        return "", ""
    keys = correlation(request)
    inbound_id = getattr(request, "inbound_id", "")
    if isinstance(inbound_id, str) and inbound_id:
        return "inbound", clip(inbound_id)
    if "order_id" in keys and "line_id" in keys:
        return "line", f"{keys['order_id']}/{keys['line_id']}"
    if "sku" in keys:
        return "sku", keys["sku"]
    return "", ""


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Parses requests after authentication, maps errors to statuses, counts, times and logs
    every call of every method of every service on the server. Put it first in the server's
    interceptors, so that it sees the refusals of those after it."""

    def __init__(self) -> None:
        self._wrapped: dict[tuple[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        # Servers hand out the same handler object for every call of a method: wrap it once.
        # Refusals are new handlers each time, hence the bound on the cache.
        key = (handler_call_details.method, handler)
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            if len(self._wrapped) >= _MAX_WRAPPED:
                self._wrapped.clear()
            wrapped = self._wrapped[key] = edge_handler(handler, handler_call_details.method)
        return wrapped


def edge_handler(handler: grpc.RpcMethodHandler, full_method: str) -> grpc.RpcMethodHandler:
    """`handler` taking raw bytes: parsed here, errors mapped, the call counted and logged."""
    edge = _Edge(full_method, handler.request_deserializer)
    serializer = handler.response_serializer
    # request_deserializer=None: gRPC hands over the bytes as they came.
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            edge.unary_unary(handler.unary_unary), response_serializer=serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            edge.unary_stream(handler.unary_stream), response_serializer=serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            edge.stream_unary(handler.stream_unary), response_serializer=serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        edge.stream_stream(handler.stream_stream), response_serializer=serializer
    )


class _Edge:
    """What every call of one method shares: its names and how to parse its requests."""

    def __init__(self, full_method: str, deserializer: Callable[[bytes], Any] | None) -> None:
        self.full_method = full_method
        self.method = full_method.rsplit("/", 1)[-1]
        self._deserializer = deserializer
        message_type = getattr(deserializer, "__self__", None)
        descriptor = getattr(message_type, "DESCRIPTOR", None)
        self._message_name = descriptor.full_name if descriptor is not None else "request"
        # The labelled metrics of this method, looked up once rather than on every call.
        self._seconds = RPC_SECONDS.labels(self.method)
        self._counts: dict[str, Any] = {}

    def parse(self, raw: Any) -> Any:
        if self._deserializer is None:  # a refusal: it never looks at the body
            return raw
        try:
            return self._deserializer(raw)
        except Exception:  # whatever the parser says, the bytes are the client's mistake
            raise MalformedRequest(self._message_name) from None

    async def parsed(self, raw_requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for raw in raw_requests:
            yield self.parse(raw)

    def unary_unary(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        async def unary_unary(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            request = None
            try:
                request = self.parse(raw)
                response = await inner(request, context)
            except BaseException as exc:
                await self._failed(exc, context, started, request)
                raise  # a cancellation or an abort (_failed raises AbortError for the rest)
            self._done("OK", context, started, request)
            return response

        return unary_unary

    def unary_stream(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        async def unary_stream(raw: bytes, context: grpc.aio.ServicerContext) -> None:
            started = time.perf_counter()
            request = None
            try:
                request = self.parse(raw)
                await _respond(inner(request, context), context)
            except BaseException as exc:
                await self._failed(exc, context, started, request)
                raise
            self._done("OK", context, started, request)

        return unary_stream

    def stream_unary(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        async def stream_unary(raw_requests: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                response = await inner(self.parsed(raw_requests), context)
            except BaseException as exc:
                await self._failed(exc, context, started, None)
                raise
            self._done("OK", context, started, None)
            return response

        return stream_unary

    def stream_stream(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        async def stream_stream(raw_requests: Any, context: grpc.aio.ServicerContext) -> None:
            started = time.perf_counter()
            try:
                await _respond(inner(self.parsed(raw_requests), context), context)
            except BaseException as exc:
                await self._failed(exc, context, started, None)
                raise
            self._done("OK", context, started, None)

        return stream_stream

    async def _failed(
        self,
        exc: BaseException,
        context: grpc.aio.ServicerContext,
        started: float,
        request: Any,
    ) -> None:
        """Ends the call for `exc`: aborts with its status, or re-raises what is not ours."""
        if isinstance(exc, asyncio.CancelledError):  # the client left, or the server stops
            self._done("CANCELLED", context, started, request)
            return
        if isinstance(exc, grpc.aio.AbortError):  # the servicer (or a refusal) aborted
            code = context.code()
            name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
            self._done(name, context, started, request, context.details())
            return
        if not isinstance(exc, Exception):
            return
        if isinstance(exc, NotImplementedError):  # a generated servicer's default method
            status = _status(
                code_pb2.UNIMPLEMENTED,
                f"{self.method} is not implemented here",
                ServiceError("", reason="NOT_IMPLEMENTED"),
                None,
            )
            self._done(status.code.name, context, started, request, status.details)
            await context.abort(status.code, status.details, status.trailing_metadata)
        status = status_for(exc, request)
        if status is None:
            log.error(
                "unexpected error in %s",
                self.method,
                exc_info=exc,
                extra={"method": self.method, **_keys(request)},
            )
            status = internal_status()
        self._done(status.code.name, context, started, request, status.details)
        await context.abort(status.code, status.details, status.trailing_metadata)

    def _done(
        self,
        code: str,
        context: grpc.aio.ServicerContext,
        started: float,
        request: Any,
        detail: Any = None,
    ) -> None:
        seconds = time.perf_counter() - started
        count = self._counts.get(code)
        if count is None:
            count = self._counts[code] = RPC_TOTAL.labels(self.method, code)
        count.inc()
        self._seconds.observe(seconds)
        if not access_log.isEnabledFor(logging.INFO):
            return
        extra: dict[str, Any] = {
            "rpc": self.full_method,
            "code": code,
            "duration_ms": round(seconds * 1000, 3),
            "peer": context.peer(),
        }
        if request is not None:
            extra.update(_keys(request))
        if detail:
            # Status messages quote request values back (a bad SKU): clipped like them.
            extra["detail"] = clip(str(detail), 512)
        access_log.info("rpc", extra=extra)


def _keys(request: Any) -> dict[str, str]:
    return correlation(request) if isinstance(request, Message) else {}


async def _respond(result: Any, context: grpc.aio.ServicerContext) -> None:
    """Runs a response-streaming servicer of either shape: an async generator (ours, the
    reflection service) has its items written here; a coroutine (the health service's Watch)
    writes them itself with `context.write()`."""
    if hasattr(result, "__aiter__"):
        try:
            async for response in result:
                await context.write(response)
        finally:
            # Closed now, not whenever it is collected: a cancelled WatchStock releases its
            # change-feed subscription at once.
            aclose = getattr(result, "aclose", None)
            if aclose is not None:
                await aclose()
    elif result is not None:
        await result

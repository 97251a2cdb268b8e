"""The one place where errors become gRPC statuses, plus per-RPC metrics, as an interceptor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from services.common.db import DATABASE_UNREACHABLE
from services.common.errors import InvalidArgument, ServiceError
from services.common.logs import correlation

log = logging.getLogger(__name__)

RPC_TOTAL = Counter("backorder_rpc_total", "gRPC calls handled", ["method", "code"])
RPC_SECONDS = Histogram(
    "backorder_rpc_seconds",
    "gRPC call latency",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# Failures of the database connection rather than of the request: the client may retry.
_UNAVAILABLE = DATABASE_UNREACHABLE


def status_for(exc: BaseException) -> grpc.Status | None:
    """The status a client sees for `exc` (None: not ours to map)."""
    if isinstance(exc, ServiceError):
        code = getattr(code_pb2, exc.code_name)
        details = []
        if isinstance(exc, InvalidArgument):
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=exc.field, description=exc.description
                    )
                ]
            )
            packed = any_pb2.Any()
            packed.Pack(bad)
            details.append(packed)
        return rpc_status.to_status(
            status_pb2.Status(code=code, message=exc.message, details=details)
        )
    if isinstance(exc, asyncpg.exceptions.SerializationError | asyncpg.DeadlockDetectedError):
        return rpc_status.to_status(
            status_pb2.Status(
                code=code_pb2.ABORTED, message="conflict with a concurrent change; retry"
            )
        )
    if isinstance(exc, _UNAVAILABLE):
        return rpc_status.to_status(
            status_pb2.Status(
                code=code_pb2.UNAVAILABLE, message="the database is not reachable; retry shortly"
            )
        )
    return None


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Maps ServiceError (and database outages) to statuses; counts and times every call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


async def _abort(
    context: grpc.aio.ServicerContext, exc: BaseException, method: str, request: Any
) -> None:
    status = status_for(exc)
    if status is None:
        log.exception(
            "unexpected error in %s",
            method,
            exc_info=exc,
            extra={"method": method, **correlation(request)},
        )
        status = rpc_status.to_status(
            status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; it was logged")
        )
    else:
        log.debug(
            "call refused",
            extra={"method": method, "code": status.code.name, **correlation(request)},
        )
    RPC_TOTAL.labels(method, status.code.name).inc()
    await context.abort(status.code, status.details, status.trailing_metadata)


def _wrap_unary(inner: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = await inner(request, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc, method, request)
        else:
            RPC_TOTAL.labels(method, "OK").inc()
            return response
        finally:
            RPC_SECONDS.labels(method).observe(time.perf_counter() - started)

    return unary


def _wrap_stream(inner: Callable[..., AsyncIterator[Any]], method: str) -> Callable[..., Any]:
    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for item in inner(request, context):
                yield item
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc, method, request)
        else:
            RPC_TOTAL.labels(method, "OK").inc()

    return stream

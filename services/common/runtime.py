"""Running one service process: gRPC server with health and reflection, metrics, background
workers, and a graceful stop on SIGTERM/SIGINT (stop taking RPCs, finish in-flight, exit 0).

Every method on the server (ours, health, reflection) goes through the edge interceptor
(grpc_errors: parsing, error mapping, metrics, access log) and, with tokens, through the
token check inside it (security), so that a body is parsed only for a caller we know."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client import start_http_server

from services.common import tracing
from services.common.grpc_errors import ErrorInterceptor
from services.common.metrics import Sampler, run_samplers
from services.common.security import AuthInterceptor
from services.common.settings import Address, ServerSecurity
from services.common.standard_services import add_standard_services

log = logging.getLogger(__name__)

GRACE_SECONDS = 10.0


class InsecureBindRefused(RuntimeError):
    """Binding a non-loopback address without authentication needs an explicit --insecure."""


@dataclass
class Worker:
    """A background task (outbox relay, consumer) with a way to ask it to finish."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    stop: Callable[[], None]
    # Feeds long-lived server streams (WatchStock): stopped before the gRPC server, so the
    # streams end at once (clients reconnect to another replica) and the grace period is
    # left to the unary calls in flight.
    feeds_streams: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)


def check_bind(addr: Address, *, insecure: bool, security: ServerSecurity) -> None:
    """docs/spec.md §6: off loopback, callers must authenticate (bearer tokens or mTLS)
    unless --insecure. Server TLS alone does not count: it encrypts, but lets anyone in."""
    if not addr.is_loopback and not insecure and not security.authenticated:
        what = "TLS without client certificates" if security.tls else "plaintext gRPC"
        raise InsecureBindRefused(
            f"refusing to serve {what} without authentication on {addr}: anyone who reaches "
            "it could change stock. Configure tokens (BACKORDER_TOKENS or "
            "BACKORDER_TOKENS_FILE) or mTLS (<SERVICE>_TLS_CLIENT_CA_FILE with the TLS "
            "certificate and key), bind a loopback address, or pass --insecure"
        )


async def serve(
    *,
    grpc_addr: Address,
    metrics_addr: Address,
    register: Callable[[grpc.aio.Server], Sequence[str]],
    workers: Sequence[Worker],
    insecure: bool,
    security: ServerSecurity,
    samplers: Sequence[Sampler] = (),
) -> None:
    """Serves until SIGTERM/SIGINT. `register` adds servicers and returns their full names;
    `samplers` set gauges every few seconds (services.common.metrics)."""
    check_bind(grpc_addr, insecure=insecure, security=security)
    start_http_server(metrics_addr.port, addr=metrics_addr.host)

    # The edge first (outermost): it counts and logs the token check's refusals too, and it
    # parses a body only after the check let the call through.
    interceptors: list[grpc.aio.ServerInterceptor] = [ErrorInterceptor()]
    if tracing.enabled():
        # Outside the edge: the span covers the whole call, refusals included, the edge's
        # access line carries its trace_id, and its aborts set the span's status.
        interceptors.insert(0, tracing.server_interceptor())
    if security.tokens:
        interceptors.append(AuthInterceptor(security.tokens))
    server = grpc.aio.server(interceptors=interceptors)
    names = list(register(server))
    health_servicer = add_standard_services(server, names)
    if security.tls is not None:
        server.add_secure_port(str(grpc_addr), security.tls.credentials())
    else:
        server.add_insecure_port(str(grpc_addr))

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    for worker in workers:
        worker.task = asyncio.create_task(worker.run(), name=worker.name)
    sampling_stop = asyncio.Event()
    with tracing.untraced():  # the task keeps the context it was created in
        sampling = asyncio.create_task(run_samplers(samplers, sampling_stop), name="metrics")
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "serving",
        extra={
            "grpc_addr": str(grpc_addr),
            "metrics_addr": str(metrics_addr),
            **security.describe(),
        },
    )

    failed = asyncio.create_task(_first_failure(workers))
    waiter = asyncio.create_task(stopping.wait())
    await asyncio.wait({failed, waiter}, return_when=asyncio.FIRST_COMPLETED)
    crashed = failed.done() and failed.exception() is not None

    log.info("stopping")
    await health_servicer.enter_graceful_shutdown()
    # Stream feeders first, then the server (in-flight unary calls finish), then the
    # consumers and relays (in-flight events finish and are acked after their commit).
    feeders = [w for w in workers if w.feeds_streams]
    await _stop_workers(feeders)
    await server.stop(GRACE_SECONDS)
    await _stop_workers([w for w in workers if not w.feeds_streams])
    sampling_stop.set()
    try:
        await asyncio.wait_for(sampling, timeout=GRACE_SECONDS)
    except Exception:  # a sampler never decides how the service stops
        sampling.cancel()
    waiter.cancel()
    failed.cancel()
    log.info("stopped")
    if crashed:
        raise RuntimeError("a background worker failed") from failed.exception()


async def _stop_workers(workers: Sequence[Worker]) -> None:
    for worker in workers:
        worker.stop()
    pending = [w.task for w in workers if w.task is not None]
    if pending:
        _, still_running = await asyncio.wait(pending, timeout=GRACE_SECONDS)
        for task in still_running:
            task.cancel()


async def _first_failure(workers: Sequence[Worker]) -> None:
    """Returns (raising) when any worker ends on its own: a service without it is broken."""
    tasks = [w.task for w in workers if w.task is not None]
    if not tasks:
        await asyncio.Event().wait()
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()
    raise RuntimeError(f"worker {next(iter(done)).get_name()} ended unexpectedly")

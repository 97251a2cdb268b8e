"""Tracing with OpenTelemetry (docs/spec.md §5, "Tracing"): one trace from an RPC through
the events it caused, across both services.

Off unless `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, or `console` to read spans on
stdout); then `configure` installs the SDK with the maintained instrumentations of grpc (the
server interceptor, which `runtime.serve` puts outermost), asyncpg and aio-pika. Everything
else is the standard variables, read by the SDK and the exporters themselves:
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_PROTOCOL`
(`http/protobuf`, the default, or `grpc`), `OTEL_SERVICE_NAME` (default
`backorder-<service>`), `OTEL_TRACES_SAMPLER`, `OTEL_PROPAGATORS`, `OTEL_BSP_*`.

Events cross the broker through the outbox, written in one transaction and published later
by the relay, so the context of the call that emitted an event is kept with its outbox row
(`current_context`, a JSON object of the propagator's headers: W3C `traceparent` and
`tracestate`), and the relay publishes it under that context (`continued`); aio-pika's
instrumentation sends it as AMQP headers, and the consumer's instrumentation continues it.

Off, every helper here is a flag test: no spans, no exporter, nothing stored in the outbox.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context, propagate, trace

from services.common import logs
from services.common.settings import SettingsError

log = logging.getLogger(__name__)

_tracer: trace.Tracer | None = None
_provider: Any = None
_OFF = contextlib.nullcontext()
_PROTOCOLS = ("http/protobuf", "grpc")


def enabled() -> bool:
    return _tracer is not None


def wanted(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters `OTEL_TRACES_EXPORTER` names (none: tracing is off). The standard
    `OTEL_SDK_DISABLED=true` turns it off too."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    return [n for n in names if n and n != "none"]


def service_name(service: str, environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("OTEL_SERVICE_NAME", "").strip() or f"backorder-{service}"


def otlp_protocol(environ: Mapping[str, str] = os.environ) -> str:
    """The OTLP protocol of the trace exporter, as the standard variables choose it."""
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip()
        if value:
            if value not in _PROTOCOLS:
                raise SettingsError(f"{name}={value!r}: expected one of {', '.join(_PROTOCOLS)}")
            return value
    return "http/protobuf"


def configure(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Installs tracing when the environment asks for it; returns whether it did. A bad
    value raises SettingsError naming the variable (start-up stops, like any bad setting)."""
    global _tracer, _provider
    exporters = wanted(environ)
    if not exporters:
        return False
    # Imported only when on: the SDK, exporters and instrumentations cost nothing when off.
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name(service, environ)})
    )
    for name in exporters:
        if name == "otlp":
            if otlp_protocol(environ) == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GrpcExporter,
                )

                provider.add_span_processor(BatchSpanProcessor(GrpcExporter()))
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter as HttpExporter,
                )

                provider.add_span_processor(BatchSpanProcessor(HttpExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            raise SettingsError(f"OTEL_TRACES_EXPORTER={name!r}: expected otlp, console or none")
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    _provider = provider
    _tracer = provider.get_tracer("backorder")
    logs.include_trace_ids(True)
    log.info(
        "tracing on",
        extra={"exporters": ",".join(exporters), "service_name": service_name(service, environ)},
    )
    return True


def shutdown() -> None:
    """Sends the spans still buffered (at exit)."""
    if _provider is not None:
        _provider.shutdown()


def server_interceptor() -> Any:
    """The maintained grpc.aio server interceptor: a SERVER span per call, continuing the
    caller's context from its metadata; outermost, so it wraps the edge's handlers
    (services.common.grpc_errors)."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor
    from opentelemetry.instrumentation.grpc._aio_server import (
        OpenTelemetryAioServerInterceptor,
        _OpenTelemetryAioServicerContext,
    )

    class ServerInterceptor(OpenTelemetryAioServerInterceptor):
        """With one change: response streams. The instrumentation runs them with `async for`
        over the handler it wraps, but the edge's stream handlers are coroutines that write
        with `context.write()` (they also run servicers of that shape, like the health
        service's Watch). Made async generators instead, the edge lost its access line when
        a client cancelled between two responses, and the server crashed under the
        every-method test: so the span is kept here, around the coroutine, exactly as the
        instrumentation does for unary responses."""

        def _intercept_aio_server_stream(self, behavior: Any, handler_call_details: Any) -> Any:
            async def stream(request_or_iterator: Any, context: Any) -> None:
                with (
                    self._set_remote_context(context),
                    self._start_span(
                        handler_call_details, context, set_status_on_exception=False
                    ) as span,
                ):
                    try:
                        await behavior(
                            request_or_iterator, _OpenTelemetryAioServicerContext(context, span)
                        )
                    except Exception as error:
                        # As the instrumentation does: aborts set the status through the
                        # wrapped context; anything else is recorded.
                        if type(error) is not Exception:
                            span.record_exception(error)
                        raise

            return stream

    tracer = aio_server_interceptor()._tracer  # the instrumentation's own tracer
    return ServerInterceptor(tracer)


def span(name: str, attributes: Mapping[str, str | int] | None = None) -> Any:
    """A span of ours (where no instrumentation makes one: the fill), current while the
    `with` block runs; nothing when tracing is off."""
    if _tracer is None:
        return _OFF
    return _tracer.start_as_current_span(name, attributes=attributes)


def current_context() -> str | None:
    """The current trace context as the propagator's headers in a JSON object (W3C
    `traceparent`, `tracestate`), for an outbox row; None when off or outside any span."""
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return json.dumps(carrier, separators=(",", ":")) if carrier else None


@contextlib.contextmanager
def _attached(stored: str) -> Iterator[None]:
    try:
        carrier = json.loads(stored)
    except ValueError:
        carrier = None
    if not isinstance(carrier, dict):
        yield  # not ours to fail a publish over: the event goes out untraced
        return
    # A fresh context: only the stored trace, nothing of the relay's own (its loop runs
    # untraced).
    token = context.attach(propagate.extract(carrier, context=context.Context()))
    try:
        yield
    finally:
        context.detach(token)


def continued(stored: str | None) -> Any:
    """Runs the `with` block in the trace context `stored` by `current_context` (the relay
    publishes an outbox row so); nothing when off or when the row has none."""
    if _tracer is None or not stored:
        return _OFF
    return _attached(stored)


def untraced() -> Any:
    """Background loops (the relay's polling, metrics samplers) run without spans of their
    own: a database query there is no one's request, and would be a trace of its own."""
    if _tracer is None:
        return _OFF
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()

"""Tracing's settings and the helpers that carry a trace context through the outbox
(services/common/tracing.py), with the SDK's own tracer and in-memory exporter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from backorder.inventory.v1 import events_pb2
from services.common import logs, tracing
from services.common.outbox import new_event
from services.common.settings import SettingsError
from services.common.unit_of_work import UnitOfWork


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": ""}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": " OTLP , console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, []),
        # Only the exporter turns tracing on: an endpoint alone does not.
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, []),
    ],
)
def test_tracing_is_off_unless_an_exporter_is_named(
    environ: dict[str, str], exporters: list[str]
) -> None:
    assert tracing.wanted(environ) == exporters


def test_configure_with_no_exporter_installs_nothing() -> None:
    assert tracing.configure("inventory", {}) is False
    assert not tracing.enabled()
    assert tracing.current_context() is None


def test_service_name_defaults_per_service() -> None:
    assert tracing.service_name("inventory", {}) == "backorder-inventory"
    assert tracing.service_name("allocation", {}) == "backorder-allocation"
    assert tracing.service_name("allocation", {"OTEL_SERVICE_NAME": "alloc-eu"}) == "alloc-eu"


@pytest.mark.parametrize(
    ("environ", "protocol"),
    [
        ({}, "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "http/protobuf"),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            "http/protobuf",
        ),
    ],
)
def test_otlp_protocol(environ: dict[str, str], protocol: str) -> None:
    assert tracing.otlp_protocol(environ) == protocol


def test_bad_protocol_or_exporter_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="OTEL_EXPORTER_OTLP_PROTOCOL='http/json'"):
        tracing.otlp_protocol({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    with pytest.raises(SettingsError, match="OTEL_TRACES_EXPORTER='zipkin'"):
        tracing.configure("inventory", {"OTEL_TRACES_EXPORTER": "zipkin"})


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on, with a tracer of its own (nothing global is installed or instrumented)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def _finished(spans: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in spans.get_finished_spans() if s.name == name]
    return span


def test_off_every_helper_is_a_no_op() -> None:
    assert tracing.current_context() is None
    with tracing.span("fill") as nothing, tracing.continued('{"traceparent": "x"}'):
        assert nothing is None
        assert not trace.get_current_span().get_span_context().is_valid
    with tracing.untraced():
        pass


def test_context_stored_with_an_event_is_continued_by_its_publish(
    spans: InMemorySpanExporter,
) -> None:
    tracer = tracing._tracer
    assert tracer is not None
    with tracer.start_as_current_span("ReceiveStock") as rpc:
        stored = tracing.current_context()
    assert stored is not None
    rpc_context = rpc.get_span_context()
    (traceparent,) = json.loads(stored).values()
    assert traceparent.startswith(f"00-{rpc_context.trace_id:032x}-{rpc_context.span_id:016x}-")
    # Later, elsewhere (the relay), outside any span: the publish joins the stored trace.
    assert not trace.get_current_span().get_span_context().is_valid
    with tracing.continued(stored), tracer.start_as_current_span("publish"):
        pass
    publish = _finished(spans, "publish")
    assert publish.context is not None and publish.context.trace_id == rpc_context.trace_id
    assert publish.parent is not None and publish.parent.span_id == rpc_context.span_id
    # ... and leaves nothing behind.
    assert not trace.get_current_span().get_span_context().is_valid


@pytest.mark.parametrize("stored", [None, "", "not json", "[1]", '{"traceparent": "junk"}'])
def test_a_row_without_a_usable_context_is_published_in_a_new_trace(
    spans: InMemorySpanExporter, stored: str | None
) -> None:
    tracer = tracing._tracer
    assert tracer is not None
    with tracing.continued(stored), tracer.start_as_current_span("publish"):
        pass
    assert _finished(spans, "publish").parent is None


def test_outside_any_span_nothing_is_stored(spans: InMemorySpanExporter) -> None:
    assert tracing.current_context() is None


def test_untraced_work_records_no_spans_of_instrumentations(spans: InMemorySpanExporter) -> None:
    from opentelemetry.instrumentation.utils import is_instrumentation_enabled

    with tracing.untraced():
        assert not is_instrumentation_enabled()
        stored = json.dumps({"traceparent": f"00-{'1' * 32}-{'2' * 16}-01"})
        with tracing.continued(stored):  # a publish from the relay's untraced loop
            assert is_instrumentation_enabled()
    assert is_instrumentation_enabled()


def _received(sku: str) -> events_pb2.StockReceived:
    return events_pb2.StockReceived(sku=sku, quantity=1)


def test_events_keep_the_trace_they_were_emitted_in(spans: InMemorySpanExporter) -> None:
    tracer = tracing._tracer
    assert tracer is not None
    uow = UnitOfWork(conn=None)  # emit() does not touch it
    uow.emit(new_event("inventory.events", "stock.received", _received("A")))
    with tracer.start_as_current_span("fill") as fill:
        uow.emit(new_event("inventory.events", "stock.received", _received("B")))
        uow.emit_all([new_event("inventory.events", "stock.received", _received("C"))])
    outside, *inside = uow._events
    assert outside.trace_context is None
    trace_id = f"{fill.get_span_context().trace_id:032x}"
    assert [json.loads(e.trace_context or "{}")["traceparent"].split("-")[1] for e in inside] == [
        trace_id,
        trace_id,
    ]


def _line(message: str) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, message, None, None)
    return json.loads(logs.JsonFormatter("inventory").format(record))


def test_log_lines_carry_trace_ids_only_with_tracing_on(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer = tracing._tracer
    assert tracer is not None
    with tracer.start_as_current_span("rpc") as rpc:
        assert "trace_id" not in _line("off")  # tracing off: no such fields at all
        monkeypatch.setattr(logs, "_trace_ids", True)
        line = _line("on")
    context = rpc.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert "trace_id" not in _line("outside any span")

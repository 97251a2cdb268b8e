"""One trace across both services (docs/spec.md §5, "Tracing"), exported over real OTLP
(HTTP and gRPC, in turn) to a receiver of the test's own: a receipt's trace runs from the
caller's ReceiveStock through the inventory outbox's publish, the allocation consumer and
its fill, to the line.reserved publish. And tracing off costs nothing visible: no trace
context in outbox rows, no trace fields in log lines."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.e2e.conftest import System, running_system
from tests.support.otlp import OtlpGrpcReceiver, OtlpReceiver, ReceivedSpan, ancestors
from tests.support.processes import BIN, free_port
from tests.support.servers import Vhost, database_url, unique


@pytest.fixture(scope="module", params=[OtlpReceiver, OtlpGrpcReceiver], ids=["http", "grpc"])
def receiver(request: pytest.FixtureRequest) -> Iterator[OtlpReceiver | OtlpGrpcReceiver]:
    """Each OTLP protocol the services speak (OTEL_EXPORTER_OTLP_PROTOCOL), in turn."""
    with request.param() as r:
        yield r


@pytest.fixture(scope="module")
def traced(
    own_vhost: Vhost,
    receiver: OtlpReceiver | OtlpGrpcReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[System]:
    """Both services with tracing on, exporting to `receiver` (their own vhost: no other
    module's consumers take their events)."""
    yield from running_system(
        own_vhost,
        tmp_path_factory.mktemp("traced"),
        "bo_e2e_trace",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL=receiver.protocol,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        # Export within a fraction of a second rather than the default 5 s.
        OTEL_BSP_SCHEDULE_DELAY="100",
    )


@pytest.fixture(scope="module")
async def stubs(
    traced: System,
) -> AsyncIterator[tuple[InventoryServiceStub, AllocationServiceStub]]:
    async with (
        grpc.aio.insecure_channel(traced.inventory.grpc_addr) as inventory,
        grpc.aio.insecure_channel(traced.allocation.grpc_addr) as allocation,
    ):
        yield InventoryServiceStub(inventory), AllocationServiceStub(allocation)


async def _eventually(check, timeout: float = 30.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := check()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("not reached")
        await asyncio.sleep(0.1)
    return result


def _one(spans: list[ReceivedSpan], **wanted: str) -> ReceivedSpan | None:
    found = [s for s in spans if all(getattr(s, k) == v for k, v in wanted.items())]
    return found[0] if len(found) == 1 else None


async def test_a_receipt_is_one_trace_across_both_services(
    stubs: tuple[InventoryServiceStub, AllocationServiceStub],
    receiver: OtlpReceiver | OtlpGrpcReceiver,
    traced: System,
) -> None:
    inventory, allocation = stubs
    sku = unique("TRACE").upper()
    order = f"order-{uuid.uuid4().hex[:8]}"
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="l1", sku=sku, quantity=2)
    )
    # The caller's own trace (W3C traceparent metadata): the services continue it.
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"r-{sku}", sku=sku, quantity=2),
        metadata=(("traceparent", f"00-{trace_id}-{caller_span}-01"),),
    )

    # Each process exports its spans in its own batches: wait until every part has arrived.
    parts = (
        ("backorder-inventory", "SERVER"),
        ("backorder-inventory", "PRODUCER"),
        ("backorder-allocation", "CONSUMER"),
        ("backorder-allocation", "PRODUCER"),
    )

    def complete() -> list[ReceivedSpan] | None:
        spans = receiver.spans(trace_id)
        arrived = {(s.service, s.kind) for s in spans}
        return spans if all(part in arrived for part in parts) else None

    spans = await _eventually(complete)
    names = sorted((s.service, s.kind, s.name) for s in spans)

    rpc = _one(spans, service="backorder-inventory", kind="SERVER")
    assert rpc is not None, names
    assert rpc.attributes.get("rpc.method") == "ReceiveStock"
    assert rpc.parent_span_id == caller_span  # the caller's span is its parent

    # The inventory relay publishes stock.received in the RPC's trace, under the RPC.
    publish = _one(spans, service="backorder-inventory", kind="PRODUCER")
    assert publish is not None, names
    assert "stock.received" in publish.name
    assert rpc in ancestors(publish, spans)

    # The allocation consumer continues it from the message's headers.
    consume = _one(spans, service="backorder-allocation", kind="CONSUMER")
    assert consume is not None, names
    assert consume.parent_span_id == publish.span_id

    # The fill runs under the consumer, and its line.reserved is published under the fill.
    fill = _one(spans, service="backorder-allocation", name="fill")
    assert fill is not None, names
    assert fill.attributes.get("backorder.sku") == sku
    assert consume in ancestors(fill, spans)
    reserved = _one(spans, service="backorder-allocation", kind="PRODUCER")
    assert reserved is not None, names
    assert "line.reserved" in reserved.name
    assert fill in ancestors(reserved, spans)

    # asyncpg's instrumentation: the fill's queries are its children.
    queries = [s for s in spans if s.kind == "CLIENT" and fill in ancestors(s, spans)]
    assert queries, names

    # Log lines written inside the trace carry its ids: the RPC's access line.
    lines = [json.loads(line) for line in traced.inventory.log_text().splitlines()]
    access = [
        line
        for line in lines
        if line.get("logger") == "backorder.access" and line.get("sku") == sku
    ]
    assert [(a["trace_id"], a["span_id"]) for a in access] == [(trace_id, rpc.span_id)]


async def test_response_streams_of_both_shapes_are_traced(
    stubs: tuple[InventoryServiceStub, AllocationServiceStub],
    receiver: OtlpReceiver | OtlpGrpcReceiver,
    traced: System,
) -> None:
    """WatchStock (an async generator) and health's Watch (a coroutine that writes) answer
    as ever with the tracing interceptor outside the edge, and each call is a span of the
    caller's trace; the cancelled stream still leaves its access line."""
    inventory, _ = stubs
    sku = unique("WATCHED").upper()
    trace_id = secrets.token_hex(16)
    metadata = (("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),)
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"r-{sku}", sku=sku, quantity=1)
    )
    watch = inventory.WatchStock(inv.WatchStockRequest(skus=[sku]), metadata=metadata)
    first = await asyncio.wait_for(watch.read(), timeout=10)
    assert isinstance(first, inv.WatchStockResponse)
    watch.cancel()
    async with grpc.aio.insecure_channel(traced.inventory.grpc_addr) as channel:
        health = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), metadata=metadata
        )
        reply = await asyncio.wait_for(health.read(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        health.cancel()

    def both() -> set[str] | None:
        methods = {
            str(s.attributes.get("rpc.method"))
            for s in receiver.spans(trace_id)
            if s.kind == "SERVER"
        }
        return methods if {"WatchStock", "Watch"} <= methods else None

    await _eventually(both)

    def access_line() -> bool:
        return '"rpc": "/backorder.inventory.v1.InventoryService/WatchStock"' in (
            traced.inventory.log_text()
        )

    await _eventually(access_line)


async def test_allocate_s_one_round_trip_path_stores_the_trace_with_its_event(
    stubs: tuple[InventoryServiceStub, AllocationServiceStub],
    receiver: OtlpReceiver | OtlpGrpcReceiver,
) -> None:
    """A backorder on a SKU with nothing to fill is queued by SQL alone (queue_line), which
    writes the line.backordered outbox row itself: with the Allocate call's trace."""
    _, allocation = stubs
    trace_id = secrets.token_hex(16)
    await allocation.Allocate(
        alloc.AllocateRequest(
            order_id=f"order-{uuid.uuid4().hex[:8]}",
            line_id="l1",
            sku=unique("QUEUED").upper(),
            quantity=1,
        ),
        metadata=(("traceparent", f"00-{trace_id}-{secrets.token_hex(8)}-01"),),
    )

    def published() -> list[ReceivedSpan] | None:
        spans = receiver.spans(trace_id)
        return spans if any(s.kind == "PRODUCER" for s in spans) else None

    spans = await _eventually(published)
    rpc = _one(spans, kind="SERVER")
    publish = _one(spans, kind="PRODUCER")
    assert rpc is not None and rpc.attributes.get("rpc.method") == "Allocate"
    assert publish is not None and "line.backordered" in publish.name
    assert rpc in ancestors(publish, spans)


async def test_background_loops_make_no_traces(
    receiver: OtlpReceiver | OtlpGrpcReceiver, traced: System
) -> None:
    """The outbox relays' polling, the stock feed's keep-alive and the metrics samplers (every
    5 s) query the database while nobody calls: none of that is a trace of its own."""
    since = time.time_ns()
    await asyncio.sleep(6)
    background = [
        (s.service, s.name)
        for s in receiver.spans()
        if s.start_ns >= since and not s.parent_span_id
    ]
    assert background == []


async def test_tracing_off_stores_and_logs_no_trace(
    inventory: InventoryServiceStub, system: System
) -> None:
    """The session's services run with no OTEL_* variables: tracing off."""
    assert not any(k.startswith("OTEL_") for k in os.environ)
    sku = unique("UNTRACED").upper()
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"r-{sku}", sku=sku, quantity=1),
        metadata=(("traceparent", f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"),),
    )
    conn = await asyncpg.connect(database_url(system.inventory_db))
    try:
        stored = await conn.fetch("select trace_context from outbox where sku = $1", sku)
    finally:
        await conn.close()
    assert stored and all(row["trace_context"] is None for row in stored)
    for process in (system.inventory, system.allocation):
        text = process.log_text()
        assert "tracing on" not in text
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        assert lines and not any("trace_id" in line or "span_id" in line for line in lines)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"), ("OTEL_TRACES_EXPORTER", "zipkin")],
)
def test_a_bad_tracing_variable_stops_start_up_naming_it(variable: str, value: str) -> None:
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "otlp",
        variable: value,
        "ALLOCATION_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "ALLOCATION_METRICS_ADDR": f"127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        [str(BIN / "backorder-allocation"), "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"backorder-allocation: bad setting: {variable}={value!r}: "
        + (
            "expected one of http/protobuf, grpc"
            if "PROTOCOL" in variable
            else "expected otlp, console or none"
        )
    ]

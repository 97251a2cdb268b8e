"""Group commit of Allocate through the running service: many concurrent calls, placed in
batches, each answered on its own (docs/performance.md, "Group commit")."""

from __future__ import annotations

import asyncio

import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.e2e.conftest import EventTap
from tests.support.servers import unique

CALLS = 96


async def _call(
    allocation: AllocationServiceStub, request: alloc.AllocateRequest
) -> alloc.AllocateResponse | grpc.aio.AioRpcError:
    try:
        return await allocation.Allocate(request)
    except grpc.aio.AioRpcError as e:
        return e


async def test_concurrent_allocates_each_get_their_own_answer(
    allocation: AllocationServiceStub, allocation_events: EventTap
) -> None:
    skus = [unique("GRP") for _ in range(3)]
    requests = [
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=skus[i % 3], quantity=1)
        for i in range(CALLS)
    ]
    bad = alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=skus[0], quantity=-2)
    twice = alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=skus[1], quantity=2)
    other = alloc.AllocateRequest(order_id=twice.order_id, line_id="1", sku=skus[1], quantity=3)
    calls = [*requests[:30], bad, twice, *requests[30:60], twice, other, *requests[60:]]
    replies = await asyncio.gather(*(_call(allocation, r) for r in calls))
    by_request = dict(zip((id(r) for r in calls), replies, strict=True))

    refused = by_request[id(bad)]
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "quantity" in (refused.details() or "")
    # The same key twice with the same content: one line, the same answer; with other
    # content: ALREADY_EXISTS, unless it came first (then the first two are refused).
    keyed = [r for r, c in zip(replies, calls, strict=True) if c.order_id == twice.order_id]
    answered = [r for r in keyed if isinstance(r, alloc.AllocateResponse)]
    errors = [r for r in keyed if isinstance(r, grpc.aio.AioRpcError)]
    assert {e.code() for e in errors} == {grpc.StatusCode.ALREADY_EXISTS}
    assert len({a.line.quantity for a in answered}) == 1
    assert len({a.line.placed_at.ToNanoseconds() for a in answered}) == 1
    assert len(answered) in (1, 2)

    # Every other call placed its own line: one per request, positions 1..n per SKU.
    placed = [by_request[id(r)] for r in requests]
    assert all(isinstance(p, alloc.AllocateResponse) for p in placed), placed
    for sku in skus:
        positions = sorted(
            p.line.queue_position
            for p in placed
            if isinstance(p, alloc.AllocateResponse) and p.line.sku == sku
        )
        extra = 1 if sku == skus[1] else 0  # the keyed line
        assert positions == [
            n for n in range(1, len(positions) + extra + 1) if n not in _keyed_at(answered, sku)
        ]

    # One line.backordered each, with the position its caller was told.
    told = {
        (p.line.order_id, p.line.queue_position)
        for p in [*placed, *answered[:1]]
        if isinstance(p, alloc.AllocateResponse)
    }
    wanted = {r.order_id for r in requests} | {twice.order_id}
    events = await allocation_events.collect(
        lambda m: (
            m.routing_key == "line.backordered"
            and alloc_events.LineBackordered.FromString(m.body).order_id in wanted
        ),
        len(told),
    )
    bodies = [alloc_events.LineBackordered.FromString(m.body) for m in events]
    assert {(b.order_id, b.queue_position) for b in bodies} == told

    # The service goes on serving.
    line = await allocation.GetLine(
        alloc.GetLineRequest(order_id=requests[0].order_id, line_id="1")
    )
    assert line.line.sku == skus[0]


def _keyed_at(answered: list[alloc.AllocateResponse], sku: str) -> set[int]:
    return {a.line.queue_position for a in answered[:1] if a.line.sku == sku}

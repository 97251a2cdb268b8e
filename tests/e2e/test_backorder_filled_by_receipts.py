"""The whole path, for real: receipts at the inventory service fill queued backorders at the
allocation service, in rank order, through RabbitMQ, with reservations in Postgres."""

from __future__ import annotations

import asyncio
import uuid

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.e2e.conftest import EventTap
from tests.support.servers import unique

S = alloc_events.LineStatus


async def line(stub: AllocationServiceStub, order_id: str, line_id: str) -> alloc.Line:
    return (await stub.GetLine(alloc.GetLineRequest(order_id=order_id, line_id=line_id))).line


async def until(check, timeout: float = 20.0):
    """Polls `check()` until it returns something truthy (what users would observe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def test_receipts_fill_backorders_in_priority_order(
    inventory: InventoryServiceStub, allocation: AllocationServiceStub, allocation_events: EventTap
) -> None:
    sku = unique("E2E").upper()
    order = f"order-{uuid.uuid4().hex[:8]}"
    # (line_id, quantity, priority, allow_partial), placed in this order on an empty SKU.
    placed = [
        ("old-low", 2, 0, False),
        ("mid-first", 3, 5, False),
        ("mid-second", 1, 5, False),
        ("urgent", 2, 9, True),
        ("new-low", 1, 0, False),
    ]
    for line_id, quantity, priority, partial in placed:
        reply = await allocation.Allocate(
            alloc.AllocateRequest(
                order_id=order,
                line_id=line_id,
                sku=sku,
                quantity=quantity,
                priority=priority,
                allow_partial=partial,
            )
        )
        assert reply.outcome == alloc.ALLOCATION_OUTCOME_BACKORDERED
        assert reply.line.status == S.LINE_STATUS_BACKORDERED
        assert reply.line.backordered_quantity == quantity

    rank = ["urgent", "mid-first", "mid-second", "old-low", "new-low"]
    positions = {lid: (await line(allocation, order, lid)).queue_position for lid, *_ in placed}
    assert positions == {lid: i + 1 for i, lid in enumerate(rank)}

    # Receipt 1: 3 units. "urgent" takes 2; "mid-first" needs 3 whole units and blocks
    # (STRICT), so "mid-second" does not jump it even though 1 unit would fit.
    first = await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"r1-{sku}", sku=sku, quantity=3)
    )
    assert first.stock.on_hand == 3

    async def urgent_reserved() -> bool:
        return (await line(allocation, order, "urgent")).status == S.LINE_STATUS_RESERVED

    await until(urgent_reserved)
    await asyncio.sleep(0.3)  # nothing else may be filled by receipt 1
    assert (await line(allocation, order, "mid-second")).reserved_quantity == 0

    # Receipt 2: 4 more units, 5 free: "mid-first" 3, "mid-second" 1; "old-low" needs 2 and
    # blocks with 1 unit left, "new-low" waits behind it.
    second = await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"r2-{sku}", sku=sku, quantity=4)
    )
    assert second.stock.on_hand == 7

    async def mid_second_reserved() -> bool:
        return (await line(allocation, order, "mid-second")).status == S.LINE_STATUS_RESERVED

    await until(mid_second_reserved)
    final = {lid: await line(allocation, order, lid) for lid, *_ in placed}
    assert {lid: (ln.reserved_quantity, ln.backordered_quantity) for lid, ln in final.items()} == {
        "urgent": (2, 0),
        "mid-first": (3, 0),
        "mid-second": (1, 0),
        "old-low": (0, 2),
        "new-low": (0, 1),
    }
    assert final["old-low"].queue_position == 1
    assert final["new-low"].queue_position == 2
    assert final["old-low"].status == S.LINE_STATUS_BACKORDERED

    # What a subscriber sees: one line.reserved per fill, in the order the fills happened.
    def reserved_for_sku(message) -> bool:
        return message.routing_key == "line.reserved" and _reserved(message).sku == sku

    messages = await allocation_events.collect(reserved_for_sku, 3)
    events = [_reserved(m) for m in messages]
    assert [(e.line_id, e.reserved_now, e.status) for e in events] == [
        ("urgent", 2, S.LINE_STATUS_RESERVED),
        ("mid-first", 3, S.LINE_STATUS_RESERVED),
        ("mid-second", 1, S.LINE_STATUS_RESERVED),
    ]
    for message in messages:
        assert message.content_type == "application/x-protobuf"
        assert message.type == "backorder.allocation.v1.LineReserved"
        assert message.message_id == _reserved(message).event_id
    assert events[0].cause_event_id and events[1].cause_event_id
    assert events[0].cause_event_id != events[1].cause_event_id
    assert events[1].cause_event_id == events[2].cause_event_id


def _reserved(message) -> alloc_events.LineReserved:
    event = alloc_events.LineReserved()
    event.ParseFromString(message.body)
    return event


async def test_one_fill_publishes_line_reserved_in_rank_order(
    inventory: InventoryServiceStub, allocation: AllocationServiceStub, allocation_events: EventTap
) -> None:
    """Several lines served by one receipt: a subscriber gets their line.reserved in the
    order the fill served them (rank), the order of the decision log, not the order in
    which the lines were placed."""
    sku = unique("E2E").upper()
    order = unique("o")
    for line_id, priority in (("placed-first", 0), ("placed-second", 5), ("placed-third", 9)):
        await allocation.Allocate(
            alloc.AllocateRequest(
                order_id=order, line_id=line_id, sku=sku, quantity=1, priority=priority
            )
        )
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=3)
    )

    def reserved_for_sku(message) -> bool:
        return message.routing_key == "line.reserved" and _reserved(message).sku == sku

    events = [_reserved(m) for m in await allocation_events.collect(reserved_for_sku, 3)]
    log = await allocation.ListReservations(alloc.ListReservationsRequest(sku=sku))
    rank_order = ["placed-third", "placed-second", "placed-first"]
    assert [r.line_id for r in log.reservations] == rank_order
    assert [e.line_id for e in events] == rank_order
    assert [e.reservation_id for e in events] == [r.reservation_id for r in log.reservations]

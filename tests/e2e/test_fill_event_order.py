"""What a subscriber sees: one fill's line.reserved events in fill (rank) order, and the
queue positions of lines Allocate only queued (set by the relay from the outbox row)."""

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


async def test_one_receipt_publishes_its_reservations_in_rank_order(
    inventory: InventoryServiceStub, allocation: AllocationServiceStub, allocation_events: EventTap
) -> None:
    sku = unique("ORDER").upper()
    order = f"order-{uuid.uuid4().hex[:8]}"
    # Placed p0, p9, p5: placement order differs from rank order (p9, p5, p0).
    for line_id, priority in [("p0", 0), ("p9", 9), ("p5", 5)]:
        reply = await allocation.Allocate(
            alloc.AllocateRequest(
                order_id=order, line_id=line_id, sku=sku, quantity=1, priority=priority
            )
        )
        assert reply.outcome == alloc.ALLOCATION_OUTCOME_BACKORDERED

    # One receipt fills all three in one fill (one transaction).
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"r-{sku}", sku=sku, quantity=3)
    )

    def reserved_for_sku(message) -> bool:
        return message.routing_key == "line.reserved" and _reserved(message).sku == sku

    messages = await allocation_events.collect(reserved_for_sku, 3)
    events = [_reserved(m) for m in messages]
    assert len({e.cause_event_id for e in events}) == 1, "one receipt, one fill"
    assert [e.line_id for e in events] == ["p9", "p5", "p0"]
    # The decision log agrees: reservations were made in the same order.
    page = await allocation.ListReservations(alloc.ListReservationsRequest(sku=sku))
    assert [r.line_id for r in page.reservations] == ["p9", "p5", "p0"]
    await asyncio.sleep(0.3)
    assert len([m for m in allocation_events._received if reserved_for_sku(m)]) == 3


async def test_queued_lines_are_published_with_their_queue_positions(
    allocation: AllocationServiceStub, allocation_events: EventTap
) -> None:
    """Lines of a SKU with nothing free and nothing inbound are only queued, in one round
    trip: their line.backordered carries the queue position the database gave them."""
    sku = unique("QUEUED").upper()
    order = f"order-{uuid.uuid4().hex[:8]}"
    placed = [("a", 0), ("b", 5), ("c", 0), ("d", 9)]
    replies = {}
    for line_id, priority in placed:
        reply = await allocation.Allocate(
            alloc.AllocateRequest(
                order_id=order, line_id=line_id, sku=sku, quantity=2, priority=priority
            )
        )
        replies[line_id] = reply.line.queue_position
    # At placement each line is behind every waiting line of its priority or higher.
    assert replies == {"a": 1, "b": 1, "c": 3, "d": 1}

    def backordered_for_sku(message) -> bool:
        return message.routing_key == "line.backordered" and _backordered(message).sku == sku

    events = [_backordered(m) for m in await allocation_events.collect(backordered_for_sku, 4)]
    assert [(e.line_id, e.queue_position) for e in events] == list(replies.items())
    assert all(
        (e.order_id, e.quantity, e.backordered_quantity, e.status)
        == (order, 2, 2, alloc_events.LINE_STATUS_BACKORDERED)
        and e.event_id
        and e.occurred_at.seconds > 0
        for e in events
    )


def _backordered(message) -> alloc_events.LineBackordered:
    event = alloc_events.LineBackordered()
    event.ParseFromString(message.body)
    return event


def _reserved(message) -> alloc_events.LineReserved:
    event = alloc_events.LineReserved()
    event.ParseFromString(message.body)
    return event

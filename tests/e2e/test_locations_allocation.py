"""Stock in several locations through the real allocation process (docs/spec.md §8):
stock events with location_id, location.updated and stock.transferred published into
RabbitMQ; Allocate.locations, Line.allocations, FulfillLine.location_id, per-location
summaries, ListLines' location filter, the location of reservations and line events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.message import Message

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import events_pb2 as inv_events
from tests.e2e.conftest import EventTap, System
from tests.e2e.test_allocation_rpcs import line, rpc_error, summary, until
from tests.e2e.test_bad_input import field_violations
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import Vhost, unique

S = alloc_events.LineStatus


@pytest.fixture(scope="module")
async def feed(system: System, vhost: Vhost) -> AsyncIterator[InventoryFeed]:
    opened = await InventoryFeed(vhost.url).open()
    yield opened
    await opened.close()


async def publish(feed: InventoryFeed, routing_key: str, message: Message) -> None:
    message.event_id = str(uuid.uuid4())
    message.occurred_at.GetCurrentTime()
    await feed.publish_raw(
        message.SerializeToString(),
        type=message.DESCRIPTOR.full_name,
        routing_key=routing_key,
        message_id=message.event_id,
    )


async def located(
    feed: InventoryFeed, location_id: str, fill_rank: int, *, active: bool = True, version: int = 1
) -> None:
    await publish(
        feed,
        "location.updated",
        inv_events.LocationUpdated(
            location_id=location_id,
            name=location_id,
            fill_rank=fill_rank,
            active=active,
            version=version,
        ),
    )


async def ranked(stub: AllocationServiceStub, feed: InventoryFeed, *places: str) -> None:
    """Announces `places` with fill_rank 1, 2, ... and waits until the service applied
    them: events are applied concurrently, and a location first seen in a receipt ranks
    last until its location.updated. Observed through a probe SKU with a unit at each
    place, whose summary lists locations by fill_rank (then id): callers name places so
    that their id order is not their rank order."""
    for rank, place in enumerate(places, 1):
        await located(feed, place, rank)
    probe = unique("PROBE")
    for place in places:
        await received_at(feed, probe, 1, place)

    async def in_rank_order() -> bool:
        try:
            s = await summary(stub, probe)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return False
            raise
        return [at.location_id for at in s.locations] == list(places)

    await until(in_rank_order)


async def received_at(feed: InventoryFeed, sku: str, quantity: int, location_id: str) -> None:
    await publish(
        feed,
        "stock.received",
        inv_events.StockReceived(
            sku=sku, quantity=quantity, receipt_id=unique("r"), location_id=location_id
        ),
    )


async def units_at(stub: AllocationServiceStub, sku: str, total: int) -> alloc.SkuSummary:
    """Waits until the service knows `total` units of `sku` (free + reserved + fulfilled)."""

    async def known() -> alloc.SkuSummary | None:
        try:
            s = await summary(stub, sku)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None  # no event of the SKU applied yet
            raise
        return s if s.free_units + s.reserved_units + s.fulfilled_units == total else None

    return await until(known)


def by_location(s: alloc.SkuSummary) -> dict[str, tuple[int, int]]:
    return {at.location_id: (at.free_units, at.reserved_units) for at in s.locations}


def allocations(ln: alloc.Line) -> dict[str, tuple[int, int]]:
    return {a.location_id: (a.reserved_quantity, a.fulfilled_quantity) for a in ln.allocations}


async def test_allocate_refuses_unknown_repeated_and_too_many_locations(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order, east = unique("LOCBAD"), unique("o"), unique("east")
    await located(feed, east, 5)
    await received_at(feed, sku, 1, east)
    await units_at(allocation, sku, 1)

    def request(*locations: str) -> alloc.AllocateRequest:
        return alloc.AllocateRequest(
            order_id=order, line_id="1", sku=sku, quantity=1, locations=list(locations)
        )

    error = await rpc_error(allocation.Allocate(request(east, "nowhere")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "locations[1]" in (error.details() or "")
    error = await rpc_error(allocation.Allocate(request(east, east)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "locations[1]" in field_violations(error)
    error = await rpc_error(allocation.Allocate(request(*(f"l{i}" for i in range(101)))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Nothing was written: the line was never placed, the unit is still free.
    error = await rpc_error(allocation.GetLine(alloc.GetLineRequest(order_id=order, line_id="1")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await summary(allocation, sku)).free_units == 1


async def test_lines_take_from_their_locations_in_rank_order(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    sku, order = unique("LOC"), unique("o")
    east, west = unique("z-east"), unique("a-west")
    await ranked(allocation, feed, east, west)
    await received_at(feed, sku, 3, east)
    await received_at(feed, sku, 4, west)
    await units_at(allocation, sku, 7)

    # Only west: takes there although east ranks first.
    only_west = await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="w", sku=sku, quantity=2, locations=[west])
    )
    assert list(only_west.line.locations) == [west]
    assert allocations(only_west.line) == {west: (2, 0)}
    # Any location, whole only, more than east has: east first, the rest from west.
    both = await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="b", sku=sku, quantity=4)
    )
    assert both.line.status == S.LINE_STATUS_RESERVED
    assert allocations(both.line) == {east: (3, 0), west: (1, 0)}
    s = await summary(allocation, sku)
    assert by_location(s) == {east: (0, 3), west: (1, 3)}
    assert (s.free_units, s.reserved_units) == (1, 6)

    # One reservation row and one line.reserved per location, each naming it.
    reservations = (
        await allocation.ListReservations(
            alloc.ListReservationsRequest(order_id=order, line_id="b")
        )
    ).reservations
    assert {r.location_id: r.quantity for r in reservations} == {east: 3, west: 1}

    def reserved_b(m: object) -> bool:
        if getattr(m, "routing_key", "") != "line.reserved":
            return False
        event = alloc_events.LineReserved.FromString(m.body)  # type: ignore[attr-defined]
        return event.order_id == order and event.line_id == "b"

    events = [
        alloc_events.LineReserved.FromString(m.body)
        for m in await allocation_events.collect(reserved_b, 2)
    ]
    assert [(e.location_id, e.reserved_now, e.reserved_quantity) for e in events] == [
        (east, 3, 3),
        (west, 1, 4),
    ]

    # Shipping: the line holds units at two places, so it must say which.
    error = await rpc_error(
        allocation.FulfillLine(
            alloc.FulfillLineRequest(
                order_id=order, line_id="b", fulfillment_id=unique("f"), quantity=1
            )
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert east in (error.details() or "") and west in (error.details() or "")
    error = await rpc_error(
        allocation.FulfillLine(
            alloc.FulfillLineRequest(
                order_id=order,
                line_id="b",
                fulfillment_id=unique("f"),
                quantity=2,
                location_id=west,
            )
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    shipped = await allocation.FulfillLine(
        alloc.FulfillLineRequest(
            order_id=order, line_id="b", fulfillment_id=unique("f"), quantity=3, location_id=east
        )
    )
    assert allocations(shipped.line) == {east: (0, 3), west: (1, 0)}
    # east has nothing left (free, reserved or inbound): the summary leaves it out.
    assert by_location(await summary(allocation, sku)) == {west: (1, 3)}

    def fulfilled(m: object) -> bool:
        return getattr(m, "routing_key", "") == "line.fulfilled" and order.encode() in getattr(
            m, "body", b""
        )

    (event,) = [
        alloc_events.LineFulfilled.FromString(m.body)
        for m in await allocation_events.collect(fulfilled, 1)
    ]
    assert event.location_id == east

    # Listing by location: the lines holding or having shipped units there.
    listed = (await allocation.ListLines(alloc.ListLinesRequest(sku=sku, location_id=east))).lines
    assert [ln.line_id for ln in listed] == ["b"]
    listed = (await allocation.ListLines(alloc.ListLinesRequest(sku=sku, location_id=west))).lines
    assert [ln.line_id for ln in listed] == ["w", "b"]


async def test_strict_blocker_blocks_only_its_locations_and_most_stock_orders(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("LOCSTRICT"), unique("o")
    east, west = unique("z-east"), unique("a-west")
    await ranked(allocation, feed, east, west)
    policy = await allocation.SetSkuPolicy(
        alloc.SetSkuPolicyRequest(sku=sku, location_strategy=alloc.LOCATION_STRATEGY_MOST_STOCK)
    )
    assert policy.summary.policy.location_strategy == alloc.LOCATION_STRATEGY_MOST_STOCK
    for line_id, quantity, locations in (("big", 5, [east]), ("any", 2, []), ("e", 1, [east])):
        await allocation.Allocate(
            alloc.AllocateRequest(
                order_id=order, line_id=line_id, sku=sku, quantity=quantity, locations=locations
            )
        )
    await received_at(feed, sku, 2, east)
    await received_at(feed, sku, 3, west)
    await units_at(allocation, sku, 5)

    async def settled() -> alloc.Line | None:
        ln = await line(allocation, order, "any")
        return ln if ln.reserved_quantity == 2 else None

    # "big" does not fit at east and blocks it; "any" is served at west, where most is;
    # "e" (east only) waits behind the blocker.
    any_line = await until(settled)
    assert allocations(any_line) == {west: (2, 0)}
    assert (await line(allocation, order, "e")).reserved_quantity == 0
    assert by_location(await summary(allocation, sku)) == {east: (2, 0), west: (1, 2)}


async def test_transfer_and_deactivation(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("LOCMOVE"), unique("o")
    east, west = unique("z-east"), unique("a-west")
    await ranked(allocation, feed, east, west)
    await received_at(feed, sku, 2, east)
    await units_at(allocation, sku, 2)
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="held", sku=sku, quantity=2)
    )
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="west", sku=sku, quantity=2, locations=[west])
    )
    # Both units leave east for west at once: the reservation at east is taken back, and
    # at west the older line, which may ship from anywhere, is served first.
    await publish(
        feed,
        "stock.transferred",
        inv_events.StockTransferred(
            sku=sku,
            transfer_id=unique("t"),
            from_location_id=east,
            to_location_id=west,
            quantity=2,
            in_transit=False,
            location_id=east,
        ),
    )

    async def moved() -> alloc.SkuSummary | None:
        s = await summary(allocation, sku)
        return s if by_location(s) == {west: (0, 2)} else None

    await until(moved)
    assert allocations(await line(allocation, order, "held")) == {west: (2, 0)}
    assert (await line(allocation, order, "west")).reserved_quantity == 0

    # An inactive location promises nothing new: units received there stay free.
    await located(feed, west, 2, active=False, version=2)

    async def deactivated() -> bool:
        s = await summary(allocation, sku)
        return [at.active for at in s.locations if at.location_id == west] == [False]

    await until(deactivated)
    await received_at(feed, sku, 2, west)
    s = await units_at(allocation, sku, 4)
    assert by_location(s)[west] == (2, 2)
    assert [at.active for at in s.locations if at.location_id == west] == [False]
    assert (await line(allocation, order, "west")).reserved_quantity == 0

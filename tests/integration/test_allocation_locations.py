"""Locations in the allocation handlers (docs/spec.md §8) on the real Postgres: shrinkage
takes back only what is held where the units went, location.updated is versioned and
re-runs the fill, `default` cannot be deactivated, concurrent receipts at several
locations never promise more than each has."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from backorder.allocation.v1 import events_pb2
from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from tests.support.servers import unique


def receipt(sku: str, quantity: int, location_id: str) -> inventory_events.StockReceived:
    return inventory_events.StockReceived(
        event_id=str(uuid.uuid4()),
        sku=sku,
        receipt_id=unique("r"),
        quantity=quantity,
        location_id=location_id,
    )


def location(
    location_id: str, fill_rank: int, *, active: bool = True, version: int = 1
) -> inventory_events.LocationUpdated:
    return inventory_events.LocationUpdated(
        event_id=str(uuid.uuid4()),
        location_id=location_id,
        fill_rank=fill_rank,
        active=active,
        version=version,
    )


async def held(pool: asyncpg.Pool, sku: str) -> dict[tuple[str, str], int]:
    rows = await pool.fetch(
        """select l.line_id, a.location_id, a.reserved
           from line l, line_allocations(l.id) a where l.sku = $1""",
        sku,
    )
    return {(r[0], r[1]): r[2] for r in rows if r[2]}


async def test_shrinkage_takes_back_only_what_is_held_at_that_location(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku, order = allocation_pool, unique("SKU"), unique("o")
    east, west = unique("east"), unique("west")
    await handlers.location_updated(pool, location(east, 1))
    await handlers.location_updated(pool, location(west, 2))
    await handlers.stock_received(pool, receipt(sku, 2, east))
    await handlers.stock_received(pool, receipt(sku, 2, west))
    # Older line at west only, newer line anywhere (takes east, first in rank).
    await handlers.allocate(pool, handlers.Allocate(order, "w", sku, 2, locations=(west,)))
    await handlers.allocate(pool, handlers.Allocate(order, "any", sku, 2))
    assert await held(pool, sku) == {("w", west): 2, ("any", east): 2}

    # One unit lost at west: the lowest-ranked line ("any") holds nothing there, so it is
    # the west line that gives a unit back, although it ranks higher.
    await handlers.stock_adjusted(
        pool,
        inventory_events.StockAdjusted(
            event_id=str(uuid.uuid4()),
            sku=sku,
            adjustment_id=unique("a"),
            delta=-1,
            location_id=west,
        ),
    )
    assert await held(pool, sku) == {("w", west): 1, ("any", east): 2}
    revoked = await pool.fetchrow(
        "select quantity, location_id from reservation where sku = $1 and rule = 'REVOKED'",
        sku,
    )
    assert tuple(revoked) == (1, west)
    per_location = await pool.fetch(
        "select location_id, free_units, reserved_units from sku_location where sku = $1",
        sku,
    )
    assert {r[0]: (r[1], r[2]) for r in per_location} == {east: (0, 2), west: (0, 1)}


async def test_location_updated_is_versioned_and_reactivation_fills(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku, order = allocation_pool, unique("SKU"), unique("o")
    shop = unique("shop")
    await handlers.location_updated(pool, location(shop, 3, active=False, version=2))
    await handlers.location_updated(pool, location(shop, 3, active=True, version=1))  # older
    await handlers.stock_received(pool, receipt(sku, 1, shop))
    await handlers.allocate(pool, handlers.Allocate(order, "1", sku, 1))
    assert await held(pool, sku) == {}  # inactive: promises nothing
    await handlers.location_updated(pool, location(shop, 3, active=True, version=3))
    assert await held(pool, sku) == {("1", shop): 1}

    with pytest.raises(InvalidArgument) as refused:
        await handlers.location_updated(pool, location("default", 0, active=False, version=9))
    assert refused.value.field == "active"


async def test_concurrent_receipts_at_several_locations_never_overpromise(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku, order = allocation_pool, unique("SKU"), unique("o")
    places = [unique(f"loc{i}") for i in range(3)]
    for rank, place in enumerate(places):
        await handlers.location_updated(pool, location(place, rank))
    await asyncio.gather(
        *(handlers.allocate(pool, handlers.Allocate(order, f"l{i}", sku, 2)) for i in range(10)),
        *(handlers.stock_received(pool, receipt(sku, 3, place)) for place in places for _ in "ab"),
    )
    per_location = await pool.fetch(
        "select location_id, free_units, reserved_units from sku_location where sku = $1", sku
    )
    assert {r[0]: r[1] + r[2] for r in per_location} == {place: 6 for place in places}
    given = await pool.fetch(
        """select a.location_id, sum(a.reserved) from line l, line_allocations(l.id) a
           where l.sku = $1 group by 1""",
        sku,
    )
    reserved = {r[0]: r[2] for r in per_location}
    assert {r[0]: r[1] for r in given if r[1]} == {k: v for k, v in reserved.items() if v}
    assert sum(reserved.values()) == 18  # 10 lines of 2 waiting, 18 units: all given


async def test_fulfil_names_the_location_and_a_repeat_must_match_it(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku, order = allocation_pool, unique("SKU"), unique("o")
    east, west = unique("east"), unique("west")
    await handlers.location_updated(pool, location(east, 1))
    await handlers.location_updated(pool, location(west, 2))
    await handlers.stock_received(pool, receipt(sku, 1, east))
    await handlers.stock_received(pool, receipt(sku, 2, west))
    await handlers.allocate(pool, handlers.Allocate(order, "1", sku, 3))
    with pytest.raises(FailedPrecondition):
        await handlers.fulfill_line(pool, handlers.FulfillLine(order, "1", "f1", 1))
    ship = handlers.FulfillLine(order, "1", "f1", 2, location_id=west)
    view = await handlers.fulfill_line(pool, ship)
    assert {a.location_id: (a.reserved, a.fulfilled) for a in view.allocations} == {
        east: (1, 0),
        west: (0, 2),
    }
    # The same shipment again (with or without its location) answers as before...
    assert (await handlers.fulfill_line(pool, ship)).line.fulfilled == 2
    repeat = handlers.FulfillLine(order, "1", "f1", 2)
    assert (await handlers.fulfill_line(pool, repeat)).line.fulfilled == 2
    # ...but the same key from another location is another shipment.
    with pytest.raises(AlreadyExists):
        await handlers.fulfill_line(pool, handlers.FulfillLine(order, "1", "f1", 2, east))
    # The line now holds units at east only: no location needed.
    rest = await handlers.fulfill_line(pool, handlers.FulfillLine(order, "1", "f2", 1))
    assert rest.line.fulfilled == 3
    outbox = await pool.fetch(
        "select body from outbox where sku = $1 and routing_key = 'line.fulfilled' order by id",
        sku,
    )
    shipped_from = [events_pb2.LineFulfilled.FromString(r[0]).location_id for r in outbox]
    assert shipped_from == [west, east]

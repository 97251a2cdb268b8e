"""Stock events applied in the inventory service's order per SKU (docs/spec.md §4), on the
real Postgres: a transfer out or a loss that arrives before the receipt that made it
possible is held, not clamped, and the end state is the state of the inventory's order,
whatever order the events came in."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from typing import Any

import asyncpg

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from tests.support.servers import unique

StockEvent = (
    inventory_events.StockReceived
    | inventory_events.StockAdjusted
    | inventory_events.StockTransferred
)


def history(sku: str, east: str, west: str) -> list[StockEvent]:
    """What the inventory service applied, versions 1..6: 10 in at east, 6 moved to west,
    4 lost at east, 5 in at east, 3 lost at west, 2 moved back to east."""
    ids = itertools.count(1)

    def common() -> dict[str, Any]:
        return {"event_id": str(uuid.uuid4()), "sku": sku, "stock_version": next(ids)}

    return [
        inventory_events.StockReceived(**common(), receipt_id="r1", quantity=10, location_id=east),
        inventory_events.StockTransferred(
            **common(), transfer_id="t1", from_location_id=east, to_location_id=west, quantity=6
        ),
        inventory_events.StockAdjusted(**common(), adjustment_id="a1", delta=-4, location_id=east),
        inventory_events.StockReceived(**common(), receipt_id="r2", quantity=5, location_id=east),
        inventory_events.StockAdjusted(**common(), adjustment_id="a2", delta=-3, location_id=west),
        inventory_events.StockTransferred(
            **common(), transfer_id="t2", from_location_id=west, to_location_id=east, quantity=2
        ),
    ]


async def apply(pool: asyncpg.Pool, event: StockEvent) -> None:
    if isinstance(event, inventory_events.StockReceived):
        await handlers.stock_received(pool, event)
    elif isinstance(event, inventory_events.StockAdjusted):
        await handlers.stock_adjusted(pool, event)
    else:
        await handlers.stock_transferred(pool, event)


async def places(pool: asyncpg.Pool, sku: str) -> dict[str, tuple[int, int]]:
    rows = await pool.fetch(
        "select location_id, free_units, reserved_units from sku_location where sku = $1", sku
    )
    return {r[0]: (r[1], r[2]) for r in rows if r[1] or r[2]}


async def test_a_transfer_before_its_receipt_waits_for_it(allocation_pool: asyncpg.Pool) -> None:
    pool, sku = allocation_pool, unique("SKU")
    east, west = unique("east"), unique("west")
    first, moved = history(sku, east, west)[:2]
    await apply(pool, moved)  # version 2 first: east has nothing yet, so it is held
    assert await places(pool, sku) == {}
    assert await pool.fetchval("select count(*) from held_stock_event where sku = $1", sku) == 1
    await apply(pool, first)  # version 1, then the held 2
    assert await places(pool, sku) == {east: (4, 0), west: (6, 0)}
    assert await pool.fetchval("select count(*) from held_stock_event where sku = $1", sku) == 0
    assert await pool.fetchval("select unmatched_shrinkage_units from sku where sku = $1", sku) == 0
    # A redelivery of either changes nothing.
    await apply(pool, moved)
    await apply(pool, first)
    assert await places(pool, sku) == {east: (4, 0), west: (6, 0)}


async def test_any_arrival_order_ends_in_the_inventory_order_state(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool = allocation_pool
    east, west = unique("east"), unique("west")
    rng = random.Random(7)
    outcomes = []
    for attempt in range(6):
        sku = unique(f"SKU{attempt}")
        # Lines that hold units where shrinkage strikes: revocations must follow the same order.
        for n in range(4):
            await handlers.allocate(pool, handlers.Allocate(unique("o"), str(n), sku, 2))
        events = history(sku, east, west)
        if attempt:
            rng.shuffle(events)
        await asyncio.gather(*(apply(pool, e) for e in events))
        line_units = await pool.fetch(
            "select line_id, reserved, backordered from line where sku = $1 order by line_id", sku
        )
        unmatched = await pool.fetchval(
            "select unmatched_shrinkage_units from sku where sku = $1", sku
        )
        # Every version is recorded as applied and nothing is left held, so the next event
        # of the SKU applies at once (nothing lost behind a version never settled).
        settled = await pool.fetchrow(
            """select s.stock_version,
                      (select count(*) from held_stock_event h where h.sku = s.sku) as held
               from sku s where s.sku = $1""",
            sku,
        )
        assert (settled["stock_version"], settled["held"]) == (len(events), 0)
        outcomes.append((await places(pool, sku), [tuple(r) for r in line_units], unmatched))
    # east: 10 - 6 - 4 + 5 + 2 = 7; west: 6 - 3 - 2 = 1; 8 units of lines wait for 8 units.
    assert outcomes[0][0] == {east: (0, 7), west: (0, 1)}
    assert outcomes[0][2] == 0
    assert all(outcome == outcomes[0] for outcome in outcomes), outcomes


async def test_events_from_before_versions_apply_at_once(allocation_pool: asyncpg.Pool) -> None:
    pool, sku = allocation_pool, unique("SKU")
    await apply(
        pool,
        inventory_events.StockReceived(
            event_id=str(uuid.uuid4()), sku=sku, receipt_id="r", quantity=3, location_id="default"
        ),
    )
    assert await places(pool, sku) == {"default": (3, 0)}

"""Allocate's one-round-trip reservation (repeatable/placement.sql, `reserve_new_line`): a new
line that takes free units whole, with nothing waiting ahead of it, is placed and reserved
by `queue_line` in one statement, and writes exactly what the full path writes for it; any
other case is left to the full path, with nothing written."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from backorder.allocation.v1 import events_pb2
from services.allocation import handlers
from services.allocation.adapters import placement
from services.allocation.handlers import events
from services.allocation.handlers.placing import _full_path
from tests.integration.test_allocation_locations import location
from tests.integration.test_allocation_locations import receipt as receipt_at
from tests.integration.test_allocation_store import receipt, reserved_parts
from tests.support.servers import unique


async def _queue_line(pool: asyncpg.Pool, cmd: handlers.Allocate) -> placement.Queued:
    request = cmd.request()
    return await placement.queue_line(pool, request, events.queued_event(request), reserved_parts())


async def _state(pool: asyncpg.Pool, sku: str) -> dict[str, Any]:
    """Everything a placement and its fill write for `sku`, without ids and times."""
    lines = await pool.fetch(
        """select quantity, priority, placed_priority, allow_partial, customer_id, locations,
                  reserved, fulfilled, backordered, status, eta, sku_seq, held_for_order
           from line where sku = $1 order by id""",
        sku,
    )
    logged = await pool.fetch(
        """select quantity, cause, cause_event_id, queue_position, rule, fill_policy,
                  location_id from reservation where sku = $1 order by id""",
        sku,
    )
    counters = await pool.fetchrow(
        """select free_units, reserved_units, backordered_units, waiting_lines, lines_placed
           from sku where sku = $1""",
        sku,
    )
    at = await pool.fetch(
        "select location_id, free_units, reserved_units from sku_location where sku = $1"
        " order by location_id",
        sku,
    )
    bands = await pool.fetch(
        "select priority, waiting_lines, backordered_units from sku_queue where sku = $1"
        " order by priority",
        sku,
    )
    buckets = await pool.fetch(
        "select priority, bucket, waiting_lines from sku_queue_bucket where sku = $1"
        " order by priority, bucket",
        sku,
    )
    demand = await pool.fetch(
        "select ordered_units, cancelled_units from demand_day where sku = $1", sku
    )
    outbox = await pool.fetch(
        "select routing_key, message_type, exchange, body from outbox where sku = $1"
        " and routing_key like 'line.%' order by id",
        sku,
    )
    bodies: list[tuple[object, ...]] = []
    for row in outbox:
        if row["routing_key"] != "line.reserved":
            bodies.append((row["routing_key"],))
            continue
        event = events_pb2.LineReserved.FromString(row["body"])
        assert event.sku == sku and uuid.UUID(event.event_id)
        assert event.reservation_id > 0 and event.occurred_at.seconds > 0
        bodies.append(
            (
                row["routing_key"],
                event.line_id,
                event.quantity,
                event.reserved_now,
                event.reserved_quantity,
                event.backordered_quantity,
                event.status,
                event.cause_event_id,
                event.location_id,
                row["message_type"],
                row["exchange"],
            )
        )
    return {
        "lines": [dict(r) for r in lines],
        "reservations": [tuple(r) for r in logged],
        "sku": dict(counters),
        "locations": [tuple(r) for r in at],
        "bands": [tuple(r) for r in bands],
        "buckets": [tuple(r) for r in buckets],
        "demand": [tuple(r) for r in demand],
        "events": bodies,
    }


async def test_a_line_taking_free_units_whole_is_reserved_as_the_full_path_reserves_it(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool = allocation_pool
    at_once, full = unique("RA"), unique("RF")
    for sku in (at_once, full):
        await handlers.stock_received(pool, receipt(sku, 5))

    def cmd(sku: str) -> handlers.Allocate:
        return handlers.Allocate(unique("o"), "7", sku, 3, priority=4, customer_id="c1")

    queued = await _queue_line(pool, cmd(at_once))
    assert queued.outcome is placement.Outcome.RESERVED and queued.reserved_at == "default"
    assert queued.line is not None
    assert (queued.line.reserved, queued.line.backordered) == (3, 0)
    placed = await _full_path(pool, cmd(full))
    assert (placed.view.line.reserved, placed.reserved_at_once) == (3, 3)
    assert queued.line.status == placed.view.line.status
    ours, theirs = await _state(pool, at_once), await _state(pool, full)
    assert ours == theirs
    assert ours["sku"]["free_units"] == 2 and len(ours["events"]) == 1


async def test_the_answer_holds_the_units_where_they_are(allocation_pool: asyncpg.Pool) -> None:
    pool = allocation_pool
    sku = unique("RW")
    await handlers.stock_received(pool, receipt(sku, 2))
    placed = await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 2))
    assert placed.reserved_at_once == 2 and placed.view.queue_position == 0
    assert [(a.location_id, a.reserved) for a in placed.view.allocations] == [("default", 2)]
    again = await handlers.get_line(pool, placed.view.line.order_id, "1")
    assert again.line == placed.view.line
    assert again.allocations == placed.view.allocations


async def _no_waiting_line_ahead(pool: asyncpg.Pool, sku: str) -> handlers.Allocate:
    await handlers.stock_received(pool, receipt(sku, 3))
    return handlers.Allocate(unique("o"), "1", sku, 4, allow_partial=True)  # more than free


async def _a_line_waits(pool: asyncpg.Pool, sku: str) -> handlers.Allocate:
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 2))
    await handlers.stock_received(pool, receipt(sku, 1))  # not enough for the waiting line
    return handlers.Allocate(unique("o"), "1", sku, 1)


async def _free_at_two_locations(pool: asyncpg.Pool, sku: str) -> handlers.Allocate:
    east = unique("east")
    await handlers.location_updated(pool, location(east, 1))
    await handlers.stock_received(pool, receipt(sku, 2))
    await handlers.stock_received(pool, receipt_at(sku, 2, east))
    return handlers.Allocate(unique("o"), "1", sku, 1)


async def _only_elsewhere(pool: asyncpg.Pool, sku: str) -> handlers.Allocate:
    west = unique("west")
    await handlers.location_updated(pool, location(west, 1))
    await handlers.stock_received(pool, receipt(sku, 2))
    return handlers.Allocate(unique("o"), "1", sku, 1, locations=(west,))


async def _capped(pool: asyncpg.Pool, sku: str) -> handlers.Allocate:
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, max_units_per_customer=5))
    await handlers.stock_received(pool, receipt(sku, 2))
    return handlers.Allocate(unique("o"), "1", sku, 1, customer_id="c")


async def _free_at_an_inactive_location(pool: asyncpg.Pool, sku: str) -> handlers.Allocate:
    shut = unique("shut")
    await handlers.location_updated(pool, location(shut, 1))
    await handlers.stock_received(pool, receipt_at(sku, 2, shut))
    await handlers.location_updated(pool, location(shut, 1, active=False, version=2))
    await handlers.stock_received(pool, receipt(sku, 2))
    return handlers.Allocate(unique("o"), "1", sku, 1)


@pytest.mark.parametrize(
    "setup",
    [
        _no_waiting_line_ahead,
        _a_line_waits,
        _free_at_two_locations,
        _only_elsewhere,
        _capped,
        _free_at_an_inactive_location,
    ],
)
async def test_anything_more_than_taking_free_units_whole_is_left_to_the_full_path(
    allocation_pool: asyncpg.Pool, setup: Any
) -> None:
    pool = allocation_pool
    sku = unique("RN")
    cmd = await setup(pool, sku)
    before = await _state(pool, sku)
    queued = await _queue_line(pool, cmd)
    assert queued.outcome is placement.Outcome.NEEDS_THE_FILL and queued.line is None
    assert await _state(pool, sku) == before
    # ... which then places it (and gives it what it may have).
    placed = await handlers.allocate(pool, cmd)
    assert placed.view.line.order_id == cmd.order_id

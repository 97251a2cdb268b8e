"""Line placement has one home (`place_line`, migrations/repeatable/placement.sql). The
benchmark builds long queues with a set-based copy of it, and measures Allocate against a
raw statement of its own (bench/workload.py); this holds both to the real thing, row for
row."""

from __future__ import annotations

import asyncpg
import pytest

from bench import workload
from services.allocation import handlers
from services.allocation.adapters import placement
from services.allocation.handlers import events
from tests.integration.test_allocation_store import inbound, receipt, reserved_parts
from tests.support.servers import unique

COUNT = 40  # more than one priority band each, lines of every priority


async def _queue_rows(pool: asyncpg.Pool, sku: str, prefix: str) -> dict[str, object]:
    """Everything placing lines writes for `sku` (keys and clock readings aside), with the
    client's order ids made relative to `prefix`."""
    lines = await pool.fetch(
        """select substr(order_id, $2) as order_no, line_id, quantity, priority,
                  placed_priority, allow_partial, customer_id, sku_seq, reserved, fulfilled,
                  cancelled, backordered, status, eta, eta_version
           from line where sku = $1 order by sku_seq""",
        sku,
        len(prefix) + 1,
    )
    rank = await pool.fetch(
        """select substr(order_id, $2) from line where sku = $1 and backordered > 0
           order by priority desc, placed_at, id""",
        sku,
        len(prefix) + 1,
    )
    counters = await pool.fetchrow(
        """select fill_policy, backorders_accepted, backorder_limit, free_units,
                  reserved_units, fulfilled_units, backordered_units, waiting_lines,
                  unmatched_shrinkage_units, lines_placed
           from sku where sku = $1""",
        sku,
    )
    bands = await pool.fetch(
        """select priority, waiting_lines, backordered_units from sku_queue
           where sku = $1 order by priority""",
        sku,
    )
    buckets = await pool.fetch(
        """select priority, bucket, waiting_lines from sku_queue_bucket
           where sku = $1 order by priority, bucket""",
        sku,
    )
    demand = await pool.fetch(
        """select day, ordered_units, cancelled_units, imported_units from demand_day
           where sku = $1 order by day""",
        sku,
    )
    return {
        "demand": [tuple(r) for r in demand],
        "lines": [tuple(r) for r in lines],
        "rank": [r[0] for r in rank],
        "sku": tuple(counters),
        "bands": [tuple(r) for r in bands],
        "buckets": [tuple(r) for r in buckets],
    }


async def test_bench_queue_builder_writes_what_placing_each_line_writes(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool = allocation_pool
    copied, placed = unique("BENCH"), unique("PLACED")
    await workload.place_waiting_lines(pool, copied, COUNT, order_prefix=copied)
    # The same lines, one Allocate each (which places them through place_line).
    for i in range(1, COUNT + 1):
        await handlers.allocate(
            pool, handlers.Allocate(f"{placed}-{i}", "1", placed, 1, priority=(i * 7) % 10)
        )
    bench = await _queue_rows(pool, copied, f"{copied}-")
    real = await _queue_rows(pool, placed, f"{placed}-")
    assert len(bench["lines"]) == COUNT  # type: ignore[arg-type]
    assert bench == real


@pytest.mark.parametrize(
    "situation", ["new", "free units", "open inbound", "no backorders", "over limit", "capped"]
)
async def test_bench_raw_allocate_places_only_what_allocate_only_queues(
    allocation_pool: asyncpg.Pool, situation: str
) -> None:
    """The benchmark's raw Allocate (bench/workload.py `RAW_ALLOCATE`) restates Allocate's
    guard in SQL of its own, as a baseline must be: it places a line exactly where Allocate's
    one-round-trip path only queues one (`queue_lines`: QUEUED), and then writes what that
    path writes. A guard of the service that gained a condition the raw lacks fails here."""
    pool = allocation_pool
    raw, real = unique("RAW"), unique("REAL")
    due = inbound(raw, 5).expected_at
    for sku in (raw, real):
        await handlers.allocate(pool, handlers.Allocate(f"{sku}-1", "1", sku, 2))
        if situation == "free units":
            await handlers.stock_received(pool, receipt(sku, 1))  # 1 free: the line needs 2
        elif situation == "open inbound":
            expected = inbound(sku, 5)
            expected.expected_at.CopyFrom(due)  # the same ETA for both lines
            await handlers.inbound_updated(pool, expected)
        elif situation == "no backorders":
            await handlers.set_sku_policy(
                pool, handlers.SetSkuPolicy(sku, backorders_accepted=False)
            )
        elif situation == "over limit":
            await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, backorder_limit=3))
        elif situation == "capped":
            await handlers.set_sku_policy(
                pool, handlers.SetSkuPolicy(sku, max_units_per_customer=5)
            )
    event_id, body = workload.backordered_body(raw, f"{raw}-2")
    placed = await pool.fetchval(workload.RAW_ALLOCATE, raw, f"{raw}-2", "1", 2, event_id, body)
    request = placement.LineRequest(f"{real}-2", "1", real, 2, 0, False, "")
    [queued] = await placement.queue_lines(
        pool, [request], [events.queued_event(request)], [None], reserved_parts()
    )
    assert (placed is not None) == (queued.outcome is placement.Outcome.QUEUED), queued.outcome
    assert (placed is not None) == (situation == "new")
    assert await _queue_rows(pool, raw, f"{raw}-") == await _queue_rows(pool, real, f"{real}-")
    outbox = "select count(*) from outbox where sku = $1"
    assert await pool.fetchval(outbox, raw) == await pool.fetchval(outbox, real)

"""Line placement has one home (`place_line`, migrations/repeatable/placement.sql). The
benchmark builds long queues with a set-based copy of it (bench/workload.py); this holds
the copy equal to the real thing, row for row."""

from __future__ import annotations

import asyncpg

from bench import workload
from services.allocation import handlers
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

"""Queue positions from the bucket counters (migration 0004) against a plain rank-order count,
on a queue of several priority bands and several buckets that lines leave and rejoin out of
order: cancels, SKIP fills, partial fills, SetPriority, shrinkage revocations."""

from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.allocation.adapters import skus as db
from services.allocation.domain.fill import FillPolicy
from services.common import db as common_db
from tests.support.migrations import database_before
from tests.support.servers import unique

# The definition of a position (docs/spec.md §1 rank: priority DESC, placed_at ASC, then the
# sequence), counted line by line as the service did before the bucket counters.
REFERENCE_POSITIONS = """
    select l.line_id,
           case when l.backordered > 0 then 1 + (
               select count(*) from line a
               where a.sku = l.sku and a.backordered > 0
                 and (a.priority > l.priority
                      or (a.priority = l.priority and (a.placed_at, a.id) < (l.placed_at, l.id))))
           else 0 end as position
    from line l where l.sku = $1"""

# The bucket counters recounted from the lines: (priority, bucket, waiting lines).
RECOUNTED_BUCKETS = """
    select priority, sku_seq / queue_bucket_size() as bucket, count(*) as lines
    from line where sku = $1 and backordered > 0 group by 1, 2 order by 1, 2"""
STORED_BUCKETS = """
    select priority, bucket, waiting_lines from sku_queue_bucket where sku = $1 order by 1, 2"""


async def queue_by_sql(
    conn: asyncpg.Connection, sku: str, order: str, lines: list[tuple[int, int, bool]]
) -> None:
    """Backordered lines (quantity, priority, allow_partial) with the rows and counters
    Allocate writes, set up in a few statements: l1, l2, ... in arrival order."""
    async with conn.transaction():
        await db.lock_sku(conn, sku)
        await conn.execute(
            """insert into line (order_id, line_id, sku, quantity, priority, placed_priority,
                                 allow_partial, placed_at, sku_seq)
               select $1, 'l' || n, s.sku, q, p, p, a, clock_timestamp(), s.lines_placed + n
               from sku s, unnest($3::bigint[], $4::smallint[], $5::bool[])
                   with ordinality as t(q, p, a, n)
               where s.sku = $2""",
            order,
            sku,
            [q for q, _, _ in lines],
            [p for _, p, _ in lines],
            [a for _, _, a in lines],
        )
        await conn.execute(
            """update sku set lines_placed = lines_placed + $2,
                   backordered_units = (select sum(backordered) from line where sku = $1),
                   waiting_lines = (select count(*) from line where sku = $1 and backordered > 0)
               where sku = $1""",
            sku,
            len(lines),
        )
        await conn.execute(
            """insert into sku_queue (sku, priority, waiting_lines, backordered_units)
               select $1, priority, count(*), sum(backordered) from line
               where sku = $1 and backordered > 0 group by priority""",
            sku,
        )


async def waiting_line_ids(pool: asyncpg.Pool, sku: str) -> list[str]:
    rows = await pool.fetch(
        "select line_id from line where sku = $1 and backordered > 0 order by id", sku
    )
    return [r["line_id"] for r in rows]


def receipt(sku: str, quantity: int) -> inventory_events.StockReceived:
    return inventory_events.StockReceived(
        event_id=str(uuid.uuid4()), sku=sku, receipt_id=unique("r"), quantity=quantity
    )


def shrinkage(sku: str, units: int) -> inventory_events.StockAdjusted:
    return inventory_events.StockAdjusted(
        event_id=str(uuid.uuid4()), sku=sku, adjustment_id=unique("a"), delta=-units
    )


async def assert_positions_are_ranks(pool: asyncpg.Pool, sku: str, order: str) -> None:
    expected = {r["line_id"]: r["position"] for r in await pool.fetch(REFERENCE_POSITIONS, sku)}
    # GetLine of every waiting line.
    waiting = [line_id for line_id, position in expected.items() if position]
    views = await asyncio.gather(*(handlers.get_line(pool, order, i) for i in waiting))
    got = {v.line.line_id: v.queue_position for v in views}
    assert got == {i: expected[i] for i in waiting}
    # ListLines of every line (0: not waiting).
    listed: dict[str, int] = {}
    token = ""
    while True:
        page = await handlers.list_lines(pool, sku=sku, page_size=1000, page_token=token)
        listed |= {v.line.line_id: v.queue_position for v in page.items}
        token = page.next_page_token
        if not token:
            break
    assert listed == expected
    assert [tuple(r) for r in await pool.fetch(STORED_BUCKETS, sku)] == [
        tuple(r) for r in await pool.fetch(RECOUNTED_BUCKETS, sku)
    ]


async def test_positions_follow_lines_leaving_and_rejoining_out_of_order(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool = allocation_pool
    rng = random.Random(5)
    sku, order = unique("POS"), unique("o")
    # 3,000 lines in three interleaved bands: each band spans three buckets of arrivals.
    lines = [(rng.randint(1, 3), rng.choice((0, 4, 8)), rng.random() < 0.5) for _ in range(3000)]
    async with pool.acquire() as conn:
        await queue_by_sql(conn, sku, order, lines)
    bands = await pool.fetch(
        "select priority, count(*) as buckets from sku_queue_bucket where sku = $1 "
        "group by priority",
        sku,
    )
    assert len(bands) == 3 and all(b["buckets"] >= 2 for b in bands)
    await assert_positions_are_ranks(pool, sku, order)

    # Cancels anywhere in the queue.
    for line_id in rng.sample(await waiting_line_ids(pool, sku), 100):
        await handlers.cancel_line(pool, order, line_id)
    # SetPriority: lines move between bands (two of them new) and keep their arrival.
    for line_id in rng.sample(await waiting_line_ids(pool, sku), 100):
        await handlers.set_priority(pool, order, line_id, rng.choice((0, 2, 4, 8, 9)))
    await assert_positions_are_ranks(pool, sku, order)

    # SKIP fills: small receipts pass over whole-only lines they cannot cover and give
    # partial lines part of their units; then one receipt fills far into the queue.
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, fill_policy=FillPolicy.SKIP))
    for _ in range(30):
        await handlers.stock_received(pool, receipt(sku, rng.randint(1, 4)))
    await handlers.stock_received(pool, receipt(sku, 2500))
    partly = await pool.fetchval(
        "select count(*) from line where sku = $1 and reserved > 0 and backordered > 0", sku
    )
    assert partly > 0  # partial fills left lines waiting with some units reserved
    await assert_positions_are_ranks(pool, sku, order)

    # Shrinkage takes units back from the lowest-ranked reservations: whole and partly
    # reserved lines wait again at their old rank, in buckets long left behind.
    await handlers.stock_adjusted(pool, shrinkage(sku, 700))
    revoked = await pool.fetch(
        """select distinct l.line_id from reservation r join line l on l.id = r.line
           where r.sku = $1 and r.rule = 'REVOKED'""",
        sku,
    )
    assert len(revoked) > 100
    await assert_positions_are_ranks(pool, sku, order)

    # More of everything: revoked lines change priority or are cancelled, a partial fill,
    # and new lines placed through Allocate join at the end of their bands.
    for r in rng.sample(revoked, 40):
        await handlers.set_priority(pool, order, r["line_id"], rng.choice((1, 5, 9)))
    for r in rng.sample(revoked, 20):
        await handlers.cancel_line(pool, order, r["line_id"])
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, fill_policy=FillPolicy.STRICT))
    await handlers.stock_received(pool, receipt(sku, 300))
    for n in range(20):
        await handlers.allocate(
            pool, handlers.Allocate(order, f"new{n}", sku, 2, rng.choice((0, 4, 9)))
        )
    await assert_positions_are_ranks(pool, sku, order)


async def test_migration_numbers_existing_lines_in_rank_order() -> None:
    """Lines queued before migration 0004 get their arrival numbers and bucket counters."""
    async with database_before("services.allocation.migrations", 4, "bo_test_alloc_0004") as (
        url,
        conn,
    ):
        # The schema as it was before 0004, recorded as migrate() records it.
        await conn.execute("insert into sku (sku) values ('A'), ('B')")
        # Placed out of id order (placed_at decides the rank), some no longer waiting.
        await conn.execute(
            """insert into line (order_id, line_id, sku, quantity, priority, allow_partial,
                                 placed_at, placed_priority, reserved, cancelled)
               select 'o', 'l' || i, case when i % 3 = 0 then 'B' else 'A' end, 1, i % 2,
                      false, now() - (i % 7) * interval '1 minute' - i * interval '1 ms',
                      i % 2, case when i % 5 = 0 then 1 else 0 end, i % 11 = 0
               from generate_series(1, 2500) i"""
        )
        applied = await common_db.migrate(url, "services.allocation.migrations")
        assert applied[:4] == [
            "0004_queue_buckets.sql",
            "0005_queue_line.sql",
            "0006_placement_late_fields.sql",
            "0007_locations.sql",
        ]
        assert applied[-7:] == [
            "repeatable/allocations.sql",
            "repeatable/counters.sql",
            "repeatable/fill.sql",
            "repeatable/placement.sql",
            "repeatable/planning.sql",
            "repeatable/protobuf.sql",
            "repeatable/queue_buckets.sql",
        ]
        misnumbered = await conn.fetchval(
            """select count(*) from (
                   select sku_seq, row_number() over (partition by sku
                                                      order by placed_at, id) as rank
                   from line) n
               where sku_seq <> rank"""
        )
        assert misnumbered == 0
        placed = await conn.fetch("select sku, lines_placed from sku order by sku")
        counted = await conn.fetch("select sku, count(*) from line group by sku order by sku")
        assert [tuple(r) for r in placed] == [tuple(r) for r in counted]
        for sku in ("A", "B"):
            assert [tuple(r) for r in await conn.fetch(STORED_BUCKETS, sku)] == [
                tuple(r) for r in await conn.fetch(RECOUNTED_BUCKETS, sku)
            ]

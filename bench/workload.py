"""The data and the raw SQL of the benchmark.

`place_waiting_lines` sets a queue up fast with set-based SQL: a documented copy of the
service's one home of line placement, `place_line` (services/allocation/migrations/
repeatable/placement.sql: the line with `placed_at = clock_timestamp()` and its arrival
number `sku_seq`, its band's counters in `sku_queue`, the SKU's `backordered_units`,
`waiting_lines` and `lines_placed`; the bucket counters follow by trigger), for `count` lines
in three statements instead of one call each. It writes exactly those rows
(tests/integration/test_placement.py holds the copy equal to placing each line) except the
`line.backordered` outbox rows: a queue built up over days has long had those published,
and the relay never reads sent rows again. The same function builds the identical queue in
the raw baseline's database.

The raw statements are the least SQL doing the same work, each in one round trip:
`RAW_FILL` (running sum over the rank, as the fill decides for whole single lines under the
STRICT policy) and `RAW_ALLOCATE`: the work docs/spec.md §7 names for Allocate (counters,
demand history, caps, location choice) as one CTE: lock the SKU and count the line where
only queueing is to be done (nothing free at any location, backorders accepted within the
limit, no cap per customer, no open inbound), insert the line, its band's counter, its day
of demand and its outbox row; the bucket counters by the same trigger as the service's.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from backorder.allocation.v1 import events_pb2

ALLOCATION_EXCHANGE = "allocation.events"


async def place_waiting_lines(
    conn: asyncpg.Connection | asyncpg.Pool, sku: str, count: int, *, order_prefix: str
) -> None:
    """`count` single-unit, whole-only backordered lines of `sku` (priorities mixed, so rank
    order is not insertion order), with the SKU row and its counters as Allocate keeps them."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            await place_waiting_lines(c, sku, count, order_prefix=order_prefix)
        return
    async with conn.transaction():
        await conn.execute("insert into sku (sku) values ($1) on conflict (sku) do nothing", sku)
        # The SKU's counters first: the row is locked, and `lines_placed` before the update
        # numbers the new lines' arrivals (sku_seq) on from the SKU's last one.
        placed = await conn.fetchval(
            """update sku set backordered_units = backordered_units + $2,
                              waiting_lines = waiting_lines + $2,
                              lines_placed = lines_placed + $2,
                              updated_at = clock_timestamp()
               where sku = $1
               returning lines_placed - $2""",
            sku,
            count,
        )
        await conn.execute(
            """insert into line (order_id, line_id, sku, quantity, priority, placed_priority,
                                 allow_partial, customer_id, placed_at, sku_seq)
               select $2 || i, '1', $1, 1, (i * 7) % 10, (i * 7) % 10, false, '',
                      clock_timestamp(), $4 + i
               from generate_series(1, $3::int) i""",
            sku,
            f"{order_prefix}-",
            count,
            placed,
        )
        # Their demand today, as place_line records it (repeatable/planning.sql).
        await conn.execute("select record_demand_ordered($1, $2, clock_timestamp())", sku, count)
        # The per-priority queue counters Allocate keeps beside the SKU's totals.
        await conn.execute(
            """insert into sku_queue as q (sku, priority, waiting_lines, backordered_units)
               select $1, priority, count(*), sum(backordered) from line
               where sku = $1 and backordered > 0 group by priority
               on conflict (sku, priority) do update
                   set waiting_lines = excluded.waiting_lines,
                       backordered_units = excluded.backordered_units""",
            sku,
        )
    # Fresh statistics, as autovacuum would have them for a queue built up over time.
    await conn.execute("analyze line")
    await conn.execute("analyze sku")


RAW_FILL = """
with ranked as (
    select id, priority, backordered,
           sum(backordered) over w as running,
           row_number() over w as position
    from line where sku = $1 and backordered > 0
    window w as (order by priority desc, placed_at, id)),
filled as (
    select id, priority, backordered as quantity, position from ranked where running <= $2),
logged as (
    insert into reservation (line, sku, quantity, cause, cause_event_id, queue_position,
                             rule, fill_policy)
    select id, $1, quantity, 'stock.received', $3, position, 'WHOLE', 'STRICT' from filled),
updated as (
    update line l set reserved = l.reserved + f.quantity from filled f where l.id = f.id),
total as (select coalesce(sum(quantity), 0) as units, count(*) as lines from filled),
banded as (
    update sku_queue q set waiting_lines = q.waiting_lines - b.lines,
                           backordered_units = q.backordered_units - b.units
    from (select priority, count(*) as lines, sum(quantity) as units from filled
          group by priority) b
    where q.sku = $1 and q.priority = b.priority),
counted as (
    update sku set free_units = free_units + $2 - t.units,
                   reserved_units = reserved_units + t.units,
                   backordered_units = backordered_units - t.units,
                   waiting_lines = waiting_lines - t.lines,
                   updated_at = clock_timestamp()
    from total t where sku.sku = $1)
select lines from total
"""


async def raw_fill(pool: asyncpg.Pool, sku: str, units: int) -> tuple[int, float]:
    """Runs the raw fill of `units` free units; (lines filled, seconds)."""
    async with pool.acquire() as conn:
        start = time.perf_counter()
        lines = await conn.fetchval(RAW_FILL, sku, units, uuid.uuid4())
        return int(lines), time.perf_counter() - start


RAW_ALLOCATE = """
with locked as (
    insert into sku as s (sku, backordered_units, waiting_lines, lines_placed)
    values ($1, $4, 1, 1)
    on conflict (sku) do update
        set backordered_units = s.backordered_units + excluded.backordered_units,
            waiting_lines = s.waiting_lines + 1, lines_placed = s.lines_placed + 1,
            updated_at = clock_timestamp()
        where s.free_units = 0 and s.backorders_accepted and s.max_units_per_customer = 0
          and (s.backorder_limit = 0
               or s.backordered_units + excluded.backordered_units <= s.backorder_limit)
          and not exists (select 1 from inbound i
                          where i.sku = s.sku and i.open_quantity > 0 and not i.cancelled)
    returning sku, lines_placed),
placed as (
    insert into line (order_id, line_id, sku, quantity, priority, placed_priority,
                      allow_partial, customer_id, placed_at, sku_seq)
    select $2, $3, sku, $4, 0, 0, false, '', clock_timestamp(), lines_placed from locked
    returning id),
banded as (
    insert into sku_queue as q (sku, priority, waiting_lines, backordered_units)
    select $1, 0, 1, $4 from placed
    on conflict (sku, priority) do update
        set waiting_lines = q.waiting_lines + 1,
            backordered_units = q.backordered_units + excluded.backordered_units),
demanded as (
    insert into demand_day as d (sku, day, ordered_units)
    select $1, (clock_timestamp() at time zone 'UTC')::date, $4 from placed
    on conflict (sku, day) do update set ordered_units = d.ordered_units + excluded.ordered_units),
evented as (
    insert into outbox (event_id, exchange, routing_key, message_type, sku, body)
    select $5, 'allocation.events', 'line.backordered',
           'backorder.allocation.v1.LineBackordered', $1, $6 from placed)
select id from placed
"""


def backordered_body(sku: str, order_id: str) -> tuple[uuid.UUID, bytes]:
    """A `line.backordered` event body like the one Allocate writes."""
    event_id = uuid.uuid4()
    message = events_pb2.LineBackordered(
        event_id=str(event_id),
        sku=sku,
        order_id=order_id,
        line_id="1",
        quantity=1,
        backordered_quantity=1,
        queue_position=1,
        status=events_pb2.LineStatus.LINE_STATUS_BACKORDERED,
    )
    message.occurred_at.GetCurrentTime()
    return event_id, message.SerializeToString()


def reserved_bodies(count: int, sku: str) -> list[tuple[uuid.UUID, bytes]]:
    """`count` `line.reserved` event bodies like the fill writes."""
    bodies = []
    for i in range(count):
        event_id = uuid.uuid4()
        message = events_pb2.LineReserved(
            event_id=str(event_id),
            sku=sku,
            order_id=f"bench-outbox-{i}",
            line_id="1",
            quantity=1,
            reserved_now=1,
            reserved_quantity=1,
            status=events_pb2.LineStatus.LINE_STATUS_RESERVED,
            reservation_id=i + 1,
        )
        message.occurred_at.GetCurrentTime()
        bodies.append((event_id, message.SerializeToString()))
    return bodies


async def add_outbox_rows(
    conn: asyncpg.Connection, sku: str, bodies: list[tuple[uuid.UUID, bytes]]
) -> None:
    """Writes events into the outbox in one transaction and wakes the relay, as add_events."""
    async with conn.transaction():
        await conn.execute(
            """insert into outbox (event_id, exchange, routing_key, message_type, sku, body)
               select e, 'allocation.events', 'line.reserved',
                      'backorder.allocation.v1.LineReserved', $1, b
               from unnest($2::uuid[], $3::bytea[]) as t(e, b)""",
            sku,
            [e for e, _ in bodies],
            [b for _, b in bodies],
        )
        await conn.execute("select pg_notify('outbox', '')")


async def wait_for(
    conn: asyncpg.Connection | asyncpg.Pool,
    query: str,
    *args: object,
    within: float,
    interval: float = 0.005,
) -> float:
    """Polls `query` (one boolean) until true; the time.time() when it was first seen."""
    deadline = time.monotonic() + within
    while True:
        if await conn.fetchval(query, *args):
            return time.time()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached within {within} s: {query.split()[:8]}")
        await asyncio.sleep(interval)


async def outbox_settled(pool: asyncpg.Pool, within: float = 900) -> None:
    """Waits until the relay has published every outbox row (between rows of the bench)."""
    await wait_for(
        pool,
        "select not exists (select 1 from outbox where sent_at is null)",
        within=within,
        interval=0.05,
    )

"""The drain's physical limit and what the service's schema costs on top of it.

The drain row's raw baseline is one set-based statement on a LEAN schema — a line table with
its key and the queue index, a reservation table and an outbox table with their keys only —
that fills N single-unit lines of one SKU in rank order and writes one outbox row per fill
(a uuid, the routing key and a ~120-byte body): what any design has to write for a drain,
with nothing of ours around it. Run on the same server in the same run as the service's
drain (in the raw baseline's database, in a schema of its own, `lean`).

The schema costs come from variants of that statement, each adding one part of the service's
schema to the previous one, on a fresh queue of the same length:

1. `fill`: the lines and their reservation rows only (no events);
2. `+ events`: one outbox row per fill, the body made in SQL — THE baseline;
3. `+ counters`: the SKU's totals and its per-priority band counters (`sku`, `sku_queue`),
   updated in the same statement as the service's own-schema raw fill does;
4. `+ queue-position trigger`: the service's statement trigger that keeps the per-bucket
   waiting-line counters (`count_queue_buckets`, migration 0004) on the lean line table;
5. `+ other indexes`: the service's other indexes on line, reservation and outbox
   (migrations 0001-0010);
6. `+ foreign keys`: the service's (the reservation's line, the line's SKU);
7. `+ line.reserved bodies`: the outbox rows carry real `line.reserved` bodies, built in the
   statement by the service's own SQL encoder (`line_reserved_body`, repeatable/protobuf.sql)
   as the service's fill builds them, instead of a fixed-size pad.

The difference from one variant to the next is that part's cost per line.

Beside them, one statement of another design (`REDESIGN`): the queue in a table of its own
(the fill deletes a line's row from it) and no index on `line` over what a fill changes, so
the fill's update of `line` is HOT (fillfactor 50: one drain updates every line of a page in
one transaction, and each new version must fit on its page). It keeps what the contract's
reads and integrity need elsewhere — the reservation's and outbox's indexes, the foreign key,
the counters, real bodies — and leaves out what would have to move with the queue (the
revocation walk's, the customer cap's and the known-ETA indexes on `line`, the queue-position
trigger). What a redesign of the service's storage could reach, measured, not built.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp

from services.allocation.handlers.events import reserved_events

# Cumulative: each variant is the previous one plus this part.
PARTS = ("fill", "events", "counters", "trigger", "indexes", "foreign_keys", "bodies")
LABELS = {
    "fill": "lean fill (lines + reservation rows, no events)",
    "events": "+ one outbox row per fill (the baseline)",
    "counters": "+ SKU and priority-band counters",
    "trigger": "+ queue-position trigger",
    "indexes": "+ the service's other indexes",
    "foreign_keys": "+ its foreign keys",
    "bodies": "+ line.reserved bodies built in the statement",
}
BASELINE = "events"
BODY_PAD = bytes(112)  # + the 8-byte line id: a 120-byte body, the size of a line.reserved

SCHEMA = """
drop schema if exists lean cascade;
create schema lean;
create table lean.line (
    id          bigserial primary key,
    order_id    text not null,
    line_id     text not null,
    sku         text not null,
    quantity    bigint not null,
    priority    smallint not null,
    placed_at   timestamptz not null,
    sku_seq     bigint not null,
    customer_id text not null default '',
    reserved    bigint not null default 0,
    backordered bigint not null
);
create index line_queue on lean.line (sku, priority desc, placed_at, id) where backordered > 0;
create table lean.reservation (
    id             bigserial primary key,
    line           bigint not null,
    sku            text not null,
    quantity       bigint not null,
    queue_position bigint not null,
    created_at     timestamptz not null default clock_timestamp()
);
create table lean.outbox (
    id          bigserial primary key,
    event_id    uuid not null,
    routing_key text not null,
    body        bytea not null,
    created_at  timestamptz not null default clock_timestamp(),
    sent_at     timestamptz
);
"""

# The service's other indexes (same definitions, migrations 0001-0010): those on what a
# line never changes, those over what a fill changes, and the other tables'.
LINE_KEY_INDEXES = """
alter table lean.line add unique (order_id, line_id);
create index on lean.line (order_id, id);
create index on lean.line (sku, id);
"""
LINE_STATE_INDEXES = """
create index on lean.line (sku, priority, sku_seq) where backordered > 0;
create index on lean.line (sku, priority, placed_at desc, id desc) where reserved > 0;
create index on lean.line (sku, customer_id) include (reserved, backordered)
    where reserved + backordered > 0 and customer_id <> '';
"""
OTHER_INDEXES = """
create index on lean.reservation (line, id);
create index on lean.reservation (sku, id);
alter table lean.outbox add unique (event_id);
create index on lean.outbox (id) where sent_at is null;
create index on lean.outbox (sent_at) where sent_at is not null;
"""
INDEXES = LINE_KEY_INDEXES + LINE_STATE_INDEXES + OTHER_INDEXES

# Its foreign keys: every reservation row checks (and key-share locks) its line.
FOREIGN_KEYS = """
alter table lean.line add foreign key (sku) references public.sku (sku);
alter table lean.reservation add foreign key (line) references lean.line (id);
"""

# The service's trigger function (public.count_queue_buckets) on the lean line table.
TRIGGERS = """
create trigger lean_queue_buckets_insert after insert on lean.line
    referencing new table as new_lines
    for each statement execute function public.count_queue_buckets();
create trigger lean_queue_buckets_update after update on lean.line
    referencing old table as old_lines new table as new_lines
    for each statement execute function public.count_queue_buckets();
"""

RANKED = """
ranked as (
    select id, order_id, line_id, priority, backordered,
           sum(backordered) over w as running,
           row_number() over w as position
    from lean.line where sku = $1 and backordered > 0
    window w as (order by priority desc, placed_at, id))"""

WRITES = """
logged as (
    insert into lean.reservation (line, sku, quantity, queue_position)
    select id, $1::text, quantity, position from filled),
updated as (
    update lean.line l set reserved = l.reserved + f.quantity,
                           backordered = l.backordered - f.quantity
    from filled f where l.id = f.id)"""

EVENTS_SQL = """,
evented as (
    insert into lean.outbox (event_id, routing_key, body)
    select gen_random_uuid(), 'line.reserved', int8send(id) || $3 from filled)"""

# The service's line.reserved of each single-unit fill (handlers/events.reserved_events
# encodes the parts one fill shares: $3 and $4).
EVENTS_BODIES = """,
evented as (
    insert into lean.outbox (event_id, routing_key, body)
    select event_id, 'line.reserved',
           public.line_reserved_body(event_id, $3, $1, order_id, line_id, quantity,
                                     quantity, quantity, 0, 'RESERVED', position, $4,
                                     'default')
    from (select gen_random_uuid() as event_id, * from filled) f)"""

COUNTERS = """,
total as (select coalesce(sum(quantity), 0) as units, count(*) as lines from filled),
banded as (
    update public.sku_queue q set waiting_lines = q.waiting_lines - b.lines,
                                  backordered_units = q.backordered_units - b.units
    from (select priority, count(*) as lines, sum(quantity) as units from filled
          group by priority) b
    where q.sku = $1 and q.priority = b.priority),
counted as (
    update public.sku set free_units = free_units + $2 - t.units,
                          reserved_units = reserved_units + t.units,
                          backordered_units = backordered_units - t.units,
                          waiting_lines = waiting_lines - t.lines,
                          updated_at = clock_timestamp()
    from total t where sku.sku = $1)"""


def fill_statement(parts: Sequence[str]) -> str:
    """The one set-based statement of a variant."""
    sql = f"with {RANKED},\nfilled as (\n    select id, order_id, line_id, priority,"
    sql += " backordered as quantity, position from ranked where running <= $2),"
    sql += WRITES
    if "bodies" in parts:
        sql += EVENTS_BODIES
    elif "events" in parts:
        sql += EVENTS_SQL
    if "counters" in parts:
        sql += COUNTERS
    return sql + "\nselect count(*) from filled"


async def _sku_rows(conn: asyncpg.Connection, sku: str, count: int) -> None:
    """The SKU row and its band counters in the raw database's own tables (the counters part
    updates them, the trigger's bucket rows refer to the SKU), for a queue of `count`."""
    await conn.execute(
        """insert into public.sku (sku, backordered_units, waiting_lines, lines_placed)
           values ($1, $2, $2, $2)""",
        sku,
        count,
    )
    await conn.execute(
        """insert into public.sku_queue (sku, priority, waiting_lines, backordered_units)
           select $1, (i * 7) % 10, count(*), count(*) from generate_series(1, $2::int) i
           group by 2""",
        sku,
        count,
    )


async def setup(conn: asyncpg.Connection, sku: str, count: int, parts: Sequence[str]) -> None:
    """A fresh lean schema with the variant's parts and a queue of `count` single-unit lines
    of `sku` (priorities mixed as the service's drain queue), analyzed."""
    await conn.execute(SCHEMA)
    await _sku_rows(conn, sku, count)
    if "indexes" in parts:
        await conn.execute(INDEXES)
    if "foreign_keys" in parts:
        await conn.execute(FOREIGN_KEYS)
    if "trigger" in parts:
        await conn.execute(TRIGGERS)
    await conn.execute(
        """insert into lean.line (order_id, line_id, sku, quantity, priority, placed_at,
                                  sku_seq, backordered)
           select $2 || i, '1', $1, 1, (i * 7) % 10, clock_timestamp(), i, 1
           from generate_series(1, $3::int) i""",
        sku,
        f"{sku}-",
        count,
    )
    await conn.execute("analyze lean.line")


async def fill(conn: asyncpg.Connection, sku: str, count: int, parts: Sequence[str]) -> float:
    """Runs the variant's fill of `count` units on the queue `setup` made; seconds. Checks
    every line was filled."""
    start = time.perf_counter()
    async with conn.transaction():
        if "bodies" in parts:
            occurred_at = Timestamp()
            occurred_at.GetCurrentTime()
            shared = reserved_events(uuid.uuid4(), occurred_at)
            filled = await conn.fetchval(
                fill_statement(parts), sku, count, shared.occurred, shared.cause
            )
        elif "events" in parts:
            filled = await conn.fetchval(fill_statement(parts), sku, count, BODY_PAD)
        else:
            filled = await conn.fetchval(fill_statement(parts), sku, count)
    seconds = time.perf_counter() - start
    assert filled == count, f"lean fill ({parts[-1]}) filled {filled} of {count} lines"
    return seconds


REDESIGN = "redesign"
REDESIGN_LABEL = "other design: queue apart, fill a HOT update"

# The lean schema with the service's indexes on what a line never changes, the other
# tables' indexes and the foreign keys; then the queue moved out of `line` (its index and
# `backordered` with it) into a table of its own, and `line` given room for HOT updates.
REDESIGN_SCHEMA = (
    SCHEMA
    + LINE_KEY_INDEXES
    + OTHER_INDEXES
    + FOREIGN_KEYS
    + """
drop index lean.line_queue;
alter table lean.line drop column backordered;
alter table lean.line set (fillfactor = 50);
create table lean.waiting (
    line        bigint primary key,
    sku         text not null,
    priority    smallint not null,
    placed_at   timestamptz not null,
    sku_seq     bigint not null,
    backordered bigint not null
);
create index on lean.waiting (sku, priority desc, placed_at, line);
create index on lean.waiting (sku, priority, sku_seq);
"""
)

REDESIGN_FILL = (
    """
with ranked as (
    select w.line as id, l.order_id, l.line_id, w.priority, w.backordered,
           sum(w.backordered) over win as running,
           row_number() over win as position
    from lean.waiting w join lean.line l on l.id = w.line where w.sku = $1
    window win as (order by w.priority desc, w.placed_at, w.line)),
filled as (
    select id, order_id, line_id, priority, backordered as quantity, position
    from ranked where running <= $2),
logged as (
    insert into lean.reservation (line, sku, quantity, queue_position)
    select id, $1::text, quantity, position from filled),
dequeued as (
    delete from lean.waiting w using filled f where w.line = f.id),
updated as (
    update lean.line l set reserved = l.reserved + f.quantity
    from filled f where l.id = f.id)"""
    + EVENTS_BODIES
    + COUNTERS
    + "\nselect count(*) from filled"
)


async def _redesign(conn: asyncpg.Connection, sku: str, count: int) -> float:
    """The REDESIGN statement filling a fresh queue of `count` lines; seconds."""
    await conn.execute(REDESIGN_SCHEMA)
    await _sku_rows(conn, sku, count)
    await conn.execute(
        """insert into lean.line (order_id, line_id, sku, quantity, priority, placed_at,
                                  sku_seq)
           select $2 || i, '1', $1, 1, (i * 7) % 10, clock_timestamp(), i
           from generate_series(1, $3::int) i""",
        sku,
        f"{sku}-",
        count,
    )
    await conn.execute(
        """insert into lean.waiting
           select id, sku, priority, placed_at, sku_seq, quantity from lean.line""",
    )
    await conn.execute("analyze lean.line")
    await conn.execute("analyze lean.waiting")
    occurred_at = Timestamp()
    occurred_at.GetCurrentTime()
    shared = reserved_events(uuid.uuid4(), occurred_at)
    start = time.perf_counter()
    async with conn.transaction():
        filled = await conn.fetchval(REDESIGN_FILL, sku, count, shared.occurred, shared.cause)
        hot = await conn.fetchval(
            "select pg_stat_get_xact_tuples_hot_updated('lean.line'::regclass)"
        )
    seconds = time.perf_counter() - start
    assert filled == count, f"the redesign's fill filled {filled} of {count} lines"
    # What the design is about: not one index entry written for a filled line.
    assert hot == count, f"the redesign's fill updated {hot} of {count} lines HOT"
    return seconds


async def variants(pool: asyncpg.Pool, count: int, repeats: int = 2) -> dict[str, float]:
    """Seconds of each cumulative variant (PARTS order) and of the REDESIGN filling `count`
    lines: the best of `repeats` runs, each on a fresh queue."""
    out: dict[str, float] = {}
    async with pool.acquire() as conn:
        try:
            for _ in range(repeats):
                for i, part in enumerate(PARTS):
                    parts = PARTS[: i + 1]
                    sku = f"LEAN{uuid.uuid4().hex[:6]}"
                    await setup(conn, sku, count, parts)
                    seconds = await fill(conn, sku, count, parts)
                    out[part] = min(out.get(part, seconds), seconds)
                seconds = await _redesign(conn, f"LEAN{uuid.uuid4().hex[:6]}", count)
                out[REDESIGN] = min(out.get(REDESIGN, seconds), seconds)
        finally:
            await conn.execute("drop schema if exists lean cascade")
    return out

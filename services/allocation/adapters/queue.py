"""A SKU's queue read and changed in rank order: the waiting lines the fill and the ETA
walk go through (best rank first), the lines holding units that shrinkage takes back from
(lowest rank first), and the set-based writes of a fill and of a revocation.

Rank: priority descending, then placed_at, then the line's key. Queues can be of any length,
so they are read in chunks (keyset pagination), through `in_chunks`: the one chunk loop.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg

from services.allocation.adapters.rows import line_columns, line_from
from services.allocation.domain.fill import Fill, FillPolicy, WaitingLine
from services.allocation.domain.model import Line, LineStatus
from services.allocation.domain.shrinkage import Held, Revocation
from services.common.outbox import NOTIFY_CHANNEL

# Lines read per round trip when walking a queue: bounds memory on a queue of any length.
CHUNK = 2000

R = TypeVar("R")
_STATUS = {status.value: status for status in LineStatus}


async def in_chunks(
    fetch: Callable[[R | None, int], Awaitable[list[R]]], size: int | None = None
) -> AsyncIterator[list[R]]:
    """Chunks of `fetch(after, size)` (the rows after row `after`, in order; `size` is CHUNK
    unless given) until the rows run out. The caller may stop early (break): nothing more
    is read."""
    size = size or CHUNK
    after: R | None = None
    while True:
        chunk = await fetch(after, size)
        if chunk:
            yield chunk
        if len(chunk) < size:
            return
        after = chunk[-1]


@dataclass(frozen=True, slots=True)
class QueuedLine:
    """A waiting line as the fill reads it: what the pure fill needs, and its rank (the
    keyset of the next chunk)."""

    key: int
    priority: int
    placed_at: datetime
    backordered: int
    allow_partial: bool
    locations: list[str] | None  # None: any active location
    held: bool = False  # a line of a ship-complete order: the fill passes over it

    def waiting(self) -> WaitingLine:
        at = None if self.locations is None else frozenset(self.locations)
        return WaitingLine(self.key, self.backordered, self.allow_partial, at, self.held)


def waiting_in_rank_order(
    conn: asyncpg.Connection, sku: str, size: int | None = None
) -> AsyncIterator[list[QueuedLine]]:
    """The waiting lines of `sku`, best rank first, in chunks of `size`."""

    async def fetch(after: QueuedLine | None, limit: int) -> list[QueuedLine]:
        return await _waiting_after(conn, sku, after, limit)

    return in_chunks(fetch, size)


async def _waiting_after(
    conn: asyncpg.Connection, sku: str, after: QueuedLine | None, limit: int
) -> list[QueuedLine]:
    if after is None:
        rows = await conn.fetch(
            """select id, priority, placed_at, backordered, allow_partial, locations,
                      held_for_order from line
               where sku = $1 and backordered > 0
               order by priority desc, placed_at, id limit $2""",
            sku,
            limit,
        )
    else:
        # Two index ranges of `line_queue`, not one OR: Postgres cannot seek to an OR of
        # rank conditions and would rescan the queue from its head on every chunk (a drain
        # quadratic in its length). The rest of `after`'s band, then the lower bands.
        rows = await conn.fetch(
            """(select id, priority, placed_at, backordered, allow_partial, locations,
                      held_for_order from line
                where sku = $1 and backordered > 0 and priority = $2
                  and (placed_at, id) > ($3, $4)
                order by priority desc, placed_at, id limit $5)
               union all
               (select id, priority, placed_at, backordered, allow_partial, locations,
                      held_for_order from line
                where sku = $1 and backordered > 0 and priority < $2
                order by priority desc, placed_at, id limit $5)
               order by priority desc, placed_at, id limit $5""",
            sku,
            after.priority,
            after.placed_at,
            after.key,
            limit,
        )
    return [QueuedLine(*r) for r in rows]


@dataclass(frozen=True, slots=True)
class HeldLine:
    """A line holding reserved units, with its rank (the keyset of the next chunk)."""

    key: int
    reserved: int
    priority: int
    placed_at: datetime

    def held(self) -> Held:
        return Held(self.key, self.reserved)


def holding_lowest_rank_first(
    conn: asyncpg.Connection, sku: str, size: int | None = None, location_id: str | None = None
) -> AsyncIterator[list[HeldLine]]:
    """The lines of `sku` holding reserved units, lowest rank first (lowest priority,
    newest), in chunks of `size`: the order shrinkage takes units back in. With
    `location_id`: what each holds there (0 for a line holding units elsewhere only)."""

    async def fetch(after: HeldLine | None, limit: int) -> list[HeldLine]:
        rows = await conn.fetch(
            """select id, reserved, priority, placed_at from line
               where sku = $1 and reserved > 0
                 and ($2::smallint is null or priority > $2
                      or (priority = $2 and (placed_at, id) < ($3, $4)))
               order by priority, placed_at desc, id desc limit $5""",
            sku,
            after.priority if after else None,
            after.placed_at if after else None,
            after.key if after else None,
            limit,
        )
        if location_id is not None:
            # Only what each line holds at that location (its allocations there).
            held = await conn.fetch(
                """select k.id, coalesce(a.reserved, 0)
                   from unnest($1::bigint[]) as k(id)
                   left join lateral line_allocations(k.id) a on a.location_id = $2""",
                [r[0] for r in rows],
                location_id,
            )
            at = dict(held)
            return [HeldLine(r[0], at[r[0]], r[2], r[3]) for r in rows]
        return [HeldLine(*r) for r in rows]

    return in_chunks(fetch, size)


# The fill's writes, one statement: the decision log rows, the lines' reserved units, and
# each fill's line.reserved in the outbox (its body built in SQL: repeatable/protobuf.sql),
# in fill order (rank order; a whole fill's queue_position is 1 for each line, so it cannot
# order them); back each fill's line as that fill left it. A line may have several fills
# (one per location): it is updated once, by their sum, and each fill but its last shows
# fewer units reserved than in the end (the later fills' units still waiting).
_FILLS = """with fill as (
        select * from unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $9::text[])
            with ordinality as f(line, quantity, queue_position, rule, location_id, n)),
    logged as (
        insert into reservation (line, sku, quantity, cause, cause_event_id,
                                 queue_position, rule, fill_policy, location_id)
        select line, $1, quantity, $6, $7, queue_position, rule, $8, location_id
        from fill order by n
        returning id, line, location_id),
    per_line as (
        select line, sum(quantity) as quantity from fill group by line),
    updated as (
        update line l set reserved = l.reserved + f.quantity,
            eta = case when l.backordered = f.quantity then null else l.eta end
        from per_line f where l.id = f.line
        returning l.id, l.order_id, l.line_id, l.quantity, l.priority, l.reserved,
                  l.backordered, l.status),
    later as (
        select *, coalesce(sum(quantity) over (partition by line order by n desc
                                               rows between unbounded preceding
                                               and 1 preceding), 0)::bigint as later
        from fill),
    filled as (
        select f.n, u.id, u.order_id, u.line_id, u.quantity, u.priority,
               f.quantity as reserved_now, g.id as reservation_id, f.location_id,
               u.reserved - f.later as reserved, u.backordered + f.later as backordered,
               case when f.later > 0 and u.status = 'RESERVED' then 'PARTIALLY_RESERVED'
                    else u.status end as status,
               gen_random_uuid() as event_id
        from later f join updated u on u.id = f.line
        join logged g on g.line = f.line and g.location_id = f.location_id),
    written as (
        insert into outbox (event_id, exchange, routing_key, message_type, sku, body,
                            trace_context)
        select event_id, $10, $11, $12, $1,
               line_reserved_body(event_id, $13::bytea, order_id, line_id, quantity, reserved_now,
                                  reserved, backordered, status, reservation_id, $14::bytea,
                                  location_id),
               $15::jsonb
        from filled order by n
        returning 1),
    -- The relay's wake-up, delivered at commit.
    notified as (select pg_notify($16, ''))
    select f.id, f.priority, f.reserved, f.backordered, f.status, f.reserved_now
    from filled f cross join notified order by f.n"""


@dataclass(frozen=True, slots=True)
class ReservedEvents:
    """What every line.reserved of one fill has in common, its parts encoded by protobuf
    (handlers/events.reserved_events): apply_fills' statement adds each line's own fields
    and writes the events to the outbox with the fill."""

    exchange: str
    routing_key: str
    message_type: str
    occurred_and_sku: bytes  # fields 2 and 3 of the message
    cause: bytes  # field 12
    trace_context: str | None


@dataclass(frozen=True, slots=True)
class FilledLine:
    """A line right after a fill gave it units (as that fill left it)."""

    key: int
    priority: int
    reserved: int
    backordered: int
    status: LineStatus
    reserved_now: int


async def apply_fills(
    conn: asyncpg.Connection,
    sku: str,
    fills: Sequence[Fill],
    *,
    cause: str,
    cause_event_id: uuid.UUID | None,
    policy: FillPolicy,
    events: ReservedEvents,
) -> list[FilledLine]:
    """Writes the reservations (decision log), the lines' new reserved units and a
    line.reserved per fill into the outbox, set-based, in one round trip (events emitted
    before, in the caller's unit of work, must be flushed first: per-SKU order). Returns
    the filled lines in the order of `fills` (rank order). A line that stops waiting loses
    its ETA (it has nothing left to estimate). A line may have several fills (one per
    location, at most one per location in one call)."""
    if not fills:
        return []
    rows = await conn.fetch(
        _FILLS,
        sku,
        [f.key for f in fills],
        [f.quantity for f in fills],
        [f.queue_position for f in fills],
        [f.rule.value for f in fills],
        cause,
        cause_event_id,
        policy.value,
        [f.location_id for f in fills],
        events.exchange,
        events.routing_key,
        events.message_type,
        events.occurred_and_sku,
        events.cause,
        events.trace_context,
        NOTIFY_CHANNEL,
    )
    return [FilledLine(r[0], r[1], r[2], r[3], _STATUS[r[4]], r[5]) for r in rows]


@dataclass(frozen=True)
class RevokedLine:
    """A line right after shrinkage took units back, with the decision log row's id."""

    line: Line
    revoked_now: int
    reservation_id: int
    location_id: str


async def apply_revocations(
    conn: asyncpg.Connection,
    sku: str,
    revocations: Sequence[Revocation],
    *,
    cause_event_id: uuid.UUID,
    policy: FillPolicy,
    location_id: str,
    cause: str = "stock.adjusted",
) -> list[RevokedLine]:
    """Takes reserved units back at `location_id` (the lines wait again at their rank) and
    logs each."""
    if not revocations:
        return []
    rows = await conn.fetch(
        f"""with taken as (
                select * from unnest($2::bigint[], $3::bigint[]) as t(line, quantity)),
            logged as (
                insert into reservation (line, sku, quantity, cause, cause_event_id,
                                         queue_position, rule, fill_policy, location_id)
                select line, $1, quantity, $7, $4, 0, 'REVOKED', $5, $6 from taken
                returning id, line),
            updated as (
                update line l set reserved = l.reserved - t.quantity
                from taken t where l.id = t.line
                returning l.*)
            select {line_columns("u")},
                   t.quantity as revoked_now, g.id as reservation_id
            from updated u join taken t on t.line = u.id join logged g on g.line = u.id
            order by g.id""",
        sku,
        [r.key for r in revocations],
        [r.quantity for r in revocations],
        cause_event_id,
        policy.value,
        location_id,
        cause,
    )
    return [
        RevokedLine(line_from(r), r["revoked_now"], r["reservation_id"], location_id) for r in rows
    ]

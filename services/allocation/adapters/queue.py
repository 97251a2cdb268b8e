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


@dataclass(frozen=True, slots=True)
class ReservedEvents:
    """What every line.reserved of one fill has in common, its parts encoded by protobuf
    (handlers/events.reserved_events): apply_fills' statement adds each line's own fields
    and writes the events to the outbox with the fill."""

    exchange: str
    routing_key: str
    message_type: str
    occurred: bytes  # field 2 of the message
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
    line.reserved per fill into the outbox, set-based, in one round trip (repeatable/
    fill.sql; events emitted before, in the caller's unit of work, must be flushed first:
    per-SKU order). Returns the filled lines in the order of `fills` (rank order), each as
    its fill left it."""
    if not fills:
        return []
    rows = await conn.fetch(
        "select * from apply_fills($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15, $16)",
        sku,
        [f.key for f in fills],
        [f.quantity for f in fills],
        [f.queue_position for f in fills],
        [f.rule.value for f in fills],
        [f.location_id for f in fills],
        cause,
        cause_event_id,
        policy.value,
        events.exchange,
        events.routing_key,
        events.message_type,
        events.occurred,
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

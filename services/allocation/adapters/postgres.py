"""The allocation database: SKU rows (policy and counters), per-priority queue counters,
lines (the queue), reservations (the decision log), fulfilments and inbound.

Everything that changes a SKU's units or queue runs with its `sku` row locked (`lock_sku`),
which serialises fills of one SKU across any number of processes while other SKUs go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from services.allocation.domain.eta import Arrival
from services.allocation.domain.fill import Fill, FillPolicy, WaitingLine
from services.allocation.domain.shrinkage import Held, Revocation
from services.common.outbox import NOTIFY_CHANNEL, OutgoingEvent


@dataclass(frozen=True)
class SkuRow:
    sku: str
    fill_policy: FillPolicy
    backorders_accepted: bool
    backorder_limit: int
    free_units: int
    reserved_units: int
    fulfilled_units: int
    backordered_units: int
    waiting_lines: int
    unmatched_shrinkage_units: int


@dataclass(frozen=True)
class LineRow:
    id: int
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    customer_id: str
    placed_at: datetime
    reserved: int
    fulfilled: int
    cancelled: bool
    backordered: int
    status: str
    eta: datetime | None
    eta_version: int
    placed_priority: int


class LineRequest(NamedTuple):
    """A line to be placed, as Allocate asks for it (fields in the order the SQL takes; a
    tuple, so it spreads into query arguments without a copy: it is on Allocate's path)."""

    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    customer_id: str


@dataclass(frozen=True, slots=True)
class FilledLine:
    """A line right after a fill gave it units: the columns its line.reserved carries
    (not the whole row: a drain builds one per line), with the decision log row's id."""

    id: int
    sku: str
    order_id: str
    line_id: str
    quantity: int
    priority: int
    reserved: int
    backordered: int
    status: str
    reserved_now: int
    reservation_id: int


@dataclass(frozen=True, slots=True)
class QueuedLine:
    """A waiting line as the fill reads it: what the pure fill needs, and its rank (the
    keyset of the next chunk)."""

    id: int
    priority: int
    placed_at: datetime
    backordered: int
    allow_partial: bool


@dataclass(frozen=True)
class RevokedLine:
    """A line right after shrinkage took units back, with the decision log row's id."""

    line: LineRow
    revoked_now: int
    reservation_id: int


@dataclass(frozen=True)
class Inbound:
    inbound_id: str
    open_quantity: int
    expected_at: datetime


@dataclass(frozen=True)
class ReservationRow:
    id: int
    order_id: str
    line_id: str
    sku: str
    quantity: int
    cause: str
    cause_event_id: uuid.UUID | None
    queue_position: int
    rule: str
    fill_policy: str
    created_at: datetime


@dataclass(frozen=True)
class Fulfillment:
    fulfillment_id: str
    line: int
    quantity: int


@dataclass(frozen=True)
class TailStats:
    """Counters of a SKU's queue seen from one priority band."""

    lines_through: int  # waiting lines at this priority or higher
    units_through: int  # their backordered units
    lines_below: int  # waiting lines at a lower priority


_LINE_FIELDS = tuple(f.name for f in fields(LineRow))
_SKU_FIELDS = tuple(f.name for f in fields(SkuRow))
_SKU = ", ".join(_SKU_FIELDS)
_LINE = ", ".join(_LINE_FIELDS)
_L_LINE = ", ".join(f"l.{c}" for c in _LINE_FIELDS)

# 1-based place of waiting line `l` in its SKU's queue: waiting lines of higher priority
# (at most 9 counter rows) + waiting lines ahead in its own priority band, which are the
# band's buckets of earlier arrivals (counter rows) + the lines of its own bucket that
# arrived before it (an index range of at most one bucket). Migration 0004 explains it.
_POSITION = """case when l.backordered > 0 then 1
    + (select coalesce(sum(q.waiting_lines), 0)::bigint from sku_queue q
       where q.sku = l.sku and q.priority > l.priority)
    + (select coalesce(sum(b.waiting_lines), 0)::bigint from sku_queue_bucket b
       where b.sku = l.sku and b.priority = l.priority
         and b.bucket < l.sku_seq / queue_bucket_size())
    + (select count(*) from line a
       where a.sku = l.sku and a.priority = l.priority and a.backordered > 0
         and a.sku_seq >= l.sku_seq / queue_bucket_size() * queue_bucket_size()
         and a.sku_seq < l.sku_seq)
    else 0 end::bigint"""


def _sku(row: Mapping[str, Any]) -> SkuRow:
    return SkuRow(**{**row, "fill_policy": FillPolicy(row["fill_policy"])})


def _line(row: Mapping[str, Any]) -> LineRow:
    return LineRow(**{name: row[name] for name in _LINE_FIELDS})


async def lock_sku(conn: asyncpg.Connection, sku: str) -> SkuRow:
    """Creates the SKU if new and locks its row until the transaction ends."""
    row = await conn.fetchrow(
        f"""insert into sku as s (sku) values ($1)
            on conflict (sku) do update set updated_at = clock_timestamp()
            returning {_SKU}""",
        sku,
    )
    return _sku(row)


async def lock_sku_for_line(
    conn: asyncpg.Connection, sku: str, order_id: str, line_id: str
) -> tuple[SkuRow, bool]:
    """`lock_sku`, and whether line (order_id, line_id) was placed already: one round trip
    for Allocate. (A line committed while this waited for the lock shows up as a unique
    violation of the insert, which `run_in_transaction` retries.)"""
    row = await conn.fetchrow(
        f"""with earlier as (select 1 from line where order_id = $2 and line_id = $3)
            insert into sku as s (sku) values ($1)
            on conflict (sku) do update set updated_at = clock_timestamp()
            returning {_SKU}, exists (select 1 from earlier) as placed""",
        sku,
        order_id,
        line_id,
    )
    return _sku({name: row[name] for name in _SKU_FIELDS}), row["placed"]


async def get_sku(conn: asyncpg.Connection | asyncpg.Pool, sku: str) -> SkuRow | None:
    row = await conn.fetchrow(f"select {_SKU} from sku where sku = $1", sku)
    return _sku(row) if row else None


async def change_totals(
    conn: asyncpg.Connection,
    sku: str,
    *,
    free: int = 0,
    reserved: int = 0,
    fulfilled: int = 0,
    unmatched_shrinkage: int = 0,
    bands: Mapping[int, tuple[int, int]] | None = None,
) -> SkuRow:
    """Moves a locked SKU's counters by the given deltas; `bands` maps a priority to the
    change of its (waiting lines, backordered units). One statement."""
    bands = {p: d for p, d in (bands or {}).items() if d != (0, 0)}
    row = await conn.fetchrow(
        f"""with band as (
                select * from unnest($2::smallint[], $3::bigint[], $4::bigint[])
                    as b(priority, lines, units)),
            -- Two parts, as a CHECK fails on the row an upsert proposes before it conflicts;
            -- only a band gaining lines can be new (the SKU row is locked: no race).
            queued as (
                update sku_queue q set waiting_lines = q.waiting_lines + b.lines,
                    backordered_units = q.backordered_units + b.units
                from band b where q.sku = $1 and q.priority = b.priority
                returning 1),
            opened as (
                insert into sku_queue (sku, priority, waiting_lines, backordered_units)
                select $1, b.priority, b.lines, b.units from band b
                where not exists (
                    select 1 from sku_queue q where q.sku = $1 and q.priority = b.priority)
                returning 1)
            update sku set free_units = free_units + $5, reserved_units = reserved_units + $6,
                fulfilled_units = fulfilled_units + $7,
                unmatched_shrinkage_units = unmatched_shrinkage_units + $8,
                waiting_lines = waiting_lines + (select coalesce(sum(lines), 0) from band),
                backordered_units = backordered_units
                    + (select coalesce(sum(units), 0) from band),
                updated_at = clock_timestamp()
            where sku = $1 returning {_SKU}""",
        sku,
        list(bands),
        [d[0] for d in bands.values()],
        [d[1] for d in bands.values()],
        free,
        reserved,
        fulfilled,
        unmatched_shrinkage,
    )
    return _sku(row)


async def set_policy(
    conn: asyncpg.Connection,
    sku: str,
    *,
    fill_policy: FillPolicy | None,
    backorders_accepted: bool | None,
    backorder_limit: int | None,
) -> SkuRow:
    row = await conn.fetchrow(
        f"""update sku set fill_policy = coalesce($2, fill_policy),
                backorders_accepted = coalesce($3, backorders_accepted),
                backorder_limit = coalesce($4, backorder_limit), updated_at = clock_timestamp()
            where sku = $1 returning {_SKU}""",
        sku,
        fill_policy.value if fill_policy else None,
        backorders_accepted,
        backorder_limit,
    )
    return _sku(row)


async def find_line(
    conn: asyncpg.Connection | asyncpg.Pool, order_id: str, line_id: str
) -> LineRow | None:
    row = await conn.fetchrow(
        f"select {_LINE} from line where order_id = $1 and line_id = $2", order_id, line_id
    )
    return _line(row) if row else None


async def find_line_with_position(
    conn: asyncpg.Connection | asyncpg.Pool, order_id: str, line_id: str
) -> tuple[LineRow, int] | None:
    row = await conn.fetchrow(
        f"""select {_L_LINE}, {_POSITION} as queue_position from line l
            where l.order_id = $1 and l.line_id = $2""",
        order_id,
        line_id,
    )
    return (_line(row), row["queue_position"]) if row else None


async def line_by_id(conn: asyncpg.Connection, line_id: int) -> LineRow:
    return _line(await conn.fetchrow(f"select {_LINE} from line where id = $1", line_id))


@dataclass(frozen=True)
class NewLine:
    """A line just queued, its SKU's counters after it, the queue seen from its band and
    the SKU's open inbound (earliest first)."""

    line: LineRow
    sku: SkuRow
    stats: TailStats
    inbound: list[Inbound]


async def insert_line(conn: asyncpg.Connection, new: LineRequest) -> NewLine:
    """Queues a new line and counts it in its SKU's backlog (the SKU row must be locked, so
    this statement's snapshot has every change of the SKU). One round trip: the counters
    of its band and the ones ahead (`tail_stats`, read before the insert, plus the line)
    and the open inbound come back with it."""
    sku_columns = ", ".join(f"c.{c} as sku_{c}" for c in _SKU_FIELDS)
    row = await conn.fetchrow(
        f"""with counted as (
                update sku set backordered_units = backordered_units + $4,
                               waiting_lines = waiting_lines + 1,
                               lines_placed = lines_placed + 1
                where sku = $3
                returning {_SKU}, lines_placed),
            -- Its arrival number in the SKU (line.sku_seq): the SKU's count of lines placed.
            new_line as (
                insert into line (order_id, line_id, sku, quantity, priority, allow_partial,
                                  customer_id, placed_at, placed_priority, sku_seq)
                select $1, $2, $3, $4, $5, $6, $7, clock_timestamp(), $5, lines_placed
                from counted
                returning {_LINE}),
            queued as (
                insert into sku_queue as q (sku, priority, waiting_lines, backordered_units)
                values ($3, $5, 1, $4)
                on conflict (sku, priority) do update
                    set waiting_lines = q.waiting_lines + 1,
                        backordered_units = q.backordered_units + $4
                returning 1),
            ahead as (
                select coalesce(sum(waiting_lines) filter (where priority >= $5), 0) + 1
                           as lines_through,
                       coalesce(sum(backordered_units) filter (where priority >= $5), 0) + $4
                           as units_through,
                       coalesce(sum(waiting_lines) filter (where priority < $5), 0)
                           as lines_below
                from sku_queue where sku = $3),
            arriving as (
                select array_agg(inbound_id order by expected_at, inbound_id) as inbound_ids,
                       array_agg(open_quantity order by expected_at, inbound_id)
                           as inbound_quantities,
                       array_agg(expected_at order by expected_at, inbound_id) as inbound_at
                from inbound where sku = $3 and open_quantity > 0 and not cancelled)
            select n.*, {sku_columns}, a.*, i.*
            from new_line n, counted c, ahead a, arriving i""",
        *new,
    )
    inbound = [
        Inbound(*i)
        for i in zip(
            row["inbound_ids"] or (),
            row["inbound_quantities"] or (),
            row["inbound_at"] or (),
            strict=True,
        )
    ]
    return NewLine(
        _line(row),
        _sku({name: row[f"sku_{name}"] for name in _SKU_FIELDS}),
        TailStats(int(row["lines_through"]), int(row["units_through"]), int(row["lines_below"])),
        inbound,
    )


async def queue_line(
    pool: asyncpg.Pool,
    new: LineRequest,
    *,
    event: OutgoingEvent,
    position_field: int,
) -> tuple[LineRow, int] | None:
    """Allocate's common case, committed in one round trip (function `queue_line`,
    migration 0005): queues a new line of a SKU that has no free units and no open inbound,
    with its counters and `event` (line.backordered, to which the queue position is added
    as field `position_field`) in the outbox. None, with nothing written, when the fill, the
    SKU's policy or the ETA walk has something to decide: the caller takes the full path."""
    row = await pool.fetchrow(
        "select * from queue_line($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        *new,
        event.event_id,
        event.exchange,
        event.routing_key,
        event.message.DESCRIPTOR.full_name,
        event.message.SerializeToString(),
        position_field,
        NOTIFY_CHANNEL,
    )
    if row is None:
        return None
    line = LineRow(
        id=row["id"],
        **new._asdict(),
        placed_at=row["placed_at"],
        reserved=0,
        fulfilled=0,
        cancelled=False,
        backordered=new.quantity,
        status="BACKORDERED",
        eta=None,
        eta_version=0,
        placed_priority=new.priority,
    )
    return line, row["queue_position"]


async def queue_position(conn: asyncpg.Connection | asyncpg.Pool, line: LineRow) -> int:
    """1-based place among the SKU's waiting lines; 0 when the line is not waiting."""
    if line.backordered <= 0:
        return 0
    value = await conn.fetchval(f"select {_POSITION} from line l where l.id = $1", line.id)
    return int(value)


async def tail_stats(conn: asyncpg.Connection, sku: str, priority: int) -> TailStats:
    row = await conn.fetchrow(
        """select coalesce(sum(waiting_lines) filter (where priority >= $2), 0) as lines_through,
                  coalesce(sum(backordered_units) filter (where priority >= $2), 0)
                      as units_through,
                  coalesce(sum(waiting_lines) filter (where priority < $2), 0) as lines_below
           from sku_queue where sku = $1""",
        sku,
        priority,
    )
    return TailStats(int(row[0]), int(row[1]), int(row[2]))


async def waiting_lines(
    conn: asyncpg.Connection, sku: str, after: QueuedLine | None, limit: int
) -> list[QueuedLine]:
    """The next `limit` waiting lines of `sku` in rank order, after line `after` (keyset)."""
    if after is None:
        rows = await conn.fetch(
            """select id, priority, placed_at, backordered, allow_partial from line
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
            """(select id, priority, placed_at, backordered, allow_partial from line
                where sku = $1 and backordered > 0 and priority = $2
                  and (placed_at, id) > ($3, $4)
                order by priority desc, placed_at, id limit $5)
               union all
               (select id, priority, placed_at, backordered, allow_partial from line
                where sku = $1 and backordered > 0 and priority < $2
                order by priority desc, placed_at, id limit $5)
               order by priority desc, placed_at, id limit $5""",
            sku,
            after.priority,
            after.placed_at,
            after.id,
            limit,
        )
    return [QueuedLine(*r) for r in rows]


def as_waiting(line: LineRow | QueuedLine) -> WaitingLine:
    return WaitingLine(line.id, line.backordered, line.allow_partial)


async def apply_fills(
    conn: asyncpg.Connection,
    sku: str,
    fills: Sequence[Fill],
    *,
    cause: str,
    cause_event_id: uuid.UUID | None,
    policy: FillPolicy,
) -> list[FilledLine]:
    """Writes the reservations (decision log) and the lines' new reserved units, set-based;
    returns the filled lines in the order of `fills` (rank order). A line that stops waiting
    loses its ETA (it has nothing left to estimate)."""
    if not fills:
        return []
    rows = await conn.fetch(
        """with fill as (
                select * from unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
                    with ordinality as f(line, quantity, queue_position, rule, n)),
            logged as (
                insert into reservation (line, sku, quantity, cause, cause_event_id,
                                         queue_position, rule, fill_policy)
                select line, $1, quantity, $6, $7, queue_position, rule, $8 from fill
                order by n
                returning id, line),
            updated as (
                update line l set reserved = l.reserved + f.quantity,
                    eta = case when l.backordered = f.quantity then null else l.eta end
                from fill f where l.id = f.line
                returning l.id, l.sku, l.order_id, l.line_id, l.quantity, l.priority,
                          l.reserved, l.backordered, l.status)
            select u.*, f.quantity as reserved_now, g.id as reservation_id
            from updated u join fill f on f.line = u.id join logged g on g.line = u.id
            -- Fill order (rank order), which the line.reserved events keep: a whole fill's
            -- queue_position is 1 for each line, so it cannot order them.
            order by f.n""",
        sku,
        [f.key for f in fills],
        [f.quantity for f in fills],
        [f.queue_position for f in fills],
        [f.rule.value for f in fills],
        cause,
        cause_event_id,
        policy.value,
    )
    return [FilledLine(*r) for r in rows]


async def held_lines(
    conn: asyncpg.Connection, sku: str, after: tuple[int, datetime, int] | None, limit: int
) -> list[tuple[Held, tuple[int, datetime, int]]]:
    """Lines holding reserved units, lowest rank first (lowest priority, newest), keyset."""
    rows = await conn.fetch(
        """select id, reserved, priority, placed_at from line
           where sku = $1 and reserved > 0
             and ($2::smallint is null or priority > $2
                  or (priority = $2 and (placed_at, id) < ($3, $4)))
           order by priority, placed_at desc, id desc limit $5""",
        sku,
        after[0] if after else None,
        after[1] if after else None,
        after[2] if after else None,
        limit,
    )
    return [(Held(r["id"], r["reserved"]), (r["priority"], r["placed_at"], r["id"])) for r in rows]


async def apply_revocations(
    conn: asyncpg.Connection,
    sku: str,
    revocations: Sequence[Revocation],
    *,
    cause_event_id: uuid.UUID,
    policy: FillPolicy,
) -> list[RevokedLine]:
    """Takes reserved units back (the lines wait again at their rank) and logs each."""
    if not revocations:
        return []
    rows = await conn.fetch(
        f"""with taken as (
                select * from unnest($2::bigint[], $3::bigint[]) as t(line, quantity)),
            logged as (
                insert into reservation (line, sku, quantity, cause, cause_event_id,
                                         queue_position, rule, fill_policy)
                select line, $1, quantity, 'stock.adjusted', $4, 0, 'REVOKED', $5 from taken
                returning id, line),
            updated as (
                update line l set reserved = l.reserved - t.quantity
                from taken t where l.id = t.line
                returning l.*)
            select {", ".join("u." + c for c in _LINE_FIELDS)},
                   t.quantity as revoked_now, g.id as reservation_id
            from updated u join taken t on t.line = u.id join logged g on g.line = u.id
            order by g.id""",
        sku,
        [r.key for r in revocations],
        [r.quantity for r in revocations],
        cause_event_id,
        policy.value,
    )
    return [RevokedLine(_line(r), r["revoked_now"], r["reservation_id"]) for r in rows]


async def cancel_line(conn: asyncpg.Connection, line_id: int) -> LineRow:
    row = await conn.fetchrow(
        f"""update line set cancelled = true, reserved = 0, eta = null
            where id = $1 returning {_LINE}""",
        line_id,
    )
    return _line(row)


async def find_fulfillment(conn: asyncpg.Connection, fulfillment_id: str) -> Fulfillment | None:
    row = await conn.fetchrow(
        "select fulfillment_id, line, quantity from fulfillment where fulfillment_id = $1",
        fulfillment_id,
    )
    return Fulfillment(**row) if row else None


async def fulfil(
    conn: asyncpg.Connection, line_id: int, fulfillment_id: str, quantity: int
) -> LineRow:
    row = await conn.fetchrow(
        f"""with recorded as (
                insert into fulfillment (fulfillment_id, line, quantity) values ($2, $1, $3))
            update line set reserved = reserved - $3, fulfilled = fulfilled + $3
            where id = $1 returning {_LINE}""",
        line_id,
        fulfillment_id,
        quantity,
    )
    return _line(row)


async def set_priority(conn: asyncpg.Connection, line_id: int, priority: int) -> LineRow:
    row = await conn.fetchrow(
        f"update line set priority = $2 where id = $1 returning {_LINE}", line_id, priority
    )
    return _line(row)


async def upsert_inbound(
    conn: asyncpg.Connection,
    *,
    inbound_id: str,
    sku: str,
    open_quantity: int,
    expected_at: datetime,
    cancelled: bool,
    version: int,
) -> bool:
    """Stores an inbound's state unless a newer version is already stored."""
    applied = await conn.fetchval(
        """insert into inbound as i (inbound_id, sku, open_quantity, expected_at, cancelled,
                                     version)
           values ($1, $2, $3, $4, $5, $6)
           on conflict (inbound_id) do update
               set sku = excluded.sku, open_quantity = excluded.open_quantity,
                   expected_at = excluded.expected_at, cancelled = excluded.cancelled,
                   version = excluded.version
               where i.version < excluded.version
           returning true""",
        inbound_id,
        sku,
        open_quantity,
        expected_at,
        cancelled,
        version,
    )
    return bool(applied)


async def open_inbound(conn: asyncpg.Connection | asyncpg.Pool, sku: str) -> list[Inbound]:
    """The SKU's open inbound, earliest first."""
    rows = await conn.fetch(
        """select inbound_id, open_quantity, expected_at from inbound
           where sku = $1 and open_quantity > 0 and not cancelled
           order by expected_at, inbound_id""",
        sku,
    )
    return [Inbound(**r) for r in rows]


def as_arrival(inbound: Inbound) -> Arrival:
    return Arrival(inbound.expected_at, inbound.open_quantity)


async def eta_candidates(
    conn: asyncpg.Connection, sku: str, *, limit: int, units_cap: int | None
) -> list[WaitingLine]:
    """Waiting lines in rank order for the ETA walk: at most `limit`, and (STRICT) no
    further than the first line whose units ahead reach `units_cap` (the whole supply)."""
    found: list[WaitingLine] = []
    after: QueuedLine | None = None
    units = 0
    while len(found) < limit:
        chunk = await waiting_lines(conn, sku, after, min(2000, limit - len(found)))
        for line in chunk:
            if units_cap is not None and units >= units_cap:
                return found
            found.append(as_waiting(line))
            units += line.backordered
        if len(chunk) < 2000:
            break
        after = chunk[-1]
    return found


async def set_etas(
    conn: asyncpg.Connection, sku: str, known: Mapping[int, datetime], *, only: bool = False
) -> list[LineRow]:
    """Stores the ETAs `known` (line id -> ETA); every other line of the SKU with an ETA
    loses it, unless `only`. Returns the lines whose ETA changed (version bumped)."""
    rows = await conn.fetch(
        f"""with known as (
                select * from unnest($2::bigint[], $3::timestamptz[]) as k(id, eta)),
            target as (
                select id, eta from known
                union all
                select l.id, null::timestamptz from line l
                where not $4 and l.sku = $1 and l.eta is not null
                  and not exists (select 1 from known k where k.id = l.id))
            update line l set eta = t.eta, eta_version = l.eta_version + 1
            from target t where l.id = t.id and l.eta is distinct from t.eta
            returning {_L_LINE}""",
        sku,
        list(known),
        list(known.values()),
        only,
    )
    return [_line(r) for r in rows]


async def list_lines(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    sku: str | None,
    order_id: str | None,
    status: str | None,
    after_id: int,
    limit: int,
) -> list[tuple[LineRow, int]]:
    """Lines in placement order after `after_id`, each with its queue position."""
    where, args = _filters({"l.sku": sku, "l.order_id": order_id, "l.status": status})
    rows = await conn.fetch(
        f"""select {_L_LINE}, {_POSITION} as queue_position from line l
            where {where} l.id > ${len(args) + 1}
            order by l.id limit ${len(args) + 2}""",
        *args,
        after_id,
        limit,
    )
    return [(_line(r), r["queue_position"]) for r in rows]


async def list_reservations(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    line: int | None,
    sku: str | None,
    after_id: int,
    limit: int,
) -> list[ReservationRow]:
    where, args = _filters({"r.line": line, "r.sku": sku})
    rows = await conn.fetch(
        f"""select r.id, l.order_id, l.line_id, r.sku, r.quantity, r.cause, r.cause_event_id,
                  r.queue_position, r.rule, r.fill_policy, r.created_at
           from reservation r join line l on l.id = r.line
           where {where} r.id > ${len(args) + 1}
           order by r.id limit ${len(args) + 2}""",
        *args,
        after_id,
        limit,
    )
    return [ReservationRow(**r) for r in rows]


def _filters(equal: Mapping[str, object]) -> tuple[str, list[object]]:
    """`col = $n and ...` for the given (non-None) values: a plan per filter combination,
    so each can use its index (column names are ours, never the client's)."""
    given = [(column, value) for column, value in equal.items() if value is not None]
    where = "".join(f"{column} = ${i} and " for i, (column, _) in enumerate(given, 1))
    return where, [value for _, value in given]


async def mark_event_processed(
    conn: asyncpg.Connection, event_id: uuid.UUID, routing_key: str
) -> bool:
    """Records a consumed event; False when it was applied before (a redelivery)."""
    inserted = await conn.fetchval(
        """insert into processed_event (event_id, routing_key) values ($1, $2)
           on conflict (event_id) do nothing returning true""",
        event_id,
        routing_key,
    )
    return bool(inserted)

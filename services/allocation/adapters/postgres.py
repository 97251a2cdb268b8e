"""The allocation database: SKU rows (policy and counters), lines (the queue), reservations.

Everything that changes a SKU's units runs with its `sku` row locked (`lock_sku`), which
serialises fills of one SKU across any number of processes while other SKUs go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import asyncpg

from services.allocation.domain.fill import Fill, FillPolicy, WaitingLine


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


@dataclass(frozen=True)
class FilledLine:
    """A line right after a fill gave it units, with the decision log row's id."""

    line: LineRow
    reserved_now: int
    reservation_id: int


_SKU = (
    "sku, fill_policy, backorders_accepted, backorder_limit, free_units, reserved_units, "
    "fulfilled_units, backordered_units, waiting_lines"
)
_LINE = (
    "id, order_id, line_id, sku, quantity, priority, allow_partial, customer_id, placed_at, "
    "reserved, fulfilled, cancelled, backordered, status"
)


_LINE_FIELDS = tuple(f.name for f in fields(LineRow))
_SKU_FIELDS = tuple(f.name for f in fields(SkuRow))


def _sku(row: Mapping[str, Any]) -> SkuRow:
    return SkuRow(**{**row, "fill_policy": FillPolicy(row["fill_policy"])})


async def lock_sku(conn: asyncpg.Connection, sku: str) -> SkuRow:
    """Creates the SKU if new and locks its row until the transaction ends."""
    row = await conn.fetchrow(
        f"""insert into sku as s (sku) values ($1)
            on conflict (sku) do update set updated_at = clock_timestamp()
            returning {_SKU}""",
        sku,
    )
    return _sku(row)


async def add_free_units(conn: asyncpg.Connection, sku: str, units: int) -> SkuRow:
    row = await conn.fetchrow(
        f"""update sku set free_units = free_units + $2, updated_at = clock_timestamp()
            where sku = $1 returning {_SKU}""",
        sku,
        units,
    )
    return _sku(row)


async def get_sku(conn: asyncpg.Connection | asyncpg.Pool, sku: str) -> SkuRow | None:
    row = await conn.fetchrow(f"select {_SKU} from sku where sku = $1", sku)
    return _sku(row) if row else None


async def find_line(
    conn: asyncpg.Connection | asyncpg.Pool, order_id: str, line_id: str
) -> LineRow | None:
    row = await conn.fetchrow(
        f"select {_LINE} from line where order_id = $1 and line_id = $2", order_id, line_id
    )
    return LineRow(**row) if row else None


async def insert_line(
    conn: asyncpg.Connection,
    *,
    order_id: str,
    line_id: str,
    sku: str,
    quantity: int,
    priority: int,
    allow_partial: bool,
    customer_id: str,
) -> tuple[LineRow, SkuRow]:
    """Queues a new line and counts it in its SKU's backlog (the SKU row must be locked).
    Returns the line and the SKU row with its counters after the insert."""
    sku_columns = ", ".join(f"c.{c.strip()} as sku_{c.strip()}" for c in _SKU.split(","))
    row = await conn.fetchrow(
        f"""with new_line as (
                insert into line (order_id, line_id, sku, quantity, priority, allow_partial,
                                  customer_id, placed_at)
                values ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
                returning {_LINE}),
            counted as (
                update sku set backordered_units = backordered_units + $4,
                               waiting_lines = waiting_lines + 1
                where sku = $3
                returning {_SKU})
            select n.*, {sku_columns} from new_line n, counted c""",
        order_id,
        line_id,
        sku,
        quantity,
        priority,
        allow_partial,
        customer_id,
    )
    line = LineRow(**{name: row[name] for name in _LINE_FIELDS})
    return line, _sku({name: row[f"sku_{name}"] for name in _SKU_FIELDS})


async def queue_position(conn: asyncpg.Connection | asyncpg.Pool, line: LineRow) -> int:
    """1-based place among the SKU's waiting lines; 0 when the line is not waiting."""
    if line.backordered <= 0:
        return 0
    ahead = await conn.fetchval(
        """select count(*) from line
           where sku = $1 and backordered > 0
             and (priority > $2 or (priority = $2 and (placed_at, id) < ($3, $4)))""",
        line.sku,
        line.priority,
        line.placed_at,
        line.id,
    )
    return int(ahead) + 1


async def waiting_lines(
    conn: asyncpg.Connection, sku: str, after: LineRow | None, limit: int
) -> list[LineRow]:
    """The next `limit` waiting lines of `sku` in rank order, after line `after` (keyset)."""
    if after is None:
        rows = await conn.fetch(
            f"""select {_LINE} from line where sku = $1 and backordered > 0
                order by priority desc, placed_at, id limit $2""",
            sku,
            limit,
        )
    else:
        rows = await conn.fetch(
            f"""select {_LINE} from line where sku = $1 and backordered > 0
                  and (priority < $2 or (priority = $2 and (placed_at, id) > ($3, $4)))
                order by priority desc, placed_at, id limit $5""",
            sku,
            after.priority,
            after.placed_at,
            after.id,
            limit,
        )
    return [LineRow(**r) for r in rows]


def as_waiting(line: LineRow) -> WaitingLine:
    return WaitingLine(key=line.id, backordered=line.backordered, allow_partial=line.allow_partial)


async def apply_fills(
    conn: asyncpg.Connection,
    sku: str,
    fills: Sequence[Fill],
    *,
    cause: str,
    cause_event_id: uuid.UUID | None,
    policy: FillPolicy,
) -> list[FilledLine]:
    """Writes the reservations (decision log) and the lines' new reserved units, set-based."""
    if not fills:
        return []
    rows = await conn.fetch(
        f"""with fill as (
                select * from unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::text[])
                    as f(line, quantity, queue_position, rule)),
            logged as (
                insert into reservation (line, sku, quantity, cause, cause_event_id,
                                         queue_position, rule, fill_policy)
                select line, $1, quantity, $6, $7, queue_position, rule, $8 from fill
                returning id, line),
            updated as (
                update line l set reserved = l.reserved + f.quantity
                from fill f where l.id = f.line
                returning l.*)
            select {", ".join("u." + c.strip() for c in _LINE.split(","))},
                   f.quantity as reserved_now, g.id as reservation_id
            from updated u join fill f on f.line = u.id join logged g on g.line = u.id
            order by f.queue_position, u.id""",
        sku,
        [f.key for f in fills],
        [f.quantity for f in fills],
        [f.queue_position for f in fills],
        [f.rule.value for f in fills],
        cause,
        cause_event_id,
        policy.value,
    )
    return [
        FilledLine(
            LineRow(**{name: r[name] for name in _LINE_FIELDS}),
            r["reserved_now"],
            r["reservation_id"],
        )
        for r in rows
    ]


async def record_fill_totals(
    conn: asyncpg.Connection, sku: str, units: int, lines_done: int
) -> SkuRow:
    """Moves `units` from free/backordered to reserved; `lines_done` lines left the queue."""
    row = await conn.fetchrow(
        f"""update sku set free_units = free_units - $2, reserved_units = reserved_units + $2,
                       backordered_units = backordered_units - $2,
                       waiting_lines = waiting_lines - $3, updated_at = clock_timestamp()
            where sku = $1 returning {_SKU}""",
        sku,
        units,
        lines_done,
    )
    return _sku(row)


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

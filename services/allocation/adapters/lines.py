"""Lines: finding and listing them (with their queue positions), and the changes of one
line (cancel, fulfill, priority, ETAs). Placing a new line is `placement`; the fill's and
shrinkage's set-based writes are `queue`. `key` is a line's database key; `line_id` the
client's id of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.allocation.adapters.rows import (
    ALLOCATIONS,
    LINE_COLUMNS,
    POSITION,
    Executor,
    filters,
    line_columns,
    line_from,
)
from services.allocation.domain.model import Line, LineStatus


async def find_line(conn: Executor, order_id: str, line_id: str) -> Line | None:
    row = await conn.fetchrow(
        f"select {LINE_COLUMNS} from line where order_id = $1 and line_id = $2", order_id, line_id
    )
    return line_from(row) if row else None


async def find_line_with_position(
    conn: Executor, order_id: str, line_id: str
) -> tuple[Line, int, list[Allocation]] | None:
    row = await conn.fetchrow(
        f"""select {line_columns("l")}, {POSITION} as queue_position,
                   {ALLOCATIONS} as allocations
            from line l where l.order_id = $1 and l.line_id = $2""",
        order_id,
        line_id,
    )
    return (line_from(row), row["queue_position"], _allocations(row)) if row else None


def _allocations(row: Mapping[str, Any]) -> list[Allocation]:
    return [Allocation(*a) for a in row["allocations"] or ()]


async def line_by_key(conn: asyncpg.Connection, key: int) -> Line:
    return line_from(await conn.fetchrow(f"select {LINE_COLUMNS} from line where id = $1", key))


async def queue_position(conn: Executor, line: Line) -> int:
    """1-based place among the SKU's waiting lines; 0 when the line is not waiting."""
    if line.backordered <= 0:
        return 0
    value = await conn.fetchval(f"select {POSITION} from line l where l.id = $1", line.key)
    return int(value)


async def list_lines(
    conn: Executor,
    *,
    sku: str | None,
    order_id: str | None,
    status: LineStatus | None,
    after_key: int,
    limit: int,
    location_id: str | None = None,
) -> list[tuple[Line, int, list[Allocation]]]:
    """Lines in placement order after `after_key`, each with its queue position; with
    `location_id`, only lines holding (reserved or shipped) units there."""
    where, args = filters({"l.sku": sku, "l.order_id": order_id, "l.status": status})
    if location_id is not None:
        args.append(location_id)
        where += f"""exists (select 1 from line_allocations(l.id) a
                             where a.location_id = ${len(args)}) and """
    rows = await conn.fetch(
        f"""select {line_columns("l")}, {POSITION} as queue_position,
                   {ALLOCATIONS} as allocations
            from line l
            where {where} l.id > ${len(args) + 1}
            order by l.id limit ${len(args) + 2}""",
        *args,
        after_key,
        limit,
    )
    return [(line_from(r), r["queue_position"], _allocations(r)) for r in rows]


async def cancel_line(conn: asyncpg.Connection, key: int) -> Line:
    row = await conn.fetchrow(
        # Its units not shipped count as cancelled demand today (repeatable/planning.sql).
        f"""with cancelled as (
                update line set cancelled = true, reserved = 0, eta = null
                where id = $1 returning *)
            select {LINE_COLUMNS}
            from cancelled line,
                 record_demand_cancelled(line.sku, line.quantity - line.fulfilled,
                                         clock_timestamp())""",
        key,
    )
    return line_from(row)


@dataclass(frozen=True)
class Fulfillment:
    fulfillment_id: str
    line_key: int
    quantity: int
    location_id: str


async def find_fulfillment(conn: asyncpg.Connection, fulfillment_id: str) -> Fulfillment | None:
    row = await conn.fetchrow(
        """select fulfillment_id, line as line_key, quantity, location_id from fulfillment
           where fulfillment_id = $1""",
        fulfillment_id,
    )
    return Fulfillment(**row) if row else None


async def fulfill(
    conn: asyncpg.Connection, key: int, fulfillment_id: str, quantity: int, location_id: str
) -> Line:
    row = await conn.fetchrow(
        f"""with recorded as (
                insert into fulfillment (fulfillment_id, line, quantity, location_id)
                values ($2, $1, $3, $4))
            update line set reserved = reserved - $3, fulfilled = fulfilled + $3
            where id = $1 returning {LINE_COLUMNS}""",
        key,
        fulfillment_id,
        quantity,
        location_id,
    )
    return line_from(row)


@dataclass(frozen=True)
class Allocation:
    """A line's units at one location."""

    location_id: str
    reserved: int
    fulfilled: int


async def allocations(conn: Executor, key: int) -> list[Allocation]:
    """Where line `key` holds and shipped units, by location_id (repeatable/allocations.sql)."""
    rows = await conn.fetch("select * from line_allocations($1)", key)
    return [Allocation(*r) for r in rows]


async def set_priority(conn: asyncpg.Connection, key: int, priority: int) -> Line:
    row = await conn.fetchrow(
        f"update line set priority = $2 where id = $1 returning {LINE_COLUMNS}", key, priority
    )
    return line_from(row)


async def set_etas(
    conn: asyncpg.Connection, sku: str, known: Mapping[int, datetime], *, only: bool = False
) -> list[Line]:
    """Stores the ETAs `known` (line key -> ETA); every other line of the SKU with an ETA
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
            returning {line_columns("l")}""",
        sku,
        list(known),
        list(known.values()),
        only,
    )
    return [line_from(r) for r in rows]

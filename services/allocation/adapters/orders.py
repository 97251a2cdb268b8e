"""Orders placed by AllocateOrder (table customer_order, migration 0009). Their lines are
ordinary lines (adapters/lines.py); this is the row of the order as a whole."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.allocation.adapters.lines import Allocation, list_lines
from services.allocation.adapters.rows import Executor
from services.allocation.domain.model import Line


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    priority: int
    placed_priority: int
    customer_id: str
    ship_complete: bool
    placed_at: datetime
    line_count: int
    version: int


_COLUMNS = (
    "order_id, priority, placed_priority, customer_id, ship_complete, placed_at, line_count,"
    " version"
)


def _order_from(row: asyncpg.Record) -> OrderRow:
    return OrderRow(*(row[c.strip()] for c in _COLUMNS.split(",")))


async def lock_order_id(conn: asyncpg.Connection, order_id: str, *, shared: bool) -> None:
    """Holds order_id's advisory lock until the transaction ends, so an order_id goes to
    Allocate or to AllocateOrder: AllocateOrder takes it exclusive, Allocate (placement.sql
    `queue_line`, and its full path) shared, so concurrent Allocates of one order's lines do
    not wait for each other."""
    how = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await conn.execute(f"select {how}(order_lock_key($1))", order_id)


async def order_taken_by_allocate(conn: Executor, order_id: str) -> bool:
    """Whether Allocate placed a line with this order_id."""
    return bool(
        await conn.fetchval(
            """select exists (select 1 from line where order_id = $1)
                      and not exists (select 1 from customer_order where order_id = $1)""",
            order_id,
        )
    )


async def is_order(conn: Executor, order_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "select exists (select 1 from customer_order where order_id = $1)", order_id
        )
    )


async def find_order(conn: Executor, order_id: str) -> OrderRow | None:
    row = await conn.fetchrow(
        f"select {_COLUMNS} from customer_order where order_id = $1", order_id
    )
    return _order_from(row) if row else None


async def insert_order(
    conn: asyncpg.Connection,
    order_id: str,
    priority: int,
    customer_id: str,
    ship_complete: bool,
    line_count: int,
) -> OrderRow:
    row = await conn.fetchrow(
        f"""insert into customer_order (order_id, priority, placed_priority, customer_id,
                                        ship_complete, placed_at, line_count)
            values ($1, $2, $2, $3, $4, clock_timestamp(), $5)
            returning {_COLUMNS}""",
        order_id,
        priority,
        customer_id,
        ship_complete,
        line_count,
    )
    return _order_from(row)


async def set_lines_placed_at(conn: asyncpg.Connection, order_id: str, placed_at: datetime) -> None:
    """Gives every line of the order the order's placed_at. Every SKU of the order was locked
    before `placed_at` was taken, so no line of those SKUs ranks between it and the lines'
    own clock readings: rank order (placed_at, id) stays arrival order (sku_seq)."""
    await conn.execute(
        "update line set placed_at = $2 where order_id = $1 and placed_at <> $2",
        order_id,
        placed_at,
    )


async def set_priority(conn: asyncpg.Connection, order_id: str, priority: int) -> None:
    await conn.execute(
        "update customer_order set priority = $2 where order_id = $1", order_id, priority
    )
    await conn.execute(
        "update order_waiting_sku set priority = $2 where order_id = $1", order_id, priority
    )


async def bump_version(conn: asyncpg.Connection, order_id: str) -> int:
    return int(
        await conn.fetchval(
            "update customer_order set version = version + 1 where order_id = $1 returning version",
            order_id,
        )
    )


async def order_lines(conn: Executor, order_id: str) -> list[tuple[Line, int, list[Allocation]]]:
    """Every line of the order with its queue position and allocations, in request order
    (placement order)."""
    rows: list[tuple[Line, int, list[Allocation]]] = []
    after = 0
    while True:
        page = await list_lines(
            conn, sku=None, order_id=order_id, status=None, after_key=after, limit=500
        )
        rows.extend(page)
        if len(page) < 500:
            return rows
        after = page[-1][0].key

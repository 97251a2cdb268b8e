"""SKU rows: a SKU's policy and counters (units free, reserved, fulfilled, backordered,
waiting lines) and its per-priority queue counters (`sku_queue`). The SKU row is the lock
of everything that changes its units or queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from services.allocation.adapters.rows import SKU_COLUMNS, Executor, sku_from
from services.allocation.domain.fill import FillPolicy
from services.allocation.domain.model import Sku


@dataclass(frozen=True)
class TailStats:
    """Counters of a SKU's queue seen from one priority band."""

    lines_through: int  # waiting lines at this priority or higher
    units_through: int  # their backordered units
    lines_below: int  # waiting lines at a lower priority


async def lock_sku(conn: asyncpg.Connection, sku: str) -> Sku:
    """Creates the SKU if new and locks its row until the transaction ends."""
    row = await conn.fetchrow(
        f"""insert into sku as s (sku) values ($1)
            on conflict (sku) do update set updated_at = clock_timestamp()
            returning {SKU_COLUMNS}""",
        sku,
    )
    return sku_from(row)


async def lock_sku_for_line(
    conn: asyncpg.Connection, sku: str, order_id: str, line_id: str
) -> tuple[Sku, bool]:
    """`lock_sku`, and whether line (order_id, line_id) was placed already: one round trip
    for Allocate. (A line committed while this waited for the lock shows up as a unique
    violation of the insert, which `run_in_transaction` retries.)"""
    row = await conn.fetchrow(
        f"""with earlier as (select 1 from line where order_id = $2 and line_id = $3)
            insert into sku as s (sku) values ($1)
            on conflict (sku) do update set updated_at = clock_timestamp()
            returning {SKU_COLUMNS}, exists (select 1 from earlier) as placed""",
        sku,
        order_id,
        line_id,
    )
    return sku_from(row), row["placed"]


async def get_sku(conn: Executor, sku: str) -> Sku | None:
    row = await conn.fetchrow(f"select {SKU_COLUMNS} from sku where sku = $1", sku)
    return sku_from(row) if row else None


async def change_totals(
    conn: asyncpg.Connection,
    sku: str,
    *,
    free: int = 0,
    reserved: int = 0,
    fulfilled: int = 0,
    unmatched_shrinkage: int = 0,
    bands: Mapping[int, tuple[int, int]] | None = None,
) -> Sku:
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
            where sku = $1 returning {SKU_COLUMNS}""",
        sku,
        list(bands),
        [d[0] for d in bands.values()],
        [d[1] for d in bands.values()],
        free,
        reserved,
        fulfilled,
        unmatched_shrinkage,
    )
    return sku_from(row)


async def set_policy(
    conn: asyncpg.Connection,
    sku: str,
    *,
    fill_policy: FillPolicy | None,
    backorders_accepted: bool | None,
    backorder_limit: int | None,
) -> Sku:
    row = await conn.fetchrow(
        f"""update sku set fill_policy = coalesce($2, fill_policy),
                backorders_accepted = coalesce($3, backorders_accepted),
                backorder_limit = coalesce($4, backorder_limit), updated_at = clock_timestamp()
            where sku = $1 returning {SKU_COLUMNS}""",
        sku,
        fill_policy.value if fill_policy else None,
        backorders_accepted,
        backorder_limit,
    )
    return sku_from(row)


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

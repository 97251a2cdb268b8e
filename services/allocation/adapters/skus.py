"""SKU rows: a SKU's policy and counters (units free, reserved, fulfilled, backordered,
waiting lines) and its per-priority queue counters (`sku_queue`). The SKU row is the lock
of everything that changes its units or queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from services.allocation.adapters.rows import SKU_COLUMNS, Executor, sku_from
from services.allocation.domain.fill import DEFAULT_LOCATION, FillPolicy, LocationStrategy
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


# Per location: (change of its free units, change of its reserved units).
Moves = Mapping[str, tuple[int, int]]


async def change_totals(
    conn: asyncpg.Connection,
    sku: str,
    *,
    at: Moves | None = None,
    fulfilled: int = 0,
    unmatched_shrinkage: int = 0,
    bands: Mapping[int, tuple[int, int]] | None = None,
) -> Sku:
    """Moves a locked SKU's counters by the given deltas: `at` maps a location to the change
    of its (free, reserved) units (the SKU's own are their sums); `bands` maps a priority to
    the change of its (waiting lines, backordered units). One statement (the SQL function
    change_totals, repeatable/counters.sql, which Allocate's one-round-trip reservation
    calls too)."""
    bands = {p: d for p, d in (bands or {}).items() if d != (0, 0)}
    moves = {loc: d for loc, d in (at or {}).items() if d != (0, 0)}
    row = await conn.fetchrow(
        f"""select {SKU_COLUMNS} from change_totals($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                                                     $11)""",
        sku,
        list(bands),
        [d[0] for d in bands.values()],
        [d[1] for d in bands.values()],
        sum(d[0] for d in moves.values()),
        sum(d[1] for d in moves.values()),
        fulfilled,
        unmatched_shrinkage,
        list(moves),
        [d[0] for d in moves.values()],
        [d[1] for d in moves.values()],
    )
    return sku_from(row)


async def set_policy(
    conn: asyncpg.Connection,
    sku: str,
    *,
    fill_policy: FillPolicy | None,
    backorders_accepted: bool | None,
    backorder_limit: int | None,
    location_strategy: LocationStrategy | None = None,
    max_units_per_customer: int | None = None,
) -> Sku:
    row = await conn.fetchrow(
        f"""update sku set fill_policy = coalesce($2, fill_policy),
                backorders_accepted = coalesce($3, backorders_accepted),
                backorder_limit = coalesce($4, backorder_limit),
                location_strategy = coalesce($5, location_strategy),
                max_units_per_customer = coalesce($6, max_units_per_customer),
                updated_at = clock_timestamp()
            where sku = $1 returning {SKU_COLUMNS}""",
        sku,
        fill_policy.value if fill_policy else None,
        backorders_accepted,
        backorder_limit,
        location_strategy.value if location_strategy else None,
        max_units_per_customer,
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


@dataclass(frozen=True)
class SkuAt:
    """A SKU at one location, as the allocation service knows it."""

    location_id: str
    fill_rank: int
    active: bool
    free_units: int
    reserved_units: int
    inbound_units: int


async def sku_locations(conn: Executor, sku: str) -> list[SkuAt]:
    """The SKU at each location that has or expects units of it, by fill_rank then
    location_id."""
    rows = await conn.fetch(
        """with inbound_at as (
                select location_id, sum(open_quantity) as units from inbound
                where sku = $1 and open_quantity > 0 and not cancelled group by location_id),
            here as (
                select location_id from sku_location
                where sku = $1 and (free_units > 0 or reserved_units > 0)
                union select location_id from inbound_at)
           select h.location_id, l.fill_rank, l.active,
                  coalesce(s.free_units, 0) as free_units,
                  coalesce(s.reserved_units, 0) as reserved_units,
                  coalesce(i.units, 0)::bigint as inbound_units
           from here h join location l using (location_id)
           left join sku_location s on s.sku = $1 and s.location_id = h.location_id
           left join inbound_at i on i.location_id = h.location_id
           order by l.fill_rank, h.location_id""",
        sku,
    )
    return [SkuAt(*r) for r in rows]


async def free_at(conn: asyncpg.Connection, sku: str) -> list[tuple[str, int, int]]:
    """(location_id, free units, fill_rank) of each active location where a locked SKU has
    free units: what the fill may give."""
    rows = await conn.fetch(
        """select s.location_id, s.free_units, l.fill_rank
           from sku_location s join location l using (location_id)
           where s.sku = $1 and s.free_units > 0 and l.active""",
        sku,
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def location_free(conn: asyncpg.Connection, sku: str, location_id: str) -> int:
    value = await conn.fetchval(
        "select free_units from sku_location where sku = $1 and location_id = $2",
        sku,
        location_id,
    )
    return int(value or 0)


async def reserved_only_at(conn: asyncpg.Connection, sku: str, location_id: str) -> bool:
    """Whether a SKU's reserved units are all at `location_id` (none elsewhere)."""
    return not await conn.fetchval(
        """select exists (select 1 from sku_location
                          where sku = $1 and location_id <> $2 and reserved_units > 0)""",
        sku,
        location_id,
    )


async def ensure_location(conn: asyncpg.Connection, location_id: str) -> None:
    """A location first heard of in a stock event: active, ranked last, until its
    location.updated arrives (version 0 loses to any). `default` always exists (migration
    0007; no location is ever deleted): no round trip for it."""
    if location_id == DEFAULT_LOCATION:
        return
    await conn.execute(
        "insert into location (location_id) values ($1) on conflict do nothing", location_id
    )


async def upsert_location(
    conn: asyncpg.Connection,
    *,
    location_id: str,
    name: str,
    fill_rank: int,
    active: bool,
    version: int,
) -> bool:
    """Stores a location's state unless a newer version is stored; whether it did."""
    applied = await conn.fetchval(
        """insert into location as l (location_id, name, fill_rank, active, version)
           values ($1, $2, $3, $4, $5)
           on conflict (location_id) do update
               set name = excluded.name, fill_rank = excluded.fill_rank,
                   active = excluded.active, version = excluded.version
               where l.version < excluded.version
           returning true""",
        location_id,
        name,
        fill_rank,
        active,
        version,
    )
    return bool(applied)


async def skus_at(conn: asyncpg.Connection, location_id: str) -> list[str]:
    """The SKUs with free units or open inbound at a location, in name order (the order
    their locks are taken in)."""
    rows = await conn.fetch(
        """select sku from sku_location where location_id = $1 and free_units > 0
           union
           select sku from inbound
           where location_id = $1 and open_quantity > 0 and not cancelled
           order by 1""",
        location_id,
    )
    return [r[0] for r in rows]


async def known_locations(conn: Executor, location_ids: list[str]) -> set[str]:
    rows = await conn.fetch(
        "select location_id from location where location_id = any($1::text[])", location_ids
    )
    return {r[0] for r in rows}


async def fill_ranks(conn: asyncpg.Connection, location_ids: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "select location_id, fill_rank from location where location_id = any($1::text[])",
        location_ids,
    )
    return {r[0]: r[1] for r in rows}

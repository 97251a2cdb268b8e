"""Planning's tables (migration 0011): demand history and planning parameters. Live demand
is recorded by the database itself as lines are placed and cancelled
(repeatable/planning.sql); this module writes imports and parameters."""

from __future__ import annotations

import datetime as dt
from dataclasses import fields

import asyncpg

from services.allocation.adapters.rows import Executor
from services.allocation.planning.params import PlanningParams

_PARAM_FIELDS = tuple(f.name for f in fields(PlanningParams))
_PARAM_COLUMNS = ", ".join(_PARAM_FIELDS)


async def today(conn: Executor) -> dt.date:
    """Today in the planning time zone."""
    day = await conn.fetchval("select planning_day(clock_timestamp())")
    assert isinstance(day, dt.date)
    return day


async def import_days(conn: asyncpg.Connection, sku: str, days: list[tuple[dt.date, int]]) -> None:
    """Sets the imported units of each (day, units) of `sku`, replacing an earlier import."""
    await conn.execute(
        """insert into demand_day as d (sku, day, imported_units)
           select $1, day, units from unnest($2::date[], $3::bigint[]) as i (day, units)
           on conflict (sku, day) do update set imported_units = excluded.imported_units""",
        sku,
        [d for d, _ in days],
        [u for _, u in days],
    )


async def params(conn: Executor, sku: str) -> PlanningParams:
    """`sku`'s parameters (the defaults if never set)."""
    row = await conn.fetchrow(f"select {_PARAM_COLUMNS} from planning_params where sku = $1", sku)
    return PlanningParams(**row) if row else PlanningParams(sku)


async def save_params(conn: asyncpg.Connection, p: PlanningParams) -> None:
    updates = ", ".join(f"{name} = excluded.{name}" for name in _PARAM_FIELDS[1:])
    placeholders = ", ".join(f"${i}" for i in range(1, len(_PARAM_FIELDS) + 1))
    await conn.execute(
        f"""insert into planning_params ({_PARAM_COLUMNS}) values ({placeholders})
            on conflict (sku) do update set {updates}, updated_at = clock_timestamp()""",
        *(getattr(p, name) for name in _PARAM_FIELDS),
    )

"""Planning's tables (migration 0011): demand history and planning parameters. Live demand
is recorded by the database itself as lines are placed and cancelled
(repeatable/planning.sql); this module writes imports and parameters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

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


# The planning worker LISTENs here: the payload is a SKU whose history or parameters
# changed, refreshed at once (docs/spec.md §9).
REFRESH_CHANNEL = "planning_refresh"
HISTORY_DAYS = 1096  # the longest history a refresh reads: ~3 years


async def ask_for_refresh(conn: asyncpg.Connection, sku: str) -> None:
    """Wakes the planning worker for `sku` once this transaction commits."""
    await conn.execute("select pg_notify($1, $2)", REFRESH_CHANNEL, sku)


async def use_time_zone(conn: Executor, time_zone: str) -> None:
    """Makes `time_zone` (an IANA name, checked by Postgres too) the planning time zone."""
    await conn.execute(
        """update planning_clock set time_zone = $1
           where time_zone is distinct from $1 and now() at time zone $1 is not null""",
        time_zone,
    )


async def skus_after(conn: Executor, after: str, limit: int) -> list[str]:
    """Up to `limit` SKUs (in order) after `after`: the worker walks all SKUs in batches."""
    rows = await conn.fetch(
        "select sku from sku where sku > $1 order by sku limit $2", after, limit
    )
    return [r["sku"] for r in rows]


async def histories(
    conn: Executor, skus: list[str]
) -> tuple[dt.date, dict[str, list[float]], dict[str, PlanningParams]]:
    """Today, and each of `skus`' daily demand (ordered + imported units) from its first day
    with a row (at most HISTORY_DAYS back) through today, days without a row as 0; and each
    SKU's parameters."""
    day = await today(conn)
    rows = await conn.fetch(
        """select sku, day, ordered_units + imported_units as units from demand_day
           where sku = any($1::text[]) and day between $2 and $3 order by sku, day""",
        skus,
        day - dt.timedelta(days=HISTORY_DAYS),
        day,
    )
    series: dict[str, list[float]] = {}
    first: dict[str, dt.date] = {}
    for r in rows:
        sku = r["sku"]
        if sku not in series:
            first[sku] = r["day"]
            series[sku] = [0.0] * ((day - r["day"]).days + 1)
        series[sku][(r["day"] - first[sku]).days] = float(r["units"])
    param_rows = await conn.fetch(
        f"select {_PARAM_COLUMNS} from planning_params where sku = any($1::text[])", skus
    )
    params = {sku: PlanningParams(sku) for sku in skus}
    params.update({r["sku"]: PlanningParams(**r) for r in param_rows})
    return day, series, params


@dataclass(frozen=True)
class Result:
    """A refresh's answer for one SKU (planning_result)."""

    sku: str
    demand_class: str
    forecast_method: str
    forecast_daily_units: float
    demand_std: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    history_days: int


_RESULT_FIELDS = tuple(f.name for f in fields(Result))


async def save_results(conn: Executor, results: list[Result]) -> None:
    columns = ", ".join(_RESULT_FIELDS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _RESULT_FIELDS[1:])
    types = ["text", "text", "text", "float8", "float8", "float8", "float8", "float8", "int"]
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    await conn.execute(
        f"""insert into planning_result ({columns}, refreshed_at)
            select *, clock_timestamp() from unnest({arrays})
            on conflict (sku) do update set {updates}, refreshed_at = excluded.refreshed_at""",
        *([getattr(r, name) for r in results] for name in _RESULT_FIELDS),
    )

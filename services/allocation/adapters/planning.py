"""Planning's tables (migration 0011): demand history and planning parameters. Live demand
is recorded by the database itself as lines are placed and cancelled
(repeatable/planning.sql); this module writes imports and parameters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace

import asyncpg

from services.allocation.adapters.rows import Executor
from services.allocation.planning.advice import Advice, Result
from services.allocation.planning.params import PlanningParams

_PARAM_FIELDS = tuple(f.name for f in fields(PlanningParams))
_PARAM_COLUMNS = ", ".join(_PARAM_FIELDS)


async def today(conn: Executor) -> dt.date:
    """Today in the planning time zone."""
    day = await conn.fetchval("select planning_day(clock_timestamp())")
    assert isinstance(day, dt.date)
    return day


async def import_days(conn: asyncpg.Connection, sku: str, days: list[tuple[dt.date, int]]) -> None:
    """Sets the imported units of each (day, units) of `sku`, replacing an earlier import,
    and counts the import on the SKU: its forecast's inputs changed (migration 0019)."""
    await conn.execute("update sku set demand_imports = demand_imports + 1 where sku = $1", sku)
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
# The session advisory lock the working planning worker holds (any constant unique to it in
# this database): one works at a time across replicas.
WORKER_LOCK_KEY = 0x706C616E  # "plan"
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


async def stale_skus_after(
    conn: Executor, after: str, limit: int, day: dt.date
) -> tuple[str | None, list[str]]:
    """The last of up to `limit` SKUs (in order) after `after`, None when there are none;
    and those of them whose forecast would change if refreshed on `day`: never refreshed,
    history imported or parameters changed since, or a new planning day for a SKU that ever
    had demand (its history one complete day longer; migrations 0019, 0021). Lines placed
    today change nothing a refresh reads. One range of each table's primary key; only the
    stale SKUs and the last one are returned."""
    rows = await conn.fetch(
        """with walked as (
               select s.sku,
                      r.history_through is null
                      or r.imports_seen is distinct from s.demand_imports
                      or r.params_seen is distinct from p.updated_at
                      -- A new day, for a SKU that ever had demand (counted now: a first
                      -- line after the last refresh counts too).
                      or (r.history_through < $3 and (r.history_days > 0
                                                      or s.lines_placed + s.demand_imports > 0))
                         as stale
               from sku s
               -- The key conditions repeated on the joined tables: each join reads its
               -- range too, not every row before it.
               left join planning_result r on r.sku = s.sku and r.sku > $1
               left join planning_params p on p.sku = s.sku and p.sku > $1
               where s.sku > $1 order by s.sku limit $2)
           select sku, stale from walked
           where stale or sku = (select max(sku) from walked)
           order by sku""",
        after,
        limit,
        day,
    )
    return (rows[-1]["sku"] if rows else None), [r["sku"] for r in rows if r["stale"]]


@dataclass(frozen=True)
class Inputs:
    """What a refresh reads of some SKUs (`histories`): the planning day, each SKU's daily
    demand and parameters, and the marks of those inputs that its result records."""

    day: dt.date
    series: dict[str, list[float]]
    params: dict[str, PlanningParams]
    imports_seen: dict[str, int]  # demand_imports
    params_seen: dict[str, dt.datetime | None]  # planning_params.updated_at; None: none


async def histories(conn: Executor, skus: list[str]) -> Inputs:
    """Today, and each of `skus`' daily demand (ordered + imported units) on the complete
    days from its first day with a row (at most HISTORY_DAYS back) through yesterday, days
    without a row as 0 (today's running total joins when the day is over: migration 0021);
    each SKU's parameters; and the marks of both. The marks are read first: an import that
    comes between the two reads is in the history and not in its mark, so the SKU is
    refreshed once more rather than never."""
    day = await today(conn)
    last = day - dt.timedelta(days=1)
    marks = await conn.fetch(
        f"""select s.sku, s.demand_imports as imports_seen,
                   p.updated_at as params_seen, p.sku is not null as has_params,
                   {", ".join(f"p.{name}" for name in _PARAM_FIELDS[1:])}
            from sku s left join planning_params p on p.sku = s.sku
            where s.sku = any($1::text[])""",
        skus,
    )
    rows = await conn.fetch(
        """select sku, day, ordered_units + imported_units as units from demand_day
           where sku = any($1::text[]) and day between $2 and $3 order by sku, day""",
        skus,
        last - dt.timedelta(days=HISTORY_DAYS),
        last,
    )
    series: dict[str, list[float]] = {}
    first: dict[str, dt.date] = {}
    for r in rows:
        sku = r["sku"]
        if sku not in series:
            first[sku] = r["day"]
            series[sku] = [0.0] * ((last - r["day"]).days + 1)
        series[sku][(r["day"] - first[sku]).days] = float(r["units"])
    params = {sku: PlanningParams(sku) for sku in skus}
    params.update(
        {
            m["sku"]: PlanningParams(m["sku"], *(m[name] for name in _PARAM_FIELDS[1:]))
            for m in marks
            if m["has_params"]
        }
    )
    return Inputs(
        day,
        series,
        params,
        {m["sku"]: m["imports_seen"] for m in marks},
        {m["sku"]: m["params_seen"] for m in marks},
    )


async def demand_history(conn: Executor, sku: str, days: int) -> tuple[dt.date, list[int]]:
    """The first of the last `days` days through today, and `sku`'s demand (ordered +
    imported units) on each of them, oldest first, days without a row as 0."""
    day = await today(conn)
    first = day - dt.timedelta(days=days - 1)
    rows = await conn.fetch(
        """select day, ordered_units + imported_units as units from demand_day
           where sku = $1 and day between $2 and $3""",
        sku,
        first,
        day,
    )
    units = [0] * days
    for r in rows:
        units[(r["day"] - first).days] = int(r["units"])
    return first, units


_RESULT_FIELDS = tuple(f.name for f in fields(Result))


async def save_results(conn: Executor, results: list[Result], inputs: Inputs) -> None:
    """Stores `results` with the marks of the `inputs` they were computed from."""
    columns = ", ".join(_RESULT_FIELDS)
    updates = ", ".join(f"{name} = excluded.{name}" for name in _RESULT_FIELDS[1:])
    types = ["text", "text", "text", "float8", "float8", "float8", "float8", "float8", "int"]
    types += ["int8", "timestamptz"]  # imports_seen, params_seen
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    skus = [r.sku for r in results]
    await conn.execute(
        f"""insert into planning_result ({columns}, imports_seen, params_seen,
                                         history_through, refreshed_at)
            select *, ${len(types) + 1}::date, clock_timestamp() from unnest({arrays})
            on conflict (sku) do update set {updates}, imports_seen = excluded.imports_seen,
                params_seen = excluded.params_seen,
                history_through = excluded.history_through,
                refreshed_at = excluded.refreshed_at""",
        *([getattr(r, name) for r in results] for name in _RESULT_FIELDS),
        [inputs.imports_seen.get(sku) for sku in skus],
        [inputs.params_seen.get(sku) for sku in skus],
        inputs.day,
    )


_ADVICE = f"""
    select a.sku, a.available, a.days_of_cover, a.refreshed_at, a.event_version,
           {", ".join(f"a.{name}" for name in _RESULT_FIELDS[1:])},
           p.sku as params_sku, {", ".join(f"p.{name}" for name in _PARAM_FIELDS[1:])}
    from planning_advice a left join planning_params p on p.sku = a.sku"""


def _advice(row: asyncpg.Record) -> Advice:
    sku = row["sku"]
    result = None
    if row["forecast_method"] is not None:
        result = Result(sku, *(row[name] for name in _RESULT_FIELDS[1:]))
    params = PlanningParams(sku)
    if row["params_sku"] is not None:
        params = PlanningParams(sku, *(row[name] for name in _PARAM_FIELDS[1:]))
    return Advice(
        sku,
        int(row["available"]),
        row["days_of_cover"],
        result,
        row["refreshed_at"],
        params,
        row["event_version"] or 0,
    )


async def advice(conn: Executor, sku: str) -> Advice | None:
    """`sku`'s advice as of now; None for a SKU the service does not know."""
    row = await conn.fetchrow(f"{_ADVICE} where a.sku = $1", sku)
    return _advice(row) if row else None


async def below_reorder_point(
    conn: Executor, after: tuple[float | None, str] | None, limit: int
) -> list[Advice]:
    """SKUs whose available units are below their reorder point, fewest days of cover first
    (none last), ties by SKU: up to `limit` after the sort key `after`. Each part is a walk
    of the index sku_reorder_urgency (migration 0016) from the key on: no page reads or
    sorts the SKUs before it."""
    below = f"{_ADVICE} where a.available < a.reorder_point"
    with_cover = f"{below} and a.days_of_cover is not null"
    without_cover = f"{below} and a.days_of_cover is null"
    args: list[object]
    if after is None:
        sql, args = f"{below} order by a.days_of_cover asc nulls last, a.sku limit $1", [limit]
    elif after[0] is None:
        sql = f"{without_cover} and a.sku > $1 order by a.sku limit $2"
        args = [after[1], limit]
    else:
        sql = f"""({with_cover} and (a.days_of_cover, a.sku) > ($1::float8, $2::text)
                   order by a.days_of_cover, a.sku limit $3)
                  union all
                  ({without_cover} order by a.sku limit $3)
                  order by days_of_cover asc nulls last, sku limit $3"""
        args = [after[0], after[1], limit]
    return [_advice(r) for r in await conn.fetch(sql, *args)]


async def record_crossings(conn: asyncpg.Connection) -> list[Advice]:
    """Sets each SKU's below_reorder_point flag to what holds now; returns the SKUs that
    just fell below their reorder point (their event_version counted up), each once per
    crossing. Reads only the SKUs to act on, which the two partial indexes of migration
    0020 hold (normally none: then this is one read of two empty index ranges). Runs in
    the caller's transaction, which writes their events."""
    turned = await conn.fetch(
        """-- Fell below: below now, not flagged (sku_fell_below_reorder_point).
           select sku, true as below from planning_advice
           where available < reorder_point and not below_reorder_point
           union all
           -- Back at or above (sku_back_at_reorder_point).
           select sku, false from planning_advice
           where below_reorder_point and (available < reorder_point) is not true"""
    )
    if not turned:
        return []
    await conn.execute(
        """update sku s set planning_below_reorder_point = t.below
           from unnest($1::text[], $2::boolean[]) as t (sku, below) where s.sku = t.sku""",
        [t["sku"] for t in turned],
        [t["below"] for t in turned],
    )
    fell = [t["sku"] for t in turned if t["below"]]
    rows = await conn.fetch(
        # offset 0 keeps the view's subquery apart: each crossed SKU's advice is then read
        # by its keys, where a join of the view could walk every SKU to meet a few.
        f"""with counted as (
                update planning_result r set event_version = r.event_version + 1
                where r.sku = any($1::text[])
                returning r.sku, r.event_version)
            select c.event_version as crossed_version, x.*
            from counted c, lateral ({_ADVICE} where a.sku = c.sku offset 0) x
            order by c.sku""",
        fell,
    )
    return [replace(_advice(r), event_version=r["crossed_version"]) for r in rows]

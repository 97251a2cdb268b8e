"""The planning worker on the real Postgres (docs/spec.md §9): a refresh stores what the
forecast and the policy say, a full refresh recomputes only the SKUs whose inputs changed,
one worker at a time holds the lock, and a SKU whose parameters or history changed is
refreshed at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.allocation.adapters import planning as planning_db
from services.allocation.planning import policy
from services.allocation.planning.forecast import forecast
from services.allocation.planning.params import PlanningParams
from services.allocation.planning.settings import PlanningSettings
from services.allocation.planning.worker import (
    BATCH,
    WALK,
    PlanningWorker,
    refresh,
    refresh_all,
)
from services.common import db as common_db
from tests.support.servers import database_url, drop_database, unique


async def known_sku(pool: asyncpg.Pool, prefix: str) -> str:
    sku = unique(prefix)
    await handlers.stock_received(
        pool,
        inventory_events.StockReceived(
            event_id=str(uuid.uuid4()), sku=sku, receipt_id=unique("r"), quantity=3
        ),
    )
    return sku


async def import_series(pool: asyncpg.Pool, sku: str, series: list[int]) -> None:
    """`series` as the daily history ending yesterday: the last complete day."""
    today = await pool.fetchval("select planning_day(clock_timestamp())")
    days = tuple(
        ((today - dt.timedelta(days=len(series) - i)).isoformat(), units)
        for i, units in enumerate(series)
    )
    await handlers.import_demand_history(pool, handlers.ImportDemandHistory(sku, days))


async def result(pool: asyncpg.Pool, sku: str) -> asyncpg.Record | None:
    return await pool.fetchrow("select * from planning_result where sku = $1", sku)


async def test_a_refresh_stores_the_forecast_and_the_levels(allocation_pool: asyncpg.Pool) -> None:
    pool = allocation_pool
    smooth, lumpy, silent = [await known_sku(pool, p) for p in ("SMOOTH", "LUMPY", "SILENT")]
    smooth_series = [6, 4, 5, 5, 7, 3, 5, 6, 4, 5] * 3
    lumpy_series = [0, 0, 9, 0, 0, 0, 1, 0, 0, 14, 0, 0, 0, 2]
    await import_series(pool, smooth, smooth_series)
    await import_series(pool, lumpy, lumpy_series)
    await handlers.set_planning_params(
        pool, handlers.SetPlanningParams(lumpy, lead_time_days=3, review_period_days=2)
    )
    assert await refresh(pool, [smooth, lumpy, silent]) == 3
    for sku, series, params in (
        (smooth, smooth_series, PlanningParams(smooth)),
        (lumpy, lumpy_series, PlanningParams(lumpy, lead_time_days=3, review_period_days=2)),
    ):
        expected = forecast(series)
        levels = policy.levels(expected.daily_units, expected.demand_std, params)
        row = await result(pool, sku)
        assert row is not None
        assert (row["demand_class"], row["forecast_method"], row["history_days"]) == (
            expected.demand_class.value,
            expected.method.value,
            len(series),
        )
        assert row["forecast_daily_units"] == pytest.approx(expected.daily_units)
        assert row["demand_std"] == pytest.approx(expected.demand_std)
        assert row["reorder_point"] == pytest.approx(levels.reorder_point)
        assert row["order_up_to"] == pytest.approx(levels.order_up_to)
    assert (await result(pool, smooth))["forecast_method"] == "SES"  # type: ignore[index]
    assert (await result(pool, lumpy))["forecast_method"] == "TSB"  # type: ignore[index]
    silent_row = await result(pool, silent)
    assert silent_row is not None
    assert (silent_row["forecast_method"], silent_row["reorder_point"]) == ("NONE", 0.0)
    assert silent_row["history_days"] == 0


async def refreshed(pool: asyncpg.Pool, skus: list[str]) -> dict[str, dt.datetime]:
    rows = await pool.fetch(
        "select sku, refreshed_at from planning_result where sku = any($1)", skus
    )
    return {r["sku"]: r["refreshed_at"] for r in rows}


async def test_a_full_refresh_recomputes_only_the_skus_whose_inputs_changed(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool = allocation_pool
    placed, tuned, imported, quiet = skus = [
        await known_sku(pool, p) for p in ("PLACED", "TUNED", "IMPORTED", "QUIET")
    ]
    series = [4, 6, 5, 5, 3, 7] * 5
    for sku in (placed, tuned, imported):
        await import_series(pool, sku, series)
    await refresh_all(pool)
    first = await refreshed(pool, skus)
    assert set(first) == set(skus)
    await refresh_all(pool)
    assert await refreshed(pool, skus) == first  # nothing changed: nothing recomputed

    # An import and new parameters are each seen at the next full refresh, without a word
    # to the worker (refresh_all is called directly). A line placed today is not: a
    # forecast reads complete days only, and today's is not over.
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", placed, 40))
    await handlers.set_planning_params(pool, handlers.SetPlanningParams(tuned, lead_time_days=3))
    await import_series(pool, imported, [9] * 30)
    await refresh_all(pool)
    second = await refreshed(pool, skus)
    assert (second[placed], second[quiet]) == (first[placed], first[quiet])
    assert all(second[sku] > first[sku] for sku in (tuned, imported))
    for sku, history, params in (
        (placed, series, PlanningParams(placed)),
        (tuned, series, PlanningParams(tuned, lead_time_days=3)),
        (imported, [9] * 30, PlanningParams(imported)),
    ):
        expected = forecast(history, params.lead_time_days + params.review_period_days)
        levels = policy.levels(expected.daily_units, expected.demand_std, params, expected.bias)
        row = await result(pool, sku)
        assert row is not None
        assert row["forecast_daily_units"] == pytest.approx(expected.daily_units), sku
        assert row["reorder_point"] == pytest.approx(levels.reorder_point), sku

    # A new planning day (as if the results were computed yesterday): a SKU that ever had
    # demand has one more complete day of history and is recomputed — `fresh` too, whose
    # only demand is a line placed on the day it was first refreshed (no complete day of
    # history then); one that never had any stays as it is.
    fresh, late = await known_sku(pool, "FRESH"), await known_sku(pool, "LATE")
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", fresh, 2))
    await refresh_all(pool)
    row = await result(pool, fresh)
    assert row is not None and row["history_days"] == 0
    # `late` has its first line after its first refresh (which saw no demand at all).
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", late, 2))
    skus += [fresh, late]
    second = await refreshed(pool, skus)
    await pool.execute(
        "update planning_result set history_through = history_through - 1 where sku = any($1)",
        [placed, quiet, fresh, late],
    )
    await refresh_all(pool)
    third = await refreshed(pool, skus)
    assert third[placed] > second[placed] and third[fresh] > second[fresh]
    assert third[late] > second[late]
    assert third[quiet] == second[quiet]
    assert (third[tuned], third[imported]) == (second[tuned], second[imported])

    # `plan --once` refreshes every SKU, changed or not.
    await refresh_all(pool, every=True)
    fourth = await refreshed(pool, skus)
    assert all(fourth[sku] > third[sku] for sku in skus)


async def test_a_pass_rests_after_each_step_and_stops_when_asked(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool = allocation_pool
    skus = [await known_sku(pool, "PACED") for _ in range(3)]
    await refresh_all(pool)  # everything current: the next pass only walks
    for sku in skus:
        await import_series(pool, sku, [2, 3] * 10)
    steps: list[float] = []

    async def rest(spent: float) -> bool:
        steps.append(spent)
        return False

    assert await refresh_all(pool, rest=rest) >= 3
    assert steps and all(spent > 0 for spent in steps)
    assert len(steps) == -(-await pool.fetchval("select count(*) from sku") // WALK)

    async def stop(spent: float) -> bool:
        return True

    # A stop between steps ends the pass there: the first batch refreshed, no more.
    total = await pool.fetchval("select count(*) from sku")
    assert await refresh_all(pool, every=True, rest=stop) == min(BATCH, total)


@pytest.fixture
async def long_pass(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[asyncpg.Pool]:
    """A planning worker in a long first pass, over a database of its own so that the pass's
    order is known: A1..A9, C1, then Z9, one SKU a step, each rest a hundred times its step.
    C1 has a result that puts it below its reorder point, not yet flagged. Yields the pool
    once the pass has refreshed A1 (it is in its first rests)."""
    from services.allocation.planning import worker

    name = unique("bo_test_long_pass")
    url = database_url(name)
    await common_db.migrate(url, "services.allocation.migrations")
    pool = await common_db.create_pool(url)
    await pool.execute(
        """insert into sku (sku) select 'A' || n from generate_series(1, 9) n
           union all select 'C1' union all select 'Z9';
           insert into planning_result (sku, demand_class, forecast_method,
               forecast_daily_units, demand_std, safety_stock, reorder_point, order_up_to,
               history_days, refreshed_at)
           values ('C1', 'SMOOTH', 'SES', 1, 1, 2, 10, 17, 30, now())"""
    )
    monkeypatch.setattr(worker, "WALK", 1)
    monkeypatch.setattr(worker, "PACE", 100.0)
    planner = PlanningWorker(url, PlanningSettings(interval_seconds=3600))
    running = asyncio.create_task(planner.run())
    try:
        await until(lambda: result(pool, "A1"))
        yield pool
    finally:
        planner.stop()
        await asyncio.wait_for(running, 15)
        await pool.close()
        await drop_database(name)


async def not_yet_refreshed(pool: asyncpg.Pool) -> int:
    """How many of A1..A9 the pass has still to reach."""
    return await pool.fetchval(
        "select count(*) from sku s where s.sku like 'A%'"
        " and not exists (select 1 from planning_result r where r.sku = s.sku)"
    )


async def test_a_long_pass_refreshes_notified_skus_between_its_steps(
    long_pass: asyncpg.Pool,
) -> None:
    pool = long_pass
    await handlers.set_planning_params(pool, handlers.SetPlanningParams("Z9", 3))
    await until(lambda: result(pool, "Z9"))
    # Refreshed at once, in a rest of the pass, long before the pass reached it.
    assert await not_yet_refreshed(pool) >= 5


async def test_a_long_pass_checks_crossings_between_its_steps(long_pass: asyncpg.Pool) -> None:
    pool = long_pass

    async def fired() -> bool:
        return await reorder_events(pool, "C1") == [1]

    await until(fired)
    # sku.reorder_suggested written in a rest of the pass, not after it.
    assert await not_yet_refreshed(pool) >= 5


async def lock_holders(pool: asyncpg.Pool) -> int:
    return await pool.fetchval(
        """select count(*) from pg_locks where locktype = 'advisory' and granted
           and objid = $1 and database = (select oid from pg_database
                                          where datname = current_database())""",
        planning_db.WORKER_LOCK_KEY,
    )


async def until(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not in time")


async def test_one_worker_at_a_time_and_changes_refresh_at_once(
    allocation_db: str, allocation_pool: asyncpg.Pool
) -> None:
    pool = allocation_pool
    sku = await known_sku(pool, "WATCHED")
    settings = PlanningSettings(interval_seconds=3600)
    first, second = PlanningWorker(allocation_db, settings), PlanningWorker(allocation_db, settings)
    running = asyncio.create_task(first.run())
    await until(lambda: result(pool, sku))  # the first full refresh
    waiting = asyncio.create_task(second.run())
    try:
        await asyncio.sleep(0.5)
        assert await lock_holders(pool) == 1
        # A change of parameters is refreshed at once, not an hour later.
        await import_series(pool, sku, [5] * 20)
        await handlers.set_planning_params(pool, handlers.SetPlanningParams(sku, lead_time_days=2))

        async def refreshed() -> bool:
            # The import and the new parameters each wake the worker: wait for the latter.
            row = await result(pool, sku)
            if row is None or row["forecast_daily_units"] != pytest.approx(5.0, rel=0.01):
                return False
            levels = policy.levels(
                row["forecast_daily_units"], row["demand_std"], PlanningParams(sku, 2)
            )
            return bool(row["reorder_point"] == pytest.approx(levels.reorder_point))

        await until(refreshed)
        # The first one stops: the second takes the lock over.
        first.stop()
        await asyncio.wait_for(running, 10)
        await until(lambda: _holds(pool))
    finally:
        first.stop()
        second.stop()
        await asyncio.wait_for(asyncio.gather(running, waiting, return_exceptions=True), 15)


async def _holds(pool: asyncpg.Pool) -> bool:
    return await lock_holders(pool) == 1


async def reorder_events(pool: asyncpg.Pool, sku: str) -> list[int]:
    """The versions of sku.reorder_suggested written to the outbox for `sku`, in order."""
    from backorder.allocation.v1 import events_pb2

    rows = await pool.fetch(
        "select body from outbox where sku = $1 and routing_key = 'sku.reorder_suggested'"
        " order by id",
        sku,
    )
    return [events_pb2.SkuReorderSuggested.FromString(r["body"]).version for r in rows]


async def test_each_crossing_fires_once_and_re_arms(allocation_pool: asyncpg.Pool) -> None:
    pool = allocation_pool
    sku = await known_sku(pool, "CROSS")  # 3 free units
    await import_series(pool, sku, [1] * 20)  # 1 a day
    await handlers.set_planning_params(
        pool, handlers.SetPlanningParams(sku, lead_time_days=5, review_period_days=0)
    )
    await refresh(pool, [sku])  # reorder point ~5: 3 available is below
    assert await handlers.check_crossings(pool) >= 1
    assert await reorder_events(pool, sku) == [1]
    await handlers.check_crossings(pool)
    assert await reorder_events(pool, sku) == [1]  # still below: nothing new
    await handlers.stock_received(
        pool,
        inventory_events.StockReceived(
            event_id=str(uuid.uuid4()), sku=sku, receipt_id=unique("r"), quantity=20
        ),
    )
    await handlers.check_crossings(pool)  # 23 available: re-armed, no event
    assert await reorder_events(pool, sku) == [1]
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 22))
    await handlers.check_crossings(pool)  # 1 available: below again
    assert await reorder_events(pool, sku) == [1, 2]


async def test_a_failing_forecast_skips_its_sku_only(
    allocation_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.allocation.planning import worker

    pool = allocation_pool
    odd, fine = await known_sku(pool, "ODD"), await known_sku(pool, "FINE")
    real = worker.plan
    count = {"odd": 0}

    def failing_for_odd(series: list[float], params: PlanningParams) -> object:
        # Which SKU a series belongs to is not passed: the odd one comes first.
        count["odd"] += 1
        if count["odd"] == 1:
            raise FloatingPointError("a series the model cannot take")
        return real(series, params)

    monkeypatch.setattr(worker, "plan", failing_for_odd)
    assert await refresh(pool, [odd, fine]) == 1
    assert await result(pool, odd) is None
    assert await result(pool, fine) is not None

"""The planning worker (`backorder-allocation plan`, docs/spec.md §9): every PLANNING_INTERVAL
refreshes the forecast and levels of every SKU whose inputs changed since its last refresh
(new demand or parameters, a new day), and at once a SKU whose history was imported or
whose parameters were set (a NOTIFY on adapters.planning.REFRESH_CHANNEL). One worker
works at a time across replicas: it holds a session advisory lock on a connection of its
own; the others wait for it. This module imports the forecasting library; the gRPC server
never imports it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable

import asyncpg

from services.allocation.adapters import planning as planning_db
from services.allocation.handlers.planning import check_crossings
from services.allocation.planning.advice import Result
from services.allocation.planning.plan import plan
from services.allocation.planning.settings import PlanningSettings

log = logging.getLogger(__name__)

BATCH = 500  # SKUs read, forecast and written together
WALK = 5_000  # SKUs checked for a change of their inputs at a time
WAIT_FOR_LOCK_SECONDS = 5.0  # how often a waiting worker tries the lock again
# How often available units are compared with reorder points between refreshes: the most a
# sku.reorder_suggested waits after the change of stock or queue that caused it.
CROSSING_CHECK_SECONDS = 2.0
# A pass (not `plan --once`) waits PACE times as long as each of its steps took before the
# next: its queries then run at most a quarter of the time beside the service's. Its own
# CPU is already at the lowest priority (main.plan), the Postgres backend serving it is
# not. A step takes longer on a busy machine, so the worker yields more there
# (docs/planning.md "What a refresh recomputes").
PACE = 3.0


async def refresh(pool: asyncpg.Pool, skus: list[str]) -> int:
    """Forecasts `skus` and stores their results; returns how many were refreshed. A SKU
    whose forecast fails keeps its last result (logged): one odd series must not stop every
    other SKU's refresh, nor crash-loop the worker."""
    if not skus:
        return 0
    inputs = await planning_db.histories(pool, skus)
    results = []
    for sku in skus:
        history = inputs.series.get(sku, [])
        try:
            answer = plan(history, inputs.params[sku])
        except Exception:
            log.exception("forecast failed; the SKU keeps its last result", extra={"sku": sku})
            continue
        levels = answer.levels
        if not all(map(math.isfinite, (answer.forecast.demand_std, levels.order_up_to))):
            log.warning("forecast not finite; the SKU keeps its last result", extra={"sku": sku})
            continue
        results.append(
            Result(
                sku=sku,
                demand_class=answer.forecast.demand_class.value,
                forecast_method=answer.forecast.method.value,
                forecast_daily_units=answer.forecast.daily_units,
                demand_std=answer.forecast.demand_std,
                safety_stock=levels.safety_stock,
                reorder_point=levels.reorder_point,
                order_up_to=levels.order_up_to,
                history_days=len(history),
            )
        )
    if results:
        await planning_db.save_results(pool, results, inputs)
    return len(results)


async def _no_rest(spent: float) -> bool:
    await asyncio.sleep(0)
    return False


async def refresh_all(
    pool: asyncpg.Pool,
    *,
    every: bool = False,
    rest: Callable[[float], Awaitable[bool]] = _no_rest,
) -> int:
    """Refreshes every SKU whose forecast would change (migration 0019): never refreshed,
    new demand or parameters since its last refresh, or a new planning day; with `every`,
    every SKU (`plan --once`: after an upgrade of the forecasting code, say). The others'
    stored results are already what a refresh would compute. After each step (a batch, or
    a walk that found nothing) `rest(seconds the step took)` runs; the pass stops early
    when it returns True. Returns how many SKUs were refreshed."""
    started, done, after = time.monotonic(), 0, ""
    while True:
        step = time.monotonic()
        if every:
            skus = await planning_db.skus_after(pool, after, BATCH)
            last, stale = (skus[-1] if skus else None), skus
        else:
            day = await planning_db.today(pool)
            last, stale = await planning_db.stale_skus_after(pool, after, WALK, day)
        if last is None:
            break
        for i in range(0, max(len(stale), 1), BATCH):
            done += await refresh(pool, stale[i : i + BATCH])
            if await rest(time.monotonic() - step):
                return done
            step = time.monotonic()
        after = last
    log.info(
        "planning refreshed",
        extra={"skus": done, "seconds": round(time.monotonic() - started, 3)},
    )
    return done


class PlanningWorker:
    def __init__(self, database_url: str, settings: PlanningSettings) -> None:
        self._url = database_url
        self._settings = settings
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._pending: set[str] = set()
        self._crossings_checked = 0.0  # time.monotonic() of the last crossing check

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, *, once: bool = False) -> None:
        """Works until stop() (or after one full refresh when `once`)."""
        pool = await asyncpg.create_pool(self._url, min_size=1, max_size=2)
        assert pool is not None
        try:
            await planning_db.use_time_zone(pool, self._settings.time_zone)
            while not self._stopping.is_set():
                try:
                    await self._run_holding_the_lock(pool, once)
                    if once:
                        return
                except (OSError, asyncpg.PostgresConnectionError) as exc:
                    log.warning("planning worker lost its connection", extra={"error": str(exc)})
                    await self._sleep(WAIT_FOR_LOCK_SECONDS)
        finally:
            await pool.close()

    async def _run_holding_the_lock(self, pool: asyncpg.Pool, once: bool) -> None:
        conn = await asyncpg.connect(self._url)
        try:
            lock = planning_db.WORKER_LOCK_KEY
            while not await conn.fetchval("select pg_try_advisory_lock($1)", lock):
                if await self._sleep(WAIT_FOR_LOCK_SECONDS):
                    return
            log.info("planning worker holds the lock")
            await conn.add_listener(planning_db.REFRESH_CHANNEL, self._notified)
            next_full = 0.0
            while not self._stopping.is_set() and not conn.is_closed():
                if time.monotonic() >= next_full:
                    if once:  # as fast as it can: an operator waits for it
                        await refresh_all(pool, every=True)
                        await check_crossings(pool)
                        return
                    await refresh_all(pool, rest=lambda spent: self._rest(pool, spent))
                    next_full = time.monotonic() + self._settings.interval_seconds
                await self._refresh_pending(pool)
                await self._check_crossings(pool)
                self._wake.clear()
                if not self._pending:
                    pause = min(next_full - time.monotonic(), CROSSING_CHECK_SECONDS)
                    await self._sleep(pause, wake=self._wake)
        finally:
            await conn.close()  # ends the session: the lock goes with it

    async def _refresh_pending(self, pool: asyncpg.Pool) -> None:
        if self._pending:
            skus, self._pending = sorted(self._pending), set()
            await refresh(pool, skus)

    async def _check_crossings(self, pool: asyncpg.Pool) -> None:
        await check_crossings(pool)
        self._crossings_checked = time.monotonic()

    async def _rest(self, pool: asyncpg.Pool, spent: float) -> bool:
        """Between two steps of a pass: the SKUs whose change was notified meanwhile are
        refreshed and the crossings checked when due (a long pass must hold back neither),
        then the worker waits PACE times as long as the step took. True when stopping."""
        await self._refresh_pending(pool)
        if time.monotonic() - self._crossings_checked >= CROSSING_CHECK_SECONDS:
            await self._check_crossings(pool)
        return await self._sleep(PACE * spent)

    def _notified(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self._pending.add(payload)
        self._wake.set()

    async def _sleep(self, seconds: float, wake: asyncio.Event | None = None) -> bool:
        """Waits `seconds`, less if stopped (or `wake` is set); True when stopping."""
        events = [self._stopping] + ([wake] if wake else [])
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waits, timeout=max(seconds, 0), return_when="FIRST_COMPLETED")
        finally:
            for w in waits:
                w.cancel()
        return self._stopping.is_set()

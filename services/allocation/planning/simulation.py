"""The policy simulation (docs/planning.md): generated demand of each kind, run through the
planning worker's own code (`plan.plan`: forecast by demand class, then the policy's levels)
at every review, orders placed as the service suggests them (MOQ and pack size applied) and
arriving after the lead time, and what that achieves: the cycle service level against its
target, the fill rate and the forecast's MASE. Pure and seeded: no database, no clock."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np

from services.allocation.planning import plan, policy
from services.allocation.planning.params import PlanningParams

SEASON = 7  # days: the seasonal naive forecast that MASE is scaled by repeats last week


def _smooth(rng: np.random.Generator, days: int) -> np.ndarray:
    mean = rng.uniform(8, 40)
    return np.maximum(np.rint(rng.normal(mean, mean * rng.uniform(0.1, 0.3), days)), 0)


def _erratic(rng: np.random.Generator, days: int) -> np.ndarray:
    # Demand most days, sizes from a skewed gamma: CV² of the sizes around 1.
    sizes = np.ceil(rng.gamma(rng.uniform(0.6, 1.0), rng.uniform(5, 20), days))
    return np.where(rng.random(days) < 0.92, sizes, 0.0)


def _intermittent(rng: np.random.Generator, days: int) -> np.ndarray:
    # Demand on one day in two to five, sizes 1 + Poisson: CV² of the sizes well below 0.49.
    sizes = 1 + rng.poisson(rng.uniform(2, 6), days)
    return np.where(rng.random(days) < rng.uniform(0.2, 0.5), sizes, 0).astype(np.float64)


def _lumpy(rng: np.random.Generator, days: int) -> np.ndarray:
    sizes = np.ceil(rng.gamma(rng.uniform(0.5, 0.9), rng.uniform(5, 25), days))
    return np.where(rng.random(days) < rng.uniform(0.15, 0.45), sizes, 0.0)


def _trending(rng: np.random.Generator, days: int) -> np.ndarray:
    # The mean grows (or falls) steadily: by 50% to 150% of its start over the span.
    start = rng.uniform(8, 30)
    growth = rng.uniform(0.5, 1.5) * rng.choice([1, 1, -0.5])
    mean = start * (1 + growth * np.arange(days) / days)
    return np.maximum(np.rint(rng.normal(mean, mean * 0.2)), 0)


def _weekly(rng: np.random.Generator, days: int) -> np.ndarray:
    # A weekly profile (weekend peaks, a quiet day) around a steady mean.
    mean = rng.uniform(8, 40)
    profile = np.array([0.8, 0.9, 0.9, 1.0, 1.2, 1.6, 0.6])
    shift = int(rng.integers(SEASON))
    mean_by_day = mean * np.roll(profile, shift)[np.arange(days) % SEASON]
    return np.maximum(np.rint(rng.normal(mean_by_day, mean_by_day * 0.15)), 0)


KINDS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "smooth": _smooth,
    "erratic": _erratic,
    "intermittent": _intermittent,
    "lumpy": _lumpy,
    "trending": _trending,
    "weekly-seasonal": _weekly,
}

LEAD_TIMES = (2, 5, 7, 14, 21)  # days, drawn per SKU
REVIEW_PERIODS = (1, 7, 14)
PACKS = ((1, 1), (1, 1), (10, 1), (1, 5))  # (MOQ, pack size) drawn per SKU


@dataclass
class SkuRun:
    """One simulated SKU: its parameters and what the policy achieved over the measured days."""

    kind: str
    demand_class: str  # as the service classified the history at the first review
    params: PlanningParams
    cycles: int = 0
    stockout_cycles: int = 0
    demand_units: float = 0.0
    units_from_stock: float = 0.0
    absolute_error: float = 0.0  # of the daily forecast against each following day's demand
    forecast_days: int = 0
    scale: float = 0.0  # seasonal naive's in-sample mean absolute error (MASE's denominator)

    @property
    def mase(self) -> float:
        return (self.absolute_error / self.forecast_days) / self.scale


def simulate_sku(
    kind: str,
    seed: int,
    *,
    service_level: float,
    history_days: int,
    days: int,
) -> SkuRun:
    """`history_days` of demand known before the start, then `days` simulated. The first
    lead time + review period of the simulation is not measured (the first orders have not
    arrived yet); every later review starts a cycle: from its order's arrival (after the
    lead time, whether it ordered or not) to the next review's."""
    rng = np.random.default_rng(seed)
    params = PlanningParams(
        f"{kind}-{seed}",
        lead_time_days=int(rng.choice(LEAD_TIMES)),
        review_period_days=int(rng.choice(REVIEW_PERIODS)),
        service_level=service_level,
        min_order_quantity=PACKS[int(rng.integers(len(PACKS)))][0],
        pack_size=PACKS[int(rng.integers(len(PACKS)))][1],
    )
    demand = KINDS[kind](rng, history_days + days)
    lead, review = params.lead_time_days, params.review_period_days
    history = list(map(float, demand[:history_days]))
    run = SkuRun(kind, "", params)
    # MASE's scale: the seasonal naive's in-sample error over the last 16 weeks of history
    # (1 when that is 0: a series the seasonal naive gets exactly right).
    past = demand[max(history_days - 16 * SEASON, 0) : history_days]
    run.scale = float(np.mean(np.abs(past[SEASON:] - past[:-SEASON]))) if past.size > SEASON else 0
    run.scale = run.scale or 1.0

    on_hand, backordered = 0.0, 0.0
    arriving: dict[int, float] = {}
    cycle_ends: set[int] = set()  # the last day of each measured cycle
    warm_up = lead + review
    for day in range(days):
        on_hand += arriving.pop(day, 0.0)
        filled = min(on_hand, backordered)
        on_hand, backordered = on_hand - filled, backordered - filled
        if day % review == 0:
            answer = plan.plan(history, params)
            if not run.demand_class:
                run.demand_class = answer.forecast.demand_class.value
                if day == 0:  # start at the order-up-to level: no start-up shortage
                    on_hand = math.ceil(answer.levels.order_up_to)
            available = on_hand + sum(arriving.values()) - backordered
            quantity = policy.suggested_order_quantity(
                answer.levels.order_up_to, math.floor(available), params
            )
            if quantity:
                if lead == 0:
                    on_hand += quantity
                else:
                    arriving[day + lead] = arriving.get(day + lead, 0.0) + quantity
            if day >= warm_up - lead and day + lead + review <= days:
                cycle_ends.add(day + lead + review - 1)
            horizon = demand[history_days + day : history_days + day + review]
            run.absolute_error += float(np.sum(np.abs(horizon - answer.forecast.daily_units)))
            run.forecast_days += len(horizon)
        units = float(demand[history_days + day])
        from_stock = min(on_hand, units)
        on_hand -= from_stock
        backordered += units - from_stock
        history.append(units)
        if day >= warm_up:
            run.demand_units += units
            run.units_from_stock += from_stock
        if day in cycle_ends:
            run.cycles += 1
            run.stockout_cycles += backordered > 0
    return run


@dataclass(frozen=True)
class KindScore:
    kind: str
    skus: int
    classes: dict[str, int]  # how the service classified the SKUs of this kind
    cycles: int
    target: float
    achieved: float  # fraction of cycles without a stockout
    fill_rate: float  # fraction of demanded units shipped from stock at once
    mase: float  # mean over SKUs


def score(kind: str, runs: Iterable[SkuRun]) -> KindScore:
    runs = list(runs)
    cycles = sum(r.cycles for r in runs)
    classes: dict[str, int] = {}
    for r in runs:
        classes[r.demand_class] = classes.get(r.demand_class, 0) + 1
    return KindScore(
        kind,
        len(runs),
        dict(sorted(classes.items())),
        cycles,
        runs[0].params.service_level,
        1 - sum(r.stockout_cycles for r in runs) / cycles,
        sum(r.units_from_stock for r in runs) / sum(r.demand_units for r in runs),
        float(np.mean([r.mase for r in runs])),
    )


def simulate(
    kinds: Iterable[str],
    skus: int,
    *,
    service_level: float = 0.95,
    history_days: int = 182,
    days: int = 364,
    seed: int | Sequence[int] = 1,
    processes: int = 1,
) -> list[KindScore]:
    """`skus` SKUs of each kind for each seed (SKU i of seed s is seeded s·100,000 + i, the
    same for every kind), pooled per kind; run in `processes` worker processes."""
    seeds = [seed] if isinstance(seed, int) else list(seed)
    kinds = list(kinds)
    jobs = [(kind, s * 100_000 + i) for kind in kinds for s in seeds for i in range(skus)]
    one = partial(_simulate_job, service_level=service_level, history_days=history_days, days=days)
    if processes > 1:
        with ProcessPoolExecutor(processes) as pool:
            runs = list(pool.map(one, jobs, chunksize=4))
    else:
        runs = list(map(one, jobs))
    return [score(kind, (r for r in runs if r.kind == kind)) for kind in kinds]


def _simulate_job(
    job: tuple[str, int], *, service_level: float, history_days: int, days: int
) -> SkuRun:
    kind, seed = job
    return simulate_sku(
        kind, seed, service_level=service_level, history_days=history_days, days=days
    )

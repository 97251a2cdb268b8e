"""How well the forecasts would have done (docs/spec.md §9): each SKU's history is cut
`holdout` days before today, forecast from what came before, and the forecast compared with
the mean daily demand of the days held out. Summed by method: SKUs, mean absolute error,
bias (forecast - actual, units a day) and WAPE (absolute errors over actual demand). Uses
the forecasting library: run by `backorder-allocation backtest`, never by the server."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from services.allocation.adapters import planning as planning_db
from services.allocation.planning.forecast import forecast


@dataclass(frozen=True)
class Trial:
    sku: str
    method: str
    forecast_daily: float
    actual_daily: float


@dataclass(frozen=True)
class MethodScore:
    method: str
    skus: int
    mean_absolute_error: float
    bias: float
    wape: float | None  # None when the held-out days had no demand at all


def trial(sku: str, series: Sequence[float], holdout: int) -> Trial | None:
    """None when the series is not longer than the holdout (nothing to learn from)."""
    if holdout < 1 or len(series) <= holdout:
        return None
    answer = forecast(series[:-holdout])
    actual = sum(series[-holdout:]) / holdout
    return Trial(sku, answer.method.value, answer.daily_units, actual)


def scores(trials: Iterable[Trial]) -> list[MethodScore]:
    by_method: dict[str, list[Trial]] = {}
    for t in trials:
        by_method.setdefault(t.method, []).append(t)
    out = []
    for method, group in sorted(by_method.items()):
        errors = [t.forecast_daily - t.actual_daily for t in group]
        actual = sum(t.actual_daily for t in group)
        absolute = sum(abs(e) for e in errors)
        out.append(
            MethodScore(
                method,
                len(group),
                absolute / len(group),
                sum(errors) / len(group),
                absolute / actual if actual > 0 else None,
            )
        )
    return out


async def backtest_all(pool: asyncpg.Pool, holdout: int, batch: int = 500) -> list[MethodScore]:
    """The scores of every SKU with demand history, read in batches."""
    trials: list[Trial] = []
    after = ""
    while skus := await planning_db.skus_after(pool, after, batch):
        _, series, _ = await planning_db.histories(pool, skus)
        for sku, history in series.items():
            if (t := trial(sku, history, holdout)) is not None:
                trials.append(t)
        after = skus[-1]
    return scores(trials)

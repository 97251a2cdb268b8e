"""The proof that planning's numbers are right (docs/planning.md): the policy simulated on
generated demand of each kind, through the planning worker's own code, achieves its cycle
service level target within 2 points, with an honest forecast error (MASE). Small scale
here; `python -m services.allocation.planning.backtest` runs the full scale."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest

from services.allocation.planning import simulation
from services.allocation.planning.backtest import TOLERANCE, main
from services.allocation.planning.forecast import (
    BURN_IN_DAYS,
    MIN_WINDOWS,
    horizon_errors,
    level_ratio,
)

EXPECTED_CLASS = {
    "smooth": "SMOOTH",
    "erratic": "ERRATIC",
    "intermittent": "INTERMITTENT",
    "lumpy": "LUMPY",
    "trending": "SMOOTH",
    "weekly-seasonal": "SMOOTH",
}


# Three seeds of 36 SKUs a kind, pooled: one 36-SKU sample of lumpy demand lands up to
# 1.3 points from the kind's mean (at 90%: from -0.2 to +2.3 over seeds 7, 8 and 9), as
# much as the margin the test is about (docs/planning.md, "Over many seeds").
SEEDS = (7, 8, 9)
PROCESSES = 2


def _pooled(target: float) -> dict[str, simulation.KindScore]:
    results = simulation.simulate(
        simulation.KINDS, 36, service_level=target, seed=SEEDS, processes=PROCESSES
    )
    return {s.kind: s for s in results}


@pytest.fixture(scope="module")
def scores() -> dict[str, simulation.KindScore]:
    return _pooled(0.95)


@pytest.mark.parametrize("kind", list(simulation.KINDS))
def test_service_level_achieved_within_two_points(
    scores: dict[str, simulation.KindScore], kind: str
) -> None:
    got = scores[kind]
    assert got.cycles > 12_000
    assert max(got.classes, key=got.classes.__getitem__) == EXPECTED_CLASS[kind]
    assert abs(got.achieved - 0.95) <= TOLERANCE, got
    assert 0.85 < got.fill_rate <= 1.0
    assert math.isfinite(got.mase) and got.mase > 0


@pytest.fixture(scope="module")
def other_targets() -> dict[float, dict[str, simulation.KindScore]]:
    return {target: _pooled(target) for target in (0.9, 0.98)}


@pytest.mark.parametrize("target", [0.9, 0.98])
@pytest.mark.parametrize("kind", list(simulation.KINDS))
def test_low_and_high_targets_achieved_within_two_points(
    other_targets: dict[float, dict[str, simulation.KindScore]], target: float, kind: str
) -> None:
    # At 90% the safety stock is small, so what the normal quantile leaves out weighs most:
    # whole units and the stock carried above a falling level. At 98% the tail of the error
    # does: the lumps of erratic and lumpy demand (policy.z_for's skewness) and the spread
    # of a trend's higher level (level_ratio). docs/planning.md.
    got = other_targets[target][kind]
    assert abs(got.achieved - target) <= TOLERANCE, got


def test_forecast_error_against_seasonal_naive(scores: dict[str, simulation.KindScore]) -> None:
    # Independent daily noise: the level's error is |e| against the seasonal naive's
    # |e1 - e2|, MASE about 1/√2; a forecast far worse than that would show here.
    assert scores["smooth"].mase < 0.8
    assert scores["erratic"].mase < 0.9
    assert scores["intermittent"].mase < 1.0 and scores["lumpy"].mase < 1.0
    # A flat level cannot follow the week: last week's same day does better (> 1).
    assert scores["weekly-seasonal"].mase > 1.0


def test_horizon_errors_by_hand() -> None:
    days = BURN_IN_DAYS + MIN_WINDOWS + 6
    # A forecast 1 unit short every day: 7-day totals 7 units short, no spread.
    y = np.full(days, 5.0)
    std, bias, skew = horizon_errors(y, np.full(days, 4.0), 7)
    assert (std, bias, skew) == (pytest.approx(0.0), pytest.approx(1.0), 0.0)
    # A weekly pattern around a right level: every 7-day total is exact, though one-step
    # errors are large.
    week = np.tile([2.0, 2, 2, 2, 2, 10, 15], days // 7 + 1)[:days]
    std, bias, _ = horizon_errors(week, np.full(days, week.mean()), 7)
    assert std < 0.3 and abs(bias) < 0.3
    # Too little history: the one-step RMSE, no bias, no skew.
    short = np.array([np.nan, 3.0, 5.0, 3.0])
    assert horizon_errors(np.array([4.0, 4, 4, 4]), short, 7) == (pytest.approx(1.0), 0.0, 0.0)


def test_level_ratio_by_hand() -> None:
    days = BURN_IN_DAYS + MIN_WINDOWS + 100
    y = np.full(days, 15.0)
    # A level that rose from 10 to 20 over the history: the windows measured it at their
    # mean level, the ratio brings their spread to today's (20).
    rising = np.linspace(10.0, 20.0, days)
    windows = days - BURN_IN_DAYS - 7 + 1
    typical = rising[BURN_IN_DAYS : BURN_IN_DAYS + windows].mean()
    assert level_ratio(y, rising, 7, 20.0) == pytest.approx(20.0 / typical)
    assert level_ratio(y, np.full(days, 15.0), 7, 15.0) == pytest.approx(1.0)
    # Too little history, or no level at all: left as measured.
    assert level_ratio(y[:10], rising[:10], 7, 20.0) == 1.0
    assert level_ratio(y, np.zeros(days), 7, 0.0) == 1.0


def test_horizon_errors_skewness() -> None:
    rng = np.random.default_rng(5)
    days = 365
    # Symmetric noise: next to no skew. Rare lumps: the 7-day totals have a long right tail.
    even = np.rint(rng.normal(20, 4, days))
    lumps = np.where(rng.random(days) < 0.1, np.ceil(rng.gamma(0.7, 30, days)), 0.0)
    assert abs(horizon_errors(even, np.full(days, 20.0), 7).skew) < 0.3
    assert horizon_errors(lumps, np.full(days, lumps.mean()), 7).skew > 0.8


def test_steady_demand_never_stocks_out() -> None:
    def steady(rng: np.random.Generator, days: int) -> np.ndarray:
        return np.full(days, 6.0)

    simulation.KINDS["steady"] = steady
    try:
        run = simulation.simulate_sku("steady", 3, service_level=0.95, history_days=90, days=120)
    finally:
        del simulation.KINDS["steady"]
    assert run.cycles > 0 and run.stockout_cycles == 0
    assert (
        run.units_from_stock
        == run.demand_units
        == 6.0 * (120 - sum((run.params.lead_time_days, run.params.review_period_days)))
    )


def test_command_prints_the_table_and_draws_the_plot(
    capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path
) -> None:
    args = ["--skus", "3", "--days", "90", "--kind", "lumpy", "--seed", "5"]
    [alone] = simulation.simulate(["lumpy"], 3, days=90, seed=5)
    missed = abs(alone.achieved - 0.95) > TOLERANCE
    assert main([*args, "--plot", str(tmp_path / "plot.png")]) == int(missed)
    out = capsys.readouterr().out
    assert f"| lumpy | lumpy 3 | 3 | {alone.cycles} | 95.0% | {alone.achieved:.1%} |" in out
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")

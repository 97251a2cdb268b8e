"""Planning's pure parts (docs/spec.md §9): the demand class, the policy math against
hand-computed values, the forecast's method per class, and the worker's settings."""

from __future__ import annotations

import math
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pytest

from services.allocation.planning import policy
from services.allocation.planning.demand import DemandClass, Method, classify
from services.allocation.planning.params import PlanningParams
from services.allocation.planning.settings import PlanningSettings
from services.common.settings import SettingsError


@pytest.mark.parametrize(
    ("series", "expected", "adi", "cv2"),
    [
        ([], DemandClass.NONE, None, None),
        ([0, 0, 0], DemandClass.NONE, None, None),
        ([0, 7, 0], DemandClass.NONE, None, None),
        ([10, 10, 10, 10], DemandClass.SMOOTH, 1.0, 0.0),
        # sizes 1, 10: mean 5.5, variance 20.25, CV² 20.25 / 30.25
        ([1, 10, 1, 10], DemandClass.ERRATIC, 1.0, 20.25 / 30.25),
        # CV² exactly at the cut-off (sizes 17, 3: variance 49, mean² 100) is erratic
        ([17, 3], DemandClass.ERRATIC, 1.0, 0.49),
        # non-zero on days 0, 2, 4: gaps 2 and 2
        ([4, 0, 4, 0, 4], DemandClass.INTERMITTENT, 2.0, 0.0),
        # sizes 1, 9, 1: mean 11/3, deviations -8/3, 16/3, -8/3, variance (384/9) / 3,
        # CV² = (384/27) / (121/9) = 384/363
        ([1, 0, 9, 0, 1], DemandClass.LUMPY, 2.0, 384 / 363),
        # leading and trailing zero days do not count as gaps: days 3 and 4
        ([0, 0, 0, 5, 5, 0, 0], DemandClass.SMOOTH, 1.0, 0.0),
        # gaps 1 and 2: ADI 1.5
        ([2, 2, 0, 2], DemandClass.INTERMITTENT, 1.5, 0.0),
    ],
)
def test_demand_class(
    series: list[float], expected: DemandClass, adi: float | None, cv2: float | None
) -> None:
    got = classify(series)
    assert got.demand_class is expected
    assert got.adi == (None if adi is None else pytest.approx(adi))
    assert got.cv2 == (None if cv2 is None else pytest.approx(cv2))


def test_method_per_class() -> None:
    assert [Method.for_class(c) for c in DemandClass] == [
        Method.SES,
        Method.SES,
        Method.CROSTON_SBA,
        Method.TSB,
        Method.NONE,
    ]


Z95 = 1.6448536269514722  # the standard normal's 95th percentile


def test_levels_by_hand() -> None:
    params = PlanningParams("S", lead_time_days=4, review_period_days=5, service_level=0.95)
    levels = policy.levels(forecast=10.0, demand_std=2.0, params=params)
    # SS = z·sd·√(L+R) - 1 (whole units: ½ continuity correction, ½ for the order's rounding
    # up) = 1.64485·2·3 - 1; ROP = f·L + SS = 40 + SS; OUT = ROP + f·R = ROP + 50
    assert policy.WHOLE_UNITS == 1.0
    assert levels.safety_stock == pytest.approx(Z95 * 6 - 1)
    assert levels.reorder_point == pytest.approx(40 + Z95 * 6 - 1)
    assert levels.order_up_to == pytest.approx(90 + Z95 * 6 - 1)
    assert policy.z_for(0.5) == 0.0
    zero = policy.levels(0.0, 0.0, PlanningParams("S"))
    assert (zero.safety_stock, zero.reorder_point, zero.order_up_to) == (0.0, 0.0, 0.0)
    # A forecast that runs 0.5 a day behind (bias): 0.5·9 more safety stock; one that runs
    # ahead never makes it negative.
    behind = policy.levels(10.0, 2.0, params, bias=0.5)
    assert behind.safety_stock == pytest.approx(Z95 * 6 + 4.5 - 1)
    assert policy.levels(10.0, 2.0, params, bias=-5.0).safety_stock == 0.0
    # Stock carried above the level (forecast.carry_credit) counts: 3 units less, never < 0.
    assert policy.levels(10.0, 2.0, params, carried=3.0).safety_stock == pytest.approx(Z95 * 6 - 4)
    assert policy.levels(10.0, 2.0, params, carried=50.0).safety_stock == 0.0


def test_skewed_error_quantile() -> None:
    # The 14-day total of lumpy demand (a lump on one day in five, gamma sizes) has a long
    # right tail: its high quantiles, in standard units, lie well above the normal's z, and
    # z_for with the total's skewness lands much closer to them.
    rng = np.random.default_rng(11)
    days = np.where(rng.random((200_000, 14)) < 0.2, np.ceil(rng.gamma(0.7, 20, (200_000, 14))), 0)
    totals = days.sum(axis=1)
    std = totals.std()
    skew = float(np.mean((totals - totals.mean()) ** 3) / std**3)
    assert skew > 0.5
    for level in (0.9, 0.95, 0.98, 0.995):
        quantile = (np.quantile(totals, level) - totals.mean()) / std
        plain, skewed = policy.z_for(level), policy.z_for(level, skew)
        assert abs(skewed - quantile) < abs(plain - quantile) / 2, (level, quantile, skewed)
    # No skew: the normal's; a negative skew mirrors a positive one.
    assert policy.z_for(0.95, 0.0) == pytest.approx(Z95)
    assert policy.z_for(0.95, 0.005) == pytest.approx(Z95)
    assert policy.z_for(0.05, -1.0) == pytest.approx(-policy.z_for(0.95, 1.0))
    # Held to SKEW_RANGE: a wild estimate from a few windows moves it no further.
    assert policy.z_for(0.98, 40.0) == policy.z_for(0.98, policy.SKEW_RANGE[1])
    # The levels use it.
    params = PlanningParams("S", lead_time_days=4, review_period_days=5, service_level=0.98)
    lumpy = policy.levels(10.0, 2.0, params, skew=1.0)
    assert lumpy.safety_stock == pytest.approx(policy.z_for(0.98, 1.0) * 6 - 1)
    assert lumpy.safety_stock > policy.levels(10.0, 2.0, params).safety_stock


def test_whole_units_hit_the_target_on_average() -> None:
    # Integer demand D ~ round(N(μ, sd)): a position of k units covers it with probability
    # Φ((k + ½ - μ)/sd). The order raises the position to ceil(order-up-to); with order-up-to
    # = μ + z·sd - 1 and μ spread over a unit, that covers the target on average, where the
    # uncorrected ceil(μ + z·sd) overshoots (by about φ(z)/sd). (The corrected one is a little
    # under: Φ is concave above the median, 0.8977 here.)
    normal, sigma, z = NormalDist(), 2.0, policy.z_for(0.9)
    means = [10 + i / 1000 for i in range(1000)]

    def achieved(correction: float) -> float:
        return sum(
            normal.cdf((math.ceil(m + z * sigma - correction) + 0.5 - m) / sigma) for m in means
        ) / len(means)

    assert achieved(policy.WHOLE_UNITS) == pytest.approx(0.9, abs=0.005)
    assert achieved(0.0) > 0.915


@pytest.mark.parametrize(
    ("available", "moq", "pack", "expected"),
    [
        (20, 1, 1, 80),  # 99.87 - 20 = 79.87, up to 80 whole units
        (20, 1, 12, 84),  # up to a multiple of 12
        (20, 100, 12, 108),  # raised to the MOQ, then to a multiple of 12
        (99, 1, 1, 1),  # 0.87 short: one unit
        (100, 50, 10, 0),  # at or above the order-up-to: nothing, whatever the MOQ
        (-30, 1, 5, 130),  # backordered beyond supply: 129.87 -> 130
    ],
)
def test_suggested_order_quantity(available: int, moq: int, pack: int, expected: int) -> None:
    params = PlanningParams("S", min_order_quantity=moq, pack_size=pack)
    assert policy.suggested_order_quantity(90 + Z95 * 6, available, params) == expected


def test_float_noise_is_not_a_unit() -> None:
    assert policy.suggested_order_quantity(0.1 + 0.2, 0, PlanningParams("S")) == 1
    assert policy.suggested_order_quantity(3 * 0.1 * 10, 3, PlanningParams("S")) == 0


def test_forecast_methods_through_the_library() -> None:
    from services.allocation.planning.forecast import forecast

    none = forecast([0, 0, 3, 0])
    assert (none.method, none.daily_units, none.demand_std) == (Method.NONE, 0.0, 0.0)
    flat = forecast([5.0] * 30)
    assert flat.method is Method.SES
    assert flat.daily_units == pytest.approx(5.0)
    assert flat.demand_std < 1.5  # only the first fitted value (0) misses
    assert forecast([4, 0, 0, 4, 0, 0, 4, 0, 0, 4]).method is Method.CROSTON_SBA
    lumpy = forecast([1, 0, 0, 20, 0, 0, 1, 0, 0, 15, 0, 0])
    assert lumpy.method is Method.TSB
    assert lumpy.daily_units > 0 and math.isfinite(lumpy.demand_std) and lumpy.demand_std > 0


def test_carried_excess_by_hand() -> None:
    from services.allocation.planning.forecast import BURN_IN_DAYS, MIN_WINDOWS, carried_excess

    # Demand 5 a day, a level of 5 but 12 on one day (t0): over a 2-day horizon the level is
    # 10, and 24 at t0. Reviewed daily, the position after t0 falls only by the demand: 24,
    # then 19 and 14 (9 and 4 above the level), then the level again.
    days = BURN_IN_DAYS + MIN_WINDOWS + 20
    y = np.full(days, 5.0)
    fitted = np.full(days, 5.0)
    t0 = BURN_IN_DAYS + 10
    fitted[t0] = 12.0
    excess = carried_excess(y, fitted, 2, 1)
    assert excess.size == days - BURN_IN_DAYS - 1
    assert [i for i in range(excess.size) if excess[i]] == [11, 12]
    assert (excess[11], excess[12]) == (9.0, 4.0)
    # Reviewed every 2 days: the review after t0 finds 24 - 10 = 14 (4 above), the next 4;
    # the reviews of the other phase never carry anything.
    excess = carried_excess(y, fitted, 2, 2)
    assert [i for i in range(excess.size) if excess[i]] == [12]
    assert excess[12] == 4.0
    # Too little history for the windows: nothing.
    assert carried_excess(y[: BURN_IN_DAYS + 5], fitted[: BURN_IN_DAYS + 5], 2, 1).size == 0


def test_carry_credit_by_hand() -> None:
    from services.allocation.planning.forecast import carry_credit

    z90 = NormalDist().inv_cdf(0.9)
    assert carry_credit(np.zeros(50), 1.0, 0.0, 0.9) == 0.0
    # Half the reviews carry far more than any error: those cycles never stock out, so the
    # other half need Φ(s) = 0.8 for 0.9 over all: s = 0.8416 against the plain 1.2816.
    excess = np.array([0.0, 50.0] * 25)
    assert carry_credit(excess, 1.0, 0.0, 0.9) == pytest.approx(
        z90 - NormalDist().inv_cdf(0.8), abs=1e-4
    )
    # In units of the spread and around the mean (bias).
    assert carry_credit(excess, 3.0, 7.0, 0.9) == pytest.approx(
        3 * (z90 - NormalDist().inv_cdf(0.8)), abs=1e-4
    )


def test_planning_settings() -> None:
    assert PlanningSettings.from_env({}) == PlanningSettings(900, True, "UTC")
    got = PlanningSettings.from_env(
        {"PLANNING_INTERVAL": "60", "PLANNING_WORKER": "OFF", "PLANNING_TIME_ZONE": "Europe/Berlin"}
    )
    assert got == PlanningSettings(60, False, "Europe/Berlin")
    for env, name in (
        ({"PLANNING_INTERVAL": "0"}, "PLANNING_INTERVAL"),
        ({"PLANNING_INTERVAL": "15m"}, "PLANNING_INTERVAL"),
        ({"PLANNING_WORKER": "maybe"}, "PLANNING_WORKER"),
        ({"PLANNING_TIME_ZONE": "Mars/Olympus"}, "PLANNING_TIME_ZONE"),
        ({"PLANNING_TIME_ZONE": "../etc"}, "PLANNING_TIME_ZONE"),
    ):
        with pytest.raises(SettingsError, match=name):
            PlanningSettings.from_env(env)


def test_backtest_scores_by_hand() -> None:
    from services.allocation.planning.backtest import MethodScore, Trial, scores, trial

    assert trial("S", [1, 2, 3], 3) is None
    t = trial("S", [5.0] * 20 + [2, 4], 2)
    assert t is not None
    assert (t.method, t.actual_daily) == ("SES", 3.0)
    assert t.forecast_daily == pytest.approx(5.0)
    got = scores(
        [
            Trial("A", "SES", 4.0, 3.0),  # error +1
            Trial("B", "SES", 1.0, 4.0),  # error -3
            Trial("C", "NONE", 0.0, 0.0),
        ]
    )
    assert got == [
        MethodScore("NONE", 1, 0.0, 0.0, None),
        MethodScore("SES", 2, 2.0, -1.0, 4 / 7),
    ]


def test_the_server_never_loads_the_planning_libraries() -> None:
    # The gRPC server imports planning's advice and policy (the suggested order) but not
    # the forecasting library, numpy or scipy: hundreds of MB that only the planning worker
    # pays (docs/planning.md).
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, services.allocation.entrypoints.grpc; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'statsforecast', 'numpy', 'scipy', 'pandas'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]"

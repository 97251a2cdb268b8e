"""The daily forecast of one SKU with the forecasting library (statsforecast), by the method
its demand class calls for (docs/spec.md §9). Imported by the planning worker only: the
library costs hundreds of MB, which the gRPC server never loads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from scipy.special import ndtr
from statsforecast.models import TSB, CrostonSBA, SimpleExponentialSmoothingOptimized

from services.allocation.planning.demand import DemandClass, Method, classify

# TSB's smoothing of demand sizes and of the probability of demand (the library does not fit
# them): 0.1, as the library's Croston uses, within the 0.05-0.2 the literature advises. With
# 0.2 the level jumps after every lump; the order-up-to follows it up but cannot follow it down
# (stock is not sent back), and the policy simulation overshot a 95% target by 3 points.
TSB_ALPHA_D = 0.1
TSB_ALPHA_P = 0.1
# Horizon errors (horizon_errors) need enough history: the first BURN_IN_DAYS of fitted values
# are left out (the level is still settling from its start value) and at least MIN_WINDOWS
# windows must remain; otherwise the one-step errors stand in.
BURN_IN_DAYS = 28
MIN_WINDOWS = 28


@dataclass(frozen=True)
class Forecast:
    demand_class: DemandClass
    method: Method
    daily_units: float
    # The forecast's error over the horizon, per day: its total over `horizon` days has
    # standard deviation demand_std·√horizon and mean bias·horizon (see horizon_errors).
    demand_std: float
    bias: float = 0.0  # actual - forecast: > 0 when the forecast runs behind (a rising trend)
    # Units the safety stock may count on from stock carried above the order-up-to level
    # (carry_credit): 0 unless a service level was given and the history is long enough.
    carried: float = 0.0
    # The skewness of the horizon's error (horizon_errors): > 0 when it has a long right
    # tail (lumpy, erratic demand), which the policy's quantile allows for (policy.z_for).
    skew: float = 0.0


class HorizonErrors(NamedTuple):
    """The in-sample error of `horizon`-day totals: standard deviation per √day, mean per
    day, skewness (horizon_errors)."""

    std: float
    bias: float
    skew: float = 0.0


def forecast(
    series: Sequence[float],
    horizon: int = 1,
    review: int = 1,
    service_level: float | None = None,
) -> Forecast:
    """Forecast of a daily series (oldest first, days without demand as 0), and the error it
    makes over the next `horizon` days (the policy's lead time + review period). With the
    review period and the service level, also the stock the policy carries above its level
    that the safety stock may count on (carry_credit)."""
    demand_class = classify(series).demand_class
    method = Method.for_class(demand_class)
    if method is Method.NONE:
        return Forecast(demand_class, method, 0.0, 0.0)
    y = np.asarray(series, dtype=np.float64)
    model: SimpleExponentialSmoothingOptimized | CrostonSBA | TSB
    if method is Method.SES:
        model = SimpleExponentialSmoothingOptimized()
    elif method is Method.CROSTON_SBA:
        model = CrostonSBA()
    else:
        model = TSB(alpha_d=TSB_ALPHA_D, alpha_p=TSB_ALPHA_P)
    result = model.forecast(y=y, h=1, fitted=True)
    fitted = np.asarray(result["fitted"], dtype=np.float64)
    daily = float(result["mean"][0])
    horizon = max(horizon, 1)
    std, bias, skew = horizon_errors(y, fitted, horizon)
    daily = max(daily, 0.0) if math.isfinite(daily) else 0.0
    if method is Method.SES:
        std *= level_ratio(y, fitted, horizon, daily)
    carried = 0.0
    if service_level is not None and (excess := carried_excess(y, fitted, horizon, review)).size:
        carried = carry_credit(excess, std * math.sqrt(horizon), bias * horizon, service_level)
    return Forecast(demand_class, method, daily, std, bias, carried, skew)


def horizon_errors(y: np.ndarray, fitted: np.ndarray, horizon: int) -> HorizonErrors:
    """Standard deviation and mean per day, and skewness, of the in-sample errors of
    `horizon`-day totals.

    Every method here forecasts a flat level, so from the end of day t-1 the forecast of the
    `horizon` days from t is horizon * fitted[t]; its error is the actual total minus that
    (windows overlap). The standard deviation is returned per √day and the mean per day, so
    that z·std·√H + bias·H is the normal quantile of the H-day error. Unlike the one-step
    error scaled by √H, this sees the level's own error repeated on every day of the
    horizon, a trend the level lags behind (the mean), and weekly ups and downs that cancel
    within a horizon; the skewness, how far the error's right tail reaches beyond the
    normal's (lumps: see policy.z_for). With too little history (BURN_IN_DAYS + MIN_WINDOWS
    windows): the RMSE of the one-step errors, no bias and no skew, which assumes
    independent, normal daily errors."""
    measured, level = _windows(y, fitted, horizon)
    if not measured.size:
        known = ~np.isnan(fitted)
        one_step = y[known] - fitted[known]
        return HorizonErrors(float(np.sqrt(np.mean(one_step**2))) if one_step.size else 0.0, 0.0)
    totals = np.convolve(measured, np.ones(horizon), mode="valid")
    errors = totals - horizon * level[: totals.size]
    mean, std = float(np.mean(errors)), float(np.std(errors))
    skew = float(np.mean((errors - mean) ** 3)) / std**3 if std > 0 else 0.0
    return HorizonErrors(std / math.sqrt(horizon), mean / horizon, skew)


def level_ratio(y: np.ndarray, fitted: np.ndarray, horizon: int, daily: float) -> float:
    """How far the level now (`daily`) lies from its mean over the windows horizon_errors
    measured (1 when there are none). Demand's spread grows with its level (a multiplicative
    error, as in ETS(M,N,N)): the spread measured over the history is that of its average
    level, too small when demand has risen since and too large when it fell. SES's level
    (smooth and erratic demand, a trend) moves slowly, so scaling the spread by it adds
    little noise; Croston's and TSB's levels jump after each lump, and are not used so."""
    measured, level = _windows(y, fitted, horizon)
    if not measured.size:
        return 1.0
    typical = float(np.mean(level[: measured.size - horizon + 1]))
    return daily / typical if typical > 0 else 1.0


def _windows(y: np.ndarray, fitted: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The days horizon_errors measures: known fitted values after the burn-in (empty when
    there are fewer than MIN_WINDOWS windows)."""
    known = ~np.isnan(fitted)
    y, fitted = y[known], fitted[known]
    if y.size - BURN_IN_DAYS - horizon + 1 < MIN_WINDOWS:
        return y[:0], fitted[:0]
    return y[BURN_IN_DAYS:], fitted[BURN_IN_DAYS:]


def carried_excess(y: np.ndarray, fitted: np.ndarray, horizon: int, review: int) -> np.ndarray:
    """Per window of horizon_errors, the stock an order-up-to policy would have held above
    its level, replayed on the history: reviewing every `review` days it raises the position
    to the level (horizon * fitted[t], the safety stock left out: it is the same at every
    review), but cannot lower it, since stock is not sent back; a position above the level
    only falls by the demand. So position[t] = max(level[t], position[t - review] - demand of
    the review days before t), which is a running maximum of level + demand before t within
    each phase of the review period. Empty when the history is too short for the windows."""
    y, fitted = _windows(y, fitted, horizon)
    if not y.size:
        return y
    windows = y.size - horizon + 1
    level = horizon * fitted[:windows]
    before = np.concatenate(([0.0], np.cumsum(y)))[:windows]
    held = level + before
    review = max(review, 1)
    for phase in range(min(review, windows)):
        held[phase::review] = np.maximum.accumulate(held[phase::review])
    return np.maximum(held - before - level, 0.0)


def carry_credit(excess: np.ndarray, spread: float, mean: float, service_level: float) -> float:
    """How much lower the safety stock may be because of the stock carried above the level.

    A cycle that starts with `excess` above the order-up-to level ends without a stockout
    when the horizon's error is at most safety stock + excess; with the error normal (mean,
    spread: horizon_errors' bias and standard deviation over the whole horizon), the cycle
    service level over the history's reviews is the mean of Φ((s + excess - mean) / spread).
    The smallest safety stock s that makes that mean reach the target is found by bisection
    (to 2⁻²⁴ of the largest excess); the credit is how far it lies below the normal quantile
    mean + z·spread (0 when nothing is carried)."""
    if spread <= 0 or not excess.size or float(excess.max()) <= 0:
        return 0.0
    quantile = mean + NormalDist().inv_cdf(service_level) * spread
    low, high = quantile - float(excess.max()), quantile
    carrying = excess[excess > 0]  # the reviews carrying nothing share one term
    shifted, empty = (carrying - mean) / spread, excess.size - carrying.size
    needed = service_level * excess.size
    for _ in range(24):
        middle = (low + high) / 2
        covered = ndtr(shifted + middle / spread).sum() + empty * ndtr((middle - mean) / spread)
        if covered >= needed:
            high = middle
        else:
            low = middle
    return quantile - high

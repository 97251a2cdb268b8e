"""The replenishment policy (docs/spec.md §9, docs/planning.md), plain functions: with daily
forecast f, lead time L, review period R, the forecast's error over L+R days per day
(standard deviation sd, mean bias, skewness: forecast.horizon_errors), z for the cycle
service level and that skewness (z_for),
and the stock carried above the level the cycles can count on (forecast.carry_credit),
safety stock = max(0, z·sd·√(L+R) + bias·(L+R) - carried - 1) (1: WHOLE_UNITS), reorder
point = f·L + safety stock, order-up-to = reorder point + f·R, suggested order = max(0,
order-up-to - available) raised to the MOQ and rounded up to a multiple of the pack size.
(Days of cover, available / f, is computed where `available` is: the view planning_advice,
repeatable/planning.sql.)"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from services.allocation.planning.params import PlanningParams


@dataclass(frozen=True)
class Levels:
    """What a refresh stores: the levels that do not depend on the SKU's current stock."""

    safety_stock: float
    reorder_point: float
    order_up_to: float


# The skewness z_for allows for is held to this range: a few hundred overlapping windows give
# a noisy estimate. Below SKEW_NORMAL the error is taken as normal.
SKEW_RANGE = (-2.0, 2.0)
SKEW_NORMAL = 0.01


def z_for(service_level: float, skew: float = 0.0) -> float:
    """The standard score of the error's `service_level` quantile: the normal's, or with a
    skewed error, the quantile of the gamma distribution with the error's mean, spread and
    skewness (Pearson type III: shape 4/skew², which tends to the normal as the skew goes
    to 0). The gamma is the usual model of lead-time demand that comes in lumps, sums of
    a few skewed sizes; a long right tail moves the high quantiles up (at 98% and skewness 1,
    2.54 instead of 2.05) and those near 85% hardly at all."""
    skew = min(max(skew, SKEW_RANGE[0]), SKEW_RANGE[1])
    if abs(skew) < SKEW_NORMAL:
        return NormalDist().inv_cdf(service_level)
    # Only the planning worker computes levels: the server, which imports this module for
    # the suggested order, never loads scipy.
    from scipy.special import gammaincinv  # the gamma distribution's quantile

    shape = 4 / (skew * skew)
    if skew > 0:
        return float(gammaincinv(shape, service_level) - shape) / math.sqrt(shape)
    return float(shape - gammaincinv(shape, 1 - service_level)) / math.sqrt(shape)


# Whole units (docs/planning.md): demand is counted in whole units, so a position of k units
# lasts the horizon with probability P(D <= k) = Φ((k + ½ - μ)/sd) (continuity correction),
# and the order rounds the position up to a whole unit (½ on average). Both would add to the
# normal quantile μ + z·sd; the level is lowered by them instead.
WHOLE_UNITS = 1.0


def levels(
    forecast: float,
    demand_std: float,
    params: PlanningParams,
    bias: float = 0.0,
    carried: float = 0.0,
    skew: float = 0.0,
) -> Levels:
    lead, review = params.lead_time_days, params.review_period_days
    horizon = lead + review
    quantile = z_for(params.service_level, skew) * demand_std * math.sqrt(horizon) + bias * horizon
    safety = max(0.0, quantile - carried - WHOLE_UNITS)
    reorder_point = forecast * lead + safety
    return Levels(safety, reorder_point, reorder_point + forecast * review)


def suggested_order_quantity(order_up_to: float, available: int, params: PlanningParams) -> int:
    short = math.ceil(order_up_to - available - 1e-9)  # whole units; float noise is not a unit
    if short <= 0:
        return 0
    units = max(short, params.min_order_quantity)
    return -(-units // params.pack_size) * params.pack_size

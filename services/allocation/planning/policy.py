"""The replenishment policy (docs/spec.md §9, docs/planning.md), plain functions: with daily
forecast f, lead time L, review period R, z for the cycle service level, and the forecast's
error over L+R days per day (standard deviation sd, mean bias: forecast.horizon_errors),
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


def z_for(service_level: float) -> float:
    return NormalDist().inv_cdf(service_level)


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
) -> Levels:
    lead, review = params.lead_time_days, params.review_period_days
    horizon = lead + review
    quantile = z_for(params.service_level) * demand_std * math.sqrt(horizon) + bias * horizon
    safety = max(0.0, quantile - carried - WHOLE_UNITS)
    reorder_point = forecast * lead + safety
    return Levels(safety, reorder_point, reorder_point + forecast * review)


def suggested_order_quantity(order_up_to: float, available: int, params: PlanningParams) -> int:
    short = math.ceil(order_up_to - available - 1e-9)  # whole units; float noise is not a unit
    if short <= 0:
        return 0
    units = max(short, params.min_order_quantity)
    return -(-units // params.pack_size) * params.pack_size

"""One SKU's planning answer from its history and parameters (docs/spec.md §9): the
forecast by demand class with its error over lead time + review period, then the policy's
levels. The planning worker and the policy simulation (simulation.py) both call this, so
the backtest measures the service's own code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.allocation.planning import policy
from services.allocation.planning.forecast import Forecast, forecast
from services.allocation.planning.params import PlanningParams


@dataclass(frozen=True)
class Plan:
    forecast: Forecast
    levels: policy.Levels


def plan(series: Sequence[float], params: PlanningParams) -> Plan:
    answer = forecast(
        series,
        params.lead_time_days + params.review_period_days,
        params.review_period_days,
        params.service_level,
    )
    levels = policy.levels(
        answer.daily_units, answer.demand_std, params, answer.bias, answer.carried, answer.skew
    )
    return Plan(answer, levels)

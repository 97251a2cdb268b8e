"""What planning answers for a SKU (docs/spec.md §9): a refresh's stored result, and the
advice as of now (with current available units and the suggested order)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from services.allocation.planning import policy
from services.allocation.planning.params import PlanningParams


@dataclass(frozen=True)
class Result:
    """A refresh's answer for one SKU (planning_result)."""

    sku: str
    demand_class: str
    forecast_method: str
    forecast_daily_units: float
    demand_std: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    history_days: int


@dataclass(frozen=True)
class Advice:
    """A SKU's advice as of now (the view planning_advice) and its parameters. `result` is
    None while the planning worker never refreshed the SKU."""

    sku: str
    available: int
    days_of_cover: float | None
    result: Result | None
    refreshed_at: dt.datetime | None
    params: PlanningParams
    event_version: int = 0

    @property
    def suggested_order_quantity(self) -> int:
        if self.result is None:
            return 0
        return policy.suggested_order_quantity(self.result.order_up_to, self.available, self.params)

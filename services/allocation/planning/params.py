"""A SKU's planning parameters (SetPlanningParams) and their bounds (docs/spec.md §9)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_DAYS = 3650  # lead time and review period: at most ten years
MIN_SERVICE_LEVEL, MAX_SERVICE_LEVEL = 0.5, 0.999


@dataclass(frozen=True)
class PlanningParams:
    """Defaults are those of a SKU never set."""

    sku: str
    lead_time_days: int = 14
    service_level: float = 0.95
    review_period_days: int = 7
    min_order_quantity: int = 1
    pack_size: int = 1

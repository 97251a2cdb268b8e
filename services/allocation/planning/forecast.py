"""The daily forecast of one SKU with the forecasting library (statsforecast), by the method
its demand class calls for (docs/spec.md §9). Imported by the planning worker only: the
library costs hundreds of MB, which the gRPC server never loads."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from statsforecast.models import TSB, CrostonSBA, SimpleExponentialSmoothingOptimized

from services.allocation.planning.demand import DemandClass, Method, classify

# TSB's smoothing of demand sizes and of the probability of demand: the values its authors'
# examples use; the library does not fit them.
TSB_ALPHA_D = 0.2
TSB_ALPHA_P = 0.2


@dataclass(frozen=True)
class Forecast:
    demand_class: DemandClass
    method: Method
    daily_units: float
    demand_std: float  # RMSE of the one-step in-sample errors


def forecast(series: Sequence[float]) -> Forecast:
    """Forecast of a daily series (oldest first, days without demand as 0)."""
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
    errors = (y - fitted)[~np.isnan(fitted)]
    std = float(np.sqrt(np.mean(errors**2))) if errors.size else 0.0
    daily = float(result["mean"][0])
    return Forecast(demand_class, method, max(daily, 0.0) if math.isfinite(daily) else 0.0, std)

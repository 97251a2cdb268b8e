"""A SKU's demand class (Syntetos-Boylan, docs/spec.md §9) and the forecasting method it
calls for: plain functions over a daily series (units per day, oldest first)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

ADI_CUTOFF = 1.32  # mean gap between non-zero days at or above it: intermittent
CV2_CUTOFF = 0.49  # squared coefficient of variation of non-zero sizes at or above: erratic


class DemandClass(StrEnum):
    SMOOTH = "SMOOTH"
    ERRATIC = "ERRATIC"
    INTERMITTENT = "INTERMITTENT"
    LUMPY = "LUMPY"
    NONE = "NONE"  # fewer than 2 non-zero days: too little to say


class Method(StrEnum):
    SES = "SES"  # simple exponential smoothing
    CROSTON_SBA = "CROSTON_SBA"  # Croston with the Syntetos-Boylan approximation
    TSB = "TSB"  # Teunter-Syntetos-Babai
    NONE = "NONE"  # forecast 0

    @classmethod
    def for_class(cls, demand_class: DemandClass) -> Method:
        return _METHOD[demand_class]


_METHOD = {
    DemandClass.SMOOTH: Method.SES,
    DemandClass.ERRATIC: Method.SES,
    DemandClass.INTERMITTENT: Method.CROSTON_SBA,
    DemandClass.LUMPY: Method.TSB,
    DemandClass.NONE: Method.NONE,
}


@dataclass(frozen=True)
class Classified:
    demand_class: DemandClass
    adi: float | None  # None with fewer than 2 non-zero days
    cv2: float | None


def classify(series: Sequence[float]) -> Classified:
    """ADI = mean gap (in days) between successive non-zero days; CV² = (population standard
    deviation / mean)² of the non-zero sizes."""
    days = [i for i, units in enumerate(series) if units > 0]
    if len(days) < 2:
        return Classified(DemandClass.NONE, None, None)
    adi = (days[-1] - days[0]) / (len(days) - 1)
    sizes = [series[i] for i in days]
    mean = sum(sizes) / len(sizes)
    cv2 = (sum((s - mean) ** 2 for s in sizes) / len(sizes)) / mean**2
    if adi < ADI_CUTOFF:
        demand_class = DemandClass.SMOOTH if cv2 < CV2_CUTOFF else DemandClass.ERRATIC
    else:
        demand_class = DemandClass.INTERMITTENT if cv2 < CV2_CUTOFF else DemandClass.LUMPY
    return Classified(demand_class, adi, cv2)

"""Metrics of the allocation service, recorded after the transaction they describe commits."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

FILL_LATENCY = Histogram(
    "backorder_fill_latency_seconds",
    "From a stock event's occurred_at to the commit of the fill it caused",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RESERVED_UNITS = Counter("backorder_reserved_units_total", "Units reserved for lines by fills")

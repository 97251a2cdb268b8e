"""Metrics of the allocation service: fill counters recorded after the transaction they
describe commits, and backlog gauges sampled from the `sku` counters.

backorder_backlog_units{sku} is kept to the TOP_SKUS SKUs with the most backordered units, so
the label set stays bounded however many SKUs exist; the totals cover every SKU.
"""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.common import db, metrics
from services.common.amqp import ALLOCATION_INBOX
from services.common.metrics import Sampler
from services.common.settings import ServiceSettings

FILL_LATENCY = Histogram(
    "backorder_fill_latency_seconds",
    "From a stock event's occurred_at to the commit of the fill it caused",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RESERVED_UNITS = Counter("backorder_reserved_units_total", "Units reserved for lines by fills")

TOP_SKUS = 20

BACKLOG_UNITS = Gauge(
    "backorder_backlog_units",
    f"Backordered units of the {TOP_SKUS} SKUs with the largest backlog",
    ["sku"],
)
BACKLOG_UNITS_TOTAL = Gauge("backorder_backlog_units_total", "Backordered units, all SKUs")
WAITING_LINES_TOTAL = Gauge(
    "backorder_waiting_lines_total", "Lines with backordered units, all SKUs"
)

HELD_STOCK_EVENTS = Gauge(
    "backorder_held_stock_events",
    "Stock events held because they arrived ahead of a missing stock version of their SKU",
)
HELD_STOCK_EVENT_AGE = Gauge(
    "backorder_held_stock_event_oldest_age_seconds",
    "Age of the oldest held stock event (0 when none): a version that never comes (dead-"
    "lettered) keeps its SKU's later stock events waiting",
)

SHIP_COMPLETE_OLDEST_WAIT = Gauge(
    "backorder_ship_complete_oldest_wait_seconds",
    f"Age of the oldest waiting ship-complete order per SKU (the {TOP_SKUS} SKUs where it is "
    "oldest)",
    ["sku"],
)


SKUS_BELOW_REORDER_POINT = Gauge(
    "backorder_skus_below_reorder_point",
    "SKUs whose available units are below their reorder point (docs/spec.md §9), as of the sample",
)


def planning_sampler(pool: asyncpg.Pool) -> Sampler:
    """backorder_skus_below_reorder_point from the index of the SKUs below their reorder
    point (sku_reorder_urgency, migration 0016): the count costs as many rows as it counts,
    not one per SKU."""

    async def sample() -> None:
        below = await pool.fetchval(
            "select count(*) from planning_advice where available < reorder_point"
        )
        SKUS_BELOW_REORDER_POINT.set(below)

    return Sampler("planning", sample)


def backlog_sampler(pool: asyncpg.Pool) -> Sampler:
    shown: set[str] = set()
    shown_waits: set[str] = set()

    async def sample() -> None:
        async with db.connection(pool) as conn:
            totals = await conn.fetchrow(
                "select coalesce(sum(backordered_units), 0)::bigint as units,"
                " coalesce(sum(waiting_lines), 0)::bigint as lines from sku"
            )
            top = await conn.fetch(
                "select sku, backordered_units from sku where backordered_units > 0"
                " order by backordered_units desc, sku limit $1",
                TOP_SKUS,
            )
            held = await conn.fetchrow(
                "select count(*) as events, coalesce(extract(epoch from"
                " clock_timestamp() - min(held_at)), 0)::float8 as age from held_stock_event"
            )
            waits = await conn.fetch(
                "select sku, extract(epoch from clock_timestamp() - min(waiting_since))::float8"
                " as age from order_waiting_sku group by sku order by age desc, sku limit $1",
                TOP_SKUS,
            )
        HELD_STOCK_EVENTS.set(held["events"])
        HELD_STOCK_EVENT_AGE.set(held["age"])
        oldest = {row["sku"]: row["age"] for row in waits}
        for sku, age in oldest.items():
            SHIP_COMPLETE_OLDEST_WAIT.labels(sku).set(age)
        for sku in shown_waits - set(oldest):
            SHIP_COMPLETE_OLDEST_WAIT.remove(sku)
        shown_waits.clear()
        shown_waits.update(oldest)
        BACKLOG_UNITS_TOTAL.set(totals["units"])
        WAITING_LINES_TOTAL.set(totals["lines"])
        current = {row["sku"]: row["backordered_units"] for row in top}
        for sku, units in current.items():
            BACKLOG_UNITS.labels(sku).set(units)
        # SKUs that left the top (or were drained) disappear rather than freeze at a value.
        for sku in shown - set(current):
            BACKLOG_UNITS.remove(sku)
        shown.clear()
        shown.update(current)

    return Sampler("backlog", sample)


def samplers(pool: asyncpg.Pool, settings: ServiceSettings) -> list[Sampler]:
    """Everything the allocation service samples: outbox, dead letters, backlog, planning."""
    return [
        *metrics.service_samplers(pool, settings, ALLOCATION_INBOX),
        backlog_sampler(pool),
        planning_sampler(pool),
    ]

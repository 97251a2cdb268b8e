"""Metrics of the inventory service, recorded after the transaction they describe commits
(handlers hand them to the unit of work; none is recorded inside a transaction)."""

from __future__ import annotations

import logging

from prometheus_client import Counter

from services.inventory.domain.model import Movement

log = logging.getLogger("services.inventory.handlers")

SHORTFALLS = Counter(
    "backorder_stock_shortfalls_total",
    "Issues for fulfilled lines that asked for more units than were on hand (discrepancies)",
)
SHORTFALL_UNITS = Counter(
    "backorder_stock_shortfall_units_total",
    "Units fulfilled lines asked for that were not on hand (recorded, not issued)",
)


def shortfall(movement: Movement, requested: int) -> None:
    """An issue found fewer units on hand than the fulfillment asked for: counted, and a
    warning for people to look at the shelf."""
    SHORTFALLS.inc()
    SHORTFALL_UNITS.inc(movement.shortfall)
    log.warning(
        "issue short of on hand: recorded as a discrepancy",
        extra={
            "sku": movement.sku,
            "fulfillment_id": movement.key,
            "requested": requested,
            "shortfall": movement.shortfall,
        },
    )

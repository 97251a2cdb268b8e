"""The allocation service's nouns: a SKU with its policy and counters, a line (the client's
order line and where it stands), its status, an open inbound and a reservation (one entry
of the decision log). Adapters map database rows to these; handlers and entrypoints use
only these.

Naming: `line_id` is always the client's id of a line within its order; the database's key
of a line is `key` (it orders lines that arrived at the same moment: the last tie-breaker
of rank).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.allocation.domain.eta import Arrival
from services.allocation.domain.fill import (
    DEFAULT_LOCATION,
    FillPolicy,
    FillRule,
    LocationStrategy,
    WaitingLine,
)


class LineStatus(StrEnum):
    """Where a line stands, derived from its units (the database stores the same words in
    the generated column `line.status`; the proto's LineStatus is LINE_STATUS_<name>)."""

    BACKORDERED = "BACKORDERED"
    PARTIALLY_RESERVED = "PARTIALLY_RESERVED"
    RESERVED = "RESERVED"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Sku:
    sku: str
    fill_policy: FillPolicy
    backorders_accepted: bool
    backorder_limit: int  # 0: no limit
    free_units: int
    reserved_units: int
    fulfilled_units: int
    backordered_units: int
    waiting_lines: int
    unmatched_shrinkage_units: int
    location_strategy: LocationStrategy
    max_units_per_customer: int = 0  # 0: no cap (docs/spec.md §2, per-customer cap)


@dataclass(frozen=True)
class Line:
    key: int
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    customer_id: str
    placed_at: datetime
    reserved: int
    fulfilled: int
    cancelled: bool
    backordered: int
    status: LineStatus
    eta: datetime | None
    eta_version: int
    placed_priority: int
    # The locations the line may ship from, as placed; None: any active location.
    locations: tuple[str, ...] | None = None

    @property
    def shipped(self) -> bool:
        """Every unit fulfilled: nothing is left to cancel, rank or reserve."""
        return self.fulfilled == self.quantity

    def waiting(self) -> WaitingLine:
        at = None if self.locations is None else frozenset(self.locations)
        return WaitingLine(self.key, self.backordered, self.allow_partial, at)


@dataclass(frozen=True)
class Inbound:
    """An open inbound of a SKU as the allocation service knows it (from inbound.updated)."""

    inbound_id: str
    open_quantity: int
    expected_at: datetime

    location_id: str = DEFAULT_LOCATION

    def arrival(self) -> Arrival:
        return Arrival(self.expected_at, self.open_quantity, self.location_id)


class ReservationRule(StrEnum):
    """Why a reservation was made or undone (the fill's rules, and shrinkage)."""

    PARTIAL = FillRule.PARTIAL.value
    WHOLE = FillRule.WHOLE.value
    WHOLE_AFTER_SKIP = FillRule.WHOLE_AFTER_SKIP.value
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class Reservation:
    """One entry of the decision log."""

    reservation_id: int
    order_id: str
    line_id: str
    sku: str
    quantity: int
    cause: str
    cause_event_id: uuid.UUID | None
    queue_position: int
    rule: ReservationRule
    fill_policy: FillPolicy
    created_at: datetime
    location_id: str = DEFAULT_LOCATION

"""The inventory service's nouns: locations, a SKU's stock (totals and per location), the
movements of its ledger and their kinds, an inbound (units expected), and the kinds of change
WatchStock reports. Adapters
map database rows to these; handlers and entrypoints use only these."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class MovementKind(StrEnum):
    """What moved units on hand (the proto's MovementKind is MOVEMENT_KIND_<name>)."""

    RECEIPT = "RECEIPT"
    ADJUSTMENT = "ADJUSTMENT"
    ISSUE = "ISSUE"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"


# The location that always exists (docs/spec.md §8): an empty location_id where one
# location is written means this one.
DEFAULT_LOCATION = "default"


class StockChangeKind(StrEnum):
    """Why WatchStock sends a SKU's stock (STOCK_CHANGE_KIND_<name> in the proto)."""

    SNAPSHOT = "SNAPSHOT"
    RECEIPT = "RECEIPT"
    ADJUSTMENT = "ADJUSTMENT"
    ISSUE = "ISSUE"
    INBOUND = "INBOUND"
    TRANSFER = "TRANSFER"


@dataclass(frozen=True)
class Location:
    location_id: str
    name: str
    fill_rank: int
    active: bool
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class LocationStock:
    """A SKU at one location."""

    location_id: str
    on_hand: int
    inbound_quantity: int
    in_transit_quantity: int


@dataclass(frozen=True)
class Stock:
    """A SKU's totals and, in `locations`, its figures at each location that holds or
    expects it (or ever did), by fill_rank then location_id."""

    sku: str
    on_hand: int
    inbound_quantity: int
    updated_at: datetime
    in_transit_quantity: int = 0
    locations: tuple[LocationStock, ...] = ()


@dataclass(frozen=True)
class Movement:
    """One entry of the ledger; `key` is its idempotency key (receipt_id, adjustment_id,
    fulfillment_id or transfer_id, by kind)."""

    id: int
    sku: str
    kind: MovementKind
    key: str
    quantity: int
    on_hand_after: int
    inbound_id: str
    reason: str
    note: str
    order_id: str
    line_id: str
    shortfall: int
    event_id: uuid.UUID | None
    created_at: datetime
    location_id: str = DEFAULT_LOCATION
    # Transfers: the other end (destination of TRANSFER_OUT, source of TRANSFER_IN).
    other_location_id: str = ""


@dataclass(frozen=True)
class Inbound:
    inbound_id: str
    sku: str
    quantity: int
    received_quantity: int
    expected_at: datetime
    cancelled: bool
    open_quantity: int
    version: int
    created_at: datetime
    updated_at: datetime
    location_id: str = DEFAULT_LOCATION
    # A transfer in transit (inbound_id = transfer_id): where the units left.
    from_location_id: str = ""

"""The inventory service's nouns: a SKU's stock, the movements of its ledger and their
kinds, an inbound (units expected), and the kinds of change WatchStock reports. Adapters
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


class StockChangeKind(StrEnum):
    """Why WatchStock sends a SKU's stock (STOCK_CHANGE_KIND_<name> in the proto)."""

    SNAPSHOT = "SNAPSHOT"
    RECEIPT = "RECEIPT"
    ADJUSTMENT = "ADJUSTMENT"
    ISSUE = "ISSUE"
    INBOUND = "INBOUND"


@dataclass(frozen=True)
class Stock:
    sku: str
    on_hand: int
    inbound_quantity: int
    updated_at: datetime


@dataclass(frozen=True)
class Movement:
    """One entry of the ledger; `key` is its idempotency key (receipt_id, adjustment_id or
    fulfillment_id, by kind)."""

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

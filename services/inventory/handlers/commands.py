"""What clients ask the inventory service to do, validated: each command checks its own
fields (InvalidArgument naming the field) before any use case touches the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backorder.inventory.v1 import events_pb2
from services.common import validation
from services.common.errors import InvalidArgument
from services.inventory.domain.model import DEFAULT_LOCATION, Movement


def _location(value: str, field: str = "location_id") -> str:
    return validation.sku(value, field) if value else ""


# AdjustmentReason values a client may send (UNSPECIFIED is not a reason).
_REASON_PREFIX = "ADJUSTMENT_REASON_"
REASONS = {
    value: name.removeprefix(_REASON_PREFIX)
    for name, value in events_pb2.AdjustmentReason.items()
    if value != events_pb2.ADJUSTMENT_REASON_UNSPECIFIED
}


def reason_value(name: str) -> int:
    """The AdjustmentReason of a reason stored in the ledger ('' -> UNSPECIFIED)."""
    return events_pb2.AdjustmentReason.Value(_REASON_PREFIX + name) if name else 0


@dataclass(frozen=True)
class ReceiveStock:
    receipt_id: str
    sku: str
    quantity: int
    inbound_id: str = ""
    note: str = ""
    # Empty: `default`, or the inbound's location when inbound_id is set.
    location_id: str = ""

    def validated(self) -> ReceiveStock:
        validation.identifier(self.receipt_id, "receipt_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        validation.optional_identifier(self.inbound_id, "inbound_id")
        validation.note(self.note)
        _location(self.location_id)
        return self

    def matches(self, movement: Movement) -> bool:
        if self.location_id:
            same_place = movement.location_id == self.location_id
        else:
            same_place = bool(self.inbound_id) or movement.location_id == DEFAULT_LOCATION
        return same_place and (
            movement.sku,
            movement.quantity,
            movement.inbound_id,
            movement.note,
        ) == (
            self.sku,
            self.quantity,
            self.inbound_id,
            self.note,
        )


@dataclass(frozen=True)
class AdjustStock:
    adjustment_id: str
    sku: str
    delta: int
    reason: int
    note: str = ""
    location_id: str = ""

    @property
    def location(self) -> str:
        return self.location_id or DEFAULT_LOCATION

    def validated(self) -> AdjustStock:
        validation.identifier(self.adjustment_id, "adjustment_id")
        validation.sku(self.sku)
        if self.delta == 0 or abs(self.delta) > validation.MAX_QUANTITY:
            raise InvalidArgument(
                "delta",
                f"is {self.delta}; it must be a signed change from 1 to "
                f"{validation.MAX_QUANTITY:,} units either way (not 0)",
            )
        if self.reason not in REASONS:
            raise InvalidArgument(
                "reason", f"is {self.reason}; use one of {', '.join(REASONS.values())}"
            )
        validation.note(self.note)
        _location(self.location_id)
        return self

    def matches(self, movement: Movement) -> bool:
        return (
            movement.sku,
            movement.quantity,
            movement.reason,
            movement.note,
            movement.location_id,
        ) == (self.sku, self.delta, REASONS[self.reason], self.note, self.location)


@dataclass(frozen=True)
class ExpectInbound:
    inbound_id: str
    sku: str
    quantity: int
    expected_at: datetime | None
    location_id: str = ""

    @property
    def location(self) -> str:
        return self.location_id or DEFAULT_LOCATION

    def validated(self) -> ExpectInbound:
        validation.identifier(self.inbound_id, "inbound_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        if self.expected_at is None:
            raise InvalidArgument("expected_at", "is required: when the units are expected")
        _location(self.location_id)
        return self


@dataclass(frozen=True)
class TransferStock:
    transfer_id: str
    sku: str
    from_location_id: str
    to_location_id: str
    quantity: int
    # None: the units land at once; else they are in transit until then.
    expected_at: datetime | None = None

    def validated(self) -> TransferStock:
        validation.identifier(self.transfer_id, "transfer_id")
        validation.sku(self.sku)
        validation.sku(self.from_location_id, "from_location_id")
        validation.sku(self.to_location_id, "to_location_id")
        if self.from_location_id == self.to_location_id:
            raise InvalidArgument(
                "to_location_id",
                f"is {self.to_location_id!r}, the source itself: a transfer moves units "
                "between two locations",
            )
        validation.quantity(self.quantity)
        return self

    def matches(self, out: Movement, expected_at: datetime | None) -> bool:
        return (out.sku, out.location_id, out.other_location_id, -out.quantity, expected_at) == (
            self.sku,
            self.from_location_id,
            self.to_location_id,
            self.quantity,
            self.expected_at,
        )

"""What clients ask the allocation service to do, validated: each command checks its own
fields (InvalidArgument naming the field) before any use case touches the database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.allocation.adapters.placement import LineRequest
from services.allocation.domain.fill import FillPolicy, LocationStrategy
from services.allocation.domain.model import Line
from services.common import validation
from services.common.errors import InvalidArgument, NotFound

MAX_BACKORDER_LIMIT = 1_000_000_000_000
MAX_UNITS_PER_CUSTOMER = 1_000_000_000_000


class OrderOfRecord(Protocol):
    """What a repeated AllocateOrder is compared with (adapters.orders.OrderRow)."""

    @property
    def placed_priority(self) -> int: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def ship_complete(self) -> bool: ...


# At most this many locations in Allocate.locations.
MAX_LINE_LOCATIONS = 100


def validate_line_ref(order_id: str, line_id: str) -> None:
    """A line as clients name it: (order_id, line_id)."""
    validation.identifier(order_id, "order_id")
    validation.identifier(line_id, "line_id")


def line_not_found(order_id: str, line_id: str) -> NotFound:
    return NotFound(f"line ({order_id!r}, {line_id!r}) was never placed")


@dataclass(frozen=True)
class Allocate:
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int = 0
    allow_partial: bool = False
    customer_id: str = ""
    # The locations the line may ship from; empty: any active location.
    locations: tuple[str, ...] = ()

    def validated(self) -> Allocate:
        validation.identifier(self.order_id, "order_id")
        validation.identifier(self.line_id, "line_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        validation.priority(self.priority)
        validation.optional_identifier(self.customer_id, "customer_id")
        if len(self.locations) > MAX_LINE_LOCATIONS:
            raise InvalidArgument(
                f"locations[{MAX_LINE_LOCATIONS}]",
                f"{len(self.locations)} locations; at most {MAX_LINE_LOCATIONS} allowed",
            )
        seen: set[str] = set()
        for i, location_id in enumerate(self.locations):
            validation.identifier(location_id, f"locations[{i}]")
            if location_id in seen:
                raise InvalidArgument(f"locations[{i}]", f"{location_id!r} is given twice")
            seen.add(location_id)
        return self

    def check_known(self, known: set[str]) -> None:
        """NotFound naming the first location the service has never heard of."""
        for i, location_id in enumerate(self.locations):
            if location_id not in known:
                raise NotFound(
                    f"locations[{i}]: location {location_id!r} is unknown to the allocation "
                    "service",
                    resource_type="location",
                    resource_name=location_id,
                )

    def request(self) -> LineRequest:
        return LineRequest(
            self.order_id,
            self.line_id,
            self.sku,
            self.quantity,
            self.priority,
            self.allow_partial,
            self.customer_id,
            list(self.locations) or None,
        )

    def matches(self, line: Line) -> bool:
        # Compared with the priority the line was placed with: SetPriority may have
        # changed it since, and a retried Allocate is still the same call.
        mine = (
            self.sku,
            self.quantity,
            self.priority,
            self.allow_partial,
            self.customer_id,
            self.locations or None,
        )
        return mine == (
            line.sku,
            line.quantity,
            line.placed_priority,
            line.allow_partial,
            line.customer_id,
            line.locations,
        )


@dataclass(frozen=True)
class FulfillLine:
    order_id: str
    line_id: str
    fulfillment_id: str
    quantity: int
    location_id: str = ""  # empty: where the line holds its units

    def validated(self) -> FulfillLine:
        validate_line_ref(self.order_id, self.line_id)
        validation.identifier(self.fulfillment_id, "fulfillment_id")
        validation.quantity(self.quantity)
        validation.optional_identifier(self.location_id, "location_id")
        return self


@dataclass(frozen=True)
class SetSkuPolicy:
    sku: str
    fill_policy: FillPolicy | None = None
    backorders_accepted: bool | None = None
    backorder_limit: int | None = None
    location_strategy: LocationStrategy | None = None
    max_units_per_customer: int | None = None  # None keeps it; 0: no cap

    def validated(self) -> SetSkuPolicy:
        validation.sku(self.sku)
        limit = self.backorder_limit
        if limit is not None and not 0 <= limit <= MAX_BACKORDER_LIMIT:
            raise InvalidArgument(
                "backorder_limit",
                f"is {limit}; it must be from 0 (no limit) to {MAX_BACKORDER_LIMIT:,}",
            )
        cap = self.max_units_per_customer
        if cap is not None and not 0 <= cap <= MAX_UNITS_PER_CUSTOMER:
            raise InvalidArgument(
                "max_units_per_customer",
                f"is {cap}; it must be from 0 (no cap) to {MAX_UNITS_PER_CUSTOMER:,}",
            )
        return self


# At most this many lines in one AllocateOrder.
MAX_ORDER_LINES = 500


@dataclass(frozen=True)
class OrderLine:
    """One line of an AllocateOrder request."""

    line_id: str
    sku: str
    quantity: int
    allow_partial: bool = False
    locations: tuple[str, ...] = ()


@dataclass(frozen=True)
class AllocateOrder:
    order_id: str
    lines: tuple[OrderLine, ...]
    priority: int = 0
    customer_id: str = ""
    ship_complete: bool = False

    def validated(self) -> AllocateOrder:
        validation.identifier(self.order_id, "order_id")
        validation.priority(self.priority)
        validation.optional_identifier(self.customer_id, "customer_id")
        if not 1 <= len(self.lines) <= MAX_ORDER_LINES:
            raise InvalidArgument(
                "lines", f"has {len(self.lines)} lines; an order has 1 to {MAX_ORDER_LINES}"
            )
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            try:
                self._command(line).validated()
            except InvalidArgument as e:
                raise InvalidArgument(f"lines[{i}].{e.field}", e.description) from None
            if line.line_id in seen:
                raise InvalidArgument(
                    f"lines[{i}].line_id", f"{line.line_id!r} is given twice in the order"
                )
            seen.add(line.line_id)
            if self.ship_complete and line.allow_partial:
                raise InvalidArgument(
                    f"lines[{i}].allow_partial",
                    "must be false in a ship-complete order (its lines hold units only all "
                    "at once)",
                )
        return self

    def _command(self, line: OrderLine) -> Allocate:
        return Allocate(
            order_id=self.order_id,
            line_id=line.line_id,
            sku=line.sku,
            quantity=line.quantity,
            priority=self.priority,
            allow_partial=line.allow_partial,
            customer_id=self.customer_id,
            locations=line.locations,
        )

    def line_commands(self) -> list[Allocate]:
        """Each line as Allocate would place it, in request order."""
        return [self._command(line) for line in self.lines]

    def check_known(self, known: set[str]) -> None:
        """NotFound naming the first line location the service has never heard of."""
        for i, line in enumerate(self.lines):
            try:
                self._command(line).check_known(known)
            except NotFound as e:
                raise NotFound(
                    f"lines[{i}].{e.message}",
                    resource_type=e.resource_type,
                    resource_name=e.resource_name,
                ) from None

    def matches(self, order: OrderOfRecord, lines: list[Line]) -> bool:
        """Whether this repeats the order placed before: same order fields, same lines
        (compared as a set)."""
        if (self.priority, self.customer_id, self.ship_complete) != (
            order.placed_priority,
            order.customer_id,
            order.ship_complete,
        ):
            return False
        mine = {
            (line.line_id, line.sku, line.quantity, line.allow_partial, line.locations or None)
            for line in self.lines
        }
        theirs = {
            (line.line_id, line.sku, line.quantity, line.allow_partial, line.locations)
            for line in lines
        }
        return len(lines) == len(self.lines) and mine == theirs

"""The reference model of docs/spec.md §2, §8 and §10 (the fill, cancels, fulfilments,
shrinkage, per location, the per-customer cap, orders and their ship-complete completion
step) written as plainly as possible: tests replay operations
through it and compare with the service. It shares no code with the service: it is the
rules, written again.

Locations (docs/spec.md §8): free units are kept per location; a line may name the
locations it may ship from (none: any active location) and holds its units per location.
A business with one place only ever sees `default`, and then `free`, `reserved` and
`fulfilled` read and write that one location's figures, as before locations existed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT = "default"
# The fill_rank of a location first heard of through a stock event, until its
# location.updated arrives: ranked last.
LAST_RANK = 2**31 - 1


@dataclass
class ModelLocation:
    location_id: str
    fill_rank: int = 0
    active: bool = True

    @property
    def order(self) -> tuple[int, str]:
        return (self.fill_rank, self.location_id)


@dataclass
class ModelLine:
    line_id: str
    quantity: int
    priority: int
    seq: int
    partial: bool
    reserved_at: dict[str, int] = field(default_factory=dict)
    fulfilled_at: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False
    # The locations the line may ship from, as placed; empty: any active location.
    locations: tuple[str, ...] = ()
    customer: str = ""
    # The ship-complete order the line belongs to (docs/spec.md §10), or "".
    held_for: str = ""

    @property
    def reserved(self) -> int:
        return sum(self.reserved_at.values())

    @reserved.setter
    def reserved(self, units: int) -> None:
        # One place's arithmetic (tests written before locations): `default` holds them.
        assert set(self.reserved_at) <= {DEFAULT}, self.reserved_at
        self.reserved_at = {DEFAULT: units} if units else {}

    @property
    def fulfilled(self) -> int:
        return sum(self.fulfilled_at.values())

    @fulfilled.setter
    def fulfilled(self, units: int) -> None:
        assert set(self.fulfilled_at) <= {DEFAULT}, self.fulfilled_at
        self.fulfilled_at = {DEFAULT: units} if units else {}

    def add(self, location_id: str, units: int) -> None:
        """Reserves `units` more at `location_id` (negative: takes them back)."""
        left = self.reserved_at.get(location_id, 0) + units
        assert left >= 0, (self.line_id, location_id, units)
        if left:
            self.reserved_at[location_id] = left
        else:
            self.reserved_at.pop(location_id, None)

    @property
    def allocations(self) -> dict[str, tuple[int, int]]:
        """location_id -> (reserved, fulfilled) where the line holds or shipped units."""
        return {
            loc: (self.reserved_at.get(loc, 0), self.fulfilled_at.get(loc, 0))
            for loc in set(self.reserved_at) | set(self.fulfilled_at)
        }

    @property
    def backordered(self) -> int:
        return 0 if self.cancelled else self.quantity - self.reserved - self.fulfilled

    @property
    def rank(self) -> tuple[int, int]:
        return (-self.priority, self.seq)

    @property
    def status(self) -> str:
        if self.cancelled:
            return "CANCELLED"
        if self.fulfilled == self.quantity:
            return "FULFILLED"
        if self.fulfilled:
            return "PARTIALLY_FULFILLED"
        if self.reserved == self.quantity:
            return "RESERVED"
        return "PARTIALLY_RESERVED" if self.reserved else "BACKORDERED"


@dataclass
class ModelOrder:
    """An order placed with AllocateOrder: its lines by line_id, in request order."""

    order_id: str
    priority: int
    seq: int  # the placement seq of its first line
    ship_complete: bool
    line_ids: list[str]


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log: units given to a line (or, REVOKED, taken back) at
    one location."""

    line_id: str
    quantity: int
    rule: str  # PARTIAL, WHOLE, WHOLE_AFTER_SKIP or REVOKED
    queue_position: int  # 1-based place among the waiting lines when given; 0 when revoked
    policy: str
    location_id: str = DEFAULT


class Model:
    def __init__(self) -> None:
        self.lines: dict[str, ModelLine] = {}
        self.locations: dict[str, ModelLocation] = {DEFAULT: ModelLocation(DEFAULT)}
        self.free_at: dict[str, int] = {}
        self.supply = 0  # received + adjustments actually applied, net of transfers
        self.unmatched = 0
        self.policy = "STRICT"
        self.strategy = "FILL_RANK"  # or MOST_STOCK
        self.max_units_per_customer = 0  # 0: no cap
        self.log: list[Decision] = []  # every decision, oldest first
        self.orders: dict[str, ModelOrder] = {}

    # --- one place's view (tests written before locations) ----------------------------

    @property
    def free(self) -> int:
        return sum(self.free_at.values())

    @free.setter
    def free(self, units: int) -> None:
        # Whatever the total changes by, it changes at `default`.
        self.free_at[DEFAULT] = self.free_at.get(DEFAULT, 0) + units - self.free

    # --- locations ----------------------------------------------------------------------

    def location(self, location_id: str) -> ModelLocation:
        """The location; one first heard of (through a stock event) is active, ranked last."""
        location_id = location_id or DEFAULT
        if location_id not in self.locations:
            self.locations[location_id] = ModelLocation(location_id, LAST_RANK, True)
        return self.locations[location_id]

    def put_location(self, location_id: str, fill_rank: int, active: bool) -> None:
        """location.updated. Reactivating a location makes its free units available again,
        so the fill runs."""
        loc = self.location(location_id)
        reactivated = active and not loc.active
        loc.fill_rank, loc.active = fill_rank, active
        if reactivated:
            self.fill()

    def eligible(self, line: ModelLine) -> list[str]:
        """The active locations the line may take units from, by fill_rank and id."""
        names: Iterable[str] = line.locations or self.locations
        return sorted(
            (n for n in names if n in self.locations and self.locations[n].active),
            key=lambda n: self.locations[n].order,
        )

    def ordered(self, location_ids: Iterable[str]) -> list[str]:
        """`location_ids` in the SKU's location_strategy order at this moment."""
        if self.strategy == "MOST_STOCK":
            return sorted(
                location_ids,
                key=lambda n: (-self.free_at.get(n, 0), *self.locations[n].order),
            )
        return sorted(location_ids, key=lambda n: self.locations[n].order)

    def summary_locations(self) -> dict[str, tuple[int, int]]:
        """location_id -> (free, reserved) where either is not 0."""
        reserved: dict[str, int] = {}
        for ln in self.lines.values():
            for loc, units in ln.reserved_at.items():
                reserved[loc] = reserved.get(loc, 0) + units
        return {
            loc: (self.free_at.get(loc, 0), reserved.get(loc, 0))
            for loc in set(self.free_at) | set(reserved)
            if self.free_at.get(loc, 0) or reserved.get(loc, 0)
        }

    # --- the rules ----------------------------------------------------------------------

    def open_units(self, customer: str) -> int:
        """What the customer holds open in the SKU: reserved + backordered units of its
        lines (cancelled lines and shipped units count no more)."""
        return sum(
            ln.reserved + ln.backordered for ln in self.lines.values() if ln.customer == customer
        )

    def cap_refusal(self, customer: str, quantity: int) -> tuple[int, int] | None:
        """(the cap, the customer's open units) when the per-customer cap refuses a new line
        of `quantity` units for `customer` (a line without a customer on a capped SKU too);
        None when the line may be placed."""
        cap = self.max_units_per_customer
        if not cap:
            return None
        held = self.open_units(customer) if customer else 0
        if not customer or held + quantity > cap:
            return (cap, held)
        return None

    def waiting(self) -> list[ModelLine]:
        return sorted(
            (ln for ln in self.lines.values() if ln.backordered > 0), key=lambda x: x.rank
        )

    def fill(self, *, complete: bool = True) -> None:
        """One walk of the waiting lines in rank order. A line takes from its eligible active
        locations not blocked, in strategy order; under STRICT a whole-only line that does
        not fit blocks its eligible locations for the lines after it; SKIP passes over it."""
        # Lines passed over or partly served stay in the queue ahead of the next one.
        ahead, skipped = 0, False
        blocked: set[str] = set()
        for ln in self.waiting():
            if ln.held_for:
                ahead += 1  # held for its order: takes nothing here, blocks nothing
                continue
            usable = [
                n for n in self.eligible(ln) if n not in blocked and self.free_at.get(n, 0) > 0
            ]
            available = sum(self.free_at[n] for n in usable)
            if not available:
                ahead += 1  # nothing it may take: it waits, blocking nothing new
                continue
            if ln.backordered <= available:
                want = ln.backordered
                rule = "WHOLE_AFTER_SKIP" if skipped else "WHOLE"
            elif ln.partial:
                want, rule = available, "PARTIAL"
            elif self.policy == "STRICT":
                blocked.update(self.eligible(ln))
                ahead += 1
                continue
            else:
                skipped = True
                ahead += 1
                continue
            for n in self.ordered(usable):
                take = min(want, self.free_at[n])
                if not take:
                    continue
                self.log.append(Decision(ln.line_id, take, rule, ahead + 1, self.policy, n))
                ln.add(n, take)
                self.free_at[n] -= take
                want -= take
            assert want == 0
            ahead += ln.backordered > 0
        if complete:
            self.complete()

    def receive(self, units: int, location_id: str = DEFAULT) -> None:
        """stock.received or a positive stock.adjusted at a location, then the fill."""
        n = self.location(location_id).location_id
        self.free_at[n] = self.free_at.get(n, 0) + units
        self.supply += units
        self.fill()

    def shrink(self, units: int, location_id: str = DEFAULT, *, then_fill: bool = True) -> None:
        """A negative adjustment at a location: its free units first, then reservations held
        there, lowest rank first; the rest was shipped already (unmatched). Then the fill:
        a revoked line waits again and may take free units elsewhere."""
        n = self.location(location_id).location_id
        from_free = min(self.free_at.get(n, 0), units)
        self.free_at[n] = self.free_at.get(n, 0) - from_free
        units -= from_free
        self.supply -= from_free
        held = sorted(
            (ln for ln in self.lines.values() if ln.reserved_at.get(n)), key=lambda x: x.rank
        )
        shrunk_orders: set[str] = set()
        for ln in reversed(held):
            take = min(ln.reserved_at[n], units)
            if take:
                self.log.append(Decision(ln.line_id, take, "REVOKED", 0, self.policy, n))
                ln.add(n, -take)
            units -= take
            self.supply -= take
            if take and ln.held_for:
                shrunk_orders.add(ln.held_for)
        self.unmatched += units
        # A ready ship-complete order that lost units waits again: every unit its lines
        # still hold goes back to free where it was.
        for order_id in sorted(shrunk_orders):
            for other in self.order_lines(self.orders[order_id]):
                for where, held_units in sorted(other.reserved_at.items()):
                    self.log.append(
                        Decision(other.line_id, held_units, "REVOKED", 0, self.policy, where)
                    )
                    other.add(where, -held_units)
                    self.free_at[where] = self.free_at.get(where, 0) + held_units
        if then_fill:
            self.fill()

    def transfer(self, units: int, from_location: str, to_location: str) -> None:
        """stock.transferred landing at once: the source like a negative adjustment, the
        destination like a receipt, one fill."""
        self.shrink(units, from_location, then_fill=False)
        self.receive(units, to_location)

    def cancel(self, line: ModelLine, *, then_complete: bool = True) -> int:
        """CancelLine: its reserved units go back to free where they were; the units
        released."""
        if line.cancelled:
            return 0
        released = line.reserved
        for n, units in line.reserved_at.items():
            self.free_at[n] = self.free_at.get(n, 0) + units
        line.reserved_at = {}
        line.cancelled = True
        self.fill(complete=then_complete)
        return released

    def fulfil_refusal(self, line: ModelLine, units: int, location_id: str) -> str | None:
        """Why FulfillLine(units, location_id) is FAILED_PRECONDITION, or None."""
        if line.cancelled:
            return "cancelled"
        if not location_id and len(line.reserved_at) > 1:
            return "holds units at more than one location"
        where = location_id or next(iter(line.reserved_at), DEFAULT)
        if units > line.reserved_at.get(where, 0):
            return "fewer units reserved there"
        return None

    def fulfil(self, line: ModelLine, units: int, location_id: str = "") -> str:
        """FulfillLine that the model accepts; the location the units ship from."""
        assert self.fulfil_refusal(line, units, location_id) is None
        where = location_id or next(iter(line.reserved_at))
        line.add(where, -units)
        line.fulfilled_at[where] = line.fulfilled_at.get(where, 0) + units
        return where

    # --- orders (docs/spec.md §10) ------------------------------------------------------

    def order_lines(self, order: ModelOrder) -> list[ModelLine]:
        return [self.lines[line_id] for line_id in order.line_ids]

    def order_status(self, order: ModelOrder) -> str:
        lines = self.order_lines(order)
        open_lines = [ln for ln in lines if not ln.cancelled]
        if not open_lines:
            return "CANCELLED"
        if all(ln.status == "FULFILLED" for ln in open_lines):
            return "FULFILLED"
        if any(ln.fulfilled for ln in lines):  # a cancelled line's shipped units too
            return "PARTIALLY_FULFILLED"
        if not any(ln.backordered for ln in open_lines):
            return "READY"
        return "PARTIALLY_RESERVED" if any(ln.reserved for ln in open_lines) else "WAITING"

    def cancel_order(self, order: ModelOrder) -> dict[str, int]:
        """CancelOrder: every open line as CancelLine cancels it, in request order, in one
        transaction (each cancel's fill in it; the completion step once it committed); the
        units each line released."""
        released = {}
        for ln in self.order_lines(order):
            if not ln.cancelled and ln.status != "FULFILLED":
                released[ln.line_id] = self.cancel(ln, then_complete=False)
        self.complete()
        return released

    def waiting_orders(self) -> list[ModelOrder]:
        """Ship-complete orders with a line still waiting, best-ranked first."""
        return sorted(
            (
                o
                for o in self.orders.values()
                if o.ship_complete and any(ln.backordered for ln in self.order_lines(o))
            ),
            key=lambda o: (-o.priority, o.seq),
        )

    def could_carry(self, demands: list[tuple[int, tuple[str, ...]]], free: dict[str, int]) -> int:
        """The most of `free` that demands (units, locations they may take from; () any)
        can take: the least cut, over every set S of places, of the units free in S plus
        the demands that may take from somewhere outside S."""
        places = sorted(n for n, units in free.items() if units > 0)
        best = None
        for mask in range(1 << len(places)):
            inside = {n for k, n in enumerate(places) if mask >> k & 1}
            cut = sum(free[n] for n in inside) + sum(
                units
                for units, where in demands
                if any(n not in inside for n in places if not where or n in where)
            )
            best = cut if best is None else min(best, cut)
        return best or 0

    def complete(self) -> None:
        """The completion step for every waiting ship-complete order, best-ranked first: its
        waiting lines reserved in full at once, taking only free units the higher-ranked
        waiting lines (not held for an order) could not take; else nothing."""
        for order in self.waiting_orders():
            if self.free <= 0:
                return
            self.try_complete(order)

    def try_complete(self, order: ModelOrder) -> bool:
        lines = [ln for ln in self.order_lines(order) if ln.backordered]
        if not lines:
            return False
        first = min(lines, key=lambda x: x.rank)
        ahead = [
            (ln.backordered, ln.locations)
            for ln in self.waiting()
            if not ln.held_for and ln.rank < first.rank
        ]
        free = {
            n: units for n, units in self.free_at.items() if units > 0 and self.locations[n].active
        }
        could_take = self.could_carry(ahead, free)
        order_by = sorted(free, key=lambda n: self.locations[n].order)
        takes: list[tuple[ModelLine, str, int]] = []
        for index, ln in enumerate(lines):
            need = ln.backordered
            mine = [n for n in order_by if not ln.locations or n in ln.locations]
            later = [(x.backordered, x.locations) for x in lines[index + 1 :]]
            for k, n in enumerate(mine):
                # The most this line can take here with the rest still served.
                for x in range(min(need, free[n]), -1, -1):
                    rest = (need - x, tuple(mine[k + 1 :]) or ("-",))
                    demands = [*ahead, rest, *later]
                    wanted = need - x + sum(u for u, _ in later)
                    left = {**free, n: free[n] - x}
                    if self.could_carry(demands, left) == could_take + wanted:
                        break
                else:
                    return False
                if x:
                    takes.append((ln, n, x))
                    free[n] -= x
                    need -= x
            if need:
                return False
        positions = {x.line_id: i for i, x in enumerate(self.waiting(), 1)}
        for ln, n, x in takes:
            self.log.append(Decision(ln.line_id, x, "WHOLE", positions[ln.line_id], self.policy, n))
            ln.add(n, x)
            self.free_at[n] -= x
        return True

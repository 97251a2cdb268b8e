"""A stateful Hypothesis test: random Allocate / receive / adjust / transfer / put-location /
cancel / fulfil / set-priority / set-policy / set-cap steps against the real allocation
process (stock events go in through RabbitMQ; locations are put through the real inventory
process, whose location.updated the allocation process consumes), compared after every step
with a small reference model of docs/spec.md §2 and §8: the SKU's totals and per-location
figures, every line with its allocations per location, the decision log (ListReservations)
with locations, and the line.* events the step published on allocation.events (no more, no
fewer, none late).

Each example has locations of its own (A and B put at the start with drawn ranks, C first
heard of through a stock event unless a step puts it), lines that may ship from any or from
named locations, both fill policies and both location strategies; lines belong to a few
customers (or none), and a per-customer cap may be set, lowered or lifted between them (the
model predicts which lines it refuses; repeats of placed lines answer whatever the cap).
Orders (docs/spec.md §10): AllocateOrder places 1-3 lines together (refused whole when the
cap refuses one), plain or ship-complete; CancelOrder. After every step each order's
status matches the model's, and a ship-complete order's open lines are all reserved in full
or none holds a unit."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import asyncpg
import grpc
from google.protobuf.message import Message
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import events_pb2 as inv_events
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.e2e.conftest import System
from tests.support.cluster import AllocationEventTap
from tests.support.inventory_feed import InventoryFeed
from tests.support.reference_model import DEFAULT, Model, ModelLine, ModelOrder
from tests.support.servers import Vhost, database_url, unique

STATUS = alloc_events.LineStatus
POLICIES = {"STRICT": alloc.FILL_POLICY_STRICT, "SKIP": alloc.FILL_POLICY_SKIP}
# Customers of the example's lines ("": a line without customer_id).
CUSTOMERS = ["", "c1", "c1", "c2"]
STRATEGIES = {
    "FILL_RANK": alloc.LOCATION_STRATEGY_FILL_RANK,
    "MOST_STOCK": alloc.LOCATION_STRATEGY_MOST_STOCK,
}


# --- the machine -------------------------------------------------------------------------


EVENTS: dict[str, type[Message]] = {
    "line.backordered": alloc_events.LineBackordered,
    "line.reserved": alloc_events.LineReserved,
    "line.revoked": alloc_events.LineRevoked,
    "line.cancelled": alloc_events.LineCancelled,
    "line.fulfilled": alloc_events.LineFulfilled,
    "line.eta_changed": alloc_events.LineEtaChanged,
}
# What of each event the model predicts: (routing key, line_id, units...).
Event = tuple[object, ...]
# How long the end of a run waits for one more event before concluding none will come.
QUIET = 0.5


def event_of(routing_key: str, body: bytes) -> tuple[str, Event]:
    """(sku, what the model predicts of it) of one message of allocation.events; order.*
    events are keyed by order, not SKU ("", compared by the order invariant instead)."""
    if routing_key.startswith("order."):
        return "", (routing_key,)
    e = EVENTS[routing_key].FromString(body)
    if isinstance(e, alloc_events.LineBackordered):
        return e.sku, (routing_key, e.line_id, e.backordered_quantity, e.queue_position)
    if isinstance(e, alloc_events.LineReserved):
        return e.sku, (routing_key, e.line_id, e.reserved_now, e.location_id)
    if isinstance(e, alloc_events.LineRevoked):
        return e.sku, (routing_key, e.line_id, e.revoked_now, e.location_id)
    if isinstance(e, alloc_events.LineCancelled):
        return e.sku, (routing_key, e.line_id, e.released_quantity)
    if isinstance(e, alloc_events.LineFulfilled):
        return e.sku, (
            routing_key,
            e.line_id,
            e.quantity,
            e.fulfilled_quantity,
            e.location_id or DEFAULT,  # empty: `default` (an event from before locations)
        )
    assert isinstance(e, alloc_events.LineEtaChanged)
    return e.sku, (routing_key, e.line_id, e.eta_known)


class AllocationMachine(RuleBasedStateMachine):
    stub: ClassVar[AllocationServiceStub]
    inventory: ClassVar[InventoryServiceStub]
    feed: ClassVar[InventoryFeed]
    tap: ClassVar[AllocationEventTap]
    loop: ClassVar[asyncio.AbstractEventLoop]
    inventory_db: ClassVar[asyncpg.Connection]
    allocation_db: ClassVar[asyncpg.Connection]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.sku = unique("HYP")
        self.order = unique("o")
        self.seq = 0
        # Locations of this example: A and B are put at the start, C is first heard of
        # through a stock event (ranked last) unless a step puts it first. Locations are
        # global, so each example has its own; `default` is shared and left as it is.
        self.a, self.b, self.c = unique("LA"), unique("LB"), unique("LC")
        # Events this step should publish besides the model's decisions (which each publish
        # line.reserved or line.revoked), and how many of the model's decisions and of the
        # tap's messages earlier steps accounted for.
        self.expected: list[Event] = []
        self.decisions_seen = 0
        self.messages_seen = 0
        # Every accepted Allocate request by line_id, for repeats.
        self.calls: dict[str, alloc.AllocateRequest] = {}
        # The order_id of every placed line (Allocate's: self.order).
        self.order_of: dict[str, str] = {}

    def _places(self) -> list[str]:
        return [DEFAULT, self.a, self.b, self.c]

    def _known(self, location_id: str) -> bool:
        return location_id in self.model.locations

    @initialize(rank_a=st.integers(-1, 2), rank_b=st.integers(-1, 2))
    def start(self, rank_a: int, rank_b: int) -> None:
        self._put_location(self.a, rank_a, True)
        self._put_location(self.b, rank_b, True)

    # rules

    @rule(
        quantity=st.integers(1, 5),
        priority=st.integers(0, 3),
        partial=st.booleans(),
        data=st.data(),
    )
    def allocate(self, quantity: int, priority: int, partial: bool, data: st.DataObject) -> None:
        locations = data.draw(
            st.lists(st.sampled_from(self._places()), max_size=2, unique=True), "locations"
        )
        customer = data.draw(st.sampled_from(CUSTOMERS), "customer")
        self._allocate(quantity, priority, partial, locations, customer)

    @precondition(lambda self: self.model.max_units_per_customer)
    @rule(customer=st.sampled_from(CUSTOMERS[1:]), over=st.booleans(), partial=st.booleans())
    def allocate_to_the_cap(self, customer: str, over: bool, partial: bool) -> None:
        """A line that takes its customer exactly to the cap, or one unit over it."""
        room = self.model.max_units_per_customer - self.model.open_units(customer)
        self._allocate(max(room + over, 1), 0, partial, [], customer)

    def _allocate(
        self, quantity: int, priority: int, partial: bool, locations: list[str], customer: str
    ) -> None:
        self.seq += 1
        line_id = f"l{self.seq}"
        call = alloc.AllocateRequest(
            order_id=self.order,
            line_id=line_id,
            sku=self.sku,
            quantity=quantity,
            priority=priority,
            allow_partial=partial,
            locations=locations,
            customer_id=customer,
        )
        unknown = [n for n in locations if not self._known(n)]
        if unknown:
            details = self._expect(grpc.StatusCode.NOT_FOUND, self.stub.Allocate, call)
            assert f"locations[{locations.index(unknown[0])}]" in details, details
            return
        refusal = self.model.cap_refusal(customer, quantity)
        if refusal is not None:
            details = self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.Allocate, call)
            cap, held = refusal
            assert "max_units_per_customer" in details and str(cap) in details, details
            if customer:
                assert f"holds {held} open units" in details, details
            else:
                assert "customer_id" in details, details
            return
        reply = self.stub.Allocate(call)
        self.calls[line_id] = call
        self.order_of[line_id] = self.order
        line = ModelLine(
            line_id,
            quantity,
            priority,
            self.seq,
            partial,
            locations=tuple(locations),
            customer=customer,
        )
        self.model.lines[line_id] = line
        self.model.fill()
        assert (reply.line.reserved_quantity, reply.line.backordered_quantity) == (
            line.reserved,
            line.backordered,
        )
        assert list(reply.line.locations) == locations
        if line.backordered:
            position = [ln.line_id for ln in self.model.waiting()].index(line_id) + 1
            self.expected.append(("line.backordered", line_id, line.backordered, position))

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def repeat_an_allocate(self, data: st.DataObject) -> None:
        """A repeat answers the line as it stands, whatever the cap says now; nothing
        changes and no event is published."""
        call = self.calls[data.draw(st.sampled_from(sorted(self.calls)), "line")]
        ln = self.model.lines[call.line_id]
        reply = self.stub.Allocate(call)
        assert (
            reply.line.reserved_quantity,
            reply.line.fulfilled_quantity,
            reply.line.backordered_quantity,
            STATUS.Name(reply.line.status).removeprefix("LINE_STATUS_"),
        ) == (ln.reserved, ln.fulfilled, ln.backordered, ln.status)

    @rule(
        ship_complete=st.booleans(),
        priority=st.integers(0, 3),
        customer=st.sampled_from(CUSTOMERS),
        data=st.data(),
    )
    def allocate_order(
        self, ship_complete: bool, priority: int, customer: str, data: st.DataObject
    ) -> None:
        """AllocateOrder: 1-3 lines of the SKU placed together, accepted or refused together
        (the cap checks each line as it is placed); a ship-complete order's lines hold units
        only all at once."""
        known = [n for n in self._places() if self._known(n)]
        drawn = data.draw(
            st.lists(
                st.tuples(
                    st.integers(1, 5),
                    st.booleans() if not ship_complete else st.just(False),
                    st.lists(st.sampled_from(known), max_size=2, unique=True),
                ),
                min_size=1,
                max_size=3,
            ),
            "lines",
        )
        self.seq += 1
        order_id = f"{self.order}-o{self.seq}"
        ids = [f"l{self.seq}-{i}" for i in range(len(drawn))]
        call = alloc.AllocateOrderRequest(
            order_id=order_id,
            priority=priority,
            customer_id=customer,
            ship_complete=ship_complete,
            lines=[
                alloc.OrderLineRequest(
                    line_id=line_id,
                    sku=self.sku,
                    quantity=quantity,
                    allow_partial=partial,
                    locations=locations,
                )
                for line_id, (quantity, partial, locations) in zip(ids, drawn, strict=True)
            ],
        )
        # The cap checks each line as it is placed, the earlier lines of the order counted.
        cap = self.model.max_units_per_customer
        held = self.model.open_units(customer) if customer else 0
        for quantity, _, _ in drawn:
            if cap and (not customer or held + quantity > cap):
                details = self._expect(
                    grpc.StatusCode.FAILED_PRECONDITION, self.stub.AllocateOrder, call
                )
                assert "max_units_per_customer" in details, details
                return
            held += quantity
        reply = self.stub.AllocateOrder(call)
        first_seq = self.seq
        order = ModelOrder(order_id, priority, first_seq, ship_complete, ids)
        self.model.orders[order_id] = order
        for line_id, (quantity, partial, locations) in zip(ids, drawn, strict=True):
            self.seq += 1
            line = ModelLine(
                line_id,
                quantity,
                priority,
                self.seq,
                partial,
                locations=tuple(locations),
                customer=customer,
                held_for=order_id if ship_complete else "",
            )
            self.model.lines[line_id] = line
            self.order_of[line_id] = order_id
            if ship_complete:
                # Held lines take nothing in the fill; the completion step runs once all
                # are placed.
                position = [ln.line_id for ln in self.model.waiting()].index(line_id) + 1
                self.expected.append(("line.backordered", line_id, quantity, position))
                continue
            self.model.fill()
            if line.backordered:
                position = [ln.line_id for ln in self.model.waiting()].index(line_id) + 1
                self.expected.append(("line.backordered", line_id, line.backordered, position))
        if ship_complete:
            self.model.try_complete(order)
            self.model.fill()
        status = alloc.OrderStatus.Name(reply.order.status).removeprefix("ORDER_STATUS_")
        assert status == self.model.order_status(order), reply.order
        assert [x.line_id for x in reply.order.lines] == ids

    @precondition(lambda self: self.model.orders)
    @rule(data=st.data())
    def cancel_order(self, data: st.DataObject) -> None:
        order = self.model.orders[data.draw(st.sampled_from(sorted(self.model.orders)), "order")]
        call = alloc.CancelOrderRequest(order_id=order.order_id)
        lines = self.model.order_lines(order)
        if lines and all(ln.status == "FULFILLED" for ln in lines):
            return  # nothing to cancel; not what this rule is about
        reply = self.stub.CancelOrder(call)
        released = self.model.cancel_order(order)
        self.expected += [("line.cancelled", line_id, n) for line_id, n in released.items()]
        assert reply.released_quantity == sum(released.values())

    @invariant()
    def orders_match_model_and_ship_complete_is_all_or_nothing(self) -> None:
        m = self.model
        for order in m.orders.values():
            lines = m.order_lines(order)
            if order.ship_complete:
                # Every open, unshipped line reserved in full, or none holding a unit.
                unshipped = [ln for ln in lines if not ln.cancelled and not ln.fulfilled]
                assert all(ln.backordered == 0 for ln in unshipped) or not any(
                    ln.reserved for ln in unshipped
                ), order
            got = self.stub.GetOrder(alloc.GetOrderRequest(order_id=order.order_id)).order
            status = alloc.OrderStatus.Name(got.status).removeprefix("ORDER_STATUS_")
            assert (status, got.priority) == (m.order_status(order), order.priority), got

    @rule(cap=st.sampled_from([0, 2, 3, 5, 8]))
    def set_customer_cap(self, cap: int) -> None:
        """Sets (or, 0, lifts) the cap; lines already placed stay as they are."""
        reply = self.stub.SetSkuPolicy(
            alloc.SetSkuPolicyRequest(sku=self.sku, max_units_per_customer=cap)
        )
        assert reply.summary.policy.max_units_per_customer == cap
        self.model.max_units_per_customer = cap
        self.model.fill()

    @rule(data=st.data())
    def allocate_naming_a_location_twice(self, data: st.DataObject) -> None:
        """Refused naming the repeat; nothing written (the invariants compare every line)."""
        twice = data.draw(st.sampled_from([DEFAULT, self.a, self.b]), "location")
        self.seq += 1
        call = alloc.AllocateRequest(
            order_id=self.order,
            line_id=f"l{self.seq}",
            sku=self.sku,
            quantity=1,
            locations=[twice, twice],
        )
        details = self._expect(grpc.StatusCode.INVALID_ARGUMENT, self.stub.Allocate, call)
        assert "locations[1]" in details, details

    @rule(quantity=st.integers(1, 8), data=st.data())
    def receive(self, quantity: int, data: st.DataObject) -> None:
        # An empty location_id is `default` (an event from before locations).
        where = data.draw(st.sampled_from(["", *self._places()]), "location")
        self.loop.run_until_complete(self.feed.received(self.sku, quantity, where))
        self.model.receive(quantity, where or DEFAULT)
        self._await_event_applied()

    @rule(delta=st.integers(-6, 6).filter(bool), data=st.data())
    def adjust(self, delta: int, data: st.DataObject) -> None:
        where = data.draw(st.sampled_from(["", *self._places()]), "location")
        self.loop.run_until_complete(self.feed.adjusted(self.sku, delta, where))
        if delta > 0:
            self.model.receive(delta, where or DEFAULT)
        else:
            self.model.shrink(-delta, where or DEFAULT)
        self._await_event_applied()

    @rule(quantity=st.integers(1, 6), data=st.data())
    def transfer(self, quantity: int, data: st.DataObject) -> None:
        source, destination = data.draw(
            st.lists(st.sampled_from(self._places()), min_size=2, max_size=2, unique=True),
            "from, to",
        )
        self.loop.run_until_complete(self.feed.transferred(self.sku, quantity, source, destination))
        self.model.transfer(quantity, source, destination)
        self._await_event_applied()

    @rule(data=st.data(), rank=st.integers(-1, 2), active=st.booleans())
    def put_location(self, data: st.DataObject, rank: int, active: bool) -> None:
        where = data.draw(st.sampled_from([self.a, self.b, self.c]), "location")
        self._put_location(where, rank, active)

    @precondition(lambda self: self.model.lines)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ln = self.model.lines[data.draw(st.sampled_from(sorted(self.model.lines)))]
        call = alloc.CancelLineRequest(order_id=self.order_of[ln.line_id], line_id=ln.line_id)
        if ln.status == "FULFILLED":
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.CancelLine, call)
            return
        reply = self.stub.CancelLine(call)
        if not ln.cancelled:
            self.expected.append(("line.cancelled", ln.line_id, ln.reserved))
        released = self.model.cancel(ln)
        assert reply.released_quantity == released

    @precondition(lambda self: self.model.lines)
    @rule(data=st.data())
    def fulfil(self, data: st.DataObject) -> None:
        ln = self.model.lines[data.draw(st.sampled_from(sorted(self.model.lines)))]
        self.seq += 1
        # Mostly where the line holds units; sometimes none named, sometimes elsewhere.
        where = data.draw(st.sampled_from(["", *sorted(ln.reserved_at), *self._places()]))
        held = ln.reserved_at.get(where, 0) if where else ln.reserved
        quantity = data.draw(st.integers(1, max(held, 1) + 1))
        call = alloc.FulfillLineRequest(
            order_id=self.order_of[ln.line_id],
            line_id=ln.line_id,
            fulfillment_id=f"{self.order}-f{self.seq}",
            quantity=quantity,
            location_id=where,
        )
        if ln.held_for and ln.backordered:
            # Before its ship-complete order is ready (docs/spec.md §10).
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.FulfillLine, call)
            return
        if self.model.fulfil_refusal(ln, quantity, where) is not None:
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.FulfillLine, call)
            return
        self.stub.FulfillLine(call)
        shipped_from = self.model.fulfil(ln, quantity, where)
        self.expected.append(("line.fulfilled", ln.line_id, quantity, ln.fulfilled, shipped_from))

    @precondition(lambda self: self.model.lines)
    @rule(data=st.data(), priority=st.integers(0, 3))
    def set_priority(self, data: st.DataObject, priority: int) -> None:
        ln = self.model.lines[data.draw(st.sampled_from(sorted(self.model.lines)))]
        order_id = self.order_of[ln.line_id]
        call = alloc.SetPriorityRequest(order_id=order_id, line_id=ln.line_id, priority=priority)
        if ln.priority != priority and ln.status in ("CANCELLED", "FULFILLED"):
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.SetPriority, call)
            return
        self.stub.SetPriority(call)
        ln.priority = priority
        if order_id in self.model.orders:
            # Every open line of an order, and the order's own (docs/spec.md §10).
            order = self.model.orders[order_id]
            order.priority = priority
            for other in self.model.order_lines(order):
                if other.status not in ("CANCELLED", "FULFILLED"):
                    other.priority = priority
        self.model.fill()

    @rule(
        policy=st.sampled_from(sorted(POLICIES)),
        strategy=st.sampled_from(["", *sorted(STRATEGIES)]),
    )
    def set_policy(self, policy: str, strategy: str) -> None:
        self.stub.SetSkuPolicy(
            alloc.SetSkuPolicyRequest(
                sku=self.sku,
                fill_policy=POLICIES[policy],
                # UNSPECIFIED keeps the current strategy.
                location_strategy=STRATEGIES.get(strategy, alloc.LOCATION_STRATEGY_UNSPECIFIED),
            )
        )
        self.model.policy = policy
        self.model.strategy = strategy or self.model.strategy
        self.model.fill()

    # checks after every step

    @invariant()
    def service_matches_model(self) -> None:
        if not self.model.lines and not self.model.supply and not self.model.unmatched:
            return  # nothing has referenced the SKU yet
        s = self._summary()
        m = self.model
        reserved = sum(ln.reserved for ln in m.lines.values())
        fulfilled = sum(ln.fulfilled for ln in m.lines.values())
        waiting = m.waiting()
        assert (
            s.free_units,
            s.reserved_units,
            s.fulfilled_units,
            s.backordered_units,
            s.waiting_lines,
            s.unmatched_shrinkage_units,
        ) == (
            m.free,
            reserved,
            fulfilled,
            sum(ln.backordered for ln in waiting),
            len(waiting),
            m.unmatched,
        )
        assert self._summary_locations(s) == m.summary_locations()
        # Listed by fill_rank then location_id, with the flag the model has.
        listed = [loc.location_id for loc in s.locations]
        assert listed == sorted(listed, key=lambda n: m.locations[n].order), listed
        assert all(loc.active == m.locations[loc.location_id].active for loc in s.locations)
        lines = self._lines()
        positions = {ln.line_id: i for i, ln in enumerate(waiting, 1)}
        assert lines == {
            ln.line_id: (
                ln.reserved,
                ln.fulfilled,
                ln.backordered,
                ln.status,
                positions.get(ln.line_id, 0),
                ln.allocations,
            )
            for ln in m.lines.values()
        }

    @invariant()
    def decision_log_matches_model(self) -> None:
        if not self.model.log:
            return  # the SKU may not exist yet
        reply = self.stub.ListReservations(
            alloc.ListReservationsRequest(sku=self.sku, page_size=1000)
        )
        assert [
            (
                r.line_id,
                r.quantity,
                alloc.ReservationRule.Name(r.rule).removeprefix("RESERVATION_RULE_"),
                r.queue_position,
                alloc.FillPolicy.Name(r.fill_policy).removeprefix("FILL_POLICY_"),
                r.location_id,
            )
            for r in reply.reservations
        ] == [
            (d.line_id, d.quantity, d.rule, d.queue_position, d.policy, d.location_id)
            for d in self.model.log
        ]

    @invariant()
    def events_of_the_step_match_model(self) -> None:
        fills = self.model.log[self.decisions_seen :]
        expected = self.expected + [
            (
                "line.revoked" if d.rule == "REVOKED" else "line.reserved",
                d.line_id,
                d.quantity,
                d.location_id,
            )
            for d in fills
        ]
        got = self._new_events(len(expected), timeout=15)
        # One transaction's events: compared by kind, each kind in the order published.
        for key in EVENTS:
            assert [e for e in got if e[0] == key] == [e for e in expected if e[0] == key], key
        self.expected, self.decisions_seen = [], len(self.model.log)

    def teardown(self) -> None:
        # A late (duplicate or stray) event of the last step is seen, not left unread. (Not
        # after a step that failed before its events were compared: they are not extra.)
        if self.expected or self.decisions_seen != len(self.model.log):
            return
        extra = self._new_events(0, timeout=QUIET, settle=QUIET)
        assert extra == [], extra

    @invariant()
    def units_are_never_invented_and_lines_keep_to_their_locations(self) -> None:
        m = self.model
        reserved = sum(ln.reserved for ln in m.lines.values())
        fulfilled = sum(ln.fulfilled for ln in m.lines.values())
        assert all(units >= 0 for units in m.free_at.values())
        assert reserved + fulfilled + m.free == m.supply
        for ln in m.lines.values():
            assert ln.reserved + ln.fulfilled <= ln.quantity
            if ln.locations:
                assert set(ln.allocations) <= set(ln.locations), ln
        # A waiting line can take nothing more now: another walk gives nothing.
        log = len(m.log)
        m.fill()
        assert len(m.log) == log

    # helpers

    def _summary(self) -> alloc.SkuSummary:
        return self.stub.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=self.sku)).summary

    @staticmethod
    def _summary_locations(s: alloc.SkuSummary) -> dict[str, tuple[int, int]]:
        return {
            loc.location_id: (loc.free_units, loc.reserved_units)
            for loc in s.locations
            if loc.free_units or loc.reserved_units
        }

    def _lines(self) -> dict[str, tuple[object, ...]]:
        reply = self.stub.ListLines(alloc.ListLinesRequest(sku=self.sku, page_size=1000))
        return {
            ln.line_id: (
                ln.reserved_quantity,
                ln.fulfilled_quantity,
                ln.backordered_quantity,
                STATUS.Name(ln.status).removeprefix("LINE_STATUS_"),
                ln.queue_position,
                {
                    a.location_id: (a.reserved_quantity, a.fulfilled_quantity)
                    for a in ln.allocations
                    if a.reserved_quantity or a.fulfilled_quantity
                },
            )
            for ln in reply.lines
        }

    def _new_events(self, count: int, timeout: float, settle: float = 0.0) -> list[Event]:
        """This SKU's events the tap received since the last call: waits until there are
        at least `count` (or `timeout`), then `settle` seconds more."""

        def mine() -> list[tuple[int, Event]]:
            return [
                (index, event)
                for index, (key, _, body) in enumerate(self.tap.messages)
                if index >= self.messages_seen
                for sku, event in [event_of(key, body)]
                if sku == self.sku
            ]

        async def wait() -> list[tuple[int, Event]]:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(mine()) < count and loop.time() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(settle)
            return mine()

        got = self.loop.run_until_complete(wait())
        if got:
            self.messages_seen = got[-1][0] + 1
        return [event for _, event in got]

    def _await_event_applied(self, timeout: float = 15.0) -> None:
        """Waits until the SKU's figures show the event (each stock event changes the free,
        reserved or unmatched units of some location); the comparison itself is the
        invariant's."""
        m = self.model
        want = (m.free, sum(ln.reserved for ln in m.lines.values()), m.unmatched)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                s = self._summary()
                if (
                    s.free_units,
                    s.reserved_units,
                    s.unmatched_shrinkage_units,
                ) == want and self._summary_locations(s) == m.summary_locations():
                    return
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.02)

    def _put_location(self, location_id: str, rank: int, active: bool) -> None:
        """PutLocation on the inventory process; waits until the allocation process applied
        its location.updated (so the next step's events come after it)."""
        reply = self.inventory.PutLocation(
            inv.PutLocationRequest(location_id=location_id, fill_rank=rank, active=active)
        )
        assert (reply.location.fill_rank, reply.location.active) == (rank, active)

        async def applied() -> bool:
            rows = await self.inventory_db.fetch(
                """select event_id, body from outbox where routing_key = 'location.updated'
                   order by id desc limit 200"""
            )
            ids = [
                r["event_id"]
                for r in rows
                for e in [inv_events.LocationUpdated.FromString(r["body"])]
                if (e.location_id, e.version) == (location_id, reply.location.version)
            ]
            assert len(ids) <= 1, ids
            return bool(ids) and bool(
                await self.allocation_db.fetchval(
                    "select count(*) from processed_event where event_id = $1", ids[0]
                )
            )

        deadline = time.monotonic() + 15
        while not self.loop.run_until_complete(applied()):
            assert time.monotonic() < deadline, f"location.updated of {location_id} not applied"
            time.sleep(0.02)
        self.model.put_location(location_id, rank, active)

    def _expect(self, code: grpc.StatusCode, method: object, request: object) -> str:
        """Calls `method`, which must fail with `code`; the error's details."""
        assert callable(method)
        try:
            method(request)
        except grpc.RpcError as error:
            assert error.code() == code, error.details()
            return str(error.details())
        raise AssertionError(f"expected {code}")


def test_allocation_service_matches_the_reference_model(system: System, vhost: Vhost) -> None:
    loop = asyncio.new_event_loop()
    feed = loop.run_until_complete(InventoryFeed(vhost.url).open())
    tap = loop.run_until_complete(AllocationEventTap(vhost.url).open())
    inventory_db = loop.run_until_complete(asyncpg.connect(database_url(system.inventory_db)))
    allocation_db = loop.run_until_complete(asyncpg.connect(database_url(system.allocation_db)))
    try:
        with (
            grpc.insecure_channel(system.allocation.grpc_addr) as channel,
            grpc.insecure_channel(system.inventory.grpc_addr) as inventory_channel,
        ):
            AllocationMachine.stub = AllocationServiceStub(channel)
            AllocationMachine.inventory = InventoryServiceStub(inventory_channel)
            AllocationMachine.feed = feed
            AllocationMachine.tap = tap
            AllocationMachine.loop = loop
            AllocationMachine.inventory_db = inventory_db
            AllocationMachine.allocation_db = allocation_db
            run_state_machine_as_test(
                AllocationMachine,
                settings=settings(
                    max_examples=30,
                    stateful_step_count=25,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
    finally:
        loop.run_until_complete(allocation_db.close())
        loop.run_until_complete(inventory_db.close())
        loop.run_until_complete(tap.close())
        loop.run_until_complete(feed.close())
        loop.close()

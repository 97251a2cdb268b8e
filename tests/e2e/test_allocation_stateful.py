"""A stateful Hypothesis test: random Allocate / receive / adjust / cancel / fulfil /
set-priority / set-policy steps against the real allocation process (stock events go in
through RabbitMQ), compared after every step with a small reference model of docs/spec.md §2: the
SKU's totals, every line, the decision log (ListReservations) and the line.* events the step
published on allocation.events (no more, no fewer, none late)."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

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
from tests.e2e.conftest import System
from tests.support.cluster import AllocationEventTap
from tests.support.inventory_feed import InventoryFeed
from tests.support.reference_model import Model, ModelLine
from tests.support.servers import Vhost, unique

STATUS = alloc_events.LineStatus
POLICIES = {"STRICT": alloc.FILL_POLICY_STRICT, "SKIP": alloc.FILL_POLICY_SKIP}


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
    """(sku, what the model predicts of it) of one message of allocation.events."""
    e = EVENTS[routing_key].FromString(body)
    if isinstance(e, alloc_events.LineBackordered):
        return e.sku, (routing_key, e.line_id, e.backordered_quantity, e.queue_position)
    if isinstance(e, alloc_events.LineReserved):
        return e.sku, (routing_key, e.line_id, e.reserved_now)
    if isinstance(e, alloc_events.LineRevoked):
        return e.sku, (routing_key, e.line_id, e.revoked_now)
    if isinstance(e, alloc_events.LineCancelled):
        return e.sku, (routing_key, e.line_id, e.released_quantity)
    if isinstance(e, alloc_events.LineFulfilled):
        return e.sku, (routing_key, e.line_id, e.quantity, e.fulfilled_quantity)
    assert isinstance(e, alloc_events.LineEtaChanged)
    return e.sku, (routing_key, e.line_id, e.eta_known)


class AllocationMachine(RuleBasedStateMachine):
    stub: ClassVar[AllocationServiceStub]
    feed: ClassVar[InventoryFeed]
    tap: ClassVar[AllocationEventTap]
    loop: ClassVar[asyncio.AbstractEventLoop]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.sku = unique("HYP")
        self.order = unique("o")
        self.seq = 0
        # Events this step should publish besides the model's decisions (which each publish
        # line.reserved or line.revoked), and how many of the model's decisions and of the
        # tap's messages earlier steps accounted for.
        self.expected: list[Event] = []
        self.decisions_seen = 0
        self.messages_seen = 0

    @initialize()
    def start(self) -> None:
        pass

    # rules

    @rule(
        quantity=st.integers(1, 5),
        priority=st.integers(0, 3),
        partial=st.booleans(),
    )
    def allocate(self, quantity: int, priority: int, partial: bool) -> None:
        self.seq += 1
        line_id = f"l{self.seq}"
        reply = self.stub.Allocate(
            alloc.AllocateRequest(
                order_id=self.order,
                line_id=line_id,
                sku=self.sku,
                quantity=quantity,
                priority=priority,
                allow_partial=partial,
            )
        )
        self.model.lines[line_id] = ModelLine(line_id, quantity, priority, self.seq, partial)
        self.model.fill()
        expected = self.model.lines[line_id]
        assert (reply.line.reserved_quantity, reply.line.backordered_quantity) == (
            expected.reserved,
            expected.backordered,
        )
        if expected.backordered:
            position = [ln.line_id for ln in self.model.waiting()].index(line_id) + 1
            self.expected.append(("line.backordered", line_id, expected.backordered, position))

    @rule(quantity=st.integers(1, 8))
    def receive(self, quantity: int) -> None:
        self.loop.run_until_complete(self.feed.received(self.sku, quantity))
        self.model.free += quantity
        self.model.supply += quantity
        self.model.fill()
        self._await_event_applied()

    @rule(delta=st.integers(-6, 6).filter(bool))
    def adjust(self, delta: int) -> None:
        self.loop.run_until_complete(self.feed.adjusted(self.sku, delta))
        if delta > 0:
            self.model.free += delta
            self.model.supply += delta
            self.model.fill()
        else:
            self.model.shrink(-delta)
        self._await_event_applied()

    @precondition(lambda self: self.model.lines)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ln = self.model.lines[data.draw(st.sampled_from(sorted(self.model.lines)))]
        call = alloc.CancelLineRequest(order_id=self.order, line_id=ln.line_id)
        if ln.status == "FULFILLED":
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.CancelLine, call)
            return
        reply = self.stub.CancelLine(call)
        released = 0 if ln.cancelled else ln.reserved
        if not ln.cancelled:
            self.expected.append(("line.cancelled", ln.line_id, released))
            self.model.free += ln.reserved
            ln.reserved = 0
            ln.cancelled = True
            self.model.fill()
        assert reply.released_quantity == released

    @precondition(lambda self: self.model.lines)
    @rule(data=st.data())
    def fulfil(self, data: st.DataObject) -> None:
        ln = self.model.lines[data.draw(st.sampled_from(sorted(self.model.lines)))]
        self.seq += 1
        quantity = data.draw(st.integers(1, max(ln.reserved, 1) + 1))
        call = alloc.FulfillLineRequest(
            order_id=self.order,
            line_id=ln.line_id,
            fulfillment_id=f"{self.order}-f{self.seq}",
            quantity=quantity,
        )
        if ln.cancelled or quantity > ln.reserved:
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.FulfillLine, call)
            return
        self.stub.FulfillLine(call)
        ln.reserved -= quantity
        ln.fulfilled += quantity
        self.expected.append(("line.fulfilled", ln.line_id, quantity, ln.fulfilled))

    @precondition(lambda self: self.model.lines)
    @rule(data=st.data(), priority=st.integers(0, 3))
    def set_priority(self, data: st.DataObject, priority: int) -> None:
        ln = self.model.lines[data.draw(st.sampled_from(sorted(self.model.lines)))]
        call = alloc.SetPriorityRequest(order_id=self.order, line_id=ln.line_id, priority=priority)
        if ln.priority != priority and ln.status in ("CANCELLED", "FULFILLED"):
            self._expect(grpc.StatusCode.FAILED_PRECONDITION, self.stub.SetPriority, call)
            return
        self.stub.SetPriority(call)
        ln.priority = priority
        self.model.fill()

    @rule(policy=st.sampled_from(sorted(POLICIES)))
    def set_policy(self, policy: str) -> None:
        self.stub.SetSkuPolicy(
            alloc.SetSkuPolicyRequest(sku=self.sku, fill_policy=POLICIES[policy])
        )
        self.model.policy = policy
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
        lines = self._lines()
        positions = {ln.line_id: i for i, ln in enumerate(waiting, 1)}
        assert lines == {
            ln.line_id: (
                ln.reserved,
                ln.fulfilled,
                ln.backordered,
                ln.status,
                positions.get(ln.line_id, 0),
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
            )
            for r in reply.reservations
        ] == [(d.line_id, d.quantity, d.rule, d.queue_position, d.policy) for d in self.model.log]

    @invariant()
    def events_of_the_step_match_model(self) -> None:
        fills = self.model.log[self.decisions_seen :]
        expected = self.expected + [
            ("line.revoked" if d.rule == "REVOKED" else "line.reserved", d.line_id, d.quantity)
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
    def units_are_never_invented_and_rank_is_respected(self) -> None:
        m = self.model
        reserved = sum(ln.reserved for ln in m.lines.values())
        fulfilled = sum(ln.fulfilled for ln in m.lines.values())
        assert m.free >= 0
        assert reserved + fulfilled + m.free == m.supply
        assert all(ln.reserved + ln.fulfilled <= ln.quantity for ln in m.lines.values())
        waiting = m.waiting()
        if m.policy == "STRICT" and waiting:
            # The first waiting line cannot be served from what is free, so no line ranked
            # below it could have been given units ahead of it.
            head = waiting[0]
            assert m.free < head.backordered and not (head.partial and m.free > 0)
        if m.policy == "SKIP":
            for ln in waiting:
                assert m.free < ln.backordered and not (ln.partial and m.free > 0)

    # helpers

    def _summary(self) -> alloc.SkuSummary:
        return self.stub.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=self.sku)).summary

    def _lines(self) -> dict[str, tuple[int, int, int, str, int]]:
        reply = self.stub.ListLines(alloc.ListLinesRequest(sku=self.sku, page_size=1000))
        return {
            ln.line_id: (
                ln.reserved_quantity,
                ln.fulfilled_quantity,
                ln.backordered_quantity,
                STATUS.Name(ln.status).removeprefix("LINE_STATUS_"),
                ln.queue_position,
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
        """Waits until the SKU's totals show the event (each stock event changes them);
        the comparison itself is the invariant's."""
        m = self.model
        want = (
            m.free,
            sum(ln.reserved for ln in m.lines.values()),
            m.unmatched,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                s = self._summary()
                if (s.free_units, s.reserved_units, s.unmatched_shrinkage_units) == want:
                    return
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.02)

    def _expect(self, code: grpc.StatusCode, method: object, request: object) -> None:
        assert callable(method)
        try:
            method(request)
        except grpc.RpcError as error:
            assert error.code() == code, error.details()
        else:
            raise AssertionError(f"expected {code}")


def test_allocation_service_matches_the_reference_model(system: System, vhost: Vhost) -> None:
    loop = asyncio.new_event_loop()
    feed = loop.run_until_complete(InventoryFeed(vhost.url).open())
    tap = loop.run_until_complete(AllocationEventTap(vhost.url).open())
    try:
        with grpc.insecure_channel(system.allocation.grpc_addr) as channel:
            AllocationMachine.stub = AllocationServiceStub(channel)
            AllocationMachine.feed = feed
            AllocationMachine.tap = tap
            AllocationMachine.loop = loop
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
        loop.run_until_complete(tap.close())
        loop.run_until_complete(feed.close())
        loop.close()

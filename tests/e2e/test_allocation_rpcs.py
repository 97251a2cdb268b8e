"""Every AllocationService RPC against the real process: cancel, fulfil, priority, policy,
summaries, listings, shrinkage; bad input gets the right status with nothing written.
Stock reaches the service as inventory events published into RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.e2e.conftest import EventTap, System
from tests.e2e.test_bad_input import field_violations
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import Vhost, unique

S = alloc_events.LineStatus
T = TypeVar("T")


@pytest.fixture(scope="module")
async def feed(system: System, vhost: Vhost) -> AsyncIterator[InventoryFeed]:
    opened = await InventoryFeed(vhost.url).open()
    yield opened
    await opened.close()


async def summary(stub: AllocationServiceStub, sku: str) -> alloc.SkuSummary:
    return (await stub.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=sku))).summary


async def line(stub: AllocationServiceStub, order_id: str, line_id: str) -> alloc.Line:
    return (await stub.GetLine(alloc.GetLineRequest(order_id=order_id, line_id=line_id))).line


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 20.0) -> T:
    """Polls `check()` until it returns something truthy (what a user would observe)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"condition not reached; last: {result!r}")
        await asyncio.sleep(0.05)


async def place(
    stub: AllocationServiceStub,
    order: str,
    line_id: str,
    sku: str,
    quantity: int,
    priority: int = 0,
    partial: bool = False,
) -> alloc.AllocateResponse:
    return await stub.Allocate(
        alloc.AllocateRequest(
            order_id=order,
            line_id=line_id,
            sku=sku,
            quantity=quantity,
            priority=priority,
            allow_partial=partial,
        )
    )


async def stocked(
    stub: AllocationServiceStub, feed: InventoryFeed, sku: str, units: int, reserved: int
) -> alloc.SkuSummary:
    """Receives `units` through RabbitMQ and waits until the service reserved `reserved`."""
    before = await summary(stub, sku)
    await feed.received(sku, units)

    async def applied() -> alloc.SkuSummary | None:
        now = await summary(stub, sku)
        total = now.free_units + now.reserved_units + now.fulfilled_units
        return now if total == before.free_units + before.reserved_units + units else None

    now = await until(applied)
    assert now.reserved_units == before.reserved_units + reserved
    return now


async def rpc_error(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# --- cancel -------------------------------------------------------------------------------


async def test_cancel_returns_units_to_the_next_line(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    sku, order = unique("CXL"), unique("o")
    await place(allocation, order, "first", sku, 3)
    await place(allocation, order, "second", sku, 2)
    await stocked(allocation, feed, sku, 3, reserved=3)

    reply = await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="first"))
    assert reply.released_quantity == 3
    assert reply.line.status == S.LINE_STATUS_CANCELLED
    assert (reply.line.reserved_quantity, reply.line.backordered_quantity) == (0, 0)
    second = await line(allocation, order, "second")
    assert (second.status, second.reserved_quantity, second.queue_position) == (
        S.LINE_STATUS_RESERVED,
        2,
        0,
    )
    after = await summary(allocation, sku)
    assert (after.free_units, after.reserved_units, after.waiting_lines) == (1, 2, 0)

    # A repeat answers with the cancelled line and releases nothing more.
    again = await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="first"))
    assert (again.line.status, again.released_quantity) == (S.LINE_STATUS_CANCELLED, 0)
    assert (await summary(allocation, sku)).free_units == 1

    def cancelled(m: object) -> bool:
        return getattr(m, "routing_key", "") == "line.cancelled" and _has(m, order)

    [event] = await allocation_events.collect(cancelled, 1)
    body = alloc_events.LineCancelled.FromString(event.body)
    assert (body.line_id, body.released_quantity, body.status) == (
        "first",
        3,
        S.LINE_STATUS_CANCELLED,
    )


def _has(message: object, text: str) -> bool:
    return text.encode() in getattr(message, "body", b"")


async def test_cancel_of_a_waiting_line_leaves_the_queue(allocation: AllocationServiceStub) -> None:
    sku, order = unique("CXW"), unique("o")
    for i in range(3):
        await place(allocation, order, str(i), sku, 2)
    await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="0"))
    assert (await line(allocation, order, "2")).queue_position == 2
    s = await summary(allocation, sku)
    assert (s.waiting_lines, s.backordered_units) == (2, 4)


# --- fulfil -------------------------------------------------------------------------------


async def test_fulfil_ships_reserved_units_once(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    sku, order = unique("FUL"), unique("o")
    await place(allocation, order, "1", sku, 5)
    await stocked(allocation, feed, sku, 5, reserved=5)
    request = alloc.FulfillLineRequest(
        order_id=order, line_id="1", fulfillment_id=unique("f"), quantity=2
    )
    replies = await asyncio.gather(*(allocation.FulfillLine(request) for _ in range(3)))
    for reply in replies:
        assert (reply.line.reserved_quantity, reply.line.fulfilled_quantity) == (3, 2)
        assert reply.line.status == S.LINE_STATUS_PARTIALLY_FULFILLED
    s = await summary(allocation, sku)
    assert (s.reserved_units, s.fulfilled_units, s.free_units) == (3, 2, 0)

    changed = alloc.FulfillLineRequest(
        order_id=order, line_id="1", fulfillment_id=request.fulfillment_id, quantity=3
    )
    error = await rpc_error(allocation.FulfillLine(changed))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert request.fulfillment_id in (error.details() or "")

    too_many = alloc.FulfillLineRequest(
        order_id=order, line_id="1", fulfillment_id=unique("f"), quantity=4
    )
    error = await rpc_error(allocation.FulfillLine(too_many))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "3 units reserved" in (error.details() or "")

    rest = alloc.FulfillLineRequest(
        order_id=order, line_id="1", fulfillment_id=unique("f"), quantity=3
    )
    done = (await allocation.FulfillLine(rest)).line
    assert (done.status, done.fulfilled_quantity) == (S.LINE_STATUS_FULFILLED, 5)
    error = await rpc_error(
        allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="1"))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await line(allocation, order, "1")).status == S.LINE_STATUS_FULFILLED

    def fulfilled(m: object) -> bool:
        return getattr(m, "routing_key", "") == "line.fulfilled" and _has(m, order)

    events = [
        alloc_events.LineFulfilled.FromString(m.body)
        for m in await allocation_events.collect(fulfilled, 2)
    ]
    assert [(e.quantity, e.fulfilled_quantity) for e in events] == [(2, 2), (3, 5)]


# --- priority and policy ------------------------------------------------------------------


async def test_raising_priority_lets_a_line_be_served_now(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("PRI"), unique("o")
    await place(allocation, order, "big", sku, 5)
    await place(allocation, order, "small", sku, 2)
    await stocked(allocation, feed, sku, 3, reserved=0)  # STRICT: "big" blocks
    assert (await line(allocation, order, "small")).queue_position == 2

    reply = await allocation.SetPriority(
        alloc.SetPriorityRequest(order_id=order, line_id="small", priority=9)
    )
    assert (reply.line.priority, reply.line.status) == (9, S.LINE_STATUS_RESERVED)
    assert (await summary(allocation, sku)).free_units == 1
    big = await line(allocation, order, "big")
    assert (big.queue_position, big.backordered_quantity) == (1, 5)

    # The same priority again changes nothing; a fulfilled/cancelled line cannot move.
    same = await allocation.SetPriority(
        alloc.SetPriorityRequest(order_id=order, line_id="small", priority=9)
    )
    assert same.line.reserved_quantity == 2
    await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="big"))
    error = await rpc_error(
        allocation.SetPriority(alloc.SetPriorityRequest(order_id=order, line_id="big", priority=3))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A retried Allocate with the priority it was placed with is still the same call.
    again = await place(allocation, order, "small", sku, 2, priority=0)
    assert again.line.priority == 9


async def test_skip_policy_serves_lines_behind_a_blocker(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("SKP"), unique("o")
    await place(allocation, order, "big", sku, 5)
    await place(allocation, order, "small", sku, 2)
    await stocked(allocation, feed, sku, 3, reserved=0)
    reply = await allocation.SetSkuPolicy(
        alloc.SetSkuPolicyRequest(sku=sku, fill_policy=alloc.FILL_POLICY_SKIP)
    )
    s = reply.summary
    assert s.policy.fill_policy == alloc.FILL_POLICY_SKIP
    assert s.policy.backorders_accepted  # untouched default
    assert (s.free_units, s.reserved_units, s.backordered_units, s.waiting_lines) == (1, 2, 5, 1)
    assert (await line(allocation, order, "small")).status == S.LINE_STATUS_RESERVED

    log = await allocation.ListReservations(alloc.ListReservationsRequest(sku=sku))
    [entry] = log.reservations
    assert (entry.line_id, entry.quantity, entry.queue_position) == ("small", 2, 2)
    assert entry.rule == alloc.RESERVATION_RULE_WHOLE_AFTER_SKIP
    assert (entry.cause, entry.fill_policy) == ("SetSkuPolicy", alloc.FILL_POLICY_SKIP)


async def test_backorder_policy_refuses_lines_and_writes_nothing(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("POL"), unique("o")
    await allocation.SetSkuPolicy(alloc.SetSkuPolicyRequest(sku=sku, backorder_limit=4))
    await place(allocation, order, "a", sku, 3)
    error = await rpc_error(place(allocation, order, "b", sku, 2))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "limit of 4" in (error.details() or "")
    assert (await rpc_error(line(allocation, order, "b"))).code() == grpc.StatusCode.NOT_FOUND

    await allocation.SetSkuPolicy(
        alloc.SetSkuPolicyRequest(sku=sku, backorders_accepted=False, backorder_limit=0)
    )
    await stocked(allocation, feed, sku, 5, reserved=3)
    error = await rpc_error(place(allocation, order, "c", sku, 3))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "accepts no backorders" in (error.details() or "")
    ok = await place(allocation, order, "d", sku, 2)
    assert ok.outcome == alloc.ALLOCATION_OUTCOME_RESERVED
    s = await summary(allocation, sku)
    assert (s.free_units, s.reserved_units, s.backordered_units) == (0, 5, 0)
    assert not s.policy.backorders_accepted and s.policy.backorder_limit == 0


# --- shrinkage ----------------------------------------------------------------------------


async def test_shrinkage_revokes_lowest_rank_first(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    sku, order = unique("SHR"), unique("o")
    await place(allocation, order, "urgent", sku, 2, priority=9)
    await place(allocation, order, "old", sku, 2)
    await place(allocation, order, "new", sku, 2)
    await stocked(allocation, feed, sku, 7, reserved=6)  # 1 free

    await feed.adjusted(sku, -4)  # 1 from free, 3 taken back: "new" 2, then "old" 1

    async def shrunk() -> alloc.SkuSummary | None:
        s = await summary(allocation, sku)
        return s if s.reserved_units == 3 else None

    s = await until(shrunk)
    assert (s.free_units, s.backordered_units, s.waiting_lines) == (0, 3, 2)
    got = {lid: await line(allocation, order, lid) for lid in ("urgent", "old", "new")}
    assert {k: (v.reserved_quantity, v.queue_position) for k, v in got.items()} == {
        "urgent": (2, 0),
        "old": (1, 1),  # back in the queue at its original rank
        "new": (0, 2),
    }
    assert got["new"].status == S.LINE_STATUS_BACKORDERED

    def revoked(m: object) -> bool:
        return getattr(m, "routing_key", "") == "line.revoked" and _has(m, order)

    events = [
        alloc_events.LineRevoked.FromString(m.body)
        for m in await allocation_events.collect(revoked, 2)
    ]
    assert [(e.line_id, e.revoked_now, e.reserved_quantity) for e in events] == [
        ("new", 2, 0),
        ("old", 1, 1),
    ]

    # More shrinkage than free + reserved: free stays 0, the rest is recorded as unmatched.
    await feed.adjusted(sku, -10)

    async def emptied() -> alloc.SkuSummary | None:
        s = await summary(allocation, sku)
        return s if s.reserved_units == 0 else None

    s = await until(emptied)
    assert (s.free_units, s.unmatched_shrinkage_units, s.backordered_units) == (0, 7, 6)

    # A positive adjustment fills the queue again, in rank order.
    await feed.adjusted(sku, 3)

    async def refilled() -> alloc.SkuSummary | None:
        s = await summary(allocation, sku)
        return s if s.reserved_units == 2 else None

    s = await until(refilled)
    assert (await line(allocation, order, "urgent")).reserved_quantity == 2
    assert s.free_units == 1  # "old" needs 2 whole units and blocks (STRICT)

    log = await allocation.ListReservations(
        alloc.ListReservationsRequest(order_id=order, line_id="new")
    )
    assert [(r.rule, r.quantity) for r in log.reservations] == [
        (alloc.RESERVATION_RULE_WHOLE, 2),
        (alloc.RESERVATION_RULE_REVOKED, 2),
    ]


# --- listings -----------------------------------------------------------------------------


async def test_list_lines_filters_and_pages(allocation: AllocationServiceStub) -> None:
    sku, order, other = unique("LST"), unique("o"), unique("o")
    for i in range(5):
        await place(allocation, order, str(i), sku, 1)
    await place(allocation, other, "x", sku, 1)
    await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="1"))

    seen: list[tuple[str, int]] = []
    token = ""
    while True:
        page = await allocation.ListLines(
            alloc.ListLinesRequest(order_id=order, page_size=2, page_token=token)
        )
        seen += [(ln.line_id, ln.queue_position) for ln in page.lines]
        token = page.next_page_token
        if not token:
            break
    assert seen == [("0", 1), ("1", 0), ("2", 2), ("3", 3), ("4", 4)]

    by_sku = await allocation.ListLines(
        alloc.ListLinesRequest(sku=sku, status=S.LINE_STATUS_BACKORDERED)
    )
    assert [ln.line_id for ln in by_sku.lines] == ["0", "2", "3", "4", "x"]
    cancelled = await allocation.ListLines(
        alloc.ListLinesRequest(sku=sku, status=S.LINE_STATUS_CANCELLED)
    )
    assert [(ln.order_id, ln.line_id) for ln in cancelled.lines] == [(order, "1")]


# --- bad input ----------------------------------------------------------------------------

BAD_REQUESTS = [
    ("ListLines", alloc.ListLinesRequest(sku="a b"), "sku"),
    ("ListLines", alloc.ListLinesRequest(order_id="o" * 129), "order_id"),
    ("ListLines", alloc.ListLinesRequest(page_size=-1), "page_size"),
    ("ListLines", alloc.ListLinesRequest(page_token="garbage"), "page_token"),
    ("ListLines", alloc.ListLinesRequest(status=42), "status"),  # type: ignore[arg-type]
    ("CancelLine", alloc.CancelLineRequest(order_id="", line_id="1"), "order_id"),
    ("CancelLine", alloc.CancelLineRequest(order_id="o", line_id="l" * 129), "line_id"),
    (
        "FulfillLine",
        alloc.FulfillLineRequest(order_id="o", line_id="1", quantity=1),
        "fulfillment_id",
    ),
    (
        "FulfillLine",
        alloc.FulfillLineRequest(order_id="o", line_id="1", fulfillment_id="f", quantity=0),
        "quantity",
    ),
    (
        "FulfillLine",
        alloc.FulfillLineRequest(line_id="1", fulfillment_id="f", quantity=1),
        "order_id",
    ),
    ("SetPriority", alloc.SetPriorityRequest(order_id="o", line_id="1", priority=10), "priority"),
    ("SetPriority", alloc.SetPriorityRequest(order_id="o", line_id="", priority=1), "line_id"),
    ("GetSkuSummary", alloc.GetSkuSummaryRequest(sku=""), "sku"),
    ("GetSkuSummary", alloc.GetSkuSummaryRequest(sku="x" * 65), "sku"),
    ("SetSkuPolicy", alloc.SetSkuPolicyRequest(sku="bad/sku"), "sku"),
    ("SetSkuPolicy", alloc.SetSkuPolicyRequest(sku="OK", fill_policy=7), "fill_policy"),  # type: ignore[arg-type]
    ("SetSkuPolicy", alloc.SetSkuPolicyRequest(sku="OK", backorder_limit=-1), "backorder_limit"),
    (
        "SetSkuPolicy",
        alloc.SetSkuPolicyRequest(sku="OK", max_units_per_customer=-1),
        "max_units_per_customer",
    ),
    ("ListReservations", alloc.ListReservationsRequest(), "sku"),
    ("ListReservations", alloc.ListReservationsRequest(sku="S", order_id="o", line_id="1"), "sku"),
    ("ListReservations", alloc.ListReservationsRequest(order_id="o"), "line_id"),
    ("ListReservations", alloc.ListReservationsRequest(sku="S", page_size=-5), "page_size"),
    (
        "ListReservations",
        alloc.ListReservationsRequest(sku="S", page_token="bGluZXM6MQ=="),
        "page_token",
    ),
]


@pytest.mark.parametrize(("method", "request_", "field"), BAD_REQUESTS)
async def test_bad_input_names_the_field(
    allocation: AllocationServiceStub, method: str, request_: object, field: str
) -> None:
    error = await rpc_error(getattr(allocation, method)(request_))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field_violations(error) == [field]
    assert field in (error.details() or "")


async def test_bad_policy_writes_nothing(allocation: AllocationServiceStub) -> None:
    sku = unique("BAD")
    await rpc_error(
        allocation.SetSkuPolicy(
            alloc.SetSkuPolicyRequest(sku=sku, backorders_accepted=False, backorder_limit=-5)
        )
    )
    error = await rpc_error(allocation.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=sku)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_unknown_lines_and_skus_are_not_found(allocation: AllocationServiceStub) -> None:
    order = unique("o")
    calls = [
        allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="1")),
        allocation.FulfillLine(
            alloc.FulfillLineRequest(order_id=order, line_id="1", fulfillment_id="f", quantity=1)
        ),
        allocation.SetPriority(alloc.SetPriorityRequest(order_id=order, line_id="1", priority=1)),
        allocation.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=unique("NEVER"))),
        allocation.ListReservations(alloc.ListReservationsRequest(order_id=order, line_id="1")),
        allocation.ListReservations(alloc.ListReservationsRequest(sku=unique("NEVER"))),
    ]
    for call in calls:
        error = await rpc_error(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details()
    # Filters that match nothing are an empty page, not an error.
    empty = await allocation.ListLines(alloc.ListLinesRequest(order_id=order))
    assert (list(empty.lines), empty.next_page_token) == ([], "")

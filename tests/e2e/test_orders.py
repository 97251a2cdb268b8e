"""Orders (docs/spec.md §10) against the real allocation process: AllocateOrder places every
line or none, is idempotent on order_id, never shares an order_id with Allocate; GetOrder's
status and ETA; CancelOrder; SetPriority on an order's line. Stock reaches the service as
inventory events published into RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.e2e.conftest import EventTap, System, rows_mentioning
from tests.e2e.test_allocation_rpcs import line, place, rpc_error, stocked, summary, until
from tests.e2e.test_bad_input import field_violations
from tests.e2e.test_metrics import value, wait_for_metrics
from tests.support.books import check_allocation
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import Vhost, database_url, unique

S = alloc_events.LineStatus
OS = alloc.OrderStatus


@pytest.fixture(scope="module")
async def feed(system: System, vhost: Vhost) -> AsyncIterator[InventoryFeed]:
    opened = await InventoryFeed(vhost.url).open()
    yield opened
    await opened.close()


def order_request(
    order_id: str,
    *lines: tuple[str, str, int],
    priority: int = 0,
    customer_id: str = "",
    ship_complete: bool = False,
    partial: bool = False,
) -> alloc.AllocateOrderRequest:
    return alloc.AllocateOrderRequest(
        order_id=order_id,
        priority=priority,
        customer_id=customer_id,
        ship_complete=ship_complete,
        lines=[
            alloc.OrderLineRequest(line_id=lid, sku=sku, quantity=qty, allow_partial=partial)
            for lid, sku, qty in lines
        ],
    )


async def fresh_stock(
    stub: AllocationServiceStub, feed: InventoryFeed, sku: str, units: int
) -> None:
    """Receives the first `units` of a SKU the service has not seen, and waits for them."""
    await feed.received(sku, units)

    async def arrived() -> bool:
        try:
            now = await summary(stub, sku)
        except grpc.aio.AioRpcError:
            return False
        return now.free_units + now.reserved_units == units

    await until(arrived)


async def get_order(stub: AllocationServiceStub, order_id: str) -> alloc.Order:
    return (await stub.GetOrder(alloc.GetOrderRequest(order_id=order_id))).order


async def test_an_order_places_every_line_in_request_order_with_one_placed_at(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    a, b, order = unique("OA"), unique("OB"), unique("ord")
    await fresh_stock(allocation, feed, a, 5)
    reply = await allocation.AllocateOrder(
        order_request(order, ("l1", a, 3), ("l2", b, 2), ("l3", a, 4), customer_id="c1")
    )
    o = reply.order
    assert [x.line_id for x in o.lines] == ["l1", "l2", "l3"]
    assert {x.placed_at.ToDatetime() for x in o.lines} == {o.placed_at.ToDatetime()}
    # l1 took 3 of a's 5; l3 (whole-only, 4) waits behind nothing but the 2 left; l2 waits.
    assert [(x.status, x.reserved_quantity) for x in o.lines] == [
        (S.LINE_STATUS_RESERVED, 3),
        (S.LINE_STATUS_BACKORDERED, 0),
        (S.LINE_STATUS_BACKORDERED, 0),
    ]
    assert o.status == OS.ORDER_STATUS_PARTIALLY_RESERVED
    assert (o.customer_id, o.ship_complete, o.version) == ("c1", False, 1)
    assert (await get_order(allocation, order)) == o
    listed = await allocation.ListLines(alloc.ListLinesRequest(order_id=order))
    assert [x.line_id for x in listed.lines] == ["l1", "l2", "l3"]

    # Units for b and a complete it.
    await stocked(allocation, feed, b, 2, reserved=2)
    await stocked(allocation, feed, a, 2, reserved=4)
    assert (await get_order(allocation, order)).status == OS.ORDER_STATUS_READY
    for lid, qty in (("l1", 3), ("l2", 2), ("l3", 4)):
        await allocation.FulfillLine(
            alloc.FulfillLineRequest(
                order_id=order, line_id=lid, fulfillment_id=f"{order}-{lid}", quantity=qty
            )
        )
        status = (await get_order(allocation, order)).status
        assert status == (
            OS.ORDER_STATUS_FULFILLED if lid == "l3" else OS.ORDER_STATUS_PARTIALLY_FULFILLED
        )


async def test_a_bad_line_refuses_the_whole_order_and_writes_nothing(
    allocation: AllocationServiceStub, system: System
) -> None:
    sku, order = unique("OBAD"), unique("ordbad")
    cases = {
        "lines[1].quantity": order_request(order, ("l1", sku, 1), ("l2", sku, 0)),
        "lines[2].sku": order_request(order, ("l1", sku, 1), ("l2", sku, 1), ("l3", "bad sku", 1)),
        "lines[1].line_id": order_request(order, ("l1", sku, 1), ("l1", sku, 2)),
        "lines[0].allow_partial": order_request(
            order, ("l1", sku, 1), ship_complete=True, partial=True
        ),
        "lines": order_request(order),
        "priority": order_request(order, ("l1", sku, 1), priority=10),
    }
    for field, request in cases.items():
        error = await rpc_error(allocation.AllocateOrder(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field_violations(error) == [field]
    too_many = order_request(order, *[(f"l{i}", sku, 1) for i in range(501)])
    error = await rpc_error(allocation.AllocateOrder(too_many))
    assert field_violations(error) == ["lines"]
    # A line its SKU's policy refuses (no backorders) refuses the order: nothing written.
    strict = unique("ONOBO")
    await allocation.SetSkuPolicy(alloc.SetSkuPolicyRequest(sku=strict, backorders_accepted=False))
    error = await rpc_error(
        allocation.AllocateOrder(order_request(order, ("l1", sku, 1), ("l2", strict, 1)))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert await rows_mentioning(system.allocation_db, order) == {}
    assert (await rpc_error(get_order(allocation, order))).code() == grpc.StatusCode.NOT_FOUND
    # Not even the SKU was created.
    assert (await rpc_error(summary(allocation, sku))).code() == grpc.StatusCode.NOT_FOUND


async def test_allocate_order_is_idempotent_and_order_ids_are_not_shared(
    allocation: AllocationServiceStub,
) -> None:
    a, b, order = unique("OI"), unique("OJ"), unique("ordi")
    first = await allocation.AllocateOrder(order_request(order, ("l1", a, 1), ("l2", b, 2)))
    # The same lines in another order: a repeat, answered with the current state.
    again = await allocation.AllocateOrder(order_request(order, ("l2", b, 2), ("l1", a, 1)))
    assert again.order == first.order
    assert (await summary(allocation, a)).waiting_lines == 1
    for other in (
        order_request(order, ("l1", a, 1), ("l2", b, 3)),
        order_request(order, ("l1", a, 1)),
        order_request(order, ("l1", a, 1), ("l2", b, 2), priority=5),
    ):
        error = await rpc_error(allocation.AllocateOrder(other))
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    # Allocate cannot add a line to an order, nor AllocateOrder reuse Allocate's order_id.
    error = await rpc_error(place(allocation, order, "l3", a, 1))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    error = await rpc_error(place(allocation, order, "l1", a, 1))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    single = unique("single")
    await place(allocation, single, "x", a, 1)
    error = await rpc_error(allocation.AllocateOrder(order_request(single, ("y", a, 1))))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await summary(allocation, a)).waiting_lines == 2


async def test_racing_allocates_and_an_allocate_order_give_the_order_id_to_one_side(
    allocation: AllocationServiceStub,
) -> None:
    """Allocates of one order's lines run side by side (they do not wait for each other);
    an AllocateOrder of the same order_id racing them gets it only if none of them did."""
    sku = unique("RACE")
    for attempt in range(5):
        order = unique(f"race{attempt}")
        calls = [place(allocation, order, f"a{n}", sku, 1) for n in range(8)]
        calls.insert(attempt, allocation.AllocateOrder(order_request(order, ("o1", sku, 1))))
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert all(e.code() == grpc.StatusCode.ALREADY_EXISTS for e in refused), refused
        whole_order = outcomes[attempt]
        lines = await allocation.ListLines(alloc.ListLinesRequest(order_id=order))
        if isinstance(whole_order, grpc.aio.AioRpcError):  # Allocate had it first
            assert len(refused) == 1
            assert sorted(ln.line_id for ln in lines.lines) == [f"a{n}" for n in range(8)]
        else:  # AllocateOrder had it first: every Allocate refused
            assert len(refused) == 8
            assert [ln.line_id for ln in lines.lines] == ["o1"]


async def test_cancel_order_cancels_every_open_line_and_is_idempotent(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    a, b, order, behind = unique("OC"), unique("OD"), unique("ordc"), unique("behind")
    await fresh_stock(allocation, feed, a, 3)
    await allocation.AllocateOrder(order_request(order, ("l1", a, 3), ("l2", b, 1)))
    await place(allocation, behind, "x", a, 2)
    reply = await allocation.CancelOrder(alloc.CancelOrderRequest(order_id=order))
    assert reply.released_quantity == 3
    assert reply.order.status == OS.ORDER_STATUS_CANCELLED
    assert {x.status for x in reply.order.lines} == {S.LINE_STATUS_CANCELLED}
    # The freed units went to the next line of a.
    assert (await line(allocation, behind, "x")).status == S.LINE_STATUS_RESERVED
    again = await allocation.CancelOrder(alloc.CancelOrderRequest(order_id=order))
    assert (again.released_quantity, again.order.status) == (0, OS.ORDER_STATUS_CANCELLED)
    assert again.order.version == reply.order.version
    assert (await summary(allocation, b)).waiting_lines == 0
    missing = await rpc_error(allocation.CancelOrder(alloc.CancelOrderRequest(order_id="nope")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


async def test_set_priority_on_a_line_of_an_order_sets_the_orders_priority(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    a, b, order, ahead = unique("OP"), unique("OQ"), unique("ordp"), unique("ahead")
    await place(allocation, ahead, "x", b, 1, priority=3)
    await allocation.AllocateOrder(order_request(order, ("l1", a, 1), ("l2", b, 1)))
    reply = await allocation.SetPriority(
        alloc.SetPriorityRequest(order_id=order, line_id="l1", priority=7)
    )
    assert reply.line.priority == 7
    o = await get_order(allocation, order)
    assert o.priority == 7
    assert [x.priority for x in o.lines] == [7, 7]
    # l2 now ranks ahead of the priority-3 line of b: one unit of b goes to it.
    await stocked(allocation, feed, b, 1, reserved=1)
    assert (await line(allocation, order, "l2")).status == S.LINE_STATUS_RESERVED
    assert (await line(allocation, ahead, "x")).status == S.LINE_STATUS_BACKORDERED


# --- ship-complete ----------------------------------------------------------------------------


async def test_a_ship_complete_order_is_reserved_in_full_at_once_by_receipts(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    a, b, order, later = unique("SA"), unique("SB"), unique("ship"), unique("later")
    await fresh_stock(allocation, feed, a, 2)
    reply = await allocation.AllocateOrder(
        order_request(order, ("l1", a, 3), ("l2", b, 2), ship_complete=True, customer_id="c")
    )
    o = reply.order
    assert (o.status, o.ship_complete) == (OS.ORDER_STATUS_WAITING, True)
    assert [x.reserved_quantity for x in o.lines] == [0, 0]
    # A lower-ranked plain line of b is served while the order waits (the trade-off); the
    # order's line never blocks it, even under STRICT.
    await place(allocation, later, "x", b, 1)
    await stocked(allocation, feed, b, 1, reserved=1)
    assert (await line(allocation, later, "x")).status == S.LINE_STATUS_RESERVED
    # Refused before the order is ready.
    early = await rpc_error(
        allocation.FulfillLine(
            alloc.FulfillLineRequest(
                order_id=order, line_id="l1", fulfillment_id=unique("f"), quantity=1
            )
        )
    )
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not ready" in (early.details() or "")
    # a has 3 of 3 now, b 1 of 2: nothing is taken.
    await feed.received(a, 1)
    await until(lambda: _free(allocation, a, 3))
    now = await get_order(allocation, order)
    assert now.status == OS.ORDER_STATUS_WAITING
    assert [x.reserved_quantity for x in now.lines] == [0, 0]
    # b's missing units complete it: every line reserved in full at once.
    await feed.received(b, 2)

    async def ready() -> alloc.Order | None:
        now = await get_order(allocation, order)
        return now if now.status == OS.ORDER_STATUS_READY else None

    done = await until(ready)
    assert [(x.status, x.reserved_quantity) for x in done.lines] == [
        (S.LINE_STATUS_RESERVED, 3),
        (S.LINE_STATUS_RESERVED, 2),
    ]
    assert done.version == 2
    assert (await summary(allocation, a)).free_units == 0
    assert (await summary(allocation, b)).free_units == 0

    def mine(m: object) -> bool:
        return order.encode() in getattr(m, "body", b"") and getattr(m, "routing_key", "") in (
            "line.reserved",
            "order.ready",
        )

    got = await allocation_events.collect(mine, 3)
    assert sorted(str(m.routing_key) for m in got) == [
        "line.reserved",
        "line.reserved",
        "order.ready",
    ]
    assert got[-1].routing_key == "order.ready"
    body = alloc_events.OrderReady.FromString(got[-1].body)
    assert (body.order_id, body.line_count, body.reserved_quantity, body.version) == (
        order,
        2,
        5,
        2,
    )
    assert got[-1].type == "backorder.allocation.v1.OrderReady"
    # Now it ships.
    shipped = await allocation.FulfillLine(
        alloc.FulfillLineRequest(
            order_id=order, line_id="l1", fulfillment_id=unique("f"), quantity=3
        )
    )
    assert shipped.line.status == S.LINE_STATUS_FULFILLED
    assert (await get_order(allocation, order)).status == OS.ORDER_STATUS_PARTIALLY_FULFILLED


async def _free(stub: AllocationServiceStub, sku: str, units: int) -> bool:
    try:
        return (await summary(stub, sku)).free_units == units
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:  # not heard of yet
            raise
        return False


async def test_a_ship_complete_order_completes_at_once_when_stock_is_there(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    a, order = unique("SN"), unique("shipnow")
    await fresh_stock(allocation, feed, a, 4)
    reply = await allocation.AllocateOrder(
        order_request(order, ("l1", a, 1), ("l2", a, 3), ship_complete=True)
    )
    assert reply.order.status == OS.ORDER_STATUS_READY
    assert [x.reserved_quantity for x in reply.order.lines] == [1, 3]
    cancelled = await allocation.CancelOrder(alloc.CancelOrderRequest(order_id=order))
    assert cancelled.released_quantity == 4
    assert (await summary(allocation, a)).free_units == 4


async def test_shrinkage_returns_a_ready_ship_complete_order_to_waiting(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    a, b, order, other = unique("SR"), unique("SS"), unique("shrunk"), unique("other")
    await fresh_stock(allocation, feed, a, 2)
    await fresh_stock(allocation, feed, b, 3)
    ready = await allocation.AllocateOrder(
        order_request(order, ("l1", a, 2), ("l2", b, 3), ship_complete=True)
    )
    assert ready.order.status == OS.ORDER_STATUS_READY
    # A plain line waits for b behind the order.
    await place(allocation, other, "x", b, 3)
    # One unit of a is lost: the order lets go of everything it holds, in one transaction;
    # b's freed units go to the waiting plain line.
    await feed.adjusted(a, -1)

    async def waiting() -> alloc.Order | None:
        now = await get_order(allocation, order)
        return now if now.status == OS.ORDER_STATUS_WAITING else None

    now = await until(waiting)
    assert [(x.reserved_quantity, x.backordered_quantity) for x in now.lines] == [(0, 2), (0, 3)]
    assert now.version == 3  # placed, ready, waiting
    assert (await line(allocation, other, "x")).status == S.LINE_STATUS_RESERVED
    a_now = await summary(allocation, a)
    assert (a_now.free_units, a_now.reserved_units) == (1, 0)

    def mine(m: object) -> bool:
        return order.encode() in getattr(m, "body", b"") and getattr(m, "routing_key", "") in (
            "line.revoked",
            "order.waiting",
        )

    # The unit shrinkage took, then the rest of l1 and all of l2 given back: 4 units freed.
    got = await allocation_events.collect(mine, 4)
    assert [m.routing_key for m in got][-1] == "order.waiting"
    body = alloc_events.OrderWaiting.FromString(got[-1].body)
    assert (body.order_id, body.released_quantity, body.version) == (order, 4, 3)
    # Units for a make it whole again once b has enough free.
    await feed.received(a, 1)
    await feed.received(b, 3)

    async def again() -> alloc.Order | None:
        now = await get_order(allocation, order)
        return now if now.status == OS.ORDER_STATUS_READY else None

    done = await until(again)
    assert [x.reserved_quantity for x in done.lines] == [2, 3]


async def test_the_age_of_the_oldest_waiting_ship_complete_order_is_a_metric(
    allocation: AllocationServiceStub, system: System
) -> None:
    a, order = unique("SM"), unique("metric")
    await allocation.AllocateOrder(order_request(order, ("l1", a, 1), ship_complete=True))
    name = "backorder_ship_complete_oldest_wait_seconds"
    await wait_for_metrics(
        system.allocation.metrics_addr,
        lambda s: (value(s, name, sku=a) or 0) > 0,
        "the waiting ship-complete order's age",
    )
    await allocation.CancelOrder(alloc.CancelOrderRequest(order_id=order))
    await wait_for_metrics(
        system.allocation.metrics_addr,
        lambda s: value(s, name, sku=a) is None,
        "the cancelled order's SKU leaving the gauge",
    )


async def test_cancelling_the_line_a_ship_complete_order_lacks_completes_it(
    allocation: AllocationServiceStub, feed: InventoryFeed, system: System
) -> None:
    a, b, order = unique("SX"), unique("SY"), unique("shipcut")
    await fresh_stock(allocation, feed, a, 2)
    await allocation.AllocateOrder(
        order_request(order, ("l1", a, 2), ("l2", b, 5), ship_complete=True)
    )
    await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="l2"))

    async def ready() -> alloc.Order | None:
        now = await get_order(allocation, order)
        return now if now.status == OS.ORDER_STATUS_READY else None

    done = await until(ready)
    assert [x.reserved_quantity for x in done.lines] == [2, 0]
    conn = await asyncpg.connect(database_url(system.allocation_db))
    try:
        assert await check_allocation(conn) > 0
    finally:
        await conn.close()


async def test_a_higher_ranked_line_competes_only_at_its_own_locations(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    """docs/spec.md §10 with §8.A: a higher-ranked waiting line that may ship only from `la`
    does not hold back the free units at `lb` from a ship-complete order."""
    a, la, lb = unique("SL"), unique("la"), unique("lb")
    plain, order = unique("plain"), unique("shiploc")
    await feed.received(a, 1, la)
    await feed.received(a, 2, lb)
    await until(lambda: _free(allocation, a, 3))
    ahead = await allocation.Allocate(
        alloc.AllocateRequest(
            order_id=plain,
            line_id="p",
            sku=a,
            quantity=5,
            priority=5,
            locations=[la],
            allow_partial=True,
        )
    )
    assert (ahead.line.reserved_quantity, ahead.line.backordered_quantity) == (1, 4)
    reply = await allocation.AllocateOrder(order_request(order, ("l1", a, 2), ship_complete=True))
    assert reply.order.status == OS.ORDER_STATUS_READY
    [got] = reply.order.lines
    assert [(x.location_id, x.reserved_quantity) for x in got.allocations] == [(lb, 2)]
    # A higher-ranked line that may take from anywhere does hold them back.
    other, waiting = unique("plain"), unique("shipwait")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=other, line_id="p", sku=a, quantity=3, priority=5)
    )
    await feed.received(a, 2, lb)
    await until(lambda: _free(allocation, a, 2))  # too few for its 3, whole only
    held = await allocation.AllocateOrder(order_request(waiting, ("l1", a, 2), ship_complete=True))
    assert held.order.status == OS.ORDER_STATUS_WAITING


async def test_a_receipt_completes_every_order_it_can_not_only_the_first_fifty(
    allocation: AllocationServiceStub, feed: InventoryFeed, system: System
) -> None:
    a, b = unique("SM"), unique("SN")
    await fresh_stock(allocation, feed, b, 120)
    orders = [unique("many") for _ in range(120)]
    for order in orders:
        await allocation.AllocateOrder(
            order_request(order, ("l1", a, 1), ("l2", b, 1), ship_complete=True)
        )
    assert (await summary(allocation, a)).waiting_lines == 120
    await feed.received(a, 130)
    await until(lambda: _free(allocation, a, 10), timeout=60)
    statuses = {(await get_order(allocation, order)).status for order in orders}
    assert statuses == {OS.ORDER_STATUS_READY}
    assert (await summary(allocation, b)).free_units == 0
    conn = await asyncpg.connect(database_url(system.allocation_db))
    try:
        assert await check_allocation(conn) > 0
    finally:
        await conn.close()


async def test_each_waiting_line_of_a_ship_complete_order_shows_the_orders_eta(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    """docs/spec.md §10: the lines ship together, so GetLine, ListLines and line.eta_changed
    show the latest of the order's lines' ETAs on each; a plain order's lines keep their own."""
    a, b, order, plain = unique("SEa"), unique("SEb"), unique("shipeta"), unique("plaineta")
    soon = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
    later = soon + timedelta(days=14)
    await allocation.AllocateOrder(
        order_request(order, ("l1", a, 2), ("l2", b, 2), ship_complete=True)
    )
    await allocation.AllocateOrder(order_request(plain, ("p1", a, 1), ("p2", b, 1)))
    await feed.inbound(b, f"{b}-po", 5, later, version=1)

    async def b_estimated() -> bool:
        return (await line(allocation, plain, "p2")).eta_known

    await until(b_estimated)
    await feed.inbound(a, f"{a}-po", 5, soon, version=1)

    async def a_estimated() -> alloc.Line | None:
        now = await line(allocation, plain, "p1")
        return now if now.eta_known else None

    assert (await until(a_estimated)).estimated_fill_at.ToDatetime(tzinfo=UTC) == soon
    for line_id in ("l1", "l2"):
        shown = await line(allocation, order, line_id)
        assert shown.eta_known and shown.estimated_fill_at.ToDatetime(tzinfo=UTC) == later
    listed = await allocation.ListLines(alloc.ListLinesRequest(order_id=order))
    assert [(x.line_id, x.estimated_fill_at.ToDatetime(tzinfo=UTC)) for x in listed.lines] == [
        ("l1", later),
        ("l2", later),
    ]
    assert (await get_order(allocation, order)).estimated_fill_at.ToDatetime(tzinfo=UTC) == later

    def l1_eta(m: object) -> bool:
        body = getattr(m, "body", b"")
        return getattr(m, "routing_key", "") == "line.eta_changed" and order.encode() in body

    got = await allocation_events.collect(l1_eta, 2)
    by_line = {e.line_id: e for e in (alloc_events.LineEtaChanged.FromString(m.body) for m in got)}
    assert by_line["l1"].estimated_fill_at.ToDatetime(tzinfo=UTC) == later

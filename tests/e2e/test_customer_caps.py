"""Per-customer caps (docs/spec.md §2, SetSkuPolicy's max_units_per_customer) against the
real allocation process: a customer's open units of a SKU (reserved + backordered, across
its orders) never exceed the cap; a line that would break it, or one without customer_id on
a capped SKU, is refused with FAILED_PRECONDITION naming the cap and the customer's units,
and nothing of it is written. Stock arrives as inventory events through RabbitMQ."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.e2e.conftest import System
from tests.e2e.test_allocation_rpcs import line, rpc_error, stocked, summary
from tests.e2e.test_bad_input import field_violations
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import Vhost, unique

S = alloc_events.LineStatus


@pytest.fixture(scope="module")
async def feed(system: System, vhost: Vhost) -> AsyncIterator[InventoryFeed]:
    opened = await InventoryFeed(vhost.url).open()
    yield opened
    await opened.close()


def request(
    order: str, line_id: str, sku: str, quantity: int, customer: str
) -> alloc.AllocateRequest:
    return alloc.AllocateRequest(
        order_id=order, line_id=line_id, sku=sku, quantity=quantity, customer_id=customer
    )


async def cap(stub: AllocationServiceStub, sku: str, units: int) -> alloc.SkuSummary:
    reply = await stub.SetSkuPolicy(
        alloc.SetSkuPolicyRequest(sku=sku, max_units_per_customer=units)
    )
    return reply.summary


async def refused(stub: AllocationServiceStub, req: alloc.AllocateRequest) -> str:
    """Allocate is refused with FAILED_PRECONDITION and writes nothing; its message."""
    before = await summary(stub, req.sku)
    error = await rpc_error(stub.Allocate(req))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    status = rpc_status.from_call(error)
    assert status is not None
    violations = []
    for packed in status.details:
        if packed.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure()
            packed.Unpack(failure)
            violations.extend(failure.violations)
    assert [(v.type, v.subject) for v in violations] == [
        ("CUSTOMER_CAP_EXCEEDED", f"sku/{req.sku}")
    ]
    missing = await rpc_error(line(stub, req.order_id, req.line_id))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    after = await summary(stub, req.sku)
    assert (after.backordered_units, after.reserved_units, after.waiting_lines) == (
        before.backordered_units,
        before.reserved_units,
        before.waiting_lines,
    )
    return error.details() or ""


async def test_a_customer_is_held_to_the_cap_across_orders(
    allocation: AllocationServiceStub,
) -> None:
    sku, first, second = unique("CAP"), unique("o"), unique("o")
    assert (await cap(allocation, sku, 5)).policy.max_units_per_customer == 5
    await allocation.Allocate(request(first, "1", sku, 3, "alice"))
    await allocation.Allocate(request(second, "1", sku, 2, "alice"))  # exactly the cap
    message = await refused(allocation, request(second, "2", sku, 1, "alice"))
    assert "max_units_per_customer of 5" in message
    assert "holds 5 open units" in message and "alice" in message

    # Other customers have their own room.
    bob = await allocation.Allocate(request(first, "2", sku, 5, "bob"))
    assert bob.line.status == S.LINE_STATUS_BACKORDERED
    assert "holds 5" in await refused(allocation, request(first, "3", sku, 4, "bob"))
    ok = await allocation.Allocate(request(first, "3", sku, 4, "carol"))
    assert ok.line.backordered_quantity == 4


async def test_a_line_without_a_customer_is_refused_on_a_capped_sku(
    allocation: AllocationServiceStub,
) -> None:
    sku, order = unique("CAP"), unique("o")
    await cap(allocation, sku, 10)
    message = await refused(allocation, request(order, "1", sku, 1, ""))
    assert "customer_id" in message and "10" in message
    # An uncapped SKU takes lines without a customer as before.
    other = unique("CAP")
    await allocation.Allocate(request(order, "2", other, 1, ""))


async def test_reserved_and_backordered_units_both_count(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("CAP"), unique("o")
    await cap(allocation, sku, 6)
    await stocked(allocation, feed, sku, 3, reserved=0)
    # Refused with free units at hand (the path where the fill would run): none taken.
    assert "holds 0 open units" in await refused(allocation, request(order, "0", sku, 7, "dan"))
    assert (await summary(allocation, sku)).free_units == 3
    # Free units: the full path (the fill runs) places and reserves it.
    reserved = await allocation.Allocate(request(order, "1", sku, 3, "dan"))
    assert reserved.line.status == S.LINE_STATUS_RESERVED
    waiting = await allocation.Allocate(request(order, "2", sku, 2, "dan"))
    assert waiting.line.backordered_quantity == 2
    assert "holds 5 open units" in await refused(allocation, request(order, "3", sku, 2, "dan"))
    await allocation.Allocate(request(order, "3", sku, 1, "dan"))
    assert "holds 6 open units" in await refused(allocation, request(order, "4", sku, 1, "dan"))


async def test_cancelled_and_fulfilled_units_leave_room(
    allocation: AllocationServiceStub, feed: InventoryFeed
) -> None:
    sku, order = unique("CAP"), unique("o")
    await cap(allocation, sku, 4)
    await allocation.Allocate(request(order, "1", sku, 2, "eve"))
    await allocation.Allocate(request(order, "2", sku, 2, "eve"))
    await refused(allocation, request(order, "3", sku, 1, "eve"))

    await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="2"))
    await allocation.Allocate(request(order, "3", sku, 1, "eve"))  # 2 + 1 of 4
    await stocked(allocation, feed, sku, 3, reserved=3)
    await allocation.FulfillLine(
        alloc.FulfillLineRequest(
            order_id=order, line_id="1", fulfillment_id=unique("f"), quantity=2
        )
    )
    # Open now: line 3's 1 unit; shipped and cancelled units count no more.
    await allocation.Allocate(request(order, "4", sku, 3, "eve"))
    assert "holds 4 open units" in await refused(allocation, request(order, "5", sku, 1, "eve"))


async def test_lowering_the_cap_keeps_lines_and_their_repeats(
    allocation: AllocationServiceStub,
) -> None:
    sku, order = unique("CAP"), unique("o")
    await cap(allocation, sku, 8)
    first = await allocation.Allocate(request(order, "1", sku, 5, "fay"))
    await cap(allocation, sku, 2)
    again = await allocation.Allocate(request(order, "1", sku, 5, "fay"))
    assert again.line == first.line
    kept = await line(allocation, order, "1")
    assert (kept.quantity, kept.backordered_quantity) == (5, 5)
    assert "max_units_per_customer of 2" in await refused(
        allocation, request(order, "2", sku, 1, "fay")
    )
    await allocation.Allocate(request(order, "3", sku, 2, "gus"))

    # 0 lifts the cap; leaving the field unset keeps what is set.
    lifted = await cap(allocation, sku, 0)
    assert lifted.policy.max_units_per_customer == 0
    await allocation.Allocate(request(order, "2", sku, 1, "fay"))
    await allocation.Allocate(request(order, "4", sku, 1, ""))
    await cap(allocation, sku, 3)
    unset = await allocation.SetSkuPolicy(
        alloc.SetSkuPolicyRequest(sku=sku, fill_policy=alloc.FILL_POLICY_SKIP)
    )
    assert unset.summary.policy.max_units_per_customer == 3


async def test_a_negative_cap_is_refused_naming_the_field(
    allocation: AllocationServiceStub,
) -> None:
    sku = unique("CAP")
    await cap(allocation, sku, 3)
    error = await rpc_error(cap(allocation, sku, -1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == ["max_units_per_customer"]
    assert (await summary(allocation, sku)).policy.max_units_per_customer == 3
    fresh = unique("CAP")
    await rpc_error(cap(allocation, fresh, -1))
    missing = await rpc_error(allocation.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=fresh)))
    assert missing.code() == grpc.StatusCode.NOT_FOUND

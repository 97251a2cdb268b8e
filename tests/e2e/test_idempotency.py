"""Repeating a call with the same key: same content changes nothing and answers with the
current state; other content is ALREADY_EXISTS (docs/spec.md §2)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.support.servers import unique


async def test_repeated_receipt_counts_once(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    request = inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=7, note="dock 4")
    replies = await asyncio.gather(*(inventory.ReceiveStock(request) for _ in range(5)))
    assert {r.stock.on_hand for r in replies} == {7}
    assert len({r.movement_id for r in replies}) == 1
    stock = (await inventory.GetStock(inv.GetStockRequest(sku=sku))).stock
    assert stock.on_hand == 7

    changed = inv.ReceiveStockRequest(
        receipt_id=request.receipt_id, sku=sku, quantity=8, note="dock 4"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.ReceiveStock(changed)
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert request.receipt_id in (caught.value.details() or "")
    assert (await inventory.GetStock(inv.GetStockRequest(sku=sku))).stock.on_hand == 7


async def test_repeated_allocate_places_one_line(
    inventory: InventoryServiceStub, allocation: AllocationServiceStub
) -> None:
    sku = unique("SKU")
    request = alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=3)
    replies = await asyncio.gather(*(allocation.Allocate(request) for _ in range(5)))
    assert {r.line.placed_at.ToNanoseconds() for r in replies} == {
        replies[0].line.placed_at.ToNanoseconds()
    }
    assert all(r.line.status == alloc_events.LINE_STATUS_BACKORDERED for r in replies)

    # A second line behind it shows the first was queued once.
    second = await allocation.Allocate(
        alloc.AllocateRequest(order_id=request.order_id, line_id="2", sku=sku, quantity=1)
    )
    assert second.line.queue_position == 2

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await allocation.Allocate(
            alloc.AllocateRequest(order_id=request.order_id, line_id="1", sku=sku, quantity=4)
        )
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_allocate_reserves_at_once_when_free_units_exist(
    inventory: InventoryServiceStub, allocation: AllocationServiceStub
) -> None:
    sku = unique("SKU")
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=5)
    )
    order = unique("o")

    async def placed() -> alloc.AllocateResponse:
        # The receipt reaches the allocation service through RabbitMQ; wait for its units.
        for _ in range(200):
            reply = await allocation.Allocate(
                alloc.AllocateRequest(order_id=order, line_id="probe", sku=sku, quantity=1)
            )
            if reply.line.reserved_quantity == 1:
                return reply
            await asyncio.sleep(0.05)
        raise TimeoutError("receipt never became free units")

    first = await placed()
    assert first.outcome in (
        alloc.ALLOCATION_OUTCOME_RESERVED,
        alloc.ALLOCATION_OUTCOME_BACKORDERED,  # a repeat of the probe answers current state
    )
    big = await allocation.Allocate(
        alloc.AllocateRequest(
            order_id=order, line_id="big", sku=sku, quantity=6, allow_partial=True
        )
    )
    # 4 units left: the partial line takes them and waits for 2 more.
    assert big.outcome == alloc.ALLOCATION_OUTCOME_PARTIALLY_RESERVED
    assert (big.line.reserved_quantity, big.line.backordered_quantity) == (4, 2)
    assert big.line.status == alloc_events.LINE_STATUS_PARTIALLY_RESERVED
    assert big.line.queue_position == 1

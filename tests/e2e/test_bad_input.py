"""Bad input gets the right status with the field named, nothing is written, and the
server keeps serving (docs/spec.md §3)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.e2e.conftest import System, rows_mentioning
from tests.support.servers import unique


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None, "INVALID_ARGUMENT should carry google.rpc.BadRequest details"
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            continue  # AIP-193: every error also carries ErrorInfo (tests/e2e/test_error_details)
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        fields += [v.field for v in bad.field_violations]
    assert fields, "INVALID_ARGUMENT should carry google.rpc.BadRequest details"
    return fields


def good_allocate(**changes: object) -> alloc.AllocateRequest:
    request = alloc.AllocateRequest(
        order_id=unique("o"), line_id="1", sku=unique("SKU"), quantity=1, priority=3
    )
    for key, value in changes.items():
        setattr(request, key, value)
    return request


BAD_ALLOCATE = [
    ("sku", {"sku": ""}),
    ("sku", {"sku": "has space"}),
    ("sku", {"sku": "X" * 65}),
    ("sku", {"sku": "ünïcode"}),
    ("quantity", {"quantity": 0}),
    ("quantity", {"quantity": -5}),
    ("quantity", {"quantity": 1_000_000_001}),
    ("order_id", {"order_id": ""}),
    ("order_id", {"order_id": "o" * 129}),
    ("line_id", {"line_id": ""}),
    ("line_id", {"line_id": "bad\x00id"}),
    ("priority", {"priority": 10}),
    ("priority", {"priority": -1}),
    ("customer_id", {"customer_id": "c" * 200}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_ALLOCATE)
async def test_allocate_rejects_bad_input_and_writes_nothing(
    system: System, allocation: AllocationServiceStub, field: str, changes: dict[str, object]
) -> None:
    request = good_allocate(**changes)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await allocation.Allocate(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")
    assert field_violations(caught.value) == [field]
    # Nothing about the line, its order or its SKU was written anywhere, whichever field
    # was bad (each request has a unique order and SKU, so one of them is always unique).
    assert await rows_mentioning(system.allocation_db, request.order_id, request.sku) == {}
    # The server keeps serving.
    ok = await allocation.Allocate(good_allocate())
    assert ok.line.quantity == 1


BAD_RECEIVE = [
    ("receipt_id", {"receipt_id": ""}),
    ("receipt_id", {"receipt_id": "r" * 129}),
    ("sku", {"sku": ""}),
    ("sku", {"sku": "a/b"}),
    ("quantity", {"quantity": 0}),
    ("quantity", {"quantity": 2_000_000_000}),
    ("inbound_id", {"inbound_id": "i" * 129}),
    ("note", {"note": "n" * 501}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_RECEIVE)
async def test_receive_rejects_bad_input_and_writes_nothing(
    system: System, inventory: InventoryServiceStub, field: str, changes: dict[str, object]
) -> None:
    sku = unique("SKU")
    request = inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=5)
    for key, value in changes.items():
        setattr(request, key, value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await inventory.ReceiveStock(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == [field]
    assert await rows_mentioning(system.inventory_db, request.receipt_id, request.sku) == {}


async def test_get_stock_of_unknown_and_malformed_sku(inventory: InventoryServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await inventory.GetStock(inv.GetStockRequest(sku=unique("NEVER")))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert "unknown" in (unknown.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await inventory.GetStock(inv.GetStockRequest(sku=""))
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(malformed.value) == ["sku"]


async def test_get_line_unknown_and_missing_ids(allocation: AllocationServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await allocation.GetLine(alloc.GetLineRequest(order_id=unique("o"), line_id="1"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await allocation.GetLine(alloc.GetLineRequest(order_id="", line_id="1"))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(missing.value) == ["order_id"]

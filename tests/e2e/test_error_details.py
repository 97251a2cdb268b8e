"""Error details on the wire (AIP-193, README "Using it"): `google.rpc.ErrorInfo` (reason,
domain) on every error, `BadRequest` naming the field (the element, for repeated fields) on
INVALID_ARGUMENT, `ResourceInfo` on NOT_FOUND and `PreconditionFailure` on
FAILED_PRECONDITION, decoded from the trailing metadata as a client would."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import events_pb2
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from backorder.operations.v1 import dead_letters_pb2 as dl
from backorder.operations.v1.dead_letters_pb2_grpc import DeadLetterServiceStub
from tests.e2e.conftest import System
from tests.support.servers import unique

KINDS: list[type[Message]] = [
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.ResourceInfo,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.RetryInfo,
]


def refused(call: Any, request: Message) -> tuple[grpc.StatusCode, dict[str, Any]]:
    """Calls; the code and the details by type name (every one decoded, none unknown)."""
    with pytest.raises(grpc.RpcError) as error:
        result = call(request, timeout=30)
        for _ in result if hasattr(result, "__iter__") else ():
            pass
    status = rpc_status.from_call(error.value)
    assert status is not None, f"no details: {error.value}"
    found: dict[str, Any] = {}
    for packed in status.details:
        kind = next(k for k in KINDS if packed.Is(k.DESCRIPTOR))
        message = kind()
        packed.Unpack(message)
        found[kind.DESCRIPTOR.name] = message
    info = found["ErrorInfo"]
    assert info.domain == "backorder" and info.reason, info
    return error.value.code(), found


@pytest.fixture(scope="module")
def channels(system: System) -> Any:
    with (
        grpc.insecure_channel(system.inventory.grpc_addr) as inventory,
        grpc.insecure_channel(system.allocation.grpc_addr) as allocation,
    ):
        yield inventory, allocation


def test_invalid_argument_names_the_field_in_bad_request(channels: Any) -> None:
    stub = AllocationServiceStub(channels[1])
    code, found = refused(stub.Allocate, alloc.AllocateRequest(line_id="1", sku="S", quantity=1))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(found) == {"ErrorInfo", "BadRequest"}
    assert found["ErrorInfo"].reason == "INVALID_FIELD"
    assert found["ErrorInfo"].metadata["field"] == "order_id"
    assert [v.field for v in found["BadRequest"].field_violations] == ["order_id"]


def test_an_element_of_a_repeated_field_is_named_by_its_index(channels: Any) -> None:
    inventory = InventoryServiceStub(channels[0])
    code, found = refused(
        inventory.WatchStock, inv.WatchStockRequest(skus=["SKU-1", "SKU-2", "not a sku"])
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in found["BadRequest"].field_violations] == ["skus[2]"]
    dead_letters = DeadLetterServiceStub(channels[1])
    code, found = refused(
        dead_letters.ReplayDeadLetters, dl.ReplayDeadLettersRequest(message_ids=["m-1", ""])
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in found["BadRequest"].field_violations] == ["message_ids[1]"]


def test_not_found_says_which_resource(channels: Any) -> None:
    stub = AllocationServiceStub(channels[1])
    order_id = unique("o")
    code, found = refused(stub.GetLine, alloc.GetLineRequest(order_id=order_id, line_id="7"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert set(found) == {"ErrorInfo", "ResourceInfo"}
    assert found["ErrorInfo"].reason == "RESOURCE_NOT_FOUND"
    resource = found["ResourceInfo"]
    assert (resource.resource_type, resource.resource_name) == ("line", f"{order_id}/7")


def test_failed_precondition_has_a_precondition_failure(channels: Any) -> None:
    stub = InventoryServiceStub(channels[0])
    sku = unique("SKU")
    stub.ReceiveStock(inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=1))
    code, found = refused(
        stub.AdjustStock,
        inv.AdjustStockRequest(
            adjustment_id=unique("a"),
            sku=sku,
            delta=-5,
            reason=events_pb2.ADJUSTMENT_REASON_DAMAGED,
        ),
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert set(found) == {"ErrorInfo", "PreconditionFailure"}
    [violation] = found["PreconditionFailure"].violations
    assert violation.subject == f"sku/{sku}"
    assert violation.type == found["ErrorInfo"].reason == "STATE_FORBIDS"
    assert "below zero" in violation.description


def test_already_exists_and_malformed_bodies_carry_error_info(channels: Any) -> None:
    stub = AllocationServiceStub(channels[1])
    first = alloc.AllocateRequest(
        order_id=unique("o"), line_id="1", sku=unique("SKU"), quantity=1, priority=1
    )
    stub.Allocate(first, timeout=30)
    again = alloc.AllocateRequest()
    again.CopyFrom(first)
    again.quantity = 2
    code, found = refused(stub.Allocate, again)
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert found["ErrorInfo"].reason == "KEY_REUSED"

    raw = channels[1].unary_unary("/backorder.allocation.v1.AllocationService/Allocate")
    code, found = refused(raw, b"\x0a\x05ab")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert found["ErrorInfo"].reason == "MALFORMED_REQUEST"

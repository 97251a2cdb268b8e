"""Every InventoryService RPC on a real inventory process: the happy path, an idempotent
repeat, the same key with other content (ALREADY_EXISTS), and bad input (field named,
nothing written)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from backorder.inventory.v1 import events_pb2 as ev
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.e2e.test_bad_input import field_violations
from tests.support.servers import unique

CYCLE_COUNT = ev.ADJUSTMENT_REASON_CYCLE_COUNT


def at(year: int, month: int = 1, day: int = 1) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime(year, month, day, tzinfo=UTC))
    return stamp


async def stock_of(inventory: InventoryServiceStub, sku: str) -> inv.Stock:
    return (await inventory.GetStock(inv.GetStockRequest(sku=sku))).stock


async def ledger(inventory: InventoryServiceStub, sku: str) -> list[inv.Movement]:
    reply = await inventory.ListMovements(inv.ListMovementsRequest(sku=sku, page_size=1000))
    return list(reply.movements)


async def expect_error(call: object, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    return caught.value


# --- AdjustStock -------------------------------------------------------------------------


async def test_adjust_stock_happy_repeat_conflict(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=10)
    )
    request = inv.AdjustStockRequest(
        adjustment_id=unique("a"),
        sku=sku,
        delta=-3,
        reason=ev.ADJUSTMENT_REASON_DAMAGED,
        note="forklift",
    )
    first = await inventory.AdjustStock(request)
    assert first.stock.on_hand == 7
    repeats = await asyncio.gather(*(inventory.AdjustStock(request) for _ in range(3)))
    assert {r.movement_id for r in repeats} == {first.movement_id}
    assert {r.stock.on_hand for r in repeats} == {7}

    changed = inv.AdjustStockRequest()
    changed.CopyFrom(request)
    changed.delta = -4
    error = await expect_error(inventory.AdjustStock(changed), grpc.StatusCode.ALREADY_EXISTS)
    assert request.adjustment_id in (error.details() or "")

    movements = await ledger(inventory, sku)
    assert [(m.kind, m.quantity, m.reason, m.note) for m in movements] == [
        (inv.MOVEMENT_KIND_ADJUSTMENT, -3, ev.ADJUSTMENT_REASON_DAMAGED, "forklift"),
        (inv.MOVEMENT_KIND_RECEIPT, 10, ev.ADJUSTMENT_REASON_UNSPECIFIED, ""),
    ]
    found = await inventory.AdjustStock(
        inv.AdjustStockRequest(
            adjustment_id=unique("a"), sku=sku, delta=5, reason=ev.ADJUSTMENT_REASON_FOUND
        )
    )
    assert found.stock.on_hand == 12


async def test_adjust_below_zero_is_failed_precondition(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=2)
    )
    error = await expect_error(
        inventory.AdjustStock(
            inv.AdjustStockRequest(adjustment_id=unique("a"), sku=sku, delta=-3, reason=CYCLE_COUNT)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "2 on hand" in (error.details() or "")
    assert (await stock_of(inventory, sku)).on_hand == 2
    assert len(await ledger(inventory, sku)) == 1


BAD_ADJUST = [
    ("adjustment_id", {"adjustment_id": ""}),
    ("adjustment_id", {"adjustment_id": "a" * 129}),
    ("sku", {"sku": ""}),
    ("sku", {"sku": "no spaces"}),
    ("delta", {"delta": 0}),
    ("delta", {"delta": -1_000_000_001}),
    ("delta", {"delta": 1_000_000_001}),
    ("reason", {"reason": ev.ADJUSTMENT_REASON_UNSPECIFIED}),
    ("reason", {"reason": 42}),
    ("note", {"note": "n" * 501}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_ADJUST)
async def test_adjust_rejects_bad_input_and_writes_nothing(
    inventory: InventoryServiceStub, field: str, changes: dict[str, object]
) -> None:
    sku = unique("SKU")
    request = inv.AdjustStockRequest(
        adjustment_id=unique("a"), sku=sku, delta=4, reason=CYCLE_COUNT
    )
    for key, value in changes.items():
        setattr(request, key, value)
    error = await expect_error(inventory.AdjustStock(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(error) == [field]
    await expect_error(inventory.GetStock(inv.GetStockRequest(sku=sku)), grpc.StatusCode.NOT_FOUND)


# --- inbound -----------------------------------------------------------------------------


async def test_inbound_expect_update_receive_cancel(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    inbound_id = unique("po")
    request = inv.ExpectInboundRequest(
        inbound_id=inbound_id, sku=sku, quantity=20, expected_at=at(2031, 3, 1)
    )
    created = await inventory.ExpectInbound(request)
    assert (created.inbound.open_quantity, created.inbound.version) == (20, 1)
    assert (created.stock.on_hand, created.stock.inbound_quantity) == (0, 20)
    repeat = await inventory.ExpectInbound(request)
    assert repeat.inbound == created.inbound

    # Create-or-update: the same id with a new quantity and date updates it.
    updated = await inventory.ExpectInbound(
        inv.ExpectInboundRequest(
            inbound_id=inbound_id, sku=sku, quantity=15, expected_at=at(2031, 4, 1)
        )
    )
    assert (updated.inbound.quantity, updated.inbound.version) == (15, 2)
    assert updated.inbound.expected_at == at(2031, 4, 1)
    assert updated.stock.inbound_quantity == 15
    # Its SKU cannot change.
    await expect_error(
        inventory.ExpectInbound(
            inv.ExpectInboundRequest(
                inbound_id=inbound_id, sku=unique("SKU"), quantity=15, expected_at=at(2031)
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )

    receipt = await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=6, inbound_id=inbound_id)
    )
    assert (receipt.inbound.received_quantity, receipt.inbound.open_quantity) == (6, 9)
    assert (receipt.stock.on_hand, receipt.stock.inbound_quantity) == (6, 9)

    cancel = inv.CancelInboundRequest(inbound_id=inbound_id)
    cancelled = await inventory.CancelInbound(cancel)
    assert cancelled.inbound.cancelled and cancelled.inbound.open_quantity == 0
    assert cancelled.stock.inbound_quantity == 0
    again = await inventory.CancelInbound(cancel)
    assert again.inbound == cancelled.inbound
    await expect_error(
        inventory.ExpectInbound(
            inv.ExpectInboundRequest(
                inbound_id=inbound_id, sku=sku, quantity=5, expected_at=at(2032)
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await expect_error(
        inventory.CancelInbound(inv.CancelInboundRequest(inbound_id=unique("nope"))),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_receipt_against_unknown_or_foreign_inbound_writes_nothing(
    inventory: InventoryServiceStub,
) -> None:
    sku = unique("SKU")
    await expect_error(
        inventory.ReceiveStock(
            inv.ReceiveStockRequest(
                receipt_id=unique("r"), sku=sku, quantity=1, inbound_id=unique("po")
            )
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    other = unique("po")
    await inventory.ExpectInbound(
        inv.ExpectInboundRequest(
            inbound_id=other, sku=unique("SKU"), quantity=3, expected_at=at(2031)
        )
    )
    await expect_error(
        inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=1, inbound_id=other)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await expect_error(inventory.GetStock(inv.GetStockRequest(sku=sku)), grpc.StatusCode.NOT_FOUND)


BAD_EXPECT = [
    ("inbound_id", {"inbound_id": ""}),
    ("inbound_id", {"inbound_id": "p" * 129}),
    ("sku", {"sku": "a b"}),
    ("quantity", {"quantity": 0}),
    ("quantity", {"quantity": 1_000_000_001}),
    ("expected_at", {"expected_at": None}),
    ("expected_at", {"expected_at": Timestamp(seconds=300_000_000_000)}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_EXPECT)
async def test_expect_inbound_rejects_bad_input_and_writes_nothing(
    inventory: InventoryServiceStub, field: str, changes: dict[str, object]
) -> None:
    sku = unique("SKU")
    request = inv.ExpectInboundRequest(
        inbound_id=unique("po"), sku=sku, quantity=3, expected_at=at(2031)
    )
    for key, value in changes.items():
        if value is None:
            request.ClearField(key)
        elif isinstance(value, Timestamp):
            getattr(request, key).CopyFrom(value)
        else:
            setattr(request, key, value)
    error = await expect_error(inventory.ExpectInbound(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(error) == [field]
    await expect_error(inventory.GetStock(inv.GetStockRequest(sku=sku)), grpc.StatusCode.NOT_FOUND)


async def test_cancel_inbound_bad_input(inventory: InventoryServiceStub) -> None:
    error = await expect_error(
        inventory.CancelInbound(inv.CancelInboundRequest(inbound_id="")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert field_violations(error) == ["inbound_id"]


async def test_list_inbound_pages_by_expected_at(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    ids = []
    for month in (5, 2, 9, 1, 7):
        inbound_id = f"{sku}-{month}"
        ids.append((month, inbound_id))
        await inventory.ExpectInbound(
            inv.ExpectInboundRequest(
                inbound_id=inbound_id, sku=sku, quantity=month, expected_at=at(2031, month)
            )
        )
    await inventory.CancelInbound(inv.CancelInboundRequest(inbound_id=f"{sku}-9"))
    seen: list[str] = []
    token = ""
    while True:
        page = await inventory.ListInbound(
            inv.ListInboundRequest(sku=sku, page_size=2, page_token=token)
        )
        assert len(page.inbound) <= 2
        seen += [i.inbound_id for i in page.inbound]
        token = page.next_page_token
        if not token:
            break
    assert seen == [inbound_id for _, inbound_id in sorted(ids)]
    open_only = await inventory.ListInbound(inv.ListInboundRequest(sku=sku, open_only=True))
    assert f"{sku}-9" not in [i.inbound_id for i in open_only.inbound]
    assert len(open_only.inbound) == 4


# --- lists and page tokens ---------------------------------------------------------------


async def test_list_movements_newest_first_across_pages(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    for n in range(1, 8):
        await inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=f"{sku}-{n}", sku=sku, quantity=n)
        )
    quantities: list[int] = []
    token = ""
    pages = 0
    while True:
        page = await inventory.ListMovements(
            inv.ListMovementsRequest(sku=sku, page_size=3, page_token=token)
        )
        pages += 1
        quantities += [m.quantity for m in page.movements]
        assert all(m.sku == sku for m in page.movements)
        token = page.next_page_token
        if not token:
            break
    assert quantities == [7, 6, 5, 4, 3, 2, 1]
    assert pages == 3
    # The ledger's last on_hand_after is the stock's on hand.
    assert (await ledger(inventory, sku))[0].on_hand_after == (
        await stock_of(inventory, sku)
    ).on_hand


async def test_list_stock_by_prefix_in_pages(inventory: InventoryServiceStub) -> None:
    prefix = unique("PFX")
    skus = [f"{prefix}-{n:02d}" for n in range(5)]
    for n, sku in enumerate(skus):
        await inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=n + 1)
        )
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=unique("OTHER"), quantity=1)
    )
    seen: list[tuple[str, int]] = []
    token = ""
    while True:
        page = await inventory.ListStock(
            inv.ListStockRequest(sku_prefix=prefix, page_size=2, page_token=token)
        )
        seen += [(s.sku, s.on_hand) for s in page.stocks]
        token = page.next_page_token
        if not token:
            break
    assert seen == [(sku, n + 1) for n, sku in enumerate(skus)]


async def test_page_tokens_are_checked(inventory: InventoryServiceStub) -> None:
    sku = unique("SKU")
    for n in range(3):
        await inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=1 + n)
        )
    page = await inventory.ListMovements(inv.ListMovementsRequest(sku=sku, page_size=1))
    assert page.next_page_token
    calls = [
        inventory.ListMovements(inv.ListMovementsRequest(sku=sku, page_token="garbage!")),
        inventory.ListMovements(inv.ListMovementsRequest(sku=sku, page_token="e30")),
        # A token of one query does not continue another.
        inventory.ListMovements(inv.ListMovementsRequest(sku="", page_token=page.next_page_token)),
        inventory.ListStock(inv.ListStockRequest(page_token=page.next_page_token)),
        inventory.ListInbound(inv.ListInboundRequest(page_token=page.next_page_token)),
    ]
    for call in calls:
        error = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert field_violations(error) == ["page_token"]
    for call, field in [
        (inventory.ListMovements(inv.ListMovementsRequest(page_size=-1)), "page_size"),
        (inventory.ListStock(inv.ListStockRequest(sku_prefix="bad prefix")), "sku_prefix"),
        (inventory.ListInbound(inv.ListInboundRequest(sku="bad/sku")), "sku"),
        (inventory.ListMovements(inv.ListMovementsRequest(sku="x" * 65)), "sku"),
    ]:
        error = await expect_error(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert field_violations(error) == [field]

"""Stock in several locations on a real inventory process (docs/spec.md §8): locations
(PutLocation, ListLocations, location.updated), stock per location, location_id on writes,
filters and events, TransferStock at once and in transit, and line.fulfilled issuing from
its location. Refused calls name the field and write nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import grpc
import pytest
from google.protobuf.message import Message

from backorder.inventory.v1 import events_pb2 as ev
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common.amqp import INVENTORY_EXCHANGE
from tests.e2e.conftest import System, rows_mentioning
from tests.e2e.test_bad_input import field_violations
from tests.e2e.test_inventory_api import at, expect_error, ledger, stock_of
from tests.e2e.test_inventory_issue import Broker, broker, fulfilled, settled
from tests.support.servers import Vhost, unique

__all__ = ["broker"]  # the fixture, shared with test_inventory_issue

EVENT_TYPES: dict[str, type[Message]] = {
    "stock.received": ev.StockReceived,
    "stock.adjusted": ev.StockAdjusted,
    "stock.issued": ev.StockIssued,
    "stock.transferred": ev.StockTransferred,
    "inbound.updated": ev.InboundUpdated,
    "location.updated": ev.LocationUpdated,
}


class InventoryTap:
    """Every event of inventory.events, decoded, as a subscribing service receives them."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self._queue = queue
        self.seen: list[tuple[str, Message]] = []

    async def wait_for(
        self, predicate: object, count: int, timeout: float = 20
    ) -> list[tuple[str, Message]]:
        """The events matching `predicate(routing_key, event)` once `count` arrived."""
        assert callable(predicate)
        async with asyncio.timeout(timeout):
            while len(found := [e for e in self.seen if predicate(*e)]) < count:
                message = await self._queue.get(fail=False, timeout=5)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                key = message.routing_key or ""
                self.seen.append((key, EVENT_TYPES[key].FromString(message.body)))
        return found


@pytest.fixture(scope="module")
async def tap(system: System, vhost: Vhost) -> AsyncIterator[InventoryTap]:
    connection = await aio_pika.connect_robust(vhost.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            INVENTORY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(unique("inv-tap"), exclusive=True)
        await queue.bind(exchange, "#")
        yield InventoryTap(queue)


async def new_location(inventory: InventoryServiceStub, **fields: object) -> str:
    location_id = unique("LOC")
    await inventory.PutLocation(inv.PutLocationRequest(location_id=location_id, **fields))  # type: ignore[arg-type]
    return location_id


async def receive(
    inventory: InventoryServiceStub, sku: str, quantity: int, location_id: str = ""
) -> inv.ReceiveStockResponse:
    return await inventory.ReceiveStock(
        inv.ReceiveStockRequest(
            receipt_id=unique("r"), sku=sku, quantity=quantity, location_id=location_id
        )
    )


def per_location(stock: inv.Stock) -> dict[str, tuple[int, int, int]]:
    return {
        e.location_id: (e.on_hand, e.inbound_quantity, e.in_transit_quantity)
        for e in stock.locations
    }


# --- locations ---------------------------------------------------------------------------


async def test_put_location_upserts_with_version_and_publishes_location_updated(
    inventory: InventoryServiceStub, tap: InventoryTap
) -> None:
    location_id = unique("LOC")
    created = (
        await inventory.PutLocation(inv.PutLocationRequest(location_id=location_id, fill_rank=5))
    ).location
    assert (created.name, created.fill_rank, created.active, created.version) == (
        location_id,
        5,
        True,
        1,
    )
    # A repeat of the same values changes nothing, not even the version.
    again = (
        await inventory.PutLocation(inv.PutLocationRequest(location_id=location_id, fill_rank=5))
    ).location
    assert again.version == 1
    # Unset fields keep their values.
    changed = (
        await inventory.PutLocation(
            inv.PutLocationRequest(location_id=location_id, name="North", active=False)
        )
    ).location
    assert (changed.name, changed.fill_rank, changed.active, changed.version) == (
        "North",
        5,
        False,
        2,
    )
    updates = await tap.wait_for(
        lambda key, e: key == "location.updated" and e.location_id == location_id, 2
    )
    assert [(e.version, e.active, e.fill_rank, e.name) for _, e in updates] == [
        (1, True, 5, location_id),
        (2, False, 5, "North"),
    ]


async def test_default_exists_and_cannot_be_deactivated(
    inventory: InventoryServiceStub, system: System
) -> None:
    error = await expect_error(
        inventory.PutLocation(inv.PutLocationRequest(location_id="default", active=False)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert field_violations(error) == ["active"]
    listed = await inventory.ListLocations(inv.ListLocationsRequest(page_size=1000))
    default = [x for x in listed.locations if x.location_id == "default"]
    assert len(default) == 1 and default[0].active


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"location_id": ""}, "location_id"),
        ({"location_id": "has space"}, "location_id"),
        ({"location_id": "ok", "fill_rank": 1_000_001}, "fill_rank"),
        ({"location_id": "ok", "name": "x" * 201}, "name"),
    ],
)
async def test_put_location_bad_input_names_the_field(
    inventory: InventoryServiceStub, system: System, fields: dict[str, object], field: str
) -> None:
    request = inv.PutLocationRequest(**fields)  # type: ignore[arg-type]
    if request.location_id == "ok":
        request.location_id = unique("LOC")
    error = await expect_error(inventory.PutLocation(request), grpc.StatusCode.INVALID_ARGUMENT)
    assert field_violations(error) == [field]
    if request.location_id:
        assert await rows_mentioning(system.inventory_db, request.location_id) == {}


async def test_list_locations_pages_by_fill_rank_then_id(inventory: InventoryServiceStub) -> None:
    mine = [await new_location(inventory, fill_rank=rank) for rank in (900_000, 899_999, 900_000)]
    seen: list[inv.Location] = []
    token = ""
    while True:
        page = await inventory.ListLocations(
            inv.ListLocationsRequest(page_size=2, page_token=token)
        )
        assert len(page.locations) <= 2
        seen += page.locations
        token = page.next_page_token
        if not token:
            break
    keys = [(x.fill_rank, x.location_id) for x in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    ours = [x.location_id for x in seen if x.location_id in mine]
    assert ours == [mine[1], *sorted([mine[0], mine[2]])]
    error = await expect_error(
        inventory.ListLocations(inv.ListLocationsRequest(page_token=token + "x.y")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert field_violations(error) == ["page_token"]


# --- stock per location ------------------------------------------------------------------


async def test_receipts_and_adjustments_per_location_with_totals_and_events(
    inventory: InventoryServiceStub, tap: InventoryTap
) -> None:
    sku = unique("SKU")
    north = await new_location(inventory, fill_rank=1)
    await receive(inventory, sku, 5)
    received = await receive(inventory, sku, 7, north)
    assert (received.stock.on_hand, per_location(received.stock)) == (
        12,
        {"default": (5, 0, 0), north: (7, 0, 0)},
    )
    adjusted = await inventory.AdjustStock(
        inv.AdjustStockRequest(
            adjustment_id=unique("a"),
            sku=sku,
            delta=-2,
            reason=ev.ADJUSTMENT_REASON_DAMAGED,
            location_id=north,
        )
    )
    assert per_location(adjusted.stock) == {"default": (5, 0, 0), north: (5, 0, 0)}
    # Below zero is judged at the location, not in total.
    error = await expect_error(
        inventory.AdjustStock(
            inv.AdjustStockRequest(
                adjustment_id=unique("a"),
                sku=sku,
                delta=-6,
                reason=ev.ADJUSTMENT_REASON_DAMAGED,
                location_id=north,
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert north in (error.details() or "")
    stock = await stock_of(inventory, sku)
    assert (stock.on_hand, [e.location_id for e in stock.locations]) == (10, ["default", north])

    movements = await ledger(inventory, sku)
    assert [(m.kind, m.location_id, m.quantity) for m in movements] == [
        (inv.MOVEMENT_KIND_ADJUSTMENT, north, -2),
        (inv.MOVEMENT_KIND_RECEIPT, north, 7),
        (inv.MOVEMENT_KIND_RECEIPT, "default", 5),
    ]
    at_north = await inventory.ListMovements(inv.ListMovementsRequest(sku=sku, location_id=north))
    assert [m.id for m in at_north.movements] == [m.id for m in movements[:2]]

    events = await tap.wait_for(lambda key, e: key.startswith("stock.") and e.sku == sku, 3)
    # Each carries the SKU's stock version: consecutive, the refused adjustment took none.
    assert [
        (key, e.location_id, e.location_on_hand_after, e.on_hand_after, e.stock_version)
        for key, e in events
    ] == [
        ("stock.received", "default", 5, 5, 1),
        ("stock.received", north, 7, 12, 2),
        ("stock.adjusted", north, 5, 10, 3),
    ]


async def test_unknown_or_inactive_location_is_refused_and_writes_nothing(
    inventory: InventoryServiceStub, system: System
) -> None:
    sku = unique("SKU")
    closed = await new_location(inventory, active=False)
    unknown = unique("NOWHERE")
    for location, code in (
        (unknown, grpc.StatusCode.NOT_FOUND),
        (closed, grpc.StatusCode.FAILED_PRECONDITION),
    ):
        receipt_id, inbound_id = unique("r"), unique("in")
        error = await expect_error(
            inventory.ReceiveStock(
                inv.ReceiveStockRequest(
                    receipt_id=receipt_id, sku=sku, quantity=1, location_id=location
                )
            ),
            code,
        )
        assert "location_id" in (error.details() or "") and location in (error.details() or "")
        error = await expect_error(
            inventory.ExpectInbound(
                inv.ExpectInboundRequest(
                    inbound_id=inbound_id,
                    sku=sku,
                    quantity=1,
                    expected_at=at(2030),
                    location_id=location,
                )
            ),
            code,
        )
        assert "location_id" in (error.details() or "")
        assert await rows_mentioning(system.inventory_db, sku, receipt_id, inbound_id) == {}
    error = await expect_error(
        receive(inventory, sku, 1, "bad id"), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert field_violations(error) == ["location_id"]
    # An inactive location can still be counted down (a closing warehouse is emptied).
    await inventory.PutLocation(inv.PutLocationRequest(location_id=closed, active=True))
    await receive(inventory, sku, 3, closed)
    await inventory.PutLocation(inv.PutLocationRequest(location_id=closed, active=False))
    counted = await inventory.AdjustStock(
        inv.AdjustStockRequest(
            adjustment_id=unique("a"),
            sku=sku,
            delta=-3,
            reason=ev.ADJUSTMENT_REASON_CYCLE_COUNT,
            location_id=closed,
        )
    )
    assert per_location(counted.stock)[closed] == (0, 0, 0)


async def test_receipt_against_an_inbound_uses_its_location(
    inventory: InventoryServiceStub,
) -> None:
    sku = unique("SKU")
    east = await new_location(inventory)
    inbound_id = unique("in")
    expected = await inventory.ExpectInbound(
        inv.ExpectInboundRequest(
            inbound_id=inbound_id, sku=sku, quantity=4, expected_at=at(2030), location_id=east
        )
    )
    assert expected.inbound.location_id == east
    assert per_location(expected.stock) == {east: (0, 4, 0)}
    # Its location never changes.
    error = await expect_error(
        inventory.ExpectInbound(
            inv.ExpectInboundRequest(
                inbound_id=inbound_id,
                sku=sku,
                quantity=4,
                expected_at=at(2030),
                location_id="default",
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert east in (error.details() or "")
    error = await expect_error(
        inventory.ReceiveStock(
            inv.ReceiveStockRequest(
                receipt_id=unique("r"),
                sku=sku,
                quantity=1,
                inbound_id=inbound_id,
                location_id="default",
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "location_id" in (error.details() or "")
    received = await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=3, inbound_id=inbound_id)
    )
    assert per_location(received.stock) == {east: (3, 1, 0)}
    listed = await inventory.ListInbound(inv.ListInboundRequest(sku=sku, location_id=east))
    assert [i.inbound_id for i in listed.inbound] == [inbound_id]
    elsewhere = await inventory.ListInbound(inv.ListInboundRequest(sku=sku, location_id="default"))
    assert list(elsewhere.inbound) == []


# --- TransferStock -----------------------------------------------------------------------


async def test_transfer_at_once_moves_units_with_two_movements_and_one_event(
    inventory: InventoryServiceStub, tap: InventoryTap, system: System
) -> None:
    sku = unique("SKU")
    west = await new_location(inventory)
    await receive(inventory, sku, 10)
    request = inv.TransferStockRequest(
        transfer_id=unique("t"),
        sku=sku,
        from_location_id="default",
        to_location_id=west,
        quantity=4,
    )
    first = await inventory.TransferStock(request)
    assert (first.stock.on_hand, per_location(first.stock)) == (
        10,
        {"default": (6, 0, 0), west: (4, 0, 0)},
    )
    assert not first.HasField("inbound")
    repeats = await asyncio.gather(*(inventory.TransferStock(request) for _ in range(3)))
    assert {r.movement_id for r in repeats} == {first.movement_id}
    assert {r.stock.on_hand for r in repeats} == {10}
    other = inv.TransferStockRequest()
    other.CopyFrom(request)
    other.quantity = 5
    await expect_error(inventory.TransferStock(other), grpc.StatusCode.ALREADY_EXISTS)

    movements = await ledger(inventory, sku)
    assert [(m.kind, m.location_id, m.other_location_id, m.quantity) for m in movements[:2]] == [
        (inv.MOVEMENT_KIND_TRANSFER_IN, west, "default", 4),
        (inv.MOVEMENT_KIND_TRANSFER_OUT, "default", west, -4),
    ]
    assert movements[1].id == first.movement_id
    ((_, event),) = await tap.wait_for(
        lambda key, e: key == "stock.transferred" and e.sku == sku, 1
    )
    assert isinstance(event, ev.StockTransferred)
    assert (
        event.transfer_id,
        event.from_location_id,
        event.to_location_id,
        event.location_id,
        event.quantity,
        event.in_transit,
        event.from_on_hand_after,
        event.to_on_hand_after,
        event.stock_version,  # after the receipt (1); the repeats took none
    ) == (request.transfer_id, "default", west, "default", 4, False, 6, 4, 2)


async def test_transfer_refusals_name_the_field_and_write_nothing(
    inventory: InventoryServiceStub, system: System
) -> None:
    sku = unique("SKU")
    west = await new_location(inventory)
    closed = await new_location(inventory, active=False)
    await receive(inventory, sku, 3)

    async def refused(code: grpc.StatusCode, **changes: object) -> str:
        request = inv.TransferStockRequest(
            transfer_id=unique("t"),
            sku=sku,
            from_location_id="default",
            to_location_id=west,
            quantity=1,
        )
        for name, value in changes.items():
            setattr(request, name, value)
        error = await expect_error(inventory.TransferStock(request), code)
        assert await rows_mentioning(system.inventory_db, request.transfer_id) == {}
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return field_violations(error)[0]
        return error.details() or ""

    assert await refused(grpc.StatusCode.INVALID_ARGUMENT, to_location_id="default") == (
        "to_location_id"
    )
    assert await refused(grpc.StatusCode.INVALID_ARGUMENT, quantity=0) == "quantity"
    assert await refused(grpc.StatusCode.INVALID_ARGUMENT, from_location_id="") == (
        "from_location_id"
    )
    assert "from_location_id" in await refused(grpc.StatusCode.FAILED_PRECONDITION, quantity=4)
    assert "from_location_id" in await refused(
        grpc.StatusCode.NOT_FOUND, from_location_id=unique("NOWHERE")
    )
    assert "to_location_id" in await refused(
        grpc.StatusCode.NOT_FOUND, to_location_id=unique("NOWHERE")
    )
    assert "to_location_id" in await refused(
        grpc.StatusCode.FAILED_PRECONDITION, to_location_id=closed
    )
    assert per_location(await stock_of(inventory, sku)) == {"default": (3, 0, 0)}


async def test_transfer_in_transit_is_an_inbound_until_received(
    inventory: InventoryServiceStub, tap: InventoryTap
) -> None:
    sku = unique("SKU")
    south = await new_location(inventory)
    await receive(inventory, sku, 10)
    transfer_id = unique("t")
    sent = await inventory.TransferStock(
        inv.TransferStockRequest(
            transfer_id=transfer_id,
            sku=sku,
            from_location_id="default",
            to_location_id=south,
            quantity=6,
            expected_at=at(2031),
        )
    )
    assert (sent.inbound.inbound_id, sent.inbound.location_id, sent.inbound.from_location_id) == (
        transfer_id,
        south,
        "default",
    )
    assert (sent.stock.on_hand, sent.stock.inbound_quantity, sent.stock.in_transit_quantity) == (
        4,
        6,
        6,
    )
    assert per_location(sent.stock) == {"default": (4, 0, 0), south: (0, 6, 6)}
    kinds = [m.kind for m in await ledger(inventory, sku)]
    assert kinds == [inv.MOVEMENT_KIND_TRANSFER_OUT, inv.MOVEMENT_KIND_RECEIPT]
    events = await tap.wait_for(
        lambda key, e: key in ("stock.transferred", "inbound.updated") and e.sku == sku, 2
    )
    (k1, transferred), (k2, inbound) = events
    assert (k1, k2) == ("stock.transferred", "inbound.updated")
    assert isinstance(transferred, ev.StockTransferred) and isinstance(inbound, ev.InboundUpdated)
    assert (transferred.in_transit, transferred.expected_at, transferred.to_on_hand_after) == (
        True,
        at(2031),
        0,
    )
    assert (inbound.inbound_id, inbound.location_id, inbound.from_location_id) == (
        transfer_id,
        south,
        "default",
    )
    # One key space: the transfer is the inbound of that id.
    await expect_error(
        inventory.ExpectInbound(
            inv.ExpectInboundRequest(
                inbound_id=transfer_id, sku=sku, quantity=6, expected_at=at(2031)
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    await expect_error(
        inventory.CancelInbound(inv.CancelInboundRequest(inbound_id=transfer_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    # No more can arrive than left the source.
    await expect_error(
        inventory.ReceiveStock(
            inv.ReceiveStockRequest(
                receipt_id=unique("r"), sku=sku, quantity=7, inbound_id=transfer_id
            )
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    landed = await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=6, inbound_id=transfer_id)
    )
    assert (
        landed.inbound.open_quantity,
        landed.stock.on_hand,
        landed.stock.in_transit_quantity,
    ) == (
        0,
        10,
        0,
    )
    assert per_location(landed.stock) == {"default": (4, 0, 0), south: (6, 0, 0)}
    ((_, receipt),) = await tap.wait_for(
        lambda key, e: key == "stock.received" and e.sku == sku and e.inbound_id == transfer_id, 1
    )
    assert isinstance(receipt, ev.StockReceived)
    assert (receipt.location_id, receipt.location_on_hand_after) == (south, 6)


async def test_transfer_id_of_an_existing_inbound_is_already_exists(
    inventory: InventoryServiceStub,
) -> None:
    sku = unique("SKU")
    north = await new_location(inventory)
    await receive(inventory, sku, 5)
    inbound_id = unique("in")
    await inventory.ExpectInbound(
        inv.ExpectInboundRequest(inbound_id=inbound_id, sku=sku, quantity=1, expected_at=at(2030))
    )
    await expect_error(
        inventory.TransferStock(
            inv.TransferStockRequest(
                transfer_id=inbound_id,
                sku=sku,
                from_location_id="default",
                to_location_id=north,
                quantity=1,
            )
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert per_location(await stock_of(inventory, sku)) == {"default": (5, 1, 0)}


# --- WatchStock and line.fulfilled ------------------------------------------------------


async def test_watch_stock_filters_by_location_and_carries_it(
    inventory: InventoryServiceStub,
) -> None:
    sku = unique("SKU")
    north = await new_location(inventory)
    await receive(inventory, sku, 2)
    call = inventory.WatchStock(inv.WatchStockRequest(skus=[sku], location_id=north))
    snapshot = await call.read()
    assert isinstance(snapshot, inv.WatchStockResponse)
    assert (snapshot.kind, snapshot.location_id) == (inv.STOCK_CHANGE_KIND_SNAPSHOT, "")
    await receive(inventory, sku, 1)  # at default: not sent
    await receive(inventory, sku, 3, north)
    await inventory.TransferStock(
        inv.TransferStockRequest(
            transfer_id=unique("t"),
            sku=sku,
            from_location_id="default",
            to_location_id=north,
            quantity=3,
        )
    )
    changes = [await asyncio.wait_for(call.read(), 20) for _ in range(2)]
    call.cancel()
    assert [(c.kind, c.location_id, c.stock.on_hand) for c in changes] == [
        (inv.STOCK_CHANGE_KIND_RECEIPT, north, 6),
        (inv.STOCK_CHANGE_KIND_TRANSFER, "default", 6),
    ]
    assert per_location(changes[0].stock) == {north: (3, 0, 0)}
    assert per_location(changes[1].stock) == {"default": (0, 0, 0), north: (6, 0, 0)}


async def test_line_fulfilled_issues_from_its_location(
    inventory: InventoryServiceStub, broker: Broker
) -> None:
    sku = unique("SKU")
    north = await new_location(inventory)
    await receive(inventory, sku, 5)
    await receive(inventory, sku, 5, north)
    there = fulfilled(sku, 3)
    there.location_id = north
    await broker.publish(there)
    before = fulfilled(sku, 1)  # from before locations: no location_id, so `default`
    await broker.publish(before)
    issues = await settled(inventory, sku, inv.MOVEMENT_KIND_ISSUE, 2)
    assert {(m.key, m.location_id, m.quantity) for m in issues} == {
        (there.fulfillment_id, north, -3),
        (before.fulfillment_id, "default", -1),
    }
    assert per_location(await stock_of(inventory, sku)) == {
        "default": (4, 0, 0),
        north: (2, 0, 0),
    }
    published = await broker.issued(sku, 2)
    assert {(e.fulfillment_id, e.location_id) for e in published} == {
        (there.fulfillment_id, north),
        (before.fulfillment_id, "default"),
    }

"""line.fulfilled -> the inventory process issues the units exactly once, however often the
event is delivered; a shortfall is recorded, not dropped. Events are published by the test
to `allocation.events` exactly as the allocation service publishes them (docs/spec.md §4)."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from backorder.allocation.v1.events_pb2 import LineFulfilled
from backorder.inventory.v1 import events_pb2 as ev
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common.amqp import ALLOCATION_EXCHANGE, INVENTORY_EXCHANGE, INVENTORY_INBOX
from tests.e2e.conftest import System
from tests.support.servers import Vhost, unique


class Broker:
    """Publishes to allocation.events and taps stock.issued from inventory.events."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, tap: aio_pika.abc.AbstractQueue):
        self.channel = channel
        self.tap = tap

    async def publish(self, event: LineFulfilled, body: bytes | None = None) -> None:
        exchange = await self.channel.get_exchange(ALLOCATION_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(
                body=event.SerializeToString() if body is None else body,
                content_type="application/x-protobuf",
                type=LineFulfilled.DESCRIPTOR.full_name,
                message_id=event.event_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            "line.fulfilled",
            mandatory=True,
        )

    async def issued(self, sku: str, count: int, timeout: float = 20) -> list[ev.StockIssued]:
        found: list[ev.StockIssued] = []
        async with asyncio.timeout(timeout):
            while len(found) < count:
                message = await self.tap.get(fail=False, timeout=5)
                if message is None:
                    await asyncio.sleep(0.05)
                    continue
                await message.ack()
                event = ev.StockIssued.FromString(message.body)
                if event.sku == sku:
                    found.append(event)
        return found


@pytest.fixture(scope="session")
async def broker(system: System, vhost: Vhost) -> AsyncIterator[Broker]:
    connection = await aio_pika.connect_robust(vhost.url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        inventory_events = await channel.declare_exchange(
            INVENTORY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        tap = await channel.declare_queue(unique("issued-tap"), exclusive=True)
        await tap.bind(inventory_events, "stock.issued")
        yield Broker(channel, tap)


def fulfilled(sku: str, quantity: int) -> LineFulfilled:
    return LineFulfilled(
        event_id=str(uuid.uuid4()),
        sku=sku,
        order_id=unique("o"),
        line_id="1",
        fulfillment_id=unique("f"),
        quantity=quantity,
        fulfilled_quantity=quantity,
    )


async def settled(
    inventory: InventoryServiceStub, sku: str, kind: int, count: int
) -> list[inv.Movement]:
    """The SKU's movements of `kind` once `count` of them are in the ledger."""
    async with asyncio.timeout(20):
        while True:
            reply = await inventory.ListMovements(inv.ListMovementsRequest(sku=sku))
            found = [m for m in reply.movements if m.kind == kind]
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


async def test_fulfillment_delivered_many_times_is_issued_once(
    inventory: InventoryServiceStub, broker: Broker
) -> None:
    sku = unique("SKU")
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=10)
    )
    event = fulfilled(sku, 4)
    for _ in range(5):
        await broker.publish(event)
    # The same fulfillment under another event id (a republish by its producer) changes nothing.
    other = LineFulfilled()
    other.CopyFrom(event)
    other.event_id = str(uuid.uuid4())
    await broker.publish(other)
    # A later fulfillment is a marker: once it is applied, the repeats before it were seen.
    marker = fulfilled(sku, 1)
    await broker.publish(marker)

    issues = await settled(inventory, sku, inv.MOVEMENT_KIND_ISSUE, 2)
    assert [(m.key, m.quantity, m.shortfall) for m in issues] == [
        (marker.fulfillment_id, -1, 0),
        (event.fulfillment_id, -4, 0),
    ]
    assert (issues[1].order_id, issues[1].line_id) == (event.order_id, event.line_id)
    stock = (await inventory.GetStock(inv.GetStockRequest(sku=sku))).stock
    assert stock.on_hand == 5
    published = await broker.issued(sku, 2)
    assert [(e.fulfillment_id, e.quantity, e.on_hand_after) for e in published] == [
        (event.fulfillment_id, 4, 6),
        (marker.fulfillment_id, 1, 5),
    ]


async def test_issue_beyond_on_hand_is_recorded_as_shortfall(
    inventory: InventoryServiceStub, broker: Broker, system: System
) -> None:
    sku = unique("SKU")
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=3)
    )
    event = fulfilled(sku, 5)
    await broker.publish(event)
    [issue] = await settled(inventory, sku, inv.MOVEMENT_KIND_ISSUE, 1)
    assert (issue.quantity, issue.shortfall, issue.on_hand_after) == (-3, 2, 0)
    [published] = await broker.issued(sku, 1)
    assert (published.quantity, published.shortfall, published.on_hand_after) == (3, 2, 0)
    metrics = await asyncio.to_thread(_metrics, system.inventory.metrics_addr)
    assert _sample(metrics, "backorder_stock_shortfall_units_total") >= 2


async def test_unreadable_event_is_dead_lettered_and_consumer_keeps_going(
    inventory: InventoryServiceStub, broker: Broker
) -> None:
    sku = unique("SKU")
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=2)
    )
    poison = fulfilled(sku, 1)
    await broker.publish(poison, body=b"\xff\xfe not protobuf")
    invalid = fulfilled(sku, 1)
    invalid.fulfillment_id = ""
    await broker.publish(invalid)
    good = fulfilled(sku, 2)
    await broker.publish(good)
    [issue] = await settled(inventory, sku, inv.MOVEMENT_KIND_ISSUE, 1)
    assert issue.key == good.fulfillment_id
    dead = await broker.channel.get_queue(INVENTORY_INBOX.dead_letter_queue)
    ids: set[str] = set()
    async with asyncio.timeout(20):
        while not {poison.event_id, invalid.event_id} <= ids:
            message = await dead.get(fail=False, timeout=5)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            ids.add(message.message_id or "")
            await message.ack()


def _metrics(addr: str) -> str:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} not exported")

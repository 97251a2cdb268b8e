"""backorder.client.events.EventSubscriber on the real broker, with the real services
publishing: events decoded by their AMQP type, duplicates dropped on event_id within the
bounded window, a failing handler's message redelivered once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable

import aio_pika
import aio_pika.abc
from google.protobuf.message import Message

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.client import BackorderClient
from backorder.client.events import ALLOCATION_EXCHANGE, EventSubscriber
from backorder.inventory.v1 import events_pb2 as inv_events
from backorder.inventory.v1 import inventory_pb2 as inv
from tests.client.conftest import Secured
from tests.support.servers import unique


class Received:
    """What the handler was given, in order."""

    def __init__(self) -> None:
        self.events: list[Message] = []
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def handler(self, event: Message, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.events.append(event)
        self.messages.append(message)

    def of(self, kind: type[Message], **fields: object) -> list[Message]:
        return [
            e
            for e in self.events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
        ]


async def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def publisher(url: str) -> AsyncIterator[aio_pika.abc.AbstractExchange]:
    """allocation.events, to publish by hand (confirmed, in order on one channel)."""
    async with await aio_pika.connect_robust(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        yield await channel.get_exchange(ALLOCATION_EXCHANGE)


def copy_of(message: aio_pika.abc.AbstractIncomingMessage) -> aio_pika.Message:
    """The message as the service published it: a redelivery, as far as a subscriber can tell."""
    return aio_pika.Message(
        body=message.body,
        content_type=message.content_type,
        type=message.type,
        message_id=message.message_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def test_real_events_arrive_decoded_and_a_duplicate_is_dropped(secured: Secured) -> None:
    received = Received()
    sku, order, receipt = unique("SUB"), unique("order"), unique("rcpt")
    subscriber = EventSubscriber(
        secured.amqp_url,
        unique("shipping"),
        {"allocation.events": ["line.backordered"], "inventory.events": ["stock.received"]},
        received.handler,
    )
    async with subscriber, BackorderClient.from_env(secured.client_env()) as client:
        await client.allocation.Allocate(
            alloc.AllocateRequest(order_id=order, line_id="1", sku=sku, quantity=2)
        )
        await client.inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=receipt, sku=unique("OTHER"), quantity=3)
        )
        await until(
            lambda: bool(
                received.of(alloc_events.LineBackordered, order_id=order)
                and received.of(inv_events.StockReceived, receipt_id=receipt)
            ),
            "both events",
        )
        [backordered] = received.of(alloc_events.LineBackordered, order_id=order)
        assert isinstance(backordered, alloc_events.LineBackordered)
        assert (backordered.sku, backordered.line_id, backordered.quantity) == (sku, "1", 2)
        [stock] = received.of(inv_events.StockReceived, receipt_id=receipt)
        assert isinstance(stock, inv_events.StockReceived) and stock.quantity == 3
        original = received.messages[received.events.index(backordered)]
        assert original.message_id == backordered.event_id

        # The same event once more (at-least-once delivery), then a new one after it.
        async with publisher(secured.amqp_url) as exchange:
            await exchange.publish(copy_of(original), "line.backordered")
        await until(lambda: subscriber.duplicates == 1, "the duplicate to be acknowledged")
        later = unique("order")
        await client.allocation.Allocate(
            alloc.AllocateRequest(order_id=later, line_id="1", sku=sku, quantity=1)
        )
        await until(lambda: bool(received.of(alloc_events.LineBackordered, order_id=later)), "next")
    assert len(received.of(alloc_events.LineBackordered, order_id=order)) == 1
    assert subscriber.handled == len(received.events)


def backordered(event_id: str, order_id: str) -> aio_pika.Message:
    event = alloc_events.LineBackordered(
        event_id=event_id, sku="SKU-HAND", order_id=order_id, line_id="1", quantity=1
    )
    return aio_pika.Message(
        body=event.SerializeToString(),
        content_type="application/x-protobuf",
        type=event.DESCRIPTOR.full_name,
        message_id=event_id,
    )


async def test_dedup_remembers_a_bounded_window_of_event_ids(secured: Secured) -> None:
    received = Received()
    key = unique("hand")  # a routing key no service publishes
    subscriber = EventSubscriber(
        secured.amqp_url,
        unique("bounded"),
        {"allocation.events": [key]},
        received.handler,
        dedup_window=2,
    )
    ids = {name: str(uuid.uuid4()) for name in ("e1", "e2", "e3")}
    async with subscriber, publisher(secured.amqp_url) as exchange:
        for name in ("e1", "e2", "e3", "e3", "e1"):
            await exchange.publish(backordered(ids[name], name), key)
        await until(lambda: subscriber.handled + subscriber.duplicates == 5, "five deliveries")
    # e3 repeated within the window is dropped; e1 came back after two newer ids pushed it
    # out of a window of 2, so it is handled again (the documented bound).
    assert [e.order_id for e in received.of(alloc_events.LineBackordered)] == [
        "e1",
        "e2",
        "e3",
        "e1",
    ]
    assert subscriber.duplicates == 1


async def test_a_failing_handler_gets_the_message_again_then_it_is_rejected(
    secured: Secured,
) -> None:
    key = unique("hand")
    calls: dict[str, int] = {}

    async def flaky(event: Message, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        assert isinstance(event, alloc_events.LineBackordered)
        calls[event.order_id] = calls.get(event.order_id, 0) + 1
        if event.order_id == "broken" or calls[event.order_id] == 1:
            raise RuntimeError("the handler's database is down")

    subscriber = EventSubscriber(
        secured.amqp_url, unique("flaky"), {ALLOCATION_EXCHANGE: [key]}, flaky
    )
    async with subscriber, publisher(secured.amqp_url) as exchange:
        await exchange.publish(backordered(str(uuid.uuid4()), "flaky"), key)
        await exchange.publish(backordered(str(uuid.uuid4()), "broken"), key)
        unknown = aio_pika.Message(b"\x00", type="backorder.nothing.v1.Unknown", message_id="x")
        await exchange.publish(unknown, key)
        await until(lambda: subscriber.handled == 1 and subscriber.rejected == 2, "outcomes")
    assert calls == {"flaky": 2, "broken": 2}

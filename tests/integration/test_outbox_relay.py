"""The outbox relay on the real Postgres and RabbitMQ: rows written in a transaction are
published with confirms, in order, and marked sent only afterwards."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.common.amqp import INVENTORY_EXCHANGE
from services.common.outbox import OutboxRelay, add_events, new_event
from tests.support.servers import Vhost, unique


async def test_relay_publishes_committed_events_in_order(
    inventory_pool: asyncpg.Pool, inventory_db: str, vhost: Vhost
) -> None:
    sku = unique("SKU")
    connection = await aio_pika.connect_robust(vhost.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            INVENTORY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(unique("tap"), exclusive=True)
        await queue.bind(exchange, "stock.#")

        # One committed batch and one rolled back: only the committed one may go out.
        async with inventory_pool.acquire() as conn, conn.transaction():
            await add_events(
                conn,
                [
                    new_event(
                        INVENTORY_EXCHANGE,
                        "stock.received",
                        inventory_events.StockReceived(sku=sku, quantity=n, receipt_id=f"r{n}"),
                    )
                    for n in range(1, 51)
                ],
            )

        class Abort(Exception):
            pass

        try:
            async with inventory_pool.acquire() as conn, conn.transaction():
                await add_events(
                    conn,
                    [
                        new_event(
                            INVENTORY_EXCHANGE,
                            "stock.received",
                            inventory_events.StockReceived(sku=sku, quantity=999),
                        )
                    ],
                )
                raise Abort
        except Abort:
            pass

        relay = OutboxRelay(inventory_db, vhost.url, batch_size=16)
        task = asyncio.create_task(relay.run())
        try:
            received: list[int] = []
            async with asyncio.timeout(20):
                while len(received) < 50:
                    message = await queue.get(fail=False, timeout=5)
                    if message is None:
                        await asyncio.sleep(0.05)
                        continue
                    await message.ack()
                    event = inventory_events.StockReceived.FromString(message.body)
                    if event.sku != sku:
                        continue  # events of other tests in this database
                    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                    assert message.message_id == event.event_id
                    received.append(event.quantity)
            assert received == list(range(1, 51))
            async with asyncio.timeout(10):
                while await inventory_pool.fetchval(
                    "select count(*) from outbox where sku = $1 and sent_at is null", sku
                ):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            while (message := await queue.get(fail=False, timeout=1)) is not None:
                event = inventory_events.StockReceived.FromString(message.body)
                assert event.sku != sku, "a rolled-back or already sent event went out"
        finally:
            relay.stop()
            await asyncio.wait_for(task, 10)

"""RabbitMQ unreachable: receipts keep succeeding, their events wait in the outbox, and all
of them are published, in order, once the broker is reachable again (docs/spec.md §2 Never lost).

The inventory process reaches RabbitMQ through a TCP proxy this test starts, cuts and
restores; the real broker is never touched."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aio_pika
import asyncpg
import grpc

from backorder.inventory.v1 import events_pb2 as ev
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common.amqp import INVENTORY_EXCHANGE
from tests.support.processes import ServiceProcess
from tests.support.proxy import TcpProxy
from tests.support.servers import AMQP_SERVER, Vhost, database_url, drop_database, unique


async def test_receipts_during_a_broker_outage_are_published_when_it_returns(
    own_vhost: Vhost, tmp_path: Path
) -> None:
    broker_host, broker_port = AMQP_SERVER.rsplit("@", 1)[1].split(":")
    proxy = TcpProxy(broker_host, int(broker_port))
    await proxy.restore()
    db_name = unique("bo_outage_inv")
    proxied_url = f"amqp://guest:guest@127.0.0.1:{proxy.port}/{own_vhost.name}"
    process = ServiceProcess(
        "inventory",
        {"INVENTORY_DATABASE_URL": database_url(db_name), "AMQP_URL": proxied_url},
        tmp_path / "inventory.log",
    )
    sku = unique("SKU")
    connection = await aio_pika.connect_robust(own_vhost.url)  # straight to the broker
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            INVENTORY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        tap = await channel.declare_queue(unique("tap"), exclusive=True)
        await tap.bind(exchange, "stock.received")
        await asyncio.to_thread(process.start)

        async def received(count: int) -> list[ev.StockReceived]:
            found: list[ev.StockReceived] = []
            async with asyncio.timeout(60):
                while len(found) < count:
                    message = await tap.get(fail=False, timeout=5)
                    if message is None:
                        await asyncio.sleep(0.05)
                        continue
                    await message.ack()
                    found.append(ev.StockReceived.FromString(message.body))
            return found

        async with grpc.aio.insecure_channel(process.grpc_addr) as grpc_channel:
            inventory = InventoryServiceStub(grpc_channel)
            await inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=f"{sku}-0", sku=sku, quantity=1)
            )
            [first] = await received(1)  # the relay publishes through the proxy
            assert first.receipt_id == f"{sku}-0"
            conn = await asyncpg.connect(database_url(db_name))
            try:
                unsent = "select count(*) from outbox where sent_at is null"
                # Delivered is not yet confirmed and marked sent: wait for that too, or a cut
                # in between leaves the first row unsent (published again later, correctly).
                async with asyncio.timeout(30):
                    while await conn.fetchval(unsent):
                        await asyncio.sleep(0.05)

                await proxy.cut()
                for n in range(1, 101):
                    reply = await inventory.ReceiveStock(
                        inv.ReceiveStockRequest(receipt_id=f"{sku}-{n}", sku=sku, quantity=1)
                    )
                    assert reply.stock.on_hand == n + 1
                # Nothing can be confirmed while the broker is unreachable: all 100 wait.
                assert await conn.fetchval(unsent) == 100

                await proxy.restore()
                events = await received(100)
                assert [e.receipt_id for e in events] == [f"{sku}-{n}" for n in range(1, 101)]
                assert [e.on_hand_after for e in events] == list(range(2, 102))
                # And nothing more (no duplicates) once the outbox is drained.
                async with asyncio.timeout(30):
                    while await conn.fetchval(unsent):
                        await asyncio.sleep(0.05)
                assert await tap.get(fail=False, timeout=5) is None
            finally:
                await conn.close()
    finally:
        code = await asyncio.to_thread(process.stop)
        with contextlib.suppress(AssertionError):  # already cut when the test failed there
            await proxy.cut()
        await connection.close()
        await drop_database(db_name)
    assert code == 0, process.log_tail()

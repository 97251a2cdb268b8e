"""Dead letters on the real broker: listing leaves them in place, replay puts each one back
where it was first published, once, with its original properties, and removes it."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika

from services.common import amqp, dead_letters
from services.common.amqp import ALLOCATION_INBOX, INVENTORY_EXCHANGE
from tests.support.servers import Vhost

DEAD = ALLOCATION_INBOX.dead_letter_queue


async def _dead_letter(url: str, bodies: list[bytes]) -> list[str]:
    """Publishes events to inventory.events and rejects them from the contract queue, as
    the consumer does with a poison message: RabbitMQ moves them to `<queue>.dead`."""
    ids = [str(uuid.uuid4()) for _ in bodies]
    await amqp.declare_topology(url)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(INVENTORY_EXCHANGE)
        for event_id, body in zip(ids, bodies, strict=True):
            await exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=event_id,
                    type="backorder.inventory.v1.StockReceived",
                    content_type="application/x-protobuf",
                    headers={"trace": "t-" + event_id[:4]},
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                "stock.received",
            )
        queue = await channel.get_queue(ALLOCATION_INBOX.name)
        for _ in ids:
            message = await queue.get(timeout=10)
            await message.reject(requeue=False)
    # The broker moves rejected messages to the dead-letter queue asynchronously.
    deadline = asyncio.get_running_loop().time() + 10
    while await _count(url, DEAD) < len(ids):
        assert asyncio.get_running_loop().time() < deadline, "rejected events not dead-lettered"
        await asyncio.sleep(0.05)
    return ids


async def _drain(url: str, queue_name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        found = []
        while (message := await queue.get(fail=False, timeout=5)) is not None:
            await message.ack()
            found.append(message)
        return found


async def _count(url: str, queue_name: str) -> int:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return queue.declaration_result.message_count or 0


async def test_list_shows_dead_letters_and_leaves_them_in_place(own_vhost: Vhost) -> None:
    ids = await _dead_letter(own_vhost.url, [b"\xff", b"\x08\x01", b"abc"])
    for _ in range(2):  # listing twice shows the same: nothing was taken
        found = await dead_letters.list_dead_letters(own_vhost.url, DEAD)
        assert sorted(d.message_id for d in found) == sorted(ids)
        assert {(d.exchange, d.routing_key, d.source_queue, d.reason) for d in found} == {
            (INVENTORY_EXCHANGE, "stock.received", ALLOCATION_INBOX.name, "rejected")
        }
    assert await _count(own_vhost.url, DEAD) == 3
    await _drain(own_vhost.url, DEAD)


async def test_replay_republishes_each_once_with_its_properties_and_removes_it(
    own_vhost: Vhost,
) -> None:
    ids = await _dead_letter(own_vhost.url, [b"one", b"two", b"three"])
    keep = ids[1]
    result = await dead_letters.replay(own_vhost.url, DEAD, select=lambda d: d.message_id != keep)
    assert sorted(result.replayed) == sorted(set(ids) - {keep})
    assert result.kept == 1
    # Back in the contract queue, once each, as first published.
    back = await _drain(own_vhost.url, ALLOCATION_INBOX.name)
    assert sorted(m.message_id or "" for m in back) == sorted(result.replayed)
    for message in back:
        assert message.routing_key == "stock.received"
        assert message.type == "backorder.inventory.v1.StockReceived"
        assert message.content_type == "application/x-protobuf"
        assert message.headers.get("trace") == "t-" + (message.message_id or "")[:4]
        assert "x-death" not in message.headers
        assert message.body == {ids[0]: b"one", ids[2]: b"three"}[message.message_id or ""]
    # The kept one is still dead; nothing else is.
    left = await dead_letters.list_dead_letters(own_vhost.url, DEAD)
    assert [d.message_id for d in left] == [keep]
    # Replaying again replays only what is there: the kept one, once.
    again = await dead_letters.replay(own_vhost.url, DEAD)
    assert again.replayed == [keep]
    assert await _count(own_vhost.url, DEAD) == 0
    assert [m.message_id for m in await _drain(own_vhost.url, ALLOCATION_INBOX.name)] == [keep]


async def test_replay_by_id_finds_a_letter_past_the_first_thousand(own_vhost: Vhost) -> None:
    """By message_id, replay looks through the whole queue (not one page of it) and stops
    once it replayed every id asked for."""
    ids = await _dead_letter(own_vhost.url, [b"x%d" % n for n in range(1005)])
    wanted = {ids[2], ids[1003]}
    result = await dead_letters.replay(
        own_vhost.url,
        DEAD,
        select=lambda d: d.message_id in wanted,
        limit=dead_letters.MAX_SCAN,
        enough=len(wanted),
    )
    assert sorted(result.replayed) == sorted(wanted)
    assert result.kept <= 1003 - 1  # looked at no further than the last wanted one
    assert await _count(own_vhost.url, DEAD) == 1003
    back = await _drain(own_vhost.url, ALLOCATION_INBOX.name)
    assert sorted(m.message_id or "" for m in back) == sorted(wanted)

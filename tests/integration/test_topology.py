"""The contract queues on the real broker: how many consumer crashes a message survives, and
what a release finds when the queues were declared by the previous one (delivery limit 5)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest

from services.common import amqp, dead_letters
from services.common.amqp import ALLOCATION_INBOX, CONTRACT_QUEUES, INVENTORY_EXCHANGE
from tests.support.cluster import until
from tests.support.servers import Vhost


@pytest.fixture
async def fresh_vhost() -> AsyncIterator[Vhost]:
    """A vhost with nothing declared in it yet."""
    v = Vhost()
    await asyncio.to_thread(v.create)
    yield v
    await asyncio.to_thread(v.delete)


async def _publish_receipt(url: str) -> str:
    event_id = str(uuid.uuid4())
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(INVENTORY_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(
                b"\x08\x01",
                message_id=event_id,
                type="backorder.inventory.v1.StockReceived",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            "stock.received",
            mandatory=True,
        )
    return event_id


async def _die_while_applying(url: str, queue_name: str) -> str | None:
    """Takes the next message of the queue and goes away without an answer, as a consumer
    killed mid-message does; the message id, or None when the queue had none."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        message = await queue.get(fail=False, timeout=5)
        return None if message is None else message.message_id
    # Closing the connection with the message unacknowledged returns it to the queue.


async def test_a_message_survives_many_consumer_crashes_and_a_crash_loop_still_ends(
    fresh_vhost: Vhost,
) -> None:
    url = fresh_vhost.url
    await amqp.declare_topology(url)
    event_id = await _publish_receipt(url)
    dead = ALLOCATION_INBOX.dead_letter_queue

    # Ten crashes while it was being applied: twice the previous limit, still in its queue.
    for _ in range(10):
        assert await _die_while_applying(url, ALLOCATION_INBOX.name) == event_id
    assert await dead_letters.list_dead_letters(url, dead) == []

    # A message that takes the consumer down every time is still set aside in the end:
    # after DELIVERY_LIMIT returns its next one dead-letters it.
    for _ in range(10, amqp.DELIVERY_LIMIT + 1):
        assert await _die_while_applying(url, ALLOCATION_INBOX.name) == event_id
    assert await _die_while_applying(url, ALLOCATION_INBOX.name) is None

    async def dead_lettered() -> bool:  # moved there in the background (at-least-once)
        return bool(await dead_letters.list_dead_letters(url, dead))

    await until(dead_lettered, 10, "the message in the dead-letter queue")
    [letter] = await dead_letters.list_dead_letters(url, dead)
    assert (letter.message_id, letter.reason) == (event_id, "delivery_limit")


async def test_queues_of_the_previous_release_are_used_as_they_are_with_a_warning(
    fresh_vhost: Vhost, caplog: pytest.LogCaptureFixture
) -> None:
    url = fresh_vhost.url
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for q in CONTRACT_QUEUES:
            await channel.declare_queue(
                q.name,
                durable=True,
                arguments=amqp.queue_arguments(q, amqp.LEGACY_DELIVERY_LIMIT),
            )

    with caplog.at_level(logging.WARNING, logger=amqp.__name__):
        for _ in range(2):  # every start of every process declares
            await amqp.declare_topology(url)
    warned = [r for r in caplog.records if "previous release" in r.getMessage()]
    assert sorted(str(getattr(r, "queue", "")) for r in warned) == sorted(
        [q.name for q in CONTRACT_QUEUES] * 2
    )

    # Bound as before: an event reaches its consumer's queue.
    event_id = await _publish_receipt(url)
    assert await _die_while_applying(url, ALLOCATION_INBOX.name) == event_id


async def test_a_queue_with_other_arguments_stops_start_up_naming_it(
    fresh_vhost: Vhost,
) -> None:
    url = fresh_vhost.url
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(ALLOCATION_INBOX.name, durable=True)  # a classic queue

    with pytest.raises(amqp.TopologyMismatch, match=ALLOCATION_INBOX.name):
        await amqp.declare_topology(url)

"""The event tap the e2e tests count events with: a duplicate that arrives after the expected
events is seen, so "exactly N events" cannot pass by not reading the N+1st."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest

from services.common.amqp import ALLOCATION_EXCHANGE
from tests.e2e.conftest import QUIET, EventTap
from tests.support.servers import Vhost


async def test_collect_fails_on_a_late_duplicate(allocation_events: EventTap, vhost: Vhost) -> None:
    # A routing key no service consumes: only the tap receives these.
    key = f"line.tap_check_{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(vhost.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            ALLOCATION_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )

        async def publish(message_id: str) -> None:
            await exchange.publish(aio_pika.Message(b"x", message_id=message_id), key)

        def mine(message: aio_pika.abc.AbstractIncomingMessage) -> bool:
            return message.routing_key == key

        await publish("one")
        assert [m.message_id for m in await allocation_events.collect(mine, 1)] == ["one"]

        # The same event again, published after the first was seen but within the quiet
        # period: collect must not stop reading at the count it was given.
        await publish("two")

        async def late_duplicate() -> None:
            await asyncio.sleep(QUIET / 2)
            await publish("two")

        late = asyncio.create_task(late_duplicate())
        with pytest.raises(AssertionError, match="3 events where 2 were expected"):
            await allocation_events.collect(mine, 2)
        await late

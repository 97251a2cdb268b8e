"""backorder_events_consumed_total{queue,type,outcome} has a bounded set of `type` labels:
messages of types a consumer does not handle are counted as type="unknown", so junk sent to
a queue cannot create a metric series per message."""

from __future__ import annotations

import asyncio

import aio_pika

from services.common.amqp import ALLOCATION_INBOX
from tests.e2e.conftest import System
from tests.support.cluster import scrape
from tests.support.servers import Vhost, unique

METRIC = "backorder_events_consumed_total"


def unknown_dead_lettered(system: System) -> float:
    return sum(
        value
        for labels, value in scrape(system.allocation, METRIC)
        if labels["type"] == "unknown" and labels["outcome"] == "dead_lettered"
    )


async def test_junk_types_are_counted_as_unknown(system: System, vhost: Vhost) -> None:
    before = unknown_dead_lettered(system)
    junk_types = [unique("junk.Type") for _ in range(25)]
    connection = await aio_pika.connect(vhost.url)
    async with connection:
        channel = await connection.channel()
        for kind in junk_types:
            await channel.default_exchange.publish(
                aio_pika.Message(b"\x08\x01", type=kind, message_id=unique("m")),
                ALLOCATION_INBOX.name,
            )
    deadline = asyncio.get_running_loop().time() + 30
    while unknown_dead_lettered(system) < before + len(junk_types):
        assert asyncio.get_running_loop().time() < deadline, "junk never consumed"
        await asyncio.sleep(0.2)
    assert unknown_dead_lettered(system) == before + len(junk_types)
    labels = {labels["type"] for labels, _ in scrape(system.allocation, METRIC)}
    assert not labels & set(junk_types), "a junk type became a label"
    assert all(label == "unknown" or label.startswith("backorder.") for label in labels), labels

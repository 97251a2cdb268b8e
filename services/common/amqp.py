"""RabbitMQ at the edge: connecting, and the topology both services declare identically.

Both services declare both exchanges and the two contract queues (SPEC §4), so whichever
starts first, an event published before its consumer ever ran is queued, not lost.

The delivery limit is a queue argument, so it cannot change on a queue that exists: queues
declared by an older release (limit 5) are used as they are, with a warning that says how
to recreate them (README, "Upgrading"). RabbitMQ applies the lower of a `delivery-limit`
policy and the argument, so a policy can lower the limit but not raise it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractQueue,
    AbstractRobustConnection,
)

log = logging.getLogger(__name__)

INVENTORY_EXCHANGE = "inventory.events"
ALLOCATION_EXCHANGE = "allocation.events"
# Returns of one message to its queue before it is dead-lettered. Every return counts, a
# consumer dying mid-message included (quorum queues, RabbitMQ 3.x): the limit stops a
# message that crashes the process every time, not a few restarts. Messages the consumer
# knows it can never apply are dead-lettered at once (services.common.consumer).
DELIVERY_LIMIT = 20
# The limit the previous release declared the queues with: still accepted, with a warning.
LEGACY_DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class ContractQueue:
    name: str
    exchange: str
    routing_keys: tuple[str, ...]

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dead"


ALLOCATION_INBOX = ContractQueue(
    "allocation.inventory-events", INVENTORY_EXCHANGE, ("stock.#", "inbound.#")
)
INVENTORY_INBOX = ContractQueue(
    "inventory.allocation-events", ALLOCATION_EXCHANGE, ("line.fulfilled",)
)
CONTRACT_QUEUES = (ALLOCATION_INBOX, INVENTORY_INBOX)


async def connect(url: str, *, attempts: int = 60, delay: float = 1.0) -> AbstractRobustConnection:
    """A robust connection; the first connect is retried (aio-pika fails fast on it)."""
    for attempt in range(1, attempts + 1):
        try:
            return await aio_pika.connect_robust(url, timeout=10)
        except (OSError, aio_pika.exceptions.AMQPConnectionError) as exc:
            if attempt == attempts:
                raise
            log.warning(
                "RabbitMQ not reachable, retrying",
                extra={"attempt": attempt, "error": str(exc) or type(exc).__name__},
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


class TopologyMismatch(RuntimeError):
    """A contract queue exists with arguments this release neither declares nor accepts."""


def queue_arguments(q: ContractQueue, delivery_limit: int = DELIVERY_LIMIT) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": q.dead_letter_queue,
        # Dead-lettering is at-most-once unless both of these are set.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


async def declare_topology(amqp_url: str, *, connect_timeout: float = 10.0) -> None:
    """Both exchanges, the contract queues and their dead-letter queues, over a connection
    of its own: a declaration the broker refuses closes its channel, and a robust channel
    would repeat our declarations after a reconnect (consumers only look queues up)."""
    connection = await aio_pika.connect(amqp_url, timeout=connect_timeout)
    async with connection:
        channel = await connection.channel()
        for exchange in (INVENTORY_EXCHANGE, ALLOCATION_EXCHANGE):
            await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        for q in CONTRACT_QUEUES:
            await channel.declare_queue(
                q.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
            channel, queue = await _declare_contract_queue(connection, channel, q)
            for key in q.routing_keys:
                await queue.bind(q.exchange, key)


async def _declare_contract_queue(
    connection: AbstractConnection, channel: AbstractChannel, q: ContractQueue
) -> tuple[AbstractChannel, AbstractQueue]:
    """The queue as this release declares it or, when it exists as the previous release
    declared it (only the delivery limit differs), as that one did, with a warning. Returns
    the channel to go on with: a refused declaration closes the one it was sent on."""
    try:
        queue = await channel.declare_queue(q.name, durable=True, arguments=queue_arguments(q))
        return channel, queue
    except aio_pika.exceptions.ChannelPreconditionFailed as exc:
        refused = str(exc)
    channel = await connection.channel()
    try:
        queue = await channel.declare_queue(
            q.name, durable=True, arguments=queue_arguments(q, LEGACY_DELIVERY_LIMIT)
        )
    except aio_pika.exceptions.ChannelPreconditionFailed:
        raise TopologyMismatch(
            f"queue {q.name!r} exists with other arguments than this release declares "
            f"({refused}); see README, Upgrading"
        ) from None
    log.warning(
        "contract queue declared by the previous release: a message is dead-lettered after "
        "fewer returns, consumer crashes included; recreate the queue when convenient "
        "(README, Upgrading)",
        extra={"queue": q.name, "delivery_limit": LEGACY_DELIVERY_LIMIT, "wanted": DELIVERY_LIMIT},
    )
    return channel, queue

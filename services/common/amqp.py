"""RabbitMQ at the edge: connecting, and the topology both services declare identically.

Both services declare both exchanges and the two contract queues (SPEC §4), so whichever
starts first, an event published before its consumer ever ran is queued, not lost.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection

log = logging.getLogger(__name__)

INVENTORY_EXCHANGE = "inventory.events"
ALLOCATION_EXCHANGE = "allocation.events"
# Deliveries of one message before it is dead-lettered (a poison message must not loop).
DELIVERY_LIMIT = 5


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


async def declare_topology(channel: AbstractChannel) -> None:
    """Both exchanges, the contract queues and their dead-letter queues."""
    for exchange in (INVENTORY_EXCHANGE, ALLOCATION_EXCHANGE):
        await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    for q in CONTRACT_QUEUES:
        await channel.declare_queue(
            q.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        queue = await channel.declare_queue(
            q.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": q.dead_letter_queue,
                # Dead-lettering is at-most-once unless both of these are set.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
        for key in q.routing_keys:
            await queue.bind(q.exchange, key)

"""Dead letters of a contract queue (`<queue>.dead`): listing them and replaying them.

RabbitMQ moves a message there when a consumer rejected it (unreadable, cannot be applied)
or when it reached the queue's delivery limit; its `x-death` header says where it was
published (exchange, routing key), from which queue it died and why.

- `list_dead_letters` reads the messages without removing them: every one it takes is
  returned to the queue (a nack with requeue when the channel closes), so listing never
  loses a message, even if the lister dies half-way.
- `replay` republishes each chosen message to the exchange and routing key it was first
  published to, with its original properties (message_id = event_id, type, headers), waits
  for the broker's confirm, and only then removes it from the dead-letter queue. A crash
  between the two can publish a message twice; every consumer dedups on event_id, so a
  replayed event is applied once.

`backorderctl dead-letters list|replay` is a thin wrapper over these two functions.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from services.common import amqp

# Headers RabbitMQ adds while a message is queued and dead-lettered; not part of the event.
_BROKER_HEADERS = frozenset(
    (
        "x-death",
        "x-delivery-count",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    )
)
PUBLISH_TIMEOUT = 10.0
# Messages one listing reads at most: a dead-letter queue longer than this is listed as its
# first MAX_SCAN messages (replay or purge some to see the rest).
MAX_SCAN = 10_000
# How long a listing waits for the letters it read to be counted in their queue again.
RETURN_WAIT = 2.0


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as an operator needs to see it."""

    message_id: str
    type: str
    exchange: str
    routing_key: str
    source_queue: str
    reason: str
    deaths: int
    body_bytes: int
    timestamp: datetime | None
    headers: Mapping[str, Any] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    # Where it sorts in a listing: when it died (microseconds since the epoch, 0 if the
    # broker did not say), its message_id, and a digest of its body for identical ids.
    position: tuple[int, str, str] = (0, "", "")


@dataclass(frozen=True)
class ReplayResult:
    replayed: list[str]
    kept: int


def describe(message: AbstractIncomingMessage, dead_letter_queue: str) -> DeadLetter:
    """Where `message` was published and why it died, from its `x-death` header."""
    source = dead_letter_queue.removesuffix(".dead")
    deaths = _deaths(message.headers)
    # The entry of the queue it died in; a message dead-lettered twice (replayed, died again)
    # has one entry per (queue, reason), the most recent first.
    death = next((d for d in deaths if d.get("queue") == source), deaths[0] if deaths else {})
    keys = death.get("routing-keys") or [message.routing_key or ""]
    died = death.get("time")
    died_us = int(died.timestamp() * 1_000_000) if isinstance(died, datetime) else 0
    return DeadLetter(
        message_id=message.message_id or "",
        type=message.type or "",
        exchange=str(death.get("exchange", message.exchange or "")),
        routing_key=_text(keys[0]),
        source_queue=_text(death.get("queue", source)),
        reason=_text(death.get("reason", "")),
        deaths=sum(int(d.get("count", 1)) for d in deaths) or 1,
        body_bytes=len(message.body),
        timestamp=message.timestamp,
        headers=dict(message.headers),
        body=message.body,
        position=(died_us, message.message_id or "", hashlib.sha256(message.body).hexdigest()[:16]),
    )


async def list_dead_letters(
    amqp_url: str,
    dead_letter_queue: str,
    *,
    limit: int = 1000,
    after: tuple[int, str, str] | None = None,
) -> list[DeadLetter]:
    """Up to `limit` dead letters of the queue in `position` order (oldest death first),
    those after `after` only; the queue is left with the same messages.

    Reading a queue rotates it (a quorum queue puts the messages a reader returns at its
    back), so a queue has no position to page by: every call reads the whole queue (up to
    MAX_SCAN messages) and pages by each letter's own `position`. A queue not declared yet
    has no letters."""
    connection = await amqp.connect(amqp_url)
    try:
        channel = await connection.channel()
        found: list[DeadLetter] = []
        try:
            async for message in _take(channel, dead_letter_queue, MAX_SCAN):
                found.append(describe(message, dead_letter_queue))
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return []  # the passive declare closed the channel: nothing dead-lettered yet
        # Closing the channel returns every unacked message to the queue.
        await channel.close()
        await _back_in_queue(connection, dead_letter_queue, len(found))
    finally:
        await connection.close()
    found.sort(key=lambda letter: letter.position)
    if after is not None:
        found = [letter for letter in found if letter.position > after]
    return found[:limit]


async def replay(
    amqp_url: str,
    dead_letter_queue: str,
    *,
    select: Callable[[DeadLetter], bool] = lambda _: True,
    limit: int = 1000,
    enough: int | None = None,
) -> ReplayResult:
    """Republishes the selected dead letters (up to `limit` examined, and no more once
    `enough` were replayed) where they were first published, then removes them; the others
    stay. Returns the replayed message ids."""
    connection = await amqp.connect(amqp_url)
    try:
        reader = await connection.channel()
        publisher = await connection.channel(publisher_confirms=True)
        replayed: list[str] = []
        kept = 0
        try:
            waiting = [m async for m in _take(reader, dead_letter_queue, limit)]
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return ReplayResult([], 0)  # not declared yet: nothing dead-lettered
        for message in waiting:
            if enough is not None and len(replayed) >= enough:
                break  # the rest, not looked at, are back in the queue when the channel closes
            letter = describe(message, dead_letter_queue)
            if not select(letter):
                kept += 1
                continue  # left unacked: back in the queue when the channel closes
            exchange = await publisher.get_exchange(letter.exchange, ensure=False)
            await exchange.publish(
                _republished(message),
                letter.routing_key,
                mandatory=True,
                timeout=PUBLISH_TIMEOUT,
            )
            # Confirmed by the broker: now, and only now, it may leave the dead-letter queue.
            await message.ack()
            replayed.append(letter.message_id)
        await reader.close()
        return ReplayResult(replayed, kept)
    finally:
        await connection.close()


async def _back_in_queue(
    connection: aio_pika.abc.AbstractConnection, queue_name: str, count: int
) -> None:
    """Waits (briefly) until the `count` letters a reader returned are counted in the queue
    again: the broker requeues them after the channel closed, and a listing that came right
    after would otherwise miss them (a page token's next page, one call later)."""
    if not count:
        return
    channel = await connection.channel()
    try:
        deadline = asyncio.get_running_loop().time() + RETURN_WAIT
        while asyncio.get_running_loop().time() < deadline:
            queue = await channel.declare_queue(queue_name, passive=True)
            if (queue.declaration_result.message_count or 0) >= count:
                return
            await asyncio.sleep(0.01)
    finally:
        await channel.close()


async def _take(
    channel: AbstractChannel, queue_name: str, limit: int
) -> AsyncIterator[AbstractIncomingMessage]:
    """The messages queued when called (at most `limit`), unacked: a message replayed into
    a queue that dead-letters it again is not met twice in one pass."""
    queue = await channel.declare_queue(queue_name, passive=True)
    waiting = queue.declaration_result.message_count or 0
    for _ in range(min(waiting, limit)):
        message = await queue.get(no_ack=False, fail=False, timeout=10)
        if message is None:
            return
        yield message


def _republished(message: AbstractIncomingMessage) -> aio_pika.Message:
    headers = {k: v for k, v in message.headers.items() if k not in _BROKER_HEADERS}
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=message.delivery_mode or aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        expiration=None,  # an expired replay would be lost again
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        user_id=None,  # the broker checks user_id against the connection's user
        app_id=message.app_id,
    )


def _deaths(headers: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    deaths = headers.get("x-death")
    if not isinstance(deaths, list | tuple):
        return []
    return [d for d in deaths if isinstance(d, Mapping)]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)

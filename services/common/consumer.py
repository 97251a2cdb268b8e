"""Consuming events from a contract queue: message -> event -> handler -> ack.

Ack only after the handler's transaction committed. What a failure means decides what
happens to the message:
- it can never be applied (not parsable, not valid, or the handler fails in a way a retry
  does not change: a bug): rejected at once, so it lands in the dead-letter queue, from
  where an operator replays it once fixed;
- Postgres refused this attempt only (serialization failure, deadlock, lock timeout): the
  handler runs again in place, a few times with a short jittered backoff, so the message
  is not redelivered (every return counts toward the queue's delivery limit);
- still failing after that, or the database away for longer than the handler waits it out:
  returned to the queue after a pause; the delivery limit dead-letters it if that never
  ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError, Message
from prometheus_client import Counter

from services.common import amqp, db
from services.common.amqp import ContractQueue
from services.common.errors import ServiceError
from services.common.logs import correlation

log = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter(
    "backorder_events_consumed_total", "Events consumed, by outcome", ["queue", "type", "outcome"]
)
# Seconds to wait for the broker while stopping.
STOP_TIMEOUT = 5.0
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Route:
    """How to read one message type and what to do with it."""

    message: type[Message]
    handle: Callable[[Any], Awaitable[None]]


class PoisonMessage(Exception):
    """The message can never be applied; it goes to the dead-letter queue."""


class EventConsumer:
    def __init__(
        self,
        amqp_url: str,
        queue: ContractQueue,
        routes: Mapping[str, Route],
        *,
        prefetch: int = 200,
        retry_pause: float = 1.0,
        attempts: int = 5,
        backoff: float = 0.05,
        max_backoff: float = 1.0,
        reconnect_pause: float = 0.5,
        max_reconnect_pause: float = 5.0,
    ) -> None:
        self._amqp_url = amqp_url
        self._queue = queue
        self._routes = dict(routes)
        self._prefetch = prefetch
        # Before a message goes back to the queue.
        self._retry_pause = retry_pause
        # Runs of the handler per delivery when Postgres refuses an attempt (db.RETRYABLE),
        # the first pause between two of them and its cap (doubling, jittered).
        self._attempts = attempts
        self._backoff = backoff
        self._max_backoff = max_backoff
        # Before subscribing again after the broker failed us (doubling, capped).
        self._reconnect_pause = reconnect_pause
        self._max_reconnect_pause = max_reconnect_pause
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Consumes until `stop()`. Whenever the subscription ends without being asked to (the
        broker cancelled it because the queue was deleted, the connection or channel closed,
        the broker went away or started refusing us: vhost deleted, permissions revoked),
        logs it and subscribes again on a new connection, declaring the queue anew, with a
        capped backoff while that fails: broker trouble never ends the process."""
        pause = self._reconnect_pause
        while not self._stopping.is_set():
            try:
                await self._consume_until_interrupted()
                pause = self._reconnect_pause
                # A short breath even then: a subscription the broker keeps ending at once
                # must not become a busy loop.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=pause)
            except amqp.BROKER_ERRORS as exc:
                log.warning(
                    "cannot consume from RabbitMQ; subscribing again shortly",
                    extra={
                        "queue": self._queue.name,
                        "error": amqp.explain(exc, self._amqp_url),
                        "retry_in": pause,
                    },
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=pause)
                pause = min(pause * 2, self._max_reconnect_pause)

    async def _consume_until_interrupted(self) -> None:
        """One subscription, over a connection of its own, until `stop()` or until it ends.
        With several brokers (a cluster), the connection goes to one that answers; when the
        subscription ends or fails, its node is tried last next time, so the consumer moves
        to another node."""
        interrupted = asyncio.Event()
        connection = await amqp.connect(self._amqp_url)
        ended = True
        try:
            connection.close_callbacks.add(lambda *_: interrupted.set())
            await amqp.declare_topology(self._amqp_url)
            channel = await connection.channel()
            channel.close_callbacks.add(lambda *_: interrupted.set())
            await channel.set_qos(prefetch_count=self._prefetch)
            underlay = await channel.get_underlay_channel()
            # Basic.Cancel from the broker: it does so when the queue is deleted.
            underlay.on_consumer_cancel_callbacks.add(lambda _frame: interrupted.set())
            queue = await channel.get_queue(self._queue.name)
            tag = await queue.consume(self._on_message)
            log.info(
                "consuming",
                extra={"queue": self._queue.name, "broker": amqp.connection_node(connection)},
            )
            await _first(self._stopping.wait(), interrupted.wait())
            ended = not self._stopping.is_set()
            if not self._stopping.is_set():
                log.warning(
                    "the subscription ended (queue deleted, connection lost or refused); "
                    "declaring the queue and subscribing again",
                    extra={"queue": self._queue.name},
                )
            elif not interrupted.is_set():
                # Take no new deliveries. With the broker unreachable the cancel cannot
                # complete: don't wait for it (the broker requeues what was not acked when
                # the connection goes).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(queue.cancel(tag), timeout=STOP_TIMEOUT)
            # Let the events being applied finish and be acked (an ack on a lost
            # connection fails; the broker redelivers those, and the inbox dedups).
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=30)
        finally:
            if ended:
                amqp.connection_lost(connection)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=STOP_TIMEOUT)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._process(message)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        kind = message.type or "?"
        # The metric's label: only the types this consumer handles, so junk types sent to
        # the queue cannot create a series each.
        label = kind if kind in self._routes else "unknown"
        try:
            route, event = self._parse(message)
        except PoisonMessage as exc:
            log.warning(
                "dead-lettering unreadable message",
                extra={"message_id": message.message_id, "type": kind, "error": str(exc)},
            )
            EVENTS_CONSUMED.labels(self._queue.name, label, "dead_lettered").inc()
            await message.reject(requeue=False)
            return
        fields = {"event_id": message.message_id or "", **correlation(event), "type": kind}
        try:
            await self._apply(route, event, fields)
        except (PoisonMessage, ServiceError) as exc:
            log.warning(
                "dead-lettering event that cannot be applied",
                extra={**fields, "error": str(exc)},
            )
            EVENTS_CONSUMED.labels(self._queue.name, label, "dead_lettered").inc()
            await message.reject(requeue=False)
        except (*db.RETRYABLE, *db.DATABASE_UNREACHABLE) as exc:
            log.warning(
                "applying event keeps failing; returning it to the queue",
                extra={**fields, "error": str(exc) or type(exc).__name__},
            )
            EVENTS_CONSUMED.labels(self._queue.name, label, "retried").inc()
            await asyncio.sleep(self._retry_pause)
            await message.nack(requeue=True)
        except Exception:
            # Not a failure a retry changes: redelivering it would only delay the dead
            # letter (up to the delivery limit) and hold up a prefetch slot meanwhile.
            log.exception(
                "applying event failed (a bug, or data the handler cannot take); "
                "dead-lettering it, replay it once fixed",
                extra=fields,
            )
            EVENTS_CONSUMED.labels(self._queue.name, label, "dead_lettered").inc()
            await message.reject(requeue=False)
        else:
            EVENTS_CONSUMED.labels(self._queue.name, label, "applied").inc()
            await message.ack()
            log.debug("event applied", extra=fields)

    async def _apply(self, route: Route, event: Message, fields: Mapping[str, object]) -> None:
        """Runs the handler; again, in place, when Postgres refused an attempt, up to
        `attempts` runs. The pause is jittered so that two consumers whose transactions
        deadlocked do not meet again at once."""
        pause = self._backoff
        for attempt in range(1, self._attempts + 1):
            try:
                await route.handle(event)
                return
            except db.RETRYABLE as exc:
                if attempt == self._attempts:
                    raise
                log.warning(
                    "applying event failed, retrying in place",
                    extra={**fields, "attempt": attempt, "error": str(exc)},
                )
                await asyncio.sleep(random.uniform(pause / 2, pause))
                pause = min(pause * 2, self._max_backoff)

    def _parse(self, message: AbstractIncomingMessage) -> tuple[Route, Message]:
        route = self._routes.get(message.type or "")
        if route is None:
            raise PoisonMessage(f"unexpected message type {message.type!r}")
        if len(message.body) > MAX_BODY_BYTES:
            raise PoisonMessage(f"body of {len(message.body)} bytes is over {MAX_BODY_BYTES}")
        event = route.message()
        try:
            event.ParseFromString(message.body)
        except DecodeError as exc:
            raise PoisonMessage(f"body is not a {message.type}: {exc}") from None
        return route, event


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()

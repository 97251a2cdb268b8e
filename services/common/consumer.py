"""Consuming events from a contract queue: message -> event -> handler -> ack.

Ack only after the handler's transaction committed. A message that cannot be parsed is
rejected at once (dead-lettered); one whose handler fails is requeued after a pause, and
the quorum queue's delivery limit dead-letters it if it keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError, Message
from prometheus_client import Counter

from services.common import amqp
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
    ) -> None:
        self._amqp_url = amqp_url
        self._queue = queue
        self._routes = dict(routes)
        self._prefetch = prefetch
        self._retry_pause = retry_pause
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        connection = await amqp.connect(self._amqp_url)
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            await amqp.declare_topology(channel)
            queue = await channel.get_queue(self._queue.name)
            tag = await queue.consume(self._on_message)
            await self._stopping.wait()
            # Take no new deliveries; let those being applied finish and be acked. With the
            # broker unreachable the cancel cannot complete: don't wait for it (the broker
            # requeues what was not acked when the connection goes).
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.cancel(tag), timeout=STOP_TIMEOUT)
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=30)
        finally:
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
        try:
            route, event = self._parse(message)
        except PoisonMessage as exc:
            log.warning(
                "dead-lettering unreadable message",
                extra={"message_id": message.message_id, "type": kind, "error": str(exc)},
            )
            EVENTS_CONSUMED.labels(self._queue.name, kind, "dead_lettered").inc()
            await message.reject(requeue=False)
            return
        fields = {"event_id": message.message_id or "", **correlation(event), "type": kind}
        try:
            await route.handle(event)
        except (PoisonMessage, ServiceError) as exc:
            log.warning(
                "dead-lettering event that cannot be applied",
                extra={**fields, "error": str(exc)},
            )
            EVENTS_CONSUMED.labels(self._queue.name, kind, "dead_lettered").inc()
            await message.reject(requeue=False)
        except Exception:
            log.exception("applying event failed; will be redelivered", extra=fields)
            EVENTS_CONSUMED.labels(self._queue.name, kind, "retried").inc()
            await asyncio.sleep(self._retry_pause)
            await message.nack(requeue=True)
        else:
            EVENTS_CONSUMED.labels(self._queue.name, kind, "applied").inc()
            await message.ack()
            log.debug("event applied", extra=fields)

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

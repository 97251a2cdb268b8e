"""Subscribing to the services' events (extra `events`: `pip install 'backorder-client[events]'`).

`EventSubscriber` declares a durable queue of yours, binds it to `inventory.events` and/or
`allocation.events` with the routing keys you give, and hands each message to your handler
decoded into its protobuf event (chosen by the AMQP `type` property, the event's full name).

- Acknowledgement: after the handler returns. A handler that raises gets the message once
  more (requeued); if it raises again on that redelivery the message is rejected without
  requeue (dead-lettered, if you gave the queue a dead-letter exchange in `queue_arguments`).
  A message whose `type` is not a known event, or whose body does not decode, is rejected
  without requeue as well.
- Dedup: delivery is at least once, so the subscriber remembers the `event_id` of the last
  `dedup_window` events it handled (default 10,000; an insertion-ordered map, about 1 MB) and
  acknowledges a repeat without calling the handler. Memory stays bounded: a duplicate that
  arrives more than `dedup_window` distinct events later, after a restart, or at another
  subscriber instance of the same queue is handled again, so a handler whose effect must
  happen once still keys it on `event_id` in its own store.
- Order: messages are handled one at a time, in the order the queue delivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType

import aio_pika
import aio_pika.abc
from google.protobuf.message import DecodeError, Message

from backorder.allocation.v1 import events_pb2 as allocation_events
from backorder.inventory.v1 import events_pb2 as inventory_events

log = logging.getLogger(__name__)

INVENTORY_EXCHANGE = "inventory.events"
ALLOCATION_EXCHANGE = "allocation.events"
DEFAULT_DEDUP_WINDOW = 10_000


def _event_types() -> dict[str, type[Message]]:
    types: dict[str, type[Message]] = {}
    for module in (inventory_events, allocation_events):
        for name, descriptor in module.DESCRIPTOR.message_types_by_name.items():
            if "event_id" in descriptor.fields_by_name:
                types[descriptor.full_name] = getattr(module, name)
    return types


# AMQP `type` (the full message name) -> the generated message class.
EVENT_TYPES: Mapping[str, type[Message]] = _event_types()

Handler = Callable[[Message, aio_pika.abc.AbstractIncomingMessage], Awaitable[None]]


class EventSubscriber:
    """Consumes `queue` (durable, declared if missing) bound to `bindings`
    ({exchange: routing keys}, e.g. {"allocation.events": ["line.reserved"]}) and calls
    `await handler(event, message)` once per distinct `event_id` (see the module doc).

    `async with EventSubscriber(...)` (or `await start()` / `await stop()`) consumes in a
    background task; `await run()` consumes until cancelled.
    """

    def __init__(
        self,
        amqp_url: str,
        queue: str,
        bindings: Mapping[str, Iterable[str]],
        handler: Handler,
        *,
        dedup_window: int = DEFAULT_DEDUP_WINDOW,
        prefetch_count: int = 32,
        queue_arguments: Mapping[str, object] | None = None,
    ) -> None:
        unknown = sorted(set(bindings) - {INVENTORY_EXCHANGE, ALLOCATION_EXCHANGE})
        if unknown:
            raise ValueError(f"no such exchange: {unknown} (inventory.events, allocation.events)")
        if dedup_window < 1:
            raise ValueError("dedup_window must be at least 1")
        self.amqp_url = amqp_url
        self.queue_name = queue
        self.bindings = {exchange: list(keys) for exchange, keys in bindings.items()}
        self.handler = handler
        self.dedup_window = dedup_window
        self.prefetch_count = prefetch_count
        self.queue_arguments = dict(queue_arguments or {})
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        # What happened so far, for monitoring.
        self.handled = 0
        self.duplicates = 0
        self.rejected = 0

    async def run(self) -> None:
        """Connects (reconnecting after a broker outage), declares and binds the queue,
        consumes until cancelled."""
        connection = await aio_pika.connect_robust(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.prefetch_count)
            queue = await channel.declare_queue(
                self.queue_name, durable=True, arguments=self.queue_arguments or None
            )
            for name, keys in self.bindings.items():
                # As the services declare it: a durable topic exchange.
                exchange = await channel.declare_exchange(
                    name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                for key in keys:
                    await queue.bind(exchange, key)
            self._ready.set()
            async with queue.iterator() as messages:
                async for message in messages:
                    await self.deliver(message)

    async def deliver(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        """Decodes, dedups, hands to the handler and acknowledges one message."""
        kind = EVENT_TYPES.get(message.type or "")
        if kind is None:
            log.warning(
                "rejecting a message of unknown type %r (%s)", message.type, message.routing_key
            )
            self.rejected += 1
            await message.reject(requeue=False)
            return
        try:
            event = kind.FromString(message.body)
        except DecodeError:
            log.warning("rejecting a %s whose body does not decode", message.type)
            self.rejected += 1
            await message.reject(requeue=False)
            return
        event_id = getattr(event, "event_id", "") or message.message_id or ""
        if event_id and event_id in self._seen:
            self.duplicates += 1
            await message.ack()
            return
        try:
            await self.handler(event, message)
        except Exception:
            again = not message.redelivered
            log.exception(
                "handler failed on %s %s; %s",
                message.type,
                event_id,
                "requeued once" if again else "rejected (it failed on its redelivery too)",
            )
            if not again:
                self.rejected += 1
            await message.nack(requeue=again)
            return
        if event_id:
            self._seen[event_id] = None
            while len(self._seen) > self.dedup_window:
                self._seen.popitem(last=False)
        self.handled += 1
        await message.ack()

    async def start(self, timeout: float = 30) -> None:  # noqa: ASYNC109
        """Starts consuming in a background task; returns once the queue is bound."""
        self._task = asyncio.create_task(self.run(), name=f"subscriber {self.queue_name}")
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait(
            {self._task, ready}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        if ready not in done:
            ready.cancel()
            if self._task in done:
                self._task.result()  # raises what stopped it
            await self.stop()
            raise TimeoutError(f"queue {self.queue_name} not bound within {timeout} s")

    async def stop(self) -> None:
        """Stops consuming and closes the connection (unacknowledged messages go back to the
        queue)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self) -> EventSubscriber:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

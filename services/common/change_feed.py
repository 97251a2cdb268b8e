"""A Postgres LISTEN/NOTIFY feed fanned out to many in-process subscribers.

Each service process keeps one dedicated listening connection per channel (LISTEN needs a
connection that stays open, not one returned to a pool). Changes are NOTIFYed in the same
transaction that makes them, so every replica hears every committed change, in commit
order. Each subscriber has a bounded buffer: one that falls `capacity` notifications behind
is dropped with `FeedOverflow` (its memory freed), and never slows the others down. If the
listening connection is lost, subscribers may have missed changes: they end with
`FeedInterrupted`, and the feed reconnects for new subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg

from services.common import tracing

log = logging.getLogger(__name__)

Payload = dict[str, Any]


class FeedOverflow(Exception):
    """The subscriber fell too far behind; what it missed is gone."""


class FeedInterrupted(Exception):
    """The feed stopped or lost its connection; the subscriber may have missed changes."""


class Subscription:
    """What one subscriber receives: payloads its predicate accepts, at most `capacity`
    waiting at a time."""

    def __init__(self, predicate: Callable[[Payload], bool], capacity: int) -> None:
        self._predicate = predicate
        self._capacity = capacity
        self._items: deque[Payload] = deque()
        self._ready = asyncio.Event()
        self.failure: Exception | None = None

    def offer(self, payload: Payload) -> None:
        if self.failure is not None or not self._predicate(payload):
            return
        if len(self._items) >= self._capacity:
            self.fail(FeedOverflow(f"fell more than {self._capacity} changes behind"))
            return
        self._items.append(payload)
        self._ready.set()

    def fail(self, failure: Exception) -> None:
        if self.failure is None:
            self.failure = failure
            self._items.clear()
            self._ready.set()

    async def next(self) -> Payload:
        while True:
            if self.failure is not None:
                raise self.failure
            if self._items:
                return self._items.popleft()
            self._ready.clear()
            await self._ready.wait()


class ChangeFeed:
    """LISTENs on `channel` (JSON payloads) and hands each notification to every subscriber."""

    def __init__(
        self,
        database_url: str,
        channel: str,
        *,
        capacity: int = 1000,
        check_interval: float = 5.0,
        ready_timeout: float = 10.0,
    ) -> None:
        self._database_url = database_url
        self._channel = channel
        self.capacity = capacity
        self._check_interval = check_interval
        self._ready_timeout = ready_timeout
        self._subscriptions: set[Subscription] = set()
        self._listening = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lost = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self._lost.set()

    async def run(self) -> None:
        """Listens until `stop()`, reconnecting after a lost connection."""
        # Its keep-alive queries are no one's request (services.common.tracing).
        with tracing.untraced():
            await self._run()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "change feed lost its connection, reconnecting",
                    extra={"channel": self._channel, "error": str(exc) or type(exc).__name__},
                )
            finally:
                self._listening.clear()
                self._fail_all(FeedInterrupted("the change feed was interrupted"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=1.0)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            self._lost.clear()
            conn.add_termination_listener(lambda _conn: self._lost.set())
            await conn.add_listener(self._channel, self._on_notify)
            self._listening.set()
            while not (self._lost.is_set() or self._stopping.is_set()):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), timeout=self._check_interval)
                if not self._lost.is_set():
                    # A half-open connection delivers nothing and raises nothing: probe it.
                    await conn.execute("select 1", timeout=self._check_interval)
        finally:
            self._listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=5)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            parsed = json.loads(payload)
        except ValueError:
            log.warning("ignoring malformed notification", extra={"channel": self._channel})
            return
        for subscription in list(self._subscriptions):
            subscription.offer(parsed)

    def _fail_all(self, failure: Exception) -> None:
        for subscription in list(self._subscriptions):
            subscription.fail(failure)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, predicate: Callable[[Payload], bool] = lambda _p: True
    ) -> AsyncIterator[Subscription]:
        """A subscription that receives every notification committed from now on."""
        if self._stopping.is_set():
            raise FeedInterrupted("the server is stopping")
        try:
            await asyncio.wait_for(self._listening.wait(), timeout=self._ready_timeout)
        except TimeoutError:
            raise FeedInterrupted("the change feed is not connected to the database") from None
        subscription = Subscription(predicate, self.capacity)
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

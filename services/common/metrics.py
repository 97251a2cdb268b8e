"""Gauges sampled periodically from the service's own state (Postgres tables, RabbitMQ queues).

Counters and histograms are updated where things happen; gauges of state (outbox lag, backlog,
dead letters) are cheaper and truer read from the source every few seconds. A `Sampler` is one
named async function that sets some gauges; `run_samplers` calls them all every
`SAMPLE_INTERVAL_SECONDS` until stopped. A failing sampler (database or broker down) is logged
once and retried on the next tick: metrics never take a service down.

Gauges read from a database show the same value on every replica of a service: aggregate them
with `max`, not `sum`, across instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection
from prometheus_client import Gauge

from services.common import amqp, db
from services.common.amqp import ContractQueue
from services.common.settings import ServiceSettings

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_SECONDS = 5.0

OUTBOX_PENDING = Gauge("backorder_outbox_pending", "Outbox events not yet published")
OUTBOX_OLDEST_AGE = Gauge(
    "backorder_outbox_oldest_age_seconds",
    "Age of the oldest outbox event not yet published (0 when none)",
)
DEAD_LETTERS = Gauge("backorder_dead_letters", "Messages waiting in a dead-letter queue", ["queue"])


@dataclass(frozen=True)
class Sampler:
    """One named source of gauge values, sampled every interval."""

    name: str
    sample: Callable[[], Awaitable[None]]
    # Releases what the sampler holds (a broker connection), at shutdown.
    close: Callable[[], Awaitable[None]] | None = None


async def run_samplers(
    samplers: Sequence[Sampler],
    stopping: asyncio.Event,
    interval: float = SAMPLE_INTERVAL_SECONDS,
) -> None:
    """Samples every sampler now and then every `interval` seconds until `stopping` is set."""
    try:
        await _sample_until(samplers, stopping, interval)
    finally:
        for sampler in samplers:
            if sampler.close is not None:
                try:
                    await sampler.close()
                except Exception as exc:
                    log.debug("closing a sampler failed", extra={"error": str(exc)})


async def _sample_until(
    samplers: Sequence[Sampler], stopping: asyncio.Event, interval: float
) -> None:
    failing: set[str] = set()
    while not stopping.is_set():
        for sampler in samplers:
            try:
                await asyncio.wait_for(sampler.sample(), timeout=max(interval, 1.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # One line when a sampler starts failing, one when it recovers: an outage of
                # the database must not flood the logs every few seconds.
                if sampler.name not in failing:
                    failing.add(sampler.name)
                    log.warning(
                        "metrics sampler failing; gauges keep their last value",
                        extra={"sampler": sampler.name, "error": str(exc) or type(exc).__name__},
                    )
            else:
                if sampler.name in failing:
                    failing.discard(sampler.name)
                    log.info("metrics sampler recovered", extra={"sampler": sampler.name})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval)


def outbox_sampler(pool: asyncpg.Pool) -> Sampler:
    """backorder_outbox_pending and backorder_outbox_oldest_age_seconds from the service's
    `outbox` table (both services have one of the same shape)."""

    async def sample() -> None:
        async with db.connection(pool) as conn:
            # Both read the partial index of unsent rows: cheap however large the table.
            row = await conn.fetchrow(
                """
                select (select count(*) from outbox where sent_at is null) as pending,
                       coalesce(extract(epoch from clock_timestamp() - (
                           select created_at from outbox where sent_at is null
                           order by id limit 1)), 0)::float8 as oldest_age
                """
            )
        OUTBOX_PENDING.set(row["pending"])
        OUTBOX_OLDEST_AGE.set(max(0.0, row["oldest_age"]))

    return Sampler("outbox", sample)


class DeadLetterSampler:
    """backorder_dead_letters{queue}: depth of dead-letter queues, by passive declare (which
    reads the message count without creating or changing anything)."""

    def __init__(self, amqp_url: str, queues: Sequence[str]) -> None:
        self._amqp_url = amqp_url
        self._queues = list(queues)
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    def sampler(self) -> Sampler:
        return Sampler("dead-letters", self.sample, self.close)

    async def sample(self) -> None:
        try:
            await self._sample()
        except BaseException:
            # Whatever broke (broker away, vhost deleted, permissions revoked), the next
            # tick starts over on a new connection.
            await self.close()
            raise

    async def _sample(self) -> None:
        if self._connection is None or self._connection.is_closed:
            # Made on first use, inside the running loop (never at import or construction).
            # Plain, not robust: a robust one retries a refused login forever in the
            # background; this sampler reconnects on its next tick instead.
            self._connection = await amqp.connect(self._amqp_url)
            self._channel = None
        if self._channel is None or self._channel.is_closed:
            self._channel = await self._connection.channel()
        for name in self._queues:
            try:
                result = await self._channel.declare_queue(name, passive=True)
                count = result.declaration_result.message_count
            except aio_pika.exceptions.ChannelNotFoundEntity:
                # A missing queue closes the channel; not declared yet means empty.
                self._channel = None
                DEAD_LETTERS.labels(name).set(0)
                return
            DEAD_LETTERS.labels(name).set(count or 0)

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)


def service_samplers(
    pool: asyncpg.Pool, settings: ServiceSettings, inbox: ContractQueue
) -> list[Sampler]:
    """What every service samples: its outbox and the dead-letter queue of its inbox."""
    return [
        outbox_sampler(pool),
        DeadLetterSampler(settings.amqp_url, [inbox.dead_letter_queue]).sampler(),
    ]

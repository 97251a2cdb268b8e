"""The transactional outbox: events written with the change that caused them, then relayed.

Use cases emit events through `services.common.unit_of_work`, which calls `add_events` in
their transaction (the one route into the outbox). `OutboxRelay` publishes unsent rows
in id order with publisher confirms and marks them sent only after the broker confirmed.
One relay per database publishes at a time (a session advisory lock), which keeps
per-SKU order across replicas; the others wait as hot standbys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aio_pika
import asyncpg
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from prometheus_client import Counter

from services.common import amqp, tracing

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "outbox"
RELAY_LOCK_KEY = 0x6F7574626F78
CONTENT_TYPE = "application/x-protobuf"

EVENTS_PUBLISHED = Counter(
    "backorder_events_published_total",
    "Events published and confirmed by RabbitMQ",
    ["exchange", "routing_key"],
)


@dataclass(frozen=True)
class OutgoingEvent:
    exchange: str
    routing_key: str
    sku: str
    message: Message
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    # The trace context of the call that emitted it (services.common.tracing): the relay
    # publishes the event in that trace. None when tracing is off.
    trace_context: str | None = None

    def __post_init__(self) -> None:
        check_published(self.exchange, self.routing_key, type(self.message))


def check_published(exchange: str, routing_key: str, message: type[Message]) -> None:
    """Only what the event catalog lists goes out (amqp.PUBLISHED_EVENTS, which
    docs/asyncapi.yaml is held equal to): subscribers bind to those keys and decode those
    messages. ValueError for anything else."""
    if amqp.PUBLISHED_EVENTS.get(exchange, {}).get(routing_key) is not message:
        raise ValueError(
            f"{message.DESCRIPTOR.full_name} on {exchange!r} with routing key "
            f"{routing_key!r} is not in services.common.amqp.PUBLISHED_EVENTS "
            f"(add it there and to docs/asyncapi.yaml)"
        )


def new_event(exchange: str, routing_key: str, message: Message) -> OutgoingEvent:
    """Stamps `message` (which has event_id, occurred_at and sku fields) as a new event."""
    event = OutgoingEvent(exchange, routing_key, message.sku, message)
    message.event_id = str(event.event_id)
    if not message.HasField("occurred_at"):
        message.occurred_at.GetCurrentTime()
    return event


async def add_events(conn: asyncpg.Connection, events: Sequence[OutgoingEvent]) -> None:
    """Writes events to the outbox in the caller's transaction and wakes the relay at commit."""
    if not events:
        return
    # One round trip: the insert, and the wake-up of the relay (delivered at commit).
    await conn.execute(
        """with written as (
               insert into outbox (event_id, exchange, routing_key, message_type, sku, body,
                                   trace_context)
               select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
                                    $5::text[], $6::bytea[], $8::jsonb[])
               returning 1)
           select pg_notify($7, '') where exists (select 1 from written)""",
        [e.event_id for e in events],
        [e.exchange for e in events],
        [e.routing_key for e in events],
        [e.message.DESCRIPTOR.full_name for e in events],
        [e.sku for e in events],
        [e.message.SerializeToString() for e in events],
        NOTIFY_CHANNEL,
        [e.trace_context for e in events],
    )


class OutboxRelay:
    """Publishes the outbox of one database to RabbitMQ, at least once, in order.

    While RabbitMQ is unreachable the relay keeps its database session (and the relay lock)
    and retries the broker with a capped backoff; rows stay unsent, RPCs keep committing, and
    everything goes out in id order once the broker answers again. Sent rows are deleted
    after `retention`.
    """

    def __init__(
        self,
        database_url: str,
        amqp_url: str,
        exchanges: Sequence[str],
        *,
        late_fields: bool = False,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        publish_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_backoff: float = 5.0,
        retention: timedelta = timedelta(hours=24),
        cleanup_interval: float = 60.0,
    ) -> None:
        self._database_url = database_url
        self._amqp_url = amqp_url
        # The exchanges this database's events go to (its service's own).
        self._exchanges = tuple(exchanges)
        # Whether this outbox has the `late_fields` column (see `completed_body`).
        self._late_fields = "late_fields" if late_fields else "null::jsonb as late_fields"
        # At most this many publishes are unconfirmed at a time (so at most this many go
        # out twice after a crash); rows are read as earlier ones are confirmed.
        self._batch_size = batch_size
        self._mark_batch = max(batch_size // 4, 1)
        self._poll_interval = poll_interval
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._retention = retention
        self._cleanup_interval = cleanup_interval
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_cleanup = 0.0

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Runs until `stop()`; survives RabbitMQ and Postgres outages by retrying."""
        # Its polling is no one's request; each publish runs in its row's trace instead.
        with tracing.untraced():
            await self._run()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "outbox relay lost its database session, retrying",
                    extra={"error": str(exc) or type(exc).__name__},
                )
                await self._pause(self._poll_interval)

    async def _run_once(self) -> None:
        conn = await asyncpg.connect(self._database_url)
        try:
            # The relay's reads must be ordered walks of the outbox_unsent index that stop at
            # their LIMIT. Right after a big fill (100,000 rows in one transaction, not yet
            # analyzed) the planner expects a few rows and picks a bitmap scan + sort of the
            # whole backlog, which also never marks sent rows' index entries dead: 12-23 ms
            # per read of 500 at 100,000 rows, quadratic in the backlog. This session only.
            # Its writes (the sent marks, the retention clean-up) commit without waiting for
            # the WAL flush: a mark lost with a crash of Postgres only sends its event again,
            # which delivery at least once allows (subscribers deduplicate on event_id). A
            # mark's flush wait sat in every cycle of the relay, behind the service's own
            # commits: with 32 callers running Allocate, the relay's stage of receipt →
            # line.reserved went from 72 to 48 ms p50 (docs/performance.md, mixed row).
            await conn.execute(
                "set enable_bitmapscan = off; set enable_seqscan = off;"
                " set synchronous_commit = off"
            )
            # Only the lock holder publishes; a standby polls for the lock.
            while not await conn.fetchval("select pg_try_advisory_lock($1)", RELAY_LOCK_KEY):
                await self._pause(self._poll_interval)
                if self._stopping.is_set():
                    return
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            backoff = 0.2
            while not self._stopping.is_set():
                try:
                    await self._publish_until_broken(conn)
                    backoff = 0.2
                except (asyncpg.PostgresError, asyncpg.InterfaceError):
                    raise  # the database session is gone: start over (run() retries)
                except Exception as exc:
                    # The broker is away (or refused us): keep the rows and our lock, and
                    # try again shortly.
                    log.warning(
                        "RabbitMQ unreachable; events wait in the outbox",
                        extra={"error": str(exc) or type(exc).__name__, "retry_in": backoff},
                    )
                    await self._maintain(conn)
                    await self._pause(backoff)
                    backoff = min(backoff * 2, self._max_backoff)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=5)

    async def _publish_until_broken(self, conn: asyncpg.Connection) -> None:
        """Relays batches over one broker connection until it fails or the relay stops."""
        await amqp.declare_topology(self._amqp_url, connect_timeout=self._connect_timeout)
        # A plain (not robust) connection: reconnecting is this loop's job, and publishes on
        # a dead connection fail at once instead of waiting for a reconnect. Of a cluster,
        # to a node that answers; the one that failed us is tried last next time, so the
        # relay moves to another node and publishes what was not confirmed again there.
        connection = await amqp.connect(self._amqp_url, connect_timeout=self._connect_timeout)
        try:
            channel = await connection.channel(publisher_confirms=True)
            exchanges = {name: await channel.get_exchange(name) for name in self._exchanges}
            log.info("outbox relay publishing", extra={"broker": amqp.connection_node(connection)})
            await self._relay_stream(conn, exchanges)
        except amqp.BROKER_ERRORS:
            amqp.connection_lost(connection)
            raise
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=self._connect_timeout)

    async def _maintain(self, conn: asyncpg.Connection) -> None:
        """The retention clean-up of sent rows (the backlog gauges are sampled by every
        replica in services.common.metrics, not only by the relay holding the lock)."""
        now = time.monotonic()
        if now >= self._next_cleanup:
            self._next_cleanup = now + self._cleanup_interval
            await delete_sent(conn, self._retention)

    async def _relay_stream(
        self, conn: asyncpg.Connection, exchanges: dict[str, aio_pika.abc.AbstractExchange]
    ) -> None:
        """Publishes unsent rows in id order with up to `batch_size` of them unconfirmed at
        a time, continuously: the next rows are read and published while earlier ones wait
        for their confirms (not a batch at a time), and the confirmed prefix is marked
        sent. A publish that fails ends the stream (ConnectionError): it and everything
        after it stay unsent, in order."""
        inflight: deque[tuple[asyncpg.Record, asyncio.Future[object]]] = deque()
        high = 0  # highest id taken this session
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                room = self._batch_size - len(inflight)
                caught_up = True
                if room >= max(self._batch_size // 2, 1):
                    # Ids below the oldest one in flight are rows whose transactions
                    # committed late (another SKU's, so per-SKU order holds); ids above
                    # `high` are new. Each is a range of the outbox_unsent index. Late rows
                    # join the end of `inflight`, so some may be in flight below `low`: they
                    # are left out, or they would be published again before their confirm.
                    low = inflight[0][0]["id"] if inflight else high + 1
                    late = [row["id"] for row, _ in inflight if row["id"] < low]
                    limit = room
                    columns = (
                        "id, event_id, exchange, routing_key, message_type, body, created_at, "
                        "trace_context, " + self._late_fields
                    )
                    rows = await conn.fetch(
                        f"""(select {columns}
                            from outbox where sent_at is null and id < $1
                                              and id <> all($4::bigint[])
                            order by id limit $3)
                           union all
                           (select {columns}
                            from outbox where sent_at is null and id > $2 order by id limit $3)
                           order by id limit $3""",
                        low,
                        high,
                        limit,
                        late,
                    )
                    for row in rows:
                        publish = self._publish(exchanges[row["exchange"]], row)
                        inflight.append((row, asyncio.ensure_future(publish)))
                        high = max(high, row["id"])
                    caught_up = len(rows) < limit
                if not inflight:
                    await self._maintain(conn)
                    await self._sleep(self._poll_interval)
                    continue
                if caught_up:
                    # Everything to hand is out: mark it sent once confirmed, unless new
                    # rows (NOTIFY) come first.
                    await self._until_confirmed_or_woken(inflight[-1][1])
                elif len(inflight) > self._batch_size // 2:
                    # A backlog: mark sent in batches, not per confirm (each mark is a
                    # round trip and a write: 13,813 of them for a 50,000-event backlog).
                    await asyncio.wait([inflight[min(len(inflight), self._mark_batch) - 1][1]])
                else:
                    continue  # room to read and publish more first
                await self._mark_confirmed(conn, inflight)
                await self._maintain(conn)
        finally:
            for _, pending in inflight:
                pending.cancel()

    async def _mark_confirmed(
        self,
        conn: asyncpg.Connection,
        inflight: deque[tuple[asyncpg.Record, asyncio.Future[object]]],
    ) -> None:
        """Marks sent the confirmed prefix of `inflight` (removing it); raises when the
        publish after it failed, so it is retried in order."""
        confirmed: list[asyncpg.Record] = []
        failed: BaseException | None = None
        while inflight and inflight[0][1].done():
            row, publish = inflight[0]
            failed = publish.exception() if not publish.cancelled() else asyncio.CancelledError()
            if failed is not None:
                log.warning(
                    "publish not confirmed; will retry",
                    extra={"event_id": str(row["event_id"]), "error": repr(failed)},
                )
                break
            confirmed.append(row)
            inflight.popleft()
        if confirmed:
            await conn.execute(
                "update outbox set sent_at = clock_timestamp() where id = any($1::bigint[])",
                [row["id"] for row in confirmed],
            )
            for row in confirmed:
                EVENTS_PUBLISHED.labels(row["exchange"], row["routing_key"]).inc()
        if failed is not None:
            raise ConnectionError("broker did not confirm every publish")

    async def _publish(
        self, exchange: aio_pika.abc.AbstractExchange, row: asyncpg.Record
    ) -> object:
        created: datetime = row["created_at"]
        body = bytes(row["body"])
        if row["late_fields"] is not None:
            body = completed_body(row["message_type"], body, row["late_fields"])
        message = amqp_message(row["message_type"], row["event_id"], body, created)
        # In the trace of the call that wrote the row: aio-pika's instrumentation makes the
        # publish span there and sends the context as the message's headers.
        # Not mandatory: an event no queue is bound for is dropped by the broker either way,
        # and having it returned first (the whole message back, parsed here) cost the relay
        # as much CPU again per event — after a drain whose line.reserved nobody subscribes
        # to, 270-330 against 180-200 µs an event (docs/performance.md, Outbox).
        with tracing.continued(row["trace_context"]):
            return await exchange.publish(
                message, row["routing_key"], mandatory=False, timeout=self._publish_timeout
            )

    async def _until_confirmed_or_woken(self, publish: asyncio.Future[object]) -> None:
        woken: asyncio.Future[object] = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait([publish, woken], return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Waits for new rows (NOTIFY), a stop, or `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _pause(self, seconds: float) -> None:
        """Waits `seconds` or for a stop; new rows do not cut it short (a backoff)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


def amqp_message(
    message_type: str, event_id: uuid.UUID, body: bytes, created_at: datetime
) -> aio_pika.Message:
    """An event as it is published: its properties are the contract (docs/spec.md §4,
    docs/asyncapi.yaml)."""
    return aio_pika.Message(
        body=body,
        content_type=CONTENT_TYPE,
        type=message_type,
        message_id=str(event_id),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=created_at.astimezone(UTC),
    )


def completed_body(message_type: str, body: bytes, late_fields: str | None) -> bytes:
    """`body` with `late_fields` set: scalar fields of an event (a JSON object by proto field
    name) known only to the SQL that wrote its outbox row (e.g. a queue position), which
    encodes no protobuf itself. Built here, with the message's own class, as every body is.
    (Set directly: json_format.ParseDict cost 41 us an event, this 7.)"""
    if late_fields is None:
        return body
    descriptor = descriptor_pool.Default().FindMessageTypeByName(message_type)
    message = message_factory.GetMessageClass(descriptor)()
    message.ParseFromString(body)
    for name, value in json.loads(late_fields).items():
        setattr(message, name, value)
    return message.SerializeToString()


async def delete_sent(
    conn: asyncpg.Connection, retention: timedelta, *, chunk: int = 10_000
) -> int:
    """Deletes rows sent more than `retention` ago, in chunks (short transactions)."""
    deleted = 0
    while True:
        status = await conn.execute(
            """delete from outbox where id in (
                   select id from outbox
                   where sent_at is not null and sent_at < clock_timestamp() - $1::interval
                   limit $2)""",
            retention,
            chunk,
        )
        count = int(status.split()[-1])
        deleted += count
        if count < chunk:
            return deleted

"""EventConsumer on the real broker and a real database: what happens to a message whose
handler fails depends on why. Postgres refusing one attempt (serialization failure,
deadlock, lock timeout) is retried in place, without a redelivery; a failure that outlasts
those retries goes back to the queue; a handler that fails otherwise (a bug) sends the
message to the dead-letter queue at its first delivery, and the consumer goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import asyncpg
import pytest
from prometheus_client import REGISTRY

from backorder.inventory.v1 import events_pb2 as inv_events
from services.common import amqp, dead_letters
from services.common.amqp import ALLOCATION_INBOX
from services.common.consumer import EventConsumer, Route
from tests.support.cluster import until
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import Vhost, database_url, drop_database, unique

RECEIVED = inv_events.StockReceived.DESCRIPTOR.full_name
ADJUSTED = inv_events.StockAdjusted.DESCRIPTOR.full_name
ATTEMPTS = 3


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    """A database of its own: a stock counter and the events applied to it."""
    name = unique("bo_test_consumer")
    admin = await asyncpg.connect(database_url("postgres"))
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(database_url(name))
    try:
        await conn.execute(
            """create table stock (sku text primary key, units bigint not null);
               create table applied (event_id uuid primary key, sku text not null)"""
        )
    finally:
        await conn.close()
    yield database_url(name)
    await drop_database(name)


def _consumed(type_name: str, outcome: str) -> int:
    value = REGISTRY.get_sample_value(
        "backorder_events_consumed_total",
        {"queue": ALLOCATION_INBOX.name, "type": type_name, "outcome": outcome},
    )
    return int(value or 0)


@dataclass
class Store:
    """The handler of the test's receipts: adds the units to the SKU's row and records the
    event, once (a redelivery finds its record), in one repeatable-read transaction."""

    pool: asyncpg.Pool
    runs: list[str] = field(default_factory=list)
    # What else happens to the transaction of run n (1, 2, ...), called as it begins.
    meddle: Callable[[asyncpg.Connection, int], Awaitable[None]] | None = None

    async def receive(self, event: inv_events.StockReceived) -> None:
        self.runs.append(event.event_id)
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            if self.meddle is not None:
                await self.meddle(conn, len(self.runs))
            if await conn.fetchval(
                "select 1 from applied where event_id = $1::uuid", event.event_id
            ):
                return
            units = await conn.fetchval("select units from stock where sku = $1", event.sku)
            await conn.execute(
                "update stock set units = $2 where sku = $1", event.sku, units + event.quantity
            )
            await conn.execute(
                "insert into applied (event_id, sku) values ($1::uuid, $2)",
                event.event_id,
                event.sku,
            )


async def _bug(event: inv_events.StockAdjusted) -> None:
    raise KeyError(event.sku)  # what a handler bug looks like from the consumer


@dataclass
class Harness:
    url: str
    store: Store
    feed: InventoryFeed
    conn: asyncpg.Connection  # the test's own

    async def sku(self) -> str:
        sku = unique("SKU")
        await self.conn.execute("insert into stock values ($1, 0)", sku)
        return sku

    async def applied(self, sku: str) -> tuple[int, int]:
        """(units, events applied) of the SKU."""
        row = await self.conn.fetchrow(
            """select units, (select count(*) from applied where sku = $1) as n
               from stock where sku = $1""",
            sku,
        )
        return row["units"], row["n"]

    async def done(self, sku: str) -> bool:
        return (await self.applied(sku))[1] > 0

    async def receipt(self, sku: str, quantity: int) -> str:
        return await self.feed.publish(
            inv_events.StockReceived(sku=sku, quantity=quantity, receipt_id=unique("r"))
        )

    async def dead(self) -> list[str]:
        found = await dead_letters.list_dead_letters(self.url, ALLOCATION_INBOX.dead_letter_queue)
        return [d.message_id for d in found]


@pytest.fixture
async def harness(own_vhost: Vhost, database: str) -> AsyncIterator[Harness]:
    """A consumer of the allocation inbox applying receipts to the test's database (and
    failing on adjustments), and a feed of events into it."""
    # The queue exists before the first publish (a consumer declares it as it starts).
    await amqp.declare_topology(own_vhost.url)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    assert pool is not None
    store = Store(pool)
    consumer = EventConsumer(
        own_vhost.url,
        ALLOCATION_INBOX,
        {
            RECEIVED: Route(inv_events.StockReceived, store.receive),
            ADJUSTED: Route(inv_events.StockAdjusted, _bug),
        },
        retry_pause=0.1,
        attempts=ATTEMPTS,
    )
    task = asyncio.create_task(consumer.run())
    feed = await InventoryFeed(own_vhost.url).open()
    conn = await asyncpg.connect(database)
    try:
        yield Harness(own_vhost.url, store, feed, conn)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 60)
        await conn.close()
        await feed.close()
        await pool.close()


async def test_serialization_failures_are_retried_in_place_not_redelivered(
    harness: Harness,
) -> None:
    h = harness
    sku = await h.sku()

    async def concurrent_change(conn: asyncpg.Connection, run: int) -> None:
        # Twice, another transaction changes the row after ours took its snapshot: Postgres
        # refuses our write (could not serialize access due to concurrent update).
        if run <= 2:
            await conn.fetchval("select units from stock where sku = $1", sku)
            await h.store.pool.execute("update stock set units = units + 100 where sku = $1", sku)

    h.store.meddle = concurrent_change
    returned = _consumed(RECEIVED, "retried")
    event_id = await h.receipt(sku, 3)

    await until(lambda: h.done(sku), 30, "the receipt applied")
    # Every change kept (no lost update), the receipt's once: three runs of one delivery.
    assert await h.applied(sku) == (203, 1)
    assert h.store.runs == [event_id] * 3
    assert _consumed(RECEIVED, "retried") == returned
    assert await h.dead() == []


async def test_a_deadlock_is_retried_in_place(harness: Harness, database: str) -> None:
    h = harness
    sku, other_sku = await h.sku(), await h.sku()
    other = await asyncpg.connect(database)
    # The other transaction waits long before it looks for a deadlock: ours finds it first
    # and is the one Postgres aborts.
    await other.execute("set deadlock_timeout = '10s'")
    pid = await other.fetchval("select pg_backend_pid()")
    other_task: asyncio.Task[None] | None = None

    async def other_transaction() -> None:
        await other.execute("begin")
        await other.execute("select 1 from stock where sku = $1 for update", other_sku)
        await other.execute("update stock set units = units + 100 where sku = $1", sku)
        await other.execute("commit")

    async def waiting_for_a_lock() -> bool:
        state = await h.store.pool.fetchval(
            "select wait_event_type from pg_stat_activity where pid = $1", pid
        )
        return state == "Lock"

    async def deadlock(conn: asyncpg.Connection, run: int) -> None:
        nonlocal other_task
        if run > 1:
            assert other_task is not None
            await other_task  # it got our row once ours was rolled back, and committed
            return
        await conn.execute("set local deadlock_timeout = '50ms'")
        await conn.execute("select 1 from stock where sku = $1 for update", sku)
        # The other holds its row and waits for ours; ours is rolled back only once the
        # error leaves this transaction, so the other finishes on its own.
        other_task = asyncio.create_task(other_transaction())
        await until(waiting_for_a_lock, 10, "the other transaction waiting for our row")
        await conn.execute("select 1 from stock where sku = $1 for update", other_sku)

    h.store.meddle = deadlock
    returned = _consumed(RECEIVED, "retried")
    try:
        event_id = await h.receipt(sku, 3)
        await until(lambda: h.done(sku), 30, "the receipt applied")
    finally:
        await other.close()
    assert await h.applied(sku) == (103, 1)
    assert h.store.runs == [event_id] * 2
    assert _consumed(RECEIVED, "retried") == returned


async def test_a_failure_outlasting_the_retries_goes_back_to_the_queue_then_applies_once(
    harness: Harness, database: str
) -> None:
    h = harness
    sku = await h.sku()
    holder = await asyncpg.connect(database)
    await holder.execute("begin")
    await holder.execute("select 1 from stock where sku = $1 for update", sku)

    async def short_lock_timeout(conn: asyncpg.Connection, _: int) -> None:
        await conn.execute("set local lock_timeout = '20ms'")

    h.store.meddle = short_lock_timeout
    returned = _consumed(RECEIVED, "retried")
    try:
        event_id = await h.receipt(sku, 3)
        # The row stays locked through the retries in place of two deliveries.
        await until(lambda: _consumed(RECEIVED, "retried") >= returned + 2, 30, "two returns")
    finally:
        await holder.execute("rollback")
        await holder.close()
    await until(lambda: h.done(sku), 30, "the receipt applied")
    assert await h.applied(sku) == (3, 1)
    failed = _consumed(RECEIVED, "retried") - returned
    # ATTEMPTS runs for each delivery that failed, at most as many for the one that applied
    # it (the lock may have gone half-way through it).
    assert set(h.store.runs) == {event_id}
    assert ATTEMPTS * failed < len(h.store.runs) <= ATTEMPTS * (failed + 1)
    assert await h.dead() == []


async def test_a_handler_bug_dead_letters_at_the_first_delivery_and_the_consumer_goes_on(
    harness: Harness,
) -> None:
    h = harness
    sku = await h.sku()
    dead_before = _consumed(ADJUSTED, "dead_lettered")
    broken = await h.feed.publish(
        inv_events.StockAdjusted(sku=sku, delta=5, adjustment_id=unique("a"))
    )
    fine = await h.receipt(sku, 2)

    await until(lambda: h.done(sku), 30, "the receipt after it applied")
    assert await h.applied(sku) == (2, 1)
    assert h.store.runs == [fine]

    async def dead_lettered() -> bool:  # moved there in the background (at-least-once)
        return broken in await h.dead()

    await until(dead_lettered, 30, "the event in the dead-letter queue")
    assert _consumed(ADJUSTED, "dead_lettered") == dead_before + 1
    [letter] = [
        d
        for d in await dead_letters.list_dead_letters(h.url, ALLOCATION_INBOX.dead_letter_queue)
        if d.message_id == broken
    ]
    assert (letter.reason, letter.deaths) == ("rejected", 1)


async def test_a_queue_deleted_under_the_consumer_is_declared_again_and_consumed(
    harness: Harness,
) -> None:
    """Deleting the queue (as when an operator recreates it) makes the broker cancel the
    subscription: the consumer declares the queue again and goes on consuming."""
    h = harness
    before = await h.sku()
    await h.receipt(before, 1)
    await until(lambda: h.done(before), 30, "the first receipt applied")

    connection = await aio_pika.connect(h.url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(ALLOCATION_INBOX.name)

    async def declared() -> bool:
        connection = await aio_pika.connect(h.url)
        async with connection:
            channel = await connection.channel()
            try:
                await channel.declare_queue(ALLOCATION_INBOX.name, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                return False
            return True

    await until(declared, 30, "the queue declared again by the consumer")
    after = await h.sku()
    await h.receipt(after, 4)
    await until(lambda: h.done(after), 30, "a receipt published after the deletion applied")
    assert await h.applied(after) == (4, 1)

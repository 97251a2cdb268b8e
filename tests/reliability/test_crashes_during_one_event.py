"""A crash loop around one event: the allocation process is SIGKILLed again and again while
it applies the same receipt, more often than the delivery limit of earlier releases (5)
allowed. RabbitMQ counts each of those returns toward the queue's delivery limit; the
receipt must still be applied, once, and not be dead-lettered."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from services.common import amqp, dead_letters
from services.common.amqp import ALLOCATION_INBOX
from tests.reliability.conftest import Report
from tests.support.books import check_allocation
from tests.support.cluster import Cluster, until
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import unique

# More than the previous release's limit, fewer than this one's: whatever the scale.
CRASHES = 8


async def _applying(conn: asyncpg.Connection, database: str, seen: set[int]) -> bool:
    """Whether a session of the service other than those `seen` waits for a lock: the
    process has the receipt and is applying it (the test holds the SKU's row). Adds it to
    `seen` (the session of a killed process may go on waiting: Postgres notices the
    client is gone only when it next talks to it)."""
    pids = await conn.fetch(
        """select pid from pg_stat_activity
           where datname = $1 and wait_event_type = 'Lock' and not pid = any($2::int[])""",
        database,
        list(seen),
    )
    seen.update(r["pid"] for r in pids)
    return bool(pids)


async def test_a_receipt_survives_more_crashes_while_applied_than_the_old_limit(
    cluster_factory: object, report: Report
) -> None:
    assert amqp.LEGACY_DELIVERY_LIMIT < CRASHES < amqp.DELIVERY_LIMIT
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    [allocation] = await cluster.start("allocation")
    sku, order = unique("CRASH"), unique("o")
    feed = await InventoryFeed(cluster.vhost.url).open()
    conn = await cluster.allocation_conn()
    holder = await cluster.allocation_conn()
    try:
        async with grpc.aio.insecure_channel(allocation.grpc_addr) as channel:
            stub = AllocationServiceStub(channel)
            placed = await stub.Allocate(
                alloc.AllocateRequest(order_id=order, line_id="1", sku=sku, quantity=2)
            )
        assert placed.line.backordered_quantity == 2

        # The SKU's row stays locked: every process that takes the receipt is caught in the
        # middle of applying it (its transaction open, the message unacknowledged).
        await holder.execute("begin")
        await holder.execute("select 1 from sku where sku = $1 for update", sku)
        seen = {await holder.fetchval("select pg_backend_pid()")}
        event_id = await feed.received(sku, 2)
        for _ in range(CRASHES):
            await until(
                lambda: _applying(conn, cluster.allocation_db, seen),
                120,
                "the (restarted) process applying the receipt",
            )
            assert allocation.process is not None
            allocation.process.kill()
            allocation.process.wait()
            await asyncio.to_thread(allocation.start, 120)
        await until(
            lambda: _applying(conn, cluster.allocation_db, seen),
            120,
            "the last process applying the receipt",
        )
        await holder.execute("rollback")

        processed = "select count(*) from processed_event where event_id = $1::uuid"
        await until(lambda: conn.fetchval(processed, event_id), 120, "the receipt applied")
        async with grpc.aio.insecure_channel(allocation.grpc_addr) as channel:
            stub = AllocationServiceStub(channel)
            line = (await stub.GetLine(alloc.GetLineRequest(order_id=order, line_id="1"))).line
        assert (line.reserved_quantity, line.backordered_quantity) == (2, 0)
        assert await conn.fetchval(processed, event_id) == 1
        reservations = await conn.fetch(
            "select cause_event_id from reservation where sku = $1", sku
        )
        assert [str(r["cause_event_id"]) for r in reservations] == [event_id]
        assert (
            await dead_letters.list_dead_letters(
                cluster.vhost.url, ALLOCATION_INBOX.dead_letter_queue
            )
            == []
        )
        checks = await check_allocation(conn) + 5
        report(
            crashes_during_one_event=CRASHES,
            delivery_limit=amqp.DELIVERY_LIMIT,
            dead_lettered=0,
            invariant_checks=checks,
        )
    finally:
        await holder.close()
        await conn.close()
        await feed.close()

"""RabbitMQ nodes SIGKILLed under load (issue 17): the services' AMQP_URL lists the three
nodes of the cluster; the contract queues are quorum queues on all three.

1. The node that leads `allocation.inventory-events` dies in the middle of a drain: receipts
   stream through the inventory service (its outbox relay, the quorum queue) into the
   allocation service, which fills thousands of waiting lines with them.
2. The node the allocation service's outbox relay publishes to dies in the middle of a
   backlog: one receipt filled thousands of lines, whose line.reserved events are going out.

Either way the killed node is restarted once the services moved. Nothing is lost (every
fill has its one reservation and its event reaches a subscriber), every event is applied
once (redeliveries are deduplicated), nothing is dead-lettered, the drain completes, and the
consumers and relays move to another node by themselves.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter

import aio_pika
import asyncpg
import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common import dead_letters
from services.common.amqp import ALLOCATION_EXCHANGE, ALLOCATION_INBOX, CONTRACT_QUEUES
from tests.cluster.conftest import Report, scaled
from tests.support.books import check_allocation, check_inventory, outbox_drained
from tests.support.cluster import Cluster, consumed, until
from tests.support.inventory_feed import InventoryFeed
from tests.support.processes import ServiceProcess
from tests.support.rabbit_cluster import ClusterVhost, RabbitCluster, RabbitNode
from tests.support.servers import unique

CONCURRENCY = 32


class QuorumTap:
    """A subscriber's durable quorum queue bound to allocation.events: it outlives the loss
    of any one node, so it holds every event published while nodes die. Read at the end."""

    def __init__(self, vhost: ClusterVhost, key: str) -> None:
        self.vhost = vhost
        self.key = key
        self.name = unique("tap")
        # Messages the broker gave this reader again (not duplicates published).
        self.redelivered = 0

    async def declare(self, node: RabbitNode) -> None:
        connection = await aio_pika.connect(self.vhost.node_url(node))
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                self.name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(ALLOCATION_EXCHANGE, self.key)

    async def read(
        self, node: RabbitNode, expected: int, timeout: float = 120
    ) -> list[tuple[str, bytes]]:
        """(message_id, body) of every message, duplicates included: until `expected` have
        come and no more arrive for two seconds, or `timeout`."""
        got: list[tuple[str, bytes]] = []
        connection = await aio_pika.connect(self.vhost.node_url(node))
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1000)
            queue = await channel.get_queue(self.name)
            deadline = time.monotonic() + timeout
            async with queue.iterator() as messages:
                while time.monotonic() < deadline:
                    try:
                        message = await asyncio.wait_for(messages.__anext__(), timeout=2)
                    except TimeoutError:
                        if len(got) >= expected:
                            break
                        continue
                    got.append((message.message_id or "", message.body))
                    self.redelivered += bool(message.redelivered)
                    await message.ack()
        return got


def _last_broker(process: ServiceProcess, message: str) -> str | None:
    """The `broker` of the last log line of `process` with `message`."""
    broker = None
    for line in process.log_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("msg") == message and "broker" in record:
            broker = record["broker"]
    return broker


def _count(process: ServiceProcess, message: str) -> int:
    return sum(f'"msg": "{message}"' in line for line in process.log_text().splitlines())


async def _place(
    stub: AllocationServiceStub, specs: list[tuple[str, str, int]], order: str
) -> float:
    """Places single-unit lines (line_id, sku, priority), CONCURRENCY at a time; seconds."""
    todo = list(specs)

    async def client() -> None:
        while todo:
            line_id, sku, priority = todo.pop()
            reply = await stub.Allocate(
                alloc.AllocateRequest(
                    order_id=order, line_id=line_id, sku=sku, quantity=1, priority=priority
                )
            )
            assert reply.line.backordered_quantity == 1

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return time.monotonic() - started


async def _wait_moved(
    process: ServiceProcess, message: str, before: int, killed: RabbitNode
) -> float:
    """Seconds until `process` logs `message` again (after `before` such lines) on another
    node than `killed`."""
    started = time.monotonic()

    def moved() -> bool:
        return _count(process, message) > before and _last_broker(process, message) not in (
            None,
            killed.address,
        )

    await until(moved, 120, f"{process.service}: {message!r} on another node")
    return round(time.monotonic() - started, 2)


async def _subscribed(rabbit: RabbitCluster, vhost: str) -> bool:
    counts = await asyncio.to_thread(rabbit.queue_counts, vhost)
    return all(counts.get(q.name, (0, 0))[1] >= 1 for q in CONTRACT_QUEUES)


async def _one_event_per_reservation(
    conn: asyncpg.Connection, skus: list[str], tapped: list[tuple[str, bytes]]
) -> int:
    """Every reservation row of `skus` has exactly one distinct line.reserved event in
    `tapped`, and nothing else is there; the number of checks."""
    rows = await conn.fetch(
        """select r.id, l.line_id, r.quantity from reservation r join line l on l.id = r.line
           where r.sku = any($1::text[])""",
        skus,
    )
    distinct = {mid: body for mid, body in tapped}
    by_reservation: dict[int, list[str]] = {}
    for mid, body in distinct.items():
        event = alloc_events.LineReserved.FromString(body)
        by_reservation.setdefault(event.reservation_id, []).append(mid)
    assert sorted(by_reservation) == sorted(r["id"] for r in rows)
    assert all(len(ids) == 1 for ids in by_reservation.values())
    return 2


async def test_sigkill_of_the_inbox_queue_leader_mid_drain(
    cluster_factory: object, rabbit_healthy: RabbitCluster, report: Report
) -> None:
    assert callable(cluster_factory)
    rabbit = rabbit_healthy
    cluster: Cluster = await cluster_factory()
    assert isinstance(cluster.vhost, ClusterVhost)
    [inventory] = await cluster.start("inventory")
    [allocation] = await cluster.start("allocation")
    rng = random.Random()
    lines = scaled(10_000, 300)
    skus = [unique("LEAD") for _ in range(10)]
    units_per_receipt = 5
    order = unique("o")
    specs = [(str(n), skus[n % len(skus)], rng.randint(0, 9)) for n in range(lines)]
    conn = await cluster.allocation_conn()
    inv_conn = await cluster.inventory_conn()
    tap = QuorumTap(cluster.vhost, "line.reserved")
    try:
        async with (
            grpc.aio.insecure_channel(allocation.grpc_addr) as alloc_channel,
            grpc.aio.insecure_channel(inventory.grpc_addr) as inv_channel,
        ):
            placing = await _place(AllocationServiceStub(alloc_channel), specs, order)
            await until(lambda: outbox_drained(conn), 180, "placement events published")
            leader_name, _ = await asyncio.to_thread(
                rabbit.quorum_queue, cluster.vhost.name, ALLOCATION_INBOX.name
            )
            leader = rabbit.node_named(leader_name)
            await tap.declare(next(n for n in rabbit.nodes if n is not leader))

            # The receipts (as many units as lines), SKU after SKU in turn, through the
            # inventory service.
            per_sku = Counter(sku for _, sku, _ in specs)
            receipts = [
                (sku, min(units_per_receipt, per_sku[sku] - k * units_per_receipt))
                for k in range(-(-max(per_sku.values()) // units_per_receipt))
                for sku in skus
                if per_sku[sku] > k * units_per_receipt
            ]
            assert sum(units for _, units in receipts) == lines
            inv_stub = InventoryServiceStub(inv_channel)
            todo = list(reversed(receipts))

            async def receive() -> None:
                while todo:
                    sku, units = todo.pop()
                    await inv_stub.ReceiveStock(
                        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=units)
                    )

            filled = "select count(*) from reservation where sku = any($1::text[])"
            # Every process lists the nodes in the same order: the first node, where the
            # queues were declared (their leader: client-local) and where they connected.
            assert _last_broker(allocation, "consuming") == leader.address
            consuming_before = _count(allocation, "consuming")
            relaying = "outbox relay publishing"
            # The relays that publish through the leader's node (and must move).
            relays = [
                (p, _count(p, relaying))
                for p in (inventory, allocation)
                if _last_broker(p, relaying) == leader.address
            ]
            started = time.monotonic()
            receiving = asyncio.gather(*(receive() for _ in range(8)))
            # The kill: once a quarter of the lines are filled, three quarters to go.
            while await conn.fetchval(filled, skus) < lines // 4:
                assert time.monotonic() - started < 300, "the drain never got a quarter done"
                await asyncio.sleep(0.01)
            filled_at_kill = await conn.fetchval(filled, skus)
            await asyncio.to_thread(rabbit.kill, leader)
            killed_at = time.monotonic()
            # The kill landed mid-drain.
            assert filled_at_kill < lines

            # Consumers and relays connected to it move by themselves; the queue elects a
            # leader among the other two.
            moved = await _wait_moved(allocation, "consuming", consuming_before, leader)
            # A relay notices the lost connection when it next publishes: the inventory
            # relay may have published every receipt already. One more, of another SKU,
            # gives it something to publish.
            await inv_stub.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=unique("r"), sku=unique("AFTER"), quantity=1)
            )
            relays_moved = {
                p.service: await _wait_moved(p, relaying, before, leader) for p, before in relays
            }
            new_leader, _ = await asyncio.to_thread(
                rabbit.quorum_queue, cluster.vhost.name, ALLOCATION_INBOX.name
            )
            assert new_leader != leader.name
            filled_while_down = await conn.fetchval(filled, skus) - filled_at_kill
            await asyncio.to_thread(rabbit.restart, leader)
            down_for = time.monotonic() - killed_at
            await receiving

            # The drain completes: every line filled, once.
            await until(lambda: _all_filled(conn, skus, lines), 300, "every line filled")
            drained = time.monotonic() - started
            await until(lambda: outbox_drained(inv_conn), 180, "inventory events published")
            await until(lambda: outbox_drained(conn), 180, "allocation events published")

        applied_once = "select count(*) from processed_event"
        await until(
            lambda: _at_least(conn, applied_once, len(receipts) + 1), 120, "every receipt applied"
        )
        assert await conn.fetchval(applied_once) == len(receipts) + 1  # each applied once
        assert await conn.fetchval("select count(*) from held_stock_event") == 0
        free = await conn.fetchval(
            "select coalesce(sum(free_units), 0) from sku where sku = any($1::text[])", skus
        )
        assert free == 0
        tapped = await tap.read(rabbit.nodes[0], lines)
        checks = await _one_event_per_reservation(conn, skus, tapped)
        assert (
            await dead_letters.list_dead_letters(
                cluster.vhost.url, ALLOCATION_INBOX.dead_letter_queue
            )
            == []
        )
        await until(lambda: _subscribed(rabbit, cluster.vhost.name), 60, "consumers on both queues")
        checks += await check_allocation(conn) + await check_inventory(inv_conn) + 5
        applied = await asyncio.to_thread(consumed, [allocation], "applied")
        report(
            lines=lines,
            receipts=len(receipts),
            placing_seconds=round(placing, 1),
            drain_seconds=round(drained, 1),
            killed=leader.name,
            new_leader=new_leader,
            filled_before_kill=filled_at_kill,
            filled_while_node_down=filled_while_down,
            consumer_moved_seconds=moved,
            relays_moved_seconds=relays_moved,
            node_down_seconds=round(down_for, 1),
            receipts_redelivered=applied - len(receipts) - 1,
            line_reserved_delivered=len(tapped),
            line_reserved_duplicates=len(tapped) - len({m for m, _ in tapped}),
            tap_redelivered=tap.redelivered,
            dead_lettered=0,
            invariant_checks=checks,
        )
    finally:
        await conn.close()
        await inv_conn.close()


async def _at_least(conn: asyncpg.Connection, query: str, count: int) -> bool:
    return bool(await conn.fetchval(query) >= count)


async def _all_filled(conn: asyncpg.Connection, skus: list[str], lines: int) -> bool:
    return (
        await conn.fetchval(
            "select count(*) from line where sku = any($1::text[]) and reserved = quantity", skus
        )
        == lines
    )


async def test_sigkill_of_the_node_the_outbox_relay_publishes_to_mid_backlog(
    cluster_factory: object, rabbit_healthy: RabbitCluster, report: Report
) -> None:
    assert callable(cluster_factory)
    rabbit = rabbit_healthy
    cluster: Cluster = await cluster_factory()
    assert isinstance(cluster.vhost, ClusterVhost)
    # The inventory service declares the queues through the first node (their leaders);
    # the allocation service lists the nodes the other way round: its relay publishes to
    # another node than the one leading the queues.
    await cluster.start("inventory")
    reverse = ",".join(reversed(cluster.vhost.url.split(",")))
    [allocation] = await cluster.start("allocation", env={"AMQP_URL": reverse})
    # Enough for the backlog to take a few seconds to publish (thousands a second).
    lines = scaled(8_000, 300)
    sku, order = unique("RELAY"), unique("o")
    conn = await cluster.allocation_conn()
    tap = QuorumTap(cluster.vhost, "line.reserved")
    feed: InventoryFeed | None = None
    try:
        async with grpc.aio.insecure_channel(allocation.grpc_addr) as channel:
            placing = await _place(
                AllocationServiceStub(channel),
                [(str(n), sku, n % 10) for n in range(lines)],
                order,
            )
        await until(lambda: outbox_drained(conn), 180, "placement events published")
        await until(lambda: _last_broker(allocation, "outbox relay publishing"), 60, "relay up")
        publishing_to = rabbit.node_at(str(_last_broker(allocation, "outbox relay publishing")))
        survivor = next(n for n in rabbit.nodes if n is not publishing_to)
        await tap.declare(survivor)
        feed = await InventoryFeed(cluster.vhost.node_url(survivor)).open()

        relay_lines_before = _count(allocation, "outbox relay publishing")
        unsent = "select count(*) from outbox where sent_at is null"
        event_id = await feed.received(sku, lines)
        started = time.monotonic()
        # The fill commits `lines` outbox rows at once; kill when a fifth of them went out.
        while True:
            pending = await conn.fetchval(unsent)
            if 0 < pending <= lines * 4 // 5:
                break
            assert time.monotonic() - started < 120, "the backlog never started going out"
            await asyncio.sleep(0.005)
        await asyncio.to_thread(rabbit.kill, publishing_to)
        killed_at = time.monotonic()
        pending_at_kill = await conn.fetchval(unsent)
        assert pending_at_kill > 0, "the kill landed after the backlog went out"

        moved = await _wait_moved(
            allocation, "outbox relay publishing", relay_lines_before, publishing_to
        )
        await asyncio.to_thread(rabbit.restart, publishing_to)
        down_for = time.monotonic() - killed_at
        await until(lambda: outbox_drained(conn), 180, "the backlog published")
        drained = time.monotonic() - started

        processed = "select count(*) from processed_event where event_id = $1::uuid"
        assert await conn.fetchval(processed, event_id) == 1
        assert await _all_filled(conn, [sku], lines)
        tapped = await tap.read(survivor, lines)
        checks = await _one_event_per_reservation(conn, [sku], tapped)
        assert (
            await dead_letters.list_dead_letters(
                cluster.vhost.url, ALLOCATION_INBOX.dead_letter_queue
            )
            == []
        )
        await until(lambda: _subscribed(rabbit, cluster.vhost.name), 60, "consumers on both queues")
        checks += await check_allocation(conn) + 4
        duplicates = Counter(m for m, _ in tapped)
        report(
            lines=lines,
            placing_seconds=round(placing, 1),
            backlog_seconds=round(drained, 1),
            killed=publishing_to.name,
            events_unsent_at_kill=pending_at_kill,
            relay_moved_seconds=moved,
            node_down_seconds=round(down_for, 1),
            line_reserved_delivered=len(tapped),
            line_reserved_duplicates=sum(n - 1 for n in duplicates.values()),
            tap_redelivered=tap.redelivered,
            dead_lettered=0,
            invariant_checks=checks,
        )
    finally:
        await conn.close()
        if feed is not None:
            await feed.close()

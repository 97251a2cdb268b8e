"""Ship-complete orders on two allocation replicas (issue 14): orders whose SKUs overlap,
placed over both replicas, while receipts and negative adjustments of those SKUs arrive
through RabbitMQ and are consumed by both replicas at once. Each completion step locks an
order's SKUs in sorted order; shrinkage returning an order to waiting locks them out of
order, where Postgres deadlock detection and the consumer's retry are the safety net.

Afterwards, checked from the database: no SKU promised more than it has (free never
negative, free + reserved = what arrived minus what shrinkage applied), every ship-complete
order either holds every line in full or holds nothing (tests/support/books.py), and the
other bookkeeping invariants hold."""

from __future__ import annotations

import asyncio
import random

import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.reliability.conftest import Report, scaled
from tests.support.books import check_allocation, outbox_drained
from tests.support.cluster import Cluster, until
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import unique

SKUS = 6
ORDERS = 40


async def test_ship_complete_orders_on_two_replicas_are_whole_or_empty(
    cluster_factory: object, report: Report, seed: int
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    replicas = await cluster.start("allocation", 2)
    channels = [grpc.aio.insecure_channel(p.grpc_addr) for p in replicas]
    stubs = [AllocationServiceStub(c) for c in channels]
    feed = await InventoryFeed(cluster.vhost.url).open()
    rng = random.Random(seed)
    skus = [unique(f"SC{n}") for n in range(SKUS)]
    orders = scaled(ORDERS, 10)
    received = dict.fromkeys(skus, 0)
    shrunk = dict.fromkeys(skus, 0)
    try:

        async def place(n: int) -> None:
            chosen = rng.sample(skus, rng.randint(2, 3))
            await stubs[n % 2].AllocateOrder(
                alloc.AllocateOrderRequest(
                    order_id=f"sc-{n}",
                    priority=rng.randint(0, 2),
                    ship_complete=True,
                    lines=[
                        alloc.OrderLineRequest(line_id=sku, sku=sku, quantity=rng.randint(1, 4))
                        for sku in sorted(chosen)
                    ],
                ),
                timeout=30,
            )
            if n % 4 == 0:  # plain lines compete for the same SKUs
                await stubs[(n + 1) % 2].Allocate(
                    alloc.AllocateRequest(
                        order_id=f"plain-{n}",
                        line_id="1",
                        sku=rng.choice(skus),
                        quantity=rng.randint(1, 3),
                    ),
                    timeout=30,
                )

        async def supply() -> None:
            for _ in range(orders * 2):
                sku = rng.choice(skus)
                if rng.random() < 0.2 and received[sku] - shrunk[sku] > 2:
                    shrunk[sku] += 2
                    await feed.adjusted(sku, -2)
                else:
                    units = rng.randint(1, 4)
                    received[sku] += units
                    await feed.received(sku, units)
                await asyncio.sleep(0.005)

        placing = asyncio.gather(*(place(n) for n in range(orders)))
        await asyncio.gather(placing, supply())

        conn = await cluster.allocation_conn()
        try:

            async def settled() -> bool:
                rows = await conn.fetch(
                    """select sku, free_units + reserved_units - unmatched_shrinkage_units
                           as held from sku where sku = any($1::text[])""",
                    skus,
                )
                held = {r["sku"]: r["held"] for r in rows}
                # Shrinkage that found no units is counted as unmatched, not applied.
                return all(
                    held.get(s, 0) == received[s] - shrunk[s] for s in skus
                ) and await outbox_drained(conn)

            await until(settled, 120, "every receipt and adjustment applied")
            checks = await check_allocation(conn)
            # No oversell at any location: free never negative (the column's check), and
            # what is promised never exceeds what is there.
            oversold = await conn.fetch(
                "select * from sku_location where free_units < 0 or reserved_units < 0"
            )
            assert not oversold
            states = await conn.fetch(
                """select o.order_id, bool_and(l.backordered = 0) as whole,
                          bool_and(l.reserved = 0) as empty
                   from customer_order o join line l using (order_id) group by o.order_id"""
            )
            assert len(states) == orders
            complete = sum(1 for s in states if s["whole"])
            assert all(s["whole"] or s["empty"] for s in states)
            assert complete > 0, "no order ever completed"
        finally:
            await conn.close()
        report(orders=orders, completed=complete, checks=checks)
    finally:
        await feed.close()
        for channel in channels:
            await channel.close()

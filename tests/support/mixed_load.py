"""Mixed load for fault tests: clients placing lines, receiving stock and reading both
through a deployment's services while a test breaks something, and the check afterwards
that every call answered OK was applied once and the books balance."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common import dead_letters
from services.common.amqp import ALLOCATION_INBOX, INVENTORY_INBOX
from tests.support.books import check_allocation, check_inventory, outbox_drained
from tests.support.cluster import AllocationEventTap, Cluster, until
from tests.support.servers import unique

DEADLINE = 5.0


@dataclass
class Load:
    """Clients placing lines, receiving stock and reading both back; what each call
    answered."""

    allocation: AllocationServiceStub
    inventory: InventoryServiceStub
    skus: list[str]
    codes: Counter[str] = field(default_factory=Counter)
    placed: dict[str, str] = field(default_factory=dict)  # line_id -> sku, OK
    receipts: dict[str, tuple[str, int]] = field(default_factory=dict)  # OK
    unavailable: list[Callable[[], Awaitable[object]]] = field(default_factory=list)
    slowest: float = 0.0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    n: int = 0

    async def _call(self, name: str, call: Callable[[], Awaitable[object]]) -> bool:
        started = time.monotonic()
        try:
            await call()
            self.codes[f"{name} OK"] += 1
            return True
        except grpc.aio.AioRpcError as error:
            self.codes[f"{name} {error.code().name}"] += 1
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                self.unavailable.append(call)
            await asyncio.sleep(0.1)
            return False
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)

    def _allocate_call(self, request: alloc.AllocateRequest) -> Callable[[], Awaitable[object]]:
        return lambda: self.allocation.Allocate(request, timeout=DEADLINE)

    def _receive_call(self, request: inv.ReceiveStockRequest) -> Callable[[], Awaitable[object]]:
        return lambda: self.inventory.ReceiveStock(request, timeout=DEADLINE)

    async def allocating(self) -> None:
        rng = random.Random()
        while not self.stopping.is_set():
            self.n += 1
            line_id, sku = f"l{self.n}", rng.choice(self.skus)
            request = alloc.AllocateRequest(
                order_id="o", line_id=line_id, sku=sku, quantity=rng.randint(1, 3)
            )
            if await self._call("Allocate", self._allocate_call(request)):
                self.placed[line_id] = sku
            await asyncio.sleep(0.02)

    async def receiving(self) -> None:
        rng = random.Random()
        while not self.stopping.is_set():
            self.n += 1
            receipt_id, sku, units = f"r{self.n}", rng.choice(self.skus), rng.randint(1, 4)
            request = inv.ReceiveStockRequest(receipt_id=receipt_id, sku=sku, quantity=units)
            if await self._call("ReceiveStock", self._receive_call(request)):
                self.receipts[receipt_id] = (sku, units)
            await asyncio.sleep(0.02)

    async def reading(self) -> None:
        """Reads what was acknowledged: a placed line (GetLine) and a received SKU's stock
        (GetStock), each answered by a plain read on the pool, outside any transaction."""
        rng = random.Random()
        while not self.stopping.is_set():
            if not self.placed or not self.receipts:
                await asyncio.sleep(0.02)
                continue
            line_id = rng.choice(list(self.placed))
            get_line = alloc.GetLineRequest(order_id="o", line_id=line_id)
            await self._call(
                "GetLine", partial(self.allocation.GetLine, get_line, timeout=DEADLINE)
            )
            sku, _ = rng.choice(list(self.receipts.values()))
            get_stock = inv.GetStockRequest(sku=sku)
            await self._call(
                "GetStock", partial(self.inventory.GetStock, get_stock, timeout=DEADLINE)
            )
            await asyncio.sleep(0.02)

    async def run_through(self, outage: Callable[[], Awaitable[None]]) -> None:
        clients = [asyncio.create_task(self.allocating()) for _ in range(8)]
        clients += [asyncio.create_task(self.receiving()) for _ in range(4)]
        clients += [asyncio.create_task(self.reading()) for _ in range(2)]
        try:
            await outage()
        finally:
            self.stopping.set()
            await asyncio.gather(*clients)


async def settle_and_check(cluster: Cluster, load: Load, tap: AllocationEventTap) -> int:
    """Everything delivered and applied once; the books add up. Returns checks passed."""
    a_conn, i_conn = await cluster.allocation_conn(), await cluster.inventory_conn()
    try:
        receipts = await i_conn.fetch("select key from movement where kind = 'RECEIPT'")
        # Calls answered OK are durable; UNAVAILABLE ones may or may not have committed
        # (the client cannot know: it retries with the same key, below).
        assert set(load.receipts) <= {r["key"] for r in receipts}
        lines = {r["line_id"] for r in await a_conn.fetch("select line_id from line")}
        assert set(load.placed) <= lines
        await until(lambda: outbox_drained(i_conn), 120, "inventory outbox published")
        applied = "select count(*) from processed_event"
        await until(
            lambda: a_conn.fetchval(f"{applied} where routing_key = 'stock.received'"),
            120,
            "receipts applied",
        )
        expected_events = len(receipts)

        async def all_applied() -> bool:
            count = await a_conn.fetchval(f"{applied} where routing_key = 'stock.received'")
            return bool(count == expected_events)

        await until(all_applied, 120, "every receipt applied once")
        await until(lambda: outbox_drained(a_conn), 120, "allocation outbox published")
        fills = await a_conn.fetchval("select count(*) from reservation where rule <> 'REVOKED'")
        await until(
            lambda: len(tap.distinct("line.reserved")) >= fills, 120, "line.reserved delivered"
        )
        assert len(tap.distinct("line.reserved")) == fills
        units = await i_conn.fetch(
            """select sku, sum(quantity) as units from movement where kind = 'RECEIPT'
               group by sku"""
        )
        totals = await a_conn.fetch(
            "select sku, free_units + reserved_units + fulfilled_units as units from sku"
        )
        assert {r["sku"]: r["units"] for r in totals if r["units"]} == {
            r["sku"]: r["units"] for r in units
        }
        for queue in (ALLOCATION_INBOX, INVENTORY_INBOX):
            assert (
                await dead_letters.list_dead_letters(cluster.vhost.url, queue.dead_letter_queue)
                == []
            )
        return await check_allocation(a_conn) + await check_inventory(i_conn) + 8
    finally:
        await a_conn.close()
        await i_conn.close()


async def start_load(cluster: Cluster) -> tuple[Load, grpc.aio.Channel, grpc.aio.Channel]:
    [inventory], [allocation] = await asyncio.gather(
        cluster.start("inventory"), cluster.start("allocation")
    )
    a_channel = grpc.aio.insecure_channel(allocation.grpc_addr)
    i_channel = grpc.aio.insecure_channel(inventory.grpc_addr)
    load = Load(
        AllocationServiceStub(a_channel),
        InventoryServiceStub(i_channel),
        [unique("OUT") for _ in range(10)],
    )
    return load, a_channel, i_channel

"""Graceful shutdown (issue 5, scenario 6): SIGTERM under load. Calls in flight complete (a
client sees OK, or UNAVAILABLE for a call the stopping server did not take), the process
exits 0, and no event is acked before its transaction committed: after a restart every
receipt is applied exactly once."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter

import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common import dead_letters
from services.common.amqp import ALLOCATION_INBOX
from tests.reliability.conftest import Report, scaled
from tests.support.books import check_allocation, check_inventory, outbox_drained
from tests.support.cluster import Cluster, until
from tests.support.processes import ServiceProcess
from tests.support.servers import unique

# CANCELLED: grpc-core fails calls that reached the server but no handler yet when the
# server shuts down with CANCELLED, not UNAVAILABLE; such a call must have written nothing.
ALLOWED = {"OK", "UNAVAILABLE", "CANCELLED"}


async def _stop_under_load(process: ServiceProcess, load_seconds: float) -> int:
    """Lets the load run, sends SIGTERM, waits for the exit; the exit code."""
    await asyncio.sleep(load_seconds)
    assert process.process is not None
    process.process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(process.process.wait, 60)


async def test_sigterm_under_load_finishes_in_flight_work_and_exits_0(
    cluster_factory: object, report: Report
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    [inventory], [allocation] = await asyncio.gather(
        cluster.start("inventory"), cluster.start("allocation")
    )
    skus = [unique("TERM") for _ in range(10)]
    rng = random.Random()
    codes: dict[str, Counter[str]] = {"Allocate": Counter(), "ReceiveStock": Counter()}
    placed: set[str] = set()
    not_taken: set[str] = set()  # keys of calls that came back CANCELLED
    receipts: dict[str, tuple[str, int]] = {}  # receipt_id -> (sku, units), OK ones
    stop_allocations = asyncio.Event()
    stop_receipts = asyncio.Event()
    n = 0

    async def allocating(stub: AllocationServiceStub) -> None:
        nonlocal n
        while not stop_allocations.is_set():
            n += 1
            line_id = f"l{n}"
            try:
                await stub.Allocate(
                    alloc.AllocateRequest(
                        order_id="o", line_id=line_id, sku=rng.choice(skus), quantity=1
                    ),
                    timeout=30,
                )
                codes["Allocate"]["OK"] += 1
                placed.add(line_id)
            except grpc.aio.AioRpcError as error:
                codes["Allocate"][error.code().name] += 1
                if error.code() == grpc.StatusCode.CANCELLED:
                    not_taken.add(line_id)
                await asyncio.sleep(0.05)

    async def receiving(stub: InventoryServiceStub) -> None:
        nonlocal n
        while not stop_receipts.is_set():
            n += 1
            receipt_id, sku, units = f"r{n}", rng.choice(skus), rng.randint(1, 3)
            try:
                await stub.ReceiveStock(
                    inv.ReceiveStockRequest(receipt_id=receipt_id, sku=sku, quantity=units),
                    timeout=30,
                )
                codes["ReceiveStock"]["OK"] += 1
                receipts[receipt_id] = (sku, units)
            except grpc.aio.AioRpcError as error:
                codes["ReceiveStock"][error.code().name] += 1
                if error.code() == grpc.StatusCode.CANCELLED:
                    not_taken.add(receipt_id)
                await asyncio.sleep(0.05)

    load = scaled(3, 1)
    async with (
        grpc.aio.insecure_channel(allocation.grpc_addr) as a_channel,
        grpc.aio.insecure_channel(inventory.grpc_addr) as i_channel,
    ):
        a_stub, i_stub = AllocationServiceStub(a_channel), InventoryServiceStub(i_channel)
        clients = [asyncio.create_task(allocating(a_stub)) for _ in range(32)]
        clients += [asyncio.create_task(receiving(i_stub)) for _ in range(16)]
        # The allocation process stops while it takes Allocate calls and applies receipts.
        allocation_exit = await _stop_under_load(allocation, load)
        stop_allocations.set()
        # Then the inventory process, while it takes receipts.
        inventory_exit = await _stop_under_load(inventory, 1)
        stop_receipts.set()
        await asyncio.gather(*clients)
    assert (allocation_exit, inventory_exit) == (0, 0), cluster.log_tails()
    for method, seen in codes.items():
        assert set(seen) <= ALLOWED, f"{method}: {dict(seen)}"
        assert seen["OK"] > 0

    # Restarted, both finish what was committed: every OK receipt applied exactly once.
    await asyncio.gather(
        asyncio.to_thread(allocation.start, 120), asyncio.to_thread(inventory.start, 120)
    )
    a_conn, i_conn = await cluster.allocation_conn(), await cluster.inventory_conn()
    try:
        assert {
            r["key"] for r in await i_conn.fetch("select key from movement where kind = 'RECEIPT'")
        } == set(receipts)
        assert {r["line_id"] for r in await a_conn.fetch("select line_id from line")} == placed
        # (So calls that came back CANCELLED or UNAVAILABLE wrote nothing.)
        await until(lambda: outbox_drained(i_conn), 120, "inventory events published")
        await until(
            lambda: a_conn.fetchval("select count(*) = $1 from processed_event", len(receipts)),
            120,
            "every receipt applied",
        )
        received: Counter[str] = Counter()
        for sku, units in receipts.values():
            received[sku] += units
        totals = await a_conn.fetch(
            "select sku, free_units + reserved_units + fulfilled_units as units from sku"
        )
        assert {r["sku"]: r["units"] for r in totals if r["units"]} == dict(received)
        assert (
            await dead_letters.list_dead_letters(
                cluster.vhost.url, ALLOCATION_INBOX.dead_letter_queue
            )
            == []
        )
        checks = await check_allocation(a_conn) + await check_inventory(i_conn) + 6
    finally:
        await a_conn.close()
        await i_conn.close()
    report(
        allocate_calls={k: v for k, v in codes["Allocate"].items()},
        receive_calls={k: v for k, v in codes["ReceiveStock"].items()},
        sigterms=2,
        cancelled_at_stop_nothing_written=len(not_taken),
        exit_codes=[allocation_exit, inventory_exit],
        receipts_applied_once=len(receipts),
        invariant_checks=checks,
    )

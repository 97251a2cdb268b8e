"""The broker refuses the services while they run (issue 11, item 4): an operator revokes
their permissions, or deletes the vhost and creates it again. With the real RabbitMQ
(`rabbitmqctl`) and both services as processes: they keep serving (RPCs that need the broker
answer UNAVAILABLE saying what is wrong; the others are unaffected), no worker takes its
process down, and once the broker takes them again every event goes out and is applied."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from backorder.operations.v1 import dead_letters_pb2 as dl
from backorder.operations.v1.dead_letters_pb2_grpc import DeadLetterServiceStub
from tests.reliability.conftest import Report
from tests.support.books import check_allocation, check_inventory, outbox_drained
from tests.support.cluster import Cluster, until
from tests.support.processes import ServiceProcess
from tests.support.servers import unique

# Long enough for every worker to meet the refusal a few times (reconnect backoff, the
# 5-second metrics tick) before the broker takes the services again.
REFUSED_SECONDS = 8.0


def rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None, "these tests drive the real broker with rabbitmqctl"
    subprocess.run([ctl, "-q", *args], check=True, timeout=60)


def revoke(cluster: Cluster) -> None:
    rabbitmqctl("clear_permissions", "-p", cluster.vhost.name, "guest")
    # Permissions are checked when a connection opens the vhost: make the services open
    # theirs again, as they would after any network blip.
    rabbitmqctl("close_all_connections", "-p", cluster.vhost.name, "permissions revoked")


def restore(cluster: Cluster) -> None:
    rabbitmqctl("set_permissions", "-p", cluster.vhost.name, "guest", ".*", ".*", ".*")


def delete_vhost(cluster: Cluster) -> None:
    rabbitmqctl("delete_vhost", cluster.vhost.name)


def recreate_vhost(cluster: Cluster) -> None:
    cluster.vhost.create()


async def refused_round(
    cluster: Cluster,
    processes: list[ServiceProcess],
    allocation: AllocationServiceStub,
    inventory: InventoryServiceStub,
    letters: list[DeadLetterServiceStub],
    fault: tuple[object, object],
) -> dict[str, object]:
    """A line waits; the broker starts refusing; stock for it is received meanwhile; the
    broker takes the services again: the line gets reserved."""
    refuse, take_again = fault
    assert callable(refuse) and callable(take_again)
    sku, order = unique("REFUSED"), unique("o")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="1", sku=sku, quantity=2), timeout=10
    )
    await asyncio.to_thread(refuse, cluster)
    refused_at = time.monotonic()
    try:
        # RPCs that need no broker are served, and commit their events to the outbox.
        await inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=2), timeout=10
        )
        # RPCs that need it say so, with a reason a person can act on.
        for stub in letters:
            try:
                await stub.ListDeadLetters(dl.ListDeadLettersRequest(), timeout=15)
                raise AssertionError("ListDeadLetters served while the broker refuses us")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error)
                assert "refused user 'guest'" in (error.details() or ""), error.details()
        await asyncio.sleep(max(0.0, REFUSED_SECONDS - (time.monotonic() - refused_at)))
        for process in processes:
            assert process.process is not None and process.process.poll() is None, (
                f"{process.log_path.name} exited:\n{process.log_tail()}"
            )
            async with grpc.aio.insecure_channel(process.grpc_addr) as channel:
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await asyncio.to_thread(take_again, cluster)
    back_at = time.monotonic()

    async def reserved() -> bool:
        reply = await allocation.GetLine(
            alloc.GetLineRequest(order_id=order, line_id="1"), timeout=5
        )
        return reply.line.status == events_pb2.LINE_STATUS_RESERVED

    await until(reserved, 60, "the receipt made while refused reserves the waiting line")
    for stub in letters:
        await stub.ListDeadLetters(dl.ListDeadLettersRequest(), timeout=15)
    return {"recovered_seconds": round(time.monotonic() - back_at, 1)}


async def test_services_ride_out_a_refusing_broker(cluster_factory: object, report: Report) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    processes = [*await cluster.start("inventory"), *await cluster.start("allocation")]
    channels = [grpc.aio.insecure_channel(p.grpc_addr) for p in processes]
    inventory = InventoryServiceStub(channels[0])
    allocation = AllocationServiceStub(channels[1])
    letters = [DeadLetterServiceStub(c) for c in channels]
    figures: dict[str, object] = {}
    try:
        for name, fault in (
            ("permissions_revoked", (revoke, restore)),
            ("vhost_deleted", (delete_vhost, recreate_vhost)),
        ):
            round_figures = await refused_round(
                cluster, processes, allocation, inventory, letters, fault
            )
            figures[name] = round_figures
        inventory_conn = await cluster.inventory_conn()
        allocation_conn = await cluster.allocation_conn()
        try:
            await until(lambda: outbox_drained(inventory_conn), 30, "inventory outbox drained")
            await until(lambda: outbox_drained(allocation_conn), 30, "allocation outbox drained")
            checks = await check_inventory(inventory_conn) + await check_allocation(allocation_conn)
        finally:
            await inventory_conn.close()
            await allocation_conn.close()
        codes = await cluster.stop()
        assert set(codes.values()) == {0}, (codes, cluster.log_tails())
        logs = [json.loads(line) for p in processes for line in p.log_text().splitlines()]
        assert not any("background worker failed" in entry["msg"] for entry in logs)
        # Broker trouble is expected, not a bug: our code logs it without a traceback
        # (aiormq logs its own, for a connection the broker closed).
        ours = [e for e in logs if e["logger"].startswith("services.") and "exc" in e]
        assert not ours, ours
    finally:
        for channel in channels:
            await channel.close()
        await cluster.destroy()
    report(**figures, refused_seconds=REFUSED_SECONDS, invariant_checks=checks)

"""The client waits as long as the server asks (RetryInfo, AIP-193) before trying again: a
client with a short backoff still rides out a database outage, because the service answers
it with UNAVAILABLE and a 1 s RetryInfo."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from backorder.client import BackorderClient, RetryPolicy, blocking_channel
from backorder.client.calls import server_retry_delay
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.support.cluster import Cluster
from tests.support.proxy import TcpProxy
from tests.support.servers import unique

# Five tries 10-20 ms apart: all of them inside an outage of a second, on their own.
HASTY = RetryPolicy(attempts=5, initial_backoff=0.02, max_backoff=0.02)
OUTAGE_SECONDS = 1.5


@pytest.fixture
async def behind_a_database_proxy(tmp_path: Path) -> AsyncIterator[tuple[TcpProxy, str]]:
    """An inventory service whose database connections pass through a proxy that can cut
    them: the proxy, and the service's gRPC address."""
    cluster = await Cluster.create(tmp_path, proxy_database=True)
    try:
        await cluster.start("inventory")
        assert cluster.database_proxy is not None
        yield cluster.database_proxy, cluster.processes[0].grpc_addr
    finally:
        await cluster.stop()
        await cluster.destroy()


async def test_a_database_outage_is_ridden_out_at_the_pace_the_server_asks(
    behind_a_database_proxy: tuple[TcpProxy, str],
) -> None:
    proxy, addr = behind_a_database_proxy
    sku, receipt = unique("RETRY-INFO"), unique("rcpt")
    request = inv.ReceiveStockRequest(receipt_id=receipt, sku=sku, quantity=4)
    async with (
        BackorderClient(inventory_addr=addr, retry=HASTY, timeout=30) as client,
        BackorderClient(inventory_addr=addr, retry=RetryPolicy(attempts=1)) as once,
    ):
        await client.inventory.ListLocations(inv.ListLocationsRequest())  # connected
        await proxy.cut()
        restore: asyncio.Task[None] | None = None
        try:
            # What the service answers meanwhile: UNAVAILABLE, asking for a 1 s wait.
            with pytest.raises(grpc.aio.AioRpcError) as down:
                await once.inventory.ReceiveStock(request)
            assert down.value.code() == grpc.StatusCode.UNAVAILABLE
            assert server_retry_delay(down.value.trailing_metadata()) == 1.0
            cut_at = time.monotonic()
            restore = asyncio.create_task(_restore_after(proxy, OUTAGE_SECONDS))
            reply = await client.inventory.ReceiveStock(request)
            took = time.monotonic() - cut_at
        finally:
            await (restore if restore is not None else proxy.restore())
        stock = (await client.inventory.GetStock(inv.GetStockRequest(sku=sku))).stock
    # Five tries at its own pace would all have failed within about 0.1 s; at the server's,
    # a later try found the database back, and the receipt was applied once.
    assert took >= OUTAGE_SECONDS
    assert reply.stock.on_hand == 4 and stock.on_hand == 4


async def test_the_blocking_channel_waits_as_long_as_the_server_asks_too(
    behind_a_database_proxy: tuple[TcpProxy, str],
) -> None:
    proxy, addr = behind_a_database_proxy
    sku, receipt = unique("RETRY-INFO-SYNC"), unique("rcpt")
    request = inv.ReceiveStockRequest(receipt_id=receipt, sku=sku, quantity=3)
    with blocking_channel(addr, retry=HASTY, timeout=30) as channel:
        stub = InventoryServiceStub(channel)
        # Blocking calls run in a thread: the database proxy runs on this loop.
        await asyncio.to_thread(stub.ListLocations, inv.ListLocationsRequest())  # connected
        await proxy.cut()
        restore = asyncio.create_task(_restore_after(proxy, OUTAGE_SECONDS))
        try:
            cut_at = time.monotonic()
            reply = await asyncio.to_thread(stub.ReceiveStock, request)
            took = time.monotonic() - cut_at
        finally:
            await restore
        stock = (await asyncio.to_thread(stub.GetStock, inv.GetStockRequest(sku=sku))).stock
    assert took >= OUTAGE_SECONDS
    assert reply.stock.on_hand == 3 and stock.on_hand == 3


async def _restore_after(proxy: TcpProxy, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await proxy.restore()


def test_answers_without_a_retry_info_ask_for_nothing() -> None:
    assert server_retry_delay(None) is None
    assert server_retry_delay((("grpc-status-details-bin", b"\xff\xfe not a status"),)) is None
    assert server_retry_delay((("x-other", "1"),)) is None

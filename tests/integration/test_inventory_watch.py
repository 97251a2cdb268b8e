"""WatchStock's change feed on the real Postgres, served by a real gRPC server in this
process (so the feed's buffer can be made small): a watcher that stops reading ends with
RESOURCE_EXHAUSTED and does not hold up a watcher that keeps reading."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest

from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common.change_feed import ChangeFeed
from services.common.grpc_errors import ErrorInterceptor
from services.inventory import handlers
from services.inventory.adapters.postgres import STOCK_CHANNEL
from services.inventory.entrypoints import grpc as grpc_entry
from tests.support.servers import unique

CAPACITY = 20


@pytest.fixture(scope="module")
async def address(inventory_pool: asyncpg.Pool, inventory_db: str) -> AsyncIterator[str]:
    feed = ChangeFeed(inventory_db, STOCK_CHANNEL, capacity=CAPACITY)
    task = asyncio.create_task(feed.run())
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    grpc_entry.register(server, inventory_pool, feed)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)
    feed.stop()
    await asyncio.wait_for(task, 10)


async def test_slow_watcher_is_cut_off_and_does_not_hold_up_others(
    address: str, inventory_pool: asyncpg.Pool
) -> None:
    sku = unique("SKU")
    await handlers.receive_stock(inventory_pool, handlers.ReceiveStock(unique("r"), sku, 1))
    # Separate connections, as two clients would have. The slow one takes little unread data
    # off the wire (a small fixed HTTP/2 window, as over a slow link), so what it does not
    # read piles up on the server.
    small_window = [("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", 1024)]
    async with (
        grpc.aio.insecure_channel(address, options=small_window) as slow_channel,
        grpc.aio.insecure_channel(address) as fast_channel,
    ):
        slow = InventoryServiceStub(slow_channel).WatchStock(inv.WatchStockRequest(skus=[sku]))
        fast = InventoryServiceStub(fast_channel).WatchStock(inv.WatchStockRequest(skus=[sku]))
        for call in (slow, fast):
            first = await call.read()
            assert isinstance(first, inv.WatchStockResponse)
            assert (first.kind, first.stock.on_hand) == (inv.STOCK_CHANGE_KIND_SNAPSHOT, 1)

        changes = 400
        for n in range(2, changes + 2):
            await handlers.receive_stock(
                inventory_pool, handlers.ReceiveStock(f"{sku}-{n}", sku, 1)
            )
            # The fast watcher sees every change, in order, while the slow one reads nothing.
            change = await fast.read()
            assert isinstance(change, inv.WatchStockResponse)
            if n == 2 and change.stock.on_hand == 1:
                # The receipt made before subscribing, streamed after the snapshot as well
                # (a change in between is sent twice, never missed).
                change = await fast.read()
                assert isinstance(change, inv.WatchStockResponse)
            assert (change.kind, change.stock.on_hand) == (inv.STOCK_CHANGE_KIND_RECEIPT, n)

        seen: list[int] = []
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            async with asyncio.timeout(60):
                while True:
                    message = await slow.read()
                    assert isinstance(message, inv.WatchStockResponse)
                    if message.stock.on_hand > 1:  # not the pre-subscription receipt
                        seen.append(message.stock.on_hand)
        assert ended.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "behind" in (ended.value.details() or "")
        # What it did get before falling behind is the start of the changes, in order.
        assert seen == list(range(2, 2 + len(seen)))
        assert len(seen) < changes
        fast.cancel()


async def test_watch_rejects_bad_skus(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = InventoryServiceStub(channel)
        for skus in (["bad sku"], [""], [f"S{n}" for n in range(1001)]):
            call = stub.WatchStock(inv.WatchStockRequest(skus=skus))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "skus" in (caught.value.details() or "")

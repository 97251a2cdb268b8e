"""WatchStock across replicas: two inventory processes on one database both stream a change
made through a third (the feed is Postgres LISTEN/NOTIFY, not process memory)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from backorder.inventory.v1 import events_pb2 as ev
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.support.processes import ServiceProcess
from tests.support.servers import Vhost, database_url, drop_database, unique


@pytest.fixture(scope="module")
def replicas_vhost() -> Iterator[Vhost]:
    # Its own vhost: these processes must not consume the shared system's line.fulfilled queue.
    vhost = Vhost()
    vhost.create()
    yield vhost
    vhost.delete()


async def next_change(call: object) -> inv.WatchStockResponse:
    async with asyncio.timeout(20):
        message = await call.read()  # type: ignore[attr-defined]
    assert isinstance(message, inv.WatchStockResponse), message
    return message


async def test_two_replicas_stream_a_change_made_through_a_third(
    replicas_vhost: Vhost, tmp_path: Path
) -> None:
    db_name = unique("bo_watch_inv")
    env = {"INVENTORY_DATABASE_URL": database_url(db_name), "AMQP_URL": replicas_vhost.url}
    processes = [
        ServiceProcess("inventory", env, tmp_path / f"inventory-{n}.log") for n in range(3)
    ]
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start) for p in processes))
        channels = [grpc.aio.insecure_channel(p.grpc_addr) for p in processes]
        watcher_a, watcher_b, writer = (InventoryServiceStub(c) for c in channels)
        sku = unique("SKU")
        await writer.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=4)
        )

        calls = [w.WatchStock(inv.WatchStockRequest(skus=[sku])) for w in (watcher_a, watcher_b)]
        everything = watcher_b.WatchStock(inv.WatchStockRequest())
        snapshots = []
        for call in calls:
            snapshot = await next_change(call)
            assert (snapshot.kind, snapshot.stock.on_hand) == (inv.STOCK_CHANGE_KIND_SNAPSHOT, 4)
            snapshots.append(snapshot.stock)

        # An all-SKU watch sends no snapshot: make changes elsewhere until it is listening.
        warm_up = unique("SKU")

        async def keep_changing() -> None:
            for n in range(400):
                await writer.ReceiveStock(
                    inv.ReceiveStockRequest(receipt_id=f"{warm_up}-{n}", sku=warm_up, quantity=1)
                )
                await asyncio.sleep(0.05)

        changing = asyncio.create_task(keep_changing())
        try:
            await next_change(everything)
        finally:
            changing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await changing

        adjusted = await writer.AdjustStock(
            inv.AdjustStockRequest(
                adjustment_id=unique("a"), sku=sku, delta=-1, reason=ev.ADJUSTMENT_REASON_LOST
            )
        )
        expected = await writer.ExpectInbound(
            inv.ExpectInboundRequest(
                inbound_id=unique("po"), sku=sku, quantity=9, expected_at=adjusted.stock.updated_at
            )
        )
        for call, snapshot_stock in zip(calls, snapshots, strict=True):
            change = await next_change(call)
            # The receipt made just before subscribing may be streamed after the snapshot
            # too (sent twice, never missed): it shows the snapshot's state again.
            while change.stock == snapshot_stock:
                change = await next_change(call)
            assert (change.kind, change.movement_id) == (
                inv.STOCK_CHANGE_KIND_ADJUSTMENT,
                adjusted.movement_id,
            )
            assert change.stock == adjusted.stock
            change = await next_change(call)
            assert (change.kind, change.inbound_id) == (
                inv.STOCK_CHANGE_KIND_INBOUND,
                expected.inbound.inbound_id,
            )
            assert (change.stock.on_hand, change.stock.inbound_quantity) == (3, 9)
        seen_by_all: list[int] = []
        async with asyncio.timeout(20):
            while len(seen_by_all) < 2:
                change = await next_change(everything)
                if change.stock.sku == sku:
                    seen_by_all.append(change.kind)
        assert seen_by_all == [inv.STOCK_CHANGE_KIND_ADJUSTMENT, inv.STOCK_CHANGE_KIND_INBOUND]
        for call in [*calls, everything]:
            call.cancel()
        for channel in channels:
            await channel.close()
    finally:
        codes = await asyncio.gather(*(asyncio.to_thread(p.stop) for p in processes if p.process))
        await drop_database(db_name)
    assert codes == [0, 0, 0], [p.log_tail() for p in processes]

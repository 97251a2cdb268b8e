"""Inventory handlers and their SQL on a throwaway database of the real Postgres."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.common.errors import AlreadyExists, NotFound
from services.inventory import handlers
from tests.support.servers import unique


async def test_receipt_changes_stock_ledger_and_outbox_together(
    inventory_pool: asyncpg.Pool,
) -> None:
    sku = unique("SKU")
    first = await handlers.receive_stock(
        inventory_pool, handlers.ReceiveStock(unique("r"), sku, 4, note="pallet 1")
    )
    second = await handlers.receive_stock(
        inventory_pool, handlers.ReceiveStock(unique("r"), sku, 6)
    )
    assert (first.stock.on_hand, second.stock.on_hand) == (4, 10)
    ledger = await inventory_pool.fetch(
        "select kind, quantity, on_hand_after from movement where sku = $1 order by id", sku
    )
    assert [tuple(r) for r in ledger] == [("RECEIPT", 4, 4), ("RECEIPT", 6, 10)]
    rows = await inventory_pool.fetch(
        "select routing_key, message_type, event_id, body from outbox where sku = $1 order by id",
        sku,
    )
    events = []
    for row in rows:
        assert (row["routing_key"], row["message_type"]) == (
            "stock.received",
            "backorder.inventory.v1.StockReceived",
        )
        event = inventory_events.StockReceived.FromString(row["body"])
        assert event.event_id == str(row["event_id"])
        events.append((event.quantity, event.on_hand_after))
    assert events == [(4, 4), (6, 10)]


async def test_concurrent_repeats_of_one_receipt_count_once(inventory_pool: asyncpg.Pool) -> None:
    sku = unique("SKU")
    cmd = handlers.ReceiveStock(unique("r"), sku, 5)
    results = await asyncio.gather(*(handlers.receive_stock(inventory_pool, cmd) for _ in range(8)))
    assert {r.movement.id for r in results} == {results[0].movement.id}
    assert (await handlers.get_stock(inventory_pool, sku)).on_hand == 5
    outbox = await inventory_pool.fetchval("select count(*) from outbox where sku = $1", sku)
    assert outbox == 1

    with pytest.raises(AlreadyExists):
        await handlers.receive_stock(
            inventory_pool, handlers.ReceiveStock(cmd.receipt_id, sku, 5, note="other")
        )
    assert (await handlers.get_stock(inventory_pool, sku)).on_hand == 5


async def test_unknown_sku_is_not_found(inventory_pool: asyncpg.Pool) -> None:
    with pytest.raises(NotFound):
        await handlers.get_stock(inventory_pool, unique("NONE"))

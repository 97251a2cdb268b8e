"""Inventory handlers and their SQL on a throwaway database of the real Postgres."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backorder.allocation.v1.events_pb2 import LineFulfilled
from backorder.inventory.v1 import events_pb2 as inventory_events
from services.common import db as common_db
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound
from services.inventory import handlers
from tests.support.migrations import database_before
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


def adjust(
    sku: str,
    delta: int,
    key: str | None = None,
    reason: int = inventory_events.ADJUSTMENT_REASON_CYCLE_COUNT,
    note: str = "",
) -> handlers.AdjustStock:
    return handlers.AdjustStock(key or unique("adj"), sku, delta, reason, note)


def fulfilled(sku: str, quantity: int, fulfillment_id: str | None = None) -> LineFulfilled:
    return LineFulfilled(
        event_id=str(uuid.uuid4()),
        sku=sku,
        order_id=unique("o"),
        line_id="1",
        fulfillment_id=fulfillment_id or unique("f"),
        quantity=quantity,
    )


async def ledger_sum(pool: asyncpg.Pool, sku: str) -> int:
    return int(
        await pool.fetchval("select coalesce(sum(quantity), 0) from movement where sku = $1", sku)
    )


async def test_adjustment_below_zero_is_refused_and_writes_nothing(
    inventory_pool: asyncpg.Pool,
) -> None:
    sku = unique("SKU")
    await handlers.receive_stock(inventory_pool, handlers.ReceiveStock(unique("r"), sku, 3))
    with pytest.raises(FailedPrecondition, match="below zero"):
        await handlers.adjust_stock(inventory_pool, adjust(sku, -4))
    assert (await handlers.get_stock(inventory_pool, sku)).on_hand == 3
    kinds = await inventory_pool.fetch("select kind from movement where sku = $1", sku)
    assert [r["kind"] for r in kinds] == ["RECEIPT"]
    assert await inventory_pool.fetchval("select count(*) from outbox where sku = $1", sku) == 1

    done = await handlers.adjust_stock(inventory_pool, adjust(sku, -3, note="water damage"))
    assert done.stock.on_hand == 0
    assert (done.movement.kind, done.movement.quantity, done.movement.reason) == (
        "ADJUSTMENT",
        -3,
        "CYCLE_COUNT",
    )
    # An unknown SKU cannot be adjusted down, and is not created by trying.
    fresh = unique("SKU")
    with pytest.raises(FailedPrecondition):
        await handlers.adjust_stock(inventory_pool, adjust(fresh, -1))
    with pytest.raises(NotFound):
        await handlers.get_stock(inventory_pool, fresh)


async def test_concurrent_repeats_of_one_adjustment_count_once(
    inventory_pool: asyncpg.Pool,
) -> None:
    sku = unique("SKU")
    await handlers.receive_stock(inventory_pool, handlers.ReceiveStock(unique("r"), sku, 5))
    cmd = adjust(sku, -5, reason=inventory_events.ADJUSTMENT_REASON_LOST)
    results = await asyncio.gather(*(handlers.adjust_stock(inventory_pool, cmd) for _ in range(6)))
    assert {r.movement.id for r in results} == {results[0].movement.id}
    assert {r.stock.on_hand for r in results} == {0}
    with pytest.raises(AlreadyExists):
        await handlers.adjust_stock(
            inventory_pool, adjust(sku, -5, cmd.adjustment_id, note="other")
        )


async def test_issue_is_applied_once_per_fulfillment_and_records_shortfall(
    inventory_pool: asyncpg.Pool,
) -> None:
    sku = unique("SKU")
    await handlers.receive_stock(inventory_pool, handlers.ReceiveStock(unique("r"), sku, 5))
    first = fulfilled(sku, 3)
    # The same delivery many times, concurrently, and a second event of the same fulfillment.
    again = LineFulfilled()
    again.CopyFrom(first)
    again.event_id = str(uuid.uuid4())
    await asyncio.gather(
        *(handlers.line_fulfilled(inventory_pool, first) for _ in range(5)),
        handlers.line_fulfilled(inventory_pool, again),
    )
    assert (await handlers.get_stock(inventory_pool, sku)).on_hand == 2

    short = fulfilled(sku, 7)
    await handlers.line_fulfilled(inventory_pool, short)
    assert (await handlers.get_stock(inventory_pool, sku)).on_hand == 0
    issues = await inventory_pool.fetch(
        "select key, quantity, shortfall, on_hand_after from movement"
        " where sku = $1 and kind = 'ISSUE' order by id",
        sku,
    )
    assert [tuple(r) for r in issues] == [
        (first.fulfillment_id, -3, 0, 2),
        (short.fulfillment_id, -2, 5, 0),
    ]
    bodies = await inventory_pool.fetch(
        "select body from outbox where sku = $1 and routing_key = 'stock.issued' order by id", sku
    )
    events = [inventory_events.StockIssued.FromString(r["body"]) for r in bodies]
    assert [(e.quantity, e.shortfall, e.on_hand_after) for e in events] == [(3, 0, 2), (2, 5, 0)]
    assert await ledger_sum(inventory_pool, sku) == 0


async def test_inbound_lifecycle_keeps_inbound_quantity_and_versions(
    inventory_pool: asyncpg.Pool,
) -> None:
    sku = unique("SKU")
    when = datetime(2030, 5, 1, 12, tzinfo=UTC)
    inbound_id = unique("po")
    created = await handlers.expect_inbound(
        inventory_pool, handlers.ExpectInbound(inbound_id, sku, 10, when)
    )
    assert (created.inbound.open_quantity, created.stock.inbound_quantity) == (10, 10)
    assert created.stock.on_hand == 0
    repeat = await handlers.expect_inbound(
        inventory_pool, handlers.ExpectInbound(inbound_id, sku, 10, when)
    )
    assert repeat.inbound.version == created.inbound.version
    later = when + timedelta(days=2)
    moved = await handlers.expect_inbound(
        inventory_pool, handlers.ExpectInbound(inbound_id, sku, 12, later)
    )
    assert (moved.inbound.quantity, moved.inbound.expected_at, moved.stock.inbound_quantity) == (
        12,
        later,
        12,
    )
    receipt = await handlers.receive_stock(
        inventory_pool, handlers.ReceiveStock(unique("r"), sku, 5, inbound_id=inbound_id)
    )
    assert receipt.inbound is not None
    assert (receipt.inbound.open_quantity, receipt.stock.inbound_quantity) == (7, 7)
    over = await handlers.receive_stock(
        inventory_pool, handlers.ReceiveStock(unique("r"), sku, 9, inbound_id=inbound_id)
    )
    assert over.inbound is not None
    assert (over.inbound.received_quantity, over.inbound.open_quantity) == (14, 0)
    assert (over.stock.on_hand, over.stock.inbound_quantity) == (14, 0)
    cancelled = await handlers.cancel_inbound(inventory_pool, inbound_id)
    assert cancelled.inbound.cancelled
    with pytest.raises(FailedPrecondition):
        await handlers.expect_inbound(
            inventory_pool, handlers.ExpectInbound(inbound_id, sku, 20, later)
        )
    with pytest.raises(AlreadyExists):
        await handlers.expect_inbound(
            inventory_pool, handlers.ExpectInbound(inbound_id, unique("SKU"), 20, later)
        )

    rows = await inventory_pool.fetch(
        "select body from outbox where sku = $1 and routing_key = 'inbound.updated' order by id",
        sku,
    )
    updates = [inventory_events.InboundUpdated.FromString(r["body"]) for r in rows]
    assert [(u.version, u.open_quantity, u.cancelled) for u in updates] == [
        (1, 10, False),
        (2, 12, False),
        (3, 7, False),
        (4, 0, False),
        (5, 0, True),
    ]


async def test_on_hand_is_the_sum_of_the_ledger_after_a_random_workload(
    inventory_pool: asyncpg.Pool,
) -> None:
    rng = random.Random(7)
    skus = [unique("SKU") for _ in range(3)]

    async def one_step(step: int) -> None:
        sku = rng.choice(skus)
        action = rng.choice(["receive", "adjust", "issue"])
        try:
            if action == "receive":
                await handlers.receive_stock(
                    inventory_pool, handlers.ReceiveStock(f"r{step}-{sku}", sku, rng.randint(1, 9))
                )
            elif action == "adjust":
                await handlers.adjust_stock(inventory_pool, adjust(sku, rng.randint(-8, 8) or 1))
            else:
                await handlers.line_fulfilled(inventory_pool, fulfilled(sku, rng.randint(1, 6)))
        except FailedPrecondition:
            pass  # an adjustment below zero: refused, nothing written

    for start in range(0, 300, 10):
        await asyncio.gather(*(one_step(n) for n in range(start, start + 10)))
    for sku in skus:
        on_hand = (await handlers.get_stock(inventory_pool, sku)).on_hand
        assert on_hand == await ledger_sum(inventory_pool, sku)
        last = await inventory_pool.fetchval(
            "select on_hand_after from movement where sku = $1 order by id desc limit 1", sku
        )
        assert last == on_hand


# --- locations ---------------------------------------------------------------------------


async def test_migration_moves_existing_stock_movements_and_inbound_to_default() -> None:
    """A database of the schema before locations (0001-0002), with stock, a ledger and open
    inbound, migrates to `default`: the same figures there, and it keeps working."""
    package = "services.inventory.migrations"
    async with database_before(package, 3, "bo_test_inv_0003") as (url, conn):
        await conn.execute(
            """insert into stock (sku, on_hand, inbound_quantity)
                   values ('A', 7, 5), ('B', 0, 0);
               insert into movement (sku, kind, key, quantity, on_hand_after)
                   values ('A', 'RECEIPT', 'r1', 9, 9), ('A', 'ADJUSTMENT', 'a1', -2, 7);
               insert into inbound (inbound_id, sku, quantity, expected_at)
                   values ('in1', 'A', 5, now() + interval '1 day')"""
        )
        assert await common_db.migrate(url, package) == [
            m.name for m in common_db.migration_files(package) if (m.version or 0) >= 3
        ]

        pool = await common_db.create_pool(url)
        try:
            stock = await handlers.get_stock(pool, "A")
            assert (stock.on_hand, stock.inbound_quantity, stock.in_transit_quantity) == (7, 5, 0)
            assert [(e.location_id, e.on_hand, e.inbound_quantity) for e in stock.locations] == [
                ("default", 7, 5)
            ]
            moves = await handlers.list_movements(
                pool, sku="A", page_size=10, page_token="", location_id="default"
            )
            assert [(m.key, m.location_id) for m in moves.items] == [
                ("a1", "default"),
                ("r1", "default"),
            ]
            inbound = await handlers.list_inbound(
                pool, sku="A", page_size=10, page_token="", open_only=True, location_id="default"
            )
            assert [(i.inbound_id, i.location_id) for i in inbound.items] == [("in1", "default")]
            # It keeps working: a receipt against the old inbound lands at default.
            receipt = await handlers.receive_stock(
                pool, handlers.ReceiveStock("r2", "A", 5, inbound_id="in1")
            )
            assert [
                (e.location_id, e.on_hand, e.inbound_quantity) for e in receipt.stock.locations
            ] == [("default", 12, 0)]
            assert receipt.stock.on_hand == 12
        finally:
            await pool.close()


async def test_concurrent_transfers_never_take_more_than_the_source_holds(
    inventory_pool: asyncpg.Pool,
) -> None:
    """Transfers out of one location racing each other and adjustments there: each is judged
    against on hand at that location under the SKU's lock, so the source never goes below 0 and
    the totals stay the sums of the locations."""
    sku = unique("SKU")
    a, b = unique("LOC"), unique("LOC")
    for location in (a, b):
        await handlers.put_location(inventory_pool, location, name="", fill_rank=None, active=None)
    await handlers.receive_stock(
        inventory_pool, handlers.ReceiveStock(unique("r"), sku, 10, location_id=a)
    )

    async def move(n: int) -> bool:
        try:
            await handlers.transfer_stock(
                inventory_pool, handlers.TransferStock(unique("t"), sku, a, b, 3)
            )
        except FailedPrecondition:
            return False
        return True

    moved = await asyncio.gather(*(move(n) for n in range(6)))
    assert sum(moved) == 3
    stock = await handlers.get_stock(inventory_pool, sku)
    assert {e.location_id: e.on_hand for e in stock.locations} == {a: 1, b: 9}
    assert stock.on_hand == 10
    ledger = await inventory_pool.fetch(
        "select location_id, sum(quantity) from movement where sku = $1 group by 1", sku
    )
    assert {r[0]: r[1] for r in ledger} == {a: 1, b: 9}


async def test_issue_at_a_location_takes_only_what_is_there(
    inventory_pool: asyncpg.Pool,
) -> None:
    """line.fulfilled issues from its location: units at other locations do not cover it (the
    rest is a shortfall), and a location the inventory never heard of holds nothing."""
    sku, north = unique("SKU"), unique("LOC")
    await handlers.put_location(inventory_pool, north, name="", fill_rank=None, active=None)
    await handlers.receive_stock(inventory_pool, handlers.ReceiveStock(unique("r"), sku, 5))
    await handlers.receive_stock(
        inventory_pool, handlers.ReceiveStock(unique("r"), sku, 2, location_id=north)
    )
    there = fulfilled(sku, 3)
    there.location_id = north
    await handlers.line_fulfilled(inventory_pool, there)
    nowhere = fulfilled(sku, 1)
    nowhere.location_id = unique("NOWHERE")
    await handlers.line_fulfilled(inventory_pool, nowhere)
    stock = await handlers.get_stock(inventory_pool, sku)
    assert {e.location_id: e.on_hand for e in stock.locations} == {"default": 5, north: 0}
    issues = await inventory_pool.fetch(
        "select location_id, quantity, shortfall, on_hand_after from movement"
        " where sku = $1 and kind = 'ISSUE' order by id",
        sku,
    )
    assert [tuple(r) for r in issues] == [
        (north, -2, 1, 5),
        (nowhere.location_id, 0, 1, 5),
    ]

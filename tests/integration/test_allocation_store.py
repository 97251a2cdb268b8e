"""Allocation handlers and their SQL on a throwaway database of the real Postgres."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from backorder.allocation.v1 import events_pb2
from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.allocation.adapters import placement
from services.allocation.adapters import queue as queue_db
from services.allocation.adapters import skus as db
from services.allocation.adapters.queue import ReservedEvents
from services.allocation.handlers import events as built_events
from services.common import db as common_db
from services.common.errors import AlreadyExists
from services.common.outbox import completed_body
from tests.support.servers import unique


def receipt(sku: str, quantity: int, event_id: str | None = None) -> inventory_events.StockReceived:
    return inventory_events.StockReceived(
        event_id=event_id or str(uuid.uuid4()),
        sku=sku,
        receipt_id=unique("r"),
        quantity=quantity,
    )


def reserved_parts() -> ReservedEvents:
    """The parts of an Allocate's line.reserved, as the service passes them to queue_line."""
    now = Timestamp()
    now.GetCurrentTime()
    return built_events.reserved_events(None, now)


def adjustment(sku: str, delta: int) -> inventory_events.StockAdjusted:
    return inventory_events.StockAdjusted(
        event_id=str(uuid.uuid4()), sku=sku, adjustment_id=unique("a"), delta=delta
    )


async def reserved_by_line(pool: asyncpg.Pool, sku: str) -> dict[str, int]:
    rows = await pool.fetch("select line_id, reserved from line where sku = $1", sku)
    return {r["line_id"]: r["reserved"] for r in rows}


async def test_redelivered_receipt_is_applied_once(allocation_pool: asyncpg.Pool) -> None:
    sku = unique("SKU")
    order = unique("o")
    await handlers.allocate(allocation_pool, handlers.Allocate(order, "a", sku, 3))
    await handlers.allocate(allocation_pool, handlers.Allocate(order, "b", sku, 3))
    event = receipt(sku, 3)
    await asyncio.gather(*(handlers.stock_received(allocation_pool, event) for _ in range(4)))
    assert await reserved_by_line(allocation_pool, sku) == {"a": 3, "b": 0}
    log = await allocation_pool.fetch(
        "select quantity, cause, cause_event_id, queue_position, rule from reservation "
        "where sku = $1",
        sku,
    )
    assert [tuple(r) for r in log] == [(3, "stock.received", uuid.UUID(event.event_id), 1, "WHOLE")]
    outbox = await allocation_pool.fetch(
        "select routing_key from outbox where sku = $1 order by id", sku
    )
    assert [r["routing_key"] for r in outbox] == [
        "line.backordered",
        "line.backordered",
        "line.reserved",
    ]


async def test_two_processes_never_oversell_one_sku(
    allocation_pool: asyncpg.Pool, allocation_db: str
) -> None:
    """Two pools stand for two allocation processes racing on one hot SKU."""
    other = await common_db.create_pool(allocation_db)
    try:
        sku = unique("HOT")
        pools = [allocation_pool, other]
        supply = 0
        work: list[Coroutine[Any, Any, object]] = []
        rng = random.Random(7)
        for i in range(60):
            quantity = rng.randint(1, 4)
            work.append(
                handlers.allocate(
                    pools[i % 2],
                    handlers.Allocate(
                        unique("o"),
                        "1",
                        sku,
                        quantity,
                        rng.randint(0, 9),
                        allow_partial=rng.random() < 0.5,
                    ),
                )
            )
        for i in range(20):
            quantity = rng.randint(1, 6)
            supply += quantity
            work.append(handlers.stock_received(pools[i % 2], receipt(sku, quantity)))
        for i in range(6):  # small shrinkages race too: free first, then revocations
            supply -= 1
            work.append(handlers.stock_adjusted(pools[i % 2], adjustment(sku, -1)))
        rng.shuffle(work)
        await asyncio.gather(*work)

        row = await db.get_sku(allocation_pool, sku)
        assert row is not None
        lines = await allocation_pool.fetch(
            "select quantity, reserved, backordered from line where sku = $1", sku
        )
        reserved = sum(r["reserved"] for r in lines)
        # Nothing oversold, nothing lost (a shrinkage finding no units is counted apart).
        assert reserved + row.free_units == supply + row.unmatched_shrinkage_units
        assert row.reserved_units == reserved
        assert row.backordered_units == sum(r["backordered"] for r in lines)
        assert row.waiting_lines == sum(1 for r in lines if r["backordered"] > 0)
        # The per-priority counters behind queue positions agree with the lines.
        bands = await allocation_pool.fetch(
            """select q.priority, q.waiting_lines, q.backordered_units,
                      (select count(*) from line l where l.sku = q.sku
                         and l.priority = q.priority and l.backordered > 0) as counted,
                      (select coalesce(sum(backordered), 0) from line l where l.sku = q.sku
                         and l.priority = q.priority) as units
               from sku_queue q where q.sku = $1""",
            sku,
        )
        assert [(b["waiting_lines"], b["backordered_units"]) for b in bands] == [
            (b["counted"], b["units"]) for b in bands
        ]
        # So do the bucket counters behind the positions within a band (migration 0004).
        buckets = await allocation_pool.fetch(
            "select priority, bucket, waiting_lines from sku_queue_bucket where sku = $1 "
            "order by 1, 2",
            sku,
        )
        recounted = await allocation_pool.fetch(
            """select priority, sku_seq / queue_bucket_size(), count(*) from line
               where sku = $1 and backordered > 0 group by 1, 2 order by 1, 2""",
            sku,
        )
        assert [tuple(b) for b in buckets] == [tuple(r) for r in recounted]
        assert all(0 <= r["reserved"] <= r["quantity"] for r in lines)
        logged = await allocation_pool.fetchval(
            """select coalesce(sum(case when rule = 'REVOKED' then -quantity
                                        else quantity end), 0)
               from reservation where sku = $1""",
            sku,
        )
        assert logged == reserved
    finally:
        await other.close()


async def test_a_line_only_queued_is_written_whole_with_its_event(
    allocation_pool: asyncpg.Pool,
) -> None:
    """Nothing free and nothing inbound: Allocate only queues the line (one round trip, in
    the database). The reply, the SKU's counters and each line.backordered agree on where
    the line stood; positions past 127 take a multi-byte varint in the event."""
    sku = unique("SKU")
    order = unique("o")
    priorities = [(i * 7) % 3 for i in range(300)]
    placed = [
        await handlers.allocate(
            allocation_pool, handlers.Allocate(order, f"l{i}", sku, 2, priority, True)
        )
        for i, priority in enumerate(priorities)
    ]
    # At placement a line is behind every waiting line of its priority or higher.
    expected = [
        sum(1 for p in priorities[: i + 1] if p >= priority)
        for i, priority in enumerate(priorities)
    ]
    assert [p.view.queue_position for p in placed] == expected
    assert max(expected) > 127
    assert all(
        (p.view.line.status, p.view.line.backordered, p.view.line.reserved, p.reserved_at_once)
        == ("BACKORDERED", 2, 0, 0)
        for p in placed
    )
    rows = await allocation_pool.fetch(
        """select message_type, body, late_fields from outbox
           where sku = $1 and routing_key = $2 order by id""",
        sku,
        "line.backordered",
    )
    assert {r["message_type"] for r in rows} == {"backorder.allocation.v1.LineBackordered"}
    # As the relay publishes them: the queue position set from late_fields.
    events = [
        events_pb2.LineBackordered.FromString(
            completed_body(r["message_type"], r["body"], r["late_fields"])
        )
        for r in rows
    ]
    assert [(e.line_id, e.queue_position) for e in events] == [
        (f"l{i}", position) for i, position in enumerate(expected)
    ]
    assert all(
        (e.sku, e.order_id, e.quantity, e.backordered_quantity, e.status)
        == (sku, order, 2, 2, events_pb2.LINE_STATUS_BACKORDERED)
        for e in events
    )
    assert len({e.event_id for e in events}) == len(events)
    summary = await handlers.get_sku_summary(allocation_pool, sku)
    assert (summary.sku.waiting_lines, summary.sku.backordered_units) == (300, 600)
    # The line placed last at priority 0 is last in the queue.
    last_zero = max(i for i, p in enumerate(priorities) if p == 0)
    assert (await handlers.get_line(allocation_pool, order, f"l{last_zero}")).queue_position == 300
    # A repeat answers with the line as it is, and writes nothing more.
    again = await handlers.allocate(
        allocation_pool, handlers.Allocate(order, "l0", sku, 2, priorities[0], True)
    )
    assert again.repeated
    assert await allocation_pool.fetchval("select count(*) from outbox where sku = $1", sku) == len(
        rows
    )


def inbound(sku: str, quantity: int) -> inventory_events.InboundUpdated:
    event = inventory_events.InboundUpdated(
        event_id=str(uuid.uuid4()), sku=sku, inbound_id=unique("po"), open_quantity=quantity,
        version=1,
    )  # fmt: skip
    event.expected_at.FromDatetime(datetime.now(UTC) + timedelta(days=3))
    return event


@pytest.mark.parametrize(
    "situation",
    ["new", "free units", "open inbound", "no backorders", "over limit", "placed", "key taken"],
)
async def test_queue_line_declines_what_the_full_path_must_decide(
    allocation_pool: asyncpg.Pool, situation: str
) -> None:
    """`queue_line` (Allocate in one round trip) writes only when nothing is to be filled,
    estimated or refused; otherwise it writes nothing and Allocate takes the full path."""
    pool, sku, order = allocation_pool, unique("SKU"), unique("o")
    await handlers.allocate(pool, handlers.Allocate(order, "first", sku, 2))
    if situation == "free units":
        await handlers.stock_received(pool, receipt(sku, 1))  # 1 free: "first" needs 2
    elif situation == "open inbound":
        await handlers.inbound_updated(pool, inbound(sku, 5))
    elif situation == "no backorders":
        await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, backorders_accepted=False))
    elif situation == "over limit":
        await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, backorder_limit=3))
    line_id = "first" if situation in ("placed", "key taken") else "second"
    # "key taken": the line's key is already used by a line of another SKU.
    target = unique("NEW") if situation == "key taken" else sku
    before = await pool.fetchval("select count(*) from outbox where sku = $1", sku)
    request = placement.LineRequest(order, line_id, target, 2, 0, False, "")
    queued = await placement.queue_line(
        pool, request, built_events.queued_event(request), reserved_parts()
    )
    summary = (await handlers.get_sku_summary(pool, sku)).sku
    outbox = await pool.fetchval("select count(*) from outbox where sku = $1", sku)
    if situation == "new":
        assert queued.outcome is placement.Outcome.QUEUED and queued.line is not None
        assert (queued.line.line_id, queued.line.backordered, queued.queue_position) == (
            "second",
            2,
            2,
        )
        assert (summary.waiting_lines, summary.backordered_units, outbox) == (2, 4, before + 1)
        late = await pool.fetchval(
            "select late_fields from outbox where sku = $1 order by id desc limit 1", sku
        )
        assert json.loads(late) == {"queue_position": 2}
    else:
        assert queued.line is None
        assert queued.outcome is (
            placement.Outcome.PLACED_BEFORE
            if situation in ("placed", "key taken")
            else placement.Outcome.NEEDS_THE_FILL
        )
        assert (summary.waiting_lines, summary.backordered_units, outbox) == (1, 2, before)
    if situation == "key taken":
        # Allocate refuses that call: not even the SKU row may be left behind.
        assert await db.get_sku(pool, target) is None
        with pytest.raises(AlreadyExists):
            await handlers.allocate(pool, handlers.Allocate(order, line_id, target, 2))
        assert await db.get_sku(pool, target) is None


@pytest.mark.parametrize("chunk", [1, 2, 1000])
async def test_fill_walks_long_queue_in_chunks(
    allocation_pool: asyncpg.Pool, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_db, "CHUNK", chunk)
    sku = unique("SKU")
    order = unique("o")
    # priorities: the rank is 9s first (in placement order), then 0s.
    specs = [("p0-a", 0), ("p9-a", 9), ("p0-b", 0), ("p9-b", 9), ("p0-c", 0)]
    for line_id, priority in specs:
        await handlers.allocate(
            allocation_pool, handlers.Allocate(order, line_id, sku, 1, priority)
        )
    await handlers.stock_received(allocation_pool, receipt(sku, 4))
    assert await reserved_by_line(allocation_pool, sku) == {
        "p9-a": 1,
        "p9-b": 1,
        "p0-a": 1,
        "p0-b": 1,
        "p0-c": 0,
    }
    positions = await allocation_pool.fetch(
        "select l.line_id, r.queue_position from reservation r join line l on l.id = r.line "
        "where r.sku = $1 order by r.id",
        sku,
    )
    assert [(r["line_id"], r["queue_position"]) for r in positions] == [
        ("p9-a", 1),
        ("p9-b", 1),
        ("p0-a", 1),
        ("p0-b", 1),
    ]
    waiting = await handlers.get_line(allocation_pool, order, "p0-c")
    assert waiting.queue_position == 1


async def test_migrations_are_applied_once(allocation_db: str) -> None:
    assert await common_db.migrate(allocation_db, "services.allocation.migrations") == []


async def test_racing_allocates_of_one_key_place_one_line_and_one_event(
    allocation_pool: asyncpg.Pool,
) -> None:
    """Racing copies of one Allocate (a client retrying) place the line once, with one
    line.backordered; racing Allocates of one key for different new SKUs place it for one
    SKU, refuse the others with ALREADY_EXISTS and leave no row of their SKUs behind."""
    pool, order, sku = allocation_pool, unique("o"), unique("SKU")
    same = handlers.Allocate(order, "1", sku, 3)
    placed = await asyncio.gather(*(handlers.allocate(pool, same) for _ in range(20)))
    assert {p.view.line.key for p in placed} == {placed[0].view.line.key}
    assert sum(not p.repeated for p in placed) == 1
    assert await pool.fetchval("select count(*) from line where order_id = $1", order) == 1
    assert (
        await pool.fetchval(
            "select count(*) from outbox where sku = $1 and routing_key = 'line.backordered'", sku
        )
        == 1
    )

    skus = [unique("NEW") for _ in range(20)]
    outcomes = await asyncio.gather(
        *(handlers.allocate(pool, handlers.Allocate(order, "2", s, 1)) for s in skus),
        return_exceptions=True,
    )
    won = [s for s, o in zip(skus, outcomes, strict=True) if isinstance(o, handlers.Placed)]
    lost = [s for s, o in zip(skus, outcomes, strict=True) if isinstance(o, AlreadyExists)]
    assert len(won) == 1 and len(lost) == len(skus) - 1, outcomes
    assert [await db.get_sku(pool, s) is None for s in lost] == [True] * len(lost)
    assert await pool.fetchval("select count(*) from outbox where sku = any($1::text[])", skus) == 1

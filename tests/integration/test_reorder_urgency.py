"""ListReorderSuggestions walks an index in urgency order (migration 0016): the counters it
reads must be exact, and its pages must come in the order of the whole list, on the real
Postgres."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.common import db
from tests.support.servers import database_url, drop_database, unique


@pytest.fixture
async def pool() -> AsyncIterator[asyncpg.Pool]:
    """A database of its own: the list covers every SKU the service knows."""
    name = unique("bo_test_urgency")
    await db.migrate(database_url(name), "services.allocation.migrations")
    pool = await db.create_pool(database_url(name))
    try:
        yield pool
    finally:
        await pool.close()
        await drop_database(name)


def inbound(
    sku: str, inbound_id: str, quantity: int, version: int, *, cancelled: bool = False
) -> inventory_events.InboundUpdated:
    event = inventory_events.InboundUpdated(
        event_id=str(uuid.uuid4()), sku=sku, inbound_id=inbound_id, open_quantity=quantity,
        version=version, cancelled=cancelled,
    )  # fmt: skip
    event.expected_at.FromDatetime(datetime.now(UTC) + timedelta(days=3))
    return event


async def counted_and_summed(pool: asyncpg.Pool, sku: str) -> tuple[int, int]:
    return tuple(
        await pool.fetchrow(
            """select s.inbound_units,
                      (select coalesce(sum(open_quantity), 0) from inbound i
                       where i.sku = s.sku and open_quantity > 0 and not cancelled)
               from sku s where s.sku = $1""",
            sku,
        )
    )


async def test_open_inbound_units_are_counted_exactly(pool: asyncpg.Pool) -> None:
    sku = unique("URGENCY-IN")
    steps = [
        (inbound(sku, "po-1", 10, 1), 10),
        (inbound(sku, "po-1", 4, 2), 4),  # partly received
        (inbound(sku, "po-2", 6, 1), 10),
        (inbound(sku, "po-1", 3, 1), 10),  # an older version changes nothing
        (inbound(sku, "po-1", 4, 3, cancelled=True), 6),
        (inbound(sku, "po-2", 0, 2), 0),  # all received
    ]
    for event, expected in steps:
        await handlers.inbound_updated(pool, event)
        assert await counted_and_summed(pool, sku) == (expected, expected)
    available = await pool.fetchval("select available from planning_advice where sku = $1", sku)
    assert available == 0


async def add_skus(pool: asyncpg.Pool, rows: list[tuple[str, int, float, float]]) -> None:
    """SKUs with `available` free units and the planning worker's levels (as bench/planning.py
    writes them): (sku, available, daily forecast, reorder point)."""
    await pool.executemany(
        "insert into sku (sku, free_units) values ($1, $2)", [r[:2] for r in rows]
    )
    await pool.executemany(
        """insert into planning_result (sku, demand_class, forecast_method,
               forecast_daily_units, demand_std, safety_stock, reorder_point, order_up_to,
               history_days, refreshed_at)
           values ($1, 'smooth', 'ses', $2, 1, 1, $3::float8, $3::float8 + 10, 90, now())""",
        [(sku, forecast, reorder_point) for sku, _, forecast, reorder_point in rows],
    )


async def all_pages(pool: asyncpg.Pool, size: int, between: object = None) -> list[str]:
    listed: list[str] = []
    token = ""
    while True:
        page = await handlers.list_reorder_suggestions(pool, size, token)
        listed += [advice.sku for advice in page.items]
        if not page.next_page_token:
            return listed
        token = page.next_page_token
        if callable(between):
            await between()


async def test_pages_follow_days_of_cover_with_ties_and_no_forecast_last(
    pool: asyncpg.Pool,
) -> None:
    rows = [
        ("A-tie-2", 4, 2.0, 10.0),  # 2 days of cover
        ("A-tie-1", 4, 2.0, 10.0),  # 2 days: a tie, by SKU
        ("B-short", 1, 1.0, 10.0),  # 1 day
        ("C-minus", 0, 0.5, 10.0),  # 0 days
        ("D-none-2", 3, 0.0, 5.0),  # no forecast: no days of cover, last
        ("D-none-1", 2, 0.0, 5.0),
        ("E-above", 50, 1.0, 10.0),  # at or above its reorder point: not listed
        ("F-long", 9, 1.0, 10.0),  # 9 days
    ]
    await add_skus(pool, rows)
    await pool.execute("update sku set backordered_units = 3 where sku = 'C-minus'")  # -3
    expected = ["C-minus", "B-short", "A-tie-1", "A-tie-2", "F-long", "D-none-1", "D-none-2"]
    for size in (1, 2, 3, 100):
        assert await all_pages(pool, size) == expected, size
    page = await handlers.list_reorder_suggestions(pool, 100, "")
    cover = {a.sku: a.days_of_cover for a in page.items}
    assert cover["C-minus"] == -6.0 and cover["D-none-1"] is None
    assert [a.available for a in page.items][:2] == [-3, 1]


async def test_a_page_reads_what_is_current(pool: asyncpg.Pool) -> None:
    """Between pages a SKU already listed becomes more urgent and one not yet listed leaves
    the list: the pages list every SKU whose key did not change once, in order, and never
    the one that left."""
    await add_skus(pool, [(f"S{i:02}", i, 1.0, 20.0) for i in range(10)])
    changes = iter(
        [
            "update sku set free_units = 0 where sku = 'S01'",  # listed on page 1 already
            "update sku set free_units = 30 where sku = 'S07'",  # above its reorder point now
            "select 1",
            "select 1",
        ]
    )

    async def change() -> None:
        await pool.execute(next(changes))

    listed = await all_pages(pool, 2, change)
    assert listed == [f"S{i:02}" for i in range(10) if i != 7]
    now = await all_pages(pool, 100)
    assert now == ["S00", "S01"] + [f"S{i:02}" for i in range(2, 10) if i != 7]

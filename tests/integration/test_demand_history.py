"""Demand history (docs/spec.md §9) as lines are placed and cancelled, imports and planning
parameters: the handlers and their SQL on a throwaway database of the real Postgres."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import pytest

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.allocation.planning.params import PlanningParams
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.support.servers import unique


async def history(pool: asyncpg.Pool, sku: str) -> dict[dt.date, tuple[int, int, int]]:
    """sku's demand per day: (ordered, cancelled, imported)."""
    rows = await pool.fetch(
        """select day, ordered_units, cancelled_units, imported_units from demand_day
           where sku = $1 order by day""",
        sku,
    )
    return {r["day"]: (r[1], r[2], r[3]) for r in rows}


async def today(pool: asyncpg.Pool) -> dt.date:
    day = await pool.fetchval("select planning_day(clock_timestamp())")
    assert isinstance(day, dt.date)
    return day


async def receive(pool: asyncpg.Pool, sku: str, quantity: int) -> None:
    await handlers.stock_received(
        pool,
        inventory_events.StockReceived(
            event_id=str(uuid.uuid4()), sku=sku, receipt_id=unique("r"), quantity=quantity
        ),
    )


async def test_placed_lines_count_once_on_their_day_whichever_path_places_them(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku, order = allocation_pool, unique("DEMAND"), unique("o")
    # Nothing free: the one-round-trip path queues it.
    await handlers.allocate(pool, handlers.Allocate(order, "1", sku, 5))
    # Free units: the full path places it and the fill reserves.
    await receive(pool, sku, 10)
    await handlers.allocate(pool, handlers.Allocate(order, "2", sku, 3))
    # Repeats of both count nothing.
    await handlers.allocate(pool, handlers.Allocate(order, "1", sku, 5))
    await handlers.allocate(pool, handlers.Allocate(order, "2", sku, 3))
    assert await history(pool, sku) == {await today(pool): (8, 0, 0)}


async def test_refused_lines_write_no_demand(allocation_pool: asyncpg.Pool) -> None:
    pool, sku = allocation_pool, unique("REFUSED")
    await receive(pool, sku, 1)
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, backorders_accepted=False))
    with pytest.raises(FailedPrecondition):
        await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 4))
    assert await history(pool, sku) == {}


async def test_lines_over_a_customer_cap_write_no_demand(allocation_pool: asyncpg.Pool) -> None:
    pool, sku = allocation_pool, unique("CAPPED")
    await handlers.set_sku_policy(pool, handlers.SetSkuPolicy(sku, max_units_per_customer=3))
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 2, customer_id="c1"))
    with pytest.raises(FailedPrecondition):
        await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 2, customer_id="c1"))
    assert await history(pool, sku) == {await today(pool): (2, 0, 0)}


async def test_cancelled_units_are_recorded_and_demand_stays(allocation_pool: asyncpg.Pool) -> None:
    pool, sku, order = allocation_pool, unique("CANCEL"), unique("o")
    await receive(pool, sku, 2)
    await handlers.allocate(pool, handlers.Allocate(order, "1", sku, 6, allow_partial=True))
    await handlers.fulfill_line(pool, handlers.FulfillLine(order, "1", unique("f"), 1))
    await handlers.cancel_line(pool, order, "1")
    await handlers.cancel_line(pool, order, "1")  # a repeat changes nothing
    # 6 ordered; 1 shipped, so 5 cancelled (1 reserved + 4 waiting).
    assert await history(pool, sku) == {await today(pool): (6, 5, 0)}


async def test_an_import_replaces_its_days_and_adds_to_live_demand(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku = allocation_pool, unique("IMPORT")
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 2))
    day = await today(pool)
    yesterday = day - dt.timedelta(days=1)
    first = handlers.ImportDemandHistory(sku, ((day.isoformat(), 7), (yesterday.isoformat(), 3)))
    assert await handlers.import_demand_history(pool, first) == 2
    again = handlers.ImportDemandHistory(sku, ((yesterday.isoformat(), 4),))
    await handlers.import_demand_history(pool, again)
    assert await history(pool, sku) == {yesterday: (0, 0, 4), day: (2, 0, 7)}


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("days", ()),
        ("days[1].date", (("{yesterday}", 1), ("2026-13-01", 1))),
        ("days[0].date", (("yesterday", 1),)),
        ("days[0].date", (("{tomorrow}", 1),)),
        ("days[1].date", (("{yesterday}", 1), ("{too_old}", 1))),
        ("days[1].date", (("{yesterday}", 1), ("{yesterday}", 2))),
        ("days[1].units", (("{yesterday}", 1), ("{today}", -1))),
    ],
)
async def test_a_bad_import_names_the_field_and_writes_nothing(
    allocation_pool: asyncpg.Pool, field: str, days: tuple[tuple[str, int], ...]
) -> None:
    pool, sku = allocation_pool, unique("BADIMPORT")
    await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 2))
    before = await history(pool, sku)
    day = await today(pool)
    named = {
        "today": day,
        "yesterday": day - dt.timedelta(days=1),
        "tomorrow": day + dt.timedelta(days=1),
        "too_old": day - dt.timedelta(days=1097),
    }
    filled = tuple(
        (text.format(**{k: v.isoformat() for k, v in named.items()}), units) for text, units in days
    )
    with pytest.raises(InvalidArgument) as caught:
        await handlers.import_demand_history(pool, handlers.ImportDemandHistory(sku, filled))
    assert caught.value.field == field
    assert await history(pool, sku) == before


async def test_the_oldest_day_accepted_is_1096_days_back(allocation_pool: asyncpg.Pool) -> None:
    pool, sku = allocation_pool, unique("OLDEST")
    await receive(pool, sku, 1)
    oldest = await today(pool) - dt.timedelta(days=1096)
    days = ((oldest.isoformat(), 0),)
    assert await handlers.import_demand_history(pool, handlers.ImportDemandHistory(sku, days)) == 1
    assert await history(pool, sku) == {oldest: (0, 0, 0)}


async def test_unknown_skus_are_not_found_and_nothing_is_written(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku = allocation_pool, unique("NOSUCH")
    day = (await today(pool)).isoformat()
    with pytest.raises(NotFound):
        await handlers.import_demand_history(pool, handlers.ImportDemandHistory(sku, ((day, 1),)))
    with pytest.raises(NotFound):
        await handlers.set_planning_params(pool, handlers.SetPlanningParams(sku, pack_size=2))
    assert await pool.fetchval("select count(*) from sku where sku = $1", sku) == 0


async def test_planning_params_are_an_upsert_over_the_defaults(
    allocation_pool: asyncpg.Pool,
) -> None:
    pool, sku = allocation_pool, unique("PARAMS")
    await receive(pool, sku, 1)
    set_ = handlers.set_planning_params
    first = await set_(pool, handlers.SetPlanningParams(sku, lead_time_days=3, pack_size=12))
    assert first == PlanningParams(sku, lead_time_days=3, pack_size=12)
    second = await set_(pool, handlers.SetPlanningParams(sku, service_level=0.99))
    assert second == PlanningParams(sku, lead_time_days=3, service_level=0.99, pack_size=12)
    row = await pool.fetchrow("select * from planning_params where sku = $1", sku)
    assert (row["lead_time_days"], row["service_level"], row["pack_size"]) == (3, 0.99, 12)


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("service_level", {"service_level": 0.49}),
        ("service_level", {"service_level": 0.9991}),
        ("service_level", {"service_level": float("nan")}),
        ("lead_time_days", {"lead_time_days": -1}),
        ("review_period_days", {"review_period_days": -2}),
        ("pack_size", {"pack_size": 0}),
        ("min_order_quantity", {"min_order_quantity": 0}),
    ],
)
async def test_bad_planning_params_name_the_field_and_write_nothing(
    allocation_pool: asyncpg.Pool, field: str, changes: dict[str, object]
) -> None:
    pool, sku = allocation_pool, unique("BADPARAMS")
    await receive(pool, sku, 1)
    cmd = handlers.SetPlanningParams(sku, **{"lead_time_days": 3, **changes})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as caught:
        await handlers.set_planning_params(pool, cmd)
    assert caught.value.field == field
    assert await pool.fetchval("select count(*) from planning_params where sku = $1", sku) == 0


async def test_days_are_calendar_days_of_the_planning_time_zone(
    allocation_pool: asyncpg.Pool,
) -> None:
    from services.allocation.adapters import planning as planning_db

    pool = allocation_pool
    utc_day = await today(pool)
    try:
        # 14 hours ahead of UTC (Kiribati): from 10:00 UTC on it is already tomorrow there.
        await planning_db.use_time_zone(pool, "Pacific/Kiritimati")
        ahead = await pool.fetchval(
            "select (clock_timestamp() at time zone 'Pacific/Kiritimati')::date"
        )
        assert await today(pool) == ahead
        sku = unique("ZONED")
        await handlers.allocate(pool, handlers.Allocate(unique("o"), "1", sku, 3))
        assert await history(pool, sku) == {ahead: (3, 0, 0)}
        with pytest.raises(asyncpg.PostgresError):
            await planning_db.use_time_zone(pool, "Not/AZone")
    finally:
        await planning_db.use_time_zone(pool, "UTC")
    assert await today(pool) == utc_day

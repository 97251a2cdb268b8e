"""Migrations 0019, 0020 and 0021 on a database with planning results (docs/planning.md):
every result from before 0019 is refreshed once (it recorded no inputs), and each SKU keeps
the crossing state 0020 moves onto its row, so no sku.reorder_suggested fires twice for one
crossing and none is lost; a result from before 0021 (computed through a partial today) is
refreshed once."""

from __future__ import annotations

from services.allocation.adapters import planning as planning_db
from services.allocation.planning.worker import refresh
from services.common import db as common_db
from tests.support.migrations import database_before

MIGRATIONS = "services.allocation.migrations"


async def test_results_and_crossing_flags_survive_the_upgrade() -> None:
    async with database_before(MIGRATIONS, 19, "bo_test_alloc_0020") as (url, conn):
        # The schema as it was before 0019, with results: A below its reorder point and
        # flagged (its event fired), B flagged but back above since, C below and not yet
        # flagged, D above and not flagged.
        await conn.execute(
            """insert into sku (sku, free_units) values ('A', 1), ('B', 50), ('C', 2),
                                                        ('D', 80);
               insert into planning_result (sku, demand_class, forecast_method,
                   forecast_daily_units, demand_std, safety_stock, reorder_point,
                   order_up_to, history_days, refreshed_at, below_reorder_point,
                   event_version)
               select sku, 'SMOOTH', 'SES', 1, 1, 2, 10, 17, 30, now(), flagged, version
               from (values ('A', true, 1), ('B', true, 3), ('C', false, 0),
                            ('D', false, 2)) v (sku, flagged, version)"""
        )
        await common_db.migrate(url, MIGRATIONS)
        flags = dict(
            await conn.fetch("select sku, planning_below_reorder_point from sku order by sku")
        )
        assert flags == {"A": True, "B": True, "C": False, "D": False}
        # No result recorded its inputs: the next pass refreshes each of them.
        day = await planning_db.today(conn)
        last, stale = await planning_db.stale_skus_after(conn, "", 100, day)
        assert (last, stale) == ("D", ["A", "B", "C", "D"])
        # The first crossing check after the upgrade: C fires (its first crossing), B
        # re-arms, A (already fired) and D stay as they are.
        async with conn.transaction():
            crossed = await planning_db.record_crossings(conn)
        assert [(a.sku, a.event_version) for a in crossed] == [("C", 1)]
        flags = dict(
            await conn.fetch("select sku, planning_below_reorder_point from sku order by sku")
        )
        assert flags == {"A": True, "B": False, "C": True, "D": False}
        async with conn.transaction():
            assert await planning_db.record_crossings(conn) == []


async def test_results_through_a_partial_today_are_refreshed_once() -> None:
    async with database_before(MIGRATIONS, 21, "bo_test_alloc_0021") as (url, conn):
        # Before 0021: A's result current by every mark of the time (computed today, its
        # demand as read), so no pass of that schema would have recomputed it.
        await conn.execute(
            """insert into sku (sku, lines_placed) values ('A', 3), ('B', 0);
               insert into planning_result (sku, demand_class, forecast_method,
                   forecast_daily_units, demand_std, safety_stock, reorder_point,
                   order_up_to, history_days, refreshed_at, event_version,
                   demand_seen, history_through)
               values ('A', 'SMOOTH', 'SES', 1, 1, 2, 10, 17, 30, now(), 0, 3, current_date)"""
        )
        await common_db.migrate(url, MIGRATIONS)
        day = await planning_db.today(conn)
        # A is refreshed once; B, never refreshed, as before.
        assert await planning_db.stale_skus_after(conn, "", 100, day) == ("B", ["A", "B"])
        assert await refresh(conn, ["A", "B"]) == 2
        assert await planning_db.stale_skus_after(conn, "", 100, day) == ("B", [])

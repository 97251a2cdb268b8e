"""Migration 0007 (docs/spec.md §8): a database of the single-location schema keeps every
unit, reservation, fulfilment and inbound, now at `default`, and the service goes on."""

from __future__ import annotations

import uuid

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers
from services.common import db as common_db
from tests.support.migrations import database_before


async def test_existing_units_and_reservations_move_to_default() -> None:
    async with database_before("services.allocation.migrations", 7, "bo_test_alloc_0007") as (
        url,
        conn,
    ):
        # The schema as it was before 0007 (its repeatable functions too), populated.
        await conn.execute(
            """insert into sku (sku, free_units, reserved_units, fulfilled_units,
                                backordered_units, waiting_lines, lines_placed)
               values ('A', 3, 5, 2, 1, 1, 2), ('B', 0, 0, 0, 0, 0, 0);
               insert into sku_queue (sku, priority, waiting_lines, backordered_units)
               values ('A', 0, 1, 1);
               insert into line (order_id, line_id, sku, quantity, priority, allow_partial,
                                 placed_at, placed_priority, reserved, fulfilled, sku_seq)
               values ('o', '1', 'A', 6, 0, true, now(), 0, 4, 2, 1),
                      ('o', '2', 'A', 2, 0, true, now(), 0, 1, 0, 2);
               insert into reservation (line, sku, quantity, cause, queue_position, rule,
                                        fill_policy)
               select id, 'A', 6, 'Allocate', 1, 'WHOLE', 'STRICT' from line
               where line_id = '1';
               insert into reservation (line, sku, quantity, cause, queue_position, rule,
                                        fill_policy)
               select id, 'A', 2, 'Allocate', 1, 'WHOLE', 'STRICT' from line
               where line_id = '2';
               insert into reservation (line, sku, quantity, cause, queue_position, rule,
                                        fill_policy)
               select id, 'A', 1, 'stock.adjusted', 0, 'REVOKED', 'STRICT' from line
               where line_id = '2';
               insert into fulfillment (fulfillment_id, line, quantity)
               select 'f1', id, 2 from line where line_id = '1';
               insert into inbound (inbound_id, sku, open_quantity, expected_at, cancelled,
                                    version)
               values ('po', 'A', 7, now() + interval '1 day', false, 1)"""
        )
        applied = await common_db.migrate(url, "services.allocation.migrations")
        assert applied[0] == "0007_locations.sql"
        assert await conn.fetch("select location_id, fill_rank, active from location") == [
            ("default", 0, True)
        ]
        assert [
            tuple(r)
            for r in await conn.fetch(
                "select sku, location_id, free_units, reserved_units from sku_location"
            )
        ] == [("A", "default", 3, 5)]
        assert (
            await conn.fetchval("select count(*) from reservation where location_id <> 'default'")
            == 0
        )
        assert await conn.fetchval("select location_id from inbound") == "default"
        allocations = {
            r["line_id"]: tuple(r)[1:]
            for r in await conn.fetch(
                """select l.line_id, a.location_id, a.reserved, a.fulfilled
                   from line l, line_allocations(l.id) a order by l.line_id"""
            )
        }
        assert allocations == {"1": ("default", 4, 2), "2": ("default", 1, 0)}
        assert (
            await conn.fetchval("select location_strategy from sku where sku = 'A'") == "FILL_RANK"
        )

        # The service goes on with the migrated data: a receipt (an event from before the
        # upgrade: no location_id) fills the waiting line at default.
        pool = await common_db.create_pool(url)
        try:
            event = inventory_events.StockReceived(event_id=str(uuid.uuid4()), sku="A", quantity=1)
            await handlers.stock_received(pool, event)
            view = await handlers.get_line(pool, "o", "2")
            assert view.line.reserved == 2
            assert (
                await pool.fetchval("select reserved_units from sku_location where sku = 'A'") == 6
            )
        finally:
            await pool.close()

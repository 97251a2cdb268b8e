"""Bookkeeping invariants read straight from a service's database after a run: every counter
agrees with the rows it counts, every reservation row has its line.reserved event in the
outbox, the ledger adds up. A half-written transaction would break one of them.

Each function asserts and returns how many checks passed (the suite prints the figures).
"""

from __future__ import annotations

import asyncpg


async def check_allocation(conn: asyncpg.Connection) -> int:
    checks = 0
    skus = await conn.fetch(
        """select s.sku, s.free_units, s.reserved_units, s.fulfilled_units,
                  s.backordered_units, s.waiting_lines,
                  coalesce(sum(l.reserved), 0) as reserved,
                  coalesce(sum(l.fulfilled), 0) as fulfilled,
                  coalesce(sum(l.backordered), 0) as backordered,
                  count(l.id) filter (where l.backordered > 0) as waiting
           from sku s left join line l on l.sku = s.sku group by s.sku"""
    )
    for s in skus:
        assert s["free_units"] >= 0, s
        assert (s["reserved_units"], s["fulfilled_units"], s["backordered_units"]) == (
            s["reserved"],
            s["fulfilled"],
            s["backordered"],
        ), f"SKU counters disagree with its lines: {dict(s)}"
        assert s["waiting_lines"] == s["waiting"], dict(s)
        checks += 5
    bands = await conn.fetch(
        """select coalesce(q.sku, w.sku) as sku, coalesce(q.priority, w.priority) as priority,
                  coalesce(q.waiting_lines, 0) as counted, coalesce(w.lines, 0) as lines,
                  coalesce(q.backordered_units, 0) as counted_units, coalesce(w.units, 0) as units
           from sku_queue q full join (
               select sku, priority, count(*) as lines, sum(backordered) as units
               from line where backordered > 0 group by sku, priority) w
             on w.sku = q.sku and w.priority = q.priority"""
    )
    for b in bands:
        assert (b["counted"], b["counted_units"]) == (b["lines"], b["units"]), dict(b)
        checks += 1
    # The bucket counters behind queue positions agree with the waiting lines (migration 0004).
    buckets = await conn.fetch(
        """select coalesce(b.sku, w.sku) as sku, coalesce(b.priority, w.priority) as priority,
                  coalesce(b.bucket, w.bucket) as bucket,
                  coalesce(b.waiting_lines, 0) as counted, coalesce(w.lines, 0) as lines
           from sku_queue_bucket b full join (
               select sku, priority, sku_seq / queue_bucket_size() as bucket, count(*) as lines
               from line where backordered > 0 group by 1, 2, 3) w
             on w.sku = b.sku and w.priority = b.priority and w.bucket = b.bucket
           where b.waiting_lines is distinct from w.lines"""
    )
    assert not buckets, f"bucket counters disagree with the waiting lines: {buckets}"
    checks += 1
    # The decision log explains every live line's units: fills minus revocations.
    unexplained = await conn.fetch(
        """select l.id, l.reserved, l.fulfilled,
                  coalesce(sum(r.quantity) filter (where r.rule <> 'REVOKED'), 0)
                  - coalesce(sum(r.quantity) filter (where r.rule = 'REVOKED'), 0) as logged
           from line l left join reservation r on r.line = l.id
           where not l.cancelled group by l.id
           having l.reserved + l.fulfilled <> coalesce(sum(r.quantity) filter
                      (where r.rule <> 'REVOKED'), 0)
                  - coalesce(sum(r.quantity) filter (where r.rule = 'REVOKED'), 0)"""
    )
    assert not unexplained, f"lines whose units the decision log does not explain: {unexplained}"
    checks += 1
    shipped = await conn.fetch(
        """select l.id from line l left join fulfillment f on f.line = l.id
           group by l.id having l.fulfilled <> coalesce(sum(f.quantity), 0)"""
    )
    assert not shipped, f"lines whose fulfilled units disagree with fulfillments: {shipped}"
    checks += 1
    # One line.reserved event in the outbox per fill row, one line.fulfilled per fulfillment.
    fills = await conn.fetchval("select count(*) from reservation where rule <> 'REVOKED'")
    reserved_events = await conn.fetchval(
        "select count(*) from outbox where routing_key = 'line.reserved'"
    )
    assert fills == reserved_events, (fills, reserved_events)
    fulfillments = await conn.fetchval("select count(*) from fulfillment")
    fulfilled_events = await conn.fetchval(
        "select count(*) from outbox where routing_key = 'line.fulfilled'"
    )
    assert fulfillments == fulfilled_events, (fulfillments, fulfilled_events)
    return checks + 2


async def check_inventory(conn: asyncpg.Connection) -> int:
    checks = 0
    rows = await conn.fetch(
        """select s.sku, s.on_hand, coalesce(sum(m.quantity), 0) as ledger
           from stock s left join movement m on m.sku = s.sku group by s.sku"""
    )
    for r in rows:
        assert r["on_hand"] >= 0, dict(r)
        assert r["on_hand"] == r["ledger"], f"on hand disagrees with the ledger: {dict(r)}"
        checks += 2
    # Every movement published its event: receipts, adjustments and issues each one.
    movements = await conn.fetchval("select count(*) from movement")
    events = await conn.fetchval(
        "select count(*) from outbox where routing_key in "
        "('stock.received', 'stock.adjusted', 'stock.issued')"
    )
    assert movements == events, (movements, events)
    return checks + 1


async def outbox_drained(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("select count(*) from outbox where sent_at is null") == 0

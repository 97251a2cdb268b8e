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
    # A ship-complete order's lines are all reserved in full or none holds units (docs/spec.md
    # §10), and it is in the index of waiting orders exactly while one of them waits.
    torn = await conn.fetch(
        """select o.order_id,
                  coalesce(bool_and(l.backordered = 0) filter (where not l.cancelled), true)
                      as whole,
                  coalesce(bool_and(l.reserved = 0) filter (where not l.cancelled), true)
                      as empty,
                  bool_or(l.backordered > 0) as waits,
                  exists (select 1 from order_waiting_sku w where w.order_id = o.order_id)
                      as indexed
           from customer_order o join line l using (order_id)
           where o.ship_complete group by o.order_id"""
    )
    for order in torn:
        assert order["whole"] or order["empty"], f"ship-complete order torn: {dict(order)}"
        assert bool(order["waits"]) == order["indexed"], dict(order)
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
    return checks + 2 + await _check_allocation_locations(conn)


async def _check_allocation_locations(conn: asyncpg.Connection) -> int:
    """Per (SKU, location), docs/spec.md §8: the SKU's totals are the sums over its
    locations; each location's reserved units are what the decision log and the fulfilments
    say its live lines hold there, and no line holds or shipped more there than it was given
    (no location promised more than it had); a line holds units only where it may ship."""
    totals = await conn.fetch(
        """select s.sku, s.free_units, s.reserved_units,
                  coalesce(sum(x.free_units), 0) as free, coalesce(sum(x.reserved_units), 0)
                  as reserved
           from sku s left join sku_location x on x.sku = s.sku
           group by s.sku
           having (s.free_units, s.reserved_units)
                  <> (coalesce(sum(x.free_units), 0), coalesce(sum(x.reserved_units), 0))"""
    )
    assert not totals, f"SKU totals disagree with their locations: {totals}"
    # What each live line holds at each location: given - taken back - shipped there.
    held = """select l.id as line, l.sku, a.location_id, sum(a.units) as units
              from line l join (
                  select line, location_id,
                         case when rule = 'REVOKED' then -quantity else quantity end as units
                  from reservation
                  union all
                  select line, location_id, -quantity from fulfillment) a on a.line = l.id
              where not l.cancelled group by l.id, l.sku, a.location_id"""
    negative = await conn.fetch(f"select * from ({held}) h where units < 0")
    assert not negative, f"lines that shipped or gave back more than they held there: {negative}"
    places = await conn.fetch(
        f"""select coalesce(x.sku, h.sku) as sku, coalesce(x.location_id, h.location_id)
                   as location_id, coalesce(x.reserved_units, 0) as counted,
                   coalesce(h.units, 0) as units
            from sku_location x full join (
                select sku, location_id, sum(units) as units from ({held}) h
                group by sku, location_id) h
              on h.sku = x.sku and h.location_id = x.location_id
            where coalesce(x.reserved_units, 0) <> coalesce(h.units, 0)"""
    )
    assert not places, f"locations' reserved units disagree with their lines: {places}"
    free = await conn.fetch("select * from sku_location where free_units < 0")
    assert not free, f"locations with negative free units: {free}"
    elsewhere = await conn.fetch(
        """select r.id, l.line_id, r.location_id, l.locations
           from reservation r join line l on l.id = r.line
           where l.locations is not null and not r.location_id = any(l.locations)"""
    )
    assert not elsewhere, f"units given where the line may not ship from: {elsewhere}"
    unknown = await conn.fetch(
        """select location_id from sku_location
           union select location_id from reservation
           except select location_id from location"""
    )
    assert not unknown, f"locations in use the service has no row of: {unknown}"
    return 6


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
    # Every movement published its event: receipts, adjustments, issues and transfers each
    # one (a transfer landing at once: its TRANSFER_IN shares the TRANSFER_OUT's event).
    movements = await conn.fetchval("select count(*) from movement where kind <> 'TRANSFER_IN'")
    events = await conn.fetchval(
        "select count(*) from outbox where routing_key in "
        "('stock.received', 'stock.adjusted', 'stock.issued', 'stock.transferred')"
    )
    assert movements == events, (movements, events)
    return checks + 1 + await _check_inventory_locations(conn)


async def _check_inventory_locations(conn: asyncpg.Connection) -> int:
    """Per (SKU, location), docs/spec.md §8: on hand equals that location's ledger and is
    never negative; the SKU's totals are the sums over its locations; inbound is the open
    inbound expected there; each transfer's arrival mirrors its departure."""
    ledger = await conn.fetch(
        """select coalesce(x.sku, m.sku) as sku, coalesce(x.location_id, m.location_id)
                  as location_id, x.on_hand, coalesce(m.units, 0) as ledger
           from stock_location x full join (
               select sku, location_id, sum(quantity) as units from movement
               group by sku, location_id) m
             on m.sku = x.sku and m.location_id = x.location_id
           where coalesce(x.on_hand, 0) <> coalesce(m.units, 0) or x.on_hand < 0"""
    )
    assert not ledger, f"on hand at a location disagrees with its ledger: {ledger}"
    totals = await conn.fetch(
        """select s.sku from stock s left join stock_location x on x.sku = s.sku
           group by s.sku
           having (s.on_hand, s.inbound_quantity, s.in_transit_quantity)
                  <> (coalesce(sum(x.on_hand), 0), coalesce(sum(x.inbound_quantity), 0),
                      coalesce(sum(x.in_transit_quantity), 0))"""
    )
    assert not totals, f"stock totals disagree with their locations: {totals}"
    inbound = await conn.fetch(
        """select x.sku, x.location_id from stock_location x left join inbound i
             on i.sku = x.sku and i.location_id = x.location_id
           group by x.sku, x.location_id, x.inbound_quantity, x.in_transit_quantity
           having (x.inbound_quantity, x.in_transit_quantity)
                  <> (coalesce(sum(i.open_quantity), 0), coalesce(sum(i.open_quantity)
                      filter (where i.from_location_id <> ''), 0))"""
    )
    assert not inbound, f"inbound at a location disagrees with its open inbound: {inbound}"
    arrivals = await conn.fetch(
        """select i.key from movement i left join movement o
             on o.kind = 'TRANSFER_OUT' and o.key = i.key
           where i.kind = 'TRANSFER_IN'
             and (o.id is null or (o.sku, o.location_id, o.other_location_id, -o.quantity)
                  <> (i.sku, i.other_location_id, i.location_id, i.quantity))"""
    )
    assert not arrivals, f"transfers that arrived other than they left: {arrivals}"
    return 4


async def outbox_drained(conn: asyncpg.Connection) -> bool:
    return await conn.fetchval("select count(*) from outbox where sent_at is null") == 0

"""Ship-complete orders (docs/spec.md §10): their lines hold units only all at once. The
SKU's own fill passes over them (domain/fill.py, `held`); this completion step reserves
every line of an order in full at once, with all the order's SKUs locked in sorted order,
taking only free units no higher-ranked waiting line of that SKU could take. It runs when a
SKU gains free units (after its fill commits), for the orders waiting on that SKU (the index
`order_waiting_sku`, best-ranked order first: never a scan of all orders)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp

from backorder.allocation.v1 import events_pb2
from services.allocation.adapters import lines as lines_db
from services.allocation.adapters import orders as orders_db
from services.allocation.adapters import queue as queue_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters.rows import Executor
from services.allocation.domain import completion
from services.allocation.domain.fill import Fill, FillRule
from services.allocation.domain.model import Line, Sku
from services.allocation.handlers import events
from services.common.amqp import ALLOCATION_EXCHANGE
from services.common.outbox import OutgoingEvent
from services.common.unit_of_work import UnitOfWork, transaction

# Waiting orders read from the index at once when a SKU gains free units (the walk goes on,
# batch after batch, while the SKU has free units left).
ORDERS_PER_BATCH = 500


async def held_lines(uow: UnitOfWork, order_id: str) -> list[Line]:
    """The order's lines still waiting for the completion step, in request order."""
    rows = await uow.conn.fetch(
        """select id from line
           where order_id = $1 and held_for_order and not cancelled and backordered > 0
           order by id""",
        order_id,
    )
    return [await lines_db.line_by_key(uow.conn, r["id"]) for r in rows]


async def _ahead(uow: UnitOfWork, line: Line) -> list[completion.Demand]:
    """The SKU's waiting lines (not held for an order) ranked ahead of `line`: their
    backordered units grouped by the locations they may take from (None: any)."""
    rows = await uow.conn.fetch(
        """select locations, sum(backordered) as units from line
           where sku = $1 and backordered > 0 and not held_for_order
             and (priority > $2 or (priority = $2 and (placed_at, id) < ($3, $4)))
           group by locations""",
        line.sku,
        line.priority,
        line.placed_at,
        line.key,
    )
    return [
        (int(r["units"]), None if r["locations"] is None else frozenset(r["locations"]))
        for r in rows
    ]


async def try_complete(
    uow: UnitOfWork, order_id: str, *, cause: str, cause_event_id: uuid.UUID | None
) -> bool:
    """Reserves every waiting line of ship-complete order `order_id` in full at once if the
    free units allow it; else changes nothing. True when it completed the order."""
    conn = uow.conn
    lines = await held_lines(uow, order_id)
    if not lines:
        return False
    by_sku: dict[str, list[Line]] = defaultdict(list)
    for line in lines:
        by_sku[line.sku].append(line)
    skus: dict[str, Sku] = {}
    for sku in sorted(by_sku):  # the order's SKUs in sorted order (some may be held already)
        skus[sku] = await skus_db.lock_sku(conn, sku)
    lines = [await lines_db.line_by_key(conn, line.key) for line in lines]  # under the locks
    by_sku = defaultdict(list)
    for line in lines:
        if not line.cancelled and line.backordered > 0:
            by_sku[line.sku].append(line)
    plan: dict[str, list[Fill]] = {}
    for sku, sku_lines in by_sku.items():
        places = await skus_db.free_at(conn, sku)
        free = {loc: units for loc, units, _ in places}
        rank = {loc: fill_rank for loc, _, fill_rank in places}
        order = sorted(free, key=lambda loc: (rank[loc], loc))
        takes = completion.plan(
            await _ahead(uow, sku_lines[0]),
            [
                (line.backordered, None if line.locations is None else frozenset(line.locations))
                for line in sku_lines
            ],
            free,
            order,
        )
        if takes is None:
            return False
        positions = [await lines_db.queue_position(conn, line) for line in sku_lines]
        fills = [
            Fill(sku_lines[t.line].key, t.units, FillRule.WHOLE, positions[t.line], t.location_id)
            for t in takes
        ]
        plan[sku] = fills
    occurred_at = Timestamp()
    occurred_at.GetCurrentTime()
    reserved = 0
    reserved_events = events.reserved_events(cause_event_id, occurred_at)
    await uow.flush()  # events emitted before go first: per-SKU order
    for sku in sorted(plan):
        await queue_db.apply_fills(
            conn,
            sku,
            plan[sku],
            cause=cause,
            cause_event_id=cause_event_id,
            policy=skus[sku].fill_policy,
            events=reserved_events,
        )
        given: dict[str, int] = defaultdict(int)
        for f in plan[sku]:
            given[f.location_id] += f.quantity
        bands: dict[int, tuple[int, int]] = {}
        for line in by_sku[sku]:
            n, units = bands.get(line.priority, (0, 0))
            bands[line.priority] = (n - 1, units - line.backordered)
        await skus_db.change_totals(
            conn, sku, at={loc: (-n, n) for loc, n in given.items()}, bands=bands
        )
        reserved += sum(given.values())
    await conn.execute("delete from order_waiting_sku where order_id = $1", order_id)
    found = await orders_db.find_order(conn, order_id)
    assert found is not None
    version = await orders_db.bump_version(conn, order_id)
    uow.emit(
        order_ready_event(
            found.order_id,
            found.customer_id,
            await _line_count(uow, order_id),
            reserved,
            version,
            cause_event_id,
        )
    )
    return True


async def _line_count(uow: UnitOfWork, order_id: str) -> int:
    return int(
        await uow.conn.fetchval(
            "select count(*) from line where order_id = $1 and not cancelled", order_id
        )
    )


def complete_after_commit(
    uow: UnitOfWork, sku: str, cause: str, cause_event_id: uuid.UUID | None
) -> None:
    """Once `uow` committed with free units of `sku` left after its fill: offers them to the
    ship-complete orders waiting on it, best-ranked first, each in a transaction of its own
    that locks the order's SKUs in sorted order before any other (so completion steps never
    wait on locks out of order). It walks the orders waiting on this SKU (the index, in
    batches) until the SKU has no free units left or none is left to try: every order the
    units can complete completes. An order that cannot (another of its SKUs lacks free
    units, read without locks) is passed over without a transaction. A crash between the
    commit and this leaves the order to the next change of one of its SKUs."""

    async def complete(pool: asyncpg.Pool) -> None:
        after: tuple[int, object, str] | None = None
        while True:
            rows = await pool.fetch(
                """with batch as (
                     select order_id, priority, placed_at from order_waiting_sku
                     where sku = $1
                       and ($2::int is null or priority < $2
                            or (priority = $2
                                and (placed_at, order_id) > ($3::timestamptz, $4::text)))
                     order by priority desc, placed_at, order_id limit $5)
                   select b.order_id, b.priority, b.placed_at,
                          not exists (
                            select 1 from line l join sku s using (sku)
                            where l.order_id = b.order_id and l.held_for_order
                              and not l.cancelled and l.backordered > 0
                            group by l.sku, s.free_units
                            having sum(l.backordered) > s.free_units) as may_complete
                   from batch b order by b.priority desc, b.placed_at, b.order_id""",
                sku,
                *(after if after is not None else (None, None, None)),
                ORDERS_PER_BATCH,
            )
            for row in rows:
                if not row["may_complete"]:
                    continue
                if not await pool.fetchval("select free_units from sku where sku = $1", sku):
                    return

                async def work(uow: UnitOfWork, order_id: str = row["order_id"]) -> bool:
                    return await try_complete(
                        uow, order_id, cause=cause, cause_event_id=cause_event_id
                    )

                await transaction(pool, work)
            if len(rows) < ORDERS_PER_BATCH:
                return
            last = rows[-1]
            after = (last["priority"], last["placed_at"], last["order_id"])

    uow.follow_up(f"complete:{sku}", complete)


async def order_etas(conn: Executor, lines: list[Line]) -> list[Line]:
    """`lines` with each waiting line of a ship-complete order showing its order's ETA (the
    latest of its waiting lines' own ETAs; unknown if one of theirs is: docs/spec.md §10),
    the lines ship together. One query for the page."""
    orders = sorted({ln.order_id for ln in lines if ln.backordered > 0})
    if not orders:
        return lines
    rows = await conn.fetch(
        """select order_id, max(eta) as latest, bool_or(eta is null) as unknown from line
           where order_id = any($1::text[]) and held_for_order and not cancelled
             and backordered > 0
           group by order_id""",
        orders,
    )
    eta = {r["order_id"]: None if r["unknown"] else r["latest"] for r in rows}
    return [
        replace(ln, eta=eta[ln.order_id]) if ln.backordered > 0 and ln.order_id in eta else ln
        for ln in lines
    ]


async def line_cancelled(uow: UnitOfWork, order_id: str) -> None:
    """A line of ship-complete order `order_id` was cancelled on its own: the index keeps
    only the SKUs the order still waits for, and, once the transaction committed, the order
    is tried again (the cancelled line may have been all it lacked)."""
    await uow.conn.execute(
        """delete from order_waiting_sku w where w.order_id = $1
           and not exists (select 1 from line l
                           where l.order_id = w.order_id and l.sku = w.sku
                             and l.held_for_order and not l.cancelled and l.backordered > 0)""",
        order_id,
    )

    async def complete(pool: asyncpg.Pool) -> None:
        async def work(uow: UnitOfWork) -> bool:
            return await try_complete(uow, order_id, cause="CancelLine", cause_event_id=None)

        await transaction(pool, work)

    uow.follow_up(f"order:{order_id}", complete)


async def orders_of(uow: UnitOfWork, keys: list[int]) -> list[str]:
    """The ship-complete orders of lines `keys` (lines shrinkage took units back from), in
    sorted order."""
    if not keys:
        return []
    rows = await uow.conn.fetch(
        """select distinct order_id from line where id = any($1::bigint[]) and held_for_order
           order by order_id""",
        keys,
    )
    return [r["order_id"] for r in rows]


async def start_waiting(uow: UnitOfWork, order_id: str) -> None:
    """Enters the order in the index of waiting ship-complete orders, under every SKU of its
    open lines."""
    await uow.conn.execute(
        """insert into order_waiting_sku (sku, order_id, priority, placed_at)
           select distinct l.sku, o.order_id, o.priority, o.placed_at
           from customer_order o join line l using (order_id)
           where o.order_id = $1 and not l.cancelled
           on conflict (sku, order_id) do nothing""",
        order_id,
    )


async def stop_waiting(uow: UnitOfWork, order_id: str) -> None:
    await uow.conn.execute("delete from order_waiting_sku where order_id = $1", order_id)


def order_ready_event(
    order_id: str,
    customer_id: str,
    line_count: int,
    reserved: int,
    version: int,
    cause_event_id: uuid.UUID | None,
) -> OutgoingEvent:
    message = events_pb2.OrderReady(
        order_id=order_id,
        customer_id=customer_id,
        line_count=line_count,
        reserved_quantity=reserved,
        version=version,
        cause_event_id=str(cause_event_id) if cause_event_id else "",
    )
    return _order_event("order.ready", order_id, message)


def order_waiting_event(
    order_id: str,
    customer_id: str,
    released: int,
    version: int,
    cause_event_id: uuid.UUID | None,
) -> OutgoingEvent:
    message = events_pb2.OrderWaiting(
        order_id=order_id,
        customer_id=customer_id,
        released_quantity=released,
        version=version,
        cause_event_id=str(cause_event_id) if cause_event_id else "",
    )
    return _order_event("order.waiting", order_id, message)


def _order_event(
    routing_key: str, order_id: str, message: events_pb2.OrderReady | events_pb2.OrderWaiting
) -> OutgoingEvent:
    # Keyed by the order (the outbox's per-key ordering column is named `sku`).
    event = OutgoingEvent(ALLOCATION_EXCHANGE, routing_key, order_id, message)
    message.event_id = str(event.event_id)
    message.occurred_at.GetCurrentTime()
    return event

"""Allocation use cases: each runs in one transaction with the SKU row locked, calls the
pure fill, writes reservations and records outgoing events in the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from backorder.allocation.v1 import events_pb2
from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation.adapters import postgres as db
from services.allocation.adapters.postgres import FilledLine, LineRow, SkuRow
from services.allocation.domain.fill import fill
from services.common import validation
from services.common.amqp import ALLOCATION_EXCHANGE
from services.common.db import run_in_transaction
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.outbox import OutgoingEvent, add_events, new_event

# Waiting lines read per round trip while filling: bounds memory on a queue of any length.
FILL_CHUNK = 2000


@dataclass(frozen=True)
class Allocate:
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int = 0
    allow_partial: bool = False
    customer_id: str = ""

    def validated(self) -> Allocate:
        validation.identifier(self.order_id, "order_id")
        validation.identifier(self.line_id, "line_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        validation.priority(self.priority)
        validation.optional_identifier(self.customer_id, "customer_id")
        return self

    def matches(self, line: LineRow) -> bool:
        mine = (self.sku, self.quantity, self.priority, self.allow_partial, self.customer_id)
        return mine == (
            line.sku,
            line.quantity,
            line.priority,
            line.allow_partial,
            line.customer_id,
        )


@dataclass(frozen=True)
class LineView:
    """A line as clients see it: the row plus where it stands in its queue."""

    line: LineRow
    queue_position: int


@dataclass(frozen=True)
class Placed:
    view: LineView
    reserved_at_once: int
    repeated: bool


async def allocate(pool: asyncpg.Pool, cmd: Allocate) -> Placed:
    cmd = cmd.validated()

    async def work(conn: asyncpg.Connection) -> Placed:
        earlier = await db.find_line(conn, cmd.order_id, cmd.line_id)
        if earlier is not None:
            return Placed(await _repeat(conn, cmd, earlier), earlier.reserved, True)
        sku = await db.lock_sku(conn, cmd.sku)
        line, sku = await db.insert_line(
            conn,
            order_id=cmd.order_id,
            line_id=cmd.line_id,
            sku=cmd.sku,
            quantity=cmd.quantity,
            priority=cmd.priority,
            allow_partial=cmd.allow_partial,
            customer_id=cmd.customer_id,
        )
        filled, sku = await fill_sku(conn, sku, cause="Allocate", cause_event_id=None)
        mine = next((f for f in filled if f.line.id == line.id), None)
        if mine is not None:
            line = mine.line
        if line.backordered and not sku.backorders_accepted:
            raise FailedPrecondition(
                f"sku {cmd.sku!r} accepts no backorders and only {mine.reserved_now if mine else 0}"
                f" of {cmd.quantity} units can be reserved now"
            )
        if sku.backorder_limit and sku.backordered_units > sku.backorder_limit:
            raise FailedPrecondition(
                f"sku {cmd.sku!r} would have {sku.backordered_units} units backordered, over its "
                f"limit of {sku.backorder_limit}"
            )
        view = LineView(line, await db.queue_position(conn, line))
        events = _reserved_events(filled, cause_event_id=None)
        if line.backordered:
            events.append(_backordered_event(view))
        await add_events(conn, events)
        return Placed(view, mine.reserved_now if mine else 0, False)

    return await run_in_transaction(pool, work)


async def _repeat(conn: asyncpg.Connection, cmd: Allocate, earlier: LineRow) -> LineView:
    if not cmd.matches(earlier):
        raise AlreadyExists(
            f"line ({cmd.order_id!r}, {cmd.line_id!r}) was already placed with other content "
            f"({earlier.quantity} of {earlier.sku!r} at priority {earlier.priority}); "
            "use a new line_id"
        )
    return LineView(earlier, await db.queue_position(conn, earlier))


async def get_line(pool: asyncpg.Pool, order_id: str, line_id: str) -> LineView:
    validation.identifier(order_id, "order_id")
    validation.identifier(line_id, "line_id")
    async with pool.acquire() as conn:
        line = await db.find_line(conn, order_id, line_id)
        if line is None:
            raise NotFound(f"line ({order_id!r}, {line_id!r}) was never placed")
        return LineView(line, await db.queue_position(conn, line))


async def stock_received(pool: asyncpg.Pool, event: inventory_events.StockReceived) -> None:
    """Applies a receipt once: its units become free and the SKU's queue is filled."""
    event_id = _event_id(event.event_id)
    validation.sku(event.sku)
    validation.quantity(event.quantity)

    async def work(conn: asyncpg.Connection) -> None:
        if not await db.mark_event_processed(conn, event_id, "stock.received"):
            return
        await db.lock_sku(conn, event.sku)
        sku = await db.add_free_units(conn, event.sku, event.quantity)
        filled, _ = await fill_sku(conn, sku, cause="stock.received", cause_event_id=event_id)
        await add_events(conn, _reserved_events(filled, cause_event_id=event_id))

    await run_in_transaction(pool, work)


async def fill_sku(
    conn: asyncpg.Connection, sku: SkuRow, *, cause: str, cause_event_id: uuid.UUID | None
) -> tuple[list[FilledLine], SkuRow]:
    """Runs the fill for a locked SKU: walks its queue in rank order, chunk by chunk."""
    if sku.free_units <= 0 or sku.waiting_lines == 0:
        return [], sku
    free, ahead, skipped = sku.free_units, 0, False
    filled: list[FilledLine] = []
    last: LineRow | None = None
    while True:
        chunk = await db.waiting_lines(conn, sku.sku, last, FILL_CHUNK)
        outcome = fill(
            map(db.as_waiting, chunk), free, sku.fill_policy, waiting_ahead=ahead, skipped=skipped
        )
        filled += await db.apply_fills(
            conn,
            sku.sku,
            outcome.fills,
            cause=cause,
            cause_event_id=cause_event_id,
            policy=sku.fill_policy,
        )
        free, ahead, skipped = outcome.free_after, outcome.waiting_ahead, outcome.skipped
        if outcome.stopped or len(chunk) < FILL_CHUNK:
            break
        last = chunk[-1]
    units = sku.free_units - free
    if units == 0:
        return filled, sku
    lines_done = sum(1 for f in filled if f.line.backordered == 0)
    return filled, await db.record_fill_totals(conn, sku.sku, units, lines_done)


def line_status(line: LineRow) -> events_pb2.LineStatus:
    return events_pb2.LineStatus.Value(f"LINE_STATUS_{line.status}")


def _reserved_events(
    filled: list[FilledLine], *, cause_event_id: uuid.UUID | None
) -> list[OutgoingEvent]:
    return [
        new_event(
            ALLOCATION_EXCHANGE,
            "line.reserved",
            events_pb2.LineReserved(
                sku=f.line.sku,
                order_id=f.line.order_id,
                line_id=f.line.line_id,
                quantity=f.line.quantity,
                reserved_now=f.reserved_now,
                reserved_quantity=f.line.reserved,
                backordered_quantity=f.line.backordered,
                status=line_status(f.line),
                reservation_id=f.reservation_id,
                cause_event_id=str(cause_event_id) if cause_event_id else "",
            ),
        )
        for f in filled
    ]


def _backordered_event(view: LineView) -> OutgoingEvent:
    line = view.line
    return new_event(
        ALLOCATION_EXCHANGE,
        "line.backordered",
        events_pb2.LineBackordered(
            sku=line.sku,
            order_id=line.order_id,
            line_id=line.line_id,
            quantity=line.quantity,
            backordered_quantity=line.backordered,
            reserved_quantity=line.reserved,
            queue_position=view.queue_position,
            status=line_status(line),
        ),
    )


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument("event_id", f"{value!r} is not a UUID") from None

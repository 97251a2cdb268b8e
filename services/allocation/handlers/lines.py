"""Use cases of one order line once placed (placing it is handlers/placing.py): read and
list lines, cancel, fulfill, change its priority. Each runs in one transaction
(services.common.unit_of_work) with the line's SKU locked."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import asyncpg

from services.allocation.adapters import lines as lines_db
from services.allocation.adapters import orders as orders_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters.lines import Allocation
from services.allocation.domain.fill import DEFAULT_LOCATION
from services.allocation.domain.model import Line, LineStatus, Sku
from services.allocation.handlers import events, ship_complete
from services.allocation.handlers.commands import (
    FulfillLine,
    line_not_found,
    validate_line_ref,
)
from services.allocation.handlers.locked_sku import fill_sku, refresh_etas
from services.common import paging, validation
from services.common.errors import AlreadyExists, FailedPrecondition
from services.common.pages import Page
from services.common.unit_of_work import UnitOfWork, look_up_or_lock, transaction


@dataclass(frozen=True)
class LineView:
    """A line as clients see it: the line plus where it stands in its queue."""

    line: Line
    queue_position: int
    # Where the line holds and shipped units, by location_id.
    allocations: list[Allocation] = field(default_factory=list)


async def get_line(pool: asyncpg.Pool, order_id: str, line_id: str) -> LineView:
    validate_line_ref(order_id, line_id)
    found = await lines_db.find_line_with_position(pool, order_id, line_id)
    if found is None:
        raise line_not_found(order_id, line_id)
    line, position, allocations = found
    [line] = await ship_complete.order_etas(pool, [line])  # docs/spec.md §10
    return LineView(line, position, allocations)


async def list_lines(
    pool: asyncpg.Pool,
    *,
    sku: str = "",
    order_id: str = "",
    status: LineStatus | None = None,
    location_id: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> Page[LineView]:
    if sku:
        validation.sku(sku)
    validation.optional_identifier(order_id, "order_id")
    validation.optional_identifier(location_id, "location_id")
    limit = paging.page_size(page_size)
    query: tuple[str, ...] = ("lines", sku, order_id, status.value if status else "")
    if location_id:
        query += (location_id,)
    after = (paging.decode(page_token, query, [int]) or [0])[0]
    rows = await lines_db.list_lines(
        pool,
        sku=sku or None,
        order_id=order_id or None,
        status=status,
        location_id=location_id or None,
        after_key=after,
        limit=limit + 1,
    )
    shown = await ship_complete.order_etas(pool, [row[0] for row in rows[:limit]])
    views = [LineView(line, *row[1:]) for line, row in zip(shown, rows[:limit], strict=True)]
    token = paging.encode([views[-1].line.key], query) if len(rows) > limit else ""
    return Page(views, token)


@dataclass(frozen=True)
class Cancelled:
    view: LineView
    released: int


async def cancel_line(pool: asyncpg.Pool, order_id: str, line_id: str) -> Cancelled:
    """Cancels a line: its reserved units become free and the SKU's queue is filled."""
    validate_line_ref(order_id, line_id)

    async def work(uow: UnitOfWork) -> Cancelled:
        line, _ = await _locked_line(uow, order_id, line_id)
        if line.cancelled:
            return Cancelled(LineView(line, 0), 0)
        if line.shipped:
            raise FailedPrecondition(
                f"line ({order_id!r}, {line_id!r}) is fulfilled: every unit was shipped, "
                "nothing is left to cancel"
            )
        cancelled = await cancel_locked_line(uow, line, cause="CancelLine")
        order = await orders_db.find_order(uow.conn, order_id)
        if order is not None and order.ship_complete:
            await ship_complete.line_cancelled(uow, order_id)
        return cancelled

    return await transaction(pool, work)


async def cancel_locked_line(uow: UnitOfWork, line: Line, *, cause: str) -> Cancelled:
    """Cancels open `line`, whose SKU this transaction has locked: its reserved units become
    free, the SKU's queue is filled and its ETAs walked."""
    released, waiting = line.reserved, line.backordered
    held = await lines_db.allocations(uow.conn, line.key) if released else []
    line = await lines_db.cancel_line(uow.conn, line.key)
    sku = await skus_db.change_totals(
        uow.conn,
        line.sku,
        at={a.location_id: (a.reserved, -a.reserved) for a in held if a.reserved},
        bands={line.priority: (-1 if waiting else 0, -waiting)},
    )
    uow.emit(events.cancelled_event(line, released))
    _, sku = await fill_sku(uow, sku, cause=cause, cause_event_id=None)
    await refresh_etas(uow, sku)
    return Cancelled(LineView(line, 0), released)


async def fulfill_line(pool: asyncpg.Pool, cmd: FulfillLine) -> LineView:
    """Marks reserved units as shipped; the inventory service issues them on line.fulfilled."""
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> LineView:
        repeat, locked = await look_up_or_lock(
            lambda: _fulfillment_repeat(uow, cmd),
            lambda: _locked_line(uow, cmd.order_id, cmd.line_id),
        )
        if repeat is not None:
            return repeat
        assert locked is not None
        line, _ = locked
        if line.cancelled:
            raise FailedPrecondition(
                f"line ({cmd.order_id!r}, {cmd.line_id!r}) is cancelled; nothing can be shipped"
            )
        location_id, reserved = await _shipping_from(uow, cmd, line)
        if cmd.quantity > reserved:
            order = await orders_db.find_order(uow.conn, cmd.order_id)
            if order is not None and order.ship_complete and line.backordered > 0:
                raise FailedPrecondition(
                    f"order {cmd.order_id!r} ships complete and is not ready: its lines hold "
                    "units only once every one of them can be reserved in full"
                )
            at = f" at {location_id!r}" if cmd.location_id else ""
            raise FailedPrecondition(
                f"line ({cmd.order_id!r}, {cmd.line_id!r}) has {reserved} units reserved{at}; "
                f"cannot ship {cmd.quantity}"
            )
        line = await lines_db.fulfill(
            uow.conn, line.key, cmd.fulfillment_id, cmd.quantity, location_id
        )
        await skus_db.change_totals(
            uow.conn, line.sku, at={location_id: (0, -cmd.quantity)}, fulfilled=cmd.quantity
        )
        uow.emit(events.fulfilled_event(line, cmd.fulfillment_id, cmd.quantity, location_id))
        view = LineView(line, await lines_db.queue_position(uow.conn, line))
        return await with_allocations(uow.conn, view)

    return await transaction(pool, work)


async def _shipping_from(uow: UnitOfWork, cmd: FulfillLine, line: Line) -> tuple[str, int]:
    """Where the shipment leaves from and the units the line holds there: the location
    asked for, or the one where the line holds units (docs/spec.md §8)."""
    held = {a.location_id: a.reserved for a in await lines_db.allocations(uow.conn, line.key)}
    holding = sorted(loc for loc, units in held.items() if units > 0)
    if cmd.location_id:
        return cmd.location_id, held.get(cmd.location_id, 0)
    if len(holding) > 1:
        raise FailedPrecondition(
            f"line ({cmd.order_id!r}, {cmd.line_id!r}) holds units at {', '.join(holding)}; "
            "give location_id"
        )
    return (holding[0] if holding else DEFAULT_LOCATION), line.reserved


async def _fulfillment_repeat(uow: UnitOfWork, cmd: FulfillLine) -> LineView | None:
    earlier = await lines_db.find_fulfillment(uow.conn, cmd.fulfillment_id)
    if earlier is None:
        return None
    line = await lines_db.line_by_key(uow.conn, earlier.line_key)
    # An empty location_id repeats a shipment from wherever it went.
    if (line.order_id, line.line_id, earlier.quantity) != (
        cmd.order_id,
        cmd.line_id,
        cmd.quantity,
    ) or cmd.location_id not in ("", earlier.location_id):
        raise AlreadyExists(
            f"fulfillment {cmd.fulfillment_id!r} was already recorded with other content "
            f"({earlier.quantity} units of line ({line.order_id!r}, {line.line_id!r}) from "
            f"{earlier.location_id!r}); use a new fulfillment_id"
        )
    view = LineView(line, await lines_db.queue_position(uow.conn, line))
    return await with_allocations(uow.conn, view)


async def set_priority(pool: asyncpg.Pool, order_id: str, line_id: str, priority: int) -> LineView:
    """Changes a line's rank; the fill runs, since the line may now be served first."""
    validate_line_ref(order_id, line_id)
    validation.priority(priority)

    async def work(uow: UnitOfWork) -> LineView:
        conn = uow.conn
        if await orders_db.is_order(conn, order_id):
            # A line of an AllocateOrder order: the order's priority (every line's) changes.
            return await set_order_priority(uow, order_id, line_id, priority)
        line, sku = await _locked_line(uow, order_id, line_id)
        if line.priority == priority:
            return LineView(line, await lines_db.queue_position(conn, line))
        if line.cancelled or line.shipped:
            raise FailedPrecondition(
                f"line ({order_id!r}, {line_id!r}) is {line.status.lower()}; "
                "its priority no longer matters"
            )
        await set_locked_priority(uow, line, sku, priority)
        line = await lines_db.line_by_key(conn, line.key)  # after the fill and the ETA walk
        view = LineView(line, await lines_db.queue_position(conn, line))
        return await with_allocations(conn, view)

    return await transaction(pool, work)


async def set_locked_priority(uow: UnitOfWork, line: Line, sku: Sku, priority: int) -> None:
    """Moves open `line`, whose SKU this transaction has locked, to `priority`, then fills
    the SKU's queue and walks its ETAs."""
    conn = uow.conn
    old, line = line.priority, await lines_db.set_priority(conn, line.key, priority)
    if line.backordered:
        bands = {old: (-1, -line.backordered), priority: (1, line.backordered)}
        sku = await skus_db.change_totals(conn, line.sku, bands=bands)
    _, sku = await fill_sku(uow, sku, cause="SetPriority", cause_event_id=None)
    await refresh_etas(uow, sku)


async def set_order_priority(
    uow: UnitOfWork, order_id: str, line_id: str, priority: int
) -> LineView:
    """SetPriority on a line of an order: every open line of the order gets `priority`
    (docs/spec.md §10), the order's SKUs locked in sorted order."""
    conn = uow.conn
    target = await lines_db.find_line(conn, order_id, line_id)
    if target is None:
        raise line_not_found(order_id, line_id)
    rows = await orders_db.order_lines(conn, order_id)
    locked = {s: await skus_db.lock_sku(conn, s) for s in sorted({r[0].sku for r in rows})}
    if not any(r[0].key == target.key for r in rows):  # pragma: no cover - lines never move
        raise line_not_found(order_id, line_id)
    target = await lines_db.line_by_key(conn, target.key)
    if target.priority != priority and (target.cancelled or target.shipped):
        raise FailedPrecondition(
            f"line ({order_id!r}, {line_id!r}) is {target.status.lower()}; "
            "its priority no longer matters"
        )
    for row in rows:
        line = await lines_db.line_by_key(conn, row[0].key)
        if line.priority == priority or line.cancelled or line.shipped:
            continue
        sku = await skus_db.get_sku(conn, line.sku)
        assert sku is not None and line.sku in locked
        await set_locked_priority(uow, line, sku, priority)
    await orders_db.set_priority(conn, order_id, priority)
    line = await lines_db.line_by_key(conn, target.key)
    view = LineView(line, await lines_db.queue_position(conn, line))
    return await with_allocations(conn, view)


async def with_allocations(conn: asyncpg.Connection, view: LineView) -> LineView:
    """The view with its line's allocations (read only when it holds or shipped units)."""
    if view.line.reserved + view.line.fulfilled == 0:
        return view
    return replace(view, allocations=await lines_db.allocations(conn, view.line.key))


async def _locked_line(uow: UnitOfWork, order_id: str, line_id: str) -> tuple[Line, Sku]:
    """The line, read again after locking its SKU (every change of a line holds that lock)."""
    line = await lines_db.find_line(uow.conn, order_id, line_id)
    if line is None:
        raise line_not_found(order_id, line_id)
    sku = await skus_db.lock_sku(uow.conn, line.sku)
    line = await lines_db.line_by_key(uow.conn, line.key)
    return line, sku

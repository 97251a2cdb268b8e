"""Use cases of an order (docs/spec.md §10): place its lines together (AllocateOrder), read it
(GetOrder), cancel it (CancelOrder). Each runs in one transaction with every SKU of the
order locked in sorted order; each line goes through the one placement path of Allocate
(placing.place_new_line)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.allocation.adapters import lines as lines_db
from services.allocation.adapters import orders as orders_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters.orders import OrderRow
from services.allocation.domain.model import Line, LineStatus
from services.allocation.handlers import ship_complete
from services.allocation.handlers.commands import AllocateOrder
from services.allocation.handlers.lines import LineView, cancel_locked_line
from services.allocation.handlers.placing import order_id_taken, place_new_line
from services.common import db, validation
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound
from services.common.unit_of_work import UnitOfWork, transaction


class OrderStatus:
    """Where an order stands (the proto's OrderStatus is ORDER_STATUS_<name>)."""

    WAITING = "WAITING"
    PARTIALLY_RESERVED = "PARTIALLY_RESERVED"
    READY = "READY"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class OrderView:
    order: OrderRow
    lines: list[LineView]

    @property
    def status(self) -> str:
        return order_status([v.line for v in self.lines])

    @property
    def eta(self) -> tuple[datetime | None, bool]:
        """The latest of its waiting lines' ETAs, and whether it is known (unknown when a
        waiting line's is, or when nothing waits)."""
        waiting = [v.line for v in self.lines if v.line.backordered > 0]
        if not waiting or any(line.eta is None for line in waiting):
            return None, False
        return max(line.eta for line in waiting if line.eta is not None), True


def order_status(lines: list[Line]) -> str:
    """The order's status from its lines' (docs/spec.md §10)."""
    open_lines = [line for line in lines if not line.cancelled]
    if not open_lines:
        return OrderStatus.CANCELLED
    if all(line.status == LineStatus.FULFILLED for line in open_lines):
        return OrderStatus.FULFILLED
    if any(line.fulfilled > 0 for line in lines):
        return OrderStatus.PARTIALLY_FULFILLED
    if all(line.backordered == 0 for line in open_lines):
        return OrderStatus.READY
    if any(line.reserved > 0 for line in open_lines):
        return OrderStatus.PARTIALLY_RESERVED
    return OrderStatus.WAITING


def order_not_found(order_id: str) -> NotFound:
    return NotFound(
        f"order {order_id!r} was never placed by AllocateOrder",
        resource_type="order",
        resource_name=order_id,
    )


async def _view(conn: asyncpg.Connection | asyncpg.Pool, order: OrderRow) -> OrderView:
    rows = await orders_db.order_lines(conn, order.order_id)
    return OrderView(order, [LineView(*row) for row in rows])


async def allocate_order(pool: asyncpg.Pool, cmd: AllocateOrder) -> tuple[OrderView, bool]:
    """Places every line of the order, all or none. Returns the order and whether this was a
    repeat (then: its current state)."""
    cmd = cmd.validated()
    locations = sorted({loc for line in cmd.lines for loc in line.locations})
    if locations:
        cmd.check_known(await skus_db.known_locations(pool, locations))

    async def work(uow: UnitOfWork) -> tuple[OrderView, bool]:
        conn = uow.conn
        await orders_db.lock_order_id(conn, cmd.order_id, shared=False)
        earlier = await orders_db.find_order(conn, cmd.order_id)
        if earlier is not None:
            view = await _view(conn, earlier)
            if not cmd.matches(earlier, [v.line for v in view.lines]):
                raise AlreadyExists(
                    f"order {cmd.order_id!r} was already placed with other content "
                    f"({earlier.line_count} lines at priority {earlier.placed_priority}); "
                    "use a new order_id"
                )
            return view, True
        if await orders_db.order_taken_by_allocate(conn, cmd.order_id):
            raise order_id_taken(cmd.order_id, "Allocate", "AllocateOrder")
        for sku in sorted({line.sku for line in cmd.lines}):
            await skus_db.lock_sku(conn, sku)
        order = await orders_db.insert_order(
            conn,
            cmd.order_id,
            cmd.priority,
            cmd.customer_id,
            cmd.ship_complete,
            len(cmd.lines),
        )
        for line in cmd.line_commands():
            await place_new_line(uow, line, cause="AllocateOrder", held_for_order=cmd.ship_complete)
        await orders_db.set_lines_placed_at(conn, cmd.order_id, order.placed_at)
        if cmd.ship_complete:
            await ship_complete.start_waiting(uow, cmd.order_id)
            done = await ship_complete.try_complete(
                uow, cmd.order_id, cause="AllocateOrder", cause_event_id=None
            )
            if not done:
                await _check_ship_complete_may_wait(uow, cmd)
        order = await orders_db.find_order(conn, cmd.order_id) or order
        return await _view(conn, order), False

    return await transaction(pool, work)


async def _check_ship_complete_may_wait(uow: UnitOfWork, cmd: AllocateOrder) -> None:
    """A ship-complete order that could not complete at once waits: each SKU's policy must
    accept its lines as backorders."""
    for i, line in enumerate(cmd.lines):
        sku = await skus_db.get_sku(uow.conn, line.sku)
        assert sku is not None
        if not sku.backorders_accepted:
            raise FailedPrecondition(
                f"lines[{i}]: sku {line.sku!r} accepts no backorders and the ship-complete "
                f"order {cmd.order_id!r} cannot be reserved in full now"
            )
        if sku.backorder_limit and sku.backordered_units > sku.backorder_limit:
            raise FailedPrecondition(
                f"lines[{i}]: sku {line.sku!r} would have {sku.backordered_units} units "
                f"backordered, over its limit of {sku.backorder_limit}"
            )


async def get_order(pool: asyncpg.Pool, order_id: str) -> OrderView:
    validation.identifier(order_id, "order_id")
    # One snapshot: the order's row and its lines as of the same moment.
    async with (
        db.connection(pool) as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        order = await orders_db.find_order(conn, order_id)
        if order is None:
            raise order_not_found(order_id)
        return await _view(conn, order)


@dataclass(frozen=True)
class OrderCancelled:
    view: OrderView
    released: int


async def cancel_order(pool: asyncpg.Pool, order_id: str) -> OrderCancelled:
    """Cancels every open line of the order (a fully shipped line stays as it is); a repeat
    answers with the cancelled order and releases nothing."""
    validation.identifier(order_id, "order_id")

    async def work(uow: UnitOfWork) -> OrderCancelled:
        conn = uow.conn
        order = await orders_db.find_order(conn, order_id)
        if order is None:
            raise order_not_found(order_id)
        rows = await orders_db.order_lines(conn, order_id)
        for sku in sorted({row[0].sku for row in rows}):
            await skus_db.lock_sku(conn, sku)
        released = 0
        for row in rows:
            line = await lines_db.line_by_key(conn, row[0].key)  # read again under the lock
            if line.cancelled or line.shipped:
                continue
            released += (await cancel_locked_line(uow, line, cause="CancelOrder")).released
        await ship_complete.stop_waiting(uow, order_id)
        if released or any(not r[0].cancelled and not r[0].shipped for r in rows):
            await orders_db.bump_version(conn, order_id)
        order = await orders_db.find_order(conn, order_id)
        assert order is not None
        return OrderCancelled(await _view(conn, order), released)

    return await transaction(pool, work)

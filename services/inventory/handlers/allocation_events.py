"""What the inventory service does with the allocation service's events: a fulfilled line
issues its units from on hand at its location (empty: `default`, events from before
locations). Each event is applied exactly once (consume_once)."""

from __future__ import annotations

import asyncpg

from backorder.allocation.v1 import events_pb2 as allocation_events
from services.common import validation
from services.common.unit_of_work import (
    UnitOfWork,
    consume_once,
    look_up_or_lock,
    parse_event_id,
)
from services.inventory import metrics
from services.inventory.adapters import postgres as db
from services.inventory.domain import stock as rules
from services.inventory.domain.model import (
    DEFAULT_LOCATION,
    Movement,
    MovementKind,
    StockChangeKind,
)
from services.inventory.handlers import events


async def line_fulfilled(pool: asyncpg.Pool, event: allocation_events.LineFulfilled) -> None:
    """Issues the fulfilled units from on hand, exactly once per fulfillment_id (and per
    event_id): a redelivery or a second event of the same fulfillment changes nothing. Units
    not on hand are recorded as the movement's shortfall, never taken below zero."""
    event_id = parse_event_id(event.event_id)
    validation.sku(event.sku)
    validation.identifier(event.fulfillment_id, "fulfillment_id")
    validation.identifier(event.order_id, "order_id")
    validation.identifier(event.line_id, "line_id")
    validation.quantity(event.quantity)
    location = event.location_id or DEFAULT_LOCATION
    validation.sku(location, "location_id")

    async def work(uow: UnitOfWork) -> None:
        conn = uow.conn
        # Another event of the same fulfillment may have been applied (or committed while
        # this one waited for the lock): nothing more is issued.
        earlier, stock = await look_up_or_lock(
            lambda: db.find_movement(conn, MovementKind.ISSUE, event.fulfillment_id),
            lambda: db.lock_stock(conn, event.sku),
        )
        if earlier is not None:
            return
        assert stock is not None
        # A location the inventory does not know holds nothing: all of it is a shortfall.
        here = await db.location_on_hand(conn, event.sku, location)
        outcome = rules.issue(here, event.quantity)
        total = stock.on_hand
        if outcome.issued:
            total = (await db.change_on_hand(conn, event.sku, location, -outcome.issued)).total
        movement: Movement = await db.insert_movement(
            conn,
            sku=event.sku,
            kind=MovementKind.ISSUE,
            key=event.fulfillment_id,
            quantity=-outcome.issued,
            on_hand_after=total,
            order_id=event.order_id,
            line_id=event.line_id,
            shortfall=outcome.shortfall,
            event_id=event_id,
            location_id=location,
        )
        uow.emit(events.issued_event(movement))
        stock = await db.get_stock(conn, event.sku)
        assert stock is not None
        await db.notify_stock_changed(
            conn, stock, StockChangeKind.ISSUE, location_id=location, movement_id=movement.id
        )
        if movement.shortfall:
            uow.after_commit(lambda: metrics.shortfall(movement, event.quantity))

    await consume_once(pool, event_id, "line.fulfilled", work)

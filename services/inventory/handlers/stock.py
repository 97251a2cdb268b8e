"""Use cases that change stock: receive, adjust, expect and cancel inbound. Each runs in
one transaction (services.common.unit_of_work).

Every change of one SKU first takes the SKU's stock row lock (lock_stock or add_on_hand):
changes of a SKU are serialised, its outbox rows are in commit order, and a concurrent
repeat of an idempotency key waits and then finds what the first call wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.common import validation
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound
from services.common.unit_of_work import UnitOfWork, look_up_or_lock, transaction
from services.inventory.adapters import postgres as db
from services.inventory.domain import stock as rules
from services.inventory.domain.model import (
    Inbound,
    Movement,
    MovementKind,
    Stock,
    StockChangeKind,
)
from services.inventory.handlers import events
from services.inventory.handlers.commands import REASONS, AdjustStock, ExpectInbound, ReceiveStock


@dataclass(frozen=True)
class Receipt:
    stock: Stock
    movement: Movement
    inbound: Inbound | None = None


@dataclass(frozen=True)
class Adjustment:
    stock: Stock
    movement: Movement


@dataclass(frozen=True)
class InboundChange:
    inbound: Inbound
    stock: Stock


async def receive_stock(pool: asyncpg.Pool, cmd: ReceiveStock) -> Receipt:
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> Receipt:
        conn = uow.conn
        earlier = await db.find_movement(conn, MovementKind.RECEIPT, cmd.receipt_id)
        if earlier is not None:
            if not cmd.matches(earlier):
                raise AlreadyExists(
                    f"receipt_id {cmd.receipt_id!r} was already used for a different receipt "
                    f"({earlier.quantity} of {earlier.sku!r}); use a new receipt_id"
                )
            stock = await db.get_stock(conn, earlier.sku)
            assert stock is not None
            inbound = await db.get_inbound(conn, earlier.inbound_id) if earlier.inbound_id else None
            return Receipt(stock, earlier, inbound)
        if cmd.inbound_id:
            expected = await db.get_inbound(conn, cmd.inbound_id)
            if expected is None:
                raise NotFound(
                    f"inbound_id {cmd.inbound_id!r} is unknown; expect it first (ExpectInbound) "
                    "or receive without inbound_id"
                )
            if expected.sku != cmd.sku:
                raise FailedPrecondition(
                    f"inbound {cmd.inbound_id!r} is for sku {expected.sku!r}, not {cmd.sku!r}"
                )
        # A concurrent receipt with this key commits first or fails this insert on the key
        # (the transaction is retried and finds it above).
        stock = await db.add_on_hand(conn, cmd.sku, cmd.quantity)
        movement = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind=MovementKind.RECEIPT,
            key=cmd.receipt_id,
            quantity=cmd.quantity,
            on_hand_after=stock.on_hand,
            inbound_id=cmd.inbound_id,
            note=cmd.note,
        )
        uow.emit(events.received_event(movement))
        inbound = None
        if cmd.inbound_id:
            # Over-receipt is allowed (the units are on the shelf); open quantity stops at 0.
            inbound = await db.update_inbound(conn, cmd.inbound_id, received=cmd.quantity)
            stock = await db.refresh_inbound_quantity(conn, cmd.sku)
            uow.emit(events.inbound_updated_event(inbound))
        await db.notify_stock_changed(conn, stock, StockChangeKind.RECEIPT, movement_id=movement.id)
        return Receipt(stock, movement, inbound)

    return await transaction(pool, work)


async def adjust_stock(pool: asyncpg.Pool, cmd: AdjustStock) -> Adjustment:
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> Adjustment:
        conn = uow.conn

        async def existing() -> Adjustment | None:
            earlier = await db.find_movement(conn, MovementKind.ADJUSTMENT, cmd.adjustment_id)
            if earlier is None:
                return None
            if not cmd.matches(earlier):
                raise AlreadyExists(
                    f"adjustment_id {cmd.adjustment_id!r} was already used for a different "
                    f"adjustment ({earlier.quantity:+} of {earlier.sku!r}, {earlier.reason}); "
                    "use a new adjustment_id"
                )
            stock = await db.get_stock(conn, earlier.sku)
            assert stock is not None
            return Adjustment(stock, earlier)

        done, stock = await look_up_or_lock(existing, lambda: db.lock_stock(conn, cmd.sku))
        if done is not None:
            return done
        assert stock is not None
        try:
            on_hand = rules.adjusted(stock.on_hand, cmd.delta)
        except rules.WouldGoNegative as exc:
            raise FailedPrecondition(
                f"sku {cmd.sku!r} has {exc.on_hand} on hand; an adjustment of {cmd.delta} "
                "would take it below zero"
            ) from None
        stock = await db.set_on_hand(conn, cmd.sku, on_hand)
        movement = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind=MovementKind.ADJUSTMENT,
            key=cmd.adjustment_id,
            quantity=cmd.delta,
            on_hand_after=on_hand,
            reason=REASONS[cmd.reason],
            note=cmd.note,
        )
        uow.emit(events.adjusted_event(movement, cmd.reason))
        await db.notify_stock_changed(
            conn, stock, StockChangeKind.ADJUSTMENT, movement_id=movement.id
        )
        return Adjustment(stock, movement)

    return await transaction(pool, work)


async def expect_inbound(pool: asyncpg.Pool, cmd: ExpectInbound) -> InboundChange:
    cmd = cmd.validated()
    expected_at = cmd.expected_at
    assert expected_at is not None

    def check_same_sku(inbound: Inbound) -> None:
        if inbound.sku != cmd.sku:
            raise AlreadyExists(
                f"inbound_id {cmd.inbound_id!r} is already expected for sku {inbound.sku!r}; "
                "an inbound's SKU cannot change: cancel it and use a new inbound_id"
            )

    async def work(uow: UnitOfWork) -> InboundChange:
        conn = uow.conn
        found = await db.get_inbound(conn, cmd.inbound_id)
        if found is not None:
            check_same_sku(found)
        stock = await db.lock_stock(conn, cmd.sku)
        found = await db.get_inbound(conn, cmd.inbound_id, for_update=True)
        if found is None:
            inbound = await db.insert_inbound(
                conn, cmd.inbound_id, cmd.sku, cmd.quantity, expected_at
            )
        else:
            check_same_sku(found)
            if (found.quantity, found.expected_at) == (cmd.quantity, expected_at):
                return InboundChange(found, stock)  # a repeat: nothing changes
            if found.cancelled:
                raise FailedPrecondition(
                    f"inbound {cmd.inbound_id!r} was cancelled; expect a new inbound_id"
                )
            inbound = await db.update_inbound(
                conn, cmd.inbound_id, quantity=cmd.quantity, expected_at=expected_at
            )
        return await _inbound_changed(uow, inbound)

    return await transaction(pool, work)


async def cancel_inbound(pool: asyncpg.Pool, inbound_id: str) -> InboundChange:
    validation.identifier(inbound_id, "inbound_id")

    async def work(uow: UnitOfWork) -> InboundChange:
        conn = uow.conn
        found = await db.get_inbound(conn, inbound_id)
        if found is None:
            raise NotFound(f"inbound_id {inbound_id!r} is unknown")
        stock = await db.lock_stock(conn, found.sku)
        found = await db.get_inbound(conn, inbound_id, for_update=True)
        assert found is not None
        if found.cancelled:
            return InboundChange(found, stock)  # a repeat: nothing changes
        inbound = await db.update_inbound(conn, inbound_id, cancel=True)
        return await _inbound_changed(uow, inbound)

    return await transaction(pool, work)


async def _inbound_changed(uow: UnitOfWork, inbound: Inbound) -> InboundChange:
    stock = await db.refresh_inbound_quantity(uow.conn, inbound.sku)
    uow.emit(events.inbound_updated_event(inbound))
    await db.notify_stock_changed(
        uow.conn, stock, StockChangeKind.INBOUND, inbound_id=inbound.inbound_id
    )
    return InboundChange(inbound, stock)

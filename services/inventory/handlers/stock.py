"""Use cases that change stock: receive, adjust, transfer, expect and cancel inbound. Each
runs in one transaction (services.common.unit_of_work).

Every change of one SKU first takes the SKU's stock row lock (lock_stock), whichever
locations it touches:
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
    DEFAULT_LOCATION,
    Inbound,
    Movement,
    MovementKind,
    Stock,
    StockChangeKind,
)
from services.inventory.handlers import events
from services.inventory.handlers.commands import (
    REASONS,
    AdjustStock,
    ExpectInbound,
    ReceiveStock,
    TransferStock,
)
from services.inventory.handlers.locations import resolve


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
class Transfer:
    stock: Stock
    out: Movement
    inbound: Inbound | None = None


@dataclass(frozen=True)
class InboundChange:
    inbound: Inbound
    stock: Stock


async def receive_stock(pool: asyncpg.Pool, cmd: ReceiveStock) -> Receipt:
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> Receipt:
        conn = uow.conn

        async def existing() -> Receipt | None:
            earlier = await db.find_movement(conn, MovementKind.RECEIPT, cmd.receipt_id)
            if earlier is None:
                return None
            if not cmd.matches(earlier):
                raise AlreadyExists(
                    f"receipt_id {cmd.receipt_id!r} was already used for a different receipt "
                    f"({earlier.quantity} of {earlier.sku!r} at {earlier.location_id!r}); "
                    "use a new receipt_id"
                )
            return await _receipt(conn, earlier)

        done = await existing()
        if done is not None:
            return done
        # A concurrent receipt with this key commits first or fails this one's insert on the
        # key (the transaction is retried and finds it above): no second look-up needed.
        await db.lock_stock(conn, cmd.sku)
        location = cmd.location_id or DEFAULT_LOCATION
        from_location = ""
        if cmd.inbound_id:
            expected = await db.get_inbound(conn, cmd.inbound_id, for_update=True)
            if expected is None:
                raise NotFound(
                    f"inbound_id {cmd.inbound_id!r} is unknown; expect it first (ExpectInbound) "
                    "or receive without inbound_id"
                )
            if expected.sku != cmd.sku:
                raise FailedPrecondition(
                    f"inbound {cmd.inbound_id!r} is for sku {expected.sku!r}, not {cmd.sku!r}"
                )
            if cmd.location_id and cmd.location_id != expected.location_id:
                raise FailedPrecondition(
                    f"location_id {cmd.location_id!r}: inbound {cmd.inbound_id!r} is expected "
                    f"at {expected.location_id!r}; leave location_id empty or name that one"
                )
            # Units in transit are counted: no more can arrive than left the source.
            if expected.from_location_id and cmd.quantity > expected.open_quantity:
                raise FailedPrecondition(
                    f"transfer {cmd.inbound_id!r} has {expected.open_quantity} units in transit; "
                    f"a receipt of {cmd.quantity} is more than that"
                )
            location, from_location = expected.location_id, expected.from_location_id
        await resolve(conn, location)
        on_hand = await db.change_on_hand(conn, cmd.sku, location, cmd.quantity)
        movement = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind=MovementKind.RECEIPT,
            key=cmd.receipt_id,
            quantity=cmd.quantity,
            on_hand_after=on_hand.total,
            inbound_id=cmd.inbound_id,
            note=cmd.note,
            location_id=location,
            other_location_id=from_location,
        )
        version = await db.next_stock_version(conn, cmd.sku)
        uow.emit(events.received_event(movement, on_hand.here, version))
        inbound = None
        if cmd.inbound_id:
            # Over-receipt of a purchase order is allowed (the units are on the shelf); open
            # quantity stops at 0.
            inbound = await db.update_inbound(conn, cmd.inbound_id, received=cmd.quantity)
            await db.refresh_inbound_quantity(conn, cmd.sku, location)
            uow.emit(events.inbound_updated_event(inbound))
        stock = await db.get_stock(conn, cmd.sku)
        assert stock is not None
        await db.notify_stock_changed(
            conn, stock, StockChangeKind.RECEIPT, location_id=location, movement_id=movement.id
        )
        return Receipt(stock, movement, inbound)

    return await transaction(pool, work)


async def _receipt(conn: asyncpg.Connection, earlier: Movement) -> Receipt:
    stock = await db.get_stock(conn, earlier.sku)
    assert stock is not None
    inbound = await db.get_inbound(conn, earlier.inbound_id) if earlier.inbound_id else None
    return Receipt(stock, earlier, inbound)


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
                    f"adjustment ({earlier.quantity:+} of {earlier.sku!r} at "
                    f"{earlier.location_id!r}, {earlier.reason}); use a new adjustment_id"
                )
            stock = await db.get_stock(conn, earlier.sku)
            assert stock is not None
            return Adjustment(stock, earlier)

        # An inactive location can still be counted (a closing warehouse is emptied by
        # adjustments and transfers); only receipts, inbound and transfers to it are refused.
        await resolve(conn, cmd.location, must_be_active=False)
        done, _ = await look_up_or_lock(existing, lambda: db.lock_stock(conn, cmd.sku))
        if done is not None:
            return done
        here = await db.location_on_hand(conn, cmd.sku, cmd.location)
        try:
            rules.adjusted(here, cmd.delta)
        except rules.WouldGoNegative as exc:
            where = "" if cmd.location == DEFAULT_LOCATION else f" at {cmd.location!r}"
            raise FailedPrecondition(
                f"sku {cmd.sku!r} has {exc.on_hand} on hand{where}; an adjustment of "
                f"{cmd.delta} would take it below zero"
            ) from None
        on_hand = await db.change_on_hand(conn, cmd.sku, cmd.location, cmd.delta)
        movement = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind=MovementKind.ADJUSTMENT,
            key=cmd.adjustment_id,
            quantity=cmd.delta,
            on_hand_after=on_hand.total,
            reason=REASONS[cmd.reason],
            note=cmd.note,
            location_id=cmd.location,
        )
        version = await db.next_stock_version(conn, cmd.sku)
        uow.emit(events.adjusted_event(movement, cmd.reason, on_hand.here, version))
        stock = await db.get_stock(conn, cmd.sku)
        assert stock is not None
        await db.notify_stock_changed(
            conn,
            stock,
            StockChangeKind.ADJUSTMENT,
            location_id=cmd.location,
            movement_id=movement.id,
        )
        return Adjustment(stock, movement)

    return await transaction(pool, work)


async def transfer_stock(pool: asyncpg.Pool, cmd: TransferStock) -> Transfer:
    """Moves units between two locations (docs/spec.md §8): they leave the source at once
    and land at once, or (with expected_at) become an open inbound at the destination whose
    inbound_id is the transfer_id. Idempotent on transfer_id."""
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> Transfer:
        conn = uow.conn

        async def existing() -> Transfer | None:
            out = await db.find_movement(conn, MovementKind.TRANSFER_OUT, cmd.transfer_id)
            if out is None:
                return None
            inbound = await db.get_inbound(conn, cmd.transfer_id)
            in_transit = inbound if inbound is not None and inbound.from_location_id else None
            if not cmd.matches(out, in_transit.expected_at if in_transit else None):
                raise AlreadyExists(
                    f"transfer_id {cmd.transfer_id!r} was already used for a different transfer "
                    f"({-out.quantity} of {out.sku!r} from {out.location_id!r} to "
                    f"{out.other_location_id!r}); use a new transfer_id"
                )
            stock = await db.get_stock(conn, out.sku)
            assert stock is not None
            return Transfer(stock, out, in_transit)

        done, _ = await look_up_or_lock(existing, lambda: db.lock_stock(conn, cmd.sku))
        if done is not None:
            return done
        # A transfer in transit is the inbound of that id: one key space with inbound ids.
        if await db.get_inbound(conn, cmd.transfer_id) is not None:
            raise AlreadyExists(
                f"transfer_id {cmd.transfer_id!r} is already an inbound_id; transfers and "
                "inbound share one key space: use a new transfer_id"
            )
        await resolve(conn, cmd.from_location_id, "from_location_id", must_be_active=False)
        await resolve(conn, cmd.to_location_id, "to_location_id")
        here = await db.location_on_hand(conn, cmd.sku, cmd.from_location_id)
        if here < cmd.quantity:
            raise FailedPrecondition(
                f"sku {cmd.sku!r} has {here} on hand at {cmd.from_location_id!r} "
                f"(from_location_id); a transfer of {cmd.quantity} is more than that"
            )
        source = await db.change_on_hand(conn, cmd.sku, cmd.from_location_id, -cmd.quantity)
        out = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind=MovementKind.TRANSFER_OUT,
            key=cmd.transfer_id,
            quantity=-cmd.quantity,
            on_hand_after=source.total,
            location_id=cmd.from_location_id,
            other_location_id=cmd.to_location_id,
        )
        inbound: Inbound | None = None
        if cmd.expected_at is None:
            destination = await db.change_on_hand(conn, cmd.sku, cmd.to_location_id, cmd.quantity)
            to_after = destination.here
            await db.insert_movement(
                conn,
                sku=cmd.sku,
                kind=MovementKind.TRANSFER_IN,
                key=cmd.transfer_id,
                quantity=cmd.quantity,
                on_hand_after=destination.total,
                location_id=cmd.to_location_id,
                other_location_id=cmd.from_location_id,
            )
        else:
            to_after = await db.location_on_hand(conn, cmd.sku, cmd.to_location_id)
            inbound = await db.insert_inbound(
                conn,
                cmd.transfer_id,
                cmd.sku,
                cmd.quantity,
                cmd.expected_at,
                cmd.to_location_id,
                from_location_id=cmd.from_location_id,
            )
            await db.refresh_inbound_quantity(conn, cmd.sku, cmd.to_location_id)
        uow.emit(
            events.transferred_event(
                out,
                to_location_id=cmd.to_location_id,
                in_transit=inbound,
                from_on_hand_after=source.here,
                to_on_hand_after=to_after,
                stock_version=await db.next_stock_version(conn, cmd.sku),
            )
        )
        if inbound is not None:
            uow.emit(events.inbound_updated_event(inbound))
        stock = await db.get_stock(conn, cmd.sku)
        assert stock is not None
        await db.notify_stock_changed(
            conn,
            stock,
            StockChangeKind.TRANSFER,
            location_id=cmd.from_location_id,
            movement_id=out.id,
            inbound_id=inbound.inbound_id if inbound else "",
            other_location_id=cmd.to_location_id,
        )
        return Transfer(stock, out, inbound)

    return await transaction(pool, work)


async def expect_inbound(pool: asyncpg.Pool, cmd: ExpectInbound) -> InboundChange:
    cmd = cmd.validated()
    expected_at = cmd.expected_at
    assert expected_at is not None

    def check_same(inbound: Inbound) -> None:
        if inbound.from_location_id:
            raise AlreadyExists(
                f"inbound_id {cmd.inbound_id!r} is a transfer in transit from "
                f"{inbound.from_location_id!r}; it changes only by being received"
            )
        if inbound.sku != cmd.sku:
            raise AlreadyExists(
                f"inbound_id {cmd.inbound_id!r} is already expected for sku {inbound.sku!r}; "
                "an inbound's SKU cannot change: cancel it and use a new inbound_id"
            )
        if cmd.location_id and cmd.location_id != inbound.location_id:
            raise AlreadyExists(
                f"inbound_id {cmd.inbound_id!r} is already expected at location "
                f"{inbound.location_id!r}; an inbound's location cannot change: cancel it and "
                "use a new inbound_id"
            )

    async def work(uow: UnitOfWork) -> InboundChange:
        conn = uow.conn
        found = await db.get_inbound(conn, cmd.inbound_id)
        if found is not None:
            check_same(found)
        elif await db.find_movement(conn, MovementKind.TRANSFER_OUT, cmd.inbound_id):
            raise AlreadyExists(
                f"inbound_id {cmd.inbound_id!r} is already a transfer_id; transfers and "
                "inbound share one key space: use a new inbound_id"
            )
        await db.lock_stock(conn, cmd.sku)
        found = await db.get_inbound(conn, cmd.inbound_id, for_update=True)
        if found is None:
            await resolve(conn, cmd.location)
            inbound = await db.insert_inbound(
                conn, cmd.inbound_id, cmd.sku, cmd.quantity, expected_at, cmd.location
            )
        else:
            check_same(found)
            if (found.quantity, found.expected_at) == (cmd.quantity, expected_at):
                full = await db.get_stock(conn, cmd.sku)
                assert full is not None
                return InboundChange(found, full)  # a repeat: nothing changes
            if found.cancelled:
                raise FailedPrecondition(
                    f"inbound {cmd.inbound_id!r} was cancelled; expect a new inbound_id"
                )
            await resolve(conn, found.location_id)
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
        if found.from_location_id:
            raise FailedPrecondition(
                f"inbound {inbound_id!r} is a transfer in transit: its units left "
                f"{found.from_location_id!r}; receive them (ReceiveStock) instead"
            )
        await db.lock_stock(conn, found.sku)
        found = await db.get_inbound(conn, inbound_id, for_update=True)
        assert found is not None
        if found.cancelled:
            stock = await db.get_stock(conn, found.sku)
            assert stock is not None
            return InboundChange(found, stock)  # a repeat: nothing changes
        inbound = await db.update_inbound(conn, inbound_id, cancel=True)
        return await _inbound_changed(uow, inbound)

    return await transaction(pool, work)


async def _inbound_changed(uow: UnitOfWork, inbound: Inbound) -> InboundChange:
    await db.refresh_inbound_quantity(uow.conn, inbound.sku, inbound.location_id)
    stock = await db.get_stock(uow.conn, inbound.sku)
    assert stock is not None
    uow.emit(events.inbound_updated_event(inbound))
    await db.notify_stock_changed(
        uow.conn,
        stock,
        StockChangeKind.INBOUND,
        location_id=inbound.location_id,
        inbound_id=inbound.inbound_id,
    )
    return InboundChange(inbound, stock)

"""Inventory use cases: each opens a transaction, changes stock, records events, commits.

Every change of one SKU first takes the SKU's stock row lock (adapters.lock_stock or
add_on_hand): changes of a SKU are serialised, its outbox rows are in commit order, and a
concurrent repeat of an idempotency key waits and then finds what the first call wrote.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg
from prometheus_client import Counter

from backorder.allocation.v1 import events_pb2 as allocation_events
from backorder.inventory.v1 import events_pb2
from services.common import paging, validation
from services.common.amqp import INVENTORY_EXCHANGE
from services.common.change_feed import ChangeFeed, FeedInterrupted, FeedOverflow
from services.common.db import run_in_transaction, run_in_transaction_when_reachable
from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from services.common.outbox import OutgoingEvent, add_events, new_event
from services.common.timestamps import to_proto
from services.inventory.adapters import postgres as db
from services.inventory.adapters.postgres import InboundRow, MovementRow, StockRow
from services.inventory.domain import stock as rules

log = logging.getLogger(__name__)
T = TypeVar("T")

SHORTFALLS = Counter(
    "backorder_stock_shortfalls_total",
    "Issues for fulfilled lines that asked for more units than were on hand (discrepancies)",
)
SHORTFALL_UNITS = Counter(
    "backorder_stock_shortfall_units_total",
    "Units fulfilled lines asked for that were not on hand (recorded, not issued)",
)

# AdjustmentReason values a client may send (UNSPECIFIED is not a reason).
_REASON_PREFIX = "ADJUSTMENT_REASON_"
REASONS = {
    value: name.removeprefix(_REASON_PREFIX)
    for name, value in events_pb2.AdjustmentReason.items()
    if value != events_pb2.ADJUSTMENT_REASON_UNSPECIFIED
}


def reason_value(name: str) -> int:
    """The AdjustmentReason of a reason stored in the ledger ('' -> UNSPECIFIED)."""
    return events_pb2.AdjustmentReason.Value(_REASON_PREFIX + name) if name else 0


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


# --- commands ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveStock:
    receipt_id: str
    sku: str
    quantity: int
    inbound_id: str = ""
    note: str = ""

    def validated(self) -> ReceiveStock:
        validation.identifier(self.receipt_id, "receipt_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        validation.optional_identifier(self.inbound_id, "inbound_id")
        validation.note(self.note)
        return self

    def matches(self, movement: MovementRow) -> bool:
        return (movement.sku, movement.quantity, movement.inbound_id, movement.note) == (
            self.sku,
            self.quantity,
            self.inbound_id,
            self.note,
        )


@dataclass(frozen=True)
class AdjustStock:
    adjustment_id: str
    sku: str
    delta: int
    reason: int
    note: str = ""

    def validated(self) -> AdjustStock:
        validation.identifier(self.adjustment_id, "adjustment_id")
        validation.sku(self.sku)
        if self.delta == 0 or abs(self.delta) > validation.MAX_QUANTITY:
            raise InvalidArgument(
                "delta",
                f"is {self.delta}; it must be a signed change from 1 to "
                f"{validation.MAX_QUANTITY:,} units either way (not 0)",
            )
        if self.reason not in REASONS:
            raise InvalidArgument(
                "reason", f"is {self.reason}; use one of {', '.join(REASONS.values())}"
            )
        validation.note(self.note)
        return self

    def matches(self, movement: MovementRow) -> bool:
        return (movement.sku, movement.quantity, movement.reason, movement.note) == (
            self.sku,
            self.delta,
            REASONS[self.reason],
            self.note,
        )


@dataclass(frozen=True)
class ExpectInbound:
    inbound_id: str
    sku: str
    quantity: int
    expected_at: datetime | None

    def validated(self) -> ExpectInbound:
        validation.identifier(self.inbound_id, "inbound_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        if self.expected_at is None:
            raise InvalidArgument("expected_at", "is required: when the units are expected")
        return self


@dataclass(frozen=True)
class Receipt:
    stock: StockRow
    movement: MovementRow
    inbound: InboundRow | None = None


@dataclass(frozen=True)
class Adjustment:
    stock: StockRow
    movement: MovementRow


@dataclass(frozen=True)
class InboundChange:
    inbound: InboundRow
    stock: StockRow


# --- reads -------------------------------------------------------------------------------


async def get_stock(pool: asyncpg.Pool, sku: str) -> StockRow:
    validation.sku(sku)
    stock = await db.get_stock(pool, sku)
    if stock is None:
        raise NotFound(f"sku {sku!r} is unknown: nothing has referenced it yet")
    return stock


async def list_stock(
    pool: asyncpg.Pool, *, page_size: int, page_token: str, sku_prefix: str
) -> Page[StockRow]:
    if sku_prefix:
        validation.sku(sku_prefix, "sku_prefix")
    size = paging.page_size(page_size)
    query = ["stock", sku_prefix]
    after = paging.decode(page_token, query, (str,))
    rows = await db.list_stock(pool, sku_prefix, after[0] if after else None, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    token = paging.encode([rows[-1].sku], query) if more else ""
    return Page(rows, token)


async def list_movements(
    pool: asyncpg.Pool, *, sku: str, page_size: int, page_token: str
) -> Page[MovementRow]:
    if sku:
        validation.sku(sku)
    size = paging.page_size(page_size)
    query = ["movements", sku]
    after = paging.decode(page_token, query, (int,))
    rows = await db.list_movements(pool, sku, after[0] if after else None, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, paging.encode([rows[-1].id], query) if more else "")


async def list_inbound(
    pool: asyncpg.Pool, *, sku: str, page_size: int, page_token: str, open_only: bool
) -> Page[InboundRow]:
    if sku:
        validation.sku(sku)
    size = paging.page_size(page_size)
    query = ["inbound", sku, open_only]
    after = paging.decode(page_token, query, (datetime, str))
    position = (after[0], after[1]) if after else None
    rows = await db.list_inbound(pool, sku, open_only, position, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    token = ""
    if more:
        token = paging.encode([rows[-1].expected_at, rows[-1].inbound_id], query)
    return Page(rows, token)


MAX_WATCHED_SKUS = 1000


@dataclass(frozen=True)
class StockChange:
    """One message of WatchStock: a SKU's stock right after a change (or a snapshot)."""

    stock: StockRow
    kind: str  # SNAPSHOT, RECEIPT, ADJUSTMENT, ISSUE or INBOUND
    movement_id: int = 0
    inbound_id: str = ""


async def watch_stock(
    pool: asyncpg.Pool, feed: ChangeFeed, skus: list[str]
) -> AsyncIterator[StockChange]:
    """Current stock of the named SKUs, then every committed change of them (of every SKU
    when none are named), as long as the caller keeps up."""
    if len(skus) > MAX_WATCHED_SKUS:
        raise InvalidArgument("skus", f"names {len(skus)} SKUs; watch at most {MAX_WATCHED_SKUS}")
    for index, sku in enumerate(skus):
        validation.sku(sku, f"skus[{index}]")
    wanted = set(skus)
    try:
        async with feed.subscribe(lambda p: not wanted or p.get("sku") in wanted) as changes:
            # Subscribed first, then read: a change in between is sent twice, never missed.
            for stock in await db.get_stocks(pool, sorted(wanted)) if wanted else []:
                yield StockChange(stock, "SNAPSHOT")
            while True:
                payload = await changes.next()
                yield StockChange(
                    StockRow(
                        sku=payload["sku"],
                        on_hand=payload["on_hand"],
                        inbound_quantity=payload["inbound_quantity"],
                        updated_at=datetime.fromisoformat(payload["updated_at"]),
                    ),
                    payload["kind"],
                    payload.get("movement_id", 0),
                    payload.get("inbound_id", ""),
                )
    except FeedOverflow as exc:
        raise ResourceExhausted(
            f"the watcher {exc}: read faster, or re-read with GetStock and watch again"
        ) from None
    except FeedInterrupted as exc:
        raise Unavailable(f"{exc}; re-read with GetStock and watch again") from None


# --- commands ----------------------------------------------------------------------------


async def receive_stock(pool: asyncpg.Pool, cmd: ReceiveStock) -> Receipt:
    cmd = cmd.validated()

    async def work(conn: asyncpg.Connection) -> Receipt:
        earlier = await db.find_movement(conn, "RECEIPT", cmd.receipt_id)
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
        stock = await db.add_on_hand(conn, cmd.sku, cmd.quantity)
        movement = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind="RECEIPT",
            key=cmd.receipt_id,
            quantity=cmd.quantity,
            on_hand_after=stock.on_hand,
            inbound_id=cmd.inbound_id,
            note=cmd.note,
        )
        events = [
            new_event(
                INVENTORY_EXCHANGE,
                "stock.received",
                events_pb2.StockReceived(
                    occurred_at=to_proto(movement.created_at),
                    sku=cmd.sku,
                    receipt_id=cmd.receipt_id,
                    quantity=cmd.quantity,
                    on_hand_after=stock.on_hand,
                    inbound_id=cmd.inbound_id,
                ),
            )
        ]
        inbound = None
        if cmd.inbound_id:
            # Over-receipt is allowed (the units are on the shelf); open quantity stops at 0.
            inbound = await db.update_inbound(conn, cmd.inbound_id, received=cmd.quantity)
            stock = await db.refresh_inbound_quantity(conn, cmd.sku)
            events.append(_inbound_updated(inbound))
        await add_events(conn, events)
        await db.notify_stock_changed(conn, stock, "RECEIPT", movement_id=movement.id)
        return Receipt(stock, movement, inbound)

    return await run_in_transaction(pool, work)


async def adjust_stock(pool: asyncpg.Pool, cmd: AdjustStock) -> Adjustment:
    cmd = cmd.validated()

    async def existing(conn: asyncpg.Connection) -> Adjustment | None:
        earlier = await db.find_movement(conn, "ADJUSTMENT", cmd.adjustment_id)
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

    async def work(conn: asyncpg.Connection) -> Adjustment:
        if (done := await existing(conn)) is not None:
            return done
        stock = await db.lock_stock(conn, cmd.sku)
        # A concurrent call with this key may have committed while we waited for the lock.
        if (done := await existing(conn)) is not None:
            return done
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
            kind="ADJUSTMENT",
            key=cmd.adjustment_id,
            quantity=cmd.delta,
            on_hand_after=on_hand,
            reason=REASONS[cmd.reason],
            note=cmd.note,
        )
        event = events_pb2.StockAdjusted(
            occurred_at=to_proto(movement.created_at),
            sku=cmd.sku,
            adjustment_id=cmd.adjustment_id,
            delta=cmd.delta,
            reason=cmd.reason,  # type: ignore[arg-type]
            on_hand_after=on_hand,
            note=cmd.note,
        )
        await add_events(conn, [new_event(INVENTORY_EXCHANGE, "stock.adjusted", event)])
        await db.notify_stock_changed(conn, stock, "ADJUSTMENT", movement_id=movement.id)
        return Adjustment(stock, movement)

    return await run_in_transaction(pool, work)


async def expect_inbound(pool: asyncpg.Pool, cmd: ExpectInbound) -> InboundChange:
    cmd = cmd.validated()
    expected_at = cmd.expected_at
    assert expected_at is not None

    def check_same_sku(inbound: InboundRow) -> None:
        if inbound.sku != cmd.sku:
            raise AlreadyExists(
                f"inbound_id {cmd.inbound_id!r} is already expected for sku {inbound.sku!r}; "
                "an inbound's SKU cannot change: cancel it and use a new inbound_id"
            )

    async def work(conn: asyncpg.Connection) -> InboundChange:
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
        return await _inbound_changed(conn, inbound)

    return await run_in_transaction(pool, work)


async def cancel_inbound(pool: asyncpg.Pool, inbound_id: str) -> InboundChange:
    validation.identifier(inbound_id, "inbound_id")

    async def work(conn: asyncpg.Connection) -> InboundChange:
        found = await db.get_inbound(conn, inbound_id)
        if found is None:
            raise NotFound(f"inbound_id {inbound_id!r} is unknown")
        stock = await db.lock_stock(conn, found.sku)
        found = await db.get_inbound(conn, inbound_id, for_update=True)
        assert found is not None
        if found.cancelled:
            return InboundChange(found, stock)  # a repeat: nothing changes
        inbound = await db.update_inbound(conn, inbound_id, cancel=True)
        return await _inbound_changed(conn, inbound)

    return await run_in_transaction(pool, work)


async def _inbound_changed(conn: asyncpg.Connection, inbound: InboundRow) -> InboundChange:
    stock = await db.refresh_inbound_quantity(conn, inbound.sku)
    await add_events(conn, [_inbound_updated(inbound)])
    await db.notify_stock_changed(conn, stock, "INBOUND", inbound_id=inbound.inbound_id)
    return InboundChange(inbound, stock)


def _inbound_updated(inbound: InboundRow) -> OutgoingEvent:
    return new_event(
        INVENTORY_EXCHANGE,
        "inbound.updated",
        events_pb2.InboundUpdated(
            occurred_at=to_proto(inbound.updated_at),
            sku=inbound.sku,
            inbound_id=inbound.inbound_id,
            open_quantity=inbound.open_quantity,
            expected_at=to_proto(inbound.expected_at),
            cancelled=inbound.cancelled,
            version=inbound.version,
        ),
    )


# --- events ------------------------------------------------------------------------------


async def line_fulfilled(pool: asyncpg.Pool, event: allocation_events.LineFulfilled) -> None:
    """Issues the fulfilled units from on hand, exactly once per fulfillment_id (and per
    event_id): a redelivery or a second event of the same fulfilment changes nothing. Units
    not on hand are recorded as the movement's shortfall, never taken below zero."""
    try:
        event_id = uuid.UUID(event.event_id)
    except ValueError:
        raise InvalidArgument("event_id", f"{event.event_id!r} is not a UUID") from None
    validation.sku(event.sku)
    validation.identifier(event.fulfillment_id, "fulfillment_id")
    validation.identifier(event.order_id, "order_id")
    validation.identifier(event.line_id, "line_id")
    validation.quantity(event.quantity)

    async def work(conn: asyncpg.Connection) -> MovementRow | None:
        if not await db.mark_processed(conn, event_id, "line.fulfilled"):
            return None
        if await db.find_movement(conn, "ISSUE", event.fulfillment_id) is not None:
            return None
        stock = await db.lock_stock(conn, event.sku)
        # Another event of the same fulfilment may have committed while we waited.
        if await db.find_movement(conn, "ISSUE", event.fulfillment_id) is not None:
            return None
        outcome = rules.issue(stock.on_hand, event.quantity)
        stock = await db.set_on_hand(conn, event.sku, outcome.on_hand_after)
        movement = await db.insert_movement(
            conn,
            sku=event.sku,
            kind="ISSUE",
            key=event.fulfillment_id,
            quantity=-outcome.issued,
            on_hand_after=outcome.on_hand_after,
            order_id=event.order_id,
            line_id=event.line_id,
            shortfall=outcome.shortfall,
            event_id=event_id,
        )
        issued = events_pb2.StockIssued(
            occurred_at=to_proto(movement.created_at),
            sku=event.sku,
            fulfillment_id=event.fulfillment_id,
            order_id=event.order_id,
            line_id=event.line_id,
            quantity=outcome.issued,
            on_hand_after=outcome.on_hand_after,
            shortfall=outcome.shortfall,
        )
        await add_events(conn, [new_event(INVENTORY_EXCHANGE, "stock.issued", issued)])
        await db.notify_stock_changed(conn, stock, "ISSUE", movement_id=movement.id)
        return movement

    # A consumed event waits out a database outage rather than going back to its queue.
    movement = await run_in_transaction_when_reachable(pool, work)
    if movement is not None and movement.shortfall:
        SHORTFALLS.inc()
        SHORTFALL_UNITS.inc(movement.shortfall)
        log.warning(
            "issue short of on hand: recorded as a discrepancy",
            extra={
                "sku": event.sku,
                "fulfillment_id": event.fulfillment_id,
                "requested": event.quantity,
                "shortfall": movement.shortfall,
            },
        )

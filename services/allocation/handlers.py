"""Allocation use cases: each runs in one transaction with the SKU row locked, calls the
pure fill / shrinkage / ETA rules, writes reservations and records outgoing events in the
outbox. Metrics are recorded after the commit."""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Generic, TypeVar

import asyncpg
from asyncpg.pgproto.pgproto import UUID as PgUUID
from google.protobuf.timestamp_pb2 import Timestamp

from backorder.allocation.v1 import events_pb2
from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import metrics
from services.allocation.adapters import postgres as db
from services.allocation.adapters.postgres import (
    FilledLine,
    Inbound,
    LineRow,
    ReservationRow,
    RevokedLine,
    SkuRow,
)
from services.allocation.domain import eta as eta_walk
from services.allocation.domain.fill import FillPolicy, fill
from services.allocation.domain.shrinkage import revoke
from services.common import paging, validation
from services.common.amqp import ALLOCATION_EXCHANGE
from services.common.db import run_in_transaction, run_in_transaction_when_reachable
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.outbox import OutgoingEvent, add_events, new_event
from services.common.timestamps import to_proto

# Waiting lines read per round trip while filling: bounds memory on a queue of any length.
FILL_CHUNK = 2000
# The ETA walk covers at most this many waiting lines of a SKU (in rank order); lines
# beyond show an unknown ETA. Bounds the memory and time of one walk.
ETA_WALK_LIMIT = 50_000
MAX_BACKORDER_LIMIT = 1_000_000_000_000

STATUSES = frozenset(
    ("BACKORDERED", "PARTIALLY_RESERVED", "RESERVED", "PARTIALLY_FULFILLED", "FULFILLED")
) | {"CANCELLED"}
T = TypeVar("T")


@dataclass(frozen=True)
class LineView:
    """A line as clients see it: the row plus where it stands in its queue."""

    line: LineRow
    queue_position: int


@dataclass
class Effects:
    """What one transaction did that matters after it commits (metrics)."""

    reserved_units: int = 0
    cause_occurred_at: datetime | None = None
    events: list[OutgoingEvent] = field(default_factory=list)


async def _commit(
    pool: asyncpg.Pool,
    work: Callable[[asyncpg.Connection, Effects], Awaitable[T]],
    *,
    consumed_event: bool = False,
) -> T:
    """Runs `work` in one transaction (retried on a lost idempotency race), writes its
    events to the outbox in it, then records metrics once it committed. For a consumed
    event, waits out a database outage (an RPC fails fast with UNAVAILABLE instead)."""
    effects = Effects()

    async def attempt(conn: asyncpg.Connection) -> T:
        nonlocal effects
        effects = Effects()
        result = await work(conn, effects)
        await add_events(conn, effects.events)
        return result

    run = run_in_transaction_when_reachable if consumed_event else run_in_transaction
    result = await run(pool, attempt)
    if effects.reserved_units:
        metrics.RESERVED_UNITS.inc(effects.reserved_units)
        if effects.cause_occurred_at is not None:
            latency = time.time() - effects.cause_occurred_at.timestamp()
            metrics.FILL_LATENCY.observe(max(latency, 0.0))
    return result


# --- placing and reading lines ------------------------------------------------------------


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

    def request(self) -> db.LineRequest:
        return db.LineRequest(
            self.order_id,
            self.line_id,
            self.sku,
            self.quantity,
            self.priority,
            self.allow_partial,
            self.customer_id,
        )

    def matches(self, line: LineRow) -> bool:
        # Compared with the priority the line was placed with: SetPriority may have
        # changed it since, and a retried Allocate is still the same call.
        mine = (self.sku, self.quantity, self.priority, self.allow_partial, self.customer_id)
        return mine == (
            line.sku,
            line.quantity,
            line.placed_priority,
            line.allow_partial,
            line.customer_id,
        )


@dataclass(frozen=True)
class Placed:
    view: LineView
    reserved_at_once: int
    repeated: bool


async def allocate(pool: asyncpg.Pool, cmd: Allocate) -> Placed:
    cmd = cmd.validated()
    queued = await _queue_only(pool, cmd)
    if queued is not None:
        return queued

    async def work(conn: asyncpg.Connection, effects: Effects) -> Placed:
        # Lock the SKU (every change of its queue holds the lock) and learn whether this
        # is a repeat, in one round trip; the lock is then held for as few as possible.
        sku, placed = await db.lock_sku_for_line(conn, cmd.sku, cmd.order_id, cmd.line_id)
        if placed:
            earlier = await db.find_line_with_position(conn, cmd.order_id, cmd.line_id)
            assert earlier is not None  # lines are never deleted
            _check_repeat(cmd, earlier[0])
            return Placed(LineView(*earlier), 0, True)
        new = await db.insert_line(conn, cmd.request())
        line, sku = new.line, new.sku
        mine, sku = await fill_sku(
            conn, sku, effects, cause="Allocate", cause_event_id=None, watch=line.id
        )
        if mine is not None:
            line = replace(
                line,
                reserved=mine.reserved,
                backordered=mine.backordered,
                status=mine.status,
                eta=None if mine.backordered == 0 else line.eta,
            )
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
        position = 0
        if line.backordered:
            # A new line is the last of its priority band: its place and the units ahead of
            # it come from the per-priority counters, whatever the queue's length.
            # (Read again only if the fill moved them: free units were given out.)
            stats = new.stats
            if sku is not new.sku:
                stats = await db.tail_stats(conn, cmd.sku, cmd.priority)
            position = stats.lines_through
            line = await _eta_of_new_line(conn, sku, line, stats, new.inbound, effects)
        view = LineView(line, position)
        if line.backordered:
            effects.events.append(
                _backordered_event(
                    line.sku,
                    line.order_id,
                    line.line_id,
                    line.quantity,
                    backordered=line.backordered,
                    reserved=line.reserved,
                    status=line.status,
                    queue_position=position,
                )
            )
        return Placed(view, mine.reserved_now if mine else 0, False)

    return await _commit(pool, work)


async def _queue_only(pool: asyncpg.Pool, cmd: Allocate) -> Placed | None:
    """The common case of Allocate in one round trip: a new line of a SKU with nothing free
    and nothing inbound is only queued (the fill and the ETA walk have nothing to do). None
    when that does not apply; nothing is written then and the full path decides."""
    event = _backordered_event(
        cmd.sku,
        cmd.order_id,
        cmd.line_id,
        cmd.quantity,
        backordered=cmd.quantity,
        reserved=0,
        status="BACKORDERED",
        queue_position=0,  # added by the database
    )
    try:
        queued = await db.queue_line(
            pool,
            cmd.request(),
            event=event,
            position_field=_QUEUE_POSITION_FIELD,
        )
    except asyncpg.UniqueViolationError:
        # The same (order_id, line_id) committed meanwhile for another SKU: the full path
        # finds it and answers.
        return None
    if queued is None:
        return None
    line, position = queued
    return Placed(LineView(line, position), 0, False)


def _check_repeat(cmd: Allocate, earlier: LineRow) -> None:
    if not cmd.matches(earlier):
        raise AlreadyExists(
            f"line ({cmd.order_id!r}, {cmd.line_id!r}) was already placed with other content "
            f"({earlier.quantity} of {earlier.sku!r} at priority {earlier.priority}); "
            "use a new line_id"
        )


async def get_line(pool: asyncpg.Pool, order_id: str, line_id: str) -> LineView:
    _line_key(order_id, line_id)
    found = await db.find_line_with_position(pool, order_id, line_id)
    if found is None:
        raise _line_not_found(order_id, line_id)
    return LineView(*found)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


async def list_lines(
    pool: asyncpg.Pool,
    *,
    sku: str = "",
    order_id: str = "",
    status: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> Page[LineView]:
    if sku:
        validation.sku(sku)
    validation.optional_identifier(order_id, "order_id")
    if status and status not in STATUSES:
        raise InvalidArgument("status", f"{status!r} is not a line status")
    limit = paging.page_size(page_size)
    query = ("lines", sku, order_id, status)
    after = (paging.decode(page_token, query, [int]) or [0])[0]
    rows = await db.list_lines(
        pool,
        sku=sku or None,
        order_id=order_id or None,
        status=status or None,
        after_id=after,
        limit=limit + 1,
    )
    views = [LineView(line, position) for line, position in rows[:limit]]
    token = paging.encode([views[-1].line.id], query) if len(rows) > limit else ""
    return Page(views, token)


# --- cancel, fulfil, priority -------------------------------------------------------------


@dataclass(frozen=True)
class Cancelled:
    view: LineView
    released: int


async def cancel_line(pool: asyncpg.Pool, order_id: str, line_id: str) -> Cancelled:
    """Cancels a line: its reserved units become free and the SKU's queue is filled."""
    _line_key(order_id, line_id)

    async def work(conn: asyncpg.Connection, effects: Effects) -> Cancelled:
        line, _ = await _locked_line(conn, order_id, line_id)
        if line.cancelled:
            return Cancelled(LineView(line, 0), 0)
        if line.fulfilled == line.quantity:
            raise FailedPrecondition(
                f"line ({order_id!r}, {line_id!r}) is fulfilled: every unit was shipped, "
                "nothing is left to cancel"
            )
        released, waiting = line.reserved, line.backordered
        line = await db.cancel_line(conn, line.id)
        sku = await db.change_totals(
            conn,
            line.sku,
            free=released,
            reserved=-released,
            bands={line.priority: (-1 if waiting else 0, -waiting)},
        )
        effects.events.append(
            new_event(
                ALLOCATION_EXCHANGE,
                "line.cancelled",
                events_pb2.LineCancelled(
                    sku=line.sku,
                    order_id=line.order_id,
                    line_id=line.line_id,
                    quantity=line.quantity,
                    released_quantity=released,
                    fulfilled_quantity=line.fulfilled,
                    status=line_status(line),
                ),
            )
        )
        _, sku = await fill_sku(conn, sku, effects, cause="CancelLine", cause_event_id=None)
        await refresh_etas(conn, sku, effects)
        return Cancelled(LineView(line, 0), released)

    return await _commit(pool, work)


@dataclass(frozen=True)
class FulfillLine:
    order_id: str
    line_id: str
    fulfillment_id: str
    quantity: int

    def validated(self) -> FulfillLine:
        _line_key(self.order_id, self.line_id)
        validation.identifier(self.fulfillment_id, "fulfillment_id")
        validation.quantity(self.quantity)
        return self


async def fulfill_line(pool: asyncpg.Pool, cmd: FulfillLine) -> LineView:
    """Marks reserved units as shipped; the inventory service issues them on line.fulfilled."""
    cmd = cmd.validated()

    async def work(conn: asyncpg.Connection, effects: Effects) -> LineView:
        repeat = await _fulfillment_repeat(conn, cmd)
        if repeat is not None:
            return repeat
        line, _ = await _locked_line(conn, cmd.order_id, cmd.line_id)
        # A concurrent call with the same key may have committed while we waited for the lock.
        repeat = await _fulfillment_repeat(conn, cmd)
        if repeat is not None:
            return repeat
        if line.cancelled:
            raise FailedPrecondition(
                f"line ({cmd.order_id!r}, {cmd.line_id!r}) is cancelled; nothing can be shipped"
            )
        if cmd.quantity > line.reserved:
            raise FailedPrecondition(
                f"line ({cmd.order_id!r}, {cmd.line_id!r}) has {line.reserved} units reserved; "
                f"cannot ship {cmd.quantity}"
            )
        line = await db.fulfil(conn, line.id, cmd.fulfillment_id, cmd.quantity)
        await db.change_totals(conn, line.sku, reserved=-cmd.quantity, fulfilled=cmd.quantity)
        effects.events.append(
            new_event(
                ALLOCATION_EXCHANGE,
                "line.fulfilled",
                events_pb2.LineFulfilled(
                    sku=line.sku,
                    order_id=line.order_id,
                    line_id=line.line_id,
                    fulfillment_id=cmd.fulfillment_id,
                    quantity=cmd.quantity,
                    fulfilled_quantity=line.fulfilled,
                    reserved_quantity=line.reserved,
                    status=line_status(line),
                ),
            )
        )
        return LineView(line, await db.queue_position(conn, line))

    return await _commit(pool, work)


async def _fulfillment_repeat(conn: asyncpg.Connection, cmd: FulfillLine) -> LineView | None:
    earlier = await db.find_fulfillment(conn, cmd.fulfillment_id)
    if earlier is None:
        return None
    line = await db.line_by_id(conn, earlier.line)
    if (line.order_id, line.line_id, earlier.quantity) != (
        cmd.order_id,
        cmd.line_id,
        cmd.quantity,
    ):
        raise AlreadyExists(
            f"fulfillment {cmd.fulfillment_id!r} was already recorded with other content "
            f"({earlier.quantity} units of line ({line.order_id!r}, {line.line_id!r})); "
            "use a new fulfillment_id"
        )
    return LineView(line, await db.queue_position(conn, line))


async def set_priority(pool: asyncpg.Pool, order_id: str, line_id: str, priority: int) -> LineView:
    """Changes a line's rank; the fill runs, since the line may now be served first."""
    _line_key(order_id, line_id)
    validation.priority(priority)

    async def work(conn: asyncpg.Connection, effects: Effects) -> LineView:
        line, sku = await _locked_line(conn, order_id, line_id)
        if line.priority == priority:
            return LineView(line, await db.queue_position(conn, line))
        if line.cancelled or line.fulfilled == line.quantity:
            raise FailedPrecondition(
                f"line ({order_id!r}, {line_id!r}) is {line.status.lower()}; "
                "its priority no longer matters"
            )
        old, line = line.priority, await db.set_priority(conn, line.id, priority)
        if line.backordered:
            bands = {old: (-1, -line.backordered), priority: (1, line.backordered)}
            sku = await db.change_totals(conn, line.sku, bands=bands)
        _, sku = await fill_sku(conn, sku, effects, cause="SetPriority", cause_event_id=None)
        await refresh_etas(conn, sku, effects)
        line = await db.line_by_id(conn, line.id)  # after the fill and the ETA walk
        return LineView(line, await db.queue_position(conn, line))

    return await _commit(pool, work)


async def _locked_line(
    conn: asyncpg.Connection, order_id: str, line_id: str
) -> tuple[LineRow, SkuRow]:
    """The line, read again after locking its SKU (every change of a line holds that lock)."""
    line = await db.find_line(conn, order_id, line_id)
    if line is None:
        raise _line_not_found(order_id, line_id)
    sku = await db.lock_sku(conn, line.sku)
    line = await db.line_by_id(conn, line.id)
    return line, sku


# --- SKUs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkuSummary:
    sku: SkuRow
    inbound: list[Inbound]


async def get_sku_summary(pool: asyncpg.Pool, sku: str) -> SkuSummary:
    validation.sku(sku)
    row = await db.get_sku(pool, sku)
    if row is None:
        raise NotFound(f"sku {sku!r} is unknown to the allocation service: no line or stock yet")
    return SkuSummary(row, await db.open_inbound(pool, sku))


@dataclass(frozen=True)
class SetSkuPolicy:
    sku: str
    fill_policy: FillPolicy | None = None
    backorders_accepted: bool | None = None
    backorder_limit: int | None = None

    def validated(self) -> SetSkuPolicy:
        validation.sku(self.sku)
        limit = self.backorder_limit
        if limit is not None and not 0 <= limit <= MAX_BACKORDER_LIMIT:
            raise InvalidArgument(
                "backorder_limit",
                f"is {limit}; it must be from 0 (no limit) to {MAX_BACKORDER_LIMIT:,}",
            )
        return self


async def set_sku_policy(pool: asyncpg.Pool, cmd: SetSkuPolicy) -> SkuSummary:
    """Sets a SKU's policy (existing lines stay); the fill runs, as SKIP may serve lines now."""
    cmd = cmd.validated()

    async def work(conn: asyncpg.Connection, effects: Effects) -> SkuSummary:
        await db.lock_sku(conn, cmd.sku)
        sku = await db.set_policy(
            conn,
            cmd.sku,
            fill_policy=cmd.fill_policy,
            backorders_accepted=cmd.backorders_accepted,
            backorder_limit=cmd.backorder_limit,
        )
        _, sku = await fill_sku(conn, sku, effects, cause="SetSkuPolicy", cause_event_id=None)
        await refresh_etas(conn, sku, effects)
        return SkuSummary(sku, await db.open_inbound(conn, cmd.sku))

    return await _commit(pool, work)


async def list_reservations(
    pool: asyncpg.Pool,
    *,
    order_id: str = "",
    line_id: str = "",
    sku: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> Page[ReservationRow]:
    """The decision log of one line (order_id + line_id) or of one SKU, oldest first."""
    if sku and (order_id or line_id):
        raise InvalidArgument("sku", "give either sku or order_id and line_id, not both")
    if not sku and not (order_id or line_id):
        raise InvalidArgument("sku", "is required unless order_id and line_id are given")
    limit = paging.page_size(page_size)
    query = ("reservations", sku, order_id, line_id)
    after = (paging.decode(page_token, query, [int]) or [0])[0]
    line: int | None = None
    if sku:
        validation.sku(sku)
        if await db.get_sku(pool, sku) is None:
            raise NotFound(f"sku {sku!r} is unknown to the allocation service")
    else:
        _line_key(order_id, line_id)
        found = await db.find_line(pool, order_id, line_id)
        if found is None:
            raise _line_not_found(order_id, line_id)
        line = found.id
    rows = await db.list_reservations(
        pool, line=line, sku=sku or None, after_id=after, limit=limit + 1
    )
    token = paging.encode([rows[limit - 1].id], query) if len(rows) > limit else ""
    return Page(rows[:limit], token)


# --- inventory events ---------------------------------------------------------------------


async def stock_received(pool: asyncpg.Pool, event: inventory_events.StockReceived) -> None:
    """Applies a receipt once: its units become free and the SKU's queue is filled."""
    event_id = _event_id(event.event_id)
    validation.sku(event.sku)
    validation.quantity(event.quantity)

    async def work(conn: asyncpg.Connection, effects: Effects) -> None:
        if not await db.mark_event_processed(conn, event_id, "stock.received"):
            return
        effects.cause_occurred_at = _occurred_at(event)
        await db.lock_sku(conn, event.sku)
        sku = await db.change_totals(conn, event.sku, free=event.quantity)
        _, sku = await fill_sku(conn, sku, effects, cause="stock.received", cause_event_id=event_id)
        await refresh_etas(conn, sku, effects)

    await _commit(pool, work, consumed_event=True)


async def stock_adjusted(pool: asyncpg.Pool, event: inventory_events.StockAdjusted) -> None:
    """Applies an adjustment once. Positive: free units, then the fill. Negative: taken
    from free units first, then back from active reservations, lowest rank first (those
    lines wait again at their rank, line.revoked each). Units beyond free + reserved were
    already shipped (fulfilled); free stays at 0 and they are counted as unmatched."""
    event_id = _event_id(event.event_id)
    validation.sku(event.sku)
    if event.delta == 0 or abs(event.delta) > validation.MAX_QUANTITY:
        raise InvalidArgument("delta", f"is {event.delta}; it must be non-zero and bounded")

    async def work(conn: asyncpg.Connection, effects: Effects) -> None:
        if not await db.mark_event_processed(conn, event_id, "stock.adjusted"):
            return
        effects.cause_occurred_at = _occurred_at(event)
        sku = await db.lock_sku(conn, event.sku)
        if event.delta > 0:
            sku = await db.change_totals(conn, event.sku, free=event.delta)
            _, sku = await fill_sku(
                conn, sku, effects, cause="stock.adjusted", cause_event_id=event_id
            )
        else:
            sku = await _shrink(conn, sku, -event.delta, event_id, effects)
        await refresh_etas(conn, sku, effects)

    await _commit(pool, work, consumed_event=True)


async def _shrink(
    conn: asyncpg.Connection, sku: SkuRow, units: int, event_id: uuid.UUID, effects: Effects
) -> SkuRow:
    from_free = min(sku.free_units, units)
    missing = units - from_free
    revoked: list[RevokedLine] = []
    after = None
    while missing > 0:
        chunk = await db.held_lines(conn, sku.sku, after, FILL_CHUNK)
        plan, missing = revoke((held for held, _ in chunk), missing)
        revoked += await db.apply_revocations(
            conn, sku.sku, plan, cause_event_id=event_id, policy=sku.fill_policy
        )
        if len(chunk) < FILL_CHUNK:
            break
        after = chunk[-1][1]
    bands: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for r in revoked:
        lines, units_waiting = bands[r.line.priority]
        newly_waiting = 1 if r.line.backordered == r.revoked_now else 0
        bands[r.line.priority] = (lines + newly_waiting, units_waiting + r.revoked_now)
    taken_back = sum(r.revoked_now for r in revoked)
    effects.events += [_revoked_event(r, event_id) for r in revoked]
    return await db.change_totals(
        conn,
        sku.sku,
        free=-from_free,
        reserved=-taken_back,
        unmatched_shrinkage=missing,
        bands=bands,
    )


async def stock_issued(pool: asyncpg.Pool, event: inventory_events.StockIssued) -> None:
    """Nothing to do: the units left the books here when the line was fulfilled."""
    _event_id(event.event_id)


async def inbound_updated(pool: asyncpg.Pool, event: inventory_events.InboundUpdated) -> None:
    """Stores the inbound's state (an older version never overwrites a newer one) and
    re-estimates the SKU's ETAs."""
    event_id = _event_id(event.event_id)
    validation.sku(event.sku)
    validation.identifier(event.inbound_id, "inbound_id")
    if event.open_quantity < 0:
        raise InvalidArgument("open_quantity", f"is {event.open_quantity}; it must be >= 0")
    if not event.HasField("expected_at"):
        raise InvalidArgument("expected_at", "is required")

    async def work(conn: asyncpg.Connection, effects: Effects) -> None:
        if not await db.mark_event_processed(conn, event_id, "inbound.updated"):
            return
        sku = await db.lock_sku(conn, event.sku)
        newer = await db.upsert_inbound(
            conn,
            inbound_id=event.inbound_id,
            sku=event.sku,
            open_quantity=0 if event.cancelled else event.open_quantity,
            expected_at=event.expected_at.ToDatetime(tzinfo=UTC),
            cancelled=event.cancelled,
            version=event.version,
        )
        if newer:
            await refresh_etas(conn, sku, effects)

    await _commit(pool, work, consumed_event=True)


# --- the fill and the ETA walk of one locked SKU ------------------------------------------


async def fill_sku(
    conn: asyncpg.Connection,
    sku: SkuRow,
    effects: Effects,
    *,
    cause: str,
    cause_event_id: uuid.UUID | None,
    watch: int | None = None,
) -> tuple[FilledLine | None, SkuRow]:
    """Runs the fill for a locked SKU: walks its queue in rank order, chunk by chunk, and
    records a line.reserved per fill. Each chunk's reservations, line updates and outbox
    rows are written as it is applied, and only counters are kept, so memory stays bounded
    however many lines one fill serves. Returns the fill of line `watch`, if any."""
    if sku.free_units <= 0 or sku.waiting_lines == 0:
        return None, sku
    free, ahead, skipped = sku.free_units, 0, False
    mine: FilledLine | None = None
    bands: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    occurred_at = Timestamp()
    occurred_at.GetCurrentTime()
    last: db.QueuedLine | None = None
    while True:
        chunk = await db.waiting_lines(conn, sku.sku, last, FILL_CHUNK)
        outcome = fill(
            map(db.as_waiting, chunk), free, sku.fill_policy, waiting_ahead=ahead, skipped=skipped
        )
        filled = await db.apply_fills(
            conn,
            sku.sku,
            outcome.fills,
            cause=cause,
            cause_event_id=cause_event_id,
            policy=sku.fill_policy,
        )
        for f in filled:
            lines, waiting_units = bands[f.priority]
            bands[f.priority] = (lines - (f.backordered == 0), waiting_units - f.reserved_now)
            if f.id == watch:
                mine = f
        if filled:
            # Events recorded before the fill (e.g. line.cancelled) go first: per-SKU order.
            events = effects.events + _reserved_events(filled, cause_event_id, occurred_at)
            effects.events = []
            await add_events(conn, events)
        free, ahead, skipped = outcome.free_after, outcome.waiting_ahead, outcome.skipped
        if outcome.stopped or len(chunk) < FILL_CHUNK:
            break
        last = chunk[-1]
    units = sku.free_units - free
    if units == 0:
        return mine, sku
    sku = await db.change_totals(conn, sku.sku, free=-units, reserved=units, bands=bands)
    effects.reserved_units += units
    return mine, sku


async def refresh_etas(conn: asyncpg.Connection, sku: SkuRow, effects: Effects) -> None:
    """Re-estimates the ETAs of a locked SKU's waiting lines; line.eta_changed for each
    change. Without open inbound no line can have an ETA (the fill already gave out what
    is free), so that case only clears ETAs that are still set (an index lookup)."""
    inbound = await db.open_inbound(conn, sku.sku)
    known: dict[int, datetime] = {}
    if inbound and sku.waiting_lines:
        arrivals = [db.as_arrival(i) for i in inbound]
        supply = sku.free_units + sum(a.quantity for a in arrivals)
        strict = sku.fill_policy is FillPolicy.STRICT
        lines = await db.eta_candidates(
            conn, sku.sku, limit=ETA_WALK_LIMIT, units_cap=supply if strict else None
        )
        known = eta_walk.estimate(lines, sku.free_units, arrivals, sku.fill_policy, _now())
    changed = await db.set_etas(conn, sku.sku, known)
    effects.events += [_eta_event(line) for line in changed if line.backordered > 0]


async def _eta_of_new_line(
    conn: asyncpg.Connection,
    sku: SkuRow,
    line: LineRow,
    stats: db.TailStats,
    inbound: list[Inbound],
    effects: Effects,
) -> LineRow:
    """ETA of a line just placed. Without inbound: unknown, nothing else moves. As the last
    waiting line under STRICT: only its own ETA, from the units ahead. Otherwise (it went
    ahead of lower-priority lines, or SKIP) the whole SKU is re-estimated."""
    if not inbound:
        return line
    if stats.lines_below == 0 and sku.fill_policy is FillPolicy.STRICT:
        estimate = eta_walk.strict_eta_behind(
            stats.units_through - line.backordered,
            db.as_waiting(line),
            sku.free_units,
            [db.as_arrival(i) for i in inbound],
            _now(),
        )
        if estimate is None:
            return line
        changed = await db.set_etas(conn, sku.sku, {line.id: estimate}, only=True)
        effects.events += [_eta_event(c) for c in changed]
        return changed[0] if changed else line
    await refresh_etas(conn, sku, effects)
    return await db.line_by_id(conn, line.id)


# --- events and small helpers -------------------------------------------------------------


_STATUS = {name: events_pb2.LineStatus.Value(f"LINE_STATUS_{name}") for name in STATUSES}


def line_status(line: LineRow) -> events_pb2.LineStatus:
    return _STATUS[line.status]


def _reserved_events(
    filled: Sequence[FilledLine], cause_event_id: uuid.UUID | None, occurred_at: Timestamp
) -> list[OutgoingEvent]:
    """line.reserved of each fill, built directly (a drain makes one per line): one
    occurred_at for the whole fill, which happens in one transaction."""
    cause = str(cause_event_id) if cause_event_id else ""
    events = []
    for f, event_id in zip(filled, _event_ids(len(filled)), strict=True):
        message = events_pb2.LineReserved(
            event_id=str(event_id),
            sku=f.sku,
            order_id=f.order_id,
            line_id=f.line_id,
            quantity=f.quantity,
            reserved_now=f.reserved_now,
            reserved_quantity=f.reserved,
            backordered_quantity=f.backordered,
            status=_STATUS[f.status],
            reservation_id=f.reservation_id,
            cause_event_id=cause,
        )
        # CopyFrom costs half of passing the Timestamp to the constructor.
        message.occurred_at.CopyFrom(occurred_at)
        events.append(OutgoingEvent(ALLOCATION_EXCHANGE, "line.reserved", f.sku, message, event_id))
    return events


# Random (version 4, RFC 4122 variant) UUIDs: the version nibble and variant bits forced.
_UUID_VERSION_4 = bytes((b & 0x0F) | 0x40 for b in range(256))
_UUID_VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))


def _event_ids(count: int) -> list[uuid.UUID]:
    """`count` random UUIDs, as uuid4 makes them, for a tenth of its cost (one urandom call,
    asyncpg's C UUID type, a uuid.UUID): uuid4 per event was half of building a drain's
    line.reserved events."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = raw[6::16].translate(_UUID_VERSION_4)
    raw[8::16] = raw[8::16].translate(_UUID_VARIANT)
    data = bytes(raw)
    return [PgUUID(data[i : i + 16]) for i in range(0, len(data), 16)]


def _revoked_event(r: RevokedLine, cause_event_id: uuid.UUID) -> OutgoingEvent:
    return new_event(
        ALLOCATION_EXCHANGE,
        "line.revoked",
        events_pb2.LineRevoked(
            sku=r.line.sku,
            order_id=r.line.order_id,
            line_id=r.line.line_id,
            quantity=r.line.quantity,
            revoked_now=r.revoked_now,
            reserved_quantity=r.line.reserved,
            backordered_quantity=r.line.backordered,
            status=line_status(r.line),
            cause_event_id=str(cause_event_id),
        ),
    )


def _backordered_event(
    sku: str,
    order_id: str,
    line_id: str,
    quantity: int,
    *,
    backordered: int,
    reserved: int,
    status: str,
    queue_position: int,
) -> OutgoingEvent:
    return new_event(
        ALLOCATION_EXCHANGE,
        "line.backordered",
        events_pb2.LineBackordered(
            sku=sku,
            order_id=order_id,
            line_id=line_id,
            quantity=quantity,
            backordered_quantity=backordered,
            reserved_quantity=reserved,
            queue_position=queue_position,
            status=_STATUS[status],
        ),
    )


# queue_line (migration 0005) appends the queue position to a line.backordered body.
_QUEUE_POSITION_FIELD = events_pb2.LineBackordered.DESCRIPTOR.fields_by_name[
    "queue_position"
].number


def _eta_event(line: LineRow) -> OutgoingEvent:
    return new_event(
        ALLOCATION_EXCHANGE,
        "line.eta_changed",
        events_pb2.LineEtaChanged(
            sku=line.sku,
            order_id=line.order_id,
            line_id=line.line_id,
            estimated_fill_at=to_proto(line.eta),
            eta_known=line.eta is not None,
            backordered_quantity=line.backordered,
            version=line.eta_version,
        ),
    )


def _line_key(order_id: str, line_id: str) -> None:
    validation.identifier(order_id, "order_id")
    validation.identifier(line_id, "line_id")


def _line_not_found(order_id: str, line_id: str) -> NotFound:
    return NotFound(f"line ({order_id!r}, {line_id!r}) was never placed")


def _occurred_at(
    event: inventory_events.StockReceived | inventory_events.StockAdjusted,
) -> datetime | None:
    return event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else None


def _now() -> datetime:
    return datetime.now(UTC)


def _event_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument("event_id", f"{value!r} is not a UUID") from None

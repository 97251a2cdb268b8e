"""What the allocation service does with the inventory service's events: receipts and
positive adjustments free units, negative adjustments and transfers shrink at their
location (the fill runs after each), inbound updates move ETAs. Each event is applied
exactly once (consume_once); a SKU's stock events in the order the inventory service applied
them (its stock version, docs/spec.md §4)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import TypeAlias

import asyncpg

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation.adapters import inbound as inbound_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters import stock_order as order_db
from services.allocation.domain.fill import DEFAULT_LOCATION
from services.allocation.domain.model import Sku
from services.allocation.handlers.locked_sku import fill_sku, refresh_etas, shrink
from services.common import validation
from services.common.errors import InvalidArgument
from services.common.unit_of_work import UnitOfWork, consume_once, parse_event_id

log = logging.getLogger(__name__)


async def stock_received(pool: asyncpg.Pool, event: inventory_events.StockReceived) -> None:
    """Applies a receipt once, in its SKU's stock order: its units become free and the
    SKU's queue is filled."""
    event_id = parse_event_id(event.event_id)
    validation.sku(event.sku)
    validation.quantity(event.quantity)
    _location(event.location_id)
    await _consume_in_order(pool, event_id, "stock.received", event)


async def _apply_received(uow: UnitOfWork, event: inventory_events.StockReceived) -> None:
    location_id = _location(event.location_id)
    await skus_db.ensure_location(uow.conn, location_id)
    sku = await skus_db.change_totals(uow.conn, event.sku, at={location_id: (event.quantity, 0)})
    await _fill(uow, sku, "stock.received", event)


async def stock_adjusted(pool: asyncpg.Pool, event: inventory_events.StockAdjusted) -> None:
    """Applies an adjustment once, in its SKU's stock order, at its location. Positive: free
    units, then the fill. Negative: taken from free units there first, then back from active
    reservations there, lowest rank first (those lines wait again at their rank, line.revoked
    each), then the fill (a revoked line may take free units at another location). Units
    beyond free + reserved were already shipped (fulfilled); free stays at 0 and they are
    counted as unmatched."""
    event_id = parse_event_id(event.event_id)
    validation.sku(event.sku)
    if event.delta == 0 or abs(event.delta) > validation.MAX_QUANTITY:
        raise InvalidArgument("delta", f"is {event.delta}; it must be non-zero and bounded")
    _location(event.location_id)
    await _consume_in_order(pool, event_id, "stock.adjusted", event)


async def _apply_adjusted(uow: UnitOfWork, event: inventory_events.StockAdjusted) -> None:
    location_id = _location(event.location_id)
    event_id = parse_event_id(event.event_id)
    sku = await skus_db.lock_sku(uow.conn, event.sku)
    await skus_db.ensure_location(uow.conn, location_id)
    if event.delta > 0:
        sku = await skus_db.change_totals(uow.conn, event.sku, at={location_id: (event.delta, 0)})
    else:
        sku = await shrink(uow, sku, -event.delta, event_id, location_id)
    await _fill(uow, sku, "stock.adjusted", event)


async def stock_issued(pool: asyncpg.Pool, event: inventory_events.StockIssued) -> None:
    """Nothing to do: the units left the books here when the line was fulfilled."""
    parse_event_id(event.event_id)


async def inbound_updated(pool: asyncpg.Pool, event: inventory_events.InboundUpdated) -> None:
    """Stores the inbound's state (an older version never overwrites a newer one) and
    re-estimates the SKU's ETAs."""
    event_id = parse_event_id(event.event_id)
    validation.sku(event.sku)
    validation.identifier(event.inbound_id, "inbound_id")
    if event.open_quantity < 0:
        raise InvalidArgument("open_quantity", f"is {event.open_quantity}; it must be >= 0")
    if not event.HasField("expected_at"):
        raise InvalidArgument("expected_at", "is required")

    location_id = _location(event.location_id)

    async def work(uow: UnitOfWork) -> None:
        sku = await skus_db.lock_sku(uow.conn, event.sku)
        await skus_db.ensure_location(uow.conn, location_id)
        newer = await inbound_db.upsert_inbound(
            uow.conn,
            location_id=location_id,
            inbound_id=event.inbound_id,
            sku=event.sku,
            open_quantity=0 if event.cancelled else event.open_quantity,
            expected_at=event.expected_at.ToDatetime(tzinfo=UTC),
            cancelled=event.cancelled,
            version=event.version,
        )
        if newer:
            await refresh_etas(uow, sku)

    await consume_once(pool, event_id, "inbound.updated", work)


async def stock_transferred(pool: asyncpg.Pool, event: inventory_events.StockTransferred) -> None:
    """Applies a transfer once, in its SKU's stock order (docs/spec.md §8): at the source
    like a negative adjustment there (free units there first, then reservations held there,
    lowest rank first); when it landed at once (not in transit), at the destination like a
    receipt there, then the fill. Units in transit reach the destination through
    inbound.updated and, later, stock.received."""
    event_id = parse_event_id(event.event_id)
    validation.sku(event.sku)
    validation.quantity(event.quantity)
    source = _location(event.from_location_id)
    destination = _location(event.to_location_id)
    if source == destination:
        raise InvalidArgument("to_location_id", f"is {destination!r}, the source too")
    await _consume_in_order(pool, event_id, "stock.transferred", event)


async def _apply_transferred(uow: UnitOfWork, event: inventory_events.StockTransferred) -> None:
    source = _location(event.from_location_id)
    destination = _location(event.to_location_id)
    event_id = parse_event_id(event.event_id)
    sku = await skus_db.lock_sku(uow.conn, event.sku)
    await skus_db.ensure_location(uow.conn, source)
    await skus_db.ensure_location(uow.conn, destination)
    sku = await shrink(uow, sku, event.quantity, event_id, source, cause="stock.transferred")
    if not event.in_transit:
        sku = await skus_db.change_totals(
            uow.conn, event.sku, at={destination: (event.quantity, 0)}
        )
    await _fill(uow, sku, "stock.transferred", event)


async def location_updated(pool: asyncpg.Pool, event: inventory_events.LocationUpdated) -> None:
    """Stores a location's state (an older version never overwrites a newer one). A
    location that became active or moved in rank may serve lines now: each SKU with free
    units there is filled; ETAs of SKUs with units or inbound there are re-estimated."""
    event_id = parse_event_id(event.event_id)
    validation.identifier(event.location_id, "location_id")
    if event.location_id == DEFAULT_LOCATION and not event.active:
        raise InvalidArgument("active", "the default location cannot be deactivated")

    async def work(uow: UnitOfWork) -> None:
        changed = await skus_db.upsert_location(
            uow.conn,
            location_id=event.location_id,
            name=event.name,
            fill_rank=event.fill_rank,
            active=event.active,
            version=event.version,
        )
        if not changed:
            return
        for name in await skus_db.skus_at(uow.conn, event.location_id):
            sku = await skus_db.lock_sku(uow.conn, name)
            _, sku = await fill_sku(uow, sku, cause="location.updated", cause_event_id=event_id)
            await refresh_etas(uow, sku)

    await consume_once(pool, event_id, "location.updated", work)


StockEvent: TypeAlias = (
    inventory_events.StockReceived
    | inventory_events.StockAdjusted
    | inventory_events.StockTransferred
)
_KINDS: dict[str, type[StockEvent]] = {
    "stock.received": inventory_events.StockReceived,
    "stock.adjusted": inventory_events.StockAdjusted,
    "stock.transferred": inventory_events.StockTransferred,
}


async def _consume_in_order(
    pool: asyncpg.Pool, event_id: uuid.UUID, routing_key: str, event: StockEvent
) -> None:
    async def work(uow: UnitOfWork) -> None:
        await _apply_in_order(uow, routing_key, event)

    await consume_once(pool, event_id, routing_key, work)


async def _apply_in_order(uow: UnitOfWork, routing_key: str, event: StockEvent) -> None:
    """Applies a (validated) stock event in its SKU's stock order (docs/spec.md §4): version
    n + 1 right after n, then any held events that follow it; one that arrived ahead of a
    missing version is held until that one comes (another replica may be applying it, or
    the broker delivering it later). Version 0 (from before versions) applies at once."""
    conn = uow.conn
    applied = await order_db.lock_applied_version(conn, event.sku)
    version = event.stock_version
    if version == 0:
        await _apply(uow, event)
        return
    if version <= applied:
        # Another copy of an applied version under another event id: nothing to do.
        log.warning(
            "%s %s of %s is stock version %d, already applied; ignored",
            routing_key,
            event.event_id,
            event.sku,
            version,
        )
        return
    if version > applied + 1:
        await order_db.hold(conn, event.sku, version, routing_key, event.SerializeToString())
        return
    await _apply(uow, event)
    while (held := await order_db.take_next_or_settle(conn, event.sku, version)) is not None:
        key, body = held
        await _apply(uow, _KINDS[key].FromString(body))
        version += 1


async def _fill(uow: UnitOfWork, sku: Sku, cause: str, event: StockEvent) -> None:
    """The fill and the ETAs after a stock event: after shrinkage too, since a line that
    lost units at one location may take free units at another at once (with one location
    this finds nothing free and returns)."""
    _, sku = await fill_sku(
        uow,
        sku,
        cause=cause,
        cause_event_id=parse_event_id(event.event_id),
        cause_occurred_at=_occurred_at(event),
    )
    await refresh_etas(uow, sku)


async def _apply(uow: UnitOfWork, event: StockEvent) -> None:
    if isinstance(event, inventory_events.StockReceived):
        await _apply_received(uow, event)
    elif isinstance(event, inventory_events.StockAdjusted):
        await _apply_adjusted(uow, event)
    else:
        await _apply_transferred(uow, event)


def _location(location_id: str) -> str:
    """The location an event is about: empty (an event from before locations) is default."""
    if not location_id:
        return DEFAULT_LOCATION
    validation.identifier(location_id, "location_id")
    return location_id


def _occurred_at(
    event: inventory_events.StockReceived
    | inventory_events.StockAdjusted
    | inventory_events.StockTransferred,
) -> datetime | None:
    return event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else None

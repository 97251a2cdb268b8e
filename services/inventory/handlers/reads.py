"""Reads of the inventory service: stock, the ledger, inbound (paged) and WatchStock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.common import paging, validation
from services.common.change_feed import ChangeFeed, FeedInterrupted, FeedOverflow
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted, Unavailable
from services.common.pages import Page
from services.inventory.adapters import postgres as db
from services.inventory.domain.model import (
    Inbound,
    LocationStock,
    Movement,
    Stock,
    StockChangeKind,
)
from services.inventory.handlers.locations import location_filter

MAX_WATCHED_SKUS = 1000


async def get_stock(pool: asyncpg.Pool, sku: str) -> Stock:
    validation.sku(sku)
    stock = await db.get_stock(pool, sku)
    if stock is None:
        raise NotFound(f"sku {sku!r} is unknown: nothing has referenced it yet")
    return stock


async def list_stock(
    pool: asyncpg.Pool, *, page_size: int, page_token: str, sku_prefix: str
) -> Page[Stock]:
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
    pool: asyncpg.Pool, *, sku: str, page_size: int, page_token: str, location_id: str = ""
) -> Page[Movement]:
    if sku:
        validation.sku(sku)
    location = location_filter(location_id)
    size = paging.page_size(page_size)
    # Without a location the query (and so the tokens) are what they were before locations.
    query = ["movements", sku, location] if location else ["movements", sku]
    after = paging.decode(page_token, query, (int,))
    rows = await db.list_movements(pool, sku, location, after[0] if after else None, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, paging.encode([rows[-1].id], query) if more else "")


async def list_inbound(
    pool: asyncpg.Pool,
    *,
    sku: str,
    page_size: int,
    page_token: str,
    open_only: bool,
    location_id: str = "",
) -> Page[Inbound]:
    if sku:
        validation.sku(sku)
    location = location_filter(location_id)
    size = paging.page_size(page_size)
    query = ["inbound", sku, open_only, location] if location else ["inbound", sku, open_only]
    after = paging.decode(page_token, query, (datetime, str))
    position = (after[0], after[1]) if after else None
    rows = await db.list_inbound(pool, sku, open_only, position, size + 1, location)
    more = len(rows) > size
    rows = rows[:size]
    token = ""
    if more:
        token = paging.encode([rows[-1].expected_at, rows[-1].inbound_id], query)
    return Page(rows, token)


@dataclass(frozen=True)
class StockChange:
    """One message of WatchStock: a SKU's stock right after a change (or a snapshot)."""

    stock: Stock
    kind: StockChangeKind
    movement_id: int = 0
    inbound_id: str = ""
    # The location that changed (a transfer: the source); empty for snapshots.
    location_id: str = ""


def _at(location: str, payload: dict[str, object]) -> bool:
    """Whether a change touched the location (a transfer touches both of its ends)."""
    return location in (payload.get("location_id"), payload.get("other_location_id"))


async def watch_stock(
    pool: asyncpg.Pool, feed: ChangeFeed, skus: list[str], location_id: str = ""
) -> AsyncIterator[StockChange]:
    """Current stock of the named SKUs, then every committed change of them (of every SKU
    when none are named; only changes at `location_id` when one is named), as long as the
    caller keeps up. A change carries the SKU's totals and the entries of the locations it
    touched (a snapshot: every location)."""
    if len(skus) > MAX_WATCHED_SKUS:
        raise InvalidArgument("skus", f"names {len(skus)} SKUs; watch at most {MAX_WATCHED_SKUS}")
    for index, sku in enumerate(skus):
        validation.sku(sku, f"skus[{index}]")
    location = location_filter(location_id)
    wanted = set(skus)

    def watched(p: dict[str, object]) -> bool:
        return (not wanted or p.get("sku") in wanted) and (not location or _at(location, p))

    try:
        async with feed.subscribe(watched) as changes:
            # Subscribed first, then read: a change in between is sent twice, never missed.
            for stock in await db.get_stocks(pool, sorted(wanted)) if wanted else []:
                yield StockChange(stock, StockChangeKind.SNAPSHOT)
            while True:
                payload = await changes.next()
                yield StockChange(
                    Stock(
                        sku=payload["sku"],
                        on_hand=payload["on_hand"],
                        inbound_quantity=payload["inbound_quantity"],
                        updated_at=datetime.fromisoformat(payload["updated_at"]),
                        in_transit_quantity=payload.get("in_transit_quantity", 0),
                        locations=tuple(
                            LocationStock(**entry) for entry in payload.get("locations", [])
                        ),
                    ),
                    StockChangeKind(payload["kind"]),
                    payload.get("movement_id", 0),
                    payload.get("inbound_id", ""),
                    payload.get("location_id", ""),
                )
    except FeedOverflow as exc:
        raise ResourceExhausted(
            f"the watcher {exc}: read faster, or re-read with GetStock and watch again"
        ) from None
    except FeedInterrupted as exc:
        raise Unavailable(f"{exc}; re-read with GetStock and watch again") from None

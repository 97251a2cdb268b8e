"""The inventory database: locations, stock rows (per SKU and per SKU and location), the
movement ledger, inbound and the change feed,
mapped to the domain types (services.inventory.domain.model). The inbox of consumed events
is services.common.unit_of_work.consume_once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

import asyncpg

from services.inventory.domain.model import (
    Inbound,
    Location,
    LocationStock,
    Movement,
    MovementKind,
    Stock,
    StockChangeKind,
)

# Channel of the stock change feed (WatchStock): one NOTIFY per committed change.
STOCK_CHANNEL = "stock_changed"


Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool

_STOCK = "sku, on_hand, inbound_quantity, updated_at, in_transit_quantity"
# A stock row with its locations (by fill_rank, location_id) as one JSON array.
_STOCK_WITH_LOCATIONS = """s.sku, s.on_hand, s.inbound_quantity, s.updated_at,
    s.in_transit_quantity,
    (select json_agg(json_build_object(
                'location_id', sl.location_id, 'on_hand', sl.on_hand,
                'inbound_quantity', sl.inbound_quantity,
                'in_transit_quantity', sl.in_transit_quantity)
            order by l.fill_rank, l.location_id)
       from stock_location sl join location l using (location_id)
      where sl.sku = s.sku) as locations"""
_MOVEMENT = (
    "id, sku, kind, key, quantity, on_hand_after, inbound_id, reason, note, order_id, line_id,"
    " shortfall, event_id, created_at, location_id, other_location_id"
)
_INBOUND = (
    "inbound_id, sku, quantity, received_quantity, expected_at, cancelled, open_quantity,"
    " version, created_at, updated_at, location_id, from_location_id"
)
_LOCATION = "location_id, name, fill_rank, active, version, updated_at"


def _movement(row: Mapping[str, Any]) -> Movement:
    return Movement(**{**row, "kind": MovementKind(row["kind"])})


def _stock(row: Mapping[str, Any]) -> Stock:
    locations = json.loads(row["locations"]) if row.get("locations") else []
    return Stock(
        **{k: v for k, v in row.items() if k != "locations"},
        locations=tuple(LocationStock(**entry) for entry in locations),
    )


# --- locations ---------------------------------------------------------------------------


async def get_location(conn: Executor, location_id: str) -> Location | None:
    row = await conn.fetchrow(
        f"select {_LOCATION} from location where location_id = $1", location_id
    )
    return Location(**row) if row else None


async def put_location(
    conn: asyncpg.Connection,
    location_id: str,
    name: str | None,
    fill_rank: int | None,
    active: bool | None,
) -> tuple[Location, bool]:
    """Creates or changes the location (None keeps a value); the bool says whether anything
    changed (a repeat of the same values changes nothing, not even the version)."""
    before = await conn.fetchrow(
        f"select {_LOCATION} from location where location_id = $1 for update", location_id
    )
    if before is None:
        row = await conn.fetchrow(
            f"""insert into location (location_id, name, fill_rank, active)
                values ($1, $2, $3, $4)
                on conflict (location_id) do nothing returning {_LOCATION}""",
            location_id,
            name or location_id,
            fill_rank if fill_rank is not None else 0,
            active if active is not None else True,
        )
        if row is None:  # created concurrently: change it as an existing one
            return await put_location(conn, location_id, name, fill_rank, active)
        return Location(**row), True
    current = Location(**before)
    wanted = (
        name or current.name,
        current.fill_rank if fill_rank is None else fill_rank,
        current.active if active is None else active,
    )
    if wanted == (current.name, current.fill_rank, current.active):
        return current, False
    row = await conn.fetchrow(
        f"""update location set name = $2, fill_rank = $3, active = $4,
                version = version + 1, updated_at = clock_timestamp()
            where location_id = $1 returning {_LOCATION}""",
        location_id,
        *wanted,
    )
    return Location(**row), True


async def list_locations(
    conn: Executor, after: tuple[int, str] | None, limit: int
) -> list[Location]:
    """By fill_rank then location_id."""
    after_rank, after_id = after if after else (None, None)
    rows = await conn.fetch(
        f"""select {_LOCATION} from location
            where $1::integer is null or (fill_rank, location_id) > ($1, $2::text)
            order by fill_rank, location_id limit $3""",
        after_rank,
        after_id,
        limit,
    )
    return [Location(**r) for r in rows]


# --- stock -------------------------------------------------------------------------------


async def get_stock(conn: Executor, sku: str) -> Stock | None:
    row = await conn.fetchrow(f"select {_STOCK_WITH_LOCATIONS} from stock s where sku = $1", sku)
    return _stock(row) if row else None


async def get_stocks(conn: Executor, skus: list[str]) -> list[Stock]:
    rows = await conn.fetch(
        f"""select {_STOCK_WITH_LOCATIONS} from stock s
            where sku = any($1::text[]) order by sku""",
        skus,
    )
    return [_stock(r) for r in rows]


async def location_on_hand(conn: asyncpg.Connection, sku: str, location_id: str) -> int:
    """On hand of the SKU at the location (0 if it never held it)."""
    value = await conn.fetchval(
        "select on_hand from stock_location where sku = $1 and location_id = $2",
        sku,
        location_id,
    )
    return int(value or 0)


async def lock_stock(conn: asyncpg.Connection, sku: str) -> Stock:
    """The SKU's stock row (created at 0 if new), locked until commit: every change of one
    SKU, at any of its locations, is serialised on it, which also keeps its outbox rows in
    commit order. The Stock returned has the totals only (no locations)."""
    row = await conn.fetchrow(
        f"""insert into stock as s (sku) values ($1)
            on conflict (sku) do update set sku = s.sku
            returning {_STOCK}""",
        sku,
    )
    return Stock(**row)


async def next_stock_version(conn: asyncpg.Connection, sku: str) -> int:
    """Bumps and returns the SKU's stock version, which its next stock.received,
    stock.adjusted or stock.transferred event carries (docs/spec.md §4); the caller holds
    the SKU's row lock, so versions follow the order changes are applied in."""
    version: int = await conn.fetchval(
        "update stock set stock_version = stock_version + 1 where sku = $1 returning stock_version",
        sku,
    )
    return version


class OnHand(NamedTuple):
    """On hand right after a change: at the location, and the SKU's total."""

    here: int
    total: int


async def change_on_hand(
    conn: asyncpg.Connection, sku: str, location_id: str, delta: int
) -> OnHand:
    """Adds `delta` to on hand at the location and to the SKU's total, in one round trip
    (the caller holds the SKU's row lock, lock_stock)."""
    # The proposed row is checked before the conflict: it must not be negative itself.
    row = await conn.fetchrow(
        """with here as (
               insert into stock_location as s (sku, location_id, on_hand)
               values ($1, $2, greatest($3::bigint, 0))
               on conflict (sku, location_id) do update
                  set on_hand = s.on_hand + $3, updated_at = clock_timestamp()
               returning on_hand),
           total as (
               update stock set on_hand = on_hand + $3, updated_at = clock_timestamp()
               where sku = $1 returning on_hand)
           select (select on_hand from here) as here, (select on_hand from total) as total""",
        sku,
        location_id,
        delta,
    )
    return OnHand(row["here"], row["total"])


async def refresh_inbound_quantity(conn: asyncpg.Connection, sku: str, location_id: str) -> None:
    """Recomputes the SKU's inbound and in-transit quantities at the location and in total
    from its open inbound (the caller holds the SKU's row lock)."""
    await conn.execute(
        """insert into stock_location as s
               (sku, location_id, inbound_quantity, in_transit_quantity)
           select $1, $2, coalesce(sum(open_quantity), 0),
                  coalesce(sum(open_quantity) filter (where from_location_id <> ''), 0)
             from inbound where sku = $1 and location_id = $2
           on conflict (sku, location_id) do update
              set inbound_quantity = excluded.inbound_quantity,
                  in_transit_quantity = excluded.in_transit_quantity,
                  updated_at = clock_timestamp()""",
        sku,
        location_id,
    )
    await conn.execute(
        """update stock set (inbound_quantity, in_transit_quantity) = (
                  select coalesce(sum(inbound_quantity), 0),
                         coalesce(sum(in_transit_quantity), 0)
                    from stock_location where sku = $1),
               updated_at = clock_timestamp()
           where sku = $1""",
        sku,
    )


async def list_stock(conn: Executor, prefix: str, after: str | None, limit: int) -> list[Stock]:
    rows = await conn.fetch(
        f"""select {_STOCK_WITH_LOCATIONS} from stock s
            where starts_with(sku, $1) and ($2::text is null or sku > $2)
            order by sku limit $3""",
        prefix,
        after,
        limit,
    )
    return [_stock(r) for r in rows]


async def notify_stock_changed(
    conn: asyncpg.Connection,
    stock: Stock,
    kind: StockChangeKind,
    *,
    location_id: str,
    movement_id: int = 0,
    inbound_id: str = "",
    other_location_id: str = "",
) -> None:
    """Tells every replica's WatchStock feed about the change, when (and only if) it commits.
    The message carries the SKU's totals and only the locations that changed (`location_id`,
    and for a transfer `other_location_id`): a NOTIFY payload is bounded (8000 bytes), a SKU's
    list of locations is not."""
    changed = {location_id, other_location_id}
    payload = {
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "inbound_quantity": stock.inbound_quantity,
        "in_transit_quantity": stock.in_transit_quantity,
        "updated_at": stock.updated_at.isoformat(),
        "kind": kind.value,
        "movement_id": movement_id,
        "inbound_id": inbound_id,
        "location_id": location_id,
        "other_location_id": other_location_id,
        "locations": [vars(entry) for entry in stock.locations if entry.location_id in changed],
    }
    await conn.execute("select pg_notify($1, $2)", STOCK_CHANNEL, json.dumps(payload))


# --- the movement ledger -----------------------------------------------------------------


async def find_movement(conn: asyncpg.Connection, kind: MovementKind, key: str) -> Movement | None:
    row = await conn.fetchrow(
        f"select {_MOVEMENT} from movement where kind = $1 and key = $2", kind, key
    )
    return _movement(row) if row else None


async def insert_movement(
    conn: asyncpg.Connection,
    *,
    sku: str,
    kind: MovementKind,
    key: str,
    quantity: int,
    on_hand_after: int,
    inbound_id: str = "",
    reason: str = "",
    note: str = "",
    order_id: str = "",
    line_id: str = "",
    shortfall: int = 0,
    event_id: uuid.UUID | None = None,
    location_id: str,
    other_location_id: str = "",
) -> Movement:
    """`on_hand_after` is the SKU's total on hand after the movement."""
    row = await conn.fetchrow(
        f"""insert into movement (sku, kind, key, quantity, on_hand_after, inbound_id, reason,
                                  note, order_id, line_id, shortfall, event_id, location_id,
                                  other_location_id)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
            returning {_MOVEMENT}""",
        sku,
        kind,
        key,
        quantity,
        on_hand_after,
        inbound_id,
        reason,
        note,
        order_id,
        line_id,
        shortfall,
        event_id,
        location_id,
        other_location_id,
    )
    return _movement(row)


async def list_movements(
    conn: Executor, sku: str, location_id: str, before_id: int | None, limit: int
) -> list[Movement]:
    """Newest first; `sku` or `location_id` empty means every SKU or location."""
    rows = await conn.fetch(
        f"""select {_MOVEMENT} from movement
            where ($1 = '' or sku = $1) and ($2::bigint is null or id < $2)
              and ($4 = '' or location_id = $4)
            order by id desc limit $3""",
        sku,
        before_id,
        limit,
        location_id,
    )
    return [_movement(r) for r in rows]


# --- inbound -----------------------------------------------------------------------------


async def get_inbound(
    conn: Executor, inbound_id: str, *, for_update: bool = False
) -> Inbound | None:
    lock = " for update" if for_update else ""
    row = await conn.fetchrow(
        f"select {_INBOUND} from inbound where inbound_id = $1{lock}", inbound_id
    )
    return Inbound(**row) if row else None


async def insert_inbound(
    conn: asyncpg.Connection,
    inbound_id: str,
    sku: str,
    quantity: int,
    expected_at: datetime,
    location_id: str,
    from_location_id: str = "",
) -> Inbound:
    row = await conn.fetchrow(
        f"""insert into inbound (inbound_id, sku, quantity, expected_at, location_id,
                                 from_location_id)
            values ($1, $2, $3, $4, $5, $6) returning {_INBOUND}""",
        inbound_id,
        sku,
        quantity,
        expected_at,
        location_id,
        from_location_id,
    )
    return Inbound(**row)


async def update_inbound(
    conn: asyncpg.Connection,
    inbound_id: str,
    *,
    quantity: int | None = None,
    expected_at: datetime | None = None,
    received: int = 0,
    cancel: bool = False,
) -> Inbound:
    """Changes an inbound and bumps its version (the caller holds its row lock)."""
    row = await conn.fetchrow(
        f"""update inbound set quantity = coalesce($2, quantity),
                               expected_at = coalesce($3, expected_at),
                               received_quantity = received_quantity + $4,
                               cancelled = cancelled or $5,
                               version = version + 1,
                               updated_at = clock_timestamp()
            where inbound_id = $1 returning {_INBOUND}""",
        inbound_id,
        quantity,
        expected_at,
        received,
        cancel,
    )
    return Inbound(**row)


async def list_inbound(
    conn: Executor,
    sku: str,
    open_only: bool,
    after: tuple[datetime, str] | None,
    limit: int,
    location_id: str = "",
) -> list[Inbound]:
    """By expected_at then inbound_id; `sku` or `location_id` empty means every SKU or
    location."""
    after_at, after_id = after if after else (None, None)
    rows = await conn.fetch(
        f"""select {_INBOUND} from inbound
            where ($1 = '' or sku = $1) and (not $2 or open_quantity > 0)
              and ($3::timestamptz is null or (expected_at, inbound_id) > ($3, $4::text))
              and ($6 = '' or location_id = $6)
            order by expected_at, inbound_id limit $5""",
        sku,
        open_only,
        after_at,
        after_id,
        limit,
        location_id,
    )
    return [Inbound(**r) for r in rows]

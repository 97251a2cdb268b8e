"""The inventory database: stock rows, the movement ledger, inbound and the change feed,
mapped to the domain types (services.inventory.domain.model). The inbox of consumed events
is services.common.unit_of_work.consume_once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.inventory.domain.model import (
    Inbound,
    Movement,
    MovementKind,
    Stock,
    StockChangeKind,
)

# Channel of the stock change feed (WatchStock): one NOTIFY per committed change.
STOCK_CHANNEL = "stock_changed"


Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool

_STOCK = "sku, on_hand, inbound_quantity, updated_at"
_MOVEMENT = (
    "id, sku, kind, key, quantity, on_hand_after, inbound_id, reason, note, order_id, line_id,"
    " shortfall, event_id, created_at"
)
_INBOUND = (
    "inbound_id, sku, quantity, received_quantity, expected_at, cancelled, open_quantity,"
    " version, created_at, updated_at"
)


def _movement(row: Mapping[str, Any]) -> Movement:
    return Movement(**{**row, "kind": MovementKind(row["kind"])})


# --- stock -------------------------------------------------------------------------------


async def get_stock(conn: Executor, sku: str) -> Stock | None:
    row = await conn.fetchrow(f"select {_STOCK} from stock where sku = $1", sku)
    return Stock(**row) if row else None


async def get_stocks(conn: Executor, skus: list[str]) -> list[Stock]:
    rows = await conn.fetch(
        f"select {_STOCK} from stock where sku = any($1::text[]) order by sku", skus
    )
    return [Stock(**r) for r in rows]


async def lock_stock(conn: asyncpg.Connection, sku: str) -> Stock:
    """The SKU's stock row (created at 0 if new), locked until commit: every change of one
    SKU is serialised on it, which also keeps its outbox rows in commit order."""
    row = await conn.fetchrow(
        f"""insert into stock as s (sku) values ($1)
            on conflict (sku) do update set sku = s.sku
            returning {_STOCK}""",
        sku,
    )
    return Stock(**row)


async def add_on_hand(conn: asyncpg.Connection, sku: str, delta: int) -> Stock:
    """Adds `delta` to on hand (creating the SKU), locking its row until commit."""
    row = await conn.fetchrow(
        f"""insert into stock as s (sku, on_hand) values ($1, $2)
            on conflict (sku) do update
               set on_hand = s.on_hand + excluded.on_hand, updated_at = clock_timestamp()
            returning {_STOCK}""",
        sku,
        delta,
    )
    return Stock(**row)


async def set_on_hand(conn: asyncpg.Connection, sku: str, on_hand: int) -> Stock:
    row = await conn.fetchrow(
        f"""update stock set on_hand = $2, updated_at = clock_timestamp()
            where sku = $1 returning {_STOCK}""",
        sku,
        on_hand,
    )
    return Stock(**row)


async def refresh_inbound_quantity(conn: asyncpg.Connection, sku: str) -> Stock:
    """Recomputes the SKU's inbound_quantity from its open inbound."""
    row = await conn.fetchrow(
        f"""update stock set inbound_quantity = (
                    select coalesce(sum(open_quantity), 0) from inbound where sku = $1),
                updated_at = clock_timestamp()
            where sku = $1 returning {_STOCK}""",
        sku,
    )
    return Stock(**row)


async def list_stock(conn: Executor, prefix: str, after: str | None, limit: int) -> list[Stock]:
    rows = await conn.fetch(
        f"""select {_STOCK} from stock
            where starts_with(sku, $1) and ($2::text is null or sku > $2)
            order by sku limit $3""",
        prefix,
        after,
        limit,
    )
    return [Stock(**r) for r in rows]


async def notify_stock_changed(
    conn: asyncpg.Connection,
    stock: Stock,
    kind: StockChangeKind,
    *,
    movement_id: int = 0,
    inbound_id: str = "",
) -> None:
    """Tells every replica's WatchStock feed about the change, when (and only if) it commits."""
    payload = {
        "sku": stock.sku,
        "on_hand": stock.on_hand,
        "inbound_quantity": stock.inbound_quantity,
        "updated_at": stock.updated_at.isoformat(),
        "kind": kind.value,
        "movement_id": movement_id,
        "inbound_id": inbound_id,
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
) -> Movement:
    row = await conn.fetchrow(
        f"""insert into movement (sku, kind, key, quantity, on_hand_after, inbound_id, reason,
                                  note, order_id, line_id, shortfall, event_id)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning {_MOVEMENT}""",
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
    )
    return _movement(row)


async def list_movements(
    conn: Executor, sku: str, before_id: int | None, limit: int
) -> list[Movement]:
    """Newest first; `sku` empty means every SKU."""
    rows = await conn.fetch(
        f"""select {_MOVEMENT} from movement
            where ($1 = '' or sku = $1) and ($2::bigint is null or id < $2)
            order by id desc limit $3""",
        sku,
        before_id,
        limit,
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
    conn: asyncpg.Connection, inbound_id: str, sku: str, quantity: int, expected_at: datetime
) -> Inbound:
    row = await conn.fetchrow(
        f"""insert into inbound (inbound_id, sku, quantity, expected_at)
            values ($1, $2, $3, $4) returning {_INBOUND}""",
        inbound_id,
        sku,
        quantity,
        expected_at,
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
) -> list[Inbound]:
    """By expected_at then inbound_id; `sku` empty means every SKU."""
    after_at, after_id = after if after else (None, None)
    rows = await conn.fetch(
        f"""select {_INBOUND} from inbound
            where ($1 = '' or sku = $1) and (not $2 or open_quantity > 0)
              and ($3::timestamptz is null or (expected_at, inbound_id) > ($3, $4::text))
            order by expected_at, inbound_id limit $5""",
        sku,
        open_only,
        after_at,
        after_id,
        limit,
    )
    return [Inbound(**r) for r in rows]

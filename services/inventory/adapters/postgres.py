"""The inventory database: stock rows and the movement ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class StockRow:
    sku: str
    on_hand: int
    inbound_quantity: int
    updated_at: datetime


@dataclass(frozen=True)
class MovementRow:
    id: int
    sku: str
    kind: str
    key: str
    quantity: int
    on_hand_after: int
    inbound_id: str
    reason: str
    note: str
    created_at: datetime


_STOCK = "sku, on_hand, inbound_quantity, updated_at"
_MOVEMENT = "id, sku, kind, key, quantity, on_hand_after, inbound_id, reason, note, created_at"


async def get_stock(conn: asyncpg.Connection | asyncpg.Pool, sku: str) -> StockRow | None:
    row = await conn.fetchrow(f"select {_STOCK} from stock where sku = $1", sku)
    return StockRow(**row) if row else None


async def add_on_hand(conn: asyncpg.Connection, sku: str, delta: int) -> StockRow:
    """Adds `delta` to on hand (creating the SKU), locking its row until commit."""
    row = await conn.fetchrow(
        f"""insert into stock as s (sku, on_hand) values ($1, $2)
            on conflict (sku) do update
               set on_hand = s.on_hand + excluded.on_hand, updated_at = clock_timestamp()
            returning {_STOCK}""",
        sku,
        delta,
    )
    return StockRow(**row)


async def find_movement(conn: asyncpg.Connection, kind: str, key: str) -> MovementRow | None:
    row = await conn.fetchrow(
        f"select {_MOVEMENT} from movement where kind = $1 and key = $2", kind, key
    )
    return MovementRow(**row) if row else None


async def insert_movement(
    conn: asyncpg.Connection,
    *,
    sku: str,
    kind: str,
    key: str,
    quantity: int,
    on_hand_after: int,
    inbound_id: str = "",
    reason: str = "",
    note: str = "",
) -> MovementRow:
    row = await conn.fetchrow(
        f"""insert into movement (sku, kind, key, quantity, on_hand_after, inbound_id, reason, note)
            values ($1, $2, $3, $4, $5, $6, $7, $8) returning {_MOVEMENT}""",
        sku,
        kind,
        key,
        quantity,
        on_hand_after,
        inbound_id,
        reason,
        note,
    )
    return MovementRow(**row)

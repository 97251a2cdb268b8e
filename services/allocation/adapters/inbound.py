"""Inbound as the allocation service knows it: the last state of each inbound, from
inbound.updated (the newest version wins); the open ones feed the ETA walk."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from services.allocation.adapters.rows import Executor
from services.allocation.domain.model import Inbound


async def upsert_inbound(
    conn: asyncpg.Connection,
    *,
    inbound_id: str,
    sku: str,
    open_quantity: int,
    expected_at: datetime,
    cancelled: bool,
    version: int,
    location_id: str,
) -> bool:
    """Stores an inbound's state unless a newer version is already stored."""
    applied = await conn.fetchval(
        """insert into inbound as i (inbound_id, sku, open_quantity, expected_at, cancelled,
                                     version, location_id)
           values ($1, $2, $3, $4, $5, $6, $7)
           on conflict (inbound_id) do update
               set sku = excluded.sku, open_quantity = excluded.open_quantity,
                   expected_at = excluded.expected_at, cancelled = excluded.cancelled,
                   version = excluded.version, location_id = excluded.location_id
               where i.version < excluded.version
           returning true""",
        inbound_id,
        sku,
        open_quantity,
        expected_at,
        cancelled,
        version,
        location_id,
    )
    return bool(applied)


async def open_inbound(conn: Executor, sku: str) -> list[Inbound]:
    """The SKU's open inbound at active locations, earliest first (an inactive location
    promises nothing new)."""
    rows = await conn.fetch(
        """select i.inbound_id, i.open_quantity, i.expected_at, i.location_id from inbound i
           join location l using (location_id)
           where i.sku = $1 and i.open_quantity > 0 and not i.cancelled and l.active
           order by i.expected_at, i.inbound_id""",
        sku,
    )
    return [Inbound(**r) for r in rows]

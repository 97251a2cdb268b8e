"""The order stock events are applied in, per SKU (docs/spec.md §4): the SKU's stock
version last applied, and the events held because they arrived ahead of a missing one. The
caller holds the SKU's row lock (skus.lock_sku)."""

from __future__ import annotations

import asyncpg


async def applied_version(conn: asyncpg.Connection, sku: str) -> int:
    version: int = await conn.fetchval("select stock_version from sku where sku = $1", sku)
    return version


async def set_applied_version(conn: asyncpg.Connection, sku: str, version: int) -> None:
    await conn.execute("update sku set stock_version = $2 where sku = $1", sku, version)


async def hold(
    conn: asyncpg.Connection, sku: str, version: int, routing_key: str, body: bytes
) -> None:
    """Keeps an event that came before its turn. A second copy of one version (it cannot
    be another event: versions are unique per SKU) is dropped."""
    await conn.execute(
        """insert into held_stock_event (sku, stock_version, routing_key, body)
           values ($1, $2, $3, $4) on conflict do nothing""",
        sku,
        version,
        routing_key,
        body,
    )


async def take_held(conn: asyncpg.Connection, sku: str, version: int) -> tuple[str, bytes] | None:
    """The held event of that version, removed: (routing key, body), or None."""
    row = await conn.fetchrow(
        """delete from held_stock_event where sku = $1 and stock_version = $2
           returning routing_key, body""",
        sku,
        version,
    )
    return (row["routing_key"], row["body"]) if row else None

"""The order stock events are applied in, per SKU (docs/spec.md §4): the SKU's stock
version last applied, and the events held because they arrived ahead of a missing one. The
caller holds the SKU's row lock (skus.lock_sku, or lock_applied_version)."""

from __future__ import annotations

import asyncpg


async def lock_applied_version(conn: asyncpg.Connection, sku: str) -> int:
    """Creates the SKU if new, locks its row until the transaction ends (as skus.lock_sku)
    and returns the stock version last applied: one round trip."""
    version: int = await conn.fetchval(
        """insert into sku as s (sku) values ($1)
           on conflict (sku) do update set updated_at = clock_timestamp()
           returning stock_version""",
        sku,
    )
    return version


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


async def take_next_or_settle(
    conn: asyncpg.Connection, sku: str, applied: int
) -> tuple[str, bytes] | None:
    """The held event of version `applied` + 1, removed: (routing key, body); or, when
    none is held, None with `applied` recorded as the SKU's version last applied. One round
    trip for the common case of nothing held."""
    row = await conn.fetchrow(
        """with taken as (
               delete from held_stock_event where sku = $1 and stock_version = $2 + 1
               returning routing_key, body),
           settled as (
               update sku set stock_version = $2
               where sku = $1 and not exists (select 1 from taken))
           select routing_key, body from taken""",
        sku,
        applied,
    )
    return (row["routing_key"], row["body"]) if row else None

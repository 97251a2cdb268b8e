"""A peer measured beside us: the backorder fill of Spree and Solidus, on the same Postgres in
the same run, so "faster than what users would otherwise pick" is a ratio, not a claim.

Their algorithm (Spree::StockItem#process_backorders, called when count_on_hand rises): take
the stock item's lock, raise its count, load the oldest backordered inventory units (one per
unit of the order), and fill them one at a time — each unit's row locked, its state moved to
`on_hand`, a record of the change written — then lower the count by what was filled. One
transaction; three round trips per unit. Their tables here are lean (a key and the queue
index): the peer runs its SQL from asyncpg without an ORM, so the figure flatters it, which
keeps our ratio honest."""

from __future__ import annotations

import time

import asyncpg

SCHEMA = """
create table if not exists peer_stock_item (
    variant       text primary key,
    count_on_hand integer not null default 0
);
create table if not exists peer_inventory_unit (
    id         bigserial primary key,
    variant    text not null,
    state      text not null,
    created_at timestamptz not null default clock_timestamp(),
    updated_at timestamptz not null default clock_timestamp()
);
create index if not exists peer_backordered
    on peer_inventory_unit (variant, created_at) where state = 'backordered';
create table if not exists peer_state_change (
    id             bigserial primary key,
    unit_id        bigint not null,
    previous_state text not null,
    next_state     text not null,
    created_at     timestamptz not null default clock_timestamp()
);
"""


async def place_backorders(pool: asyncpg.Pool, variant: str, units: int) -> None:
    """`units` backordered inventory units of `variant` (one unit each, as theirs are)."""
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
        await conn.execute(
            "insert into peer_stock_item (variant) values ($1) on conflict do nothing", variant
        )
        await conn.execute(
            """insert into peer_inventory_unit (variant, state, created_at)
               select $1, 'backordered', clock_timestamp() from generate_series(1, $2)""",
            variant,
            units,
        )
        await conn.execute("analyze peer_inventory_unit")


async def process_backorders(pool: asyncpg.Pool, variant: str, received: int) -> tuple[int, float]:
    """A receipt of `received` units, their way: (units filled, seconds)."""
    async with pool.acquire() as conn:
        start = time.perf_counter()
        async with conn.transaction():
            await conn.fetchval(
                "select count_on_hand from peer_stock_item where variant = $1 for update", variant
            )
            await conn.execute(
                "update peer_stock_item set count_on_hand = count_on_hand + $2 where variant = $1",
                variant,
                received,
            )
            units = await conn.fetch(
                """select id from peer_inventory_unit where variant = $1 and state = 'backordered'
                   order by created_at limit $2""",
                variant,
                received,
            )
            for unit in units:
                await conn.fetchrow(
                    "select id, state from peer_inventory_unit where id = $1 for update", unit["id"]
                )
                await conn.execute(
                    """update peer_inventory_unit set state = 'on_hand',
                              updated_at = clock_timestamp() where id = $1""",
                    unit["id"],
                )
                await conn.execute(
                    """insert into peer_state_change (unit_id, previous_state, next_state)
                       values ($1, 'backordered', 'on_hand')""",
                    unit["id"],
                )
            await conn.execute(
                "update peer_stock_item set count_on_hand = count_on_hand - $2 where variant = $1",
                variant,
                len(units),
            )
        return len(units), time.perf_counter() - start

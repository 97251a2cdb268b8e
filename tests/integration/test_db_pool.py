"""The services' pool (services.common.db.Pool) on a real server: a statement run on the pool
itself whose connection is lost answers as the database being unreachable, and the pool's
other connections are renewed, so the next calls reach the server as it is now (after a
failover: the new primary) instead of each failing once on a dead connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from services.common import db


async def _backends(pool: asyncpg.Pool) -> set[int]:
    async with pool.acquire() as a, pool.acquire() as b:
        return {
            await a.fetchval("select pg_backend_pid()"),
            await b.fetchval("select pg_backend_pid()"),
        }


async def test_a_lost_connection_renews_the_whole_pool(allocation_db: str) -> None:
    pool = await db.create_pool(allocation_db, min_size=2, max_size=2)
    admin = await asyncpg.connect(allocation_db)
    try:
        before = await _backends(pool)
        # A read on the pool (as GetLine's), whose backend the server ends mid-statement.
        read = asyncio.create_task(pool.fetchval("select pg_sleep(30) -- lost"))
        while not await admin.fetchval(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where query = 'select pg_sleep(30) -- lost'"
        ):
            await asyncio.sleep(0.05)
        with pytest.raises(db.DATABASE_UNREACHABLE):
            await read
        # Both connections are new, the one never used since included.
        after = await _backends(pool)
        assert not after & before
        assert await pool.fetchval("select 1") == 1
    finally:
        await admin.close()
        await pool.close()

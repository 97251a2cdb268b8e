"""Databases as an older release left them, for tests of a migration's upgrade path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from services.common import db as common_db
from tests.support.servers import database_url, drop_database, unique


@asynccontextmanager
async def database_before(
    package: str, version: int, prefix: str
) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A throwaway database (dropped afterwards) with `package`'s schema as it was before
    migration `version`, its URL and a connection to it: the test fills it as an older
    release would have, runs common_db.migrate(url, package), then looks."""
    name = unique(prefix)
    url = database_url(name)
    await common_db.ensure_database(url)
    try:
        conn = await asyncpg.connect(url)
        try:
            await apply_migrations_before(conn, package, version)
            yield url, conn
        finally:
            await conn.close()
    finally:
        await drop_database(name)


async def apply_migrations_before(conn: asyncpg.Connection, package: str, version: int) -> None:
    """The schema as it was before migration `version`: `package`'s numbered files before it,
    recorded as migrate() records them (repeatable files are not applied; migrate() applies
    them after the rest)."""
    await conn.execute(
        """create table schema_migrations (version int primary key, name text not null,
               applied_at timestamptz not null default now())"""
    )
    for migration in common_db.migration_files(package):
        if migration.version is not None and migration.version < version:
            await conn.execute(migration.sql)
            await conn.execute(
                "insert into schema_migrations (version, name) values ($1, $2)",
                migration.version,
                migration.name,
            )

"""Databases as an older release left them, for tests of a migration's upgrade path."""

from __future__ import annotations

import asyncpg

from services.common import db as common_db


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

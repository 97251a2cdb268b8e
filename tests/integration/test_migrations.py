"""The migration runner on a real Postgres: numbered files are history (checksummed, a changed
one stops `migrate`), repeatable files (functions, triggers) are applied again when changed."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from services.common import db
from tests.support.processes import BIN
from tests.support.servers import database_url, drop_database, unique


@pytest.fixture
def package(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A throwaway migrations package on sys.path: (its import name, its folder)."""
    name = unique("bo_test_migrations")
    folder = tmp_path / name
    (folder / "repeatable").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "0001_init.sql").write_text("create table thing (id int primary key);\n")
    (folder / "repeatable" / "answer.sql").write_text(
        "create or replace function answer() returns int language sql as 'select 1';\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield name, folder
    sys.path.remove(str(tmp_path))
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]


@pytest.fixture
async def url() -> AsyncIterator[str]:
    name = unique("bo_test_migrate")
    yield database_url(name)
    await drop_database(name)


async def test_numbered_then_repeatable_files_are_applied_once(
    package: tuple[str, Path], url: str
) -> None:
    name, _ = package
    assert await db.migrate(url, name) == ["0001_init.sql", "repeatable/answer.sql"]
    assert await db.migrate(url, name) == []
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select answer()") == 1
    finally:
        await conn.close()


async def test_a_changed_repeatable_file_is_applied_again(
    package: tuple[str, Path], url: str
) -> None:
    name, folder = package
    await db.migrate(url, name)
    (folder / "repeatable" / "answer.sql").write_text(
        "create or replace function answer() returns int language sql as 'select 42';\n"
    )
    assert await db.migrate(url, name) == ["repeatable/answer.sql"]
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select answer()") == 42
    finally:
        await conn.close()


async def test_a_changed_applied_file_stops_migrate_and_applies_nothing(
    package: tuple[str, Path], url: str
) -> None:
    name, folder = package
    await db.migrate(url, name)
    (folder / "0001_init.sql").write_text("create table thing (id bigint primary key);\n")
    (folder / "0002_more.sql").write_text("create table more (id int);\n")
    with pytest.raises(db.MigrationChanged, match=r"0001_init\.sql"):
        await db.migrate(url, name)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("select to_regclass('more')") is None
    finally:
        await conn.close()


async def test_a_database_migrated_before_checksums_is_trusted_once(
    package: tuple[str, Path], url: str
) -> None:
    """Releases before checksums recorded none: the files then on disk are recorded, and a
    later change of them is caught."""
    name, folder = package
    await db.migrate(url, name)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("update schema_migrations set checksum = null")
        assert await db.migrate(url, name) == []
        assert (
            await conn.fetchval("select count(*) from schema_migrations where checksum is null")
            == 0
        )
    finally:
        await conn.close()
    (folder / "0001_init.sql").write_text("-- edited\ncreate table thing (id int primary key);\n")
    with pytest.raises(db.MigrationChanged):
        await db.migrate(url, name)


async def test_migrate_command_names_a_tampered_migration_and_exits_non_zero(url: str) -> None:
    """As an operator meets it: `backorder-allocation migrate` on a database whose applied
    0001 differs from the file (here: what was applied is recorded differently)."""
    await db.migrate(url, "services.allocation.migrations")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("update schema_migrations set checksum = 'feed' where version = 1")
    finally:
        await conn.close()
    process = await asyncio.create_subprocess_exec(
        str(BIN / "backorder-allocation"),
        "migrate",
        env={**os.environ, "ALLOCATION_DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr
    assert "0001_init.sql" in lines[0] and "changed after it was applied" in lines[0]

"""Fixtures on the real servers: each session gets its own databases and RabbitMQ vhost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from services.common import db
from tests.support.servers import Vhost, database_url, drop_database, unique


@pytest.fixture(scope="session")
def vhost() -> Iterator[Vhost]:
    v = Vhost()
    v.create()
    yield v
    v.delete()


@pytest.fixture(scope="module")
def own_vhost() -> Iterator[Vhost]:
    """A vhost for one module alone: for tests whose contract queues must meet no other
    module's consumers (the session's service processes consume in `vhost`)."""
    v = Vhost()
    v.create()
    yield v
    v.delete()


async def _migrated(package: str, prefix: str) -> AsyncIterator[str]:
    name = unique(prefix)
    url = database_url(name)
    await db.migrate(url, package)
    yield url
    await drop_database(name)


@pytest.fixture(scope="session")
async def inventory_db() -> AsyncIterator[str]:
    """URL of a migrated, throwaway inventory database."""
    async for url in _migrated("services.inventory.migrations", "bo_test_inv"):
        yield url


@pytest.fixture(scope="session")
async def allocation_db() -> AsyncIterator[str]:
    """URL of a migrated, throwaway allocation database."""
    async for url in _migrated("services.allocation.migrations", "bo_test_alloc"):
        yield url


@pytest.fixture(scope="session")
async def inventory_pool(inventory_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(inventory_db)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def allocation_pool(allocation_db: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(allocation_db)
    yield pool
    await pool.close()

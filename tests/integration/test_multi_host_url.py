"""Database URLs in libpq's multi-host form on the real Postgres (docs/spec.md §5): a host
that refuses is passed over, migrations and the pool reach the writable one, and a URL with
no host that fits answers UNAVAILABLE, not INTERNAL. (The failover itself, a primary killed
under load: tests/cluster/test_postgres_failover.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest

from services.common import db
from services.common.grpc_errors import status_for
from services.common.settings import ServiceSettings
from tests.support.processes import free_port
from tests.support.servers import PG_SERVER, drop_database, unique


@pytest.fixture
async def name() -> AsyncIterator[str]:
    database = unique("bo_test_multi_host")
    yield database
    await drop_database(database)


def _multi_host(database: str, query: str = "") -> str:
    """A URL listing first a port nothing listens on, then the test server."""
    server = urlsplit(PG_SERVER)
    dead = f"127.0.0.1:{free_port()}"
    user = server.netloc.rpartition("@")[0]
    url = f"postgresql://{user}@{dead},{server.hostname}:{server.port or 5432}/{database}"
    return f"{url}?{query}" if query else url


async def test_a_refusing_host_is_passed_over_for_the_writable_one(name: str) -> None:
    # As the services take it: settings add target_session_attrs=read-write.
    url = ServiceSettings.from_env("inventory", {"INVENTORY_DATABASE_URL": _multi_host(name)})
    assert url.database_url.endswith("?target_session_attrs=read-write")
    applied = await db.migrate(url.database_url, "services.inventory.migrations")
    assert applied, "the migrations ran on the reachable primary"
    pool = await db.create_pool(url.database_url, max_size=2)
    try:

        async def write(conn: asyncpg.Connection) -> int:
            return int(await conn.fetchval("select count(*) from schema_migrations"))

        assert await db.run_in_transaction(pool, write) > 0
    finally:
        await pool.close()


async def test_no_host_that_fits_is_unavailable_not_internal() -> None:
    # The test server is a primary: a URL asking for a standby finds no host that fits, as a
    # read-write URL finds none while a failover has not promoted the standby yet.
    url = f"{PG_SERVER}/postgres?target_session_attrs=standby"
    with pytest.raises(asyncpg.exceptions.TargetServerAttributeNotMatched) as caught:
        await db.create_pool(url, max_size=1)
    assert isinstance(caught.value, db.DATABASE_UNREACHABLE)
    status = status_for(caught.value)
    assert status is not None and status.code == grpc.StatusCode.UNAVAILABLE, caught.value

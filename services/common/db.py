"""Postgres at the edge: creating the service's database, applying its migrations, the pool."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.common import paging

log = logging.getLogger(__name__)
T = TypeVar("T")

# The database did not answer (down, restarting, network cut) rather than refused the work:
# the same work can succeed once it is back.
DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # Too many connections, out of memory or disk: the server's trouble, not the request's.
    asyncpg.exceptions.InsufficientResourcesError,
)

# Postgres refused this attempt, but the same work can succeed when simply run again: it
# lost a race with another transaction (serialization failure, deadlock), waited too long
# for a lock, or was cancelled (statement_timeout, an operator).
RETRYABLE: tuple[type[BaseException], ...] = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.LockNotAvailableError,
    asyncpg.QueryCanceledError,
)

# Any fixed number works; it only keeps two processes from migrating one database at once.
MIGRATION_LOCK_KEY = 0x6261636B6F72


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def maintenance_url(url: str) -> str:
    """The same server, database `postgres`: where CREATE DATABASE is run."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


async def ensure_database(url: str) -> bool:
    """Creates the URL's database if it is missing. Returns whether it was created."""
    name = database_name(url)
    conn = await asyncpg.connect(maintenance_url(url))
    try:
        exists = await conn.fetchval("select 1 from pg_database where datname = $1", name)
        if exists:
            return False
        try:
            # Identifiers cannot be parameters; quote_ident makes the name safe.
            quoted = await conn.fetchval("select quote_ident($1)", name)
            await conn.execute(f"create database {quoted}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another process created it first (a concurrent CREATE DATABASE loses on the
            # catalog's unique index rather than with DuplicateDatabaseError).
            return False
        log.info("created database", extra={"database": name})
        return True
    finally:
        await conn.close()


def migration_files(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of the numbered `NNNN_name.sql` files in `package`, in order."""
    found = []
    for entry in resources.files(package).iterdir():
        if entry.name.endswith(".sql") and entry.name[:4].isdigit():
            found.append((int(entry.name[:4]), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(url: str, package: str) -> list[str]:
    """Creates the database if needed and applies the migrations not yet applied."""
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            """create table if not exists schema_migrations (
                   version int primary key,
                   name text not null,
                   applied_at timestamptz not null default now())"""
        )
        done = {r["version"] for r in await conn.fetch("select version from schema_migrations")}
        for version, name, sql in migration_files(package):
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "insert into schema_migrations (version, name) values ($1, $2)", version, name
                )
            applied_now.append(name)
            log.info("applied migration", extra={"migration": name})
        await paging.ensure_key(conn)
        await conn.execute("select pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    # A pool smaller than min_size is valid (e.g. <SERVICE>_DB_POOL_SIZE=1).
    min_size = min(min_size, max_size)
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        reset=_no_session_state,
    )
    assert pool is not None
    return pool


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default sends `pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL` on every release: a round trip per call, a third of
    Allocate's. Pooled connections hold no session state to reset: nothing SETs, LISTENs
    or takes session advisory locks on them (the relay, feeds and migrations use their own
    connections), and cursors end with their transaction. (An open transaction is still
    rolled back by asyncpg before this runs.)"""


async def run_in_transaction(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], *, attempts: int = 3
) -> T:
    """Runs `work` in one transaction. A unique violation means a concurrent call with the
    same idempotency key won the race: retrying lets `work` find what the winner wrote."""
    for attempt in range(1, attempts + 1):
        try:
            async with pool.acquire() as conn, conn.transaction():
                return await work(conn)
        except asyncpg.UniqueViolationError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


async def run_in_transaction_when_reachable(
    pool: asyncpg.Pool,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    give_up_after: float = 600.0,
    max_pause: float = 5.0,
) -> T:
    """`run_in_transaction` for consumed events: while the database is unreachable, waits
    and tries again (capped backoff) instead of failing. A failed event would go back to
    its queue, and each return counts toward the queue's delivery limit: an outage longer
    than a few retries would dead-letter valid events. Gives up after `give_up_after`
    seconds (then the consumer's own retry and dead-lettering take over)."""
    deadline = time.monotonic() + give_up_after
    pause = 0.1
    while True:
        try:
            return await run_in_transaction(pool, work)
        except DATABASE_UNREACHABLE as exc:
            if time.monotonic() + pause > deadline:
                raise
            log.warning(
                "database unreachable; the event waits",
                extra={"error": str(exc) or type(exc).__name__, "retry_in": pause},
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, max_pause)

"""Postgres at the edge: creating the service's database, applying its migrations, the pool."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.common import paging

log = logging.getLogger(__name__)
T = TypeVar("T")

# The server reached is not (or no longer) the primary: a standby that a multi-host URL's
# target_session_attrs=read-write turned down (none of the hosts is primary, as during a
# failover), or one that refused a write (a primary demoted under an open connection).
NOT_PRIMARY: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
)


class BrokenConnection(ConnectionError):
    """A pooled connection asyncpg can no longer use (its protocol state is broken): it was
    dropped, and the work can be run again on another."""


# The database did not answer (down, restarting, failing over, network cut) rather than
# refused the work: the same work can succeed once it is back (or a standby took over).
DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    # "terminating connection because of crash of another server process"
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    # Too many connections, out of memory or disk: the server's trouble, not the request's.
    asyncpg.exceptions.InsufficientResourcesError,
    *NOT_PRIMARY,
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


class MigrationChanged(RuntimeError):
    """An applied migration file is not what was applied: history was rewritten."""


@dataclass(frozen=True)
class Migration:
    """One SQL file of a service's `migrations` package."""

    name: str
    sql: str
    version: int | None = None  # None: a repeatable file (functions, triggers)

    @property
    def checksum(self) -> str:
        # Line endings are not content: a checkout with CRLF is the same migration.
        return hashlib.sha256(self.sql.replace("\r\n", "\n").encode()).hexdigest()


REPEATABLE_FOLDER = "repeatable"


def migration_files(package: str) -> list[Migration]:
    """The numbered `NNNN_name.sql` files in `package`, in version order. They are history:
    once applied anywhere, never edited (a change is a new file)."""
    found = [
        Migration(entry.name, entry.read_text(encoding="utf-8"), int(entry.name[:4]))
        for entry in resources.files(package).iterdir()
        if entry.name.endswith(".sql") and entry.name[:4].isdigit()
    ]
    return sorted(found, key=lambda m: m.version or 0)


def repeatable_files(package: str) -> list[Migration]:
    """The files in `package`/repeatable/, in name order: functions and triggers, each file
    written to run again over its own earlier version (`create or replace`)."""
    folder = resources.files(package) / REPEATABLE_FOLDER
    if not folder.is_dir():
        return []
    found = [
        Migration(f"{REPEATABLE_FOLDER}/{entry.name}", entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda m: m.name)


async def migrate(url: str, package: str) -> list[str]:
    """Creates the database if needed, applies the numbered migrations not yet applied, then
    every repeatable file that is new or changed since it was last applied. Returns the names
    applied now. Raises MigrationChanged, applying nothing, when an applied numbered file no
    longer matches the checksum recorded when it was applied."""
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    applied_now: list[str] = []
    try:
        await conn.execute("select pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            """create table if not exists schema_migrations (
                   version int primary key,
                   name text not null,
                   applied_at timestamptz not null default now());
               -- Releases before checksums recorded none: the file is trusted once, below.
               alter table schema_migrations add column if not exists checksum text;
               create table if not exists schema_repeatables (
                   name text primary key,
                   checksum text not null,
                   applied_at timestamptz not null default now())"""
        )
        versioned = migration_files(package)
        applied = {
            r["version"]: r
            for r in await conn.fetch("select version, name, checksum from schema_migrations")
        }
        _check_unchanged(versioned, applied, database_name(url))
        for migration in versioned:
            row = applied.get(migration.version)
            if row is not None:
                if row["checksum"] is None:
                    await conn.execute(
                        "update schema_migrations set checksum = $2 where version = $1",
                        migration.version,
                        migration.checksum,
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    """insert into schema_migrations (version, name, checksum)
                       values ($1, $2, $3)""",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.name)
            log.info("applied migration", extra={"migration": migration.name})
        # Re-applied only when changed: `create or replace trigger` locks its table, which
        # every start of every replica would otherwise do.
        current = {
            r["name"]: r["checksum"]
            for r in await conn.fetch("select name, checksum from schema_repeatables")
        }
        for migration in repeatable_files(package):
            if current.get(migration.name) == migration.checksum:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    """insert into schema_repeatables (name, checksum) values ($1, $2)
                       on conflict (name) do update
                       set checksum = excluded.checksum, applied_at = now()""",
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(migration.name)
            log.info("applied repeatable migration", extra={"migration": migration.name})
        await paging.ensure_key(conn)
        await conn.execute("select pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
    return applied_now


def _check_unchanged(
    versioned: list[Migration], applied: Mapping[int | None, Mapping[str, Any]], database: str
) -> None:
    for migration in versioned:
        row = applied.get(migration.version)
        if row is None or row["checksum"] in (None, migration.checksum):
            continue
        raise MigrationChanged(
            f"migration {migration.name} was changed after it was applied to database "
            f"{database!r} (applied sha256 {row['checksum'][:12]}, file {migration.checksum[:12]}):"
            " applied migrations are history; restore the file and put the change in a new one"
        )


class Pool(asyncpg.Pool):
    """The services' pool: a statement run on the pool itself (`pool.fetchrow(...)`, as the
    read RPCs do) gets the same handling of a connection lost or broken by a failover as
    work on a `connection` (UNAVAILABLE, never INTERNAL), not asyncpg's bare acquire.
    `options` are asyncpg's own (timeout, column, record_class)."""

    async def execute(self, query: str, *args: Any, **options: Any) -> str:
        async with connection(self) as conn:
            return await conn.execute(query, *args, **options)

    async def executemany(self, command: str, args: Any, **options: Any) -> None:
        async with connection(self) as conn:
            await conn.executemany(command, args, **options)

    async def fetch(self, query: str, *args: Any, **options: Any) -> list[Any]:
        async with connection(self) as conn:
            return await conn.fetch(query, *args, **options)

    async def fetchrow(self, query: str, *args: Any, **options: Any) -> Any:
        async with connection(self) as conn:
            return await conn.fetchrow(query, *args, **options)

    async def fetchval(self, query: str, *args: Any, **options: Any) -> Any:
        async with connection(self) as conn:
            return await conn.fetchval(query, *args, **options)


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> Pool:
    # A pool smaller than min_size is valid (e.g. <SERVICE>_DB_POOL_SIZE=1).
    min_size = min(min_size, max_size)
    # asyncpg.create_pool's own defaults, spelled out: it builds an asyncpg.Pool only.
    pool = Pool(
        url,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=60,
        reset=_no_session_state,
    )
    await pool
    return pool


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """The pool's reset on release. asyncpg's default sends `pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL` on every release: a round trip per call, a third of
    Allocate's. Pooled connections hold no session state to reset: nothing SETs, LISTENs
    or takes session advisory locks on them (the relay, feeds and migrations use their own
    connections), and cursors end with their transaction. (An open transaction is still
    rolled back by asyncpg before this runs.)"""


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection of `pool`, with its handling of a connection lost or broken by a
    failover: either is answered as the database being unreachable (UNAVAILABLE, to be
    retried)."""
    try:
        async with pool.acquire() as conn:
            try:
                yield conn
            except asyncpg.exceptions.InternalClientError as exc:
                if isinstance(exc, NOT_PRIMARY):
                    raise
                # asyncpg's own state of this connection is broken: "cannot switch to
                # state 15; another operation (2) is in progress" on BEGIN, when the
                # server died while an earlier call's error was still being read (seen
                # in the failover test; the pool's reset is a no-op, so nothing used
                # the connection on its release to notice). It goes; the call is
                # answered as a lost connection (UNAVAILABLE), to be retried.
                log.warning(
                    "database connection in a broken state; dropped",
                    extra={"error": str(exc) or type(exc).__name__},
                )
                conn.terminate()
                raise BrokenConnection(str(exc)) from exc
    except DATABASE_UNREACHABLE:
        # The pool's other connections are most likely to the same server (a primary
        # that died or was demoted): they are closed as they come back, so the next
        # calls open new ones (to the new primary, with a multi-host URL) instead of
        # each failing once on a dead one. (Only bumps the pool's generation.)
        await pool.expire_connections()
        raise


async def run_in_transaction(
    pool: asyncpg.Pool, work: Callable[[asyncpg.Connection], Awaitable[T]], *, attempts: int = 3
) -> T:
    """Runs `work` in one transaction (on a `connection`). A unique violation means a
    concurrent call with the same idempotency key won the race: retrying lets `work` find
    what the winner wrote."""
    for attempt in range(1, attempts + 1):
        try:
            async with connection(pool) as conn, conn.transaction():
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

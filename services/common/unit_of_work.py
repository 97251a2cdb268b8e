"""The service layer both services share: how a use case runs.

A use case runs in one transaction through `transaction` (or `consume_once` for an event
taken from the broker). It is handed a `UnitOfWork`: the connection, the events it emits
(written to the outbox in the same transaction: the one route into the outbox) and the work
to do once the transaction committed (metrics, log lines about what happened).
`look_up_or_lock` is the idempotency pattern of every keyed command.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import TypeVar

import asyncpg

from services.common import tracing
from services.common.db import run_in_transaction, run_in_transaction_when_reachable
from services.common.errors import InvalidArgument
from services.common.outbox import OutgoingEvent, add_events

log = logging.getLogger(__name__)

T = TypeVar("T")

# Runs of a use case when Postgres rolls it back to break a deadlock.
DEADLOCK_ATTEMPTS = 5
L = TypeVar("L")


class UnitOfWork:
    """One transaction of a use case: its connection, its outgoing events and its
    after-commit work. Events go to the outbox in emission order."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._events: list[OutgoingEvent] = []
        self._after_commit: list[Callable[[], None]] = []
        self._follow_ups: dict[str, Callable[[asyncpg.Pool], Awaitable[None]]] = {}

    def emit(self, *events: OutgoingEvent) -> None:
        self.emit_all(events)

    def emit_all(self, events: Iterable[OutgoingEvent]) -> None:
        # With tracing on, each event keeps the trace it was emitted in (the RPC's, the
        # consumed event's, the fill's): its publish and whatever consumes it continue it.
        trace_context = tracing.current_context()
        if trace_context is None:
            self._events.extend(events)
        else:
            self._events.extend(replace(e, trace_context=trace_context) for e in events)

    def mark(self) -> tuple[int, int, int]:
        """Where the unit of work stands, for `undo_since` (at a savepoint)."""
        return len(self._events), len(self._after_commit), len(self._follow_ups)

    def undo_since(self, mark: tuple[int, int, int]) -> None:
        """Forgets the events, after-commit work and follow-ups added since `mark`: the
        savepoint taken there was rolled back. (Events flushed since were written in it, so
        they went with it; flush before taking the mark.)"""
        events, after, follow_ups = mark
        del self._events[events:]
        del self._after_commit[after:]
        for key in list(self._follow_ups)[follow_ups:]:
            del self._follow_ups[key]

    def after_commit(self, action: Callable[[], None]) -> None:
        """Runs `action` once the transaction committed (never when it rolled back)."""
        self._after_commit.append(action)

    def committed(self) -> None:
        """Runs the after-commit work: called once the transaction committed."""
        for action in self._after_commit:
            action()

    def follow_up(self, key: str, action: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
        """Runs `action` once the transaction committed, in transactions of its own (one per
        `key`: a second with the same key is dropped). A follow-up that fails is logged; the
        committed work stands."""
        self._follow_ups.setdefault(key, action)

    async def run_follow_ups(self, pool: asyncpg.Pool) -> None:
        for key, action in self._follow_ups.items():
            try:
                await action(pool)
            except Exception:
                log.exception("follow-up failed", extra={"follow_up": key})

    async def flush(self) -> None:
        """Writes the events emitted so far to the outbox now (in this transaction), so a
        long use case (a fill of any length) keeps no more than a chunk's events in memory."""
        events, self._events = self._events, []
        await add_events(self.conn, events)


async def transaction(
    pool: asyncpg.Pool,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    wait_out_outage: bool = False,
) -> T:
    """Runs `work` in one transaction (retried on a lost idempotency race: a unique
    violation; and on a deadlock Postgres broke), writes its events to the outbox in it,
    then runs its after-commit work and its follow-ups.
    `wait_out_outage`: for a consumed event, waits while the database is unreachable (an
    RPC fails fast with UNAVAILABLE instead)."""
    done: UnitOfWork | None = None

    async def attempt(conn: asyncpg.Connection) -> T:
        nonlocal done
        uow = UnitOfWork(conn)
        result = await work(uow)
        await uow.flush()
        done = uow
        return result

    run = run_in_transaction_when_reachable if wait_out_outage else run_in_transaction
    for tries in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            result = await run(pool, attempt)
            break
        except asyncpg.DeadlockDetectedError:
            # Postgres broke a lock cycle by rolling this attempt back (an order's SKUs
            # locked out of order by shrinkage, docs/spec.md §10): run it again from the top.
            if tries == DEADLOCK_ATTEMPTS:
                raise
    assert done is not None
    done.committed()
    await done.run_follow_ups(pool)
    return result


async def consume_once(
    pool: asyncpg.Pool,
    event_id: uuid.UUID,
    routing_key: str,
    work: Callable[[UnitOfWork], Awaitable[T]],
) -> T | None:
    """Applies a consumed event exactly once: `work` runs in the transaction that records
    the event as processed (the inbox); a redelivery finds it recorded and does nothing
    (None). Waits out a database outage rather than failing the event."""

    async def once(uow: UnitOfWork) -> T | None:
        first = await uow.conn.fetchval(
            """insert into processed_event (event_id, routing_key) values ($1, $2)
               on conflict (event_id) do nothing returning true""",
            event_id,
            routing_key,
        )
        return await work(uow) if first else None

    return await transaction(pool, once, wait_out_outage=True)


def parse_event_id(value: str) -> uuid.UUID:
    """The event_id of a consumed event; InvalidArgument when it is not a UUID."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument("event_id", f"{value!r} is not a UUID") from None


async def look_up_or_lock(
    look_up: Callable[[], Awaitable[T | None]], lock: Callable[[], Awaitable[L]]
) -> tuple[T | None, L | None]:
    """Idempotency of a keyed command: what an earlier call with the same key left
    (`look_up`), or else the lock the command works under. Looked up again once the lock is
    held: a concurrent call with the key may have committed while this one waited.
    Returns (earlier, None) for a repeat, (None, lock) for a first call."""
    earlier = await look_up()
    if earlier is not None:
        return earlier, None
    locked = await lock()
    earlier = await look_up()
    if earlier is not None:
        return earlier, None
    return None, locked

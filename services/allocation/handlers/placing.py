"""Placing order lines (Allocate): one call alone, or concurrent calls together
(`GroupCommit`: one statement and one transaction for a batch), and the full path a line takes
when it can be reserved, has a policy or is capped. Each line's SKU is locked while it is
placed; the rules are docs/spec.md §2."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp

from services.allocation import metrics
from services.allocation.adapters import lines as lines_db
from services.allocation.adapters import orders as orders_db
from services.allocation.adapters import placement as placement_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters.lines import Allocation
from services.allocation.adapters.queue import ReservedEvents
from services.allocation.domain.model import Line, Sku
from services.allocation.handlers import events
from services.allocation.handlers.commands import (
    Allocate,
)
from services.allocation.handlers.lines import LineView, with_allocations
from services.allocation.handlers.locked_sku import eta_of_new_line, fill_sku
from services.common import tracing
from services.common.errors import AlreadyExists, FailedPrecondition, ServiceError
from services.common.outbox import OutgoingEvent
from services.common.unit_of_work import UnitOfWork, transaction


@dataclass(frozen=True)
class Placed:
    view: LineView
    reserved_at_once: int
    repeated: bool


def _placed_at_once(queued: placement_db.Queued) -> Placed:
    """The answer to a call `queue_line`/`queue_lines` placed (QUEUED or RESERVED)."""
    line = queued.line
    assert line is not None
    if queued.outcome is placement_db.Outcome.RESERVED:
        metrics.RESERVED_UNITS.inc(line.reserved)
        where = [Allocation(queued.reserved_at, line.reserved, 0)]
        return Placed(LineView(line, 0, where), line.reserved, False)
    return Placed(LineView(line, queued.queue_position), 0, False)


def _reserved_events() -> ReservedEvents:
    """What an Allocate's line.reserved shares with others: the time, no cause."""
    now = Timestamp()
    now.GetCurrentTime()
    return events.reserved_events(None, now)


async def allocate(
    pool: asyncpg.Pool, cmd: Allocate, *, group: GroupCommit | None = None
) -> Placed:
    """Places line `cmd` (or answers its repeat). With `group`, the call is placed together
    with the Allocates that arrive with it (group commit); without, on its own."""
    cmd = cmd.validated()
    if cmd.locations:
        # Locations are only learnt, never forgotten: a check before the transaction holds.
        cmd.check_known(await skus_db.known_locations(pool, list(cmd.locations)))
    if group is not None:
        return await group.place(pool, cmd)
    return await _allocate_alone(pool, cmd)


async def _allocate_alone(pool: asyncpg.Pool, cmd: Allocate) -> Placed:
    """A validated Allocate on its own: queued in one round trip, or the full path."""
    queued = await _queue_only(pool, cmd)
    if queued is not None:
        return queued
    return await _full_path(pool, cmd)


async def _full_path(pool: asyncpg.Pool, cmd: Allocate) -> Placed:
    """A validated Allocate in one transaction of its own, whatever it needs: a repeat
    answered, a refusal, the fill, the ETA walk."""
    return await transaction(pool, lambda uow: _place_or_repeat(uow, cmd))


async def _place_or_repeat(uow: UnitOfWork, cmd: Allocate) -> Placed:
    # Lock the SKU (every change of its queue holds the lock) and learn whether this
    # is a repeat, in one round trip; the lock is then held for as few as possible.
    conn = uow.conn
    await orders_db.lock_order_id(conn, cmd.order_id, shared=True)
    if await orders_db.is_order(conn, cmd.order_id):
        raise order_id_taken(cmd.order_id, "AllocateOrder", "Allocate")
    _, placed = await skus_db.lock_sku_for_line(conn, cmd.sku, cmd.order_id, cmd.line_id)
    if placed:
        earlier = await lines_db.find_line_with_position(conn, cmd.order_id, cmd.line_id)
        assert earlier is not None  # lines are never deleted
        _check_repeat(cmd, earlier[0])
        return Placed(LineView(*earlier), 0, True)
    return await place_new_line(uow, cmd, cause="Allocate")


async def _full_paths(pool: asyncpg.Pool, cmds: list[Allocate]) -> list[Placed | ServiceError]:
    """Validated Allocates of one SKU placed by the full path one after the other (arrival
    order) in one transaction: the SKU is locked once for all of them. Each runs in a
    savepoint: one refused (a policy, a cap, a key reused) rolls back its own work and
    events only, and gets its error; the others stand."""

    async def work(uow: UnitOfWork) -> list[Placed | ServiceError]:
        answers: list[Placed | ServiceError] = []
        for cmd in cmds:
            await uow.flush()  # the events so far are written before the savepoint
            mark = uow.mark()
            try:
                async with uow.conn.transaction():  # a savepoint
                    answers.append(await _place_or_repeat(uow, cmd))
            except ServiceError as refused:
                uow.undo_since(mark)
                answers.append(refused)
        return answers

    return await transaction(pool, work)


# Group commit of Allocate (docs/performance.md, "Group commit"): the most calls in one
# batch, and how long a waiting call waits for a batch in flight to finish before its own
# goes anyway; batches in flight at once before calls wait for company.
MAX_BATCH = 64
MAX_WAIT_S = 0.001
MAX_IN_FLIGHT = 2


# A way to place one validated Allocate on its own.
_Path = Callable[[asyncpg.Pool, Allocate], Coroutine[object, object, Placed]]


@dataclass
class _Call:
    cmd: Allocate
    event: OutgoingEvent
    trace_context: str | None
    context: contextvars.Context  # the caller's: its full path runs in it (tracing, logs)
    answer: asyncio.Future[Placed]


class GroupCommit:
    """Places concurrent Allocates together: the calls that arrive while the service is
    busy go as one batch in one statement and one transaction (`placement.queue_lines`),
    each answered on its own. A call arriving while fewer than MAX_IN_FLIGHT batches are
    in the database goes at the end of the event loop's current turn, with whatever
    arrived in the same turn (a lone call goes alone, on the one-call path); otherwise it
    waits for a batch to finish, never more than MAX_WAIT_S. Lines the batch statement does
    not queue (free units, inbound, a policy, a cap, a repeat) take the full path after the
    batch committed: a SKU's lines one after the other in arrival order, in one
    transaction (`_full_paths`), SKUs side by side; if the statement fails as a
    whole, every call of the batch is placed on its own. One per server (event loop)."""

    def __init__(self) -> None:
        self._pending: list[_Call] = []
        self._in_flight = 0
        self._turn_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._pool: asyncpg.Pool | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches sent (of two calls or more), for tests and the benchmark
        self.batched_calls = 0

    async def place(self, pool: asyncpg.Pool, cmd: Allocate) -> Placed:
        """Places validated `cmd` in the next batch and waits for its answer."""
        self._pool = pool
        request = cmd.request()
        answer: asyncio.Future[Placed] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _Call(
                cmd,
                events.queued_event(request),
                tracing.current_context(),
                contextvars.copy_context(),
                answer,
            )
        )
        self._kick()
        return await answer

    def _kick(self) -> None:
        loop = asyncio.get_running_loop()
        if len(self._pending) >= MAX_BATCH:
            self._send()
        elif self._in_flight < MAX_IN_FLIGHT:
            if not self._turn_scheduled:
                self._turn_scheduled = True
                loop.call_soon(self._end_of_turn)
        elif self._timer is None:
            self._timer = loop.call_later(MAX_WAIT_S, self._waited)

    def _end_of_turn(self) -> None:
        self._turn_scheduled = False
        if self._pending:
            if self._in_flight < MAX_IN_FLIGHT:
                self._send()
            else:
                self._kick()

    def _waited(self) -> None:
        self._timer = None
        if self._pending:
            self._send()

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        self._in_flight += 1
        self._spawn(self._run(batch))
        if self._pending:
            self._kick()

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        # In a context of its own: not the context of the call that happened to send it.
        task = asyncio.get_running_loop().create_task(work, context=contextvars.Context())
        self._tasks.add(task)  # held until done (the loop keeps only weak references)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Call]) -> None:
        try:
            if len(batch) == 1:
                await self._answer(batch[0], _allocate_alone)
            else:
                await self._run_batch(batch)
        finally:
            self._in_flight -= 1
            if self._pending and self._in_flight < MAX_IN_FLIGHT:
                self._send()

    async def _run_batch(self, batch: list[_Call]) -> None:
        assert self._pool is not None
        pool = self._pool
        self.batches += 1
        self.batched_calls += len(batch)
        try:
            answers = await placement_db.queue_lines(
                pool,
                [c.cmd.request() for c in batch],
                [c.event for c in batch],
                [c.trace_context for c in batch],
                _reserved_events(),
            )
        except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
            # A key committed meanwhile by another transaction (a replica, AllocateOrder):
            # nothing was written; each call is placed on its own and answered.
            self._in_chains(batch, _allocate_alone)
            return
        except Exception as exc:  # the database is unreachable, the statement failed
            for call in batch:
                if not call.answer.done():
                    call.answer.set_exception(exc)
            return
        except BaseException:  # cancelled: the server is stopping
            for call in batch:
                call.answer.cancel()
            raise
        rest = []
        for call, queued in zip(batch, answers, strict=True):
            if queued.line is not None:
                if not call.answer.done():
                    call.answer.set_result(_placed_at_once(queued))
            else:
                rest.append(call)
        self._in_chains(rest, _full_path)

    def _in_chains(
        self,
        calls: list[_Call],
        path: _Path,
    ) -> None:
        """Places `calls` through `path`: one after the other within a SKU (arrival order is
        rank order), SKUs side by side."""
        chains: dict[str, list[_Call]] = {}
        for call in calls:
            chains.setdefault(call.cmd.sku, []).append(call)
        for chain in chains.values():
            self._spawn(self._chain(chain, path))

    async def _chain(self, chain: list[_Call], path: _Path) -> None:
        if len(chain) == 1 or path is not _full_path:
            for call in chain:
                await self._answer(call, path)
            return
        # One transaction for the SKU's lines (the hot SKU: one lock for many lines).
        assert self._pool is not None
        try:
            answers = await _full_paths(self._pool, [c.cmd for c in chain])
        except Exception:
            # The transaction failed as a whole: each line on its own.
            for call in chain:
                await self._answer(call, path)
            return
        for call, answer in zip(chain, answers, strict=True):
            if call.answer.done():
                continue
            if isinstance(answer, ServiceError):
                call.answer.set_exception(answer)
            else:
                call.answer.set_result(answer)

    async def _answer(self, call: _Call, path: _Path) -> None:
        """Runs `path` for `call` in the caller's context and answers it."""
        assert self._pool is not None
        pool = self._pool
        task = asyncio.get_running_loop().create_task(path(pool, call.cmd), context=call.context)
        try:
            placed = await task
        except Exception as exc:
            if not call.answer.done():
                call.answer.set_exception(exc)
        else:
            if not call.answer.done():
                call.answer.set_result(placed)


def order_id_taken(order_id: str, owner: str, caller: str) -> AlreadyExists:
    return AlreadyExists(
        f"order_id {order_id!r} belongs to lines placed by {owner}; {caller} cannot use it "
        "(docs/spec.md §10)"
    )


async def place_new_line(
    uow: UnitOfWork, cmd: Allocate, *, cause: str, held_for_order: bool = False
) -> Placed:
    """Places new line `cmd`, whose SKU this transaction has locked: queues it through
    `place_line` (adapters/placement.py), runs the SKU's fill watching it, refuses it if
    the SKU's policy does, and writes its line.backordered event if units still wait. The
    one placement path of Allocate and AllocateOrder."""
    conn = uow.conn
    new = await placement_db.insert_line(conn, cmd.request(), held_for_order=held_for_order)
    line, sku = new.line, new.sku
    mine, sku = await fill_sku(uow, sku, cause=cause, cause_event_id=None, watch=line.key)
    if mine is not None:
        line = replace(
            line,
            reserved=mine.reserved,
            backordered=mine.backordered,
            status=mine.status,
            eta=None if mine.backordered == 0 else line.eta,
        )
    if not held_for_order:  # a ship-complete order checks its lines once it tried to complete
        check_backorders_allowed(cmd, line, sku, mine.reserved_now if mine else 0)
    position = 0
    if line.backordered:
        # A new line is the last of its priority band: its place and the units ahead of
        # it come from the per-priority counters, whatever the queue's length.
        # (Read again only if the fill moved them: free units were given out.)
        stats = new.stats
        if sku is not new.sku:
            stats = await skus_db.tail_stats(conn, cmd.sku, cmd.priority)
        position = stats.lines_through
        line = await eta_of_new_line(uow, sku, line, stats, new.inbound)
        uow.emit(events.backordered_event(line, position))
    view = await with_allocations(conn, LineView(line, position))
    return Placed(view, mine.reserved_now if mine else 0, False)


def check_backorders_allowed(cmd: Allocate, line: Line, sku: Sku, reserved_now: int) -> None:
    if line.backordered and not sku.backorders_accepted:
        raise FailedPrecondition(
            f"sku {cmd.sku!r} accepts no backorders and only {reserved_now}"
            f" of {cmd.quantity} units can be reserved now"
        )
    if sku.backorder_limit and sku.backordered_units > sku.backorder_limit:
        raise FailedPrecondition(
            f"sku {cmd.sku!r} would have {sku.backordered_units} units backordered, over its "
            f"limit of {sku.backorder_limit}"
        )


async def _queue_only(pool: asyncpg.Pool, cmd: Allocate) -> Placed | None:
    """The common case of Allocate in one round trip: a new line of a SKU with nothing free
    and nothing inbound is only queued (the fill and the ETA walk have nothing to do). None
    when that does not apply; nothing is written then and the full path decides."""
    request = cmd.request()
    try:
        queued = await placement_db.queue_line(
            pool, request, events.queued_event(request), _reserved_events()
        )
    except asyncpg.UniqueViolationError:
        # The same (order_id, line_id) committed meanwhile for another SKU: the full path
        # finds it and answers.
        return None
    except placement_db.CustomerCapExceeded:
        # Refused, nothing written; but the key may have been committed meanwhile by a
        # repeat of this call, which the cap then counted: the full path tells the two apart
        # under the SKU's lock.
        return None
    if queued.line is None:
        return None
    return _placed_at_once(queued)


def _check_repeat(cmd: Allocate, earlier: Line) -> None:
    if not cmd.matches(earlier):
        raise AlreadyExists(
            f"line ({cmd.order_id!r}, {cmd.line_id!r}) was already placed with other content "
            f"({earlier.quantity} of {earlier.sku!r} at priority {earlier.priority}); "
            "use a new line_id"
        )

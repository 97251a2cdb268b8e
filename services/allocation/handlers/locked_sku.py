"""What happens to a locked SKU after a change: the fill (free units to waiting lines, in
rank order), shrinkage (units taken back, lowest rank first) and the ETA walk. Every use
case that changes a SKU's units or queue ends here, in its own transaction, with the SKU
row locked. Queues are walked through the adapters' rank-order iterators, a chunk at a
time, so memory stays bounded however long a queue is."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from services.allocation import metrics
from services.allocation.adapters import inbound as inbound_db
from services.allocation.adapters import lines as lines_db
from services.allocation.adapters import orders as orders_db
from services.allocation.adapters import queue as queue_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters.queue import FilledLine, RevokedLine
from services.allocation.adapters.skus import TailStats
from services.allocation.domain import eta as eta_walk
from services.allocation.domain.fill import (
    DEFAULT_LOCATION,
    Fill,
    FillPolicy,
    LocationsWalk,
    Place,
    WaitingLine,
    fill,
    fill_locations,
)
from services.allocation.domain.model import Inbound, Line, Sku
from services.allocation.domain.shrinkage import Revocation, revoke
from services.allocation.handlers import events, ship_complete
from services.common import tracing
from services.common.unit_of_work import UnitOfWork

# The ETA walk covers at most this many waiting lines of a SKU (in rank order); lines
# beyond show an unknown ETA. Bounds the memory and time of one walk.
ETA_WALK_LIMIT = 50_000

# Per priority band: (change of its waiting lines, change of its backordered units).
Bands = dict[int, tuple[int, int]]


async def fill_sku(
    uow: UnitOfWork,
    sku: Sku,
    *,
    cause: str,
    cause_event_id: uuid.UUID | None,
    cause_occurred_at: datetime | None = None,
    watch: int | None = None,
) -> tuple[FilledLine | None, Sku]:
    """The SKU's fill (`_fill_queue`); then, once the transaction committed, the completion
    step of the ship-complete orders waiting on it, offered the free units the fill left
    (docs/spec.md §10; ship_complete.complete_after_commit)."""
    mine, sku = await _fill_queue(
        uow,
        sku,
        cause=cause,
        cause_event_id=cause_event_id,
        cause_occurred_at=cause_occurred_at,
        watch=watch,
    )
    # Placing a line never adds free units nor takes a line from ahead of a waiting order,
    # so no other order can complete after it (AllocateOrder tries its own order itself).
    placing = cause in ("Allocate", "AllocateOrder")
    if sku.free_units > 0 and sku.waiting_lines > 0 and not placing:
        ship_complete.complete_after_commit(uow, sku.sku, cause, cause_event_id)
    return mine, sku


async def _fill_queue(
    uow: UnitOfWork,
    sku: Sku,
    *,
    cause: str,
    cause_event_id: uuid.UUID | None,
    cause_occurred_at: datetime | None = None,
    watch: int | None = None,
) -> tuple[FilledLine | None, Sku]:
    """Runs the fill for a locked SKU: walks its queue in rank order, chunk by chunk, and
    emits a line.reserved per fill, in fill order. Each chunk's reservations, line updates
    and outbox rows are written as it is applied, and only counters are kept, so memory
    stays bounded however many lines one fill serves. Returns the fill of the line whose
    key is `watch`, if any, and the SKU's counters after the fill."""
    if sku.free_units <= 0 or sku.waiting_lines == 0:
        return None, sku
    # A span of its own (with tracing on): its queries and the line.reserved events it
    # emits are its children, in the trace of the RPC or event that caused it.
    with tracing.span("fill", {"backorder.sku": sku.sku, "backorder.cause": cause}):
        return await _fill_locked(uow, sku, cause, cause_event_id, cause_occurred_at, watch)


async def _fill_locked(
    uow: UnitOfWork,
    sku: Sku,
    cause: str,
    cause_event_id: uuid.UUID | None,
    cause_occurred_at: datetime | None,
    watch: int | None,
) -> tuple[FilledLine | None, Sku]:
    places = await skus_db.free_at(uow.conn, sku.sku)
    if not places:
        return None, sku  # the free units are at inactive locations: they promise nothing
    walk = LocationsWalk(
        {loc: free for loc, free, _ in places},
        {loc: Place(loc, rank) for loc, _, rank in places},
        sku.fill_policy,
        sku.location_strategy,
    )
    before = dict(walk.free)
    mine: FilledLine | None = None
    bands: Bands = defaultdict(lambda: (0, 0))
    occurred_at = Timestamp()
    occurred_at.GetCurrentTime()
    reserved = events.reserved_events(cause_event_id, occurred_at)
    # Events emitted before the fill (e.g. line.cancelled) go first: per-SKU order.
    await uow.flush()
    async for chunk in queue_db.waiting_in_rank_order(uow.conn, sku.sku):
        filled = await queue_db.apply_fills(
            uow.conn,
            sku.sku,
            _fill_chunk(walk, chunk),
            cause=cause,
            cause_event_id=cause_event_id,
            policy=sku.fill_policy,
            events=reserved,
        )
        for f in filled:
            lines, waiting_units = bands[f.priority]
            bands[f.priority] = (lines - (f.backordered == 0), waiting_units - f.reserved_now)
            if f.key == watch:
                mine = f if mine is None else _merged(mine, f)
        if walk.stopped:
            break
    given = {loc: before[loc] - walk.free[loc] for loc in before}
    units = sum(given.values())
    if units == 0:
        return mine, sku
    sku = await skus_db.change_totals(
        uow.conn,
        sku.sku,
        at={loc: (-n, n) for loc, n in given.items() if n},
        bands=bands,
    )
    uow.after_commit(lambda: _reserved(units, cause_occurred_at))
    return mine, sku


def _fill_chunk(walk: LocationsWalk, chunk: list[queue_db.QueuedLine]) -> list[Fill]:
    """The fill of one chunk of the queue. With one location holding free units and every
    line of the chunk free to ship from it (a business with one place), the single-location
    fill, which is the same walk at a fraction of the cost (a drain's hot loop)."""
    loc = walk.simple()
    if loc is not None and all(line.locations is None for line in chunk):
        outcome = fill(
            (line.waiting() for line in chunk),
            walk.free[loc],
            walk.policy,
            waiting_ahead=walk.waiting_ahead,
            skipped=walk.skipped,
            location=loc,
        )
        walk.free[loc] = outcome.free_after
        walk.waiting_ahead, walk.skipped = outcome.waiting_ahead, outcome.skipped
        if outcome.stopped and outcome.free_after > 0:
            walk.blocked.add(loc)  # STRICT: a whole-only line did not fit
        return list(outcome.fills)
    return fill_locations(walk, (line.waiting() for line in chunk))


def _merged(first: FilledLine, then: FilledLine) -> FilledLine:
    """The watched line's fills at two locations as one: reserved now in total, its state
    after the last."""
    return replace(then, reserved_now=first.reserved_now + then.reserved_now)


def _reserved(units: int, cause_occurred_at: datetime | None) -> None:
    metrics.RESERVED_UNITS.inc(units)
    if cause_occurred_at is not None:
        latency = time.time() - cause_occurred_at.timestamp()
        metrics.FILL_LATENCY.observe(max(latency, 0.0))


async def shrink(
    uow: UnitOfWork,
    sku: Sku,
    units: int,
    cause_event_id: uuid.UUID,
    location_id: str = DEFAULT_LOCATION,
    *,
    cause: str = "stock.adjusted",
) -> Sku:
    """Takes `units` away from a locked SKU at `location_id`: from its free units there
    first, then back from the reservations held there, lowest rank first (those lines wait
    again at their rank; a line.revoked each). Units beyond free + reserved there were
    already shipped: counted as unmatched shrinkage."""
    from_free = min(await skus_db.location_free(uow.conn, sku.sku, location_id), units)
    missing = units - from_free
    revoked: list[RevokedLine] = []
    if missing > 0:
        # Where every reservation of the SKU is at this one location, a line's reserved
        # units are all there: no need to read its allocations.
        only_here = await skus_db.reserved_only_at(uow.conn, sku.sku, location_id)
        async for chunk in queue_db.holding_lowest_rank_first(
            uow.conn, sku.sku, location_id=None if only_here else location_id
        ):
            plan, missing = revoke((line.held() for line in chunk), missing)
            revoked += await queue_db.apply_revocations(
                uow.conn,
                sku.sku,
                plan,
                cause_event_id=cause_event_id,
                policy=sku.fill_policy,
                location_id=location_id,
                cause=cause,
            )
            if missing == 0:
                break
    bands: Bands = defaultdict(lambda: (0, 0))
    for r in revoked:
        lines, units_waiting = bands[r.line.priority]
        newly_waiting = 1 if r.line.backordered == r.revoked_now else 0
        bands[r.line.priority] = (lines + newly_waiting, units_waiting + r.revoked_now)
    taken_back = sum(r.revoked_now for r in revoked)
    uow.emit_all(events.revoked_event(r, cause_event_id) for r in revoked)
    after = await skus_db.change_totals(
        uow.conn,
        sku.sku,
        at={location_id: (-from_free, -taken_back)},
        unmatched_shrinkage=missing,
        bands=bands,
    )
    orders = await ship_complete.orders_of(uow, [r.line.key for r in revoked])
    for order_id in orders:
        await _return_to_waiting(uow, order_id, sku.sku, cause_event_id, cause)
    if orders:
        now = await skus_db.get_sku(uow.conn, sku.sku)
        assert now is not None
        after = now
    return after


async def _return_to_waiting(
    uow: UnitOfWork, order_id: str, shrunk: str, cause_event_id: uuid.UUID, cause: str
) -> None:
    """Shrinkage took units from a line of ready ship-complete order `order_id`: the whole
    order waits again (docs/spec.md §10). Every unit its lines still hold is taken back
    (a line.revoked each, the lines wait again at their rank), the order re-enters the index
    of waiting orders with an order.waiting, and the other SKUs' freed units are offered to
    their queues (the caller fills `shrunk`). Locks the order's other SKUs in sorted order,
    after `shrunk`'s: a deadlock this may cause is detected by Postgres and the event's
    handling retried (services/common/consumer.py)."""
    conn = uow.conn
    rows = await conn.fetch(
        "select id, sku from line where order_id = $1 and not cancelled order by id", order_id
    )
    skus = {s: await skus_db.lock_sku(conn, s) for s in sorted({r["sku"] for r in rows})}
    released = 0
    for row in rows:
        line = await lines_db.line_by_key(conn, row["id"])
        if line.reserved <= 0:
            continue
        sku = skus[line.sku]
        for held in await lines_db.allocations(conn, line.key):
            if held.reserved <= 0:
                continue
            [r] = await queue_db.apply_revocations(
                conn,
                line.sku,
                [Revocation(line.key, held.reserved)],
                cause_event_id=cause_event_id,
                policy=sku.fill_policy,
                location_id=held.location_id,
                cause=cause,
            )
            newly_waiting = 1 if r.line.backordered == r.revoked_now else 0
            await skus_db.change_totals(
                conn,
                line.sku,
                at={held.location_id: (r.revoked_now, -r.revoked_now)},
                bands={line.priority: (newly_waiting, r.revoked_now)},
            )
            uow.emit(events.revoked_event(r, cause_event_id))
            released += r.revoked_now
    await ship_complete.start_waiting(uow, order_id)
    found = await orders_db.find_order(conn, order_id)
    assert found is not None
    version = await orders_db.bump_version(conn, order_id)
    uow.emit(
        ship_complete.order_waiting_event(
            order_id, found.customer_id, released, version, cause_event_id
        )
    )
    for name in sorted(skus):
        if name == shrunk:
            continue
        now = await skus_db.get_sku(conn, name)
        assert now is not None
        _, now = await fill_sku(uow, now, cause=cause, cause_event_id=cause_event_id)
        await refresh_etas(uow, now)


async def refresh_etas(uow: UnitOfWork, sku: Sku) -> None:
    """Re-estimates the ETAs of a locked SKU's waiting lines; line.eta_changed for each
    change. Without waiting lines or open inbound no line can have an ETA (the fill
    already gave out what is free), so that case only clears ETAs that are still set (an
    index lookup; the inbound is not read when nothing waits)."""
    inbound = await inbound_db.open_inbound(uow.conn, sku.sku) if sku.waiting_lines else []
    known: dict[int, datetime] = {}
    if inbound:
        arrivals = [i.arrival() for i in inbound]
        places = await skus_db.free_at(uow.conn, sku.sku)
        free = sum(units for _, units, _ in places)
        supply = free + sum(a.quantity for a in arrivals)
        strict = sku.fill_policy is FillPolicy.STRICT
        lines = await _eta_candidates(uow, sku.sku, units_cap=supply if strict else None)
        at = {loc for loc, _, _ in places} | {a.location_id for a in arrivals}
        if len(at) == 1 and all(line.locations is None for line in lines):
            # One location in play and every line may ship from it: the single walk.
            known = eta_walk.estimate(lines, free, arrivals, sku.fill_policy, _now())
        else:
            ranks = await skus_db.fill_ranks(uow.conn, sorted(at))
            known = eta_walk.estimate_at_locations(
                lines,
                {loc: units for loc, units, _ in places},
                ranks,
                arrivals,
                sku.fill_policy,
                sku.location_strategy,
                _now(),
            )
    changed = await lines_db.set_etas(uow.conn, sku.sku, known)
    # A ship-complete order's line carries its order's ETA (docs/spec.md §10).
    shown = await ship_complete.order_etas(uow.conn, [ln for ln in changed if ln.backordered > 0])
    uow.emit_all(events.eta_event(line) for line in shown)


async def _eta_candidates(uow: UnitOfWork, sku: str, *, units_cap: int | None) -> list[WaitingLine]:
    """Waiting lines in rank order for the ETA walk: at most ETA_WALK_LIMIT, and (STRICT)
    no further than the first line whose units ahead reach `units_cap` (the whole supply)."""
    found: list[WaitingLine] = []
    units = 0
    async for chunk in queue_db.waiting_in_rank_order(uow.conn, sku):
        for line in chunk:
            if len(found) == ETA_WALK_LIMIT or (units_cap is not None and units >= units_cap):
                return found
            # A line held for its ship-complete order is estimated as if it took its units
            # at its rank (its own ETA; the order's is the latest of its lines').
            found.append(replace(line.waiting(), held=False))
            units += line.backordered
    return found


async def eta_of_new_line(
    uow: UnitOfWork, sku: Sku, line: Line, stats: TailStats, inbound: list[Inbound]
) -> Line:
    """ETA of a line just placed. Without inbound: unknown, nothing else moves. As the last
    waiting line under STRICT: only its own ETA, from the units ahead. Otherwise (it went
    ahead of lower-priority lines, or SKIP) the whole SKU is re-estimated."""
    if not inbound:
        return line
    one_place = line.locations is None and len({i.location_id for i in inbound}) == 1
    if one_place and stats.lines_below == 0 and sku.fill_policy is FillPolicy.STRICT:
        estimate = eta_walk.strict_eta_behind(
            stats.units_through - line.backordered,
            line.waiting(),
            sku.free_units,
            [i.arrival() for i in inbound],
            _now(),
        )
        if estimate is None:
            return line
        changed = await lines_db.set_etas(uow.conn, sku.sku, {line.key: estimate}, only=True)
        uow.emit_all(events.eta_event(c) for c in changed)
        return changed[0] if changed else line
    await refresh_etas(uow, sku)
    return await lines_db.line_by_key(uow.conn, line.key)


def _now() -> datetime:
    return datetime.now(UTC)

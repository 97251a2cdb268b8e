"""Placing a new line, through the database's `place_line` (repeatable/placement.sql): the
one home of the rule that queues a line (its arrival number, its band's and its SKU's
counters; the bucket counters follow by trigger).

Two paths use it. `queue_line` is Allocate's common case in one round trip: the SKU has
nothing for the fill, its policy or the ETA walk to decide (the guard
`line_needs_the_fill`), so the line is only queued, with its line.backordered event.
Otherwise `insert_line` places it inside the service's transaction, and the fill runs.

`queue_lines` is the same common case for a batch of concurrent Allocates (group commit,
handlers/placing.py): one statement, one transaction, an outcome per line.

Both refuse a line that a per-customer cap forbids (`place_line` checks it, docs/spec.md
§2) with `CustomerCapExceeded`, having written nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

import asyncpg

from services.allocation.adapters.queue import ReservedEvents
from services.allocation.adapters.rows import Executor, sku_from
from services.allocation.adapters.skus import TailStats
from services.allocation.domain.model import Inbound, Line, LineStatus, Sku
from services.common import tracing
from services.common.errors import FailedPrecondition
from services.common.outbox import NOTIFY_CHANNEL, OutgoingEvent

# What `place_line` raises when a per-customer cap refuses the line.
CAP_SQLSTATE = "BOCAP"


class LineRequest(NamedTuple):
    """A line to be placed, as Allocate asks for it (fields in the order the SQL takes; a
    tuple, so it spreads into query arguments without a copy: it is on Allocate's path)."""

    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    customer_id: str
    locations: list[str] | None = None  # None: any active location


class CustomerCapExceeded(FailedPrecondition):
    """The SKU caps the open units per customer and the line would break the cap (or names
    no customer)."""

    reason = "CUSTOMER_CAP_EXCEEDED"

    def __init__(self, new: LineRequest, cap: int, held: int) -> None:
        if new.customer_id:
            message = (
                f"customer {new.customer_id!r} holds {held} open units of sku {new.sku!r} "
                f"(reserved + backordered); {new.quantity} more would exceed the sku's "
                f"max_units_per_customer of {cap}"
            )
        else:
            message = (
                f"sku {new.sku!r} caps open units per customer at {cap} "
                "(max_units_per_customer): a line of it needs a customer_id"
            )
        super().__init__(message, resource_type="sku", resource_name=new.sku)
        self.cap = cap
        self.held = held


def _cap_refusal(exc: asyncpg.PostgresError, new: LineRequest) -> CustomerCapExceeded | None:
    """The refusal `exc` stands for, if `place_line` raised it for the cap."""
    if getattr(exc, "sqlstate", None) != CAP_SQLSTATE:
        return None
    cap, held = (int(n) for n in str(getattr(exc, "detail", "")).split())
    return CustomerCapExceeded(new, cap, held)


class Outcome(StrEnum):
    """What `queue_line` did (the words of the SQL function)."""

    QUEUED = "QUEUED"  # placed and its event written: done
    RESERVED = "RESERVED"  # placed, its free units reserved whole and its event written: done
    NEEDS_THE_FILL = "NEEDS_THE_FILL"  # nothing written: the full path places it
    PLACED_BEFORE = "PLACED_BEFORE"  # the key is taken: the full path answers


@dataclass(frozen=True)
class Queued:
    outcome: Outcome
    line: Line | None = None  # the line placed (QUEUED, RESERVED)
    queue_position: int = 0
    reserved_at: str = ""  # RESERVED: the location whose units it holds


def _answer(new: LineRequest, row: asyncpg.Record) -> Queued:
    outcome = Outcome(row["outcome"])
    if outcome is Outcome.QUEUED:
        line = new_line(new, row["line_key"], row["placed_at"])
        return Queued(outcome, line, row["queue_position"])
    if outcome is Outcome.RESERVED:
        line = reserved_line(new_line(new, row["line_key"], row["placed_at"]))
        return Queued(outcome, line, 0, row["reserved_at"])
    return Queued(outcome)


def new_line(new: LineRequest, key: int, placed_at: datetime) -> Line:
    """A line just placed (key and placed_at as the database gave them): nothing reserved,
    everything backordered, no ETA."""
    fields = new._asdict()
    locations = fields.pop("locations")
    return Line(
        key=key,
        **fields,
        locations=None if locations is None else tuple(locations),
        placed_at=placed_at,
        reserved=0,
        fulfilled=0,
        cancelled=False,
        backordered=new.quantity,
        status=LineStatus.BACKORDERED,
        eta=None,
        eta_version=0,
        placed_priority=new.priority,
    )


def reserved_line(line: Line) -> Line:
    """A line just placed, all its units reserved (`queue_line`'s RESERVED)."""
    return replace(line, reserved=line.quantity, backordered=0, status=LineStatus.RESERVED)


async def queue_line(
    pool: Executor, new: LineRequest, event: OutgoingEvent, reserved: ReservedEvents
) -> Queued:
    """Queues line `new` and writes `event` (its line.backordered, without the queue
    position, which the relay sets from the outbox row) if nothing but queueing is to be
    done; or places it and reserves its units if taking free units whole is all there is to
    do, with its line.reserved (`reserved`); committed on its own. Otherwise writes nothing
    and says why."""
    try:
        row = await pool.fetchrow(
            "select * from queue_line($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
            " $14, $15, $16, $17, $18)",
            *new,
            event.event_id,
            event.exchange,
            event.routing_key,
            event.message.DESCRIPTOR.full_name,
            event.message.SerializeToString(),
            NOTIFY_CHANNEL,
            tracing.current_context(),
            reserved.routing_key,
            reserved.message_type,
            reserved.occurred,
        )
    except asyncpg.PostgresError as exc:
        refusal = _cap_refusal(exc, new)
        if refusal is None:
            raise
        raise refusal from None
    return _answer(new, row)


async def queue_lines(
    pool: Executor,
    lines: Sequence[LineRequest],
    events: Sequence[OutgoingEvent],
    trace_contexts: Sequence[str | None],
    reserved: ReservedEvents,
) -> list[Queued]:
    """Queues the lines of a batch (arrival order) whose SKU needs nothing but queueing,
    each with its event, or reserves them (as for `queue_line`), in one statement committed
    on its own; an outcome per line, in the same order. A line answered NEEDS_THE_FILL or
    PLACED_BEFORE has nothing written. Raises (and writes nothing) when the statement fails
    as a whole, e.g. a key committed meanwhile by another transaction."""
    first = events[0]
    rows = await pool.fetch(
        "select * from queue_lines($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,"
        " $14, $15, $16, $17, $18)",
        [n.order_id for n in lines],
        [n.line_id for n in lines],
        [n.sku for n in lines],
        [n.quantity for n in lines],
        [n.priority for n in lines],
        [n.allow_partial for n in lines],
        [n.customer_id for n in lines],
        json.dumps([n.locations for n in lines]),
        [e.event_id for e in events],
        first.exchange,
        first.routing_key,
        first.message.DESCRIPTOR.full_name,
        [e.message.SerializeToString() for e in events],
        NOTIFY_CHANNEL,
        list(trace_contexts),
        reserved.routing_key,
        reserved.message_type,
        reserved.occurred,
    )
    return [_answer(new, row) for new, row in zip(lines, rows, strict=True)]


@dataclass(frozen=True)
class NewLine:
    """A line just queued, its SKU's counters after it, the queue seen from its band and
    the SKU's open inbound (earliest first)."""

    line: Line
    sku: Sku
    stats: TailStats
    inbound: list[Inbound]


async def insert_line(
    conn: asyncpg.Connection, new: LineRequest, *, held_for_order: bool = False
) -> NewLine:
    """Queues line `new`, whose SKU row this transaction has locked, whatever the guard
    says: the caller runs the fill next. One round trip: the counters after it and the
    SKU's open inbound come back with it. `held_for_order`: a line of a ship-complete
    order, which the SKU's fill passes over."""
    try:
        row = await conn.fetchrow(
            """select p.line_key, p.placed_at, p.lines_through, p.units_through, p.lines_below,
                      (p.sku_after).*, i.*
               from place_line($1, $2, $3, $4, $5, $6, $7, $8,
                               (select lines_placed from sku where sku = $3), $9) p,
                    (select array_agg(inbound_id order by expected_at, inbound_id)
                                as inbound_ids,
                            array_agg(open_quantity order by expected_at, inbound_id)
                                as inbound_quantities,
                            array_agg(expected_at order by expected_at, inbound_id)
                                as inbound_at
                     from inbound
                     where sku = $3 and open_quantity > 0 and not cancelled) i""",
            *new,
            held_for_order,
        )
    except asyncpg.PostgresError as exc:
        refusal = _cap_refusal(exc, new)
        if refusal is None:
            raise
        raise refusal from None
    inbound = [
        Inbound(*i)
        for i in zip(
            row["inbound_ids"] or (),
            row["inbound_quantities"] or (),
            row["inbound_at"] or (),
            strict=True,
        )
    ]
    return NewLine(
        new_line(new, row["line_key"], row["placed_at"]),
        sku_from(row),
        TailStats(int(row["lines_through"]), int(row["units_through"]), int(row["lines_below"])),
        inbound,
    )

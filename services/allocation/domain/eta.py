"""The ETA walk (docs/spec.md §2): when each waiting line's backordered units should be filled.

Plays the fill forward in time: the free units now, then each open inbound at its
`expected_at` (earliest first), running the same fill (same policy) over what still waits
after each arrival. A line's ETA is the moment its last unit is given; a line that the
known supply never completes has no ETA (unknown). An overdue inbound keeps its own
`expected_at` (an ETA in the past says "late"), so estimates do not drift with the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.allocation.domain.fill import FillPolicy, WaitingLine, fill


@dataclass(frozen=True, slots=True)
class Arrival:
    """Units expected at a moment: an open inbound."""

    at: datetime
    quantity: int


def estimate(
    waiting: Iterable[WaitingLine],
    free: int,
    arrivals: Sequence[Arrival],
    policy: FillPolicy,
    now: datetime,
) -> dict[int, datetime]:
    """ETA of every line of `waiting` (in rank order) that the supply completes, by key.
    Lines missing from the result have no known ETA."""
    remaining = list(waiting)
    etas: dict[int, datetime] = {}
    supply = 0
    schedule = [Arrival(now, free), *sorted(arrivals, key=lambda a: a.at)]
    for arrival in schedule:
        supply += arrival.quantity
        if not remaining or supply <= 0:
            continue
        outcome = fill(remaining, supply, policy)
        supply = outcome.free_after
        given = {f.key: f.quantity for f in outcome.fills}
        still: list[WaitingLine] = []
        for line in remaining:
            got = given.get(line.key, 0)
            if got == line.backordered:
                etas[line.key] = arrival.at
            elif got:
                still.append(replace(line, backordered=line.backordered - got))
            else:
                still.append(line)
        remaining = still
    return etas


def strict_eta_behind(
    units_ahead: int, line: WaitingLine, free: int, arrivals: Sequence[Arrival], now: datetime
) -> datetime | None:
    """ETA of `line` when `units_ahead` units wait ahead of it under STRICT: everything ahead
    is served first whatever its shape, so it walks like one partial line."""
    ahead = WaitingLine(key=-1, backordered=units_ahead, allow_partial=True)
    queue = [ahead, line] if units_ahead > 0 else [line]
    return estimate(queue, free, arrivals, FillPolicy.STRICT, now).get(line.key)

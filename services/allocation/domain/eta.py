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

from services.allocation.domain.fill import (
    DEFAULT_LOCATION,
    FillPolicy,
    LocationStrategy,
    LocationsWalk,
    Place,
    WaitingLine,
    fill,
    fill_locations,
)


@dataclass(frozen=True, slots=True)
class Arrival:
    """Units expected at a moment: an open inbound."""

    at: datetime
    quantity: int
    location_id: str = DEFAULT_LOCATION


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


def estimate_at_locations(
    waiting: Iterable[WaitingLine],
    free: dict[str, int],
    ranks: dict[str, int],
    arrivals: Sequence[Arrival],
    policy: FillPolicy,
    strategy: LocationStrategy,
    now: datetime,
) -> dict[int, datetime]:
    """`estimate` over several locations (docs/spec.md §8): the free units per active
    location now, then each open inbound at its location and moment, running the fill over
    locations after each; a line only gets units of its eligible locations. `ranks` holds
    the fill_rank of every location in `free` and `arrivals`."""
    remaining = list(waiting)
    etas: dict[int, datetime] = {}
    supply = {loc: units for loc, units in free.items() if units > 0}
    places = {loc: Place(loc, rank) for loc, rank in ranks.items()}
    schedule = [Arrival(now, 0), *sorted(arrivals, key=lambda a: a.at)]
    for arrival in schedule:
        if arrival.quantity:
            supply[arrival.location_id] = supply.get(arrival.location_id, 0) + arrival.quantity
        if not remaining or not any(units > 0 for units in supply.values()):
            continue
        walk = LocationsWalk(dict(supply), {loc: places[loc] for loc in supply}, policy, strategy)
        given: dict[int, int] = {}
        for f in fill_locations(walk, remaining):
            given[f.key] = given.get(f.key, 0) + f.quantity
        supply = walk.free
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

"""The fill (docs/spec.md §2): which waiting lines get how many of the free units, in rank order.

The walk is fed the waiting lines already in rank order (priority DESC, placed_at ASC,
sequence ASC). It may be fed in chunks: pass the previous chunk's `waiting_ahead` and
`free_after` to the next call and stop reading once `stopped` is true.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class FillPolicy(StrEnum):
    """What to do when a line that takes only whole amounts does not fit."""

    STRICT = "STRICT"  # stop: nothing ranked lower is served before it
    SKIP = "SKIP"  # pass over it to lower-ranked lines


class FillRule(StrEnum):
    """Why a line got what it got; recorded in the decision log."""

    PARTIAL = "PARTIAL"  # allow_partial: took min(backordered, free), less than it waits for
    WHOLE = "WHOLE"  # took all it was waiting for
    WHOLE_AFTER_SKIP = "WHOLE_AFTER_SKIP"  # took all, after SKIP passed over a line ahead


# The location every business has; the only one of a business with one place.
DEFAULT_LOCATION = "default"


class LocationStrategy(StrEnum):
    """In which order a line takes units from the locations it may ship from."""

    FILL_RANK = "FILL_RANK"  # by fill_rank, then location_id
    MOST_STOCK = "MOST_STOCK"  # most free units at that moment first; ties as FILL_RANK


@dataclass(frozen=True, slots=True)
class WaitingLine:
    key: int  # the line's identity (its sequence number)
    backordered: int  # units still waiting, > 0
    allow_partial: bool
    # The locations the line may ship from; None: any active location.
    locations: frozenset[str] | None = None
    # A line of a ship-complete order (docs/spec.md §10): the fill passes over it, taking
    # nothing for it and never blocking on it; its order's completion step serves it.
    held: bool = False


@dataclass(frozen=True, slots=True)
class Fill:
    key: int
    quantity: int
    rule: FillRule
    queue_position: int  # 1-based place among the waiting lines when the unit(s) were given
    location_id: str = DEFAULT_LOCATION  # where the units were taken


@dataclass(frozen=True, slots=True)
class FillOutcome:
    fills: tuple[Fill, ...]
    free_after: int
    # Lines passed over or partly filled that are still waiting ahead of the next line.
    waiting_ahead: int
    # True when no later line can be served: free units ran out, or STRICT blocked.
    stopped: bool
    skipped: bool  # whether SKIP passed over some line (carried into the next chunk)


def fill(
    waiting: Iterable[WaitingLine],
    free: int,
    policy: FillPolicy = FillPolicy.STRICT,
    *,
    waiting_ahead: int = 0,
    skipped: bool = False,
    location: str = DEFAULT_LOCATION,
) -> FillOutcome:
    """Walks `waiting` (in rank order) handing out at most `free` units, all at `location`
    (every line may ship from it: `fill_locations` decides for several)."""
    fills: list[Fill] = []
    for line in waiting:
        if free <= 0:
            return FillOutcome(tuple(fills), free, waiting_ahead, True, skipped)
        position = waiting_ahead + 1
        if line.held:
            waiting_ahead += 1
            continue
        if line.backordered <= free:
            rule = FillRule.WHOLE_AFTER_SKIP if skipped else FillRule.WHOLE
            fills.append(Fill(line.key, line.backordered, rule, position, location))
            free -= line.backordered
        elif line.allow_partial:
            fills.append(Fill(line.key, free, FillRule.PARTIAL, position, location))
            free = 0
            waiting_ahead += 1
        elif policy is FillPolicy.STRICT:
            return FillOutcome(tuple(fills), free, waiting_ahead, True, skipped)
        else:
            skipped = True
            waiting_ahead += 1
    return FillOutcome(tuple(fills), free, waiting_ahead, free <= 0, skipped)


@dataclass(frozen=True, slots=True)
class Place:
    """An active location as the fill sees it."""

    location_id: str
    fill_rank: int


@dataclass(slots=True)
class LocationsWalk:
    """The state of a fill over several locations, carried from one chunk to the next:
    free units per active location, the locations STRICT blocked, the lines still waiting
    ahead and whether SKIP passed over a line."""

    free: dict[str, int]
    places: dict[str, Place]
    policy: FillPolicy = FillPolicy.STRICT
    strategy: LocationStrategy = LocationStrategy.FILL_RANK
    blocked: set[str] = field(default_factory=set)
    waiting_ahead: int = 0
    skipped: bool = False

    @property
    def stopped(self) -> bool:
        """No later line can be served: every location with free units is blocked."""
        return all(units <= 0 or loc in self.blocked for loc, units in self.free.items())

    def simple(self) -> str | None:
        """The one location with free units when the walk is the single-location fill's
        (nothing blocked); None otherwise."""
        if self.blocked:
            return None
        found = None
        for loc, units in self.free.items():
            if units > 0:
                if found is not None:
                    return None
                found = loc
        return found


def fill_locations(walk: LocationsWalk, waiting: Iterable[WaitingLine]) -> list[Fill]:
    """Walks `waiting` (in rank order) once over every active location of `walk` (docs/spec.md
    §8): each line takes from its eligible unblocked locations in the strategy's order; a
    partial line what they have; a whole-only line all it waits for if they cover it
    together (possibly from several), else STRICT blocks its eligible locations for the
    lines after it and SKIP passes over it. Updates `walk` for the next chunk."""
    fills: list[Fill] = []
    free, places, blocked = walk.free, walk.places, walk.blocked
    by_rank = sorted(places, key=lambda loc: (places[loc].fill_rank, loc))
    most_stock = walk.strategy is LocationStrategy.MOST_STOCK
    for line in waiting:
        if walk.stopped:
            break
        at = line.locations
        eligible = [loc for loc in by_rank if (at is None or loc in at) and loc not in blocked]
        available = sum(free.get(loc, 0) for loc in eligible)
        position = walk.waiting_ahead + 1
        if available <= 0 or line.held:
            walk.waiting_ahead += 1
            continue
        if line.backordered <= available:
            rule = FillRule.WHOLE_AFTER_SKIP if walk.skipped else FillRule.WHOLE
            wanted = line.backordered
        elif line.allow_partial:
            rule, wanted = FillRule.PARTIAL, available
            walk.waiting_ahead += 1
        else:
            if walk.policy is FillPolicy.STRICT:
                blocked.update(eligible)
            else:
                walk.skipped = True
            walk.waiting_ahead += 1
            continue
        if most_stock:
            # Stable sort of the rank order: ties keep fill_rank, then location_id.
            eligible.sort(key=lambda loc: -free.get(loc, 0))
        for loc in eligible:
            taken = min(free.get(loc, 0), wanted)
            if taken > 0:
                fills.append(Fill(line.key, taken, rule, position, loc))
                free[loc] -= taken
                wanted -= taken
                if wanted == 0:
                    break
    return fills

"""The fill (docs/spec.md §2): which waiting lines get how many of the free units, in rank order.

The walk is fed the waiting lines already in rank order (priority DESC, placed_at ASC,
sequence ASC). It may be fed in chunks: pass the previous chunk's `waiting_ahead` and
`free_after` to the next call and stop reading once `stopped` is true.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class WaitingLine:
    key: int  # the line's identity (its sequence number)
    backordered: int  # units still waiting, > 0
    allow_partial: bool


@dataclass(frozen=True, slots=True)
class Fill:
    key: int
    quantity: int
    rule: FillRule
    queue_position: int  # 1-based place among the waiting lines when the unit(s) were given


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
) -> FillOutcome:
    """Walks `waiting` (in rank order) handing out at most `free` units."""
    fills: list[Fill] = []
    for line in waiting:
        if free <= 0:
            return FillOutcome(tuple(fills), free, waiting_ahead, True, skipped)
        position = waiting_ahead + 1
        if line.backordered <= free:
            rule = FillRule.WHOLE_AFTER_SKIP if skipped else FillRule.WHOLE
            fills.append(Fill(line.key, line.backordered, rule, position))
            free -= line.backordered
        elif line.allow_partial:
            fills.append(Fill(line.key, free, FillRule.PARTIAL, position))
            free = 0
            waiting_ahead += 1
        elif policy is FillPolicy.STRICT:
            return FillOutcome(tuple(fills), free, waiting_ahead, True, skipped)
        else:
            skipped = True
            waiting_ahead += 1
    return FillOutcome(tuple(fills), free, waiting_ahead, free <= 0, skipped)

"""The stock rules: what an adjustment and an issue do to on hand.

Plain functions over plain numbers; the handlers load, call these, and write the result.
"""

from __future__ import annotations

from dataclasses import dataclass


class WouldGoNegative(Exception):
    """An adjustment would take on hand below zero."""

    def __init__(self, on_hand: int, delta: int) -> None:
        super().__init__(f"on hand is {on_hand}; a delta of {delta} would make it negative")
        self.on_hand = on_hand
        self.delta = delta


def adjusted(on_hand: int, delta: int) -> int:
    """On hand after a signed adjustment; never below zero."""
    after = on_hand + delta
    if after < 0:
        raise WouldGoNegative(on_hand, delta)
    return after


@dataclass(frozen=True)
class Issue:
    """Units taken from on hand for a fulfillment, and those that were not there."""

    issued: int
    shortfall: int
    on_hand_after: int


def issue(on_hand: int, requested: int) -> Issue:
    """Issues what is on hand, at most `requested`; the rest is a shortfall (a discrepancy
    between the books and the shelf that people must look at), never a negative on hand."""
    issued = min(on_hand, requested)
    return Issue(issued=issued, shortfall=requested - issued, on_hand_after=on_hand - issued)

"""Shrinkage (docs/spec.md §2): which active reservations give units back when a negative
adjustment is larger than the free units."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Held:
    key: int  # the line's identity
    reserved: int  # units it holds, > 0


@dataclass(frozen=True, slots=True)
class Revocation:
    key: int
    quantity: int


def revoke(held_lowest_rank_first: Iterable[Held], units: int) -> tuple[list[Revocation], int]:
    """Takes `units` back from the lines (fed lowest rank first: lowest priority, newest).
    Returns the revocations and the units no reservation could cover."""
    taken: list[Revocation] = []
    for line in held_lowest_rank_first:
        if units <= 0:
            break
        if line.reserved <= 0:  # holds nothing where the units are taken
            continue
        quantity = min(line.reserved, units)
        taken.append(Revocation(line.key, quantity))
        units -= quantity
    return taken, units

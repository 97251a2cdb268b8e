"""The completion step's plan in one SKU (docs/spec.md §10, §8.A): a ship-complete order's
lines take only free units no higher-ranked waiting line could take, and a higher-ranked
line competes only for units at the locations it can take from. Hand-worked examples, then
the plan against a brute-force search on small generated cases."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.completion import Demand, Take, max_flow, plan

A, B, C = "A", "B", "C"
ORDER = [A, B, C]


def test_one_location_is_the_plain_arithmetic() -> None:
    # 5 free, 3 wanted by lines ahead: 2 are the order's to take.
    assert plan([(3, None)], [(2, None)], {A: 5}, [A]) == [Take(0, A, 2)]
    assert plan([(3, None)], [(3, None)], {A: 5}, [A]) is None


def test_a_line_ahead_competes_only_at_its_own_locations() -> None:
    # The line ahead may take only from A (none free there): B's units are the order's.
    assert plan([(5, frozenset({A}))], [(2, None)], {B: 2}, [A, B]) == [Take(0, B, 2)]
    # A line ahead that may take from anywhere would take them.
    assert plan([(5, None)], [(2, None)], {B: 2}, [A, B]) is None


def test_the_order_is_moved_off_the_units_a_line_ahead_needs() -> None:
    # Fill order would give the order's line A's 2 units, which the line ahead (A only)
    # could take; B's 2 serve the order instead.
    assert plan([(2, frozenset({A}))], [(2, None)], {A: 2, B: 2}, [A, B]) == [Take(0, B, 2)]


def test_the_order_line_keeps_to_its_locations() -> None:
    assert plan([], [(2, frozenset({B}))], {A: 5, B: 1}, [A, B]) is None
    assert plan([], [(1, frozenset({B})), (4, None)], {A: 5, B: 1}, [A, B]) == [
        Take(0, B, 1),
        Take(1, A, 4),
    ]


def test_max_flow_moves_units_along_a_path() -> None:
    # First demand takes A greedily; the second (A only) needs it moved to B.
    total, flow = max_flow([(1, None), (1, frozenset({A}))], {A: 1, B: 1}, [A, B])
    assert total == 2
    assert flow[1][A] == 1 and flow[0][B] == 1


def brute_max(demands: list[Demand], supply: dict[str, int]) -> int:
    """The most units carried, by trying every split of every demand over the locations."""
    locs = sorted(supply)
    options = []
    for units, where in demands:
        allowed = [loc for loc in locs if where is None or loc in where]
        options.append(
            [
                dict(zip(allowed, split, strict=True))
                for split in itertools.product(range(units + 1), repeat=len(allowed))
                if sum(split) <= units
            ]
        )
    best = 0
    for choice in itertools.product(*options):
        used = {loc: sum(c.get(loc, 0) for c in choice) for loc in locs}
        if all(used[loc] <= supply[loc] for loc in locs):
            best = max(best, sum(used.values()))
    return best


demand = st.tuples(
    st.integers(0, 3),
    st.one_of(st.none(), st.sets(st.sampled_from(ORDER), min_size=1).map(frozenset)),
)
supplies = st.fixed_dictionaries({loc: st.integers(0, 3) for loc in ORDER})


@settings(max_examples=150, deadline=None)
@given(st.lists(demand, max_size=3), st.lists(demand, min_size=1, max_size=2), supplies)
def test_the_plan_matches_brute_force(
    ahead: list[Demand], lines: list[Demand], free: dict[str, int]
) -> None:
    could_take = brute_max(ahead, free)
    got = plan(ahead, lines, free, ORDER)
    wanted = sum(units for units, _ in lines)
    possible = brute_max([*ahead, *lines], free) == could_take + wanted
    assert (got is not None) == possible
    if got is None:
        return
    # Every line in full, only from its locations, never more than is free, and the lines
    # ahead can still take all they could.
    for index, (units, where) in enumerate(lines):
        assert sum(t.units for t in got if t.line == index) == units
        assert all(where is None or t.location_id in where for t in got if t.line == index)
    left = dict(free)
    for t in got:
        left[t.location_id] -= t.units
    assert all(units >= 0 for units in left.values())
    assert brute_max(ahead, left) == could_take
    # The one answer: of all valid plans, the one taking the most at the first line's first
    # location in fill order, then its next, and so on (a lexicographic maximum).
    assert vector(got, len(lines)) == max(valid_plans(ahead, lines, free, could_take))


def vector(takes: list[Take], count: int) -> tuple[int, ...]:
    """A plan as units per (line, location in fill order)."""
    units = {(t.line, t.location_id): t.units for t in takes}
    return tuple(units.get((i, loc), 0) for i in range(count) for loc in ORDER)


def valid_plans(
    ahead: list[Demand], lines: list[Demand], free: dict[str, int], could_take: int
) -> list[tuple[int, ...]]:
    """Every plan serving each line in full from its locations that leaves the lines ahead
    all they could take."""
    per_line = []
    for units, where in lines:
        per_line.append(
            [
                split
                for split in itertools.product(range(units + 1), repeat=len(ORDER))
                if sum(split) == units
                and all(
                    n == 0 or where is None or loc in where
                    for n, loc in zip(split, ORDER, strict=True)
                )
            ]
        )
    found = []
    for choice in itertools.product(*per_line):
        left = {loc: free[loc] - sum(c[k] for c in choice) for k, loc in enumerate(ORDER)}
        if all(n >= 0 for n in left.values()) and brute_max(ahead, left) == could_take:
            found.append(tuple(n for c in choice for n in c))
    return found

"""The fill over several locations (docs/spec.md §8) on plain data, against a small
reference written here from the rules' words: eligibility, the location strategy, STRICT
blocking only the blocker's locations, SKIP, whole lines from several locations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.allocation.domain.eta import Arrival, estimate, estimate_at_locations
from services.allocation.domain.fill import (
    Fill,
    FillPolicy,
    FillRule,
    LocationStrategy,
    LocationsWalk,
    Place,
    WaitingLine,
    fill,
    fill_locations,
)

STRICT, SKIP = FillPolicy.STRICT, FillPolicy.SKIP
RANK, MOST = LocationStrategy.FILL_RANK, LocationStrategy.MOST_STOCK
PLACES = {"a": Place("a", 0), "b": Place("b", 1), "c": Place("c", 1)}


def walk(
    free: dict[str, int], policy: FillPolicy = STRICT, strategy: LocationStrategy = RANK
) -> LocationsWalk:
    places = {loc: PLACES[loc] for loc in free}
    return LocationsWalk(dict(free), places, policy, strategy)


def line(key: int, qty: int, partial: bool = False, at: str | None = None) -> WaitingLine:
    return WaitingLine(key, qty, partial, None if at is None else frozenset(at))


def taken(fills: list[Fill]) -> list[tuple[int, str, int]]:
    return [(f.key, f.location_id, f.quantity) for f in fills]


def test_fill_rank_order_and_a_whole_line_from_several_locations() -> None:
    w = walk({"a": 2, "b": 3})
    fills = fill_locations(w, [line(1, 4), line(2, 1)])
    assert taken(fills) == [(1, "a", 2), (1, "b", 2), (2, "b", 1)]
    assert {f.rule for f in fills} == {FillRule.WHOLE}
    assert w.free == {"a": 0, "b": 0}


def test_most_stock_takes_from_the_fullest_location_first() -> None:
    w = walk({"a": 2, "b": 5}, strategy=MOST)
    assert taken(fill_locations(w, [line(1, 3), line(2, 3)])) == [
        (1, "b", 3),
        (2, "a", 2),
        (2, "b", 1),
    ]


def test_a_line_takes_only_from_its_locations() -> None:
    w = walk({"a": 5, "b": 5})
    fills = fill_locations(w, [line(1, 3, at="b"), line(2, 9, partial=True, at="a")])
    assert taken(fills) == [(1, "b", 3), (2, "a", 5)]


def test_strict_blocks_only_the_blockers_locations() -> None:
    w = walk({"a": 2, "b": 2})
    fills = fill_locations(w, [line(1, 5, at="a"), line(2, 1), line(3, 1, at="a")])
    # Line 1 does not fit at a: a is blocked for the lines after it; b still serves.
    assert taken(fills) == [(2, "b", 1)]
    assert w.blocked == {"a"}
    assert fills[0].queue_position == 2


def test_skip_passes_over_and_marks_the_rule() -> None:
    w = walk({"a": 2}, policy=SKIP)
    fills = fill_locations(w, [line(1, 5), line(2, 2)])
    assert taken(fills) == [(2, "a", 2)]
    assert fills[0].rule is FillRule.WHOLE_AFTER_SKIP


def test_the_walk_stops_when_every_location_with_units_is_blocked() -> None:
    w = walk({"a": 2, "b": 0})
    assert fill_locations(w, [line(1, 5)]) == []
    assert w.stopped


@dataclass
class RefLine:
    key: int
    qty: int
    partial: bool
    at: frozenset[str] | None


def reference(
    lines: list[RefLine],
    free: dict[str, int],
    ranks: dict[str, int],
    policy: FillPolicy,
    strategy: LocationStrategy,
) -> list[tuple[int, str, int]]:
    """The rules read literally, one line at a time over the whole queue."""
    free = dict(free)
    closed: set[str] = set()
    out: list[tuple[int, str, int]] = []
    for ln in lines:
        if all(free[loc] == 0 or loc in closed for loc in free):
            break
        mine = [loc for loc in free if loc not in closed and (ln.at is None or loc in ln.at)]
        have = sum(free[loc] for loc in mine)
        if have == 0:
            continue
        if have < ln.qty and not ln.partial:
            if policy is STRICT:
                closed |= set(mine)
            continue
        want = min(ln.qty, have)
        while want:
            if strategy is MOST:
                loc = min((loc for loc in mine if free[loc]), key=lambda x: (-free[x], ranks[x], x))
            else:
                loc = min((loc for loc in mine if free[loc]), key=lambda x: (ranks[x], x))
            n = min(want, free[loc])
            out.append((ln.key, loc, n))
            free[loc] -= n
            want -= n
    return out


ref_lines = st.lists(
    st.tuples(
        st.integers(1, 12),
        st.booleans(),
        st.one_of(st.none(), st.frozensets(st.sampled_from("abc"), min_size=1)),
    ),
    max_size=25,
)
frees = st.fixed_dictionaries(
    {"a": st.integers(0, 30), "b": st.integers(0, 30), "c": st.integers(0, 30)}
)


@given(
    ref_lines,
    frees,
    st.sampled_from(FillPolicy),
    st.sampled_from(LocationStrategy),
    st.integers(1, 7),
)
def test_fill_locations_gives_what_the_reference_gives_in_any_chunks(
    specs: list[tuple[int, bool, frozenset[str] | None]],
    free: dict[str, int],
    policy: FillPolicy,
    strategy: LocationStrategy,
    chunk: int,
) -> None:
    refs = [RefLine(i, q, p, at) for i, (q, p, at) in enumerate(specs, 1)]
    expected = reference(refs, free, {k: v.fill_rank for k, v in PLACES.items()}, policy, strategy)
    w = walk(free, policy, strategy)
    waiting = [WaitingLine(r.key, r.qty, r.partial, r.at) for r in refs]
    got: list[Fill] = []
    for start in range(0, len(waiting), chunk):
        if w.stopped:
            break
        got += fill_locations(w, waiting[start : start + chunk])
    assert taken(got) == expected
    for loc, units in free.items():
        assert 0 <= w.free[loc] == units - sum(f.quantity for f in got if f.location_id == loc)


@given(
    st.lists(st.tuples(st.integers(1, 12), st.booleans()), max_size=25),
    st.integers(0, 60),
    st.sampled_from(FillPolicy),
)
def test_one_location_walks_as_the_single_location_fill(
    specs: list[tuple[int, bool]], free: int, policy: FillPolicy
) -> None:
    waiting = [WaitingLine(i, q, p) for i, (q, p) in enumerate(specs, 1)]
    single = fill(waiting, free, policy)
    w = LocationsWalk({"default": free}, {"default": Place("default", 0)}, policy)
    assert fill_locations(w, waiting) == list(single.fills)
    assert w.free["default"] == single.free_after


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_etas_count_only_inbound_at_a_lines_locations() -> None:
    soon, later = NOW + timedelta(days=1), NOW + timedelta(days=5)
    arrivals = [Arrival(soon, 3, "a"), Arrival(later, 3, "b")]
    waiting = [line(1, 3, at="b"), line(2, 3)]
    etas = estimate_at_locations(waiting, {}, {"a": 0, "b": 1}, arrivals, STRICT, RANK, NOW)
    # Line 1 waits for b's inbound; line 2 (anywhere) takes a's, which line 1 cannot use.
    assert etas == {1: later, 2: soon}


@given(
    st.lists(st.tuples(st.integers(1, 12), st.booleans()), max_size=15),
    st.integers(0, 20),
    st.lists(st.tuples(st.integers(0, 10), st.integers(1, 15)), max_size=5),
    st.sampled_from(FillPolicy),
)
def test_etas_at_one_location_are_the_single_walks(
    specs: list[tuple[int, bool]],
    free: int,
    inbound: list[tuple[int, int]],
    policy: FillPolicy,
) -> None:
    waiting = [WaitingLine(i, q, p) for i, (q, p) in enumerate(specs, 1)]
    arrivals = [Arrival(NOW + timedelta(days=d), q) for d, q in inbound]
    assert estimate_at_locations(
        waiting, {"default": free}, {"default": 0}, arrivals, policy, RANK, NOW
    ) == estimate(waiting, free, arrivals, policy, NOW)

"""The ETA walk and the shrinkage plan (docs/spec.md §2) on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.allocation.domain.eta import Arrival, estimate, strict_eta_behind
from services.allocation.domain.fill import FillPolicy, WaitingLine
from services.allocation.domain.shrinkage import Held, Revocation, revoke

NOW = datetime(2030, 1, 1, tzinfo=UTC)
D1, D2 = NOW + timedelta(days=1), NOW + timedelta(days=5)
STRICT, SKIP = FillPolicy.STRICT, FillPolicy.SKIP


def lines(*specs: tuple[int, bool]) -> list[WaitingLine]:
    return [WaitingLine(i, qty, partial) for i, (qty, partial) in enumerate(specs, 1)]


@pytest.mark.parametrize(
    ("queue", "free", "arrivals", "policy", "expected"),
    [
        # Five lines, two inbounds: 4 units on day 1, 6 on day 5.
        (
            lines((2, False), (3, False), (1, False), (4, True), (9, False)),
            1,
            [Arrival(D2, 6), Arrival(D1, 4)],  # order given does not matter
            STRICT,
            # free 1 + 4 = 5: lines 1 (2) and 2 (3) on day 1; + 6 = 6: line 3 (1), 4 (4).
            {1: D1, 2: D1, 3: D2, 4: D2},
        ),
        # No inbound: nothing known.
        (lines((2, False)), 1, [], STRICT, {}),
        # STRICT: a whole-only line that the supply never covers blocks all behind it.
        (lines((20, False), (1, False)), 0, [Arrival(D1, 5)], STRICT, {}),
        # SKIP passes over it.
        (lines((20, False), (1, False)), 0, [Arrival(D1, 5)], SKIP, {2: D1}),
        # SKIP: the skipped line gets first pick of the next arrival.
        (
            lines((5, False), (2, False), (2, False)),
            0,
            [Arrival(D1, 3), Arrival(D2, 5)],
            SKIP,
            # day 1: 3 units, line 1 skipped, line 2 takes 2 (1 left, line 3 skipped);
            # day 5: 1 + 5 = 6: line 1 takes 5, line 3 needs 2 with 1 left: unknown.
            {2: D1, 1: D2},
        ),
        # A partial line completes when its last unit arrives.
        (lines((6, True)), 2, [Arrival(D1, 2), Arrival(D2, 2)], STRICT, {1: D2}),
    ],
)
def test_eta_examples(
    queue: list[WaitingLine],
    free: int,
    arrivals: list[Arrival],
    policy: FillPolicy,
    expected: dict[int, datetime],
) -> None:
    assert estimate(queue, free, arrivals, policy, NOW) == expected


def test_an_overdue_inbound_keeps_its_date() -> None:
    late = NOW - timedelta(days=2)
    assert estimate(lines((1, False)), 0, [Arrival(late, 1)], STRICT, NOW) == {1: late}


def test_cancelling_an_inbound_moves_etas_later() -> None:
    queue = lines((3, False), (3, False))
    both = estimate(queue, 0, [Arrival(D1, 3), Arrival(D2, 3)], STRICT, NOW)
    later_only = estimate(queue, 0, [Arrival(D2, 3)], STRICT, NOW)
    assert both == {1: D1, 2: D2}
    assert later_only == {1: D2}


arrival_lists = st.lists(
    st.builds(
        Arrival, st.integers(1, 30).map(lambda d: NOW + timedelta(days=d)), st.integers(1, 9)
    ),
    max_size=4,
)
queues = st.lists(st.tuples(st.integers(1, 8), st.booleans()), max_size=12).map(
    lambda specs: lines(*specs)
)


@given(queues, st.integers(0, 5), arrival_lists)
def test_strict_eta_of_the_last_line_equals_the_full_walk(
    queue: list[WaitingLine], free: int, arrivals: list[Arrival]
) -> None:
    """What Allocate uses for a new last line: units ahead as one block, same answer."""
    if not queue:
        return
    *ahead, last = queue
    full = estimate(queue, free, arrivals, STRICT, NOW).get(last.key)
    quick = strict_eta_behind(sum(w.backordered for w in ahead), last, free, arrivals, NOW)
    assert quick == full


@given(queues, st.integers(0, 5), arrival_lists, st.sampled_from(FillPolicy))
def test_etas_never_exceed_the_supply_and_follow_rank_under_strict(
    queue: list[WaitingLine], free: int, arrivals: list[Arrival], policy: FillPolicy
) -> None:
    etas = estimate(queue, free, arrivals, policy, NOW)
    supply = free + sum(a.quantity for a in arrivals)
    assert sum(w.backordered for w in queue if w.key in etas) <= supply
    if policy is STRICT:
        known = [w.key in etas for w in queue]
        assert known == sorted(known, reverse=True)  # a known prefix, then unknown
        dates = [etas[w.key] for w in queue if w.key in etas]
        assert dates == sorted(dates)


@pytest.mark.parametrize(
    ("held", "units", "expected", "left"),
    [
        ([Held(9, 2), Held(8, 3)], 3, [Revocation(9, 2), Revocation(8, 1)], 0),
        ([Held(9, 2)], 2, [Revocation(9, 2)], 0),
        ([Held(9, 2)], 5, [Revocation(9, 2)], 3),  # more than reserved: the rest is reported
        ([], 4, [], 4),
        ([Held(9, 2), Held(8, 3)], 0, [], 0),
    ],
)
def test_shrinkage_takes_from_the_lowest_rank_first(
    held: list[Held], units: int, expected: list[Revocation], left: int
) -> None:
    assert revoke(held, units) == (expected, left)

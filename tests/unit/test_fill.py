"""The fill rule (docs/spec.md §2) on plain data: rank order, allow_partial, STRICT vs SKIP."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.allocation.domain.fill import Fill, FillPolicy, FillRule, WaitingLine, fill
from tests.support.reference_model import Model, ModelLine

STRICT, SKIP = FillPolicy.STRICT, FillPolicy.SKIP


def lines(*specs: tuple[int, bool]) -> list[WaitingLine]:
    """Waiting lines in rank order, keyed 1, 2, 3…: (backordered, allow_partial)."""
    return [WaitingLine(i, qty, partial) for i, (qty, partial) in enumerate(specs, 1)]


def taken(outcome_fills: tuple[Fill, ...]) -> dict[int, int]:
    return {f.key: f.quantity for f in outcome_fills}


@pytest.mark.parametrize(
    ("queue", "free", "policy", "expected", "free_after"),
    [
        # Rank order: the first lines take what they wait for.
        (lines((2, False), (3, False)), 5, STRICT, {1: 2, 2: 3}, 0),
        # More free than demand: everyone served, the rest stays free.
        (lines((2, False), (1, True)), 10, STRICT, {1: 2, 2: 1}, 7),
        # Zero free units: nothing happens.
        (lines((2, False)), 0, STRICT, {}, 0),
        # Empty queue: units stay free.
        ([], 4, SKIP, {}, 4),
        # allow_partial takes what there is.
        (lines((5, True), (1, False)), 3, STRICT, {1: 3}, 0),
        # Whole-only line that does not fit blocks everything below it under STRICT…
        (lines((5, False), (1, False), (1, True)), 3, STRICT, {}, 3),
        # …and is passed over under SKIP.
        (lines((5, False), (1, False), (1, True)), 3, SKIP, {2: 1, 3: 1}, 1),
        # A partial line ahead of a blocker still gets its share under STRICT.
        (lines((2, True), (5, False), (1, False)), 4, STRICT, {1: 2}, 2),
        # SKIP over several, then a partial one takes the rest.
        (lines((9, False), (8, False), (4, True)), 3, SKIP, {3: 3}, 0),
        # Exactly enough for a whole-only line.
        (lines((3, False), (1, False)), 3, STRICT, {1: 3}, 0),
    ],
)
def test_fill_table(
    queue: list[WaitingLine],
    free: int,
    policy: FillPolicy,
    expected: dict[int, int],
    free_after: int,
) -> None:
    outcome = fill(queue, free, policy)
    assert taken(outcome.fills) == expected
    assert outcome.free_after == free_after
    assert [f.key for f in outcome.fills] == sorted(expected)  # in rank order


def test_fill_records_rule_and_position_at_decision_time() -> None:
    outcome = fill(lines((9, False), (2, False), (4, True)), 5, SKIP)
    assert outcome.fills == (
        # Line 1 is passed over and still waits ahead: line 2 is second in the queue.
        Fill(2, 2, FillRule.WHOLE_AFTER_SKIP, 2),
        # Line 2 left the queue; line 3 is second behind line 1, and takes part.
        Fill(3, 3, FillRule.PARTIAL, 2),
    )
    assert outcome.stopped


def test_chunks_walk_like_one_queue() -> None:
    queue = lines((2, False), (9, False), (1, False), (3, True), (1, False), (2, False))
    whole = fill(queue, 6, SKIP)
    first = fill(queue[:3], 6, SKIP)
    rest = fill(
        queue[3:], first.free_after, SKIP, waiting_ahead=first.waiting_ahead, skipped=first.skipped
    )
    assert first.fills + rest.fills == whole.fills
    assert rest.free_after == whole.free_after


def test_stopped_says_when_no_later_line_can_be_served() -> None:
    assert fill(lines((1, False)), 1, STRICT).stopped  # free ran out
    assert fill(lines((5, False), (1, False)), 2, STRICT).stopped  # STRICT blocked
    assert not fill(lines((5, False), (1, False)), 2, SKIP).stopped  # SKIP: maybe later lines
    assert not fill(lines((1, False)), 2, STRICT).stopped  # queue ran out, units left


waiting_lines = st.lists(st.tuples(st.integers(1, 20), st.booleans()), max_size=30).map(
    lambda specs: lines(*specs)
)


@given(waiting_lines, st.integers(0, 200), st.sampled_from(FillPolicy))
def test_never_more_than_free_nor_more_than_waiting(
    queue: list[WaitingLine], free: int, policy: FillPolicy
) -> None:
    outcome = fill(queue, free, policy)
    by_key = {line.key: line for line in queue}
    assert sum(f.quantity for f in outcome.fills) + outcome.free_after == free
    assert outcome.free_after >= 0
    for f in outcome.fills:
        line = by_key[f.key]
        assert 0 < f.quantity <= line.backordered
        if not line.allow_partial:
            assert f.quantity == line.backordered  # whole-only lines are never split
    assert len({f.key for f in outcome.fills}) == len(outcome.fills)


@given(waiting_lines, st.integers(0, 200))
def test_strict_never_serves_below_a_waiting_line_that_fits(
    queue: list[WaitingLine], free: int
) -> None:
    outcome = fill(queue, free, STRICT)
    served = taken(outcome.fills)
    for i, line in enumerate(queue):
        still_waiting = line.backordered - served.get(line.key, 0)
        if still_waiting > 0:
            # Nobody ranked below a line still waiting got anything.
            assert not any(later.key in served for later in queue[i + 1 :])
            break


@given(waiting_lines, st.integers(0, 200), st.sampled_from(FillPolicy))
def test_fill_gives_what_the_reference_model_gives(
    queue: list[WaitingLine], free: int, policy: FillPolicy
) -> None:
    """Each fill (line, units, rule, queue position) and the units left, under SKIP as under
    STRICT, equal the plain reference model's walk of the same queue."""
    model = Model()
    model.policy, model.free = policy.value, free
    for line in queue:
        model.lines[str(line.key)] = ModelLine(
            str(line.key), line.backordered, 0, line.key, line.allow_partial
        )
    model.fill()
    outcome = fill(queue, free, policy)
    assert [(f.key, f.quantity, f.rule.value, f.queue_position) for f in outcome.fills] == [
        (int(d.line_id), d.quantity, d.rule, d.queue_position) for d in model.log
    ]
    assert outcome.free_after == model.free

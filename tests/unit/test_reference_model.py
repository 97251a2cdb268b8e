"""The reference model's location rules (docs/spec.md §8) on hand-worked examples: the model
is the oracle of the stateful and replica tests, so its own rules are pinned here. Then the
service's fill over locations (plain data) against the model on generated queues."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from services.allocation.domain.fill import (
    FillPolicy,
    LocationStrategy,
    LocationsWalk,
    Place,
    WaitingLine,
    fill_locations,
)
from tests.support.reference_model import (
    DEFAULT,
    LAST_RANK,
    Decision,
    Model,
    ModelLine,
    ModelOrder,
)


def model_with(*ranks: tuple[str, int]) -> Model:
    model = Model()
    for location_id, rank in ranks:
        model.put_location(location_id, rank, True)
    return model


def line(
    model: Model, line_id: str, quantity: int, *where: str, partial: bool = False
) -> ModelLine:
    made = ModelLine(line_id, quantity, 0, len(model.lines), partial, locations=where)
    model.lines[line_id] = made
    return made


def decided(model: Model) -> list[tuple[str, int, str, int, str]]:
    return [(d.line_id, d.quantity, d.rule, d.queue_position, d.location_id) for d in model.log]


def test_one_place_reads_and_writes_default() -> None:
    model = Model()
    model.free = 3
    first = line(model, "a", 2)
    model.fill()
    assert (model.free, model.free_at, first.reserved_at) == (1, {DEFAULT: 1}, {DEFAULT: 2})
    assert model.log == [Decision("a", 2, "WHOLE", 1, "STRICT", DEFAULT)]


def test_a_whole_only_line_combines_its_locations_in_rank_order() -> None:
    model = model_with(("east", 2), ("west", 1))
    model.free_at.update(east=3, west=2)
    combined = line(model, "a", 4)
    model.fill()
    assert combined.reserved_at == {"west": 2, "east": 2}
    assert decided(model) == [("a", 2, "WHOLE", 1, "west"), ("a", 2, "WHOLE", 1, "east")]


def test_most_stock_takes_the_freest_location_first() -> None:
    model = model_with(("east", 2), ("west", 1))
    model.strategy = "MOST_STOCK"
    model.free_at.update(east=3, west=2)
    line(model, "a", 4)
    model.fill()
    assert decided(model) == [("a", 3, "WHOLE", 1, "east"), ("a", 1, "WHOLE", 1, "west")]


def test_strict_blocks_only_the_blocking_lines_locations() -> None:
    model = model_with(("east", 1), ("west", 2))
    model.free_at.update(east=2, west=2)
    line(model, "big", 5, "east")  # does not fit at east: east is blocked
    line(model, "anywhere", 3)  # 2 free at west do not cover 3: blocks every location
    line(model, "west-only", 1, "west")  # so west is blocked for it
    model.fill()
    assert decided(model) == []


def test_strict_serves_lines_below_a_blocked_line_elsewhere() -> None:
    model = model_with(("east", 1), ("west", 2))
    model.free_at.update(east=2, west=2)
    line(model, "big", 5, "east")
    line(model, "east-only", 1, "east")
    line(model, "west-only", 2, "west")
    model.fill()
    assert decided(model) == [("west-only", 2, "WHOLE", 3, "west")]


def test_skip_passes_over_and_marks_the_rest() -> None:
    model = model_with(("east", 1))
    model.policy = "SKIP"
    model.free_at.update(east=2)
    line(model, "big", 5)
    line(model, "small", 2)
    model.fill()
    assert decided(model) == [("small", 2, "WHOLE_AFTER_SKIP", 2, "east")]


def test_a_line_with_nothing_free_where_it_ships_waits_without_blocking() -> None:
    model = model_with(("east", 1), ("west", 2))
    model.free_at.update(west=1)
    line(model, "east-only", 1, "east")
    line(model, "any", 1)
    model.fill()
    assert decided(model) == [("any", 1, "WHOLE", 2, "west")]


def test_shrinkage_revokes_only_there_then_the_line_fills_elsewhere() -> None:
    model = model_with(("east", 1), ("west", 2))
    model.free_at.update(east=2)
    first, second = line(model, "a", 1), line(model, "b", 1)
    model.fill()
    model.free_at["west"] = 1
    model.supply = 3
    model.shrink(1, "east")
    # Lowest rank first: b loses its unit at east, then takes west's.
    assert first.reserved_at == {"east": 1} and second.reserved_at == {"west": 1}
    assert decided(model)[2:] == [("b", 1, "REVOKED", 0, "east"), ("b", 1, "WHOLE", 1, "west")]
    assert model.locations["west"].active
    model.shrink(3, "west")
    assert (model.unmatched, model.free_at["west"]) == (2, 0)


def test_a_transfer_takes_at_the_source_and_lands_at_the_destination() -> None:
    model = model_with(("east", 1))
    model.free_at.update(east=1)
    waiting = line(model, "a", 3, "west")
    model.transfer(1, "east", "west")
    assert model.locations["west"].fill_rank == LAST_RANK  # first heard of in the event
    assert model.free_at["east"] == 0 and waiting.reserved == 0
    model.transfer(2, DEFAULT, "west")  # nothing at default: unmatched there
    assert waiting.reserved_at == {"west": 3} and model.unmatched == 2


def test_an_inactive_location_promises_nothing_until_reactivated() -> None:
    model = model_with(("east", 1))
    model.put_location("east", 1, False)
    model.receive(2, "east")
    waiting = line(model, "a", 2)
    model.fill()
    assert waiting.reserved == 0
    model.put_location("east", 1, True)
    assert waiting.reserved_at == {"east": 2}


def test_fulfil_names_a_location_when_the_line_holds_several() -> None:
    model = model_with(("east", 1))
    model.free_at.update(east=1, default=1)
    held = line(model, "a", 2)
    model.fill()
    assert held.reserved_at == {DEFAULT: 1, "east": 1}
    assert model.fulfil_refusal(held, 1, "") is not None
    assert model.fulfil_refusal(held, 2, "east") is not None
    assert model.fulfil(held, 1, "east") == "east"
    assert model.fulfil_refusal(held, 1, "") is None
    assert model.fulfil(held, 1) == DEFAULT
    assert held.status == "FULFILLED"


# --- the service's fill over locations against the model ----------------------------------

NAMES = ("a", "b", "c", "off")  # "off" is inactive: the walk never sees it


@st.composite
def walks(draw: st.DrawFn) -> tuple[dict[str, int], dict[str, int], list[WaitingLine]]:
    ranks = {n: draw(st.integers(-1, 1)) for n in NAMES}
    free = {n: draw(st.integers(0, 6)) for n in NAMES}
    lines = draw(
        st.lists(
            st.builds(
                WaitingLine,
                key=st.just(0),
                backordered=st.integers(1, 6),
                allow_partial=st.booleans(),
                locations=st.none() | st.frozensets(st.sampled_from(NAMES), min_size=1),
            ),
            max_size=8,
        )
    )
    return ranks, free, [replace(ln, key=i) for i, ln in enumerate(lines)]


@settings(max_examples=300)
@given(walks(), st.sampled_from(FillPolicy), st.sampled_from(LocationStrategy))
def test_the_services_fill_over_locations_gives_what_the_model_gives(
    drawn: tuple[dict[str, int], dict[str, int], list[WaitingLine]],
    policy: FillPolicy,
    strategy: LocationStrategy,
) -> None:
    """services/allocation/domain/fill.py's walk over locations and the model, written
    apart from it, give the same units to the same lines at the same locations, with the
    same rules and queue positions, and leave the same units free."""
    ranks, free, queue = drawn
    model = Model()
    model.policy, model.strategy = policy.value, strategy.value
    for n in NAMES:
        model.put_location(n, ranks[n], n != "off")
    model.free_at.update(free)
    for ln in queue:
        model.lines[str(ln.key)] = ModelLine(
            str(ln.key),
            ln.backordered,
            0,
            ln.key,
            ln.allow_partial,
            locations=tuple(sorted(ln.locations or ())),
        )
    model.fill()
    active = {n: Place(n, ranks[n]) for n in NAMES if n != "off"}
    walk = LocationsWalk({n: free[n] for n in active}, active, policy, strategy)
    fills = fill_locations(walk, queue)
    assert [(f.key, f.quantity, f.rule.value, f.queue_position, f.location_id) for f in fills] == [
        (int(d.line_id), d.quantity, d.rule, d.queue_position, d.location_id) for d in model.log
    ]
    assert walk.free == {n: model.free_at[n] for n in active}


# --- ship-complete orders (docs/spec.md §10) ---------------------------------------------


def ship_complete(model: Model, order_id: str, *lines: tuple[str, int, tuple[str, ...]]) -> None:
    """A ship-complete order of `lines` (line_id, quantity, locations), placed as
    AllocateOrder places it: every line first, then the completion step."""
    seq = len(model.lines)
    order = ModelOrder(order_id, 0, seq, True, [line_id for line_id, _, _ in lines])
    model.orders[order_id] = order
    for k, (line_id, quantity, where) in enumerate(lines):
        model.lines[line_id] = ModelLine(
            line_id, quantity, 0, seq + k, False, locations=where, held_for=order_id
        )
    model.try_complete(order)
    model.fill()


def test_a_ship_complete_order_takes_all_its_units_at_once_or_none() -> None:
    model = Model()
    model.free = 4
    ship_complete(model, "o", ("a", 2, ()), ("b", 3, ()))
    assert [ln.reserved for ln in model.lines.values()] == [0, 0]
    later = line(model, "p", 1)  # a plain line behind it is served: the order never blocks
    model.fill()
    assert later.reserved == 1 and model.free == 3
    model.receive(2)
    assert [model.lines[x].reserved for x in "ab"] == [2, 3]
    assert model.order_status(model.orders["o"]) == "READY"
    assert decided(model)[-2:] == [("a", 2, "WHOLE", 1, DEFAULT), ("b", 3, "WHOLE", 2, DEFAULT)]


def test_a_line_ahead_holds_back_only_the_units_at_its_locations() -> None:
    model = model_with(("east", 0), ("west", 1))
    ahead = line(model, "p", 5, "east")
    model.receive(2, "west")
    assert ahead.reserved == 0 and model.free_at["west"] == 2
    ship_complete(model, "o", ("a", 2, ()))
    assert model.lines["a"].reserved_at == {"west": 2}
    # A line ahead that may take from anywhere holds them back.
    other = model_with(("east", 0), ("west", 1))
    line(other, "p", 5)
    other.receive(2, "west")
    ship_complete(other, "o", ("a", 2, ()))
    assert other.lines["a"].reserved == 0


def test_shrinkage_returns_a_ready_order_to_waiting_whole() -> None:
    model = Model()
    model.free = 3
    ship_complete(model, "o", ("a", 1, ()), ("b", 2, ()))
    assert model.order_status(model.orders["o"]) == "READY"
    model.shrink(1)
    # b (ranked last) lost a unit; the order gave back every unit it held.
    assert [model.lines[x].reserved for x in "ab"] == [0, 0] and model.free == 2
    assert model.order_status(model.orders["o"]) == "WAITING"
    assert model.cancel_order(model.orders["o"]) == {"a": 0, "b": 0}
    assert model.order_status(model.orders["o"]) == "CANCELLED"

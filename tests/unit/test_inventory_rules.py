"""The stock rules and the page tokens, as plain functions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common import paging
from services.common.errors import InvalidArgument
from services.inventory.domain import stock as rules
from services.inventory.handlers import TransferStock


@pytest.mark.parametrize(
    ("on_hand", "requested", "issued", "shortfall", "after"),
    [
        (10, 3, 3, 0, 7),
        (3, 3, 3, 0, 0),
        (2, 5, 2, 3, 0),
        (0, 4, 0, 4, 0),
    ],
)
def test_issue_takes_what_is_there_and_records_the_rest(
    on_hand: int, requested: int, issued: int, shortfall: int, after: int
) -> None:
    assert rules.issue(on_hand, requested) == rules.Issue(issued, shortfall, after)


@given(st.integers(0, 10**9), st.integers(1, 10**9))
def test_issue_never_goes_negative_and_accounts_for_every_unit(
    on_hand: int, requested: int
) -> None:
    outcome = rules.issue(on_hand, requested)
    assert outcome.on_hand_after >= 0
    assert outcome.issued + outcome.shortfall == requested
    assert on_hand - outcome.issued == outcome.on_hand_after


@pytest.mark.parametrize(("on_hand", "delta", "after"), [(5, -5, 0), (5, 3, 8), (0, 1, 1)])
def test_adjustment_within_on_hand(on_hand: int, delta: int, after: int) -> None:
    assert rules.adjusted(on_hand, delta) == after


def test_adjustment_below_zero_is_refused() -> None:
    with pytest.raises(rules.WouldGoNegative) as caught:
        rules.adjusted(2, -3)
    assert (caught.value.on_hand, caught.value.delta) == (2, -3)


def test_page_token_round_trip_and_binding_to_its_query() -> None:
    token = paging.encode([42, "po-1"], ["movements", "SKU-1"])
    assert paging.decode(token, ["movements", "SKU-1"], (int, str)) == [42, "po-1"]
    assert paging.decode("", ["movements", "SKU-1"], (int, str)) == []
    with pytest.raises(InvalidArgument, match="different query"):
        paging.decode(token, ["movements", "SKU-2"], (int, str))
    with pytest.raises(InvalidArgument) as wrong_types:
        paging.decode(token, ["movements", "SKU-1"], (str, str))
    assert wrong_types.value.field == "page_token"


@pytest.mark.parametrize("token", ["%%%", "e30", "bm90IGpzb24", "W10", "eyJ2IjoxfQ"])
def test_malformed_page_tokens_are_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.decode(token, ["q"], (int,))
    assert caught.value.field == "page_token"


@pytest.mark.parametrize(("asked", "served"), [(0, 100), (1, 1), (1000, 1000), (5000, 1000)])
def test_page_size(asked: int, served: int) -> None:
    assert paging.page_size(asked) == served


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument):
        paging.page_size(-1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"transfer_id": ""}, "transfer_id"),
        ({"from_location_id": ""}, "from_location_id"),
        ({"to_location_id": "bad id"}, "to_location_id"),
        ({"to_location_id": "default"}, "to_location_id"),  # the source itself
        ({"quantity": 0}, "quantity"),
    ],
)
def test_transfer_command_names_the_bad_field(changes: dict[str, object], field: str) -> None:
    good = TransferStock("t-1", "SKU-1", "default", "north", 1)
    assert good.validated() is good
    with pytest.raises(InvalidArgument) as caught:
        replace(good, **changes).validated()  # type: ignore[arg-type]
    assert caught.value.field == field

"""Page tokens (services.common.paging): signed with the deployment's key, and every value
range-checked even when the signature is good."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from services.common import paging
from services.common.errors import InvalidArgument


@pytest.fixture
def own_key() -> Iterator[None]:
    """The test changes the module's key: put the process's back afterwards."""
    before = paging._key
    yield
    paging.use_key(before)


def signed(payload: dict[str, object]) -> str:
    raw = json.dumps(payload).encode()
    return f"{paging._b64(raw)}.{paging._b64(paging._mac(raw))}"


def test_tokens_are_signed_with_the_deployment_key(own_key: None) -> None:
    query = ["inbound", "SKU-1", False]
    when = datetime(2026, 12, 1, 9, tzinfo=UTC)
    token = paging.encode([when, "po-1"], query)
    assert paging.decode(token, query, (datetime, str)) == [when, "po-1"]
    body, _, _ = token.partition(".")
    with pytest.raises(InvalidArgument):
        paging.decode(body, query, (datetime, str))  # signature dropped
    paging.use_key(b"another deployment's key")
    with pytest.raises(InvalidArgument) as foreign:
        paging.decode(token, query, (datetime, str))
    assert foreign.value.field == "page_token"


def test_a_short_key_is_refused(own_key: None) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        paging.use_key(b"short")


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (datetime, "9999-12-31T23:59:59-23:59"),  # beyond year 9999 in UTC
        (datetime, "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        (datetime, "2026-12-01T09:00:00"),  # naive
        (datetime, "soon"),
        (int, 2**63),
        (int, True),
        (int, "1"),
        (str, "a\x00b"),
        (str, "x" * 10_000),
        (str, 7),
    ],
)
def test_signed_values_out_of_range_are_refused(kind: type, value: object) -> None:
    """Even a correctly signed token (a leaked key) cannot carry a value its column cannot
    take."""
    query = ["q"]
    token = signed({"v": 2, "a": [value], "q": paging._fingerprint(query)})
    with pytest.raises(InvalidArgument) as caught:
        paging.decode(token, query, (kind,))
    assert caught.value.field == "page_token"

"""Opaque page tokens for keyset pagination, and the page-size rule every List RPC shares.

A token carries the sort key of the last row served and a fingerprint of the query's filter,
so a client cannot (by mistake) continue one listing with another listing's token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_VERSION = 1


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default; above the maximum is served as the maximum (callers page on)."""
    if value < 0:
        raise InvalidArgument(field, f"is {value}; use 1-{MAX_PAGE_SIZE}, or 0 for the default")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(query: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(query)).encode()).hexdigest()[:16]


def encode(after: Sequence[Any], query: Sequence[Any]) -> str:
    """A token for the page after the row whose sort key is `after` (JSON-able values)."""
    raw = json.dumps({"v": _VERSION, "a": list(after), "q": _fingerprint(query)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(
    token: str, query: Sequence[Any], types: Sequence[type], field: str = "page_token"
) -> list[Any]:
    """The sort key in `token` ([] for an empty token). A token that is not one of ours, or
    was made for another query, is INVALID_ARGUMENT."""
    if not token:
        return []
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        valid = (
            isinstance(data, dict)
            and data.get("v") == _VERSION
            and isinstance(data.get("a"), list)
            and len(data["a"]) == len(types)
            and all(type(value) is kind for value, kind in zip(data["a"], types, strict=True))
            # Integers go to bigint columns.
            and all(-(2**63) <= v < 2**63 for v in data["a"] if isinstance(v, int))
            and all("\x00" not in v for v in data["a"] if isinstance(v, str))
        )
    except (ValueError, UnicodeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidArgument(
            field, "is not a token this service issued; pass next_page_token unchanged"
        )
    if data.get("q") != _fingerprint(query):
        raise InvalidArgument(
            field, "was issued for a different query; repeat the same filter to page on"
        )
    after: list[Any] = data["a"]
    return after

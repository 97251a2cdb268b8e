"""Opaque page tokens for keyset pagination, and the page-size rule every List RPC shares.

A token carries the sort key of the last row served and a fingerprint of the query's filter,
so a client cannot (by mistake) continue one listing with another listing's token. It is
signed (HMAC-SHA256) with the deployment's page-token key, so a client cannot make one up
either (docs/spec.md §6): a token that was altered, made by hand, or issued by another
deployment is INVALID_ARGUMENT naming `page_token`. Every decoded value is range-checked as
well, so even a token signed with a leaked key cannot reach the database with a value it
cannot take.

The key is one random secret per deployment, kept in each service's own database (made at
migrate time, `ensure_key`) and loaded by `serve` at start-up (`use_key`): every replica of a
service signs with the same key without a setting to distribute, and a token of one replica
is good on another. A process that never loads it (tests calling handlers directly) signs
with a random key of its own, so its tokens are good in that process only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_VERSION = 2
# Longer than any token we issue (a few sort-key values); refused before decoding anything.
MAX_TOKEN_CHARS = 2048
_MAX_TEXT_CHARS = 512
_MAC_BYTES = 16  # 128 bits: forging one is out of reach
KEY_BYTES = 32

_key = secrets.token_bytes(KEY_BYTES)


def use_key(key: bytes) -> None:
    """Signs and checks tokens with the deployment's key from now on (see `load_key`)."""
    global _key
    if len(key) < 16:
        raise ValueError("a page-token key has at least 16 bytes")
    _key = key


async def ensure_key(conn: asyncpg.Connection) -> None:
    """Makes the deployment's key if this database has none yet. Run by migrations, under
    their lock, so concurrent first starts agree on one key."""
    await conn.execute(
        """create table if not exists page_token_key (
               singleton boolean primary key default true check (singleton),
               key bytea not null,
               created_at timestamptz not null default now())"""
    )
    await conn.execute(
        "insert into page_token_key (key) values ($1) on conflict do nothing",
        secrets.token_bytes(KEY_BYTES),
    )


async def load_key(database_url: str) -> bytes:
    """The deployment's key, from the service's migrated database."""
    conn = await asyncpg.connect(database_url)
    try:
        key: bytes | None = await conn.fetchval("select key from page_token_key")
    finally:
        await conn.close()
    if key is None:
        raise RuntimeError("the database has no page-token key: run migrate")
    return key


def page_size(value: int, field: str = "page_size") -> int:
    """0 means the default; above the maximum is served as the maximum (callers page on)."""
    if value < 0:
        raise InvalidArgument(field, f"is {value}; use 1-{MAX_PAGE_SIZE}, or 0 for the default")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _fingerprint(query: Sequence[Any]) -> str:
    return hashlib.sha256(json.dumps(list(query)).encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _mac(payload: bytes) -> bytes:
    return hmac.new(_key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def encode(after: Sequence[Any], query: Sequence[Any]) -> str:
    """A token for the page after the row whose sort key is `after` (ints, strings and
    aware datetimes)."""
    values = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in after]
    payload = json.dumps({"v": _VERSION, "a": values, "q": _fingerprint(query)}).encode()
    return f"{_b64(payload)}.{_b64(_mac(payload))}"


def decode(
    token: str, query: Sequence[Any], types: Sequence[type], field: str = "page_token"
) -> list[Any]:
    """The sort key in `token` ([] for an empty token), one value of each of `types` (int,
    str or datetime). A token that is not one this deployment issued, or was made for
    another query, is INVALID_ARGUMENT."""
    if not token:
        return []
    data = _verified(token)
    after = _sort_key(data, types) if data is not None else None
    if data is None or after is None:
        raise InvalidArgument(
            field, "is not a token this service issued; pass next_page_token unchanged"
        )
    if data.get("q") != _fingerprint(query):
        raise InvalidArgument(
            field, "was issued for a different query; repeat the same filter to page on"
        )
    return after


def _verified(token: str) -> dict[str, Any] | None:
    """The token's payload when its signature is ours, else None."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return None
    body, mac = token.split(".")
    try:
        payload, signature = _unb64(body), _unb64(mac)
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not hmac.compare_digest(signature, _mac(payload)):
        return None
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeError):
        return None
    return data if isinstance(data, dict) and data.get("v") == _VERSION else None


def _sort_key(data: dict[str, Any], types: Sequence[type]) -> list[Any] | None:
    """The values, each checked against what its column can take; None if one is not."""
    values = data.get("a")
    if not isinstance(values, list) or len(values) != len(types):
        return None
    after: list[Any] = []
    for value, kind in zip(values, types, strict=True):
        checked = _checked(value, kind)
        if checked is None:
            return None
        after.append(checked)
    return after


def _checked(value: object, kind: type) -> object | None:
    if kind is int:
        # Integers go to bigint columns (and a bool is not one).
        return value if type(value) is int and -(2**63) <= value < 2**63 else None
    if not isinstance(value, str) or len(value) > _MAX_TEXT_CHARS or "\x00" in value:
        return None
    if kind is str:
        return value
    if kind is datetime:
        try:
            moment = datetime.fromisoformat(value)
            # Aware, and still a datetime in UTC (an offset near year 1 or 9999 overflows).
            return moment.astimezone(UTC) if moment.tzinfo is not None else None
        except (ValueError, OverflowError):
            return None
    raise TypeError(f"page tokens carry int, str or datetime values, not {kind.__name__}")

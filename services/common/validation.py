"""Checks of request fields shared by both services (docs/spec.md §1, §3)."""

from __future__ import annotations

import re

from services.common.errors import InvalidArgument

SKU_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_QUANTITY = 1_000_000_000
MAX_ID_LENGTH = 128
MAX_NOTE_LENGTH = 500


def sku(value: str, field: str = "sku") -> str:
    if not value:
        raise InvalidArgument(field, "is required (1-64 chars of A-Z a-z 0-9 . _ : -)")
    if not SKU_PATTERN.fullmatch(value):
        raise InvalidArgument(
            field, f"{_shown(value)} is not a SKU: use 1-64 chars of A-Z a-z 0-9 . _ : -"
        )
    return value


def identifier(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, f"is required (1-{MAX_ID_LENGTH} chars)")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} chars long; at most {MAX_ID_LENGTH} allowed")
    if not value.isprintable():
        raise InvalidArgument(field, "must not contain control characters")
    return value


def optional_identifier(value: str, field: str) -> str:
    return identifier(value, field) if value else ""


def quantity(value: int, field: str = "quantity") -> int:
    if not 1 <= value <= MAX_QUANTITY:
        raise InvalidArgument(field, f"is {value}; it must be from 1 to {MAX_QUANTITY:,}")
    return value


def priority(value: int, field: str = "priority") -> int:
    if not 0 <= value <= 9:
        raise InvalidArgument(field, f"is {value}; it must be from 0 to 9 (9 is served first)")
    return value


def note(value: str, field: str = "note") -> str:
    if len(value) > MAX_NOTE_LENGTH:
        raise InvalidArgument(field, f"is {len(value)} chars long; at most {MAX_NOTE_LENGTH}")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    return value


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")

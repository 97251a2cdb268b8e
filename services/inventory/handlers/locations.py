"""Locations (docs/spec.md §8): PutLocation, ListLocations, and how a write resolves the
location it names (empty means `default`; unknown is NOT_FOUND, inactive FAILED_PRECONDITION).
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from services.common import paging, validation
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.pages import Page
from services.common.unit_of_work import UnitOfWork, transaction
from services.inventory.adapters import postgres as db
from services.inventory.domain.model import DEFAULT_LOCATION, Location
from services.inventory.handlers import events

MAX_NAME_LENGTH = 200
# Stands for `default` where only its id and activity matter (resolve).
_DEFAULT = Location(
    DEFAULT_LOCATION, DEFAULT_LOCATION, 0, True, 1, datetime.min.replace(tzinfo=UTC)
)
MAX_FILL_RANK = 1_000_000


def location_id(value: str, field: str = "location_id") -> str:
    """A location id as written: empty means `default`, else the characters of a SKU."""
    return validation.sku(value, field) if value else DEFAULT_LOCATION


def location_filter(value: str, field: str = "location_id") -> str:
    """A location id as a filter: empty means every location."""
    return validation.sku(value, field) if value else ""


async def resolve(
    conn: asyncpg.Connection | asyncpg.Pool,
    location: str,
    field: str = "location_id",
    *,
    must_be_active: bool = True,
) -> Location:
    """The named location; NOT_FOUND naming `field` if unknown, FAILED_PRECONDITION if it is
    inactive and must not be."""
    if location == DEFAULT_LOCATION:
        # Always there and always active (a check in the schema): no round trip for the
        # single-place business.
        return _DEFAULT
    found = await db.get_location(conn, location)
    if found is None:
        raise NotFound(f"{field} {location!r} is unknown: create it first (PutLocation)")
    if must_be_active and not found.active:
        raise FailedPrecondition(
            f"{field} {location!r} is inactive: it takes no receipts, inbound or transfers "
            "(activate it with PutLocation)"
        )
    return found


async def put_location(
    pool: asyncpg.Pool,
    location: str,
    *,
    name: str,
    fill_rank: int | None,
    active: bool | None,
) -> Location:
    validation.sku(location, "location_id")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument("name", f"is {len(name)} chars long; at most {MAX_NAME_LENGTH}")
    if not name.isprintable():
        raise InvalidArgument("name", "must not contain control characters")
    if fill_rank is not None and not -MAX_FILL_RANK <= fill_rank <= MAX_FILL_RANK:
        raise InvalidArgument(
            "fill_rank", f"is {fill_rank}; it must be from {-MAX_FILL_RANK:,} to {MAX_FILL_RANK:,}"
        )
    if location == DEFAULT_LOCATION and active is False:
        raise InvalidArgument("active", "`default` always exists and cannot be deactivated")

    async def work(uow: UnitOfWork) -> Location:
        result, changed = await db.put_location(uow.conn, location, name, fill_rank, active)
        if changed:
            uow.emit(events.location_updated_event(result))
        return result

    return await transaction(pool, work)


async def list_locations(pool: asyncpg.Pool, *, page_size: int, page_token: str) -> Page[Location]:
    size = paging.page_size(page_size)
    query = ["locations"]
    after = paging.decode(page_token, query, (int, str))
    rows = await db.list_locations(pool, (after[0], after[1]) if after else None, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    token = paging.encode([rows[-1].fill_rank, rows[-1].location_id], query) if more else ""
    return Page(rows, token)

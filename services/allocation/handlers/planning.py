"""Use cases of planning (docs/spec.md §9): importing a SKU's demand history, setting its
planning parameters (each validates everything before it writes anything), reading the
advice, and the crossing check that emits sku.reorder_suggested."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

import asyncpg

from services.allocation.adapters import planning as planning_db
from services.allocation.adapters import skus as skus_db
from services.allocation.handlers import events
from services.allocation.planning.advice import Advice
from services.allocation.planning.params import (
    MAX_DAYS,
    MAX_SERVICE_LEVEL,
    MIN_SERVICE_LEVEL,
    PlanningParams,
)
from services.common import db, paging, validation
from services.common.errors import InvalidArgument, NotFound
from services.common.pages import Page
from services.common.unit_of_work import UnitOfWork, transaction

MAX_HISTORY_DAYS = 1096  # ~3 years back from today
MAX_IMPORT_DAYS = 1100  # days in one request


def unknown_sku(sku: str) -> NotFound:
    return NotFound(f"sku {sku!r} is unknown to the allocation service: no line or stock yet")


@dataclass(frozen=True)
class ImportDemandHistory:
    sku: str
    days: tuple[tuple[str, int], ...]  # (YYYY-MM-DD, units) as the client sent them

    def validated(self, today: dt.date) -> list[tuple[dt.date, int]]:
        """The days as dates, checked against `today` (in the planning time zone)."""
        validation.sku(self.sku)
        if not 1 <= len(self.days) <= MAX_IMPORT_DAYS:
            raise InvalidArgument(
                "days", f"has {len(self.days)} days; give 1 to {MAX_IMPORT_DAYS:,} per request"
            )
        oldest = today - dt.timedelta(days=MAX_HISTORY_DAYS)
        seen: set[dt.date] = set()
        days = []
        for i, (text, units) in enumerate(self.days):
            try:
                day = dt.date.fromisoformat(text) if len(text) == 10 else None
            except ValueError:
                day = None
            if day is None:
                raise InvalidArgument(f"days[{i}].date", f"{text!r} is not a date (YYYY-MM-DD)")
            if day > today:
                raise InvalidArgument(
                    f"days[{i}].date", f"{text} is in the future (today is {today.isoformat()})"
                )
            if day < oldest:
                raise InvalidArgument(
                    f"days[{i}].date",
                    f"{text} is more than {MAX_HISTORY_DAYS} days back "
                    f"(the oldest accepted is {oldest.isoformat()})",
                )
            if day in seen:
                raise InvalidArgument(f"days[{i}].date", f"{text} is given twice")
            if not 0 <= units <= validation.MAX_QUANTITY:
                raise InvalidArgument(
                    f"days[{i}].units",
                    f"is {units}; it must be from 0 to {validation.MAX_QUANTITY:,}",
                )
            seen.add(day)
            days.append((day, units))
        return days


async def import_demand_history(pool: asyncpg.Pool, cmd: ImportDemandHistory) -> int:
    """Writes the imported units of each day (replacing that day's earlier import); returns
    the number of days written."""
    validation.sku(cmd.sku)

    async def work(uow: UnitOfWork) -> int:
        days = cmd.validated(await planning_db.today(uow.conn))
        if await skus_db.get_sku(uow.conn, cmd.sku) is None:
            raise unknown_sku(cmd.sku)
        await planning_db.import_days(uow.conn, cmd.sku, days)
        await planning_db.ask_for_refresh(uow.conn, cmd.sku)
        return len(days)

    return await transaction(pool, work)


@dataclass(frozen=True)
class SetPlanningParams:
    """Fields left None keep their current value."""

    sku: str
    lead_time_days: int | None = None
    service_level: float | None = None
    review_period_days: int | None = None
    min_order_quantity: int | None = None
    pack_size: int | None = None

    def validated(self) -> SetPlanningParams:
        validation.sku(self.sku)
        for name in ("lead_time_days", "review_period_days"):
            days = getattr(self, name)
            if days is not None and not 0 <= days <= MAX_DAYS:
                raise InvalidArgument(name, f"is {days}; it must be from 0 to {MAX_DAYS} days")
        level = self.service_level
        if level is not None and not (
            math.isfinite(level) and MIN_SERVICE_LEVEL <= level <= MAX_SERVICE_LEVEL
        ):
            raise InvalidArgument(
                "service_level",
                f"is {level}; it must be from {MIN_SERVICE_LEVEL} to {MAX_SERVICE_LEVEL}",
            )
        for name in ("min_order_quantity", "pack_size"):
            units = getattr(self, name)
            if units is not None:
                validation.quantity(units, name)
        return self

    def applied_to(self, current: PlanningParams) -> PlanningParams:
        given = {
            name: value for name, value in vars(self).items() if name != "sku" and value is not None
        }
        return replace(current, **given)


async def set_planning_params(pool: asyncpg.Pool, cmd: SetPlanningParams) -> PlanningParams:
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> PlanningParams:
        if await skus_db.get_sku(uow.conn, cmd.sku) is None:
            raise unknown_sku(cmd.sku)
        # Serialise setters of one SKU: each applies its fields to what the last one left.
        await uow.conn.execute(
            "select pg_advisory_xact_lock(hashtextextended('planning_params:' || $1, 0))",
            cmd.sku,
        )
        params = cmd.applied_to(await planning_db.params(uow.conn, cmd.sku))
        await planning_db.save_params(uow.conn, params)
        await planning_db.ask_for_refresh(uow.conn, cmd.sku)
        return params

    return await transaction(pool, work)


async def get_replenishment(pool: asyncpg.Pool, sku: str) -> Advice:
    validation.sku(sku)
    found = await planning_db.advice(pool, sku)
    if found is None:
        raise unknown_sku(sku)
    return found


DEFAULT_DEMAND_HISTORY_DAYS = 365


@dataclass(frozen=True)
class DemandHistory:
    sku: str
    first_day: dt.date
    units: list[int]  # one a day from first_day through today


async def get_demand_history(pool: asyncpg.Pool, sku: str, days: int = 0) -> DemandHistory:
    """`sku`'s daily demand over the last `days` days (0: DEFAULT_DEMAND_HISTORY_DAYS)."""
    validation.sku(sku)
    if not 0 <= days <= MAX_HISTORY_DAYS:
        raise InvalidArgument(
            "days", f"is {days}; it must be from 1 to {MAX_HISTORY_DAYS} (0 means 365)"
        )
    async with db.connection(pool) as conn:
        if await skus_db.get_sku(conn, sku) is None:
            raise unknown_sku(sku)
        first, units = await planning_db.demand_history(
            conn, sku, days or DEFAULT_DEMAND_HISTORY_DAYS
        )
    return DemandHistory(sku, first, units)


async def list_reorder_suggestions(
    pool: asyncpg.Pool, page_size: int = 0, page_token: str = ""
) -> Page[Advice]:
    limit = paging.page_size(page_size)
    query = ("reorder_suggestions",)
    after: tuple[float | None, str] | None = None
    decoded = paging.decode(page_token, query, [str, str])
    if decoded:
        cover_text, sku = decoded
        try:
            cover = float(cover_text) if cover_text else None
        except ValueError:
            raise InvalidArgument("page_token", "is not a token this service issued") from None
        after = (cover, sku)
    rows = await planning_db.below_reorder_point(pool, after, limit + 1)
    token = ""
    if len(rows) > limit:
        last = rows[limit - 1]
        cover_text = "" if last.days_of_cover is None else repr(last.days_of_cover)
        token = paging.encode([cover_text, last.sku], query)
    return Page(rows[:limit], token)


async def check_crossings(pool: asyncpg.Pool) -> int:
    """Emits sku.reorder_suggested for each SKU whose available units fell below its
    reorder point since the last check (once per crossing; re-armed when back at or above
    it). Returns how many fired."""

    async def work(uow: UnitOfWork) -> int:
        crossed = await planning_db.record_crossings(uow.conn)
        uow.emit_all(events.reorder_suggested_event(advice) for advice in crossed)
        return len(crossed)

    return await transaction(pool, work)

"""Use cases of a SKU: its summary, its policy, and its decision log (or one line's)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.allocation.adapters import inbound as inbound_db
from services.allocation.adapters import lines as lines_db
from services.allocation.adapters import reservations as reservations_db
from services.allocation.adapters import skus as skus_db
from services.allocation.adapters.skus import SkuAt
from services.allocation.domain.model import Inbound, Reservation, Sku
from services.allocation.handlers.commands import SetSkuPolicy, line_not_found, validate_line_ref
from services.allocation.handlers.locked_sku import fill_sku, refresh_etas
from services.common import paging, validation
from services.common.errors import InvalidArgument, NotFound
from services.common.pages import Page
from services.common.unit_of_work import UnitOfWork, transaction


@dataclass(frozen=True)
class SkuSummary:
    sku: Sku
    inbound: list[Inbound]
    locations: list[SkuAt]


async def get_sku_summary(pool: asyncpg.Pool, sku: str) -> SkuSummary:
    validation.sku(sku)
    row = await skus_db.get_sku(pool, sku)
    if row is None:
        raise NotFound(f"sku {sku!r} is unknown to the allocation service: no line or stock yet")
    return SkuSummary(
        row, await inbound_db.open_inbound(pool, sku), await skus_db.sku_locations(pool, sku)
    )


async def set_sku_policy(pool: asyncpg.Pool, cmd: SetSkuPolicy) -> SkuSummary:
    """Sets a SKU's policy (existing lines stay); the fill runs, as SKIP may serve lines now."""
    cmd = cmd.validated()

    async def work(uow: UnitOfWork) -> SkuSummary:
        await skus_db.lock_sku(uow.conn, cmd.sku)
        sku = await skus_db.set_policy(
            uow.conn,
            cmd.sku,
            fill_policy=cmd.fill_policy,
            backorders_accepted=cmd.backorders_accepted,
            backorder_limit=cmd.backorder_limit,
            location_strategy=cmd.location_strategy,
            max_units_per_customer=cmd.max_units_per_customer,
        )
        _, sku = await fill_sku(uow, sku, cause="SetSkuPolicy", cause_event_id=None)
        await refresh_etas(uow, sku)
        return SkuSummary(
            sku,
            await inbound_db.open_inbound(uow.conn, cmd.sku),
            await skus_db.sku_locations(uow.conn, cmd.sku),
        )

    return await transaction(pool, work)


async def list_reservations(
    pool: asyncpg.Pool,
    *,
    order_id: str = "",
    line_id: str = "",
    sku: str = "",
    page_size: int = 0,
    page_token: str = "",
) -> Page[Reservation]:
    """The decision log of one line (order_id + line_id) or of one SKU, oldest first."""
    if sku and (order_id or line_id):
        raise InvalidArgument("sku", "give either sku or order_id and line_id, not both")
    if not sku and not (order_id or line_id):
        raise InvalidArgument("sku", "is required unless order_id and line_id are given")
    limit = paging.page_size(page_size)
    query = ("reservations", sku, order_id, line_id)
    after = (paging.decode(page_token, query, [int]) or [0])[0]
    line_key: int | None = None
    if sku:
        validation.sku(sku)
        if await skus_db.get_sku(pool, sku) is None:
            raise NotFound(f"sku {sku!r} is unknown to the allocation service")
    else:
        validate_line_ref(order_id, line_id)
        found = await lines_db.find_line(pool, order_id, line_id)
        if found is None:
            raise line_not_found(order_id, line_id)
        line_key = found.key
    rows = await reservations_db.list_reservations(
        pool, line_key=line_key, sku=sku or None, after_id=after, limit=limit + 1
    )
    token = paging.encode([rows[limit - 1].reservation_id], query) if len(rows) > limit else ""
    return Page(rows[:limit], token)

"""The decision log: one row per reservation made (or taken back), oldest first."""

from __future__ import annotations

from services.allocation.adapters.rows import Executor, filters
from services.allocation.domain.fill import FillPolicy
from services.allocation.domain.model import Reservation, ReservationRule


async def list_reservations(
    conn: Executor,
    *,
    line_key: int | None,
    sku: str | None,
    after_id: int,
    limit: int,
) -> list[Reservation]:
    where, args = filters({"r.line": line_key, "r.sku": sku})
    rows = await conn.fetch(
        f"""select r.id as reservation_id, l.order_id, l.line_id, r.sku, r.quantity, r.cause,
                  r.cause_event_id, r.queue_position, r.rule, r.fill_policy, r.created_at,
                  r.location_id
           from reservation r join line l on l.id = r.line
           where {where} r.id > ${len(args) + 1}
           order by r.id limit ${len(args) + 2}""",
        *args,
        after_id,
        limit,
    )
    return [
        Reservation(
            **{**r, "rule": ReservationRule(r["rule"]), "fill_policy": FillPolicy(r["fill_policy"])}
        )
        for r in rows
    ]

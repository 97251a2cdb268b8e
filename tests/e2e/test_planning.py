"""Planning through the real allocation process (docs/spec.md §9): demand history kept as
lines are placed, history imports and planning parameters, bad input refused by field."""

from __future__ import annotations

import datetime as dt

import asyncpg
import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.e2e.conftest import System
from tests.e2e.test_bad_input import field_violations
from tests.support.servers import database_url, unique


async def demand(system: System, sku: str) -> dict[dt.date, tuple[int, int, int]]:
    conn = await asyncpg.connect(database_url(system.allocation_db))
    try:
        rows = await conn.fetch(
            """select day, ordered_units, cancelled_units, imported_units from demand_day
               where sku = $1""",
            sku,
        )
    finally:
        await conn.close()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


async def test_placed_cancelled_and_imported_demand(
    system: System, allocation: AllocationServiceStub
) -> None:
    sku, order = unique("PLAN"), unique("o")
    for line_id, quantity in (("1", 4), ("2", 6)):
        await allocation.Allocate(
            alloc.AllocateRequest(order_id=order, line_id=line_id, sku=sku, quantity=quantity)
        )
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=order, line_id="1", sku=sku, quantity=4)
    )
    await allocation.CancelLine(alloc.CancelLineRequest(order_id=order, line_id="2"))
    [(today, live)] = (await demand(system, sku)).items()
    assert live == (10, 6, 0)
    earlier = today - dt.timedelta(days=30)
    answer = await allocation.ImportDemandHistory(
        alloc.ImportDemandHistoryRequest(
            sku=sku,
            days=[
                alloc.DemandDay(date=earlier.isoformat(), units=9),
                alloc.DemandDay(date=today.isoformat(), units=2),
            ],
        )
    )
    assert (answer.sku, answer.days_imported) == (sku, 2)
    assert await demand(system, sku) == {earlier: (0, 0, 9), today: (10, 6, 2)}


async def test_planning_params_upsert(system: System, allocation: AllocationServiceStub) -> None:
    sku = unique("PARAMS")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=1)
    )
    first = await allocation.SetPlanningParams(alloc.SetPlanningParamsRequest(sku=sku))
    assert first.params == alloc.PlanningParams(
        sku=sku,
        lead_time_days=14,
        service_level=0.95,
        review_period_days=7,
        min_order_quantity=1,
        pack_size=1,
    )
    changed = await allocation.SetPlanningParams(
        alloc.SetPlanningParamsRequest(sku=sku, lead_time_days=0, pack_size=24)
    )
    assert (changed.params.lead_time_days, changed.params.pack_size) == (0, 24)
    assert changed.params.service_level == 0.95


BAD_PARAMS = [
    ("service_level", {"service_level": 0.2}),
    ("service_level", {"service_level": 1.0}),
    ("lead_time_days", {"lead_time_days": -1}),
    ("pack_size", {"pack_size": 0}),
    ("sku", {"sku": "bad sku"}),
]


@pytest.mark.parametrize(("field", "changes"), BAD_PARAMS)
async def test_bad_planning_params_are_refused_by_field(
    system: System, allocation: AllocationServiceStub, field: str, changes: dict[str, object]
) -> None:
    sku = unique("BADPARAMS")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=1)
    )
    fields: dict[str, object] = {"sku": sku, "review_period_days": 3, **changes}
    request = alloc.SetPlanningParamsRequest(**fields)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await allocation.SetPlanningParams(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == [field]
    # Nothing written: the defaults still hold.
    after = await allocation.SetPlanningParams(alloc.SetPlanningParamsRequest(sku=sku))
    assert after.params.review_period_days == 7


async def test_bad_imports_are_refused_by_field(
    system: System, allocation: AllocationServiceStub
) -> None:
    sku = unique("BADIMPORT")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=1)
    )
    [today] = await demand(system, sku)
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    for field, days in (
        (
            "days[1].date",
            [alloc.DemandDay(date=today.isoformat(), units=1), alloc.DemandDay(date=tomorrow)],
        ),
        ("days[0].units", [alloc.DemandDay(date=today.isoformat(), units=-3)]),
        ("days[0].date", [alloc.DemandDay(date="04/12/2026", units=1)]),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await allocation.ImportDemandHistory(
                alloc.ImportDemandHistoryRequest(sku=sku, days=days)
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(caught.value) == [field]
    assert await demand(system, sku) == {today: (1, 0, 0)}


async def test_unknown_sku_is_not_found(allocation: AllocationServiceStub) -> None:
    sku = unique("NOSUCH")
    for call in (
        allocation.SetPlanningParams(alloc.SetPlanningParamsRequest(sku=sku, pack_size=2)),
        allocation.ImportDemandHistory(
            alloc.ImportDemandHistoryRequest(sku=sku, days=[alloc.DemandDay(date="2026-01-01")])
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

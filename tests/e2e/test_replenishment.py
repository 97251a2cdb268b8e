"""Replenishment advice through real processes (docs/spec.md §9): lines placed and history
imported, a refresh by `backorder-allocation plan --once`, then GetReplenishment,
ListReorderSuggestions and sku.reorder_suggested (once per crossing, re-armed when available
is back at or above the reorder point)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import subprocess
from collections.abc import AsyncIterator

import aio_pika
import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.allocation.planning import policy
from services.allocation.planning.params import PlanningParams
from tests.e2e.conftest import EventTap, System, allocation_tap
from tests.e2e.test_bad_input import field_violations
from tests.support.processes import BIN
from tests.support.servers import Vhost, database_url, unique

SERIES = [6, 4, 5, 5, 7, 3, 5, 6, 4, 5] * 3  # smooth: SES


@pytest.fixture(scope="module")
async def sku_events(system: System, vhost: Vhost) -> AsyncIterator[EventTap]:
    async with allocation_tap(vhost, "sku.reorder_suggested") as tap:
        yield tap


async def plan_once(system: System, vhost: Vhost) -> None:
    env = {
        **os.environ,
        "ALLOCATION_DATABASE_URL": database_url(system.allocation_db),
        "AMQP_URL": vhost.url,
    }
    process = await asyncio.create_subprocess_exec(
        str(BIN / "backorder-allocation"), "plan", "--once", env=env, stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()


async def known_sku_with_history(allocation: AllocationServiceStub, backordered: int) -> str:
    sku = unique("REPL")
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=backordered)
    )
    # The history ends yesterday, and today has the line just placed.
    answer = await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku=sku))
    assert answer.replenishment.available == -backordered
    assert not answer.replenishment.HasField("refreshed_at")
    today = dt.date.today()  # any day in the last week will do for the import
    days = [
        alloc.DemandDay(date=(today - dt.timedelta(days=len(SERIES) + 1 - i)).isoformat(), units=u)
        for i, u in enumerate(SERIES)
    ]
    await allocation.ImportDemandHistory(alloc.ImportDemandHistoryRequest(sku=sku, days=days))
    return sku


def of(sku: str) -> object:
    return lambda m: m.routing_key == "sku.reorder_suggested" and parse(m).sku == sku


def parse(message: aio_pika.abc.AbstractIncomingMessage) -> events_pb2.SkuReorderSuggested:
    return events_pb2.SkuReorderSuggested.FromString(message.body)


async def test_advice_and_one_event_per_crossing(
    system: System,
    vhost: Vhost,
    allocation: AllocationServiceStub,
    inventory: InventoryServiceStub,
    sku_events: EventTap,
) -> None:
    sku = await known_sku_with_history(allocation, backordered=10)
    await allocation.SetPlanningParams(
        alloc.SetPlanningParamsRequest(
            sku=sku, lead_time_days=5, min_order_quantity=40, pack_size=12
        )
    )
    await plan_once(system, vhost)
    got = (await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku=sku))).replenishment
    assert got.forecast_method == alloc.FORECAST_METHOD_SES
    assert got.demand_class == alloc.DEMAND_CLASS_SMOOTH
    assert got.HasField("refreshed_at")
    assert got.available == -10
    params = PlanningParams(sku, lead_time_days=5, min_order_quantity=40, pack_size=12)
    levels = policy.levels(got.forecast_daily_units, got.demand_std, params)
    assert 3 < got.forecast_daily_units < 7
    assert got.reorder_point == pytest.approx(levels.reorder_point)
    assert got.safety_stock == pytest.approx(levels.safety_stock)
    short = math.ceil(levels.order_up_to + 10)
    assert got.suggested_order_quantity == -(-max(short, 40) // 12) * 12
    assert got.days_of_cover == pytest.approx(-10 / got.forecast_daily_units)
    [first] = await sku_events.collect(of(sku), 1)
    event = parse(first)
    assert (event.version, event.available) == (1, -10)
    assert event.suggested_order_quantity == got.suggested_order_quantity

    # Still below: another refresh says nothing new.
    await plan_once(system, vhost)
    await sku_events.collect(of(sku), 1)

    # Stock arrives: available is back above the reorder point (re-armed), then a big line
    # takes it below again: a second event.
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=500)
    )
    for _ in range(100):
        answer = await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku=sku))
        if answer.replenishment.available == 490:
            break
        await asyncio.sleep(0.1)
    assert answer.replenishment.available == 490  # always current, no refresh needed
    assert answer.replenishment.suggested_order_quantity == 0
    await plan_once(system, vhost)
    await allocation.Allocate(
        alloc.AllocateRequest(order_id=unique("o"), line_id="1", sku=sku, quantity=480)
    )
    await plan_once(system, vhost)
    second = (await sku_events.collect(of(sku), 2))[1]
    assert (parse(second).version, parse(second).available) == (2, 10)


async def test_suggestions_fewest_days_of_cover_first_and_paged(
    system: System, vhost: Vhost, allocation: AllocationServiceStub
) -> None:
    mine = {await known_sku_with_history(allocation, backordered=n): n for n in (3, 30, 12)}
    await plan_once(system, vhost)
    listed: list[alloc.Replenishment] = []
    token = ""
    while True:
        page = await allocation.ListReorderSuggestions(
            alloc.ListReorderSuggestionsRequest(page_size=2, page_token=token)
        )
        assert len(page.suggestions) <= 2
        listed += page.suggestions
        token = page.next_page_token
        if not token:
            break
    keys = [(0 if s.HasField("days_of_cover") else 1, s.days_of_cover, s.sku) for s in listed]
    assert keys == sorted(keys)
    assert all(s.available < s.reorder_point for s in listed)
    ours = [s.sku for s in listed if s.sku in mine]
    covers = {s.sku: s.days_of_cover for s in listed if s.sku in mine}
    assert ours == sorted(mine, key=lambda sku: covers[sku])
    assert len(ours) == 3


async def test_replenishment_bad_input(allocation: AllocationServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku=unique("NOSUCH")))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku="no spaces"))
    assert field_violations(bad.value) == ["sku"]
    with pytest.raises(grpc.aio.AioRpcError) as token:
        await allocation.ListReorderSuggestions(
            alloc.ListReorderSuggestionsRequest(page_token="made-up")
        )
    assert field_violations(token.value) == ["page_token"]

"""backorder_skus_below_reorder_point (README, Metrics) of a real allocation service: it
counts the SKUs ListReorderSuggestions lists, and moves when a SKU falls below its reorder
point and when stock lifts it back (after the planning worker's crossing check)."""

from __future__ import annotations

import asyncio

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.e2e.conftest import System
from tests.e2e.test_metrics import value, wait_for_metrics
from tests.e2e.test_replenishment import known_sku_with_history, plan_once
from tests.support.servers import Vhost, unique

GAUGE = "backorder_skus_below_reorder_point"


async def suggested(allocation: AllocationServiceStub) -> list[str]:
    skus, token = [], ""
    while True:
        page = await allocation.ListReorderSuggestions(
            alloc.ListReorderSuggestionsRequest(page_size=1000, page_token=token)
        )
        skus += [s.sku for s in page.suggestions]
        if not (token := page.next_page_token):
            return skus


async def test_gauge_counts_the_skus_below_their_reorder_point(
    system: System,
    vhost: Vhost,
    allocation: AllocationServiceStub,
    inventory: InventoryServiceStub,
) -> None:
    sku = await known_sku_with_history(allocation, backordered=10)
    await plan_once(system, vhost)  # refreshes every SKU, then checks crossings
    below = await suggested(allocation)
    assert sku in below
    await wait_for_metrics(
        system.allocation.metrics_addr,
        lambda samples: value(samples, GAUGE) == len(below),
        f"{GAUGE} = {len(below)}",
    )

    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=1000)
    )
    for _ in range(100):
        answer = await allocation.GetReplenishment(alloc.GetReplenishmentRequest(sku=sku))
        if answer.replenishment.available == 990:
            break
        await asyncio.sleep(0.1)
    await plan_once(system, vhost)
    after = await suggested(allocation)
    assert sku not in after and len(after) == len(below) - 1
    await wait_for_metrics(
        system.allocation.metrics_addr,
        lambda samples: value(samples, GAUGE) == len(after),
        f"{GAUGE} = {len(after)}",
    )

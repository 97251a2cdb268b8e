"""The orders row (docs/spec.md §10): one receipt completes N waiting 3-line ship-complete
orders, against the same drain of independent lines (N waiting single-unit lines of one SKU,
one receipt of N) in the same run.

Each order has a line of X (the SKU the receipt brings), a line of Y and a line of Z; Y and Z
receive their N units once the orders are placed, so every order then lacks only X. The
receipt's fill passes over the held lines; the completion step then walks the orders waiting
on X (the index, in batches) and completes each in a transaction of its own that locks its
three SKUs."""

from __future__ import annotations

import asyncio
import time
import uuid

from backorder.allocation.v1 import allocation_pb2 as alloc
from bench import workload
from bench.context import Bench
from bench.drain import _receive, _reserved
from bench.report import Figure

PLACERS = 16  # concurrent AllocateOrder callers while the orders are set up


async def _place_orders(bench: Bench, x: str, y: str, z: str, count: int) -> None:
    tag = uuid.uuid4().hex[:6]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def placer() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            await bench.allocation.AllocateOrder(
                alloc.AllocateOrderRequest(
                    order_id=f"SC{tag}-{i}",
                    priority=i % 3,
                    ship_complete=True,
                    lines=[
                        alloc.OrderLineRequest(line_id="x", sku=x, quantity=1),
                        alloc.OrderLineRequest(line_id="y", sku=y, quantity=1),
                        alloc.OrderLineRequest(line_id="z", sku=z, quantity=1),
                    ],
                ),
                timeout=60,
            )

    await asyncio.gather(*(placer() for _ in range(PLACERS)))


async def orders_row(bench: Bench) -> None:
    n = bench.sizes.ship_complete_orders
    x, y, z = (f"O{c}{uuid.uuid4().hex[:6]}" for c in "XYZ")
    started = time.perf_counter()
    await _place_orders(bench, x, y, z, n)
    place_s = time.perf_counter() - started
    # Then Y and Z get the units every order needs (after placing: the fill of a SKU with
    # free units passes over every held line, so placing into one is quadratic); X has none.
    for sku in (y, z):
        await _receive(bench, sku, n)
        await workload.wait_for(
            bench.alloc_pool, "select free_units >= $2 from sku where sku = $1", sku, n, within=600
        )
    await workload.outbox_settled(bench.alloc_pool)
    waiting = await bench.alloc_pool.fetchval(
        "select count(*) from order_waiting_sku where sku = $1", x
    )
    assert waiting == n, f"{waiting} of {n} orders wait on {x}"

    async with bench.accounted("orders") as box:
        sent = await _receive(bench, x, n)
        # Every order complete: all of X, Y and Z reserved, none waiting.
        for sku in (x, y, z):
            done = await _reserved(bench, sku, n, within=600 + n / 10)
        orders_s = done - sent
        box["orders_s"] = orders_s
    left = await bench.alloc_pool.fetchval(
        "select count(*) from order_waiting_sku where sku = any($1::text[])", [x, y, z]
    )
    assert left == 0, f"{left} orders still waiting"

    # The same drain of independent lines: N waiting single-unit lines, one receipt of N.
    plain = f"OP{uuid.uuid4().hex[:6]}"
    await workload.place_waiting_lines(bench.alloc_pool, plain, n, order_prefix=f"P{plain}")
    await workload.outbox_settled(bench.alloc_pool)
    async with bench.accounted("orders_plain_drain") as box:
        sent = await _receive(bench, plain, n)
        lines_s = await _reserved(bench, plain, n, within=600 + n / 100) - sent
        box["lines_s"] = lines_s
    bench.results.details["orders"].update(
        {
            "orders": n,
            "lines_per_order": 3,
            "placing_s": place_s,
            "orders_complete_s": orders_s,
            "independent_lines_drain_s": lines_s,
        }
    )
    bench.results.add(
        Figure(
            "orders",
            f"receipt completes {n:,} 3-line ship-complete orders",
            orders_s,
            "s",
            "all complete; ratio reported",
            lines_s,
            f"drain of {n:,} independent lines",
            passed=left == 0,
        )
    )
    bench.results.add(
        Figure("orders", "ship-complete orders completed per second", n / orders_s, "/s")
    )

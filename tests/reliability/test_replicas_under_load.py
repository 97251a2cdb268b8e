"""Replicas under load (issue 5, scenario 1): three allocation and two inventory processes,
50 SKUs, 64 concurrent clients placing lines interleaved with receipts, adjustments,
cancels and fulfilments spread over every replica.

Afterwards: no SKU oversold (in either service), each line's units equal a replay of the
clients' operations through the reference model, and every line.reserved event matches
exactly one reservation row.

Why a replay is possible under concurrency: the lines share one priority and the STRICT
policy, and supply only grows (receipts, positive adjustments). Then the queue of a SKU is
always "served prefix, at most one partly served line, waiting rest" in placement order,
whatever the interleaving, so the end state depends only on the placement order (which
the service records), the units received, and which lines were cancelled or shipped.
Priorities, SKIP and shrinkage make the outcome order-dependent; they are checked step by
step in tests/e2e/test_allocation_stateful.py.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass

import asyncpg
import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import events_pb2 as inv_events
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.reliability.conftest import Report, scaled
from tests.support.books import check_allocation, check_inventory, outbox_drained
from tests.support.cluster import AllocationEventTap, Cluster, until
from tests.support.reference_model import Model, ModelLine
from tests.support.servers import unique

CLIENTS = 64
SKUS = 50


async def test_replicas_under_concurrent_load_match_the_reference_model(
    cluster_factory: object, report: Report, seed: int
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    tap = await AllocationEventTap(cluster.vhost.url, ("line.reserved",)).open()
    inventories, allocations = await asyncio.gather(
        cluster.start("inventory", 2), cluster.start("allocation", 3)
    )
    channels = [grpc.aio.insecure_channel(p.grpc_addr) for p in inventories + allocations]
    inventory_stubs = [InventoryServiceStub(c) for c in channels[:2]]
    allocation_stubs = [AllocationServiceStub(c) for c in channels[2:]]
    rng = random.Random(seed)
    skus = [unique(f"R{n}") for n in range(SKUS)]
    allocates, others = scaled(20_000, 200), scaled(500, 20)
    kinds = ["receive"] * (others * 2 // 5) + ["adjust"] * (others // 5)
    kinds += ["cancel"] * (others // 5) + ["fulfil"] * (others - len(kinds) - others // 5)
    ops = ["allocate"] * allocates + kinds
    rng.shuffle(ops)
    ids = itertools.count()

    supply: Counter[str] = Counter()
    placed: dict[str, str] = {}  # line_id -> sku, answered OK
    cancelled: set[str] = set()
    had_units: list[str] = []  # lines reserved at once: where a shipment is likely
    shipped: Counter[str] = Counter()  # line_id -> units fulfilled (OK answers)
    codes: Counter[str] = Counter()
    refusals: list[Refusal] = []  # each FAILED_PRECONDITION, checked against the end state

    async def one(kind: str) -> None:
        a = rng.choice(allocation_stubs)
        n = next(ids)
        line_id, units = "", 0
        try:
            if kind == "allocate":
                sku = rng.choice(skus)
                reply = await a.Allocate(
                    alloc.AllocateRequest(
                        order_id="o",
                        line_id=f"l{n}",
                        sku=sku,
                        quantity=rng.randint(1, 5),
                        allow_partial=rng.random() < 0.4,
                    ),
                    timeout=60,
                )
                placed[f"l{n}"] = sku
                if reply.line.reserved_quantity:
                    had_units.append(f"l{n}")
            elif kind == "receive":
                sku, units = rng.choice(skus), rng.randint(20, 400)
                await rng.choice(inventory_stubs).ReceiveStock(
                    inv.ReceiveStockRequest(receipt_id=f"r{n}", sku=sku, quantity=units),
                    timeout=60,
                )
                supply[sku] += units
            elif kind == "adjust":
                sku, units = rng.choice(skus), rng.randint(1, 50)
                await rng.choice(inventory_stubs).AdjustStock(
                    inv.AdjustStockRequest(
                        adjustment_id=f"j{n}",
                        sku=sku,
                        delta=units,
                        reason=inv_events.ADJUSTMENT_REASON_FOUND,
                    ),
                    timeout=60,
                )
                supply[sku] += units
            elif not placed:
                kind = "skipped"
            elif kind == "cancel":
                line_id = rng.choice(list(placed))
                await a.CancelLine(alloc.CancelLineRequest(order_id="o", line_id=line_id))
                cancelled.add(line_id)
            else:
                line_id = rng.choice(had_units or list(placed))
                units = rng.randint(1, 2)
                await a.FulfillLine(
                    alloc.FulfillLineRequest(
                        order_id="o", line_id=line_id, fulfillment_id=f"f{n}", quantity=units
                    ),
                    timeout=60,
                )
                shipped[line_id] += units
            codes[f"{kind} OK"] += 1
        except grpc.aio.AioRpcError as error:
            codes[f"{kind} {error.code().name}"] += 1
            # Shipping more than is reserved, or from a cancelled line, or cancelling a
            # shipped line: refused, nothing else; each refusal is checked at the end.
            assert kind in ("cancel", "fulfil"), (kind, error.code(), error.details())
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
            refusals.append(Refusal(kind, line_id, units, error.details() or ""))

    async def client() -> None:
        while ops:
            await one(ops.pop())

    started = time.monotonic()
    try:
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        elapsed = time.monotonic() - started
        a_conn, i_conn = await cluster.allocation_conn(), await cluster.inventory_conn()
        try:
            await until(lambda: outbox_drained(i_conn), 180, "inventory events published")
            stock_events = codes["receive OK"] + codes["adjust OK"]
            await until(
                lambda: a_conn.fetchval("select count(*) = $1 from processed_event", stock_events),
                180,
                "every receipt and adjustment applied",
            )
            await until(lambda: outbox_drained(a_conn), 180, "allocation events published")
            fulfilments = codes["fulfil OK"]
            await until(
                lambda: i_conn.fetchval(
                    "select count(*) = $1 from movement where kind = 'ISSUE'", fulfilments
                ),
                180,
                "every fulfilment issued",
            )
            checks = await _compare_with_model(a_conn, i_conn, supply, placed, cancelled, shipped)
            checks += await _check_refusals(a_conn, refusals)
            fills = await a_conn.fetch("select id, line from reservation")
            await until(
                lambda: len(tap.distinct("line.reserved")) >= len(fills),
                180,
                "every line.reserved delivered",
            )
            events = [
                alloc_events.LineReserved.FromString(b)
                for b in tap.distinct("line.reserved").values()
            ]
            by_row = Counter(e.reservation_id for e in events)
            assert set(by_row) == {r["id"] for r in fills}
            assert set(by_row.values()) == {1}
            checks += 2 + await check_allocation(a_conn) + await check_inventory(i_conn)
        finally:
            await a_conn.close()
            await i_conn.close()
        codes_at_stop = await cluster.stop()
        assert set(codes_at_stop.values()) == {0}, codes_at_stop
    finally:
        for channel in channels:
            await channel.close()
        await tap.close()
    report(
        seed=seed,
        processes="3 allocation + 2 inventory",
        skus=SKUS,
        clients=CLIENTS,
        allocate_calls=codes["allocate OK"],
        other_operations=sum(v for k, v in codes.items() if not k.startswith("allocate")),
        outcomes=dict(codes),
        seconds=round(elapsed, 1),
        calls_per_second=round((allocates + others) / elapsed),
        refusals_checked=len(refusals),
        reservations=len(fills),
        line_reserved_events=len(tap.distinct("line.reserved")),
        duplicate_deliveries=tap.duplicates(),
        invariant_checks=checks,
    )


async def _compare_with_model(
    a_conn: asyncpg.Connection,
    i_conn: asyncpg.Connection,
    supply: Counter[str],
    placed: dict[str, str],
    cancelled: set[str],
    shipped: Counter[str],
) -> int:
    rows = await a_conn.fetch(
        """select line_id, sku, quantity, allow_partial, reserved, fulfilled, cancelled
           from line order by sku, priority desc, placed_at, id"""
    )
    assert {r["line_id"] for r in rows} == set(placed)
    by_sku: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_sku[r["sku"]].append(r)
    checks = 1
    stock = {r["sku"]: r["on_hand"] for r in await i_conn.fetch("select sku, on_hand from stock")}
    summaries = {
        r["sku"]: r for r in await a_conn.fetch("select sku, free_units, reserved_units from sku")
    }
    for sku in set(by_sku) | set(supply):
        model = Model()
        for seq, r in enumerate(by_sku.get(sku, [])):
            line = ModelLine(r["line_id"], r["quantity"], 0, seq, r["allow_partial"])
            line.fulfilled = shipped[r["line_id"]]
            line.cancelled = r["line_id"] in cancelled
            model.lines[line.line_id] = line
        model.free = supply[sku] - sum(ln.fulfilled for ln in model.lines.values())
        model.fill()
        actual = {
            r["line_id"]: (r["reserved"], r["fulfilled"], r["cancelled"])
            for r in by_sku.get(sku, [])
        }
        assert actual == {
            ln.line_id: (ln.reserved, ln.fulfilled, ln.cancelled) for ln in model.lines.values()
        }, sku
        reserved = sum(ln.reserved for ln in model.lines.values())
        fulfilled = sum(ln.fulfilled for ln in model.lines.values())
        # Never oversold: what is promised or shipped is what came in, no more.
        assert reserved + fulfilled + model.free == supply[sku]
        assert model.free >= 0
        summary = summaries[sku]
        assert (summary["free_units"], summary["reserved_units"]) == (model.free, reserved)
        # The inventory service issued exactly the shipped units, never short.
        assert stock.get(sku, 0) == supply[sku] - fulfilled
        checks += 5
    shortfall = await i_conn.fetchval("select coalesce(sum(shortfall), 0) from movement")
    assert shortfall == 0
    return checks + 1


@dataclass(frozen=True)
class Refusal:
    kind: str  # cancel or fulfil
    line_id: str
    units: int  # units asked to ship (fulfil)
    details: str


_FULFILLED = re.compile(r"is fulfilled: every unit was shipped")
_CANCELLED = re.compile(r"is cancelled; nothing can be shipped")
_SHORT = re.compile(r"has (\d+) units reserved; cannot ship (\d+)")


async def _check_refusals(a_conn: asyncpg.Connection, refusals: list[Refusal]) -> int:
    """Each refusal had the reason it gave, as far as the end state (already compared with
    the model) can tell: what a line has shipped or been cancelled stays so, and under this
    load (one priority, STRICT, supply only growing) reserved + shipped only grows."""
    lines = {
        r["line_id"]: r
        for r in await a_conn.fetch(
            "select line_id, quantity, reserved, fulfilled, cancelled from line"
        )
    }
    for refusal in refusals:
        line = lines[refusal.line_id]
        why = (refusal, dict(line))
        if refusal.kind == "cancel":
            # Only a line whose every unit was shipped cannot be cancelled; it stays so.
            assert _FULFILLED.search(refusal.details), why
            assert line["fulfilled"] == line["quantity"] and not line["cancelled"], why
        elif _CANCELLED.search(refusal.details):
            assert line["cancelled"], why
        else:
            short = _SHORT.search(refusal.details)
            assert short is not None, why
            reserved, asked = int(short.group(1)), int(short.group(2))
            # The refusal is right by its own figures, asked what was asked, and the units
            # it saw reserved are within what the line ever held.
            assert asked == refusal.units and reserved < asked, why
            assert reserved <= line["quantity"], why
            if not line["cancelled"]:
                assert reserved <= line["reserved"] + line["fulfilled"], why
    return len(refusals)

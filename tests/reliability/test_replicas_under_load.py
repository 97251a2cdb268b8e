"""Replicas under load (issue 5, scenario 1; issue 13): three allocation and two inventory
processes, 50 SKUs, 64 concurrent clients placing lines interleaved with receipts,
adjustments, transfers (at once and in transit, then received), cancels and fulfilments
spread over every replica, over `default` and three more locations.

Afterwards, for every SKU and location: what the allocation service holds there (free plus
reserved) is what the inventory service has on hand there, free is never negative (no
location promised more than it had); every line's allocations add up to its figures and lie
at locations it may ship from; the decision log explains each line's units per location;
each line.reserved event matches exactly one reservation row, at its location; the
bookkeeping invariants of tests/support/books.py hold, per location.

Ten of the SKUs live in one place (every operation at `default`, lines naming no location):
for them each line's units also equal a replay of the clients' operations through the
reference model. Why a replay is possible under concurrency there: the lines share one
priority and the STRICT policy, and supply only grows (receipts, positive adjustments). Then
the queue of a SKU is always "served prefix, at most one partly served line, waiting rest"
in placement order, whatever the interleaving, so the end state depends only on the
placement order (which the service records), the units received, and which lines were
cancelled or shipped. With several locations, mixed eligibility and transfers (which take
units back) the outcome depends on the order; those SKUs are checked by the invariants
above, and step by step in tests/e2e/test_allocation_stateful.py.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
from tests.support.reference_model import DEFAULT, Model, ModelLine
from tests.support.servers import unique

CLIENTS = 64
SKUS = 50
ONE_PLACE_SKUS = 10  # of SKUS: every operation at `default`, replayed through the model
# Inventory events the allocation service records as applied (stock.issued changes nothing
# there and is not recorded).
APPLIED = ("stock.received", "stock.adjusted", "stock.transferred", "inbound.updated")


async def test_replicas_under_concurrent_load_keep_every_location_within_its_stock(
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
    one_place = set(skus[:ONE_PLACE_SKUS])
    places = [DEFAULT, unique("W1"), unique("W2"), unique("W3")]
    # Ranks out of id order (and one tie with `default`), so FILL_RANK order is not id order.
    for location_id, rank in zip(places[1:], (5, 0, -3), strict=True):
        await inventory_stubs[0].PutLocation(
            inv.PutLocationRequest(location_id=location_id, fill_rank=rank)
        )
    a_conn, i_conn = await cluster.allocation_conn(), await cluster.inventory_conn()
    await until(
        lambda: a_conn.fetchval(
            "select count(*) = 3 from processed_event where routing_key = 'location.updated'"
        ),
        60,
        "every location known to allocation",
    )
    for sku in skus[ONE_PLACE_SKUS::2]:  # half the others take the stock that is freest
        await allocation_stubs[0].SetSkuPolicy(
            alloc.SetSkuPolicyRequest(sku=sku, location_strategy=alloc.LOCATION_STRATEGY_MOST_STOCK)
        )

    allocates, others = scaled(20_000, 200), scaled(800, 40)
    kinds = ["receive"] * (others * 3 // 10) + ["adjust"] * (others // 10)
    kinds += ["transfer"] * (others // 10) + ["transit"] * (others // 10)
    kinds += ["arrive"] * (others // 10) + ["cancel"] * (others // 10)
    kinds += ["fulfil"] * (others - len(kinds))
    ops = ["allocate"] * allocates + kinds
    rng.shuffle(ops)
    ids = itertools.count()

    supply: Counter[str] = Counter()  # units received or found, transfers aside
    in_transit: list[tuple[str, str, int]] = []  # (transfer_id, sku, units) not yet received
    placed: dict[str, tuple[str, tuple[str, ...]]] = {}  # line_id -> (sku, locations), OK
    cancelled: set[str] = set()
    had_units: list[str] = []  # lines reserved at once: where a shipment is likely
    shipped: Counter[str] = Counter()  # line_id -> units fulfilled (OK answers)
    codes: Counter[str] = Counter()
    refusals: list[Refusal] = []  # each FAILED_PRECONDITION, checked against the end state

    def somewhere(sku: str) -> str:
        # An empty location_id is `default`.
        return "" if sku in one_place else rng.choice(["", *places])

    async def one(kind: str) -> None:
        a = rng.choice(allocation_stubs)
        i = rng.choice(inventory_stubs)
        n = next(ids)
        line_id, units = "", 0
        many = [s for s in skus if s not in one_place]
        try:
            if kind == "allocate":
                sku = rng.choice(skus)
                eligible: list[str] = []
                if sku not in one_place:  # any, one or two locations
                    eligible = rng.sample(places, rng.choice((0, 0, 1, 2)))
                reply = await a.Allocate(
                    alloc.AllocateRequest(
                        order_id="o",
                        line_id=f"l{n}",
                        sku=sku,
                        quantity=rng.randint(1, 5),
                        allow_partial=rng.random() < 0.4,
                        locations=eligible,
                    ),
                    timeout=60,
                )
                placed[f"l{n}"] = (sku, tuple(eligible))
                if reply.line.reserved_quantity:
                    had_units.append(f"l{n}")
            elif kind == "receive":
                sku, units = rng.choice(skus), rng.randint(20, 400)
                await i.ReceiveStock(
                    inv.ReceiveStockRequest(
                        receipt_id=f"r{n}", sku=sku, quantity=units, location_id=somewhere(sku)
                    ),
                    timeout=60,
                )
                supply[sku] += units
            elif kind == "adjust":
                sku, units = rng.choice(skus), rng.randint(1, 50)
                await i.AdjustStock(
                    inv.AdjustStockRequest(
                        adjustment_id=f"j{n}",
                        sku=sku,
                        delta=units,
                        reason=inv_events.ADJUSTMENT_REASON_FOUND,
                        location_id=somewhere(sku),
                    ),
                    timeout=60,
                )
                supply[sku] += units
            elif kind in ("transfer", "transit"):
                # Takes units back where lines may hold them: revocations, then fills.
                sku, units = rng.choice(many), rng.randint(1, 60)
                source, destination = rng.sample(places, 2)
                call = inv.TransferStockRequest(
                    transfer_id=f"t{n}",
                    sku=sku,
                    from_location_id=source,
                    to_location_id=destination,
                    quantity=units,
                )
                if kind == "transit":
                    call.expected_at.FromDatetime(datetime.now(UTC) + timedelta(days=1))
                await i.TransferStock(call, timeout=60)
                if kind == "transit":
                    in_transit.append((f"t{n}", sku, units))
            elif kind == "arrive":
                if not in_transit:
                    kind = "skipped"
                else:
                    transfer_id, sku, units = in_transit.pop(rng.randrange(len(in_transit)))
                    await i.ReceiveStock(
                        inv.ReceiveStockRequest(
                            receipt_id=f"r{n}", sku=sku, quantity=units, inbound_id=transfer_id
                        ),
                        timeout=60,
                    )
            elif not placed:
                kind = "skipped"
            elif kind == "cancel":
                line_id = rng.choice(list(placed))
                await a.CancelLine(alloc.CancelLineRequest(order_id="o", line_id=line_id))
                cancelled.add(line_id)
            else:
                line_id = rng.choice(had_units or list(placed))
                units = rng.randint(1, 2)
                # Where it holds units, as far as the client can tell (a line holding units
                # at more than one location must name one).
                line = (await a.GetLine(alloc.GetLineRequest(order_id="o", line_id=line_id))).line
                held = [x.location_id for x in line.allocations if x.reserved_quantity]
                await a.FulfillLine(
                    alloc.FulfillLineRequest(
                        order_id="o",
                        line_id=line_id,
                        fulfillment_id=f"f{n}",
                        quantity=units,
                        location_id=rng.choice(held) if held else "",
                    ),
                    timeout=60,
                )
                shipped[line_id] += units
            codes[f"{kind} OK"] += 1
        except grpc.aio.AioRpcError as error:
            codes[f"{kind} {error.code().name}"] += 1
            # Shipping more than is reserved (there), or from a cancelled line, cancelling a
            # shipped line, or moving more than the source has on hand: refused, nothing
            # else; each refusal is checked at the end.
            assert kind in ("cancel", "fulfil", "transfer", "transit"), (
                kind,
                error.code(),
                error.details(),
            )
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
            refusals.append(Refusal(kind, line_id, units, error.details() or ""))

    async def client() -> None:
        while ops:
            await one(ops.pop())

    started = time.monotonic()
    try:
        await asyncio.gather(*(client() for _ in range(CLIENTS)))
        elapsed = time.monotonic() - started
        await _settle(a_conn, i_conn)
        checks = await _compare_locations(
            allocation_stubs[0], inventory_stubs[0], i_conn, skus, supply, in_transit
        )
        lines: dict[str, alloc.Line] = {}
        checks += await _compare_lines(allocation_stubs[0], skus, placed, cancelled, shipped, lines)
        checks += await _compare_one_place(
            a_conn, i_conn, one_place, supply, placed, cancelled, shipped
        )
        checks += _check_refusals(refusals, lines)
        fills = await a_conn.fetch(
            "select id, location_id from reservation where rule <> 'REVOKED'"
        )
        await until(
            lambda: len(tap.distinct("line.reserved")) >= len(fills),
            180,
            "every line.reserved delivered",
        )
        events = [
            alloc_events.LineReserved.FromString(b) for b in tap.distinct("line.reserved").values()
        ]
        by_row = Counter(e.reservation_id for e in events)
        assert set(by_row) == {r["id"] for r in fills}
        assert set(by_row.values()) == {1}
        at = {r["id"]: r["location_id"] for r in fills}
        assert all(e.location_id == at[e.reservation_id] for e in events)
        checks += 3 + await check_allocation(a_conn) + await check_inventory(i_conn)
        codes_at_stop = await cluster.stop()
        assert set(codes_at_stop.values()) == {0}, codes_at_stop
    finally:
        await a_conn.close()
        await i_conn.close()
        for channel in channels:
            await channel.close()
        await tap.close()
    report(
        seed=seed,
        processes="3 allocation + 2 inventory",
        skus=SKUS,
        locations=len(places),
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


async def _settle(a_conn: asyncpg.Connection, i_conn: asyncpg.Connection) -> None:
    """Waits until every event went out and was applied: inventory's stock events in
    allocation, allocation's fulfilments in inventory."""

    async def applied() -> bool:
        published = await i_conn.fetch(
            "select routing_key, count(*) from outbox where routing_key = any($1) group by 1",
            list(APPLIED),
        )
        consumed = await a_conn.fetch(
            """select routing_key, count(*) from processed_event where routing_key = any($1)
               group by 1""",
            list(APPLIED),
        )
        return dict(published) == dict(consumed)

    async def issued() -> bool:
        fulfilments = await a_conn.fetchval("select count(*) from fulfillment")
        issues = await i_conn.fetchval("select count(*) from movement where kind = 'ISSUE'")
        return bool(fulfilments == issues)

    await until(lambda: outbox_drained(i_conn), 180, "inventory events published")
    await until(applied, 180, "every inventory event applied")
    await until(lambda: outbox_drained(a_conn), 180, "allocation events published")
    await until(issued, 180, "every fulfilment issued")


async def _compare_locations(
    a: AllocationServiceStub,
    i: InventoryServiceStub,
    i_conn: asyncpg.Connection,
    skus: list[str],
    supply: Counter[str],
    in_transit: list[tuple[str, str, int]],
) -> int:
    """No location promised more than it had: at each (SKU, location) the allocation
    service's free plus reserved is the inventory service's on hand, free is never negative;
    shipments short of stock are exactly the shrinkage allocation could not match."""
    checks = 0
    shortfall = dict(
        await i_conn.fetch("select sku, coalesce(sum(shortfall), 0) from movement group by sku")
    )
    issued = dict(
        await i_conn.fetch(
            "select sku, -coalesce(sum(quantity), 0) from movement where kind = 'ISSUE' "
            "group by sku"
        )
    )
    travelling = Counter[str]()
    for _, sku, units in in_transit:
        travelling[sku] += units
    for sku in skus:
        try:
            summary = (await a.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=sku))).summary
            stock = (await i.GetStock(inv.GetStockRequest(sku=sku))).stock
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND and not supply[sku], sku
            continue
        held = {
            x.location_id: x.free_units + x.reserved_units
            for x in summary.locations
            if x.free_units or x.reserved_units
        }
        on_hand = {x.location_id: x.on_hand for x in stock.locations if x.on_hand}
        assert held == on_hand, sku
        assert all(x.free_units >= 0 and x.reserved_units >= 0 for x in summary.locations)
        assert (summary.free_units, summary.reserved_units) == (
            sum(x.free_units for x in summary.locations),
            sum(x.reserved_units for x in summary.locations),
        )
        assert summary.unmatched_shrinkage_units == shortfall.get(sku, 0), sku
        # The inventory ledger: what came in, less what is travelling and what was issued.
        assert stock.on_hand == supply[sku] - travelling[sku] - issued.get(sku, 0), sku
        assert stock.in_transit_quantity == travelling[sku], sku
        checks += 6
    return checks


async def _compare_lines(
    a: AllocationServiceStub,
    skus: list[str],
    placed: dict[str, tuple[str, tuple[str, ...]]],
    cancelled: set[str],
    shipped: Counter[str],
    lines: dict[str, alloc.Line],
) -> int:
    """Every line's allocations add up to its figures, at locations it may ship from; its
    shipped and cancelled state is what the clients were told. Fills `lines`."""
    checks = 0
    for sku in skus:
        token = ""
        while True:
            reply = await a.ListLines(
                alloc.ListLinesRequest(sku=sku, page_size=1000, page_token=token)
            )
            for line in reply.lines:
                lines[line.line_id] = line
                assert (sku, tuple(line.locations)) == placed[line.line_id], line
                assert line.reserved_quantity == sum(
                    x.reserved_quantity for x in line.allocations
                ), line
                assert line.fulfilled_quantity == sum(
                    x.fulfilled_quantity for x in line.allocations
                ), line
                assert line.fulfilled_quantity == shipped[line.line_id], line
                assert line.reserved_quantity + line.fulfilled_quantity <= line.quantity, line
                if line.locations:
                    assert {x.location_id for x in line.allocations} <= set(line.locations)
                cancelled_now = line.status == alloc_events.LINE_STATUS_CANCELLED
                assert cancelled_now == (line.line_id in cancelled), line
                assert not (cancelled_now and line.reserved_quantity), line
                checks += 7
            token = reply.next_page_token
            if not token:
                break
    assert set(lines) == set(placed)
    return checks + 1


async def _compare_one_place(
    a_conn: asyncpg.Connection,
    i_conn: asyncpg.Connection,
    one_place: set[str],
    supply: Counter[str],
    placed: dict[str, tuple[str, tuple[str, ...]]],
    cancelled: set[str],
    shipped: Counter[str],
) -> int:
    """The SKUs of one place: each line's units equal the reference model's replay."""
    rows = await a_conn.fetch(
        """select line_id, sku, quantity, allow_partial, reserved, fulfilled, cancelled
           from line where sku = any($1) order by sku, priority desc, placed_at, id""",
        list(one_place),
    )
    assert {r["line_id"] for r in rows} == {k for k, v in placed.items() if v[0] in one_place}
    by_sku: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_sku[r["sku"]].append(r)
    checks = 1
    stock = {r["sku"]: r["on_hand"] for r in await i_conn.fetch("select sku, on_hand from stock")}
    summaries = {
        r["sku"]: r for r in await a_conn.fetch("select sku, free_units, reserved_units from sku")
    }
    for sku in (set(by_sku) | set(supply)) & one_place:
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
    shortfall = await i_conn.fetchval(
        "select coalesce(sum(shortfall), 0) from movement where sku = any($1)", list(one_place)
    )
    assert shortfall == 0
    return checks + 1


@dataclass(frozen=True)
class Refusal:
    kind: str  # cancel, fulfil, transfer or transit
    line_id: str
    units: int  # units asked to ship (fulfil) or move (transfer)
    details: str


_FULFILLED = re.compile(r"is fulfilled: every unit was shipped")
_CANCELLED = re.compile(r"is cancelled; nothing can be shipped")
_SHORT = re.compile(r"has (\d+) units reserved\b.*; cannot ship (\d+)")
_NOT_ON_HAND = re.compile(r"has (\d+) on hand")


def _check_refusals(refusals: list[Refusal], lines: dict[str, alloc.Line]) -> int:
    """Each refusal gave a reason that fits what was asked and what the end state bears out
    (what a line shipped or cancelled stays so): a refused cancel, a line whose every unit
    was shipped; a refused fulfil, a cancelled line or fewer units reserved (there) than
    asked, within what the line ever held; a refused transfer, less on hand at the source
    than asked."""
    for refusal in refusals:
        if refusal.kind in ("cancel", "fulfil"):
            line = lines[refusal.line_id]
            why: object = (refusal, line)
            cancelled = line.status == alloc_events.LINE_STATUS_CANCELLED
        else:
            why = refusal
        if refusal.kind == "cancel":
            assert _FULFILLED.search(refusal.details), why
            assert line.fulfilled_quantity == line.quantity and not cancelled, why
        elif refusal.kind == "fulfil":
            if _CANCELLED.search(refusal.details):
                assert cancelled, why
                continue
            short = _SHORT.search(refusal.details)
            assert short is not None, why
            reserved, asked = int(short.group(1)), int(short.group(2))
            assert asked == refusal.units and reserved < asked, why
            assert reserved <= line.quantity, why
        else:
            short = _NOT_ON_HAND.search(refusal.details)
            assert short is not None, why
            assert int(short.group(1)) < refusal.units, why
    return len(refusals)

"""Rows on the fill: one receipt draining a queue of N single-unit lines against one raw SQL
statement doing the same fill on an identical queue; how Allocate, GetLine and the fill
behave as the queue grows; the services' memory while draining."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import aio_pika

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.inventory.v1 import inventory_pb2 as inv
from bench import lean, peer, workload
from bench.context import Bench
from bench.events import subscriber_queue
from bench.measure import Load, RssSampler
from bench.report import Figure

FILL_PROBE = 1_000  # lines one receipt fills in the "fill time vs queue length" probe
PUBLISH_WINDOW = 60.0  # seconds the relay's rate after a drain is measured over, at most
SUBSCRIBER_KEEPS = 100_000  # the drain's subscriber queue drops its oldest beyond this


async def _receive(bench: Bench, sku: str, units: int) -> float:
    """Receives `units` of `sku` at the inventory service; returns when it was sent."""
    sent = time.time()
    await bench.inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=f"rcpt-{uuid.uuid4().hex}", sku=sku, quantity=units),
        timeout=60,
    )
    return sent


async def _reserved(bench: Bench, sku: str, units: int, within: float) -> float:
    """When the allocation database first showed `units` reserved for `sku` (committed)."""
    return await workload.wait_for(
        bench.alloc_pool,
        "select reserved_units >= $2 from sku where sku = $1",
        sku,
        units,
        within=within,
    )


async def _published(bench: Bench, sku: str, committed: float) -> tuple[int, float]:
    """(events of `sku` the relay published, seconds since the fill committed): when all are
    out, or after PUBLISH_WINDOW seconds."""
    # An index probe (outbox_unsent), not a count: counting a 1,000,000-row outbox every
    # poll took a core of the 2 away from the relay being measured.
    query = "select exists (select 1 from outbox where sent_at is null and sku = $1)"
    while True:
        pending = await bench.alloc_pool.fetchval(query, sku)
        elapsed = time.time() - committed
        if not pending or elapsed >= PUBLISH_WINDOW:
            break
        await asyncio.sleep(0.05)
    sent = await bench.alloc_pool.fetchval(
        "select count(*) from outbox where sku = $1 and sent_at is not null", sku
    )
    return sent, elapsed


async def _timeline(bench: Bench, sku: str, sent: float, committed: float) -> dict[str, float]:
    """Where a drain's time went, from the timestamps the allocation database recorded."""
    row = await bench.alloc_pool.fetchrow(
        """select extract(epoch from p.processed_at)::float8 as started,
                  extract(epoch from min(r.created_at))::float8 as first_reservation,
                  extract(epoch from max(r.created_at))::float8 as last_reservation
           from reservation r join processed_event p on p.event_id = r.cause_event_id
           where r.sku = $1 group by p.processed_at""",
        sku,
    )
    return {
        "receipt → fill tx start (inventory, relay, broker, consumer)": row["started"] - sent,
        "fill tx start → first reservation row": row["first_reservation"] - row["started"],
        "first → last reservation row (reading + writing chunks)": (
            row["last_reservation"] - row["first_reservation"]
        ),
        "last reservation row → commit seen (events, outbox rows, commit)": (
            committed - row["last_reservation"]
        ),
        "total": committed - sent,
    }


async def _probe(bench: Bench, sku: str, length: int) -> tuple[Load, Load]:
    """Allocate (appending to the queue) and GetLine (random waiting lines), one caller."""
    rng = random.Random(length)
    allocate: list[float] = []
    get_line: list[float] = []
    tag = uuid.uuid4().hex[:6]
    for i in range(bench.sizes.probe_calls):
        start = time.perf_counter()
        await bench.allocation.Allocate(
            alloc.AllocateRequest(order_id=f"g{tag}-{i}", line_id="1", sku=sku, quantity=1),
            timeout=60,
        )
        allocate.append(time.perf_counter() - start)
    for _ in range(bench.sizes.probe_calls):
        order_id = f"Q{sku}-{rng.randint(1, length)}"
        start = time.perf_counter()
        await bench.allocation.GetLine(
            alloc.GetLineRequest(order_id=order_id, line_id="1"), timeout=60
        )
        get_line.append(time.perf_counter() - start)
    return Load(allocate, sum(allocate), 0), Load(get_line, sum(get_line), 0)


async def _drain_one(bench: Bench, length: int, *, profile: bool) -> dict[str, Any]:
    """Service drain and raw fill of two identical queues of `length` lines."""
    sku = f"D{uuid.uuid4().hex[:6]}"
    await workload.place_waiting_lines(bench.alloc_pool, sku, length, order_prefix=f"D{sku}")
    await workload.place_waiting_lines(bench.raw_pool, sku, length, order_prefix=f"D{sku}")
    await workload.outbox_settled(bench.alloc_pool)
    pids = {"allocation": bench.env.allocation.pid, "inventory": bench.env.inventory.pid}
    sampler = RssSampler(pids)
    result: dict[str, Any] = {"queue_length": length}
    # A subscriber of line.reserved, as a deployment has and as the raw publish baseline
    # publishes to: the relay's rate after the drain is measured on routed, stored events.
    # (With none bound the broker drops them: less work than the baseline does.)
    connection = await aio_pika.connect_robust(bench.env.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await subscriber_queue(channel, "line.reserved", max_length=SUBSCRIBER_KEEPS)
        try:
            async with bench.accounted(f"drain_{length}") as box, sampler.sampling():
                profile_name = f"drain-{length}" if profile else None
                async with bench.profiler.record(bench.env.allocation.pid, profile_name):
                    sent = await _receive(bench, sku, length)
                    committed = await _reserved(bench, sku, length, within=600 + length / 100)
                result["service_drain_s"] = committed - sent
                box["service_drain_s"] = result["service_drain_s"]
            result["timeline_s"] = await _timeline(bench, sku, sent, committed)
            # The relay then publishes one line.reserved per filled line: part of the drain
            # too. Measured over at most PUBLISH_WINDOW seconds (a 1M backlog would take
            # many minutes); its CPU apart (per event, comparable however loaded).
            async with bench.accounted(f"drain_{length}_relay") as box:
                result["events_published"], result["events_published_s"] = await _published(
                    bench, sku, committed
                )
                box["events"] = result["events_published"]
        finally:
            await queue.delete(if_unused=False, if_empty=False)
    result["peak_rss_mb"] = sampler.peak_mb()
    lines, raw_s = await workload.raw_fill(bench.raw_pool, sku, length)
    assert lines == length, f"raw fill filled {lines} of {length} lines"
    result["raw_drain_s"] = raw_s
    if length == bench.sizes.drain_lines:
        # The physical limit (a lean schema) and what each part of ours adds to it.
        result["lean_s"] = await lean.variants(bench.raw_pool, length)
    state = await bench.alloc_pool.fetchrow(
        """select waiting_lines, reserved_units, free_units,
                  (select count(*) from reservation where sku = $1) as reservations
           from sku where sku = $1""",
        sku,
    )
    result["after"] = dict(state)
    return result


LOCATIONS = 4  # the drain over several locations: units spread over this many
RESTRICTED = 8  # ... and every 8th line may ship only from the last-ranked of them


async def _drain_locations(bench: Bench, length: int) -> float:
    """Seconds one receipt takes to drain `length` lines when the units are spread over
    LOCATIONS locations (docs/spec.md §8): (LOCATIONS - 1) quarters already free at other
    locations (written directly, as the queue is), the receipt brings the last one to
    `default`, and the fill walks the queue once over all of them. Eligibility is mixed:
    every RESTRICTED-th line may ship only from the last-ranked location, the others from
    any; the last location holds exactly what the restricted lines and the unrestricted
    overflow need, so every line is filled."""
    sku = f"L{uuid.uuid4().hex[:6]}"
    await workload.place_waiting_lines(bench.alloc_pool, sku, length, order_prefix=f"L{sku}")
    await workload.outbox_settled(bench.alloc_pool)
    share = length // LOCATIONS
    others = [(f"bench-{sku}-{i}", i, share) for i in range(1, LOCATIONS)]
    async with bench.alloc_pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "insert into location (location_id, name, fill_rank) values ($1, $1, $2)",
            [(loc, rank) for loc, rank, _ in others],
        )
        await conn.executemany(
            "insert into sku_location (sku, location_id, free_units) values ($1, $2, $3)",
            [(sku, loc, units) for loc, _, units in others],
        )
        await conn.execute(
            "update sku set free_units = free_units + $2 where sku = $1",
            sku,
            share * (LOCATIONS - 1),
        )
        await conn.execute(
            "update line set locations = array[$2] where sku = $1 and sku_seq % $3 = 0",
            sku,
            others[-1][0],
            RESTRICTED,
        )
    last = length - share * (LOCATIONS - 1)
    sent = await _receive(bench, sku, last)
    committed = await _reserved(bench, sku, length, within=600 + length / 100)
    await workload.outbox_settled(bench.alloc_pool)
    return committed - sent


async def _fill_probe(bench: Bench, length: int) -> dict[str, Any]:
    """Allocate/GetLine latency and the time to fill FILL_PROBE lines, on a queue of `length`."""
    sku = f"Q{uuid.uuid4().hex[:6]}"
    await workload.place_waiting_lines(bench.alloc_pool, sku, length, order_prefix=f"Q{sku}")
    await workload.place_waiting_lines(bench.raw_pool, sku, length, order_prefix=f"Q{sku}")
    await workload.outbox_settled(bench.alloc_pool)
    allocate, get_line = await _probe(bench, sku, length)
    await workload.outbox_settled(bench.alloc_pool)
    units = min(FILL_PROBE, length)
    sent = await _receive(bench, sku, units)
    committed = await _reserved(bench, sku, units, within=300)
    _, raw_s = await workload.raw_fill(bench.raw_pool, sku, units)
    await workload.outbox_settled(bench.alloc_pool)
    return {
        "allocate": allocate.summary(),
        "get_line": get_line.summary(),
        "service_fill_1k_s": committed - sent,
        "raw_fill_1k_s": raw_s,
    }


def _schema_costs(lines: int, seconds: dict[str, float]) -> list[dict[str, object]]:
    """Per lean variant: lines/s, µs per line, and what its part added per line; then the
    other design's statement."""
    out: list[dict[str, object]] = []
    previous = None
    for part in lean.PARTS:
        per_line = seconds[part] / lines * 1e6
        out.append(
            {
                "variant": lean.LABELS[part],
                "per_second": lines / seconds[part],
                "us_per_line": per_line,
                "adds_us_per_line": None if previous is None else per_line - previous,
            }
        )
        previous = per_line
    # Another design's statement beside them (bench/lean.py, REDESIGN): not a step of theirs.
    per_line = seconds[lean.REDESIGN] / lines * 1e6
    out.append(
        {
            "variant": lean.REDESIGN_LABEL,
            "per_second": lines / seconds[lean.REDESIGN],
            "us_per_line": per_line,
            "adds_us_per_line": None,
        }
    )
    return out


async def growth_rows(bench: Bench) -> None:
    """Drain (the row's size), growth over the queue lengths, and memory while draining."""
    sizes = bench.sizes
    lengths = sorted({*sizes.queue_lengths, sizes.drain_lines})
    series: list[dict[str, Any]] = []
    for length in lengths:
        point = await _fill_probe(bench, length)
        point.update(await _drain_one(bench, length, profile=length == sizes.drain_lines))
        series.append(point)
        print(
            f"  queue {length:>9,}: drain {point['service_drain_s']:.2f} s "
            f"(raw {point['raw_drain_s']:.2f} s), fill 1k {point['service_fill_1k_s']:.3f} s, "
            f"Allocate p50 {point['allocate']['p50_ms']:.1f} ms, "
            f"GetLine p50 {point['get_line']['p50_ms']:.1f} ms, "
            f"RSS {point['peak_rss_mb']}",
            flush=True,
        )
    bench.results.details["growth"] = {"sizes": series}
    variant = f"P{uuid.uuid4().hex[:6]}"
    await peer.place_backorders(bench.raw_pool, variant, sizes.drain_lines)
    filled, peer_s = await peer.process_backorders(bench.raw_pool, variant, sizes.drain_lines)
    assert filled == sizes.drain_lines, f"the peer filled {filled} of {sizes.drain_lines}"
    print(f"  Spree/Solidus process_backorders of {filled:,} units: {peer_s:.2f} s", flush=True)
    bench.results.details["peer_process_backorders_s"] = peer_s
    located_s = await _drain_locations(bench, sizes.drain_lines)
    print(f"  drain over {LOCATIONS} locations: {located_s:.2f} s", flush=True)
    bench.results.details["drain_locations_s"] = located_s
    by_length = {p["queue_length"]: p for p in series}
    add = bench.results.add

    drain = by_length[sizes.drain_lines]
    rate = drain["queue_length"] / drain["service_drain_s"]
    raw_rate = drain["queue_length"] / drain["raw_drain_s"]
    lean_s: dict[str, float] = drain["lean_s"]
    lean_rate = drain["queue_length"] / lean_s[lean.BASELINE]
    costs = _schema_costs(drain["queue_length"], lean_s)
    bench.results.details["drain_schema_costs"] = costs
    for c in costs:
        print(
            f"  {c['variant']:<55} {c['per_second']:>9,.0f}/s {c['us_per_line']:6.1f} µs/line",
            flush=True,
        )
    add(
        Figure(
            "drain",
            f"one receipt fills {sizes.drain_lines:,} lines: lines/s",
            rate,
            "/s",
            "≥ 50% of the lean fill + events",
            lean_rate,
            "lean set-based fill + events",
            passed=rate >= 0.5 * lean_rate,
        )
    )
    add(
        Figure(
            "drain",
            "the same drain against our own schema's set-based fill (no events)",
            rate,
            "/s",
            "",
            raw_rate,
            "one set-based SQL, own schema",
        )
    )

    peer_rate = sizes.drain_lines / peer_s
    add(
        Figure(
            "drain",
            f"the same drain against the Spree/Solidus fill ({sizes.drain_lines:,} units)",
            rate,
            "/s",
            "≥ 10x the peer (issue 16)",
            peer_rate,
            "process_backorders, per unit",
            passed=rate >= 10 * peer_rate,
        )
    )

    located_rate = drain["queue_length"] / located_s
    add(
        Figure(
            "drain",
            f"the same drain over {LOCATIONS} locations, mixed eligibility: lines/s",
            located_rate,
            "/s",
            "≥ 0.8 of the one-location drain",
            rate,
            "one location",
            passed=located_rate >= 0.8 * rate,
        )
    )

    # The relay after a drain: a backlog of one line.reserved per filled line.
    backlog_rate = drain["events_published"] / drain["events_published_s"]
    raw_publish = bench.results.details.get("outbox_raw_publish", {}).get("raw", {})
    raw_publish_rate = raw_publish.get("per_second")
    add(
        Figure(
            "outbox",
            f"events out after the drain ({sizes.drain_lines:,} backlog) /s",
            backlog_rate,
            "/s",
            "≥ 80% of raw",
            raw_publish_rate,
            "aio-pika publish+confirm" if raw_publish_rate else "",
            passed=backlog_rate >= 0.8 * raw_publish_rate if raw_publish_rate else None,
        )
    )

    small, large = by_length[lengths[0]], by_length[lengths[-1]]
    span = f"{lengths[0]:,}→{lengths[-1]:,}"
    for key, label in (("allocate", "Allocate"), ("get_line", "GetLine")):
        add(
            Figure(
                "growth",
                f"{label} p50 at {lengths[-1]:,} waiting (vs {lengths[0]:,})",
                large[key]["p50_ms"],
                "ms",
                f"flat {span}: ≤ 2x (my reading)",
                small[key]["p50_ms"],
                f"p50 at {lengths[0]:,}",
                passed=large[key]["p50_ms"] <= 2 * small[key]["p50_ms"],
            )
        )
    add(
        Figure(
            "growth",
            f"fill of 1k lines from a queue of {lengths[-1]:,}",
            large["service_fill_1k_s"] * 1000,
            "ms",
            "not in queue length: ≤ 2x",
            small["service_fill_1k_s"] * 1000,
            f"queue of {lengths[0]:,}",
            passed=large["service_fill_1k_s"] <= 2 * small["service_fill_1k_s"],
        )
    )
    if len(lengths) >= 2:
        prev = by_length[lengths[-2]]
        per_line = large["service_drain_s"] / large["queue_length"] * 1e6
        prev_per_line = prev["service_drain_s"] / prev["queue_length"] * 1e6
        add(
            Figure(
                "growth",
                f"drain time per line at {lengths[-1]:,}",
                per_line,
                "µs",
                f"linear: ≤ 2x per line at {lengths[-2]:,}",
                prev_per_line,
                f"at {lengths[-2]:,}",
                passed=per_line <= 2 * prev_per_line,
            )
        )

    for service in ("allocation", "inventory"):
        peak = large["peak_rss_mb"].get(service, float("nan"))
        add(
            Figure(
                "memory",
                f"{service} peak RSS draining {lengths[-1]:,}",
                peak,
                "MB",
                "≤ 200 MB (at 1,000,000)",
                passed=peak <= 200,
            )
        )
    lat = bench.results.details.setdefault("latency_percentiles", {})
    lat[f"Allocate, queue {lengths[-1]:,}"] = large["allocate"]
    lat[f"GetLine, queue {lengths[-1]:,}"] = large["get_line"]

"""Rows on the event path: the outbox relay against raw publish-with-confirms, and the latency
from a receipt at the inventory service to `line.reserved` at a subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import grpc
from aio_pika.abc import AbstractIncomingMessage
from pamqp.common import FieldTable

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2
from backorder.inventory.v1 import inventory_pb2 as inv
from bench import workload
from bench.context import CONCURRENCY, LATENCY_RATE, SKUS, Bench
from bench.measure import Load, closed_loop, percentile
from bench.report import Figure

# Publishes in flight at once in the raw baseline (the relay's batch is 500 as well).
RAW_WINDOW = 500


async def subscriber_queue(
    channel: aio_pika.abc.AbstractChannel, key: str, *, max_length: int | None = None
) -> aio_pika.abc.AbstractQueue:
    """A subscriber's durable queue on allocation.events (messages are persisted to disk);
    with `max_length`, the oldest messages beyond it are dropped (routed and stored first)."""
    exchange = await channel.declare_exchange(
        workload.ALLOCATION_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
    )
    arguments: FieldTable | None = {"x-max-length": max_length} if max_length else None
    queue = await channel.declare_queue(
        f"bench-sub-{uuid.uuid4().hex[:8]}", durable=True, arguments=arguments
    )
    await queue.bind(exchange, key)
    return queue


async def raw_publish(channel: aio_pika.abc.AbstractChannel, count: int) -> float:
    """Persistent, mandatory publishes with confirms, RAW_WINDOW in flight; messages/s."""
    exchange = await channel.get_exchange(workload.ALLOCATION_EXCHANGE)
    bodies = workload.reserved_bodies(count, "RAWPUB")
    window = asyncio.Semaphore(RAW_WINDOW)

    async def publish(event_id: uuid.UUID, body: bytes) -> None:
        async with window:
            await exchange.publish(
                aio_pika.Message(
                    body=body,
                    content_type="application/x-protobuf",
                    type="backorder.allocation.v1.LineReserved",
                    message_id=str(event_id),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    timestamp=datetime.now(UTC),
                ),
                "line.reserved",
                mandatory=True,
                timeout=30,
            )

    start = time.perf_counter()
    await asyncio.gather(*(publish(e, b) for e, b in bodies))
    return count / (time.perf_counter() - start)


async def outbox_row(bench: Bench) -> None:
    count = bench.sizes.outbox_events
    connection = await aio_pika.connect_robust(bench.env.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await subscriber_queue(channel, "line.#")
        await workload.outbox_settled(bench.alloc_pool)
        await queue.purge()
        sku = f"OUTBOX{uuid.uuid4().hex[:6]}"
        bodies = workload.reserved_bodies(count, sku)
        async with bench.accounted("outbox") as box:
            async with bench.profiler.record(bench.env.allocation.pid, "outbox"):
                async with bench.alloc_pool.acquire() as conn:
                    await workload.add_outbox_rows(conn, sku, bodies)
                committed = time.time()
                await workload.outbox_settled(bench.alloc_pool, within=600)
            last_sent = await bench.alloc_pool.fetchval(
                "select extract(epoch from max(sent_at))::float8 from outbox where sku = $1", sku
            )
            service_rate = count / (last_sent - committed)
            box["service"] = {"events": count, "seconds": last_sent - committed}
        await queue.purge()
        await raw_publish(channel, min(1000, count))  # warm-up
        await queue.purge()
        async with bench.accounted("outbox_raw_publish") as box:
            raw_rate = await raw_publish(channel, count)
            box["raw"] = {"events": count, "per_second": raw_rate, "window": RAW_WINDOW}
        await queue.delete(if_unused=False, if_empty=False)
    bench.results.details["outbox"]["service"]["per_second"] = service_rate
    bench.results.add(
        Figure(
            "outbox",
            "events out of the outbox /s",
            service_rate,
            "/s",
            "≥ 80% of raw",
            raw_rate,
            "aio-pika publish+confirm",
            passed=service_rate >= 0.8 * raw_rate,
        )
    )


async def _place_one_line_each(bench: Bench, skus: list[str], tag: str) -> None:
    async def call(i: int) -> object:
        return await bench.allocation.Allocate(
            alloc.AllocateRequest(order_id=f"lat{tag}-{i}", line_id="1", sku=skus[i], quantity=1),
            timeout=30,
        )

    await closed_loop(call, len(skus), CONCURRENCY)


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": percentile(values, 50) * 1000,
        "p90_ms": percentile(values, 90) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values, default=float("nan")) * 1000,
    }


async def _allocate_until(bench: Bench, stop: asyncio.Event) -> Load:
    """CONCURRENCY callers running Allocate (1 unit, SKUS SKUs without stock, so every line
    is backordered) back to back until `stop` is set."""
    tag = uuid.uuid4().hex[:6]
    skus = [f"M{tag}-{n}" for n in range(SKUS)]
    latencies: list[float] = []
    errors = 0
    counter = itertools.count()

    async def worker() -> None:
        nonlocal errors
        while not stop.is_set():
            i = next(counter)
            start = time.perf_counter()
            try:
                await bench.allocation.Allocate(
                    alloc.AllocateRequest(
                        order_id=f"m{tag}-{i}", line_id="1", sku=skus[i % SKUS], quantity=1
                    ),
                    timeout=30,
                )
            except grpc.RpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return Load(latencies, time.perf_counter() - start, errors)


async def latency_row(bench: Bench) -> None:
    """Receipts at 100/s, each for a SKU with one waiting line; time to `line.reserved`."""
    p50, p99, complete = await _receipt_latency(bench, "latency", under_load=False)
    add = bench.results.add
    label = f"receipt→line.reserved p{{}} @{LATENCY_RATE:.0f}/s"
    add(Figure("latency", label.format(50), p50, "ms", "≤ 15 ms", passed=p50 <= 15 and complete))
    add(Figure("latency", label.format(99), p99, "ms", "≤ 60 ms", passed=p99 <= 60 and complete))


async def mixed_row(bench: Bench) -> None:
    """The latency row while CONCURRENCY callers run Allocate the whole time (issue 16)."""
    p50, p99, complete = await _receipt_latency(bench, "mixed", under_load=True)
    add = bench.results.add
    label = f"receipt→line.reserved p{{}} @{LATENCY_RATE:.0f}/s, {CONCURRENCY} callers Allocate"
    add(Figure("mixed", label.format(50), p50, "ms", "≤ 15 ms", passed=p50 <= 15 and complete))
    add(Figure("mixed", label.format(99), p99, "ms", "≤ 60 ms", passed=p99 <= 60 and complete))
    load = bench.results.details["mixed"]["allocate"]
    add(Figure("mixed", "Allocate calls/s meanwhile", load["per_second"], "/s"))


async def _receipt_latency(
    bench: Bench, key: str, *, under_load: bool
) -> tuple[float, float, bool]:
    """Receipts at LATENCY_RATE/s, each for a SKU with one waiting line; the time from
    sending each to a subscriber receiving its `line.reserved`, in details[key]. With
    `under_load`, CONCURRENCY callers run Allocate from a second before the first receipt
    until the last event arrived. (p50 ms, p99 ms, every event arrived)."""
    count = bench.sizes.latency_receipts
    tag = uuid.uuid4().hex[:6]
    skus = [f"LAT{tag}-{i}" for i in range(count)]
    await _place_one_line_each(bench, skus, tag)
    await workload.outbox_settled(bench.alloc_pool)

    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        now = time.time()
        event = events_pb2.LineReserved()
        event.ParseFromString(message.body)
        arrived.setdefault(event.sku, now)
        if len(arrived) >= count:
            done.set()

    connection = await aio_pika.connect_robust(bench.env.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await subscriber_queue(channel, "line.reserved")
        consumer_tag = await queue.consume(on_message, no_ack=True)

        async def receive(i: int) -> None:
            sent[skus[i]] = time.time()
            await bench.inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=f"lat{tag}-{i}", sku=skus[i], quantity=1),
                timeout=30,
            )

        stop_load = asyncio.Event()
        load = asyncio.create_task(_allocate_until(bench, stop_load)) if under_load else None
        async with bench.accounted(key) as box:
            try:
                if load is not None:
                    await asyncio.sleep(1.0)  # the callers at full speed first
                start = time.perf_counter()
                tasks = []
                for i in range(count):
                    delay = start + i / LATENCY_RATE - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(receive(i)))
                await asyncio.gather(*tasks)
                box["offered_per_second"] = count / (time.perf_counter() - start)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), timeout=60)
            finally:
                stop_load.set()
                if load is not None:
                    box["allocate"] = (await load).summary()
        await queue.cancel(consumer_tag)
        await queue.delete(if_unused=False, if_empty=False)
    await workload.outbox_settled(bench.alloc_pool)

    latencies = [arrived[s] - sent[s] for s in skus if s in arrived]
    details: dict[str, Any] = bench.results.details[key]
    details["delivered"] = len(latencies)
    details["receipts"] = count
    details["end_to_end"] = _stats(latencies)
    details["stages"] = await _stages(bench, skus, sent, arrived)
    name = "receipt→line.reserved" + (f", {CONCURRENCY} callers Allocate" if under_load else "")
    bench.results.details.setdefault("latency_percentiles", {})[name] = _stats(latencies)
    p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
    return p50, p99, len(latencies) == count


async def _stages(
    bench: Bench, skus: list[str], sent: dict[str, float], arrived: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Where the latency goes, from the timestamps both databases recorded on the way."""
    inv_rows = await bench.inv_pool.fetch(
        """select sku, extract(epoch from created_at)::float8 as created,
                  extract(epoch from sent_at)::float8 as sent
           from outbox where sku = any($1::text[]) and routing_key = 'stock.received'""",
        skus,
    )
    alloc_rows = await bench.alloc_pool.fetch(
        """select r.sku, extract(epoch from p.processed_at)::float8 as consumed,
                  extract(epoch from r.created_at)::float8 as filled,
                  extract(epoch from o.created_at)::float8 as evented,
                  extract(epoch from o.sent_at)::float8 as published
           from reservation r
           join processed_event p on p.event_id = r.cause_event_id
           join outbox o on o.sku = r.sku and o.routing_key = 'line.reserved'
           where r.sku = any($1::text[])""",
        skus,
    )
    inv_at = {r["sku"]: r for r in inv_rows}
    stages: dict[str, list[float]] = {
        "1 ReceiveStock tx (send → inventory outbox row)": [],
        "2 inventory relay (outbox row → confirmed)": [],
        "3 broker + allocation consumer (confirmed → fill tx start)": [],
        "4 fill tx (start → outbox row)": [],
        "5 allocation relay (outbox row → confirmed)": [],
        "6 broker → subscriber (confirmed → arrival)": [],
    }
    names = list(stages)
    for r in alloc_rows:
        sku = r["sku"]
        i = inv_at.get(sku)
        if i is None or sku not in arrived or r["published"] is None or i["sent"] is None:
            continue
        stages[names[0]].append(i["created"] - sent[sku])
        stages[names[1]].append(i["sent"] - i["created"])
        stages[names[2]].append(r["consumed"] - i["sent"])
        stages[names[3]].append(r["evented"] - r["consumed"])
        stages[names[4]].append(r["published"] - r["evented"])
        stages[names[5]].append(arrived[sku] - r["published"])
    return {name: _stats(values) for name, values in stages.items()}

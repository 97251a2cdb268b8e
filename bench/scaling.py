"""Scaling on cores: `Allocate` calls/s with 1, 2 and 4 allocation processes serving the same
database and broker — the figure that tells an operator what more processes (or a bigger
machine) buy.

Each process is a replica on its own gRPC port (as a deployment runs them behind a
balancer); the 32 callers spread their calls round-robin over the processes, one channel
each. The work is the Allocate row's: 1 unit on 1,000 SKUs (no stock, so backordered), after
a warm-up through every process. The extra replicas run only during this row; the first one
is the benchmark's own allocation service.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import allocation_pb2_grpc
from bench import workload
from bench.context import CONCURRENCY, SKUS, Bench
from bench.infra import Service
from bench.measure import Load, closed_loop
from bench.report import Figure

PROCESSES = (1, 2, 4)


@asynccontextmanager
async def _replicas(bench: Bench, extra: int) -> AsyncIterator[list[Service]]:
    """`extra` more allocation processes on the benchmark's databases and vhost."""
    base = bench.env.allocation
    started: list[Service] = []
    try:
        for i in range(extra):
            replica = Service("allocation", base.env, base.log_path.with_name(f"replica-{i}.log"))
            started.append(replica)
            await replica.start()
        yield started
    finally:
        for replica in started:
            await replica.stop()


async def _allocate(addresses: list[str], skus: list[str], total: int) -> Load:
    """`total` Allocates by CONCURRENCY callers, call i to process i mod len(addresses)."""
    channels = [grpc.aio.insecure_channel(a) for a in addresses]
    stubs = [allocation_pb2_grpc.AllocationServiceStub(c) for c in channels]
    tag = uuid.uuid4().hex[:6]

    async def call(i: int) -> object:
        return await stubs[i % len(stubs)].Allocate(
            alloc.AllocateRequest(
                order_id=f"s{tag}-{i}", line_id="1", sku=skus[i % len(skus)], quantity=1
            ),
            timeout=30,
        )

    try:
        return await closed_loop(call, total, CONCURRENCY)
    finally:
        for channel in channels:
            await channel.close()


async def scaling_row(bench: Bench) -> None:
    total = bench.sizes.allocate_calls
    rng = random.Random(11)
    skus = [f"S{uuid.uuid4().hex[:6]}-{n}" for n in range(SKUS)]
    spread = [skus[rng.randrange(SKUS)] for _ in range(total)]
    rates: dict[int, float] = {}
    details: dict[str, object] = {}
    for processes in PROCESSES:
        async with _replicas(bench, processes - 1) as extra:
            addresses = [bench.env.allocation.grpc_addr, *(r.grpc_addr for r in extra)]
            # Warm-up through every process (connections, SKU rows), not measured.
            await _allocate(addresses, skus, max(SKUS, 200 * processes))
            await workload.outbox_settled(bench.alloc_pool)
            async with bench.accounted(f"scaling_{processes}") as box:
                load = await _allocate(addresses, spread, total)
                box["service"] = load.summary()
            await workload.outbox_settled(bench.alloc_pool)
        rates[processes] = load.rate
        details[str(processes)] = load.summary()
        print(f"  {processes} process(es): {load.rate:,.0f} calls/s", flush=True)
    bench.results.details.setdefault("scaling", {}).update(details)
    previous = None
    for processes in PROCESSES:
        rate = rates[processes]
        if previous is None:
            bench.results.add(
                Figure("scaling", "Allocate calls/s, 1 allocation process", rate, "/s")
            )
        else:
            bench.results.add(
                Figure(
                    "scaling",
                    f"Allocate calls/s, {processes} processes (vs {previous})",
                    rate,
                    "/s",
                    "",
                    rates[previous],
                    f"{previous} process{'es' if previous > 1 else ''}",
                )
            )
        previous = processes

"""Allocation throughput with 1, 2, 3 allocation replicas on one database (docs/scaling.md).

    python -m bench.replicas [--calls N] [--callers N] [--max-replicas N] [--json PATH]

One inventory and N allocation processes (the same console scripts the services run as) on
throwaway databases and a vhost of the local servers (bench/infra.py). For each N, the same
closed-loop load as the benchmark's allocate row: Allocate across 1,000 SKUs at 32 callers,
the callers' calls spread round-robin over the N replicas' gRPC ports (what a client-side
round-robin or an L4 balancer in front of them does). Every replica writes to the one
primary, so N shows what the Python tier adds and where Postgres (and this machine's cores)
stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from bench.infra import Environment, Service
from bench.measure import Load, closed_loop

SKUS = 1000


async def _allocate(
    stubs: list[AllocationServiceStub], skus: list[str], total: int, callers: int
) -> Load:
    tag = uuid.uuid4().hex[:6]

    async def call(i: int) -> object:
        return await stubs[i % len(stubs)].Allocate(
            alloc.AllocateRequest(
                order_id=f"rep{tag}-{i}", line_id="1", sku=skus[i % len(skus)], quantity=1
            ),
            timeout=30,
        )

    return await closed_loop(call, total, callers)


async def measure(calls: int, callers: int, max_replicas: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    async with Environment() as env:
        replicas: list[Service] = [env.allocation]
        channels: list[grpc.aio.Channel] = []
        rng = random.Random(7)
        skus = [f"R{uuid.uuid4().hex[:6]}-{n}" for n in range(SKUS)]
        spread = [skus[rng.randrange(SKUS)] for _ in range(calls)]
        try:
            for n in range(1, max_replicas + 1):
                while len(replicas) < n:
                    extra = Service(
                        "allocation",
                        env.allocation.env,
                        env.log_dir / f"allocation-{len(replicas) + 1}.log",
                    )
                    await extra.start()
                    replicas.append(extra)
                for replica in replicas[len(channels) :]:
                    channels.append(grpc.aio.insecure_channel(replica.grpc_addr))
                stubs = [AllocationServiceStub(c) for c in channels]
                # Warm-up (not measured): every SKU row exists, every pool connection is open.
                await _allocate(stubs, skus, SKUS, callers)
                load = await _allocate(stubs, spread, calls, callers)
                row = {"replicas": n, "callers": callers, **load.summary()}
                rows.append(row)
                print(
                    f"{n} allocation replica(s): {load.rate:,.0f} Allocate/s, "
                    f"p50 {load.p(50) * 1000:.1f} ms, p99 {load.p(99) * 1000:.1f} ms, "
                    f"errors {load.errors}",
                    flush=True,
                )
        finally:
            for channel in channels:
                await channel.close()
            await asyncio.gather(*(r.stop() for r in replicas[1:]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas", description=__doc__)
    parser.add_argument("--calls", type=int, default=6000, help="measured calls per step")
    parser.add_argument("--callers", type=int, default=32, help="concurrent callers")
    parser.add_argument("--max-replicas", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.calls, args.callers, args.max_replicas))
    machine = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1)}
    print(json.dumps({"machine": machine, "rows": rows}, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

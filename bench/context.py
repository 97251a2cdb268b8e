"""What every row of the benchmark gets: the sizes of this run, the environment, gRPC stubs
of both services, the results being collected and the measuring tools."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from backorder.allocation.v1 import allocation_pb2_grpc
from backorder.inventory.v1 import inventory_pb2_grpc
from bench.infra import Environment
from bench.measure import CpuAccount, Profiler
from bench.report import Results


@dataclass(frozen=True)
class Sizes:
    name: str
    drain_lines: int  # the drain row: one receipt fills this many waiting lines
    outbox_events: int
    allocate_calls: int  # Allocate across SKUS SKUs at CONCURRENCY callers
    hot_calls: int  # Allocate on one SKU
    rpc_calls: int  # health checks (the raw RPC)
    latency_receipts: int  # receipts at LATENCY_RATE per second
    queue_lengths: tuple[int, ...]  # growth: waiting lines per queue
    probe_calls: int  # growth: Allocate / GetLine calls per queue length
    # orders: one receipt completes this many waiting 3-line ship-complete orders
    ship_complete_orders: int = 10_000


QUICK = Sizes(
    "quick", 10_000, 5_000, 3_000, 600, 3_000, 200, (1_000, 10_000), 100, ship_complete_orders=300
)
FULL = Sizes(
    "full", 100_000, 20_000, 20_000, 3_000, 20_000, 1_000, (1_000, 10_000, 100_000, 1_000_000), 300
)
DEFAULT = Sizes(
    "default", 100_000, 20_000, 10_000, 2_000, 10_000, 500, (1_000, 10_000, 100_000), 200
)

SKUS = 1_000
CONCURRENCY = 32
LATENCY_RATE = 100.0  # receipts per second


@dataclass
class Bench:
    env: Environment
    sizes: Sizes
    results: Results
    profiler: Profiler
    allocation: allocation_pb2_grpc.AllocationServiceStub = field(init=False)
    inventory: inventory_pb2_grpc.InventoryServiceStub = field(init=False)
    allocation_channel: grpc.aio.Channel = field(init=False)
    inventory_channel: grpc.aio.Channel = field(init=False)

    async def open(self) -> None:
        self.allocation_channel = grpc.aio.insecure_channel(self.env.allocation.grpc_addr)
        self.inventory_channel = grpc.aio.insecure_channel(self.env.inventory.grpc_addr)
        self.allocation = allocation_pb2_grpc.AllocationServiceStub(self.allocation_channel)
        self.inventory = inventory_pb2_grpc.InventoryServiceStub(self.inventory_channel)

    async def close(self) -> None:
        await self.allocation_channel.close()
        await self.inventory_channel.close()

    def cpu(self) -> CpuAccount:
        import os

        mine = {
            self.env.allocation.pid: "allocation service",
            self.env.inventory.pid: "inventory service",
            os.getpid(): "bench client",
        }
        return CpuAccount(mine, self.env.databases)

    @contextlib.asynccontextmanager
    async def accounted(self, key: str) -> AsyncIterator[dict[str, Any]]:
        """CPU seconds per component while the block runs, stored in details[key]['cpu']."""
        account = self.cpu()
        account.start()
        box: dict[str, Any] = {}
        try:
            yield box
        finally:
            box["cpu"] = account.stop()
            self.results.details.setdefault(key, {}).update(box)

    @property
    def alloc_pool(self) -> Any:
        assert self.env.allocation_pool is not None
        return self.env.allocation_pool

    @property
    def inv_pool(self) -> Any:
        assert self.env.inventory_pool is not None
        return self.env.inventory_pool

    @property
    def raw_pool(self) -> Any:
        assert self.env.raw_pool is not None
        return self.env.raw_pool

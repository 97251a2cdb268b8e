"""What a benchmark run stands on: throwaway databases and a RabbitMQ vhost on the local
servers, and both services as real processes (their console scripts) on free ports.

Nothing here is fixed: names are unique per run and ports are picked free, so a run can go
on next to the test suites of other engineers on the same machine. Everything made is
removed again when the run ends, also when it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import db
from tests.support.processes import free_port

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
AMQP_SERVER = os.environ.get("BENCH_AMQP_SERVER", "amqp://guest:guest@127.0.0.1:5672")
ALLOCATION_MIGRATIONS = "services.allocation.migrations"
BIN = Path(sys.executable).parent


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def database_url(name: str) -> str:
    return f"{PG_SERVER}/{name}"


def _rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        raise RuntimeError("rabbitmqctl not found: the benchmark makes a vhost per run with it")
    subprocess.run([ctl, "-q", *args], check=True, timeout=60)


@dataclass
class Service:
    """One `backorder-<name> serve` process with its own ports and log file."""

    name: str
    env: dict[str, str]
    log_path: Path
    grpc_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    metrics_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, within: float = 60) -> None:
        prefix = self.name.upper()
        env = {
            **os.environ,
            **self.env,
            f"{prefix}_GRPC_ADDR": self.grpc_addr,
            f"{prefix}_METRICS_ADDR": self.metrics_addr,
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(BIN / f"backorder-{self.name}"), "serve", env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + within
        async with grpc.aio.insecure_channel(self.grpc_addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not serving after {within} s:\n{self.log_tail()}")

    async def stop(self, within: float = 30) -> int | None:
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), within)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Environment:
    """Databases, vhost and services of one run. `async with Environment() as env: ...`"""

    def __init__(self, *, log_dir: Path | None = None) -> None:
        self.vhost = unique("bo-bench")
        self.amqp_url = f"{AMQP_SERVER}/{quote(self.vhost, safe='')}"
        self.inventory_db = unique("bo_bench_inv")
        self.allocation_db = unique("bo_bench_alloc")
        # The raw baselines' database: the allocation schema, no service attached to it.
        self.raw_db = unique("bo_bench_raw")
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="bo-bench-logs-"))
        env = {
            "INVENTORY_DATABASE_URL": database_url(self.inventory_db),
            "ALLOCATION_DATABASE_URL": database_url(self.allocation_db),
            "AMQP_URL": self.amqp_url,
            "LOG_LEVEL": "WARNING",
        }
        self.inventory = Service("inventory", env, self.log_dir / "inventory.log")
        self.allocation = Service("allocation", env, self.log_dir / "allocation.log")
        self.allocation_pool: asyncpg.Pool | None = None
        self.inventory_pool: asyncpg.Pool | None = None
        self.raw_pool: asyncpg.Pool | None = None
        self._vhost_made = False

    @property
    def allocation_url(self) -> str:
        return database_url(self.allocation_db)

    @property
    def inventory_url(self) -> str:
        return database_url(self.inventory_db)

    @property
    def raw_url(self) -> str:
        return database_url(self.raw_db)

    @property
    def databases(self) -> list[str]:
        return [self.inventory_db, self.allocation_db, self.raw_db]

    async def __aenter__(self) -> Environment:
        try:
            await asyncio.to_thread(_rabbitmqctl, "add_vhost", self.vhost)
            self._vhost_made = True
            await asyncio.to_thread(
                _rabbitmqctl, "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*"
            )
            await db.migrate(self.raw_url, ALLOCATION_MIGRATIONS)
            await asyncio.gather(self.inventory.start(), self.allocation.start())
            # The bench's own connections: setup, polling for progress, the raw baselines.
            self.allocation_pool = await asyncpg.create_pool(
                self.allocation_url, min_size=1, max_size=4
            )
            self.inventory_pool = await asyncpg.create_pool(
                self.inventory_url, min_size=1, max_size=2
            )
            # 32 connections only while a raw row runs: Postgres' max_connections is shared
            # with everything else on the machine, so idle ones are closed after 2 s.
            self.raw_pool = await asyncpg.create_pool(
                self.raw_url, min_size=1, max_size=32, max_inactive_connection_lifetime=2.0
            )
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for pool in (self.allocation_pool, self.inventory_pool, self.raw_pool):
            if pool is not None:
                await pool.close()
        await asyncio.gather(self.inventory.stop(), self.allocation.stop())
        conn = await asyncpg.connect(database_url("postgres"))
        try:
            for name in self.databases:
                await conn.execute(f'drop database if exists "{name}" with (force)')
        finally:
            await conn.close()
        if self._vhost_made:
            await asyncio.to_thread(_rabbitmqctl, "delete_vhost", self.vhost)

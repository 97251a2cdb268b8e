"""A whole deployment for one test: its own databases and vhost, any number of inventory and
allocation processes (console scripts), optionally behind TCP proxies to Postgres or
RabbitMQ that the test cuts and restores. Plus what tests read back: metrics, an event tap."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import asyncpg

from services.common.amqp import ALLOCATION_EXCHANGE
from tests.support.processes import ServiceProcess
from tests.support.proxy import TcpProxy
from tests.support.servers import (
    AMQP_SERVER,
    PG_SERVER,
    Vhost,
    database_url,
    drop_database,
    unique,
)


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@dataclass
class Cluster:
    """Processes of both services sharing two databases and a vhost of their own."""

    logs: Path
    broker_proxy: TcpProxy | None = None
    database_proxy: TcpProxy | None = None
    vhost: Vhost = field(default_factory=Vhost)
    inventory_db: str = field(default_factory=lambda: unique("bo_rel_inv"))
    allocation_db: str = field(default_factory=lambda: unique("bo_rel_alloc"))
    processes: list[ServiceProcess] = field(default_factory=list)

    @classmethod
    async def create_on(cls, logs: Path, vhost: Vhost) -> Cluster:
        """A deployment on `vhost` (created here) of another broker than the machine's:
        tests.support.rabbit_cluster.ClusterVhost, a RabbitMQ cluster's nodes."""
        cluster = cls(logs, vhost=vhost)
        await asyncio.to_thread(vhost.create)
        return cluster

    @classmethod
    async def create(
        cls, logs: Path, *, proxy_broker: bool = False, proxy_database: bool = False
    ) -> Cluster:
        cluster = cls(logs)
        await asyncio.to_thread(cluster.vhost.create)
        if proxy_broker:
            cluster.broker_proxy = TcpProxy(*_host_port(AMQP_SERVER, 5672))
            await cluster.broker_proxy.restore()
        if proxy_database:
            cluster.database_proxy = TcpProxy(*_host_port(PG_SERVER, 5432))
            await cluster.database_proxy.restore()
        return cluster

    # what the services are given (through the proxies when there are any)

    def _service_url(self, direct: str, proxy: TcpProxy | None) -> str:
        if proxy is None:
            return direct
        parts = urlsplit(direct)
        netloc = parts.netloc.rsplit("@", 1)
        auth = netloc[0] + "@" if len(netloc) == 2 else ""
        return parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}").geturl()

    @property
    def env(self) -> dict[str, str]:
        return {
            "INVENTORY_DATABASE_URL": self._service_url(
                database_url(self.inventory_db), self.database_proxy
            ),
            "ALLOCATION_DATABASE_URL": self._service_url(
                database_url(self.allocation_db), self.database_proxy
            ),
            "AMQP_URL": self._service_url(self.vhost.url, self.broker_proxy),
            "LOG_LEVEL": "INFO",
        }

    async def start(
        self, service: str, count: int = 1, env: dict[str, str] | None = None
    ) -> list[ServiceProcess]:
        """Starts `count` processes of `service` (in parallel) and waits until they serve.
        `env` adds to or overrides the deployment's settings for these processes."""
        started = []
        for _ in range(count):
            n = sum(p.service == service for p in self.processes) + 1
            process = ServiceProcess(
                service, {**self.env, **(env or {})}, self.logs / f"{service}-{n}.log"
            )
            self.processes.append(process)
            started.append(process)
        await asyncio.gather(*(asyncio.to_thread(p.start, 120) for p in started))
        return started

    async def stop(self) -> dict[str, int]:
        """SIGTERM to every process still running; their exit codes by log name."""
        codes = await asyncio.gather(*(asyncio.to_thread(p.stop, 60) for p in self.processes))
        return {p.log_path.stem: code for p, code in zip(self.processes, codes, strict=True)}

    async def destroy(self) -> None:
        for proxy in (self.broker_proxy, self.database_proxy):
            if proxy is not None and proxy.serving:
                await proxy.cut()
        for name in (self.inventory_db, self.allocation_db):
            await drop_database(name)
        await asyncio.to_thread(self.vhost.delete)

    def log_tails(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log_tail(30)}" for p in self.processes)

    # direct access for the test's own checks (never through the proxies)

    async def allocation_conn(self) -> asyncpg.Connection:
        return await asyncpg.connect(database_url(self.allocation_db))

    async def inventory_conn(self) -> asyncpg.Connection:
        return await asyncpg.connect(database_url(self.inventory_db))


_SAMPLE = re.compile(r"^(\w+)\{([^}]*)\} ([0-9.e+-]+)$")


def scrape(process: ServiceProcess, metric: str) -> list[tuple[dict[str, str], float]]:
    """Samples of `metric` on the process's Prometheus endpoint: (labels, value)."""
    with urllib.request.urlopen(f"http://{process.metrics_addr}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    found = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match.group(1) == metric:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            found.append((labels, float(match.group(3))))
    return found


def consumed(processes: Iterable[ServiceProcess], outcome: str) -> int:
    """Deliveries the consumers of `processes` finished with `outcome` (applied, ...)."""
    total = 0.0
    for process in processes:
        for labels, value in scrape(process, "backorder_events_consumed_total"):
            if labels.get("outcome") == outcome:
                total += value
    return int(total)


class AllocationEventTap:
    """A subscriber of allocation.events with a queue of its own: every message received,
    duplicates included (delivery is at least once)."""

    def __init__(self, url: str, keys: tuple[str, ...] = ("line.#",)) -> None:
        self._url = url
        self._keys = keys
        self.messages: list[tuple[str, str, bytes]] = []  # (routing key, message_id, body)
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None

    async def open(self) -> AllocationEventTap:
        self._connection = await aio_pika.connect_robust(self._url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=1000)
        exchange = await channel.declare_exchange(
            ALLOCATION_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(unique("tap"), exclusive=True)
        for key in self._keys:
            await queue.bind(exchange, key)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self.messages.append((message.routing_key or "", message.message_id or "", message.body))

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def distinct(self, routing_key: str) -> dict[str, bytes]:
        """Bodies by event id (message_id) of one routing key."""
        return {mid: body for key, mid, body in self.messages if key == routing_key}

    def duplicates(self) -> int:
        counts = Counter(mid for _, mid, _ in self.messages)
        return sum(n - 1 for n in counts.values())


async def until(predicate: object, timeout: float, what: str, pause: float = 0.2) -> None:
    """Polls the (async or plain) `predicate` until it is true; `what` names the wait."""
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened within {timeout} s: {what}")
        await asyncio.sleep(pause)

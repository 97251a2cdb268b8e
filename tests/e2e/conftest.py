"""Both services as real processes on the real servers, with clients and an event tap."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2_grpc
from backorder.inventory.v1 import inventory_pb2_grpc
from services.common.amqp import ALLOCATION_EXCHANGE
from tests.support.processes import ServiceProcess
from tests.support.servers import Vhost, database_url, drop_database, unique

# How long the event tap waits, after the expected events, for one more to show up before it
# concludes none will: well over the relay's publish latency (milliseconds when idle).
QUIET = 1.0


@dataclass
class System:
    inventory: ServiceProcess
    allocation: ServiceProcess
    inventory_db: str
    allocation_db: str


@pytest.fixture(scope="session")
def system(vhost: Vhost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from running_system(vhost, tmp_path_factory.mktemp("logs"), "bo_e2e")


def running_system(vhost: Vhost, logs: Path, prefix: str, **settings: str) -> Iterator[System]:
    """Both services on fresh databases (named from `prefix`) and `vhost`, with `settings`
    added to their environment; stopped gracefully (exit 0 asserted) and dropped after."""
    databases = [unique(f"{prefix}_inv"), unique(f"{prefix}_alloc")]
    env = {
        "INVENTORY_DATABASE_URL": database_url(databases[0]),
        "ALLOCATION_DATABASE_URL": database_url(databases[1]),
        "AMQP_URL": vhost.url,
        "LOG_LEVEL": "INFO",
        **settings,
    }
    inventory = ServiceProcess("inventory", env, Path(logs, "inventory.log"))
    allocation = ServiceProcess("allocation", env, Path(logs, "allocation.log"))
    inventory.start()
    allocation.start()
    yield System(inventory, allocation, *databases)
    codes = {"inventory": inventory.stop(), "allocation": allocation.stop()}
    with ThreadPoolExecutor(1) as pool:  # outside the tests' event loop
        for name in databases:
            pool.submit(asyncio.run, drop_database(name)).result()
    assert codes == {"inventory": 0, "allocation": 0}, (
        f"graceful stop failed: {codes}\n{inventory.log_tail()}\n{allocation.log_tail()}"
    )


async def rows_mentioning(database: str, *needles: str) -> dict[str, int]:
    """Rows of every table of `database` whose text (bytea bodies as hex) contains one of
    `needles`, by table: how a test shows a refused call wrote nothing, whatever the field
    it got wrong. Empty needles are left out; NULs are dropped (no text column holds one)."""
    wanted = [n.replace("\x00", "") for n in needles if n.replace("\x00", "")]
    assert wanted, "nothing to look for"
    conn = await asyncpg.connect(database_url(database))
    try:
        tables = await conn.fetch(
            "select table_name from information_schema.tables where table_schema = 'public'"
        )
        found = {}
        for (table,) in tables:
            found[table] = await conn.fetchval(
                f"""select count(*) from "{table}" t, unnest($1::text[]) n
                    where strpos(t::text, n) > 0
                       or (length(n) >= 8  -- shorter hex could occur in any body by chance
                           and strpos(t::text, encode(convert_to(n, 'UTF8'), 'hex')) > 0)""",
                wanted,
            )
        return {table: n for table, n in found.items() if n}
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def inventory(system: System) -> AsyncIterator[inventory_pb2_grpc.InventoryServiceStub]:
    async with grpc.aio.insecure_channel(system.inventory.grpc_addr) as channel:
        yield inventory_pb2_grpc.InventoryServiceStub(channel)


@pytest.fixture(scope="session")
async def allocation(system: System) -> AsyncIterator[allocation_pb2_grpc.AllocationServiceStub]:
    async with grpc.aio.insecure_channel(system.allocation.grpc_addr) as channel:
        yield allocation_pb2_grpc.AllocationServiceStub(channel)


class EventTap:
    """A queue of our own bound to allocation.events (line.# and order.#): what a subscribing
    service receives."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self._queue = queue
        self._received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def collect(
        self, predicate: object, count: int, timeout: float = 20, quiet: float = QUIET
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Waits until `count` messages matching `predicate` arrived, then keeps reading until
        nothing at all came for `quiet` seconds; returns the matching ones in order and fails
        if more than `count` came (a late duplicate is seen, not left unread)."""
        assert callable(predicate)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(matching := [m for m in self._received if predicate(m)]) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"got {len(matching)} of {count} expected events")
            await self._read(min(remaining, 5))
        while await self._read(quiet):
            assert loop.time() < deadline + timeout, f"events kept coming for {timeout} s"
        matching = [m for m in self._received if predicate(m)]
        assert len(matching) == count, (
            f"{len(matching)} events where {count} were expected: "
            f"{[(m.routing_key, m.message_id) for m in matching]}"
        )
        return matching

    async def _read(self, timeout: float) -> bool:
        """Reads one message into `_received`; False when none came within `timeout`.
        (basic.get answers at once, empty or not: this polls it.)"""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (message := await self._queue.get(fail=False, timeout=5)) is None:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        await message.ack()
        self._received.append(message)
        return True


@pytest.fixture(scope="session")
async def allocation_events(system: System, vhost: Vhost) -> AsyncIterator[EventTap]:
    async with allocation_tap(vhost, "line.#", "order.#") as tap:
        yield tap


@contextlib.asynccontextmanager
async def allocation_tap(vhost: Vhost, *keys: str) -> AsyncIterator[EventTap]:
    """A queue of our own bound to allocation.events with `keys`, read through an EventTap."""
    connection = await aio_pika.connect_robust(vhost.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            ALLOCATION_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(unique("tap"), exclusive=True)
        for key in keys:
            await queue.bind(exchange, key)
        yield EventTap(queue)

"""Both services as real processes on the real servers, with clients and an event tap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2_grpc
from backorder.inventory.v1 import inventory_pb2_grpc
from services.common.amqp import ALLOCATION_EXCHANGE
from tests.support.processes import ServiceProcess
from tests.support.servers import Vhost, database_url, drop_database, unique


@dataclass
class System:
    inventory: ServiceProcess
    allocation: ServiceProcess


@pytest.fixture(scope="session")
def system(vhost: Vhost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("logs")
    databases = [unique("bo_e2e_inv"), unique("bo_e2e_alloc")]
    env = {
        "INVENTORY_DATABASE_URL": database_url(databases[0]),
        "ALLOCATION_DATABASE_URL": database_url(databases[1]),
        "AMQP_URL": vhost.url,
        "LOG_LEVEL": "INFO",
    }
    inventory = ServiceProcess("inventory", env, Path(logs, "inventory.log"))
    allocation = ServiceProcess("allocation", env, Path(logs, "allocation.log"))
    inventory.start()
    allocation.start()
    yield System(inventory, allocation)
    codes = {"inventory": inventory.stop(), "allocation": allocation.stop()}
    with ThreadPoolExecutor(1) as pool:  # outside the tests' event loop
        for name in databases:
            pool.submit(asyncio.run, drop_database(name)).result()
    assert codes == {"inventory": 0, "allocation": 0}, (
        f"graceful stop failed: {codes}\n{inventory.log_tail()}\n{allocation.log_tail()}"
    )


@pytest.fixture(scope="session")
async def inventory(system: System) -> AsyncIterator[inventory_pb2_grpc.InventoryServiceStub]:
    async with grpc.aio.insecure_channel(system.inventory.grpc_addr) as channel:
        yield inventory_pb2_grpc.InventoryServiceStub(channel)


@pytest.fixture(scope="session")
async def allocation(system: System) -> AsyncIterator[allocation_pb2_grpc.AllocationServiceStub]:
    async with grpc.aio.insecure_channel(system.allocation.grpc_addr) as channel:
        yield allocation_pb2_grpc.AllocationServiceStub(channel)


class EventTap:
    """A queue of our own bound to allocation.events: what a subscribing service receives."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self._queue = queue
        self._received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def collect(
        self, predicate: object, count: int, timeout: float = 20
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Waits until `count` messages matching `predicate` arrived; returns them in order."""
        assert callable(predicate)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            matching = [m for m in self._received if predicate(m)]
            if len(matching) >= count:
                return matching
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"got {len(matching)} of {count} expected events")
            message = await self._queue.get(fail=False, timeout=5)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            await message.ack()
            self._received.append(message)


@pytest.fixture(scope="session")
async def allocation_events(system: System, vhost: Vhost) -> AsyncIterator[EventTap]:
    connection = await aio_pika.connect_robust(vhost.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            ALLOCATION_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(unique("tap"), exclusive=True)
        await queue.bind(exchange, "line.#")
        yield EventTap(queue)

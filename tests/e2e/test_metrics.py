"""Prometheus metrics of real service processes: the agreed families exist and move.

The allocation service here talks to RabbitMQ through a proxy the test can cut, so the outbox
gauges can be seen to rise during an outage and fall after it; its own vhost keeps the poison
message it dead-letters away from every other test.
"""

from __future__ import annotations

import asyncio
import functools
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import aio_pika
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from services.common.amqp import ALLOCATION_INBOX, INVENTORY_EXCHANGE, INVENTORY_INBOX
from tests.e2e.conftest import System
from tests.support.processes import ServiceProcess
from tests.support.proxy import TcpProxy
from tests.support.servers import Vhost, database_url, drop_database, unique

# (labels, value) of every sample, by sample name.
Samples = dict[str, list[tuple[dict[str, str], float]]]

COMMON_FAMILIES = {
    "backorder_rpc",  # backorder_rpc_total (the parser drops a counter's _total)
    "backorder_rpc_seconds",
    "backorder_outbox_pending",
    "backorder_outbox_oldest_age_seconds",
    "backorder_dead_letters",
}
ALLOCATION_FAMILIES = COMMON_FAMILIES | {
    "backorder_events_consumed",
    "backorder_backlog_units",
    "backorder_backlog_units_total",
    "backorder_waiting_lines_total",
}


def scrape(addr: str) -> tuple[set[str], Samples]:
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    families: set[str] = set()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return families, samples


def has_sample(name: str, samples: Samples, **labels: str) -> bool:
    return value(samples, name, **labels) is not None


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for sample_labels, sample_value in samples.get(name, []):
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            return sample_value
    return None


async def wait_for_metrics(
    addr: str, condition: Callable[[Samples], bool], what: str, timeout: float = 60
) -> Samples:
    """Scrapes until `condition` holds (samplers run every few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        _, samples = await asyncio.to_thread(scrape, addr)
        if condition(samples):
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"metrics never showed {what}")
        await asyncio.sleep(0.5)


@dataclass
class Metered:
    allocation: ServiceProcess
    proxy: TcpProxy
    vhost: Vhost


@pytest.fixture(scope="module")
async def metered(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Metered]:
    vhost = Vhost()
    await asyncio.to_thread(vhost.create)
    server = urlsplit(vhost.url)
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5672)
    await proxy.restore()
    userinfo = server.netloc.rpartition("@")[0]
    database = unique("bo_metrics_alloc")
    env = {
        "ALLOCATION_DATABASE_URL": database_url(database),
        "AMQP_URL": f"amqp://{userinfo}@127.0.0.1:{proxy.port}/{quote(vhost.name, safe='')}",
    }
    logs = tmp_path_factory.mktemp("metrics-logs")
    allocation = ServiceProcess("allocation", env, Path(logs, "allocation.log"))
    try:
        await asyncio.to_thread(allocation.start)
        yield Metered(allocation, proxy, vhost)
    finally:
        if not proxy.serving:  # a failed test may leave the outage on: stop cleanly anyway
            await proxy.restore()
        code = await asyncio.to_thread(allocation.stop) if allocation.process else 0
        await proxy.cut()
        await drop_database(database)
        await asyncio.to_thread(vhost.delete)
    assert code == 0, allocation.log_tail()


async def test_the_agreed_families_are_exposed_by_both_services(system: System) -> None:
    for process, expected, inbox in (
        (system.inventory, COMMON_FAMILIES, INVENTORY_INBOX),
        (system.allocation, ALLOCATION_FAMILIES, ALLOCATION_INBOX),
    ):
        families, _ = await asyncio.to_thread(scrape, process.metrics_addr)
        assert expected - families == set(), process.service
        await wait_for_metrics(
            process.metrics_addr,
            functools.partial(has_sample, "backorder_dead_letters", queue=inbox.dead_letter_queue),
            f"the dead-letter depth of {inbox.dead_letter_queue}",
        )


async def test_metrics_move_with_backlog_outbox_outage_and_dead_letters(
    metered: Metered,
) -> None:
    addr = metered.allocation.metrics_addr
    families, _ = await asyncio.to_thread(scrape, addr)
    assert ALLOCATION_FAMILIES - families == set()

    # RabbitMQ unreachable for this service: RPCs still work, events wait in the outbox.
    await metered.proxy.cut()
    sku = unique("SKU")
    async with grpc.aio.insecure_channel(metered.allocation.grpc_addr) as channel:
        reply = await AllocationServiceStub(channel).Allocate(
            alloc.AllocateRequest(
                order_id=unique("o"), line_id="1", sku=sku, quantity=5000, priority=5
            ),
            timeout=10,
        )
    assert reply.line.backordered_quantity == 5000

    samples = await wait_for_metrics(
        addr,
        lambda s: (
            value(s, "backorder_backlog_units", sku=sku) == 5000
            and (value(s, "backorder_outbox_pending") or 0) >= 1
        ),
        "the new backorder in the backlog and its event pending in the outbox",
    )
    assert (value(samples, "backorder_backlog_units_total") or 0) >= 5000
    assert (value(samples, "backorder_waiting_lines_total") or 0) >= 1
    assert (value(samples, "backorder_rpc_total", method="Allocate", code="OK") or 0) >= 1
    assert (value(samples, "backorder_rpc_seconds_count", method="Allocate") or 0) >= 1
    await wait_for_metrics(
        addr,
        lambda s: (value(s, "backorder_outbox_oldest_age_seconds") or 0) > 0,
        "the age of the oldest unsent event",
    )

    # RabbitMQ back: the relay drains the outbox and the gauges fall to zero.
    await metered.proxy.restore()
    await wait_for_metrics(
        addr,
        lambda s: (
            value(s, "backorder_outbox_pending") == 0
            and value(s, "backorder_outbox_oldest_age_seconds") == 0
        ),
        "an empty outbox after the outage",
    )

    # A message the service cannot read is dead-lettered, and the depth gauge shows it.
    dead_queue = ALLOCATION_INBOX.dead_letter_queue
    connection = await aio_pika.connect_robust(metered.vhost.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(INVENTORY_EXCHANGE)
        await exchange.publish(
            aio_pika.Message(b"not a protobuf", type="nobody.knows.This", message_id=unique("m")),
            routing_key="stock.received",
        )
    samples = await wait_for_metrics(
        addr,
        lambda s: value(s, "backorder_dead_letters", queue=dead_queue) == 1,
        f"one message in {dead_queue}",
    )
    dead_lettered = value(
        samples,
        "backorder_events_consumed_total",
        queue=ALLOCATION_INBOX.name,
        outcome="dead_lettered",
    )
    assert dead_lettered == 1

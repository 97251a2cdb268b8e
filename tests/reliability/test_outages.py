"""Outages (issue 5, scenarios 3 and 4): RabbitMQ, then Postgres, unreachable for the
services (a TCP proxy the test cuts and restores; the shared servers are never touched)
while clients keep calling. Calls succeed or fail fast with UNAVAILABLE, never hang past
their deadline; afterwards the services recover by themselves and every event is
delivered and applied once, with no half-written state."""

from __future__ import annotations

import asyncio
import time

from tests.reliability.conftest import Report, scale
from tests.support.cluster import AllocationEventTap, Cluster
from tests.support.mixed_load import settle_and_check, start_load
from tests.support.proxy import TcpProxy


async def _outage(proxy: TcpProxy, seconds: float, marks: dict[str, float]) -> None:
    await asyncio.sleep(2)
    await proxy.cut()
    marks["cut_at"] = time.monotonic()
    await asyncio.sleep(seconds)
    await proxy.restore()
    marks["restored_at"] = time.monotonic()
    await asyncio.sleep(3)  # load goes on after the return


async def test_broker_outage(cluster_factory: object, report: Report) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory(proxy_broker=True)
    proxy = cluster.broker_proxy
    assert proxy is not None
    tap = await AllocationEventTap(cluster.vhost.url, ("line.reserved",)).open()
    load, a_channel, i_channel = await start_load(cluster)
    seconds = max(5.0, 20.0 * min(scale(), 1.0))
    marks: dict[str, float] = {}
    try:
        await load.run_through(lambda: _outage(proxy, seconds, marks))
        # RabbitMQ is not on the path of a call: every one succeeded, none waited on it.
        assert {k.split()[1] for k in load.codes} == {"OK"}, load.codes
        checks = await settle_and_check(cluster, load, tap)
        codes = await cluster.stop()
        assert set(codes.values()) == {0}, (codes, cluster.log_tails())
    finally:
        await a_channel.close()
        await i_channel.close()
        await tap.close()
    report(
        outage_seconds=round(marks["restored_at"] - marks["cut_at"], 1),
        calls=dict(load.codes),
        slowest_call_seconds=round(load.slowest, 2),
        receipts=len(load.receipts),
        lines=len(load.placed),
        line_reserved_events=len(tap.distinct("line.reserved")),
        invariant_checks=checks + 2,
    )


async def test_database_outage(cluster_factory: object, report: Report) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory(proxy_database=True)
    proxy = cluster.database_proxy
    assert proxy is not None
    tap = await AllocationEventTap(cluster.vhost.url, ("line.reserved",)).open()
    load, a_channel, i_channel = await start_load(cluster)
    seconds = max(5.0, 10.0 * min(scale(), 1.0))
    marks: dict[str, float] = {}
    try:
        await load.run_through(lambda: _outage(proxy, seconds, marks))
        failures = {k for k in load.codes if not k.endswith(" OK")}
        # Fail fast and say so: UNAVAILABLE within the deadline, nothing else.
        assert {k.split()[1] for k in failures} <= {"UNAVAILABLE"}, load.codes
        assert failures, "the outage was not noticed by any call"
        # Recovered without a restart: the same processes serve again; a client retries
        # what came back UNAVAILABLE with the same idempotency key, and it lands once.
        retried = len(load.unavailable)
        for call in load.unavailable:
            await call()
        checks = await settle_and_check(cluster, load, tap)
        codes = await cluster.stop()
        assert set(codes.values()) == {0}, (codes, cluster.log_tails())
    finally:
        await a_channel.close()
        await i_channel.close()
        await tap.close()
    report(
        outage_seconds=round(marks["restored_at"] - marks["cut_at"], 1),
        calls=dict(load.codes),
        slowest_call_seconds=round(load.slowest, 2),
        retried_after_unavailable=retried,
        receipts=len(load.receipts),
        lines=len(load.placed),
        invariant_checks=checks + 4,
    )

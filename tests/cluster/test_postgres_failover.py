"""Postgres failover (issue 17): both services' databases on a primary with a synchronous
standby, managed by Patroni with etcd (tests/support/pg_cluster.py), the services given the
libpq multi-host URL of the pair. The primary is SIGKILLed (Patroni and Postgres, as a
machine dies) under mixed Allocate/ReceiveStock load; Patroni promotes the standby.

Calls in between answer UNAVAILABLE, never INTERNAL, and are retried with their keys. Then,
read from the promoted standby: every call that answered OK is there (zero acknowledged
writes lost: commits waited for the standby), every receipt applied once, nothing
dead-lettered, the bookkeeping invariants hold. Last, the killed node is started again and
must rejoin as the synchronous standby with every acknowledged receipt. The figures
(failover time, calls refused, retried, rejoin time) are printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import grpc
import pytest

from tests.support.cluster import AllocationEventTap, Cluster, until
from tests.support.mixed_load import settle_and_check, start_load
from tests.support.pg_cluster import TTL, PatroniCluster

FIGURES: list[str] = []


class _Summary:
    """Prints FIGURES in pytest's terminal summary (`-q` or not), as the reliability suite
    does; registered by the `patroni` fixture, so only when these tests ran."""

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if FIGURES:
            terminalreporter.section("postgres failover figures")
            for line in FIGURES:
                terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def patroni(request: pytest.FixtureRequest) -> Iterator[PatroniCluster]:
    request.config.pluginmanager.register(_Summary(), "postgres-failover-figures")
    pg = PatroniCluster()
    started = time.monotonic()
    pg.start()
    FIGURES.append(f"patroni pair ready in {time.monotonic() - started:.1f} s")
    try:
        yield pg
    finally:
        pg.stop()


@dataclass
class FailoverCluster(Cluster):
    """A Cluster whose databases live on the Patroni pair (URLs with both hosts)."""

    pg: PatroniCluster | None = None

    @property
    def env(self) -> dict[str, str]:
        assert self.pg is not None
        return {
            **super().env,
            "INVENTORY_DATABASE_URL": self.pg.url(self.inventory_db),
            "ALLOCATION_DATABASE_URL": self.pg.url(self.allocation_db),
        }

    async def allocation_conn(self) -> asyncpg.Connection:
        assert self.pg is not None
        return await asyncpg.connect(self.pg.url(self.allocation_db))

    async def inventory_conn(self) -> asyncpg.Connection:
        assert self.pg is not None
        return await asyncpg.connect(self.pg.url(self.inventory_db))

    async def destroy(self) -> None:
        # The databases go with the Patroni pair's directory; only the vhost is shared.
        await asyncio.to_thread(self.vhost.delete)


async def test_primary_killed_under_load_standby_takes_over(
    patroni: PatroniCluster, tmp_path: Path
) -> None:
    cluster = FailoverCluster(tmp_path, pg=patroni)
    await asyncio.to_thread(cluster.vhost.create)
    tap = AllocationEventTap(cluster.vhost.url, ("line.reserved",))
    channels: list[grpc.aio.Channel] = []
    marks: dict[str, float] = {}
    old = patroni.primary()
    assert old is not None and patroni.standby() is not None, patroni.members()

    def promoted() -> bool:
        new = patroni.primary()
        return new is not None and new is not old

    async def fail_over() -> None:
        await asyncio.sleep(3)  # load on the healthy pair first
        await asyncio.to_thread(patroni.kill, old)
        marks["killed"] = time.monotonic()
        while not await asyncio.to_thread(promoted):
            assert time.monotonic() - marks["killed"] < 90, patroni.log_tails()
            await asyncio.sleep(0.2)
        marks["promoted"] = time.monotonic()
        # Both kinds of call succeed again on the new primary.
        after = load.codes.copy()
        while not all(
            load.codes[f"{name} OK"] > after[f"{name} OK"] for name in ("Allocate", "ReceiveStock")
        ):
            assert time.monotonic() - marks["promoted"] < 60, (load.codes, cluster.log_tails())
            await asyncio.sleep(0.05)
        marks["serving"] = time.monotonic()
        await asyncio.sleep(3)  # load goes on after the switch

    try:
        await tap.open()
        load, a_channel, i_channel = await start_load(cluster)
        channels += [a_channel, i_channel]
        await load.run_through(fail_over)
        failures = {k: v for k, v in load.codes.items() if not k.endswith(" OK")}
        # Refused while no primary answered, as UNAVAILABLE only: never INTERNAL/UNKNOWN.
        assert {k.split()[1] for k in failures} <= {"UNAVAILABLE"}, load.codes
        assert failures, "no call noticed the failover"
        # The client retries what came back UNAVAILABLE with the same idempotency keys.
        retried = len(load.unavailable)
        for call in load.unavailable:
            await call()
        # Read from the promoted standby: OK'd calls there, receipts applied once, the books.
        checks = await settle_and_check(cluster, load, tap)
        codes = await cluster.stop()
        assert set(codes.values()) == {0}, (codes, cluster.log_tails())
        # The dead node comes back: Patroni rewinds it and it follows as the synchronous
        # standby, with every acknowledged receipt (so the pair is whole for the next fault).
        await asyncio.to_thread(patroni.spawn, old)
        marks["restarted"] = time.monotonic()
        await until(
            lambda: patroni.standby() is old, 120, "the killed node rejoined as the standby"
        )
        marks["rejoined"] = time.monotonic()
        rejoined = await asyncpg.connect(patroni.node_url(old, cluster.inventory_db))
        try:
            query = "select key from movement where kind = 'RECEIPT'"

            async def has_every_receipt() -> bool:
                keys = {r["key"] for r in await rejoined.fetch(query)}
                return set(load.receipts) <= keys

            await until(has_every_receipt, 60, "the rejoined standby has every receipt")
        finally:
            await rejoined.close()
    except BaseException:
        print(cluster.log_tails(), patroni.log_tails(), sep="\n")
        raise
    finally:
        for channel in channels:
            await channel.close()
        await tap.close()
        await cluster.stop()
        await cluster.destroy()
    new = patroni.primary()
    assert new is not None and new is not old and patroni.standby() is old
    FIGURES.append(
        f"primary {old.name} SIGKILLed; {new.name} promoted after "
        f"{marks['promoted'] - marks['killed']:.1f} s (Patroni TTL {TTL} s); both calls OK again "
        f"{marks['serving'] - marks['killed']:.1f} s after the kill; {old.name} restarted "
        f"and back as the synchronous standby in {marks['rejoined'] - marks['restarted']:.1f} s"
    )
    FIGURES.append(
        f"calls: {dict(load.codes)}; refused (UNAVAILABLE) {sum(failures.values())}, retried "
        f"with their keys {retried}; acknowledged writes checked on the new primary: "
        f"{len(load.placed)} lines, {len(load.receipts)} receipts, lost 0; "
        f"invariant checks {checks}"
    )
    print(*FIGURES, sep="\n")

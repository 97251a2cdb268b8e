"""The cluster suite: the services against a 3-node RabbitMQ cluster on this machine
(tests.support.rabbit_cluster), started once per session and stopped at its end, with nodes
SIGKILLed under load. Each test records its figures (time to move, redeliveries, ...),
printed at the end of the pytest run like the reliability suite's.

The loads follow RELIABILITY_SCALE (tests/reliability/conftest.py); docs/reliability.md says
what scale 1 is here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.rabbit_cluster import ClusterVhost, RabbitCluster

FIGURES: list[tuple[str, dict[str, object]]] = []


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    """The 3-node cluster, for the whole session. Tests that kill a node restart it."""
    cluster = RabbitCluster(tmp_path_factory.mktemp("rabbit-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def rabbit_healthy(rabbit: RabbitCluster) -> Iterator[RabbitCluster]:
    """The cluster with every node running, before and (restarting any a test left
    down, so the next test starts whole) after the test."""
    for node in rabbit.nodes:
        if not node.running:
            rabbit.restart(node)
    yield rabbit
    for node in rabbit.nodes:
        if not node.running:
            rabbit.restart(node)


@pytest.fixture
async def cluster_factory(
    rabbit_healthy: RabbitCluster, tmp_path: Path
) -> AsyncIterator[Callable[..., object]]:
    """Makes deployments (both services' processes, databases of their own) whose AMQP_URL
    lists the cluster's three nodes, on a vhost of their own; tears them down afterwards.
    The same fixture name as the reliability suite's, so its tests run here unchanged."""
    made: list[Cluster] = []

    async def make() -> Cluster:
        cluster = await Cluster.create_on(tmp_path, ClusterVhost(rabbit_healthy))
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        await cluster.stop()
        await cluster.destroy()


Report = Callable[..., None]


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """`report(name=value, ...)`: figures of this test, shown in the terminal summary."""

    def record(**figures: object) -> None:
        FIGURES.append((request.node.name, figures))
        print(f"{request.node.name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("cluster figures (3 RabbitMQ nodes)")
    for name, figures in FIGURES:
        terminalreporter.write_line(name)
        for key, value in figures.items():
            terminalreporter.write_line(f"    {key}: {value}")

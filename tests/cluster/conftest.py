"""The RabbitMQ cluster tests: the services against a 3-node RabbitMQ cluster on this machine
(tests.support.rabbit_cluster), started once per session and stopped at its end, with nodes
SIGKILLed under load. Each test records its figures (time to move, redeliveries, ...),
printed at the end of the pytest run like the reliability suite's.

CLUSTER_SCALE multiplies the loads: at 1 the issue's figures (a 10,000-line drain); by
default 0.5, which keeps the suite near 3 minutes on a shared 2-core machine (CI). The tests
of other suites it runs on the cluster follow their own RELIABILITY_SCALE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.support import leftovers
from tests.support.cluster import Cluster
from tests.support.figures import Report, Suite
from tests.support.rabbit_cluster import ClusterVhost, RabbitCluster

DEFAULT_SCALE = 0.5
SUITE = Suite(
    "CLUSTER_SCALE", DEFAULT_SCALE, "cluster figures (3 RabbitMQ nodes, CLUSTER_SCALE={scale})"
)
scale = SUITE.scale
scaled = SUITE.scaled


@pytest.fixture(scope="session")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    """The 3-node cluster, for the whole session. Tests that kill a node restart it."""
    # A killed run's nodes (pytest SIGKILLed) are still running: end them first.
    runs = tmp_path_factory.getbasetemp().parent
    leftovers.reap(runs.glob("pytest-*/rabbit-cluster*"))
    base = tmp_path_factory.mktemp("rabbit-cluster")
    leftovers.claim(base)
    cluster = RabbitCluster(base)
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


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """`report(name=value, ...)`: figures of this test, shown in the terminal summary."""
    return SUITE.recorder(request)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    SUITE.summary(terminalreporter)

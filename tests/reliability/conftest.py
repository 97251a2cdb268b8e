"""The reliability suite: each test runs a deployment of its own under faults and records
its figures (operations, faults injected, invariant checks passed), printed at the end of
the pytest run, `-q` or not.

RELIABILITY_SCALE (default 1) multiplies the loads; see docs/reliability.md for what 1 is
and why some figures are below the issue's at 1 on a shared 2-core machine.

RELIABILITY_SEED replays a run: a test that takes the `seed` fixture prints the seed it drew
its random operations from (and reports it with its figures); give it back to draw the same.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.support.cluster import Cluster
from tests.support.figures import Report, Suite

SUITE = Suite("RELIABILITY_SCALE", 1, "reliability figures (RELIABILITY_SCALE={scale})")
scale = SUITE.scale
scaled = SUITE.scaled


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """`report(name=value, ...)`: figures of this test, shown in the terminal summary."""
    return SUITE.recorder(request)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The random seed of this test: RELIABILITY_SEED, or a fresh one; printed either way."""
    value = int(os.environ.get("RELIABILITY_SEED") or random.randrange(2**32))
    print(f"{request.node.name}: RELIABILITY_SEED={value}")
    return value


@pytest.fixture
async def cluster_factory(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Makes clusters for the test and tears them down (SIGTERM, drop, delete) afterwards."""
    made: list[Cluster] = []

    async def make(**options: bool) -> Cluster:
        cluster = await Cluster.create(tmp_path, **options)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        await cluster.stop()
        await cluster.destroy()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    SUITE.summary(terminalreporter)

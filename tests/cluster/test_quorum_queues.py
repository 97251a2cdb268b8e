"""The contract queues on the 3-node cluster: quorum queues replicated on every node, their
dead-letter queues too, and poison and delivery-limit dead-lettering as on one broker.

Two tests of the single-broker suites run here unchanged, against the cluster: the poison
test of tests/reliability (the services' consumer rejects what it can never apply; replayed,
it dies again) and the delivery-limit test of tests/integration (a message whose consumer
dies on it is redelivered up to the limit, then dead-lettered once, reason delivery_limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from services.common.amqp import CONTRACT_QUEUES
from tests.cluster.conftest import Report
from tests.integration.test_topology import (
    test_a_message_survives_many_consumer_crashes_and_a_crash_loop_still_ends as test_delivery_limit_on_the_cluster,  # noqa: E501
)
from tests.reliability.test_redelivery_and_poison import (
    test_poison_is_dead_lettered_and_the_consumer_keeps_going as test_poison_on_the_cluster,
)
from tests.support.cluster import Cluster, until
from tests.support.rabbit_cluster import ClusterVhost, RabbitCluster

__all__ = ["test_delivery_limit_on_the_cluster", "test_poison_on_the_cluster"]


@dataclass
class _OneNode:
    """A cluster vhost seen through one node (not the first listed): what the topology test
    connects to with a plain aio_pika connection."""

    url: str


@pytest.fixture
async def fresh_vhost(rabbit_healthy: RabbitCluster) -> AsyncIterator[_OneNode]:
    vhost = ClusterVhost(rabbit_healthy)
    await asyncio.to_thread(vhost.create)
    yield _OneNode(vhost.node_url(rabbit_healthy.nodes[1]))
    await asyncio.to_thread(vhost.delete)


async def test_contract_and_dead_letter_queues_are_replicated_on_every_node(
    cluster_factory: object, rabbit_healthy: RabbitCluster, report: Report
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    await cluster.start("inventory")
    await cluster.start("allocation")
    every_node = sorted(n.name for n in rabbit_healthy.nodes)
    queues = [q.name for q in CONTRACT_QUEUES] + [q.dead_letter_queue for q in CONTRACT_QUEUES]
    leaders = {}
    for name in queues:
        leader, members = await asyncio.to_thread(
            rabbit_healthy.quorum_queue, cluster.vhost.name, name
        )
        assert members == every_node, f"{name} is on {members}"
        assert leader in every_node
        leaders[name] = leader

    async def subscribed() -> bool:  # each service's consumer, through the cluster
        counts = await asyncio.to_thread(rabbit_healthy.queue_counts, cluster.vhost.name)
        return all(counts[q.name][1] == 1 for q in CONTRACT_QUEUES)

    await until(subscribed, 60, "a consumer on each contract queue")
    report(queues=len(queues), members_each=len(every_node), leaders=leaders)

"""AMQP_URL listing several brokers, against the real one: a node that does not answer is
passed over, and the one that failed lately is tried last; none answering is reported per
node; a refusal is still a refusal."""

from __future__ import annotations

import asyncio

import pytest

from services.common import amqp
from tests.support.processes import free_port
from tests.support.servers import AMQP_SERVER, Vhost


def _dead_node(vhost: Vhost) -> str:
    """A URL of the vhost on a port where no broker listens."""
    return vhost.url.replace(AMQP_SERVER.rsplit("@", 1)[1], f"127.0.0.1:{free_port()}", 1)


async def test_a_node_that_does_not_answer_is_passed_over(vhost: Vhost) -> None:
    dead = _dead_node(vhost)
    connection = await amqp.connect(f"{dead},{vhost.url}")
    try:
        assert amqp.connection_node(connection) == amqp.node_address(vhost.url)
        channel = await connection.channel()
        await channel.declare_queue(exclusive=True)  # the vhost's broker: it works
    finally:
        await connection.close()
    # The topology goes to the node that answers too.
    await amqp.declare_topology(f"{dead},{vhost.url}")


async def test_the_node_lost_last_is_tried_last(vhost: Vhost) -> None:
    # Two names of the one broker: which one a connection goes to is the order's doing.
    other = vhost.url.replace("127.0.0.1", "localhost", 1)
    assert other != vhost.url
    both = f"{vhost.url},{other}"
    first = await amqp.connect(both)
    assert amqp.connection_node(first) == amqp.node_address(vhost.url)
    amqp.connection_lost(first)
    await first.close()
    second = await amqp.connect(both)
    try:
        assert amqp.connection_node(second) == amqp.node_address(other)
    finally:
        await second.close()


async def test_no_node_answering_names_each(vhost: Vhost) -> None:
    dead = [_dead_node(vhost), _dead_node(vhost)]
    with pytest.raises(amqp.NoBrokerAnswered) as failed:
        await amqp.connect(",".join(dead), connect_timeout=5)
    text = amqp.explain(failed.value, ",".join(dead))
    for url in dead:
        assert amqp.node_address(url) in text
    assert amqp.refusal(failed.value) is None
    stopping = asyncio.Event()
    waiting = asyncio.create_task(amqp.wait_for_broker(",".join(dead), stopping, delay=0.1))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "a cluster not up yet is waited for"
    stopping.set()
    assert await waiting is False


async def test_a_refusal_among_unreachable_nodes_stops_start_up(vhost: Vhost) -> None:
    wrong = vhost.url.replace("guest:guest@", "guest:wrong@", 1)
    assert wrong != vhost.url
    with pytest.raises(amqp.BrokerRefused) as refused:
        await amqp.wait_for_broker(f"{_dead_node(vhost)},{wrong}", asyncio.Event())
    assert "check the user name and password" in str(refused.value)
    assert "wrong" not in str(refused.value)

"""ETAs end to end: inbound.updated events published into RabbitMQ reach the real
allocation process, which estimates when each waiting line is filled (docs/spec.md §2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aio_pika.abc import AbstractIncomingMessage

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from tests.e2e.conftest import EventTap, System
from tests.e2e.test_allocation_rpcs import line, place, summary, until
from tests.support.inventory_feed import InventoryFeed
from tests.support.servers import Vhost, unique


@pytest.fixture(scope="module")
async def feed(system: System, vhost: Vhost) -> AsyncIterator[InventoryFeed]:
    opened = await InventoryFeed(vhost.url).open()
    yield opened
    await opened.close()


def eta_of(ln: alloc.Line) -> datetime | None:
    return ln.estimated_fill_at.ToDatetime(tzinfo=UTC) if ln.eta_known else None


async def etas(stub: AllocationServiceStub, order: str) -> dict[str, datetime | None]:
    """Every line's ETA from one ListLines call: one snapshot, never half of a change."""
    reply = await stub.ListLines(alloc.ListLinesRequest(order_id=order))
    return {ln.line_id: eta_of(ln) for ln in reply.lines if ln.line_id in "abcde"}


async def test_etas_follow_inbound_and_move_when_one_is_cancelled(
    allocation: AllocationServiceStub, feed: InventoryFeed, allocation_events: EventTap
) -> None:
    sku, order = unique("ETA"), unique("o")
    soon = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
    later = soon + timedelta(days=14)
    # Rank: p9 first, then by placing order. Units: 2, 3, 1, 4 (partial), 9.
    for line_id, quantity, priority, partial in [
        ("b", 3, 0, False),
        ("a", 2, 9, False),
        ("c", 1, 0, False),
        ("d", 4, 0, True),
        ("e", 9, 0, False),
    ]:
        placed = await place(allocation, order, line_id, sku, quantity, priority, partial)
        assert not placed.line.eta_known  # nothing expected yet
    await feed.inbound(sku, f"{sku}-po1", 5, soon, version=1)

    async def first_estimated() -> dict[str, datetime | None] | None:
        now = await etas(allocation, order)
        return now if now["b"] is not None else None

    # po2 only once po1 is applied: the consumer applies events concurrently, and po2 first
    # would give a and b po2's date before po1's (two ETA changes more than counted below).
    await until(first_estimated)
    await feed.inbound(sku, f"{sku}-po2", 5, later, version=1)

    async def estimated() -> dict[str, datetime | None] | None:
        now = await etas(allocation, order)
        return now if now["d"] is not None else None

    # po1 (5): a 2 + b 3; po2 (5): c 1 + d 4; e (9) is covered by nothing.
    assert await until(estimated) == {"a": soon, "b": soon, "c": later, "d": later, "e": None}
    s = await summary(allocation, sku)
    assert (s.next_inbound.inbound_id, s.inbound_units) == (f"{sku}-po1", 10)

    # A newer line at the back gets its ETA at once: nothing covers it either.
    tail = await place(allocation, order, "f", sku, 1)
    assert not tail.line.eta_known

    # An older version of po1 arriving late changes nothing.
    await feed.inbound(sku, f"{sku}-po1", 50, soon - timedelta(days=9), version=0)
    # Cancelling po1: po2's 5 units now go to a and b; c and d become unknown.
    await feed.inbound(sku, f"{sku}-po1", 0, soon, version=2, cancelled=True)

    async def moved() -> dict[str, datetime | None] | None:
        now = await etas(allocation, order)
        return now if now["c"] is None else None

    assert await until(moved) == {"a": later, "b": later, "c": None, "d": None, "e": None}

    def eta_changes(message: AbstractIncomingMessage) -> bool:
        return message.routing_key == "line.eta_changed" and order.encode() in message.body

    # a, b, c, d got an ETA (4 events), then a, b moved later and c, d became unknown (4).
    events = [
        alloc_events.LineEtaChanged.FromString(m.body)
        for m in await allocation_events.collect(eta_changes, 8)
    ]
    last = {e.line_id: e for e in events}
    assert {k: (v.eta_known, v.version) for k, v in last.items()} == {
        "a": (True, 2),
        "b": (True, 2),
        "c": (False, 2),
        "d": (False, 2),
    }
    assert last["a"].estimated_fill_at.ToDatetime(tzinfo=UTC) == later

    # Units arriving early fill lines at once; the filled lines no longer carry an ETA.
    await feed.received(sku, 5)

    async def filled() -> alloc.Line | None:
        b = await line(allocation, order, "b")
        return b if b.status == alloc_events.LINE_STATUS_RESERVED else None

    b = await until(filled)
    assert not b.eta_known and b.queue_position == 0

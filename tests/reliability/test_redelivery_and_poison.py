"""Redelivery and poison (issue 5, scenario 5): the allocation service's consumer applies
every inventory event once however often and in whatever order it comes, and sets aside
what it can never apply (dead-letter queue) without stopping."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.message import Message

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import events_pb2 as inv_events
from services.common import dead_letters
from services.common.amqp import ALLOCATION_INBOX
from tests.reliability.conftest import Report, scaled
from tests.support.books import check_allocation
from tests.support.cluster import Cluster, consumed, until
from tests.support.inventory_feed import InventoryFeed, new_inventory_event
from tests.support.reference_model import Model, ModelLine
from tests.support.servers import unique

DEAD = ALLOCATION_INBOX.dead_letter_queue


async def test_every_event_twice_out_of_order_is_applied_once(
    cluster_factory: object, report: Report
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    [allocation] = await cluster.start("allocation")
    rng = random.Random()
    feed = await InventoryFeed(cluster.vhost.url).open()
    conn = await cluster.allocation_conn()
    try:
        async with grpc.aio.insecure_channel(allocation.grpc_addr) as channel:
            stub = AllocationServiceStub(channel)
            skus = [unique("DUP") for _ in range(scaled(8, 2))]
            models = {sku: Model() for sku in skus}
            order = unique("o")

            # Lines first, all waiting (no stock yet): with the lines fixed, the STRICT fill
            # of added supply is the same whatever order the units arrive in.
            async def place(sku: str) -> None:
                for seq in range(1, scaled(40, 5) + 1):
                    line = ModelLine(
                        f"{sku}-{seq}",
                        rng.randint(1, 4),
                        rng.randint(0, 9),
                        seq,
                        rng.random() < 0.5,
                    )
                    await stub.Allocate(
                        alloc.AllocateRequest(
                            order_id=order,
                            line_id=line.line_id,
                            sku=sku,
                            quantity=line.quantity,
                            priority=line.priority,
                            allow_partial=line.partial,
                        )
                    )
                    models[sku].lines[line.line_id] = line

            await asyncio.gather(*(place(sku) for sku in skus))

            events: list[Message] = []
            inbound_final: dict[str, tuple[int, datetime]] = {}
            soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
            for n, sku in enumerate(skus):
                # Every other SKU's stock events carry stock versions (docs/spec.md §4): out
                # of order, each early one is held until the ones before it came.
                versioned = n % 2 == 0
                for version in range(1, scaled(12, 2) + 1):
                    units = rng.randint(1, 5)
                    models[sku].free += units
                    models[sku].supply += units
                    if rng.random() < 0.5:
                        events.append(
                            inv_events.StockReceived(
                                sku=sku,
                                quantity=units,
                                receipt_id=str(uuid.uuid4()),
                                stock_version=version if versioned else 0,
                            )
                        )
                    else:
                        events.append(
                            inv_events.StockAdjusted(
                                sku=sku,
                                delta=units,
                                adjustment_id=str(uuid.uuid4()),
                                reason=inv_events.ADJUSTMENT_REASON_FOUND,
                                stock_version=version if versioned else 0,
                            )
                        )
                events.append(
                    inv_events.StockIssued(sku=sku, fulfillment_id="f", order_id=order, quantity=1)
                )
                # Three versions of one inbound: the newest must win whatever arrives last.
                inbound_id = f"in-{sku}"
                for version in (1, 2, 3):
                    update = inv_events.InboundUpdated(
                        sku=sku, inbound_id=inbound_id, open_quantity=10 * version, version=version
                    )
                    update.expected_at.FromDatetime(soon + timedelta(days=version))
                    events.append(update)
                inbound_final[sku] = (30, soon + timedelta(days=3))
            for model in models.values():
                model.fill()

            stamped = [new_inventory_event(e) for e in events]
            deliveries = stamped + stamped
            rng.shuffle(deliveries)
            for event in deliveries:
                await feed.publish(event)

            await until(
                lambda: consumed([allocation], "applied") >= len(deliveries),
                120,
                "every delivery consumed",
            )

            processed = await conn.fetchval("select count(*) from processed_event")
            # stock.issued changes nothing here (the units left at FulfillLine): not recorded.
            recorded = [e for e in stamped if not isinstance(e, inv_events.StockIssued)]
            assert processed == len(recorded)
            checks = 1
            for sku, model in models.items():
                summary = (await stub.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=sku))).summary
                reserved = sum(ln.reserved for ln in model.lines.values())
                assert (summary.free_units, summary.reserved_units) == (model.free, reserved)
                nxt = summary.next_inbound
                assert (nxt.open_quantity, nxt.expected_at.ToDatetime(tzinfo=UTC)) == (
                    inbound_final[sku]
                )
                lines = await stub.ListLines(alloc.ListLinesRequest(sku=sku, page_size=1000))
                assert {ln.line_id: ln.reserved_quantity for ln in lines.lines} == {
                    ln.line_id: ln.reserved for ln in model.lines.values()
                }
                checks += 3
            # Each event filled in one transaction only: a redelivery applied again would
            # add rows with the same cause_event_id from another transaction (xmin).
            twice = await conn.fetchval(
                """select count(*) from (select cause_event_id from reservation
                   group by cause_event_id having count(distinct xmin::text) > 1) t"""
            )
            assert twice == 0
            # Every held event was applied once the versions before it came.
            assert await conn.fetchval("select count(*) from held_stock_event") == 0
            assert await conn.fetchval("select max(stock_version) from sku") == scaled(12, 2)
            checks += await check_allocation(conn) + 3
            dead = await dead_letters.list_dead_letters(cluster.vhost.url, DEAD)
            assert dead == []
            report(
                events=len(stamped),
                deliveries=len(deliveries),
                skus=len(skus),
                lines=sum(len(m.lines) for m in models.values()),
                invariant_checks=checks + 1,
            )
    finally:
        await conn.close()
        await feed.close()


async def test_poison_is_dead_lettered_and_the_consumer_keeps_going(
    cluster_factory: object, report: Report
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    [allocation] = await cluster.start("allocation")
    feed = await InventoryFeed(cluster.vhost.url).open()
    received = inv_events.StockReceived.DESCRIPTOR.full_name
    adjusted = inv_events.StockAdjusted.DESCRIPTOR.full_name
    inbound = inv_events.InboundUpdated.DESCRIPTOR.full_name

    def body(message: Message) -> bytes:
        return new_inventory_event(message).SerializeToString()

    good = inv_events.StockReceived(sku="POISON-OK", quantity=1, receipt_id="r")
    huge = good.SerializeToString() + b"\x82\x06" + b"\x80\x80\x40" + b"x" * (1 << 20)
    poison: list[tuple[str, bytes, str | None, str]] = [
        ("garbage body", b"\xff\xff\xff\xff\xff", received, "stock.received"),
        ("text body", b"hello, this is not protobuf", received, "stock.received"),
        ("empty body", b"", received, "stock.received"),
        (
            "unknown type",
            body(inv_events.StockReceived(sku="A", quantity=1)),
            "acme.Nope",
            "stock.received",
        ),
        ("no type", body(inv_events.StockReceived(sku="A", quantity=1)), None, "stock.received"),
        (
            "type of another event",
            body(inv_events.StockReceived(sku="A", quantity=1)),
            "backorder.allocation.v1.LineReserved",
            "stock.received",
        ),
        (
            "not a SKU",
            body(inv_events.StockReceived(sku="no such/sku!", quantity=1)),
            received,
            "stock.received",
        ),
        (
            "zero units",
            body(inv_events.StockReceived(sku="A", quantity=0)),
            received,
            "stock.received",
        ),
        (
            "negative units",
            body(inv_events.StockReceived(sku="A", quantity=-5)),
            received,
            "stock.received",
        ),
        (
            "too many units",
            body(inv_events.StockReceived(sku="A", quantity=2**62)),
            received,
            "stock.received",
        ),
        (
            "event_id not a UUID",
            inv_events.StockReceived(event_id="nope", sku="A", quantity=1).SerializeToString(),
            received,
            "stock.received",
        ),
        (
            "zero delta",
            body(inv_events.StockAdjusted(sku="A", delta=0)),
            adjusted,
            "stock.adjusted",
        ),
        (
            "inbound without date",
            body(inv_events.InboundUpdated(sku="A", inbound_id="i", open_quantity=1, version=1)),
            inbound,
            "inbound.updated",
        ),
        ("huge message", huge, received, "stock.received"),
    ]
    try:
        ids = {}
        for name, payload, kind, key in poison:
            ids[await feed.publish_raw(payload, type=kind, routing_key=key)] = name
        # A valid event after all of them is still applied: the consumer kept going.
        await feed.publish(inv_events.StockReceived(sku="POISON-OK", quantity=3, receipt_id="r"))
        async with grpc.aio.insecure_channel(allocation.grpc_addr) as channel:
            stub = AllocationServiceStub(channel)

            async def applied() -> bool:
                try:
                    reply = await stub.GetSkuSummary(alloc.GetSkuSummaryRequest(sku="POISON-OK"))
                except grpc.aio.AioRpcError:
                    return False
                return reply.summary.free_units == 3

            await until(applied, 60, "the valid event after the poison applied")

        async def all_dead() -> bool:
            found = await dead_letters.list_dead_letters(cluster.vhost.url, DEAD)
            return len(found) >= len(poison)

        await until(all_dead, 60, "every poison message dead-lettered")
        found = await dead_letters.list_dead_letters(cluster.vhost.url, DEAD)
        assert sorted(ids[d.message_id] for d in found) == sorted(ids.values())
        # Each was set aside at its first delivery (rejected, not retried to the limit).
        assert {d.reason for d in found} == {"rejected"}
        assert all(d.deaths == 1 for d in found)
        dead_now = await asyncio.to_thread(consumed, [allocation], "dead_lettered")
        assert dead_now == len(poison)

        # Replayed, they are poison still: dead-lettered again, once each, none lost.
        replayed = await dead_letters.replay(cluster.vhost.url, DEAD)
        assert sorted(replayed.replayed) == sorted(ids)

        async def dead_again() -> bool:
            return await asyncio.to_thread(consumed, [allocation], "dead_lettered") >= 2 * len(
                poison
            )

        await until(dead_again, 60, "replayed poison dead-lettered again")
        again = await dead_letters.list_dead_letters(cluster.vhost.url, DEAD)
        assert sorted(d.message_id for d in again) == sorted(ids)
        conn = await cluster.allocation_conn()
        try:
            checks = await check_allocation(conn)
            # Nothing of the poison was applied: only the valid receipt's SKU exists.
            assert await conn.fetchval("select array_agg(sku) from sku") == ["POISON-OK"]
            assert await conn.fetchval("select count(*) from processed_event") == 1
        finally:
            await conn.close()
        assert allocation.process is not None and allocation.process.poll() is None
        report(
            poison_messages=len(poison),
            dead_lettered=len(found),
            replayed=len(replayed.replayed),
            dead_lettered_again=len(again),
            invariant_checks=checks + 7,
        )
    finally:
        await feed.close()

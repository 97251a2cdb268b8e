"""A short demo against running services: backorders with mixed priorities on an empty SKU,
two receipts, and which lines were filled in which order (as `line.reserved` events say).

Run by `scripts/up`; on its own: `python -m services.demo` (settings from the environment)."""

from __future__ import annotations

import asyncio
import sys
import uuid

import aio_pika
import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common.amqp import ALLOCATION_EXCHANGE
from services.common.settings import ServiceSettings

# (line_id, quantity, priority, allow_partial), placed in this order.
LINES = [
    ("L1-standard", 2, 0, False),
    ("L2-express", 3, 5, False),
    ("L3-express", 1, 5, False),
    ("L4-vip", 2, 9, True),
    ("L5-standard", 1, 0, False),
]
RECEIPTS = [3, 4]


async def run() -> int:
    settings = ServiceSettings.from_env("allocation")
    sku = f"DEMO-{uuid.uuid4().hex[:6].upper()}"
    order = f"demo-{uuid.uuid4().hex[:6]}"
    connection = await aio_pika.connect_robust(settings.amqp_url)
    async with (
        connection,
        grpc.aio.insecure_channel(str(settings.peer_grpc_addr)) as inv_channel,
        grpc.aio.insecure_channel(str(settings.grpc_addr)) as alloc_channel,
    ):
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            ALLOCATION_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        events = await channel.declare_queue(exclusive=True, auto_delete=True)
        await events.bind(exchange, "line.reserved")
        inventory = InventoryServiceStub(inv_channel)
        allocation = AllocationServiceStub(alloc_channel)

        print(f"\nSKU {sku} is out of stock. Placing {len(LINES)} order lines:")
        for line_id, quantity, priority, partial in LINES:
            reply = await allocation.Allocate(
                alloc.AllocateRequest(
                    order_id=order,
                    line_id=line_id,
                    sku=sku,
                    quantity=quantity,
                    priority=priority,
                    allow_partial=partial,
                )
            )
            print(
                f"  {line_id:<12} qty {quantity}  priority {priority}"
                f"{'  (partial ok)' if partial else '':<15} -> "
                f"{alloc.AllocationOutcome.Name(reply.outcome).removeprefix('ALLOCATION_OUTCOME_')}"
            )

        filled = 0
        for n, quantity in enumerate(RECEIPTS, 1):
            stock = await inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=f"{order}-r{n}", sku=sku, quantity=quantity)
            )
            on_hand = stock.stock.on_hand
            print(f"\nReceipt {n}: {quantity} units arrive (on hand {on_hand}). Filled:")
            filled += await _print_fills(events, sku, expect_quiet_after=1.0)
        print("\nWhere every line stands now:")
        for line_id, *_ in LINES:
            line = (
                await allocation.GetLine(alloc.GetLineRequest(order_id=order, line_id=line_id))
            ).line
            place = f"  queue position {line.queue_position}" if line.queue_position else ""
            status = alloc_events.LineStatus.Name(line.status).removeprefix("LINE_STATUS_")
            print(
                f"  {line_id:<12} {status:<19}"
                f" reserved {line.reserved_quantity}/{line.quantity}{place}"
            )
        print(
            "\nHigher priority first, first come first served within a priority; a whole-only "
            "line that does not fit blocks lower ones (STRICT policy).\n"
        )
        return 0 if filled else 1


async def _print_fills(
    queue: aio_pika.abc.AbstractQueue, sku: str, *, expect_quiet_after: float
) -> int:
    """Prints line.reserved events of `sku` until none came for a while."""
    count = 0
    deadline = asyncio.get_running_loop().time() + 15
    quiet_since = None
    while asyncio.get_running_loop().time() < deadline:
        message = await queue.get(fail=False, timeout=5)
        if message is None:
            now = asyncio.get_running_loop().time()
            if count and quiet_since and now - quiet_since > expect_quiet_after:
                break
            quiet_since = quiet_since or now
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        event = alloc_events.LineReserved.FromString(message.body)
        if event.sku != sku:
            continue
        count += 1
        quiet_since = None
        print(
            f"  {count}. {event.line_id:<12} +{event.reserved_now} "
            f"(now {event.reserved_quantity}/{event.quantity})"
        )
    if not count:
        print("  nobody: nothing waiting fits yet")
    return count


def main() -> int:
    try:
        return asyncio.run(run())
    except grpc.aio.AioRpcError as exc:
        print(f"demo failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

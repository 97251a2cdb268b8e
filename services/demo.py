"""A short demo against running services: backorders with mixed priorities on an empty SKU,
two receipts, which lines were filled in which order (as `line.reserved` events say), a
partial fill, and the free units left.

Run by `scripts/up`; on its own: `python -m services.demo` (settings from the environment).
Where the services require tokens it sends `BACKORDER_TOKEN` (or `BACKORDER_TOKEN_FILE`), or
else picks a token with the read and write scopes from the servers' own `BACKORDER_TOKENS` /
`BACKORDER_TOKENS_FILE`; TLS as for backorderctl (`BACKORDER_CA_FILE`, …)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Mapping

import aio_pika
import grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common import amqp
from services.common.amqp import ALLOCATION_EXCHANGE
from services.common.security import ClientSecurity, SecurityConfigError
from services.common.settings import TOKENS, TOKENS_FILE, ServiceSettings, SettingsError

# (line_id, quantity, priority, allow_partial), placed in this order. The first receipt
# (3 units) fills part of L4-vip, the only line that takes part of its units; the second
# finishes it and fills the express lines; L1-standard (whole only) does not fit the last
# unit and, under the STRICT policy, holds L5-standard behind it.
LINES = [
    ("L1-standard", 2, 0, False),
    ("L2-express", 3, 5, False),
    ("L3-express", 1, 5, False),
    ("L4-vip", 4, 9, True),
    ("L5-standard", 1, 0, False),
]
RECEIPTS = [3, 6]
DEMO_SCOPES = {"read", "write"}


class DemoError(Exception):
    """The demo cannot run as configured; the message says what to set."""


def client_security(env: Mapping[str, str]) -> ClientSecurity:
    """TLS as backorderctl reads it, and a token good for the demo's calls (or none)."""
    try:
        return ClientSecurity.from_options(
            tls=env.get("BACKORDER_TLS", "").lower() in ("1", "true", "yes"),
            ca_file=env.get("BACKORDER_CA_FILE") or None,
            cert_file=env.get("BACKORDER_CLIENT_CERT_FILE") or None,
            key_file=env.get("BACKORDER_CLIENT_KEY_FILE") or None,
            server_name=env.get("BACKORDER_TLS_SERVER_NAME") or None,
            token=env.get("BACKORDER_TOKEN") or _servers_token(env),
            token_file=env.get("BACKORDER_TOKEN_FILE") or None,
        )
    except SecurityConfigError as exc:
        raise DemoError(str(exc)) from None


def _servers_token(env: Mapping[str, str]) -> str | None:
    """A token of the servers' own list with the read and write scopes; None when the list
    is empty (the servers need no token) or when BACKORDER_TOKEN_FILE names one."""
    if env.get("BACKORDER_TOKEN_FILE"):
        return None
    text = env.get(TOKENS, "")
    if env.get(TOKENS_FILE):
        try:
            with open(env[TOKENS_FILE], encoding="utf-8") as file:
                text += "\n" + file.read()
        except OSError as exc:
            raise DemoError(f"{TOKENS_FILE}: cannot read it ({exc.strerror})") from None
    # The same entry syntax the servers parse (and have validated by the time the demo runs).
    entries = [
        entry
        for line in text.splitlines()
        if not line.strip().startswith("#")
        for entry in re.split(r"[\s;]+", line)
        if ":" in entry
    ]
    if not entries:
        return None
    for entry in entries:
        token, _, scopes = entry.partition(":")
        if set(scopes.split(",")) >= DEMO_SCOPES:
            return token
    raise DemoError(
        f"the services require tokens and none in {TOKENS} has both the read and write "
        "scopes: set BACKORDER_TOKEN to one that has"
    )


async def run(env: Mapping[str, str]) -> int:
    try:
        settings = ServiceSettings.from_env("allocation", env)
    except SettingsError as exc:
        raise DemoError(str(exc)) from None
    security = client_security(env)
    metadata = security.metadata()
    sku = f"DEMO-{uuid.uuid4().hex[:6].upper()}"
    order = f"demo-{uuid.uuid4().hex[:6]}"
    connection = await amqp.connect(settings.amqp_url)
    async with (
        connection,
        security.aio_channel(str(settings.peer_grpc_addr)) as inv_channel,
        security.aio_channel(str(settings.grpc_addr)) as alloc_channel,
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
                ),
                metadata=metadata,
                timeout=10,
            )
            print(
                f"  {line_id:<12} qty {quantity}  priority {priority}"
                f"{'  (partial ok)' if partial else '':<15} -> "
                f"{alloc.AllocationOutcome.Name(reply.outcome).removeprefix('ALLOCATION_OUTCOME_')}"
            )

        filled = 0
        for n, quantity in enumerate(RECEIPTS, 1):
            stock = await inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=f"{order}-r{n}", sku=sku, quantity=quantity),
                metadata=metadata,
                timeout=10,
            )
            on_hand = stock.stock.on_hand
            print(f"\nReceipt {n}: {quantity} units arrive (on hand {on_hand}). Filled:")
            filled += await _print_fills(events, sku, expect_quiet_after=1.0)
        summary = (
            await allocation.GetSkuSummary(
                alloc.GetSkuSummaryRequest(sku=sku), metadata=metadata, timeout=10
            )
        ).summary
        print(
            f"\n{sku}: {summary.free_units} free (on hand, reserved for nobody), "
            f"{summary.reserved_units} reserved, {summary.backordered_units} backordered "
            f"in {summary.waiting_lines} waiting lines."
        )
        print("\nWhere every line stands now:")
        for line_id, *_ in LINES:
            line = (
                await allocation.GetLine(
                    alloc.GetLineRequest(order_id=order, line_id=line_id),
                    metadata=metadata,
                    timeout=10,
                )
            ).line
            place = f"  queue position {line.queue_position}" if line.queue_position else ""
            status = alloc_events.LineStatus.Name(line.status).removeprefix("LINE_STATUS_")
            print(
                f"  {line_id:<12} {status:<19}"
                f" reserved {line.reserved_quantity}/{line.quantity}{place}"
            )
        print(
            "\nHigher priority first, first come first served within a priority. A line that"
            "\naccepts part of its units (L4-vip) takes what there is; a whole-only line that"
            "\ndoes not fit (L1-standard) holds the lines behind it (STRICT policy), so the"
            "\nfree unit waits.\n"
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
        partly = "  partial fill" if event.reserved_quantity < event.quantity else ""
        print(
            f"  {count}. {event.line_id:<12} +{event.reserved_now} "
            f"(now {event.reserved_quantity}/{event.quantity}){partly}"
        )
    if not count:
        print("  nobody: nothing waiting fits yet")
    return count


def main() -> int:
    try:
        return asyncio.run(run(os.environ))
    except grpc.aio.AioRpcError as exc:
        print(f"demo failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
    except (OSError, aio_pika.exceptions.AMQPError) as exc:
        print(f"demo failed: cannot reach RabbitMQ ({exc})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

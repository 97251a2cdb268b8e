"""backorderctl (a real process) calls through the client package's blocking channel: it
retries across an outage, and with --retries 0 reports it instead. The blocking channel
itself meets a lost answer here too: its retry with the same receipt_id is applied once."""

from __future__ import annotations

import asyncio
import os

from backorder.client import BackorderClient, ClientSecurity, blocking_channel
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from tests.client.conftest import Secured
from tests.client.test_calls import (
    PATIENT,
    behind_proxy,
    lose_the_reply_then_recover,
    until_true,
)
from tests.support.processes import BIN
from tests.support.servers import unique


async def backorderctl(secured: Secured, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(BIN / "backorderctl"),
        *args,
        env={"PATH": os.environ["PATH"], **secured.client_env()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, (out + err).decode()


async def test_backorderctl_retries_across_an_outage(secured: Secured) -> None:
    sku, receipt = unique("CTL-RETRY"), unique("rcpt")
    async with (
        behind_proxy(secured, "inventory") as proxy,
        BackorderClient.from_env(secured.client_env()) as direct,
    ):
        await proxy.cut()

        async def back_after_a_while() -> None:
            await asyncio.sleep(1.5)
            await proxy.restore()

        (code, output), _ = await asyncio.gather(
            backorderctl(
                secured,
                "--inventory-addr",
                f"127.0.0.1:{proxy.port}",
                "--timeout",
                "60",
                "--retries",
                "8",
                "stock",
                "receive",
                sku,
                "6",
                "--receipt-id",
                receipt,
            ),
            back_after_a_while(),
        )
        stock = (await direct.inventory.GetStock(inv.GetStockRequest(sku=sku))).stock
    assert code == 0, output
    assert stock.on_hand == 6


async def test_the_blocking_channel_retries_a_lost_answer_and_it_is_applied_once(
    secured: Secured,
) -> None:
    sku, receipt = unique("SYNC-RETRY"), unique("rcpt")
    security = ClientSecurity.from_env(secured.client_env())
    async with (
        behind_proxy(secured, "inventory") as proxy,
        BackorderClient.from_env(secured.client_env()) as direct,
    ):
        channel = blocking_channel(f"127.0.0.1:{proxy.port}", security, timeout=60, retry=PATIENT)
        stub = InventoryServiceStub(channel)
        await asyncio.to_thread(stub.ListLocations, inv.ListLocationsRequest())  # connected
        proxy.drop_replies = True

        async def received() -> bool:
            movements = await direct.inventory.ListMovements(inv.ListMovementsRequest(sku=sku))
            return bool(movements.movements)

        applied = asyncio.create_task(until_true(received))
        request = inv.ReceiveStockRequest(receipt_id=receipt, sku=sku, quantity=6)
        try:
            reply, _ = await asyncio.gather(
                asyncio.to_thread(stub.ReceiveStock, request),
                lose_the_reply_then_recover(proxy, applied),
            )
        finally:
            channel.close()
        movements = await direct.inventory.ListMovements(inv.ListMovementsRequest(sku=sku))
    assert reply.stock.on_hand == 6
    assert len(movements.movements) == 1


async def test_backorderctl_without_retries_reports_the_outage(secured: Secured) -> None:
    async with behind_proxy(secured, "inventory") as proxy:
        await proxy.cut()
        code, output = await backorderctl(
            secured,
            "--inventory-addr",
            f"127.0.0.1:{proxy.port}",
            "--retries",
            "0",
            "stock",
            "receive",
            unique("CTL-DOWN"),
            "1",
        )
    assert code == 5 and "UNAVAILABLE" in output, output

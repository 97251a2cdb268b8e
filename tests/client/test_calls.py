"""backorder.client against the real services (TLS, mTLS, tokens): a call with the token and
TLS read from the environment, the default deadline, and a retry across an outage that the
service applies once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2
from backorder.client import BackorderClient, ClientSecurity, RetryPolicy
from backorder.inventory.v1 import inventory_pb2 as inv
from tests.client.conftest import Secured
from tests.support.processes import free_port
from tests.support.proxy import TcpProxy
from tests.support.servers import unique

# Quick retries for the outage tests: up to ~10 s of outage, well within the deadline.
PATIENT = RetryPolicy(attempts=20, initial_backoff=0.1, max_backoff=0.5)


async def test_a_client_from_the_environment_calls_with_its_token_over_tls(
    secured: Secured,
) -> None:
    sku, receipt, order = unique("CLIENT-TLS"), unique("rcpt"), unique("o")
    async with BackorderClient.from_env(secured.client_env()) as client:
        await client.inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=receipt, sku=sku, quantity=4)
        )
        stock = (await client.inventory.GetStock(inv.GetStockRequest(sku=sku))).stock
        # The allocation service wants a client certificate as well (mTLS).
        placed = await client.allocation.Allocate(
            alloc.AllocateRequest(order_id=order, line_id="1", sku=sku, quantity=1)
        )
    assert stock.on_hand == 4
    assert (placed.line.order_id, placed.line.quantity) == (order, 1)
    # The token is what let it in: the same client without one is refused.
    env = secured.client_env(BACKORDER_TOKEN_FILE="")
    async with BackorderClient.from_env(env) as anonymous:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await anonymous.inventory.GetStock(inv.GetStockRequest(sku=sku))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_stream_carries_the_token_and_no_default_deadline(secured: Secured) -> None:
    sku = unique("CLIENT-WATCH")
    async with BackorderClient.from_env(secured.client_env(), timeout=1) as client:
        watch = client.inventory.WatchStock(inv.WatchStockRequest(skus=[sku]))
        # Longer than the unary deadline: a watch is not cut by it.
        await asyncio.sleep(1.5)
        await client.inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("rcpt"), sku=sku, quantity=2)
        )
        change = await asyncio.wait_for(anext(aiter(watch)), 30)
        watch.cancel()
    assert change.stock.sku == sku and change.stock.on_hand == 2


@contextlib.asynccontextmanager
async def hung_server() -> AsyncIterator[str]:
    """A gRPC server whose every call hangs: the inventory service stuck on a lock, say. A
    call to it waits forever unless it has a deadline."""
    never = asyncio.Event()

    async def hang(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        await never.wait()
        return b""

    class Hung(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(hang)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Hung(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


async def test_unary_calls_get_a_deadline_by_default() -> None:
    async def code_of(client: BackorderClient) -> grpc.StatusCode:
        async with client:
            try:
                await client.inventory.GetStock(inv.GetStockRequest(sku="SKU-1"))
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        raise AssertionError("a hung server answered")

    async with hung_server() as hung:
        # The default (10 s) and a configured one; without a deadline, wait_for fails.
        default, configured = await asyncio.wait_for(
            asyncio.gather(
                code_of(BackorderClient(inventory_addr=hung)),
                code_of(BackorderClient(inventory_addr=hung, timeout=0.5)),
            ),
            timeout=60,
        )
    assert default == configured == grpc.StatusCode.DEADLINE_EXCEEDED


@contextlib.asynccontextmanager
async def behind_proxy(secured: Secured, service: str) -> AsyncIterator[TcpProxy]:
    process = secured.inventory if service == "inventory" else secured.allocation
    host, port = process.grpc_addr.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    await proxy.restore()
    try:
        yield proxy
    finally:
        if proxy.serving:
            await proxy.cut()


async def lose_the_reply_then_recover(
    proxy: TcpProxy, applied: asyncio.Future[None] | asyncio.Task[bool]
) -> None:
    """Once the service applied the request (its reply being dropped), an outage: every
    connection cut, new ones refused for a while, then the service is reachable again."""
    await asyncio.wait_for(applied, 30)
    await proxy.cut()
    proxy.drop_replies = False
    await asyncio.sleep(1.5)
    await proxy.restore()


async def until_true(check: object, timeout: float = 30) -> bool:
    assert callable(check)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "not applied in time"
        await asyncio.sleep(0.05)
    return True


async def test_receive_stock_retried_across_an_outage_is_applied_once(secured: Secured) -> None:
    sku, receipt = unique("CLIENT-RETRY"), unique("rcpt")
    async with (
        behind_proxy(secured, "inventory") as proxy,
        BackorderClient.from_env(secured.client_env(), timeout=60, retry=PATIENT) as direct,
        BackorderClient.from_env(
            secured.client_env(INVENTORY_GRPC_ADDR=f"127.0.0.1:{proxy.port}"),
            timeout=60,
            retry=PATIENT,
        ) as client,
    ):
        await client.inventory.ListLocations(inv.ListLocationsRequest())  # connected
        proxy.drop_replies = True

        async def received() -> bool:
            try:
                await direct.inventory.GetStock(inv.GetStockRequest(sku=sku))
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
                return False
            return True

        applied = asyncio.create_task(until_true(received))
        reply, _ = await asyncio.gather(
            client.inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=receipt, sku=sku, quantity=5)
            ),
            lose_the_reply_then_recover(proxy, applied),
        )
        stock = (await direct.inventory.GetStock(inv.GetStockRequest(sku=sku))).stock
        movements = await direct.inventory.ListMovements(inv.ListMovementsRequest(sku=sku))
    # The answer came from a retry with the same receipt_id: the current state, not twice.
    assert reply.stock.on_hand == 5
    assert stock.on_hand == 5
    assert len(movements.movements) == 1


async def test_allocate_retried_across_an_outage_is_applied_once(secured: Secured) -> None:
    sku, order = unique("CLIENT-RETRY"), unique("order")
    request = alloc.AllocateRequest(order_id=order, line_id="1", sku=sku, quantity=3, priority=2)
    async with (
        behind_proxy(secured, "allocation") as proxy,
        BackorderClient.from_env(secured.client_env(), timeout=60, retry=PATIENT) as direct,
        BackorderClient.from_env(
            secured.client_env(ALLOCATION_GRPC_ADDR=f"127.0.0.1:{proxy.port}"),
            timeout=60,
            retry=PATIENT,
        ) as client,
    ):
        await client.allocation.ListLines(alloc.ListLinesRequest(order_id=order))  # connected
        proxy.drop_replies = True

        async def placed() -> bool:
            lines = await direct.allocation.ListLines(alloc.ListLinesRequest(order_id=order))
            return bool(lines.lines)

        applied = asyncio.create_task(until_true(placed))
        reply, _ = await asyncio.gather(
            client.allocation.Allocate(request), lose_the_reply_then_recover(proxy, applied)
        )
        lines = await direct.allocation.ListLines(alloc.ListLinesRequest(order_id=order))
        summary = await direct.allocation.GetSkuSummary(alloc.GetSkuSummaryRequest(sku=sku))
    assert reply.line.order_id == order and reply.line.status == events_pb2.LINE_STATUS_BACKORDERED
    assert [(line.line_id, line.quantity) for line in lines.lines] == [("1", 3)]
    assert summary.summary.backordered_units == 3


async def test_a_call_is_not_retried_past_its_attempts_or_on_other_codes(
    secured: Secured,
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    security = ClientSecurity.from_env(secured.client_env())
    async with BackorderClient(inventory_addr=dead, security=security, retry=PATIENT) as client:
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await client.inventory.GetStock(inv.GetStockRequest(sku="SKU-1"), timeout=2)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE  # not DEADLINE_EXCEEDED
    async with BackorderClient.from_env(secured.client_env(), retry=PATIENT) as client:
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await client.inventory.ReceiveStock(
                inv.ReceiveStockRequest(receipt_id=unique("rcpt"), sku="", quantity=1)
            )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT

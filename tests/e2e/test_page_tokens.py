"""Page tokens are tamper-proof (docs/spec.md §6): through the real servers, every List RPC of
both services answers INVALID_ARGUMENT naming `page_token` for a token that was altered,
made by hand, signed with another key or issued for another listing — and follows its own
tokens to the end. Dead letters page like every other list."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import grpc
import pytest

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from backorder.operations.v1 import dead_letters_pb2 as dl
from backorder.operations.v1.dead_letters_pb2_grpc import DeadLetterServiceStub
from services.common.amqp import ALLOCATION_INBOX, INVENTORY_INBOX
from tests.e2e.conftest import System
from tests.e2e.test_bad_input import field_violations
from tests.support.processes import ServiceProcess
from tests.support.servers import Vhost, unique


@dataclass
class Listing:
    """One List RPC with a request that has at least two rows, served one per page."""

    name: str
    call: Callable[[Any], Awaitable[Any]]
    # A new request message each call (Any: every List request has page_size/page_token).
    request: Callable[[], Any]
    items: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forgeries(genuine: str) -> dict[str, str]:
    """Tokens a client could make from a genuine one: each must be refused."""
    body, _, mac = genuine.partition(".")
    payload = json.loads(_unb64(body))
    first = payload["a"][0]
    # A plausible other position (which an unsigned token would have let through), and
    # values out of any column's range: an ETA at the edge of the datetime range with an
    # offset (the INTERNAL of the first probe), an int beyond bigint.
    altered: list[object]
    if isinstance(first, int):
        altered = [first - 1, 2**70]
    else:
        altered = [str(first) + "0", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"]
    tokens = {}
    for n, value in enumerate(altered):
        changed = json.dumps({**payload, "a": [value, *payload["a"][1:]]}).encode()
        tokens[f"altered-{n}-signed-as-before"] = f"{_b64(changed)}.{mac}"
        tokens[f"altered-{n}-unsigned"] = _b64(changed)
        other_key = hmac.new(secrets.token_bytes(32), changed, hashlib.sha256).digest()[:16]
        tokens[f"altered-{n}-other-key"] = f"{_b64(changed)}.{_b64(other_key)}"
    tokens["signature-dropped"] = body
    tokens["signature-flipped"] = f"{body}.{_b64(bytes(b ^ 1 for b in _unb64(mac)))}"
    tokens["garbage"] = "%%%not-a-token"
    tokens["huge"] = "A" * 100_000
    return tokens


async def expect_bad_token(listing: Listing, token: str, what: str) -> None:
    request = listing.request()
    request.page_token = token
    request.page_size = 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await listing.call(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (
        f"{listing.name} with a {what} token: {caught.value.code()} {caught.value.details()}"
    )
    assert field_violations(caught.value) == ["page_token"], listing.name


async def all_pages(listing: Listing) -> tuple[list[Any], list[str]]:
    """Every row, one per page, and the tokens that led there."""
    rows: list[Any] = []
    tokens: list[str] = []
    token = ""
    while True:
        request = listing.request()
        request.page_size = 1
        request.page_token = token
        reply = await listing.call(request)
        rows += list(getattr(reply, listing.items))
        token = reply.next_page_token
        if not token:
            return rows, tokens
        tokens.append(token)


async def publish_junk(vhost: Vhost, queue: str, count: int) -> list[str]:
    """Messages of a type nobody consumes, straight into a service's inbox: dead-lettered at
    their first delivery. Returns their message ids."""
    ids = [unique("junk") for _ in range(count)]
    connection = await aio_pika.connect(vhost.url)
    async with connection:
        channel = await connection.channel()
        for message_id in ids:
            await channel.default_exchange.publish(
                aio_pika.Message(b"junk", message_id=message_id, type="test.NotAnEvent"), queue
            )
    return ids


@pytest.fixture(scope="module")
async def listings(
    system: System,
    vhost: Vhost,
    inventory: InventoryServiceStub,
    allocation: AllocationServiceStub,
) -> list[Listing]:
    prefix = unique("TOK")
    sku = f"{prefix}-A"
    # Two SKUs with the prefix (ListStock), two movements of the first (ListMovements).
    for n, name in enumerate((sku, f"{prefix}-B", sku)):
        await inventory.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=name, quantity=1 + n)
        )
    when = datetime.now(UTC) + timedelta(days=3)
    for n in range(2):
        expect = inv.ExpectInboundRequest(inbound_id=unique("po"), sku=sku, quantity=5)
        expect.expected_at.FromDatetime(when + timedelta(hours=n))
        await inventory.ExpectInbound(expect)
    waiting = unique("TOK-W")
    for n in range(2):
        await allocation.Allocate(
            alloc.AllocateRequest(order_id=unique("o"), line_id=str(n), sku=waiting, quantity=1)
        )
    await inventory.ReceiveStock(
        inv.ReceiveStockRequest(receipt_id=unique("r"), sku=waiting, quantity=2)
    )
    inventory_letters = DeadLetterServiceStub(grpc.aio.insecure_channel(system.inventory.grpc_addr))
    allocation_letters = DeadLetterServiceStub(
        grpc.aio.insecure_channel(system.allocation.grpc_addr)
    )
    await publish_junk(vhost, INVENTORY_INBOX.name, 2)
    await publish_junk(vhost, ALLOCATION_INBOX.name, 2)
    found = [
        Listing(
            "ListStock",
            inventory.ListStock,
            lambda: inv.ListStockRequest(sku_prefix=prefix),
            "stocks",
        ),
        Listing(
            "ListMovements",
            inventory.ListMovements,
            lambda: inv.ListMovementsRequest(sku=sku),
            "movements",
        ),
        Listing(
            "ListInbound", inventory.ListInbound, lambda: inv.ListInboundRequest(sku=sku), "inbound"
        ),
        Listing(
            "ListLines", allocation.ListLines, lambda: alloc.ListLinesRequest(sku=waiting), "lines"
        ),
        Listing(
            "ListReservations",
            allocation.ListReservations,
            lambda: alloc.ListReservationsRequest(sku=waiting),
            "reservations",
        ),
        Listing(
            "ListDeadLetters (inventory)",
            inventory_letters.ListDeadLetters,
            dl.ListDeadLettersRequest,
            "dead_letters",
        ),
        Listing(
            "ListDeadLetters (allocation)",
            allocation_letters.ListDeadLetters,
            dl.ListDeadLettersRequest,
            "dead_letters",
        ),
    ]
    # The receipt fills both waiting lines and the junk is dead-lettered through the broker:
    # wait until every listing has its two rows.
    deadline = asyncio.get_running_loop().time() + 30
    for listing in found:
        while len((await all_pages(listing))[0]) < 2:
            assert asyncio.get_running_loop().time() < deadline, f"{listing.name}: < 2 rows"
            await asyncio.sleep(0.2)
    return found


LISTINGS = [
    "ListStock",
    "ListMovements",
    "ListInbound",
    "ListLines",
    "ListReservations",
    "ListDeadLetters (inventory)",
    "ListDeadLetters (allocation)",
]


def _listing(listings: list[Listing], name: str) -> Listing:
    return next(listing for listing in listings if listing.name == name)


@pytest.mark.parametrize("name", LISTINGS)
async def test_forged_page_tokens_are_invalid_argument(listings: list[Listing], name: str) -> None:
    listing = _listing(listings, name)
    rows, tokens = await all_pages(listing)
    assert len(rows) >= 2 and tokens, f"{name} must page to test its tokens"
    for what, token in forgeries(tokens[0]).items():
        await expect_bad_token(listing, token, what)
    # The genuine token still works after all that.
    request = listing.request()
    request.page_size = 1
    request.page_token = tokens[0]
    reply = await listing.call(request)
    assert list(getattr(reply, listing.items)) == rows[1:2]


@pytest.mark.parametrize("name", LISTINGS)
async def test_a_token_of_another_listing_is_invalid_argument(
    listings: list[Listing], name: str
) -> None:
    listing = _listing(listings, name)
    others = [other for other in listings if other.name != name]
    for other in others:
        _, tokens = await all_pages(other)
        await expect_bad_token(listing, tokens[0], f"{other.name}")


async def test_dead_letters_page_to_the_end_each_once(
    system: System, vhost: Vhost, listings: list[Listing]
) -> None:
    listing = _listing(listings, "ListDeadLetters (inventory)")
    sent = await publish_junk(vhost, INVENTORY_INBOX.name, 5)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        rows, tokens = await all_pages(listing)
        seen = [letter.message_id for letter in rows]
        if set(sent) <= set(seen):
            break
        assert asyncio.get_running_loop().time() < deadline, "junk never dead-lettered"
        await asyncio.sleep(0.2)
    assert len(seen) == len(set(seen)), "a dead letter was served twice"
    assert len([m for m in seen if m in sent]) == len(sent)
    assert len(tokens) == len(rows) - 1
    # The deprecated `limit` still serves older clients (one page, no token needed).
    old = await listing.call(dl.ListDeadLettersRequest(limit=2))
    assert [d.message_id for d in old.dead_letters] == seen[:2]


async def test_a_token_of_one_replica_is_good_on_another(
    system: System, listings: list[Listing], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The key is per deployment, not per process: a load balancer may send the next page
    to another replica."""
    listing = _listing(listings, "ListStock")
    rows, tokens = await all_pages(listing)
    replica = ServiceProcess(
        "inventory", system.inventory.env, tmp_path_factory.mktemp("replica") / "inventory.log"
    )
    await asyncio.to_thread(replica.start)
    try:
        async with grpc.aio.insecure_channel(replica.grpc_addr) as channel:
            reply = await InventoryServiceStub(channel).ListStock(
                inv.ListStockRequest(
                    sku_prefix=listing.request().sku_prefix, page_size=1, page_token=tokens[0]
                )
            )
        assert list(reply.stocks) == rows[1:2]
    finally:
        assert await asyncio.to_thread(replica.stop) == 0

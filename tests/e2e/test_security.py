"""docs/spec.md §6 against real processes: bearer tokens with scopes, TLS, mTLS, no secret
in logs.

The inventory service runs with TLS (server certificate only), the allocation service with
mTLS (clients need a certificate from the client CA); both accept bearer tokens. The CAs,
certificates and tokens are made here, at run time.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from backorder.operations.v1 import dead_letters_pb2 as dl
from backorder.operations.v1.dead_letters_pb2_grpc import DeadLetterServiceStub
from services.common.security import ClientSecurity
from tests.support.certs import Authority, Issued
from tests.support.processes import BIN, ServiceProcess
from tests.support.servers import Vhost, database_url, drop_database, unique


@dataclass
class Secured:
    inventory: ServiceProcess
    allocation: ServiceProcess
    tokens: dict[str, str]  # name -> token
    server_ca: Path
    client: Issued  # signed by the client CA the allocation service trusts
    stranger: Issued  # signed by a CA nobody trusts
    stranger_ca: Path
    key_files: list[Path]

    def inventory_client(self, token: str | None = None) -> ClientSecurity:
        return ClientSecurity(tls=True, ca=self.server_ca.read_bytes(), token=token)

    def allocation_client(
        self, token: str | None = None, cert: Issued | None = None
    ) -> ClientSecurity:
        cert = self.client if cert is None else cert
        return ClientSecurity(
            tls=True,
            ca=self.server_ca.read_bytes(),
            cert_chain=cert.cert,
            private_key=cert.key,
            token=token,
        )


@pytest.fixture(scope="module")
def secured(vhost: Vhost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    certs = tmp_path_factory.mktemp("certs")
    logs = tmp_path_factory.mktemp("secured-logs")
    server_ca = Authority(certs, "servers")
    client_ca = Authority(certs, "clients")
    stranger_ca = Authority(certs, "strangers")
    inventory_cert = server_ca.issue_server("inventory", ["localhost", "127.0.0.1"])
    allocation_cert = server_ca.issue_server("allocation", ["localhost", "127.0.0.1"])
    tokens = {name: secrets.token_urlsafe(24) for name in ("read", "write", "admin", "all")}
    # Half the tokens in the variable, half in a file: both sources are read.
    tokens_file = certs / "tokens"
    tokens_file.write_text(
        f"# operator tokens\n{tokens['admin']}:admin\n{tokens['all']}:read,write,admin\n"
    )
    databases = [unique("bo_sec_inv"), unique("bo_sec_alloc")]
    env = {
        "INVENTORY_DATABASE_URL": database_url(databases[0]),
        "ALLOCATION_DATABASE_URL": database_url(databases[1]),
        "AMQP_URL": vhost.url,
        # Everything the services log, so the secret check below sees the most.
        "LOG_LEVEL": "DEBUG",
        "BACKORDER_TOKENS": f"{tokens['read']}:read {tokens['write']}:write",
        "BACKORDER_TOKENS_FILE": str(tokens_file),
        "INVENTORY_TLS_CERT_FILE": str(inventory_cert.cert_file),
        "INVENTORY_TLS_KEY_FILE": str(inventory_cert.key_file),
        "ALLOCATION_TLS_CERT_FILE": str(allocation_cert.cert_file),
        "ALLOCATION_TLS_KEY_FILE": str(allocation_cert.key_file),
        "ALLOCATION_TLS_CLIENT_CA_FILE": str(client_ca.cert_file),
    }
    client = client_ca.issue_client("backorderctl")
    stranger = stranger_ca.issue_client("mallory")
    result = Secured(
        inventory=ServiceProcess("inventory", env, logs / "inventory.log"),
        allocation=ServiceProcess("allocation", env, logs / "allocation.log"),
        tokens=tokens,
        server_ca=server_ca.cert_file,
        client=client,
        stranger=stranger,
        stranger_ca=stranger_ca.cert_file,
        key_files=[inventory_cert.key_file, allocation_cert.key_file, client.key_file],
    )
    result.inventory.client = result.inventory_client()
    result.allocation.client = result.allocation_client()
    try:
        result.inventory.start()
        result.allocation.start()
        yield result
    finally:
        codes = [p.stop() for p in (result.inventory, result.allocation) if p.process]
        with ThreadPoolExecutor(1) as pool:  # outside any test event loop
            for name in databases:
                pool.submit(asyncio.run, drop_database(name)).result()
    assert codes == [0, 0], result.inventory.log_tail() + result.allocation.log_tail()


def code_of(call: object) -> grpc.StatusCode:
    """Runs `call` (a no-argument function making one RPC) and returns its status code."""
    assert callable(call)
    try:
        call()
    except grpc.RpcError as exc:
        assert isinstance(exc, grpc.Call)
        return exc.code()
    return grpc.StatusCode.OK


def get_stock(secured: Secured, sku: str, security: ClientSecurity) -> inv.Stock:
    with security.channel(secured.inventory.grpc_addr) as channel:
        reply = InventoryServiceStub(channel).GetStock(
            inv.GetStockRequest(sku=sku), metadata=security.metadata(), timeout=10
        )
    return reply.stock


def receive(secured: Secured, sku: str, security: ClientSecurity, quantity: int = 5) -> None:
    with security.channel(secured.inventory.grpc_addr) as channel:
        InventoryServiceStub(channel).ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=quantity),
            metadata=security.metadata(),
            timeout=10,
        )


def allocate(secured: Secured, security: ClientSecurity, order_id: str) -> alloc.Line:
    with security.channel(secured.allocation.grpc_addr) as channel:
        reply = AllocationServiceStub(channel).Allocate(
            alloc.AllocateRequest(
                order_id=order_id, line_id="1", sku=unique("SKU"), quantity=2, priority=4
            ),
            metadata=security.metadata(),
            timeout=10,
        )
    return reply.line


# --- tokens ----------------------------------------------------------------------------------


def test_health_needs_no_token(secured: Secured) -> None:
    for process, security in (
        (secured.inventory, secured.inventory_client()),
        (secured.allocation, secured.allocation_client()),
    ):
        with security.channel(process.grpc_addr) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_missing_or_unknown_token_is_unauthenticated(secured: Secured) -> None:
    sku = unique("SKU")
    plain = secured.inventory_client()
    wrong = secured.inventory_client(token=secrets.token_urlsafe(24))
    assert code_of(lambda: get_stock(secured, sku, plain)) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda: get_stock(secured, sku, wrong)) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda: receive(secured, sku, wrong)) == grpc.StatusCode.UNAUTHENTICATED
    # Not a bearer token at all.
    with (
        plain.channel(secured.inventory.grpc_addr) as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        InventoryServiceStub(channel).GetStock(
            inv.GetStockRequest(sku=sku),
            metadata=[("authorization", f"Basic {secured.tokens['read']}")],
            timeout=10,
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in (caught.value.details() or "")
    # Nothing was written by the refused receipt.
    reader = secured.inventory_client(token=secured.tokens["read"])
    assert code_of(lambda: get_stock(secured, sku, reader)) == grpc.StatusCode.NOT_FOUND


def test_token_without_the_scope_is_permission_denied_and_writes_nothing(
    secured: Secured,
) -> None:
    sku = unique("SKU")
    reader = secured.inventory_client(token=secured.tokens["read"])
    writer = secured.inventory_client(token=secured.tokens["write"])
    admin_only = secured.inventory_client(token=secured.tokens["admin"])

    assert code_of(lambda: receive(secured, sku, reader)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: receive(secured, sku, admin_only)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: get_stock(secured, sku, reader)) == grpc.StatusCode.NOT_FOUND
    # Scopes are independent: a write-only token cannot read.
    assert code_of(lambda: get_stock(secured, sku, writer)) == grpc.StatusCode.PERMISSION_DENIED

    receive(secured, sku, writer, quantity=7)
    assert get_stock(secured, sku, reader).on_hand == 7

    alloc_reader = secured.allocation_client(token=secured.tokens["read"])
    alloc_all = secured.allocation_client(token=secured.tokens["all"])
    order = unique("o")
    assert (
        code_of(lambda: allocate(secured, alloc_reader, order)) == grpc.StatusCode.PERMISSION_DENIED
    )
    assert allocate(secured, alloc_all, order).order_id == order


def test_reflection_needs_the_read_scope(secured: Secured) -> None:
    def list_services(security: ClientSecurity) -> list[str]:
        with security.channel(secured.inventory.grpc_addr) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                metadata=security.metadata(),
                timeout=10,
            )
            return [s.name for r in replies for s in r.list_services_response.service]

    with pytest.raises(grpc.RpcError) as caught:
        list_services(secured.inventory_client())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    names = list_services(secured.inventory_client(token=secured.tokens["read"]))
    assert "backorder.inventory.v1.InventoryService" in names


def test_admin_operations_need_the_admin_scope(secured: Secured) -> None:
    """SetSkuPolicy and both DeadLetterServices: read and write tokens are refused, as is a
    call without a token; an admin token is served. A refused policy change writes nothing."""
    sku = unique("SKU")
    policy = alloc.SetSkuPolicyRequest(
        sku=sku, fill_policy=alloc.FILL_POLICY_SKIP, backorders_accepted=False
    )

    def set_policy(security: ClientSecurity) -> alloc.SkuSummary:
        with security.channel(secured.allocation.grpc_addr) as channel:
            reply = AllocationServiceStub(channel).SetSkuPolicy(
                policy, metadata=security.metadata(), timeout=10
            )
        return reply.summary

    def summary(security: ClientSecurity) -> alloc.SkuSummary:
        with security.channel(secured.allocation.grpc_addr) as channel:
            reply = AllocationServiceStub(channel).GetSkuSummary(
                alloc.GetSkuSummaryRequest(sku=sku), metadata=security.metadata(), timeout=10
            )
        return reply.summary

    tokens = secured.tokens
    for name, expected in (
        (None, grpc.StatusCode.UNAUTHENTICATED),
        ("read", grpc.StatusCode.PERMISSION_DENIED),
        ("write", grpc.StatusCode.PERMISSION_DENIED),
    ):
        token = None if name is None else tokens[name]
        refused = functools.partial(set_policy, secured.allocation_client(token=token))
        assert code_of(refused) == expected, name
    # The SKU would have been created by the change: it was not.
    reader = secured.allocation_client(token=tokens["read"])
    assert code_of(lambda: summary(reader)) == grpc.StatusCode.NOT_FOUND

    changed = set_policy(secured.allocation_client(token=tokens["admin"]))
    assert (changed.policy.fill_policy, changed.policy.backorders_accepted) == (
        alloc.FILL_POLICY_SKIP,
        False,
    )
    assert summary(reader).policy.fill_policy == alloc.FILL_POLICY_SKIP

    servers = (
        (secured.inventory.grpc_addr, secured.inventory_client),
        (secured.allocation.grpc_addr, secured.allocation_client),
    )
    for address, client in servers:
        for name, expected in (
            (None, grpc.StatusCode.UNAUTHENTICATED),
            ("read", grpc.StatusCode.PERMISSION_DENIED),
            ("write", grpc.StatusCode.PERMISSION_DENIED),
            ("admin", grpc.StatusCode.OK),
        ):
            security = client(None if name is None else tokens[name])
            for call in (_list_dead_letters, _replay_dead_letters):
                got = code_of(functools.partial(call, address, security))
                assert got == expected, (address, call.__name__, name)
        security = client(tokens["admin"])
        assert _list_dead_letters(address, security).queue.endswith(".dead")


def _list_dead_letters(address: str, security: ClientSecurity) -> dl.ListDeadLettersResponse:
    with security.channel(address) as channel:
        return DeadLetterServiceStub(channel).ListDeadLetters(
            dl.ListDeadLettersRequest(), metadata=security.metadata(), timeout=10
        )


def _replay_dead_letters(address: str, security: ClientSecurity) -> dl.ReplayDeadLettersResponse:
    with security.channel(address) as channel:
        return DeadLetterServiceStub(channel).ReplayDeadLetters(
            dl.ReplayDeadLettersRequest(all=True), metadata=security.metadata(), timeout=10
        )


def test_watch_stock_stream_needs_the_read_scope(secured: Secured) -> None:
    """The server-streaming RPC is guarded like the unary ones: no token, a write-only or an
    admin-only token is refused before any message; a read token gets the snapshot."""
    sku = unique("SKU")
    receive(secured, sku, secured.inventory_client(token=secured.tokens["write"]), quantity=4)

    def first(security: ClientSecurity) -> inv.WatchStockResponse:
        with security.channel(secured.inventory.grpc_addr) as channel:
            stream = InventoryServiceStub(channel).WatchStock(
                inv.WatchStockRequest(skus=[sku]), metadata=security.metadata(), timeout=10
            )
            try:
                return next(iter(stream))
            finally:
                stream.cancel()

    for token, expected in (
        (None, grpc.StatusCode.UNAUTHENTICATED),
        (secrets.token_urlsafe(24), grpc.StatusCode.UNAUTHENTICATED),
        (secured.tokens["write"], grpc.StatusCode.PERMISSION_DENIED),
        (secured.tokens["admin"], grpc.StatusCode.PERMISSION_DENIED),
    ):
        refused = functools.partial(first, secured.inventory_client(token=token))
        assert code_of(refused) == expected, token
    snapshot = first(secured.inventory_client(token=secured.tokens["read"]))
    assert snapshot.stock.sku == sku
    assert snapshot.stock.on_hand == 4


# --- TLS and mTLS ------------------------------------------------------------------------------


def test_tls_server_refuses_plaintext_and_untrusted_server_certs_are_refused(
    secured: Secured,
) -> None:
    sku = unique("SKU")
    token = secured.tokens["all"]
    plaintext = ClientSecurity(token=token)
    wrong_ca = ClientSecurity(tls=True, ca=secured.stranger_ca.read_bytes(), token=token)
    assert code_of(lambda: get_stock(secured, sku, plaintext)) == grpc.StatusCode.UNAVAILABLE
    assert code_of(lambda: get_stock(secured, sku, wrong_ca)) == grpc.StatusCode.UNAVAILABLE
    trusted = secured.inventory_client(token=token)
    assert code_of(lambda: get_stock(secured, sku, trusted)) == grpc.StatusCode.NOT_FOUND


def test_mtls_refuses_clients_without_a_trusted_certificate(secured: Secured) -> None:
    token = secured.tokens["all"]
    no_cert = ClientSecurity(tls=True, ca=secured.server_ca.read_bytes(), token=token)
    untrusted = secured.allocation_client(token=token, cert=secured.stranger)
    for security in (no_cert, untrusted):
        order = unique("o")
        refused = functools.partial(allocate, secured, security, order)
        assert code_of(refused) == grpc.StatusCode.UNAVAILABLE
    order = unique("o")
    assert allocate(secured, secured.allocation_client(token=token), order).order_id == order


# --- secrets stay out of logs ------------------------------------------------------------------


def test_no_secret_appears_in_the_logs(secured: Secured, tmp_path: Path) -> None:
    # Exercise the paths that log about tokens: refused and accepted calls.
    sku = unique("SKU")
    receive(secured, sku, secured.inventory_client(token=secured.tokens["write"]))
    code_of(lambda: receive(secured, sku, secured.inventory_client(token=secured.tokens["read"])))
    guessed = secrets.token_urlsafe(24)
    code_of(lambda: get_stock(secured, sku, secured.inventory_client(token=guessed)))
    # A start-up refused for a malformed token list must not echo it either.
    bad_token = f"short-{uuid.uuid4().hex[:4]}"
    refused = subprocess.run(
        [str(BIN / "backorder-inventory"), "serve"],
        env={
            **os.environ,
            **secured.inventory.env,
            "BACKORDER_TOKENS": f"{secured.tokens['read']}:read {bad_token}:read",
            "BACKORDER_TOKENS_FILE": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "BACKORDER_TOKENS entry 2" in refused.stderr

    logs = secured.inventory.log_text() + secured.allocation.log_text()
    logs += refused.stdout + refused.stderr
    assert '"msg": "serving"' in logs, "the services logged nothing: the check would be vacuous"
    for name, token in secured.tokens.items():
        assert token not in logs, f"the {name} token appears in a log"
    for secret in (guessed, bad_token, secured.tokens["read"]):
        assert secret not in logs
    for key_file in secured.key_files:
        body = "".join(key_file.read_text().splitlines()[1:-1])
        assert body[:40] not in logs.replace("\n", "")
    assert "PRIVATE KEY" not in logs
    # The AMQP password of the test broker (guest) never appears in a URL.
    assert ":guest@" not in logs


# --- backorderctl with TLS, mTLS and tokens ----------------------------------------------------


def test_backorderctl_with_tokens_and_mtls(secured: Secured) -> None:
    def ctl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "backorderctl"), *args],
            env={
                **os.environ,
                "INVENTORY_GRPC_ADDR": secured.inventory.grpc_addr,
                "ALLOCATION_GRPC_ADDR": secured.allocation.grpc_addr,
                "BACKORDER_CA_FILE": str(secured.server_ca),
                "BACKORDER_CLIENT_CERT_FILE": str(secured.client.cert_file),
                "BACKORDER_CLIENT_KEY_FILE": str(secured.client.key_file),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )

    order, sku = unique("o"), unique("SKU")
    placed = ctl("lines", "allocate", order, "1", sku, "2", BACKORDER_TOKEN=secured.tokens["all"])
    assert placed.returncode == 0, placed.stderr
    assert ctl("health").returncode == 0, "health needs no token"

    missing = ctl("lines", "get", order, "1")
    assert missing.returncode == 6 and "UNAUTHENTICATED" in missing.stderr
    denied = ctl(
        "lines", "allocate", unique("o"), "1", sku, "1", BACKORDER_TOKEN=secured.tokens["read"]
    )
    assert denied.returncode == 6 and "PERMISSION_DENIED" in denied.stderr

    token_file = secured.server_ca.parent / "ctl-token"
    token_file.write_text(secured.tokens["read"] + "\n")
    shown = ctl("--json", "lines", "get", order, "1", BACKORDER_TOKEN_FILE=str(token_file))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["order_id"] == order

    stranger = ctl(
        "lines",
        "get",
        order,
        "1",
        BACKORDER_TOKEN=secured.tokens["all"],
        BACKORDER_CLIENT_CERT_FILE=str(secured.stranger.cert_file),
        BACKORDER_CLIENT_KEY_FILE=str(secured.stranger.key_file),
    )
    assert stranger.returncode == 5 and "UNAVAILABLE" in stranger.stderr
    for outcome in (placed, missing, denied, shown, stranger):
        for token in secured.tokens.values():
            assert token not in outcome.stdout + outcome.stderr

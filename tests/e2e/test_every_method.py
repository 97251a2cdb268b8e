"""Every method of every service registered on both servers, through the interceptors, as
real processes, with tokens off and on (docs/spec.md §6): our own services, the dead-letter
service, health (Check and the Watch stream) and reflection (v1 and v1alpha).

The methods are not listed here by hand: they come from the servers' own reflection (v1),
checked against the services we expect, so a service added later is tried too. Each one is
called with its empty request and with bytes that are not its request message, unary and
streaming alike. Every call ends in one INFO access line in the service's JSON log.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

import backorder.allocation.v1.allocation_pb2
import backorder.inventory.v1.inventory_pb2
import backorder.operations.v1.dead_letters_pb2  # noqa: F401
from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from services.common.security import ClientSecurity
from services.common.standard_services import reflection_v1_types
from tests.e2e.conftest import System
from tests.support.processes import ServiceProcess
from tests.support.raw_calls import call_raw, malformed_bodies
from tests.support.servers import Vhost, database_url, drop_database, unique

COMMON = {
    "backorder.operations.v1.DeadLetterService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
EXPECTED = {
    "inventory": COMMON | {"backorder.inventory.v1.InventoryService"},
    "allocation": COMMON | {"backorder.allocation.v1.AllocationService"},
}
REFLECTION = {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}
SERVING = health_pb2.HealthCheckResponse.SERVING
PUBLIC = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"}
# Never the answer to a client's request, whatever it sent.
NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNIMPLEMENTED}
REFLECTION_V1_REQUEST, REFLECTION_V1_RESPONSE = reflection_v1_types()


@dataclass
class Deployment:
    name: str
    inventory: ServiceProcess
    allocation: ServiceProcess
    token: str | None  # a token with every scope, or None when tokens are off
    scoped: dict[str, str] | None = None  # scope -> a token with that scope alone

    def process(self, service: str) -> ServiceProcess:
        return self.inventory if service == "inventory" else self.allocation

    def metadata(self, token: bool = True) -> list[tuple[str, str]]:
        if token and self.token:
            return ClientSecurity(token=self.token).metadata()
        return []


@pytest.fixture(scope="module")
def with_tokens(vhost: Vhost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Both services with bearer tokens, logging at DEBUG (the refusal lines are there)."""
    logs = tmp_path_factory.mktemp("every-method-logs")
    token = secrets.token_urlsafe(24)
    scoped = {scope: secrets.token_urlsafe(24) for scope in ("read", "write", "admin")}
    databases = [unique("bo_every_inv"), unique("bo_every_alloc")]
    env = {
        "INVENTORY_DATABASE_URL": database_url(databases[0]),
        "ALLOCATION_DATABASE_URL": database_url(databases[1]),
        "AMQP_URL": vhost.url,
        "LOG_LEVEL": "DEBUG",
        "BACKORDER_TOKENS": " ".join(
            [f"{token}:read,write,admin", *(f"{t}:{scope}" for scope, t in scoped.items())]
        ),
    }
    inventory = ServiceProcess("inventory", env, Path(logs, "inventory.log"))
    allocation = ServiceProcess("allocation", env, Path(logs, "allocation.log"))
    inventory.start()
    allocation.start()
    yield Deployment("tokens", inventory, allocation, token, scoped)
    codes = {"inventory": inventory.stop(), "allocation": allocation.stop()}
    with ThreadPoolExecutor(1) as pool:
        for name in databases:
            pool.submit(asyncio.run, drop_database(name)).result()
    assert codes == {"inventory": 0, "allocation": 0}, codes


@pytest.fixture(scope="module", params=["open", "tokens"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    if request.param == "open":
        system: System = request.getfixturevalue("system")
        return Deployment("open", system.inventory, system.allocation, None)
    deployment: Deployment = request.getfixturevalue("with_tokens")
    return deployment


def registered_methods(deployment: Deployment, service: str) -> list[MethodDescriptor]:
    """Every method of every service the server lists through reflection v1."""
    process = deployment.process(service)
    with grpc.insecure_channel(process.grpc_addr) as channel:
        code, details, responses = call_raw(
            channel,
            descriptor_pool.Default()
            .FindServiceByName("grpc.reflection.v1.ServerReflection")
            .methods_by_name["ServerReflectionInfo"],
            REFLECTION_V1_REQUEST(list_services="").SerializeToString(),
            deployment.metadata(),
        )
    assert code == grpc.StatusCode.OK, details
    listed = REFLECTION_V1_RESPONSE.FromString(responses[0]).list_services_response.service
    names = {s.name for s in listed}
    assert names == EXPECTED[service]
    pool = descriptor_pool.Default()
    return [m for name in sorted(names) for m in pool.FindServiceByName(name).methods]


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["inventory", "allocation"])
def test_every_method_answers_its_empty_request_without_internal_errors(
    deployment: Deployment, service: str
) -> None:
    process = deployment.process(service)
    methods = registered_methods(deployment, service)
    outcomes: dict[str, grpc.StatusCode] = {}
    with grpc.insecure_channel(process.grpc_addr) as channel:
        for method in methods:
            path = f"/{method.containing_service.full_name}/{method.name}"
            body = b""
            if method.containing_service.name == "ServerReflection":
                body = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
            code, details, responses = call_raw(
                channel, method, body, deployment.metadata(), timeout=3
            )
            assert code not in NEVER, f"{path}: {code.name} {details!r}"
            if code != grpc.StatusCode.OK:
                assert details, f"{path}: {code.name} without a message"
            outcomes[path] = code
            if path == "/grpc.health.v1.Health/List":
                assert code == grpc.StatusCode.OK, f"{path}: {code.name} {details!r}"
                listing = health_pb2.HealthListResponse.FromString(responses[0])
                assert {name for name in listing.statuses} == {""} | (
                    EXPECTED[service] - {"grpc.health.v1.Health"} - REFLECTION
                )
                assert {s.status for s in listing.statuses.values()} == {SERVING}
            elif method.containing_service.name == "Health":
                assert code == grpc.StatusCode.OK, f"{path}: {code.name} {details!r}"
                reply = health_pb2.HealthCheckResponse.FromString(responses[0])
                assert reply.status == SERVING, path
            if method.containing_service.name == "ServerReflection":
                assert code == grpc.StatusCode.OK, f"{path}: {code.name} {details!r}"
                reply_v1 = REFLECTION_V1_RESPONSE.FromString(responses[0])
                listed = {s.name for s in reply_v1.list_services_response.service}
                assert listed == EXPECTED[service], path
    # The stream shapes are among them: health's Watch (a coroutine that writes), WatchStock
    # (an async generator), reflection (a bidirectional stream).
    assert outcomes["/grpc.health.v1.Health/Watch"] == grpc.StatusCode.OK
    assert len(outcomes) == len(methods) >= 10
    # A stream we cancelled is logged when the server sees the cancellation: a moment later.
    deadline = time.monotonic() + 10
    while True:
        log = process.log_text()
        missing = [path for path in outcomes if f'"rpc": "{path}"' not in log]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not missing, f"no access line for {missing}"
    assert "Traceback" not in log
    assert "unexpected error" not in log


@pytest.mark.parametrize("service", ["inventory", "allocation"])
def test_every_method_refuses_bytes_that_are_not_its_request(
    deployment: Deployment, service: str
) -> None:
    process = deployment.process(service)
    methods = registered_methods(deployment, service)
    with grpc.insecure_channel(process.grpc_addr) as channel:
        for method in methods:
            path = f"/{method.containing_service.full_name}/{method.name}"
            for body in malformed_bodies(method):
                code, details, _ = call_raw(channel, method, body, deployment.metadata())
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (
                    f"{path} {body!r}: {code.name} {details!r}"
                )
                assert details == f"request is not a valid {method.input_type.full_name}"
                if deployment.token and path not in PUBLIC:
                    # Without a token, the body is never parsed: the caller is refused first.
                    code, details, _ = call_raw(channel, method, body, [])
                    assert code == grpc.StatusCode.UNAUTHENTICATED, (
                        f"{path} {body!r}: {code.name} {details!r}"
                    )
    # Still serving, and nothing crashed on the way.
    with grpc.insecure_channel(process.grpc_addr) as channel:
        health = descriptor_pool.Default().FindMethodByName("grpc.health.v1.Health.Check")
        code, _, responses = call_raw(channel, health, b"", [])
        assert code == grpc.StatusCode.OK
        assert health_pb2.HealthCheckResponse.FromString(responses[0]).status == 1
    assert "Traceback" not in process.log_text()


def test_without_a_token_only_health_answers(with_tokens: Deployment) -> None:
    for service in ("inventory", "allocation"):
        methods = registered_methods(with_tokens, service)
        with grpc.insecure_channel(with_tokens.process(service).grpc_addr) as channel:
            for method in methods:
                path = f"/{method.containing_service.full_name}/{method.name}"
                code, details, responses = call_raw(channel, method, b"", [], timeout=3)
                if path in PUBLIC:
                    assert code == grpc.StatusCode.OK, f"{path}: {code.name} {details!r}"
                    assert responses, path
                else:
                    assert code == grpc.StatusCode.UNAUTHENTICATED, f"{path}: {code.name}"
    # Refusals are in the access log too (the edge runs outside the token check).
    refused = _access_lines(
        with_tokens.allocation,
        rpc="/backorder.allocation.v1.AllocationService/Allocate",
        code="UNAUTHENTICATED",
    )
    assert refused and "missing bearer token" in refused[-1]["detail"]


def _access_lines(process: ServiceProcess, **fields: str) -> list[dict[str, Any]]:
    lines = []
    for text in process.log_text().splitlines():
        if not text.startswith("{"):
            continue
        entry = json.loads(text)
        if entry.get("logger") == "backorder.access" and all(
            entry.get(k) == v for k, v in fields.items()
        ):
            lines.append(entry)
    return lines


def test_a_successful_allocate_is_in_the_access_log(deployment: Deployment) -> None:
    order_id = unique("o")
    with grpc.insecure_channel(deployment.allocation.grpc_addr) as channel:
        stub = channel.unary_unary(
            "/backorder.allocation.v1.AllocationService/Allocate",
            request_serializer=alloc.AllocateRequest.SerializeToString,
            response_deserializer=alloc.AllocateResponse.FromString,
        )
        stub(
            alloc.AllocateRequest(
                order_id=order_id, line_id="1", sku=unique("SKU"), quantity=2, priority=5
            ),
            metadata=deployment.metadata(),
            timeout=30,
        )
    # What README tells operators to grep for.
    grep = [line for line in deployment.allocation.log_text().splitlines()]
    found = [line for line in grep if f'"order_id": "{order_id}"' in line]
    assert found, "no log line names the order"
    [entry] = _access_lines(deployment.allocation, order_id=order_id)
    assert entry["level"] == "info"
    assert entry["code"] == "OK"
    assert entry["rpc"] == "/backorder.allocation.v1.AllocationService/Allocate"
    assert entry["line_id"] == "1"
    assert entry["peer"].startswith("ipv4:127.0.0.1:")
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] > 0


def test_client_values_are_clipped_in_every_log_line(deployment: Deployment) -> None:
    huge = "S" * 1_000_000
    order_id = unique("o")
    with grpc.insecure_channel(
        deployment.allocation.grpc_addr, options=[("grpc.max_send_message_length", 8 << 20)]
    ) as channel:
        stub = channel.unary_unary(
            "/backorder.allocation.v1.AllocationService/Allocate",
            request_serializer=alloc.AllocateRequest.SerializeToString,
            response_deserializer=alloc.AllocateResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub(
                alloc.AllocateRequest(
                    order_id=order_id, line_id="1", sku=huge, quantity=2, priority=5
                ),
                metadata=deployment.metadata(),
                timeout=30,
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [entry] = _access_lines(deployment.allocation, order_id=order_id)
    assert entry["code"] == "INVALID_ARGUMENT"
    assert entry["sku"] == "S" * 128 + "… (1000000 chars)"
    longest = max(len(line) for line in deployment.allocation.log_text().splitlines())
    assert longest < 5_000, f"a log line of {longest} chars"


def test_health_watch_streams_not_serving_at_shutdown_and_ends(
    vhost: Vhost, tmp_path: Path
) -> None:
    database = unique("bo_watch_inv")
    process = ServiceProcess(
        "inventory",
        {"INVENTORY_DATABASE_URL": database_url(database), "AMQP_URL": vhost.url},
        tmp_path / "inventory.log",
    )
    process.start()
    try:
        with grpc.insecure_channel(process.grpc_addr) as channel:
            watch = channel.unary_stream(
                "/grpc.health.v1.Health/Watch",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )(health_pb2.HealthCheckRequest(), timeout=30)
            first = next(watch)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            assert process.process is not None
            process.process.terminate()
            rest = [reply.status for reply in watch]  # ends on its own, well before 30 s
        assert rest == [health_pb2.HealthCheckResponse.NOT_SERVING]
        # The open watch did not hold the server's grace period (10 s).
        assert process.process.wait(timeout=8) == 0
    finally:
        process.stop()
        with ThreadPoolExecutor(1) as pool:  # outside the tests' event loop
            pool.submit(asyncio.run, drop_database(database)).result()
    assert "Traceback" not in process.log_text()


def test_reflection_v1_describes_our_services(deployment: Deployment) -> None:
    with grpc.insecure_channel(deployment.inventory.grpc_addr) as channel:
        method = descriptor_pool.Default().FindMethodByName(
            "grpc.reflection.v1.ServerReflection.ServerReflectionInfo"
        )
        request = REFLECTION_V1_REQUEST(
            file_containing_symbol="backorder.inventory.v1.InventoryService"
        )
        code, details, responses = call_raw(
            channel, method, request.SerializeToString(), deployment.metadata()
        )
    assert code == grpc.StatusCode.OK, details
    reply = REFLECTION_V1_RESPONSE.FromString(responses[0])
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    services = {s.name for f in files for s in f.service}
    assert "InventoryService" in services


def test_reflection_needs_the_read_scope_and_health_checks_none(with_tokens: Deployment) -> None:
    assert with_tokens.scoped is not None
    pool = descriptor_pool.Default()
    expected = {
        "read": grpc.StatusCode.OK,
        "write": grpc.StatusCode.PERMISSION_DENIED,
        "admin": grpc.StatusCode.PERMISSION_DENIED,
    }
    with grpc.insecure_channel(with_tokens.inventory.grpc_addr) as channel:
        for version in ("v1", "v1alpha"):
            method = pool.FindMethodByName(
                f"grpc.reflection.{version}.ServerReflection.ServerReflectionInfo"
            )
            body = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
            for scope, token in with_tokens.scoped.items():
                metadata = ClientSecurity(token=token).metadata()
                code, details, _ = call_raw(channel, method, body, metadata)
                assert code == expected[scope], f"{version} with {scope}: {code.name} {details}"
        for name in ("Check", "Watch"):
            method = pool.FindMethodByName(f"grpc.health.v1.Health.{name}")
            code, details, responses = call_raw(channel, method, b"", [], timeout=3)
            assert code == grpc.StatusCode.OK and responses, f"{name}: {code.name} {details}"


def test_watch_stock_streams_through_the_interceptors(deployment: Deployment) -> None:
    sku = unique("SKU")
    with grpc.insecure_channel(deployment.inventory.grpc_addr) as channel:
        stub = InventoryServiceStub(channel)
        stub.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=4),
            metadata=deployment.metadata(),
            timeout=30,
        )
        watch = stub.WatchStock(
            inv.WatchStockRequest(skus=[sku]), metadata=deployment.metadata(), timeout=30
        )
        first = next(watch)
        assert (first.stock.sku, first.stock.on_hand) == (sku, 4)
        stub.ReceiveStock(
            inv.ReceiveStockRequest(receipt_id=unique("r"), sku=sku, quantity=1),
            metadata=deployment.metadata(),
            timeout=30,
        )
        # The first receipt's change may come after the snapshot too (sent twice, never
        # missed: README), then the second one.
        seen = [next(watch).stock.on_hand]
        while seen[-1] != 5:
            seen.append(next(watch).stock.on_hand)
        assert set(seen) <= {4, 5}, seen
        watch.cancel()
    # Logged when the server sees the stream end (our cancel): a moment later.
    deadline = time.monotonic() + 10
    line = '"rpc": "/backorder.inventory.v1.InventoryService/WatchStock"'
    while line not in deployment.inventory.log_text():
        assert time.monotonic() < deadline, "no access line for WatchStock"
        time.sleep(0.1)

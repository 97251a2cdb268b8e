"""Hostile input (issue 5, scenario 7): Hypothesis generates requests for every RPC of both
services from their descriptors (oversized and empty strings, unicode and control
characters, negative and huge numbers, unknown enum values, out-of-range timestamps, bad
page tokens). Only documented codes come back, never UNKNOWN/INTERNAL; a rejected
mutating call leaves the database exactly as it was; both servers keep serving.

Bodies that are not protobuf at all (truncated, invalid UTF-8 in a string field) go to every
method of every service on the servers, unary and streaming: INVALID_ARGUMENT with a token,
UNAUTHENTICATED without one (the body is never parsed for a stranger), nothing written."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import string
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backorder.allocation.v1 import allocation_pb2, allocation_pb2_grpc
from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from backorder.operations.v1 import dead_letters_pb2  # noqa: F401  (its services in the pool)
from services.common.security import PUBLIC_METHODS
from services.common.standard_services import reflection_v1_types
from tests.reliability.conftest import Report, scaled
from tests.support.cluster import Cluster
from tests.support.processes import ServiceProcess
from tests.support.raw_calls import call_raw, malformed_bodies
from tests.support.servers import Vhost, database_url

DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
}
MUTATING = {
    "ReceiveStock",
    "AdjustStock",
    "ExpectInbound",
    "CancelInbound",
    "Allocate",
    "CancelLine",
    "FulfillLine",
    "SetPriority",
    "SetSkuPolicy",
}
SKU_CHARS = string.ascii_letters + string.digits + "._:-"
# A few known keys, so that generated calls also hit existing rows (repeats, conflicts).
KNOWN = ["SKU-1", "SKU-2", "o-1", "l-1", "in-1", "r-1", "f-1"]


def _strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(KNOWN),
        st.text(alphabet=SKU_CHARS, min_size=1, max_size=8),
        st.text(alphabet=SKU_CHARS, min_size=60, max_size=140),
        st.text(max_size=20),
        st.text(min_size=100, max_size=2000),
        st.sampled_from(
            ["", " ", "\x00", "a\x00b", "\n", "é", "😀" * 40, "'; drop table line; --", "%s%n"]
        ),
        st.just("x" * 70_000),
    )


def _tokens() -> st.SearchStrategy[str]:
    junk_json = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=6,
    ).map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode())
    ints = st.integers(-(2**70), 2**70).map(
        lambda n: base64.urlsafe_b64encode(f"lines:{n}".encode()).decode()
    )
    huge_key = st.integers(-(2**70), 2**70).map(
        lambda n: base64.urlsafe_b64encode(
            json.dumps({"v": 1, "a": [n, "x"], "q": "0" * 16}).encode()
        ).decode()
    )
    return st.one_of(
        _strings(),
        junk_json,
        ints,
        huge_key,
        st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    )


def _integers(field: FieldDescriptor) -> st.SearchStrategy[int]:
    bits = 64 if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64) else 32
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return st.one_of(
        st.integers(-3, 12),
        st.sampled_from([0, 1, 999_999_999, 1_000_000_000, 1_000_000_001, low, high, -1]),
        st.integers(low, high),
    )


@st.composite
def _message(draw: st.DrawFn, message_type: type[Message]) -> Message:
    message = message_type()
    for field in message.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue  # left empty
        name = field.name
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                stamp = getattr(message, name)
                stamp.seconds = draw(
                    st.one_of(
                        st.integers(1_600_000_000, 2_000_000_000),
                        st.integers(-(2**63), 2**63 - 1),
                    )
                )
                stamp.nanos = draw(
                    st.one_of(st.integers(0, 999_999_999), st.integers(-(2**31), 2**31 - 1))
                )
            continue
        if field.is_repeated:
            getattr(message, name).extend(draw(st.lists(_strings(), max_size=5)))
            continue
        if field.type == FieldDescriptor.TYPE_STRING:
            value: Any = draw(_tokens() if "token" in name else _strings())
        elif field.type == FieldDescriptor.TYPE_BOOL:
            value = draw(st.booleans())
        elif field.type == FieldDescriptor.TYPE_ENUM:
            numbers = [v.number for v in field.enum_type.values]
            value = draw(st.one_of(st.sampled_from(numbers), st.integers(-(2**31), 2**31 - 1)))
        else:
            value = draw(_integers(field))
        setattr(message, name, value)
    return message


class Fingerprint:
    """A digest of every row of a database but the outbox's relay bookkeeping: equal
    before and after a call means the call wrote nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: asyncpg.Connection) -> None:
        self._loop = loop
        self._conn = conn
        tables = loop.run_until_complete(
            conn.fetch(
                """select table_name from information_schema.tables
                   where table_schema = 'public' and table_name <> 'schema_migrations'"""
            )
        )
        parts = []
        for (name,) in tables:
            if name == "outbox":
                parts.append("(select count(*)::text || ':' || coalesce(max(id), 0) from outbox)")
            else:
                parts.append(
                    f"(select md5(coalesce(string_agg(t::text, '|' order by t::text), ''))"
                    f" from {name} t)"
                )
        self._query = "select " + " || ',' || ".join(parts)

    def take(self) -> str:
        return str(self._loop.run_until_complete(self._conn.fetchval(self._query)))


def _fuzz(cluster: Cluster, addresses: dict[str, str], total: int) -> tuple[Counter[str], int]:
    """Runs in a thread of its own (sync gRPC, its own event loop for asyncpg)."""
    loop = asyncio.new_event_loop()
    codes: Counter[str] = Counter()
    unchanged = 0
    services: list[tuple[str, Any, Any, str]] = [
        ("inventory", inventory_pb2, inventory_pb2_grpc.InventoryServiceStub, "InventoryService"),
        (
            "allocation",
            allocation_pb2,
            allocation_pb2_grpc.AllocationServiceStub,
            "AllocationService",
        ),
    ]
    try:
        for service, module, stub_type, service_name in services:
            db_name = cluster.inventory_db if service == "inventory" else cluster.allocation_db
            conn = loop.run_until_complete(asyncpg.connect(database_url(db_name)))
            fingerprint = Fingerprint(loop, conn)
            methods = list(module.DESCRIPTOR.services_by_name[service_name].methods)
            # `total` over the 17 unary RPCs; the stream (WatchStock) gets a few on top.
            per_method = max(20, -(-total // 17))
            with grpc.insecure_channel(
                addresses[service], options=[("grpc.max_send_message_length", 8 << 20)]
            ) as channel:
                stub = stub_type(channel)
                for method in methods:
                    request_type = getattr(module, method.input_type.name)
                    call = getattr(stub, method.name)
                    examples = 30 if method.server_streaming else per_method
                    unchanged += _fuzz_method(
                        method, request_type, call, examples, fingerprint, codes
                    )
            loop.run_until_complete(conn.close())
    finally:
        loop.close()
    return codes, unchanged


def _fuzz_method(
    method: MethodDescriptor,
    request_type: type[Message],
    call: Callable[..., Any],
    examples: int,
    fingerprint: Fingerprint,
    codes: Counter[str],
) -> int:
    unchanged = 0

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(_message(request_type))
    def one(request: Message) -> None:
        nonlocal unchanged
        before = fingerprint.take() if method.name in MUTATING else None
        code = grpc.StatusCode.OK
        try:
            if method.server_streaming:
                stream = call(request, timeout=0.3)
                for _ in stream:
                    break
                stream.cancel()
            else:
                call(request, timeout=30)
        except grpc.RpcError as error:
            code = error.code()
            details = error.details() or ""
            if method.server_streaming and code in (
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.CANCELLED,
            ):
                code = grpc.StatusCode.OK  # a valid watch: it streams until we leave
            else:
                assert code in DOCUMENTED, f"{method.name}: {code.name} {details!r} for {request}"
                assert details, f"{method.name}: {code.name} without a message"
        codes[f"{method.name} {code.name}"] += 1
        if before is not None and code != grpc.StatusCode.OK:
            assert fingerprint.take() == before, f"{method.name} {code.name} wrote: {request}"
            unchanged += 1

    one()
    return unchanged


async def test_generated_hostile_requests_get_documented_codes_and_write_nothing(
    cluster_factory: object, report: Report
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    # Each service on a vhost of its own: no consumer writes while a call is checked.
    other = Vhost()
    await asyncio.to_thread(other.create)
    try:
        [inventory] = await cluster.start("inventory")
        cluster.vhost, own = other, cluster.vhost
        [allocation] = await cluster.start("allocation")
        cluster.vhost = own
        total = scaled(10_000, 200)
        codes, unchanged = await asyncio.to_thread(
            _fuzz,
            cluster,
            {"inventory": inventory.grpc_addr, "allocation": allocation.grpc_addr},
            total,
        )
        for process in (inventory, allocation):
            assert process.process is not None and process.process.poll() is None
            async with grpc.aio.insecure_channel(process.grpc_addr) as channel:
                health = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest()
                )
                assert health.status == health_pb2.HealthCheckResponse.SERVING
        stopped = await cluster.stop()
        assert set(stopped.values()) == {0}, stopped
    finally:
        await asyncio.to_thread(other.delete)
    by_code: Counter[str] = Counter()
    for key, n in codes.items():
        by_code[key.split()[1]] += n
    report(
        requests=sum(codes.values()),
        rpcs=len({k.split()[0] for k in codes}),
        codes=dict(by_code),
        rejected_mutations_checked_unwritten=unchanged,
        servers_up=2,
    )


reflection_v1_types()  # grpc.reflection.v1 in the descriptor pool, as the servers have it


def _registered_services(service: str) -> list[str]:
    own = {
        "inventory": "backorder.inventory.v1.InventoryService",
        "allocation": "backorder.allocation.v1.AllocationService",
    }[service]
    return [
        own,
        "backorder.operations.v1.DeadLetterService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]


def _send_malformed(process: ServiceProcess, fingerprint: Fingerprint, token: str) -> Counter[str]:
    """Every method of every service on `process`, each malformed body with and without the
    token; asserts the codes and that the database did not change. Codes seen, counted."""
    pool = descriptor_pool.Default()
    codes: Counter[str] = Counter()
    before = fingerprint.take()
    with grpc.insecure_channel(process.grpc_addr) as channel:
        for name in _registered_services(process.service):
            for method in pool.FindServiceByName(name).methods:
                path = f"/{name}/{method.name}"
                for body in malformed_bodies(method):
                    with_token = [("authorization", f"Bearer {token}")]
                    code, details, _ = call_raw(channel, method, body, with_token)
                    assert code == grpc.StatusCode.INVALID_ARGUMENT, f"{path}: {code.name}"
                    assert details == f"request is not a valid {method.input_type.full_name}"
                    codes[code.name] += 1
                    code, details, _ = call_raw(channel, method, body, [])
                    expected = (
                        grpc.StatusCode.INVALID_ARGUMENT
                        if path in PUBLIC_METHODS  # health checks: no token needed
                        else grpc.StatusCode.UNAUTHENTICATED
                    )
                    assert code == expected, f"{path} without a token: {code.name} {details!r}"
                    codes[code.name] += 1
    assert fingerprint.take() == before, f"malformed bodies wrote to {process.service}"
    return codes


async def test_malformed_bodies_are_invalid_argument_after_authentication(
    cluster_factory: object, report: Report
) -> None:
    assert callable(cluster_factory)
    cluster: Cluster = await cluster_factory()
    token = secrets.token_urlsafe(24)
    env = {**cluster.env, "BACKORDER_TOKENS": f"{token}:read,write,admin"}
    processes = [
        ServiceProcess(service, env, cluster.logs / f"{service}-tokens.log")
        for service in ("inventory", "allocation")
    ]
    cluster.processes.extend(processes)
    await asyncio.gather(*(asyncio.to_thread(p.start, 120) for p in processes))

    def sweep() -> Counter[str]:
        loop = asyncio.new_event_loop()
        codes: Counter[str] = Counter()
        try:
            for process in processes:
                db_name = (
                    cluster.inventory_db
                    if process.service == "inventory"
                    else cluster.allocation_db
                )
                conn = loop.run_until_complete(asyncpg.connect(database_url(db_name)))
                try:
                    codes += _send_malformed(process, Fingerprint(loop, conn), token)
                finally:
                    loop.run_until_complete(conn.close())
        finally:
            loop.close()
        return codes

    codes = await asyncio.to_thread(sweep)
    for process in processes:
        assert process.process is not None and process.process.poll() is None
        async with grpc.aio.insecure_channel(process.grpc_addr) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest()
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
        log = process.log_text()
        assert "Traceback" not in log and "unexpected error" not in log, process.log_tail()
    stopped = await cluster.stop()
    assert set(stopped.values()) == {0}, stopped
    report(malformed_calls=sum(codes.values()), codes=dict(codes), servers_up=2)

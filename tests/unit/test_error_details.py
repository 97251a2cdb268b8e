"""The one mapping from errors to statuses (services/common/grpc_errors.py), AIP-193 details
included, for the errors a test cannot provoke on demand against a real server (a
serialization conflict, a database outage); tests/e2e/test_error_details.py checks the rest
on the wire."""

from __future__ import annotations

import asyncpg
import grpc
from google.rpc import error_details_pb2, status_pb2

from backorder.allocation.v1 import allocation_pb2 as alloc
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.common.grpc_errors import ERROR_DOMAIN, internal_status, status_for


def details(status: grpc.Status) -> dict[str, object]:
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    found: dict[str, object] = {}
    for packed in status_pb2.Status.FromString(value).details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.ResourceInfo,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.RetryInfo,
        ):
            if packed.Is(kind.DESCRIPTOR):
                message = kind()
                packed.Unpack(message)
                found[kind.DESCRIPTOR.name] = message
    return found


def test_a_serialization_conflict_is_aborted_with_a_retry_delay() -> None:
    status = status_for(asyncpg.exceptions.SerializationError("could not serialize"))
    assert status is not None and status.code == grpc.StatusCode.ABORTED
    found = details(status)
    info = found["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain) == ("CONCURRENT_CHANGE", ERROR_DOMAIN)
    retry = found["RetryInfo"]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToTimedelta().total_seconds() > 0


def test_a_database_outage_is_unavailable_with_a_retry_delay() -> None:
    status = status_for(ConnectionRefusedError())
    assert status is not None and status.code == grpc.StatusCode.UNAVAILABLE
    found = details(status)
    assert found["ErrorInfo"].reason == "DATABASE_UNAVAILABLE"  # type: ignore[attr-defined]
    assert "RetryInfo" in found


def test_a_failover_in_progress_is_unavailable_not_internal() -> None:
    # No host of a multi-host URL is primary yet, or a demoted primary refused a write: the
    # client retries and reaches the new primary.
    for error in (
        asyncpg.exceptions.TargetServerAttributeNotMatched("no host is read-write"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("read-only transaction"),
        asyncpg.exceptions.CrashShutdownError("terminating connection"),
    ):
        status = status_for(error)
        assert status is not None and status.code == grpc.StatusCode.UNAVAILABLE, error
        assert details(status)["ErrorInfo"].reason == "DATABASE_UNAVAILABLE"  # type: ignore[attr-defined]


def test_an_unavailable_dependency_has_a_retry_delay() -> None:
    status = status_for(Unavailable("RabbitMQ is not reachable; retry shortly"))
    assert status is not None and status.code == grpc.StatusCode.UNAVAILABLE
    assert set(details(status)) == {"ErrorInfo", "RetryInfo"}


def test_every_status_has_error_info_and_the_detail_of_its_code() -> None:
    request = alloc.GetLineRequest(order_id="o-1", line_id="2")
    cases: list[tuple[Exception, set[str]]] = [
        (InvalidArgument("skus[1]", "is not a SKU"), {"ErrorInfo", "BadRequest"}),
        (NotFound("line ('o-1', '2') is unknown"), {"ErrorInfo", "ResourceInfo"}),
        (FailedPrecondition("line is cancelled"), {"ErrorInfo", "PreconditionFailure"}),
    ]
    found = []
    for error, kinds in cases:
        status = status_for(error, request)
        assert status is not None
        found.append(details(status))
        assert set(found[-1]) == kinds, error
    bad = found[0]["BadRequest"]
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert bad.field_violations[0].field == "skus[1]"
    resource = found[1]["ResourceInfo"]
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert (resource.resource_type, resource.resource_name) == ("line", "o-1/2")
    failure = found[2]["PreconditionFailure"]
    assert isinstance(failure, error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == "line/o-1/2"
    assert set(details(internal_status())) == {"ErrorInfo"}

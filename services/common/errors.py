"""Errors the handlers raise, each meaning one gRPC status; mapped in one place (grpc_errors).

Each carries what AIP-193 error details need: a `reason` for `google.rpc.ErrorInfo` (an
UPPER_SNAKE_CASE constant, unique within the domain, that clients may switch on) and, where
the raiser knows it, the resource it is about (`ResourceInfo` on NOT_FOUND, the subject of
`PreconditionFailure` on FAILED_PRECONDITION). When a raiser names no resource, grpc_errors
takes it from the request's keys.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a client can act on."""

    code_name = "INTERNAL"
    reason = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        resource_type: str = "",
        resource_name: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.resource_type = resource_type
        self.resource_name = resource_name


class InvalidArgument(ServiceError):
    """A request field is malformed; `field` names it (`skus[1]` for an element)."""

    code_name = "INVALID_ARGUMENT"
    reason = "INVALID_FIELD"

    def __init__(self, field: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"{field}: {message}", reason=reason)
        self.field = field
        self.description = message


class MalformedRequest(ServiceError):
    """The request body is not the protobuf message the method takes (it never parsed)."""

    code_name = "INVALID_ARGUMENT"
    reason = "MALFORMED_REQUEST"

    def __init__(self, message_name: str) -> None:
        super().__init__(f"request is not a valid {message_name}")
        self.message_name = message_name


class NotFound(ServiceError):
    code_name = "NOT_FOUND"
    reason = "RESOURCE_NOT_FOUND"


class AlreadyExists(ServiceError):
    code_name = "ALREADY_EXISTS"
    reason = "KEY_REUSED"


class FailedPrecondition(ServiceError):
    code_name = "FAILED_PRECONDITION"
    reason = "STATE_FORBIDS"


class Unavailable(ServiceError):
    code_name = "UNAVAILABLE"
    reason = "DEPENDENCY_UNAVAILABLE"


class ResourceExhausted(ServiceError):
    """A client used up a bounded resource (e.g. a stream it reads too slowly)."""

    code_name = "RESOURCE_EXHAUSTED"
    reason = "RESOURCE_EXHAUSTED"

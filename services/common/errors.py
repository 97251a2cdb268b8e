"""Errors the handlers raise, each meaning one gRPC status; mapped in one place (grpc_server)."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a client can act on."""

    code_name = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    """A request field is malformed; `field` names it."""

    code_name = "INVALID_ARGUMENT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.description = message


class NotFound(ServiceError):
    code_name = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code_name = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    code_name = "FAILED_PRECONDITION"


class Unavailable(ServiceError):
    code_name = "UNAVAILABLE"


class ResourceExhausted(ServiceError):
    """A client used up a bounded resource (e.g. a stream it reads too slowly)."""

    code_name = "RESOURCE_EXHAUSTED"

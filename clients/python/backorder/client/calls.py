"""Deadlines, retries and the token for every call of a channel, as gRPC client interceptors
(blocking and asyncio).

- Deadline: a unary call without a `timeout` gets `timeout` seconds (default 10). The deadline
  covers the whole call, retries included.
- Retries: a unary call that ends `UNAVAILABLE` (server down, restarting, unreachable) is sent
  again, the same request bytes, so the same idempotency key (`order_id`/`line_id`,
  `receipt_id`, `adjustment_id`, …): the services apply a key once, however many times it
  arrives. At most `RetryPolicy.attempts` tries, waiting an exponential backoff with jitter in
  between — or longer when the server says how long in a `RetryInfo` (AIP-193: the services
  answer a database outage with 1 s) — and never past the deadline. No other status is
  retried.
- Token: `authorization: Bearer …` is added to every call (streams included) that does not
  carry one.

Streams (`WatchStock`) get the token only: no default deadline (a watch runs until cancelled)
and no retry (the caller resumes a stream where it wants).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
from google.rpc import error_details_pb2, status_pb2

from backorder.client.security import ClientSecurity

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how far apart, an `UNAVAILABLE` unary call is sent again.

    The wait before retry n (1, 2, …) is drawn uniformly from [cap/2, cap] where
    cap = min(max_backoff, initial_backoff * multiplier ** (n - 1)): exponential, with jitter
    so that many clients do not come back at the same instant. With the defaults (5 tries,
    0.5 s doubling up to 4 s) a call rides out an outage of about 4 to 7.5 seconds.
    """

    attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 4.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1 (1 means no retry)")
        if not 0 <= self.initial_backoff <= self.max_backoff or self.multiplier < 1:
            raise ValueError(
                "RetryPolicy needs 0 <= initial_backoff <= max_backoff, multiplier >= 1"
            )

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        cap = min(self.max_backoff, self.initial_backoff * self.multiplier ** (retry - 1))
        return random.uniform(cap / 2, cap)

    def channel_options(self) -> list[tuple[str, Any]]:
        """gRPC's own reconnect backoff kept within ours: a server that is back is dialled
        again before the next retry rather than minutes later."""
        most = max(1, int(self.max_backoff * 1000))
        return [
            (
                "grpc.initial_reconnect_backoff_ms",
                min(most, max(1, int(self.initial_backoff * 1000))),
            ),
            ("grpc.max_reconnect_backoff_ms", most),
        ]


NO_RETRY = RetryPolicy(attempts=1)


class _Details(NamedTuple):
    method: Any
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: Any
    compression: Any


class _SyncDetails(_Details, grpc.ClientCallDetails):
    """grpc.ClientCallDetails with our deadline and token (the blocking API needs a class)."""


def _with_token(metadata: Any, token: Sequence[tuple[str, str]]) -> Any:
    items = list(metadata or ())
    if token and not any(key == "authorization" for key, _ in items):
        items.extend(token)
    return items or metadata


_STATUS_DETAILS = "grpc-status-details-bin"


def server_retry_delay(trailing_metadata: Any) -> float | None:
    """Seconds the server asked the client to wait before trying again: the `RetryInfo` of
    the status details in a call's trailing metadata (AIP-193); None when it gave none."""
    for key, value in trailing_metadata or ():
        if key != _STATUS_DETAILS:
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except Exception:  # a detail we cannot read is no instruction
            return None
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return max(info.retry_delay.ToTimedelta().total_seconds(), 0.0)
    return None


class _Policy:
    def __init__(self, security: ClientSecurity, timeout: float, retry: RetryPolicy) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive (seconds)")
        self.token = security.metadata()
        self.timeout = timeout
        self.retry = retry

    def deadline(self, timeout: float | None) -> float:
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def pause(self, retry: int, deadline: float, trailing_metadata: Any) -> float | None:
        """The wait before retry number `retry` — the backoff, or the server's RetryInfo
        delay when that is longer — or None when no retry is left in time."""
        if retry >= self.retry.attempts:
            return None
        pause = max(self.retry.backoff(retry), server_retry_delay(trailing_metadata) or 0.0)
        return pause if time.monotonic() + pause < deadline else None


class SyncInterceptor(_Policy, grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Deadline, retries and token for a blocking `grpc.Channel` (see the module doc)."""

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        deadline = self.deadline(details.timeout)
        retry = 0
        while True:
            outcome = continuation(self._details(details, deadline - time.monotonic()), request)
            if outcome.code() != grpc.StatusCode.UNAVAILABLE:
                return outcome
            retry += 1
            pause = self.pause(retry, deadline, outcome.trailing_metadata())
            if pause is None:
                return outcome
            time.sleep(pause)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(details, details.timeout), request)

    def _details(self, details: grpc.ClientCallDetails, timeout: float | None) -> _SyncDetails:
        return _SyncDetails(
            details.method,
            timeout,
            _with_token(details.metadata, self.token),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )


class AsyncUnaryInterceptor(_Policy, grpc.aio.UnaryUnaryClientInterceptor):
    """Deadline, retries and token for unary calls of a `grpc.aio.Channel`."""

    async def intercept_unary_unary(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        details = client_call_details
        deadline = self.deadline(details.timeout)
        retry = 0
        while True:
            call = await continuation(
                grpc.aio.ClientCallDetails(
                    details.method,
                    deadline - time.monotonic(),
                    _with_token(details.metadata, self.token),
                    details.credentials,
                    details.wait_for_ready,
                ),
                request,
            )
            if await call.code() != grpc.StatusCode.UNAVAILABLE:
                return call
            retry += 1
            pause = self.pause(retry, deadline, await call.trailing_metadata())
            if pause is None:
                return call
            await asyncio.sleep(pause)


class AsyncStreamInterceptor(_Policy, grpc.aio.UnaryStreamClientInterceptor):
    """The token for server-streaming calls of a `grpc.aio.Channel` (no deadline, no retry)."""

    async def intercept_unary_stream(
        self,
        continuation: Callable[..., Any],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        details = client_call_details
        return await continuation(
            grpc.aio.ClientCallDetails(
                details.method,
                details.timeout,
                _with_token(details.metadata, self.token),
                details.credentials,
                details.wait_for_ready,
            ),
            request,
        )


def blocking_channel(
    target: str,
    security: ClientSecurity | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
) -> grpc.Channel:
    """A blocking channel to `target` whose calls get the deadline, retries and token."""
    security = security or ClientSecurity()
    retry = RetryPolicy() if retry is None else retry
    options = security.channel_options() + retry.channel_options()
    credentials = security.channel_credentials()
    base = (
        grpc.insecure_channel(target, options=options)
        if credentials is None
        else grpc.secure_channel(target, credentials, options=options)
    )
    return grpc.intercept_channel(base, SyncInterceptor(security, timeout, retry))


def aio_channel(
    target: str,
    security: ClientSecurity | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
) -> grpc.aio.Channel:
    """An asyncio channel to `target` whose calls get the deadline, retries and token. Make it
    inside the event loop that uses it."""
    security = security or ClientSecurity()
    retry = RetryPolicy() if retry is None else retry
    options = security.channel_options() + retry.channel_options()
    interceptors: list[grpc.aio.ClientInterceptor] = [
        AsyncUnaryInterceptor(security, timeout, retry),
        AsyncStreamInterceptor(security, timeout, retry),
    ]
    credentials = security.channel_credentials()
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)

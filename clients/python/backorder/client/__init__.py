"""The Python client of the Backorder services.

- `BackorderClient` (asyncio): both services' stubs with a deadline on every unary call,
  retries of `UNAVAILABLE` that resend the same request (so the same idempotency key), the
  bearer token and TLS; `BackorderClient.from_env()` reads the variables `backorderctl` reads.
- `blocking_channel` / `aio_channel`: one channel with the same defaults, for any stub.
- `ClientSecurity`: TLS, mTLS and the token, from the environment or from options.
- `backorder.client.events.EventSubscriber` (extra `events`, needs aio-pika): a durable queue
  bound to the services' exchanges, each message decoded into its protobuf event, deduplicated
  on `event_id`, acknowledged after the handler returns.

The generated messages and stubs are in `backorder.inventory.v1`, `backorder.allocation.v1`
and `backorder.operations.v1`.
"""

from backorder.client.calls import (
    DEFAULT_TIMEOUT,
    NO_RETRY,
    RetryPolicy,
    aio_channel,
    blocking_channel,
)
from backorder.client.client import ALLOCATION_ADDR, INVENTORY_ADDR, BackorderClient
from backorder.client.security import ClientSecurity, SecurityConfigError, read_pem

__all__ = [
    "ALLOCATION_ADDR",
    "DEFAULT_TIMEOUT",
    "INVENTORY_ADDR",
    "NO_RETRY",
    "BackorderClient",
    "ClientSecurity",
    "RetryPolicy",
    "SecurityConfigError",
    "aio_channel",
    "blocking_channel",
    "read_pem",
]

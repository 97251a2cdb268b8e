"""`BackorderClient`: both services' stubs on asyncio channels with deadlines, retries,
token and TLS."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType

from backorder.allocation.v1.allocation_pb2_grpc import AllocationServiceStub
from backorder.client.calls import DEFAULT_TIMEOUT, RetryPolicy, aio_channel
from backorder.client.security import ClientSecurity, SecurityConfigError
from backorder.inventory.v1.inventory_pb2_grpc import InventoryServiceStub
from backorder.operations.v1.dead_letters_pb2_grpc import DeadLetterServiceStub

INVENTORY_ADDR = "127.0.0.1:50051"
ALLOCATION_ADDR = "127.0.0.1:50052"


class BackorderClient:
    """The inventory and allocation services, for asyncio code.

    `inventory` and `allocation` are the generated stubs: every RPC, called as
    `await client.allocation.Allocate(request)`. Each unary call gets a deadline (`timeout`
    seconds unless the call passes its own `timeout=`) and is retried on `UNAVAILABLE` with the
    same request — the same idempotency key — under `retry` (see `backorder.client.calls`);
    every call carries the token, over TLS when `security` says so. Streams get the token only.

    Make it inside the event loop that uses it; close it (`await client.close()`, or
    `async with`) when done.
    """

    def __init__(
        self,
        *,
        inventory_addr: str = INVENTORY_ADDR,
        allocation_addr: str = ALLOCATION_ADDR,
        security: ClientSecurity | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._channels = [
            aio_channel(addr, security, timeout=timeout, retry=retry)
            for addr in (inventory_addr, allocation_addr)
        ]
        inventory, allocation = self._channels
        self.inventory = InventoryServiceStub(inventory)
        self.allocation = AllocationServiceStub(allocation)
        # Each service's own dead-letter inbox (operators; the admin scope).
        self.inventory_dead_letters = DeadLetterServiceStub(inventory)
        self.allocation_dead_letters = DeadLetterServiceStub(allocation)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> BackorderClient:
        """Addresses, token and TLS from the variables `backorderctl` reads:
        INVENTORY_GRPC_ADDR, ALLOCATION_GRPC_ADDR and the BACKORDER_* client variables
        (`ClientSecurity.from_env`). Raises SecurityConfigError on a bad TLS or token file."""
        env = os.environ if env is None else env
        return cls(
            inventory_addr=env.get("INVENTORY_GRPC_ADDR") or INVENTORY_ADDR,
            allocation_addr=env.get("ALLOCATION_GRPC_ADDR") or ALLOCATION_ADDR,
            security=ClientSecurity.from_env(env),
            timeout=timeout,
            retry=retry,
        )

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()

    async def __aenter__(self) -> BackorderClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


__all__ = ["BackorderClient", "SecurityConfigError"]

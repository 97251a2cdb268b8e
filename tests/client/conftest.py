"""Both services as real processes, with TLS (mTLS for allocation) and bearer tokens, for the
client package's tests: what a customer's program meets in production."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from backorder.client import ClientSecurity
from tests.support.certs import Authority
from tests.support.processes import ServiceProcess
from tests.support.servers import Vhost, database_url, drop_database, unique


@dataclass
class Secured:
    inventory: ServiceProcess
    allocation: ServiceProcess
    amqp_url: str
    token: str  # read, write and admin
    env: dict[str, str]  # what a client program gets: addresses, token file, TLS files

    def client_env(self, **overrides: str) -> dict[str, str]:
        return {**self.env, **overrides}


@pytest.fixture(scope="session")
def client_vhost() -> Iterator[Vhost]:
    """A vhost of their own: services sharing the session's vhost would consume the contract
    queues of the e2e services too (each other's events, applied to the wrong databases)."""
    v = Vhost()
    v.create()
    yield v
    v.delete()


@pytest.fixture(scope="session")
def secured(client_vhost: Vhost, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    vhost = client_vhost
    certs = tmp_path_factory.mktemp("client-certs")
    logs = tmp_path_factory.mktemp("client-logs")
    server_ca = Authority(certs, "servers")
    client_ca = Authority(certs, "clients")
    inventory_cert = server_ca.issue_server("inventory", ["localhost", "127.0.0.1"])
    allocation_cert = server_ca.issue_server("allocation", ["localhost", "127.0.0.1"])
    client_cert = client_ca.issue_client("client-package")
    token = secrets.token_urlsafe(24)
    token_file = Path(certs, "token")
    token_file.write_text(token + "\n")
    databases = [unique("bo_client_inv"), unique("bo_client_alloc")]
    env = {
        "INVENTORY_DATABASE_URL": database_url(databases[0]),
        "ALLOCATION_DATABASE_URL": database_url(databases[1]),
        "AMQP_URL": vhost.url,
        "LOG_LEVEL": "INFO",
        "BACKORDER_TOKENS": f"{token}:read,write,admin",
        "INVENTORY_TLS_CERT_FILE": str(inventory_cert.cert_file),
        "INVENTORY_TLS_KEY_FILE": str(inventory_cert.key_file),
        "ALLOCATION_TLS_CERT_FILE": str(allocation_cert.cert_file),
        "ALLOCATION_TLS_KEY_FILE": str(allocation_cert.key_file),
        "ALLOCATION_TLS_CLIENT_CA_FILE": str(client_ca.cert_file),
    }
    # How the fixture itself waits for them to serve (health checks need no token).
    probe = ClientSecurity(
        tls=True,
        ca=server_ca.cert_file.read_bytes(),
        cert_chain=client_cert.cert,
        private_key=client_cert.key,
    )
    inventory = ServiceProcess("inventory", env, logs / "inventory.log", client=probe)
    allocation = ServiceProcess("allocation", env, logs / "allocation.log", client=probe)
    codes: list[int] = []
    try:
        inventory.start()
        allocation.start()
        yield Secured(
            inventory,
            allocation,
            vhost.url,
            token,
            {
                "INVENTORY_GRPC_ADDR": inventory.grpc_addr,
                "ALLOCATION_GRPC_ADDR": allocation.grpc_addr,
                "BACKORDER_TOKEN_FILE": str(token_file),
                "BACKORDER_CA_FILE": str(server_ca.cert_file),
                "BACKORDER_CLIENT_CERT_FILE": str(client_cert.cert_file),
                "BACKORDER_CLIENT_KEY_FILE": str(client_cert.key_file),
            },
        )
    finally:
        codes = [p.stop() for p in (inventory, allocation) if p.process]
        with ThreadPoolExecutor(1) as pool:  # outside the tests' event loop
            for name in databases:
                pool.submit(asyncio.run, drop_database(name)).result()
    assert codes == [0, 0], inventory.log_tail() + allocation.log_tail()

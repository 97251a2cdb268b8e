"""The image built from deploy/Dockerfile, run for real: both services as containers of our
own engine against the local Postgres and RabbitMQ (host network, loopback addresses, fresh
databases and vhost). The image migrates, serves, passes its own HEALTHCHECK, fills a
backorder when a receipt arrives (driven by `backorderctl` from the host with a token),
refuses a call without a token, and exits 0 on SIGTERM (`docker stop`).

Registry images cannot be pulled here, so the Python base is made with debootstrap
(tests/support/docker_engine.py); deploy/docker-compose.yml keeps the official images for
operators. The test skips only when no Docker engine can be started, with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest

from services.common import db
from tests.support.docker_engine import (
    Engine,
    EngineUnavailable,
    build_image,
    ensure_base_image,
    ensure_engine,
)
from tests.support.processes import BIN, free_port
from tests.support.servers import Vhost, database_url, drop_database, unique

PACKAGES = {
    "inventory": "services.inventory.migrations",
    "allocation": "services.allocation.migrations",
}


@dataclass
class Container:
    service: str
    name: str
    grpc_addr: str


@dataclass
class Deployment:
    engine: Engine
    image: str
    tokens: dict[str, str]  # scope set -> token
    databases: dict[str, str]  # service -> database name
    migrate_output: dict[str, str]
    containers: dict[str, Container] = field(default_factory=dict)

    def state(self, service: str) -> dict[str, Any]:
        name = self.containers[service].name
        state = json.loads(self.engine.check("inspect", "--format", "{{json .State}}", name))
        assert isinstance(state, dict)
        return state

    def logs(self, service: str) -> str:
        return self.engine.docker("logs", "--tail=40", self.containers[service].name).stderr

    def health(self, service: str) -> str:
        """The image HEALTHCHECK's verdict; fails at once, with the logs, if the container
        is no longer running."""
        state = self.state(service)
        assert state["Running"], f"{service} exited {state['ExitCode']}:\n{self.logs(service)}"
        return str(state["Health"]["Status"])


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def ctl(deployment: Deployment, *args: str, token: str | None = None) -> Outcome:
    """backorderctl from the host's venv, at the containers' loopback addresses."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("BACKORDER_TOKEN", "BACKORDER_TOKEN_FILE")
    }
    env |= {
        "INVENTORY_GRPC_ADDR": deployment.containers["inventory"].grpc_addr,
        "ALLOCATION_GRPC_ADDR": deployment.containers["allocation"].grpc_addr,
    }
    if token is not None:
        env["BACKORDER_TOKEN"] = token
    done = subprocess.run(
        [str(BIN / "backorderctl"), "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def service_env(service: str, database: str, vhost: Vhost) -> dict[str, str]:
    prefix = service.upper()
    return {f"{prefix}_DATABASE_URL": database_url(database), "AMQP_URL": vhost.url}


def env_flags(env: dict[str, str]) -> list[str]:
    return [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]


@pytest.fixture(scope="module")
def image() -> tuple[Engine, str]:
    """Our engine and the image built from deploy/Dockerfile (base and layers cached)."""
    try:
        engine = ensure_engine()
        base = ensure_base_image(engine)
    except EngineUnavailable as exc:
        pytest.fail(f"no Docker engine can be started here: {exc}")
    return engine, build_image(engine, base)


@pytest.fixture(scope="module")
def deployment(image: tuple[Engine, str], own_vhost: Vhost) -> Iterator[Deployment]:
    engine, tag = image
    run_id = unique("bo-image")
    tokens = {
        "read,write": secrets.token_urlsafe(24),
        "admin": secrets.token_urlsafe(24),
    }
    databases = {service: unique(f"bo_image_{service[:5]}") for service in PACKAGES}
    result = Deployment(engine, tag, tokens, databases, migrate_output={})
    try:
        for service in PACKAGES:
            migrated = engine.docker(
                "run",
                "--rm",
                "--network=host",
                *env_flags(service_env(service, databases[service], own_vhost)),
                tag,
                f"backorder-{service}",
                "migrate",
                timeout=120,
            )
            assert migrated.returncode == 0, migrated.stderr
            result.migrate_output[service] = migrated.stdout
        for service in PACKAGES:
            prefix = service.upper()
            grpc_addr = f"127.0.0.1:{free_port()}"
            container = Container(service, f"{run_id}-{service}", grpc_addr)
            env = {
                **service_env(service, databases[service], own_vhost),
                f"{prefix}_GRPC_ADDR": grpc_addr,
                f"{prefix}_METRICS_ADDR": f"127.0.0.1:{free_port()}",
                # The image's own HEALTHCHECK probes this address.
                "HEALTHCHECK_ADDR": grpc_addr,
                "BACKORDER_TOKENS": " ".join(f"{t}:{scopes}" for scopes, t in tokens.items()),
            }
            engine.check(
                "run",
                "--detach",
                f"--name={container.name}",
                "--network=host",
                *env_flags(env),
                tag,
                f"backorder-{service}",
                "serve",
            )
            result.containers[service] = container
        yield result
    finally:
        codes: dict[str, tuple[object, ...]] = {}
        for service, container in result.containers.items():
            running = result.state(service)["Running"]
            # SIGTERM (the image's STOPSIGNAL), then the grace the compose file gives before
            # SIGKILL (which would show as 137).
            engine.docker("stop", "--time=30", container.name, timeout=60)
            state = result.state(service)
            codes[service] = (running, state["ExitCode"])
            if state["ExitCode"] != 0:
                codes[service] += (result.logs(service),)
            engine.docker("rm", "--force", container.name)
        with ThreadPoolExecutor(1) as pool:  # outside any test event loop
            for name in databases.values():
                pool.submit(asyncio.run, drop_database(name)).result()
    # SIGTERM drains and exits 0 (docs/spec.md §5): the graceful stop of both containers.
    assert codes == {"inventory": (True, 0), "allocation": (True, 0)}, codes


def wait_healthy(deployment: Deployment, timeout: float = 90) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        status = {service: deployment.health(service) for service in deployment.containers}
        if set(status.values()) == {"healthy"} or time.monotonic() > deadline:
            return status
        assert "unhealthy" not in status.values(), status
        time.sleep(1)


def test_the_services_run_as_the_images_unprivileged_user(deployment: Deployment) -> None:
    for service, container in deployment.containers.items():
        # PID 1 of the container is the service itself (no shell in between).
        status = deployment.engine.check("exec", container.name, "cat", "/proc/1/status")
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uids) == {"10001"}, (service, uids)
        cmdline = deployment.engine.check("exec", container.name, "cat", "/proc/1/cmdline")
        assert f"/opt/venv/bin/backorder-{service}\0serve\0" in cmdline, cmdline


async def test_the_image_migrates_both_databases(deployment: Deployment) -> None:
    for service, package in PACKAGES.items():
        expected = [m.name for m in db.migration_files(package)]
        output = deployment.migrate_output[service]
        assert all(name in output for name in expected), output
        conn = await asyncpg.connect(database_url(deployment.databases[service]))
        try:
            applied = [
                r["name"] for r in await conn.fetch("select name from schema_migrations order by 1")
            ]
        finally:
            await conn.close()
        assert applied == expected


def test_both_containers_pass_the_image_healthcheck(deployment: Deployment) -> None:
    assert wait_healthy(deployment) == {"inventory": "healthy", "allocation": "healthy"}


def test_a_receipt_fills_a_backorder_through_backorderctl(deployment: Deployment) -> None:
    assert set(wait_healthy(deployment).values()) == {"healthy"}
    token = deployment.tokens["read,write"]
    sku, order = unique("IMG"), unique("order")

    placed = ctl(deployment, "lines", "allocate", order, "1", sku, "3", token=token)
    assert placed.code == 0, placed.stderr
    assert placed.json()["outcome"] == "ALLOCATION_OUTCOME_BACKORDERED"

    received = ctl(deployment, "stock", "receive", sku, "3", "--receipt-id", order, token=token)
    assert received.code == 0, received.stderr
    deadline = time.monotonic() + 30
    while (line := ctl(deployment, "lines", "get", order, "1", token=token)).code == 0:
        if line.json()["status"] == "LINE_STATUS_RESERVED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert line.code == 0, line.stderr
    assert line.json()["status"] == "LINE_STATUS_RESERVED", line.json()
    log = ctl(
        deployment, "reservations", "list", "--order-id", order, "--line-id", "1", token=token
    )
    assert log.code == 0, log.stderr
    assert [(r["quantity"], r["cause"]) for r in log.json()] == [("3", "stock.received")]


def test_calls_without_a_token_are_refused(deployment: Deployment) -> None:
    assert set(wait_healthy(deployment).values()) == {"healthy"}
    sku = unique("IMG")
    for args in (("stock", "receive", sku, "1"), ("lines", "allocate", sku, "1", sku, "1")):
        refused = ctl(deployment, *args)
        assert refused.code == 6 and "UNAUTHENTICATED" in refused.stderr, refused
    # A token without the scope is not enough either (policy needs admin).
    denied = ctl(
        deployment, "policy", sku, "--fill-policy", "skip", token=deployment.tokens["read,write"]
    )
    assert denied.code == 6 and "PERMISSION_DENIED" in denied.stderr, denied
    # Nothing was written by the refused calls.
    stock = ctl(deployment, "stock", "get", sku, token=deployment.tokens["read,write"])
    assert stock.code == 3, stock

"""scripts/up, scripts/ctl and scripts/down as a new user runs them: real processes, on ports,
databases and a RabbitMQ vhost of their own (the settings the services read override
every default), so they meet nothing else running on the machine."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from services.common.amqp import CONTRACT_QUEUES
from tests.support.processes import BIN, free_port
from tests.support.servers import Vhost, database_url, drop_database, unique

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
READ_WRITE_TOKEN = "demo-token-" + "a" * 24
READ_TOKEN = "read-token-" + "b" * 24


@dataclass
class Up:
    """A running scripts/up; its output (stdout and stderr) arrives line by line."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 240) -> str:
        """Output up to the first line containing `text`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"scripts/up ended before {text!r}:\n" + self.output)
            self.lines.append(line)
            if text in line:
                return self.output
        raise AssertionError(f"no {text!r} within {timeout} s:\n" + self.output)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def up_vhost() -> Iterator[Vhost]:
    """A vhost for one scripts/up alone: the session's services consume in `vhost`, and two
    allocation services on one contract queue would take each other's events."""
    v = Vhost()
    v.create()
    yield v
    v.delete()


@pytest.fixture
def up_env(up_vhost: Vhost, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings for one scripts/up: free ports, new databases, a vhost of its own, the test
    run's venv (already installed) and a run directory of its own."""
    databases = [unique("bo_up_inv"), unique("bo_up_alloc")]
    env = {
        **os.environ,
        "BACKORDER_VENV": str(BIN.parent),
        "BACKORDER_RUN_DIR": str(tmp_path / "run"),
        "INVENTORY_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "ALLOCATION_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "INVENTORY_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "ALLOCATION_METRICS_ADDR": f"127.0.0.1:{free_port()}",
        "INVENTORY_DATABASE_URL": database_url(databases[0]),
        "ALLOCATION_DATABASE_URL": database_url(databases[1]),
        "AMQP_URL": up_vhost.url,
    }
    for name in ("BACKORDER_TOKEN", "BACKORDER_TOKENS", "BACKORDER_TOKEN_FILE"):
        env.pop(name, None)
    yield env
    for name in databases:
        asyncio.run(drop_database(name))


def start_up(env: dict[str, str], *args: str) -> Up:
    process = subprocess.Popen(
        [str(SCRIPTS / "up"), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a failing test can end it all
    )
    return Up(process, env)


def run_script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPTS / name), *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def started() -> Iterator[list[Up]]:
    """Every scripts/up a test starts is gone afterwards, whatever the test did."""
    ups: list[Up] = []
    yield ups
    for up in ups:
        if up.process.poll() is None:
            os.killpg(up.process.pid, 15)
            up.process.wait(timeout=60)


def service_pids(env: dict[str, str]) -> list[int]:
    return [int(p) for p in Path(env["BACKORDER_RUN_DIR"], "services.pids").read_text().split()]


def assert_all_stopped(up: Up, pids: list[int]) -> None:
    assert up.process.wait(timeout=60) == 0, up.output
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"service {pid} still runs"


def test_up_with_tokens_runs_the_demo_and_down_stops_everything(
    up_env: dict[str, str], started: list[Up]
) -> None:
    env = {**up_env, "BACKORDER_TOKENS": f"{READ_TOKEN}:read {READ_WRITE_TOKEN}:read,write"}
    up = start_up(env)
    started.append(up)
    output = up.wait_for("both services keep serving")
    assert "demo failed" not in output
    # The demo fills part of a line, then says what is left.
    assert "L4-vip       +3 (now 3/4)  partial fill" in output, output
    assert "1 free (on hand, reserved for nobody)" in output, output
    assert "reserved 4/4" in output and "BACKORDERED" in output, output

    # Both services still serve; the CLI from the venv, without anything on the PATH.
    health = run_script("ctl", env, "health")
    assert health.returncode == 0 and health.stdout.count("SERVING") == 2, health.stderr
    denied = run_script("ctl", env, "stock", "get", "ANY-SKU")
    assert denied.returncode == 6, "the services require the tokens"

    pids = service_pids(env)
    down = run_script("down", env)
    assert down.returncode == 0, down.stderr
    assert_all_stopped(up, pids)
    # Postgres and RabbitMQ were running before: scripts/down leaves them alone.
    assert "PostgreSQL" not in down.stderr and "RabbitMQ" not in down.stderr


def test_a_failing_demo_leaves_the_services_serving(
    up_env: dict[str, str], started: list[Up]
) -> None:
    env = {
        **up_env,
        "BACKORDER_TOKENS": f"{READ_WRITE_TOKEN}:read,write",
        "BACKORDER_TOKEN": "not-a-token-the-servers-know",
    }
    up = start_up(env)
    started.append(up)
    output = up.wait_for("both services keep serving")
    assert "demo failed: UNAUTHENTICATED" in output, output
    time.sleep(1)
    assert up.process.poll() is None, "scripts/up ended:\n" + up.output
    health = run_script("ctl", env, "health")
    assert health.returncode == 0, health.stdout + health.stderr
    pids = service_pids(env)
    assert run_script("down", env).returncode == 0
    assert_all_stopped(up, pids)


async def test_up_without_demo_then_down_reset_deletes_all_data(
    up_env: dict[str, str], started: list[Up]
) -> None:
    env = up_env
    up = start_up(env, "--no-demo")
    started.append(up)
    output = await asyncio.to_thread(up.wait_for, "both services keep serving")
    assert "Placing" not in output, "--no-demo runs no demo"
    placed = run_script("ctl", env, "lines", "allocate", "o-1", "1", "SKU-1", "2")
    assert placed.returncode == 0, placed.stderr

    pids = service_pids(env)
    reset = await asyncio.to_thread(run_script, "down", env, "--reset")
    assert reset.returncode == 0, reset.stderr
    assert_all_stopped(up, pids)
    for setting in ("INVENTORY_DATABASE_URL", "ALLOCATION_DATABASE_URL"):
        assert f"database {env[setting].rsplit('/', 1)[1]}: dropped" in reset.stdout
    conn = await asyncpg.connect(database_url("postgres"))
    try:
        names = [
            env[s].rsplit("/", 1)[1] for s in ("INVENTORY_DATABASE_URL", "ALLOCATION_DATABASE_URL")
        ]
        left = await conn.fetch("select datname from pg_database where datname = any($1)", names)
    finally:
        await conn.close()
    assert left == []
    connection = await aio_pika.connect(env["AMQP_URL"])
    async with connection:
        for q in CONTRACT_QUEUES:
            for name in (q.name, q.dead_letter_queue):
                channel = await connection.channel()
                with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                    await channel.declare_queue(name, passive=True)
        for exchange in ("inventory.events", "allocation.events"):
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.declare_exchange(exchange, passive=True)


def test_up_installs_only_the_locked_runtime_dependencies(
    up_env: dict[str, str], started: list[Up], tmp_path: Path
) -> None:
    """A fresh venv gets the services and what requirements/runtime.txt locks, nothing of
    the test and lint tools."""
    venv = tmp_path / "venv"
    env = {**up_env, "BACKORDER_VENV": str(venv)}
    up = start_up(env, "--no-demo")
    started.append(up)
    up.wait_for("both services keep serving", timeout=600)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    locked = [
        line
        for line in (ROOT / "requirements" / "runtime.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert sorted(installed, key=str.lower) == sorted(locked, key=str.lower)
    for tool in ("pytest", "ruff", "mypy", "backorderctl"):
        assert (venv / "bin" / tool).exists() == (tool == "backorderctl"), tool
    pids = service_pids(env)
    assert run_script("down", env).returncode == 0
    assert_all_stopped(up, pids)

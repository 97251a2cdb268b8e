"""Start-up against a broker that refuses the service, or is not up yet, with the real
`serve` process: a refusal (wrong password, missing vhost, no permissions) is a
configuration error that stops start-up at once with one line naming AMQP_URL and the
broker's reason, never the password; a broker that is not up yet is waited for (and SIGTERM
ends that wait at once)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.processes import BIN, ServiceProcess, free_port
from tests.support.proxy import TcpProxy
from tests.support.servers import AMQP_SERVER, database_url, drop_database, unique


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = unique("bo_start_inv")
    yield name
    await drop_database(name)


def run_serve(amqp_url: str, database: str, log: Path, timeout: float = 60) -> tuple[int, str]:
    """Runs `backorder-inventory serve` to its end: (exit code, everything it printed)."""
    env = {
        **os.environ,
        "INVENTORY_DATABASE_URL": database_url(database),
        "AMQP_URL": amqp_url,
        "INVENTORY_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "INVENTORY_METRICS_ADDR": f"127.0.0.1:{free_port()}",
    }
    started = time.monotonic()
    with log.open("wb") as out:
        code = subprocess.run(
            [str(BIN / "backorder-inventory"), "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        ).returncode
    assert time.monotonic() - started < timeout
    return code, log.read_text(errors="replace")


def assert_one_line_refusal(output: str, reason: str, secret: str) -> None:
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "AMQP_URL" in line]
    assert len(lines) == 1, output
    assert reason in lines[0], lines[0]
    assert secret not in output, "the password must never be printed"


def rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None
    subprocess.run([ctl, "-q", *args], check=True, timeout=60)


async def test_wrong_password_stops_start_up(database: str, tmp_path: Path) -> None:
    password = unique("not-the-password")
    url = AMQP_SERVER.replace("guest:guest@", f"guest:{password}@") + "/"
    code, output = await asyncio.to_thread(run_serve, url, database, tmp_path / "serve.log")
    assert code == 2, output
    assert_one_line_refusal(output, "ACCESS_REFUSED", password)


async def test_missing_vhost_stops_start_up(database: str, tmp_path: Path) -> None:
    missing = unique("no-such-vhost")
    url = f"{AMQP_SERVER}/{missing}"
    code, output = await asyncio.to_thread(run_serve, url, database, tmp_path / "serve.log")
    assert code == 2, output
    assert_one_line_refusal(output, f"vhost {missing!r}", ":guest@")


async def test_vhost_without_permissions_stops_start_up(database: str, tmp_path: Path) -> None:
    vhost = unique("bo-no-perms")
    await asyncio.to_thread(rabbitmqctl, "add_vhost", vhost)
    try:
        url = f"{AMQP_SERVER}/{vhost}"
        code, output = await asyncio.to_thread(run_serve, url, database, tmp_path / "serve.log")
    finally:
        await asyncio.to_thread(rabbitmqctl, "delete_vhost", vhost)
    assert code == 2, output
    assert_one_line_refusal(output, f"vhost {vhost!r}", ":guest@")


def _broker_behind(proxy: TcpProxy) -> str:
    return AMQP_SERVER.replace(AMQP_SERVER.rsplit("@", 1)[1], f"127.0.0.1:{proxy.port}") + "/"


async def test_a_broker_not_up_yet_is_waited_for(database: str, tmp_path: Path) -> None:
    host, port = AMQP_SERVER.rsplit("@", 1)[1].split(":")
    proxy = TcpProxy(host, int(port))  # not serving yet: connections are refused
    process = ServiceProcess(
        "inventory",
        {"INVENTORY_DATABASE_URL": database_url(database), "AMQP_URL": _broker_behind(proxy)},
        tmp_path / "serve.log",
    )
    starting = asyncio.create_task(asyncio.to_thread(process.start, 90))
    try:
        deadline = time.monotonic() + 60
        while "RabbitMQ not reachable yet" not in process.log_text():
            assert time.monotonic() < deadline, process.log_tail()
            assert not starting.done(), "serving without a broker"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        assert not starting.done(), "serving without a broker"
        await proxy.restore()
        await starting
        assert "Traceback" not in process.log_text()
        # One warning per attempt is ours; the AMQP library adds no error line of its own.
        errors = [line for line in process.log_text().splitlines() if '"level": "error"' in line]
        assert errors == []
    finally:
        if not starting.done():
            starting.cancel()
        code = await asyncio.to_thread(process.stop)
        if proxy.serving:
            await proxy.cut()
    assert code == 0, process.log_tail()


def test_sigterm_ends_the_wait_for_the_broker_at_once(tmp_path: Path) -> None:
    database = unique("bo_start_inv")
    log = tmp_path / "serve.log"
    nobody = free_port()  # nothing listens there: the broker "is not up yet"
    env = {
        **os.environ,
        "INVENTORY_DATABASE_URL": database_url(database),
        "AMQP_URL": AMQP_SERVER.replace(AMQP_SERVER.rsplit("@", 1)[1], f"127.0.0.1:{nobody}"),
        "INVENTORY_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        "INVENTORY_METRICS_ADDR": f"127.0.0.1:{free_port()}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "backorder-inventory"), "serve"], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while "RabbitMQ not reachable yet" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline and process.poll() is None, log.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = process.wait(30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        asyncio.run(drop_database(database))
    assert code == 0, log.read_text()
    assert took < 3, f"SIGTERM took {took:.1f} s while waiting for the broker"

"""The bind rule (docs/spec.md §6), with the real `serve` process on a non-loopback address:
callers must authenticate (bearer tokens or mTLS); server TLS alone only encrypts, so it
does not satisfy the rule, and start-up is refused unless `--insecure`."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.certs import Authority
from tests.support.processes import BIN, free_port
from tests.support.servers import Vhost, database_url, drop_database, unique


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority(tmp_path_factory.mktemp("bind-ca"), "bind")


@pytest.fixture
def base_env(vhost: Vhost) -> Iterator[dict[str, str]]:
    name = unique("bo_bind_inv")
    yield {
        **os.environ,
        "INVENTORY_DATABASE_URL": database_url(name),
        "AMQP_URL": vhost.url,
        # Every interface: not loopback.
        "INVENTORY_GRPC_ADDR": f"0.0.0.0:{free_port()}",
        "INVENTORY_METRICS_ADDR": f"127.0.0.1:{free_port()}",
    }
    asyncio.run(drop_database(name))


def serve(env: dict[str, str], log: Path, *args: str) -> tuple[int, str]:
    """Starts `serve`; once it serves, stops it. (exit code, its output)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "backorder-inventory"), "serve", *args], env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 90
        while process.poll() is None and '"msg": "serving"' not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, log.read_text()


def tls_env(authority: Authority, *, mtls: bool) -> dict[str, str]:
    server = authority.issue_server(unique("inv"), ["localhost"])
    env = {
        "INVENTORY_TLS_CERT_FILE": str(server.cert_file),
        "INVENTORY_TLS_KEY_FILE": str(server.key_file),
    }
    if mtls:
        env["INVENTORY_TLS_CLIENT_CA_FILE"] = str(authority.cert_file)
    return env


def test_server_tls_alone_is_refused_off_loopback(
    base_env: dict[str, str], authority: Authority, tmp_path: Path
) -> None:
    env = {**base_env, **tls_env(authority, mtls=False)}
    code, output = serve(env, tmp_path / "serve.log")
    assert code == 2, output
    assert '"msg": "serving"' not in output
    refusal = [line for line in output.splitlines() if "refusing" in line]
    assert len(refusal) == 1 and "TLS without client certificates" in refusal[0], output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("case", "args"),
    [("tls-with-insecure", ("--insecure",)), ("mtls", ()), ("tokens", ()), ("tls-and-tokens", ())],
)
def test_authenticated_or_insecure_serves_off_loopback(
    base_env: dict[str, str], authority: Authority, tmp_path: Path, case: str, args: tuple[str]
) -> None:
    env = dict(base_env)
    if case in ("tls-with-insecure", "tls-and-tokens"):
        env |= tls_env(authority, mtls=False)
    if case == "mtls":
        env |= tls_env(authority, mtls=True)
    if "tokens" in case:
        env["BACKORDER_TOKENS"] = f"{secrets.token_hex(16)}:read"
    code, output = serve(env, tmp_path / "serve.log", *args)
    assert '"msg": "serving"' in output, output
    assert code == 0, output

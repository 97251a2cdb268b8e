"""Running the services as real processes through their console scripts."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.security import ClientSecurity

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free port for a server of the tests to bind, below the kernel's ephemeral range. A
    port that bind(0) hands out comes from that range and is free again at once: the next
    outbound connection (to Postgres, to RabbitMQ) may take it as its source port before the
    server binds it ("Address already in use")."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(100):
        port = rng.randrange(10_000, low) if low > 11_000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


@dataclass
class ServiceProcess:
    """One `backorder-<service> serve` process with its own ports and log file.

    `client` is how the test reaches it (TLS roots, client certificate) while waiting for it.
    """

    service: str
    env: dict[str, str]
    log_path: Path
    grpc_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    metrics_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    process: subprocess.Popen[bytes] | None = None
    client: ClientSecurity = field(default_factory=ClientSecurity)

    def start(self, timeout: float = 60) -> None:
        """Starts the process and waits until it serves. At its first start only, a port
        taken between free_port() and the process's bind (the pick cannot hold it) means new
        ports and another try; a restart keeps its ports, which its clients dial."""
        first = self.process is None
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_serving(timeout)
                return
            except RuntimeError:
                taken = "Address already in use" in self.log_tail()
                if not (first and taken) or attempt == 2:
                    raise
            self.grpc_addr = f"127.0.0.1:{free_port()}"
            self.metrics_addr = f"127.0.0.1:{free_port()}"

    def spawn(self) -> None:
        """Starts the process without waiting for it to serve: it consumes events from its
        first moments, before a health check can tell it serves."""
        prefix = self.service.upper()
        env = {
            **os.environ,
            # The planning worker (a child of allocation's serve, hundreds of MB) only where
            # a test asks for it.
            "PLANNING_WORKER": "off",
            **self.env,
            f"{prefix}_GRPC_ADDR": self.grpc_addr,
            f"{prefix}_METRICS_ADDR": self.metrics_addr,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / f"backorder-{self.service}"), "serve"], env=env, stdout=log, stderr=log
        )

    def wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.client.channel(self.grpc_addr) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.service} exited early:\n{self.log_tail()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"{self.service} not serving after {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit code (a graceful stop is 0)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

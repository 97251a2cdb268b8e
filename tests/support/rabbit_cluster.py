"""A 3-node RabbitMQ cluster on this machine, from the OS's `rabbitmq-server`, for the tests
that kill brokers (tests/cluster/).

Each node has its own name (rabbit-a@localhost, …), AMQP and distribution ports, data and log
directories under one temporary directory, and its own config and plugins files, so nothing
of the machine's broker (5672, /etc/rabbitmq, /var/lib/rabbitmq) is read or touched. The
nodes share an Erlang cookie of their own (in a HOME of their own: the machine's broker keeps
its cookie) and an epmd of their own on its own port, which is stopped with them. The nodes
form a cluster with `rabbitmqctl join_cluster`, before anything is declared: a quorum queue
is replicated on the nodes that are members when it is declared.

The scripts run as the current user (root in CI): the nodes are processes of the test run,
SIGKILLed by their OS pid (the pid file) and restarted with the same data, which they rejoin
the cluster with.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from tests.support.processes import free_port
from tests.support.servers import Vhost, unique

SBIN = Path(os.environ.get("RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))
USER = "guest"
PASSWORD = "guest"


class RabbitClusterError(RuntimeError):
    """The cluster could not be started or a command on it failed."""


def _executable(name: str) -> str:
    path = SBIN / name
    if not path.exists():
        raise RabbitClusterError(
            f"{path} not found: the cluster tests run the OS's rabbitmq-server "
            "(scripts/test installs it: apt-get install rabbitmq-server)"
        )
    return str(path)


@dataclass
class RabbitNode:
    """One node: its name, ports and directories, and the running beam process."""

    letter: str
    base: Path
    common_env: dict[str, str]
    amqp_port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"rabbit-{self.letter}@localhost"

    @property
    def address(self) -> str:
        """HOST:PORT, as the services log the node they use (amqp.node_address)."""
        return f"127.0.0.1:{self.amqp_port}"

    @property
    def dir(self) -> Path:
        return self.base / f"rabbit-{self.letter}"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.out"

    def env(self) -> dict[str, str]:
        return {
            **self.common_env,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "pid"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.dir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
        }

    def url(self, vhost: str) -> str:
        return f"amqp://{USER}:{PASSWORD}@127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Empty: none of /etc/rabbitmq's settings (its node name, its listener on 5672).
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "rabbitmq.conf").write_text(
            # Loopback only; the cluster's own tests decide failure, not disk alarms.
            "loopback_users.guest = true\ndisk_free_limit.absolute = 10MB\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")

    def spawn(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [_executable("rabbitmq-server")],
            env=self.env(),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def beam_pid(self) -> int | None:
        try:
            return int((self.dir / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the Erlang VM: the node dies at once, as on a power cut."""
        pid = self.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        (self.dir / "pid").unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class RabbitCluster:
    """Three (or `size`) nodes in one cluster; `start()` once, `stop()` at the end."""

    def __init__(self, base: Path, size: int = 3) -> None:
        self.base = base
        self.home = base / "home"
        self.epmd_port = free_port()
        common = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # The Erlang cookie is read from $HOME: ours, not the machine broker's.
            "HOME": str(self.home),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            # Loopback distribution, and no busy-waiting schedulers on a shared 2-core box.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1} "
                "+sbwt none +sbwtdcpu none +sbwtdio none"
            ),
        }
        self.nodes = [RabbitNode(chr(ord("a") + n), base, common) for n in range(size)]

    # lifecycle

    def start(self, timeout: float = 180) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        for node in self.nodes:
            node.prepare()
            node.spawn()
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda n: self.await_node(n, timeout), self.nodes))
        first, *others = self.nodes
        for node in others:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        self.await_members(timeout)

    def stop(self) -> None:
        """Stops every node (gracefully, else SIGKILL) and the cluster's epmd."""
        for node in self.nodes:
            if node.running:
                try:
                    self.ctl(node, "stop", timeout=60)
                    assert node.process is not None
                    node.process.wait(60)
                except (RabbitClusterError, subprocess.TimeoutExpired):
                    node.kill()
        epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
        subprocess.run(
            [epmd, "-port", str(self.epmd_port), "-kill"],
            env=self.nodes[0].env(),
            capture_output=True,
            timeout=30,
            check=False,
        )

    def kill(self, node: RabbitNode) -> None:
        node.kill()

    def restart(self, node: RabbitNode, timeout: float = 180) -> None:
        """Starts a killed node again on its data: it rejoins the cluster by itself."""
        assert not node.running, f"{node.name} is running"
        node.spawn()
        self.await_node(node, timeout)
        self.await_members(timeout)

    def await_node(self, node: RabbitNode, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not node.running:
                raise RabbitClusterError(f"{node.name} exited at start:\n{node.log_tail()}")
            done = self._run(node, ["await_startup", "--timeout", "10"], timeout=30)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RabbitClusterError(
                    f"{node.name} not started after {timeout} s:\n{done.stderr}\n{node.log_tail()}"
                )
            time.sleep(0.5)

    def await_members(self, timeout: float) -> None:
        """Until every node reports all of them running."""
        want = sorted(n.name for n in self.nodes)
        deadline = time.monotonic() + timeout
        while True:
            if all(self.running_nodes(n) == want for n in self.nodes):
                return
            if time.monotonic() > deadline:
                raise RabbitClusterError(
                    f"cluster not formed after {timeout} s: "
                    + "; ".join(f"{n.name} sees {self.running_nodes(n)}" for n in self.nodes)
                )
            time.sleep(0.5)

    def running_nodes(self, node: RabbitNode) -> list[str]:
        done = self._run(node, ["eval", "lists:sort(rabbit_nodes:all_running())."], timeout=30)
        if done.returncode != 0:
            return []
        return sorted(name.strip(" '[]\n") for name in done.stdout.split(",") if name.strip())

    # commands

    def _run(
        self, node: RabbitNode, args: Sequence[str], timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_executable("rabbitmqctl"), "-q", "-n", node.name, *args],
            env=node.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ctl(self, node: RabbitNode | None, *args: str, timeout: float = 120) -> str:
        """`rabbitmqctl ARGS` against `node` (None: any running node); its output."""
        target = node or self.any_running()
        done = self._run(target, args, timeout)
        if done.returncode != 0:
            raise RabbitClusterError(
                f"rabbitmqctl {' '.join(args)} on {target.name}: {done.stderr or done.stdout}"
            )
        return done.stdout

    def any_running(self) -> RabbitNode:
        return next(n for n in self.nodes if n.running)

    def node_named(self, name: str) -> RabbitNode:
        return next(n for n in self.nodes if n.name == name)

    def node_at(self, address: str) -> RabbitNode:
        """The node of a HOST:PORT (as the services log it)."""
        return next(n for n in self.nodes if n.address == address)

    # vhosts and queues

    def urls(self, vhost: str) -> str:
        """AMQP_URL of the whole cluster: every node, comma-separated."""
        return ",".join(node.url(vhost) for node in self.nodes)

    def quorum_queue(self, vhost: str, queue: str) -> tuple[str, list[str]]:
        """The leader of a quorum queue and its members (node names)."""
        out = self.ctl(None, "list_queues", "-p", vhost, "name", "leader", "members")
        for line in out.splitlines():
            fields = line.split("\t")
            if fields[0] == queue:
                members = [m.strip(" '[]") for m in fields[2].split(",") if m.strip(" []")]
                return fields[1], sorted(members)
        raise RabbitClusterError(f"queue {queue!r} not in vhost {vhost!r}:\n{out}")

    def queue_counts(self, vhost: str) -> dict[str, tuple[int, int]]:
        """Each queue of the vhost: (messages, consumers)."""
        out = self.ctl(None, "list_queues", "-p", vhost, "name", "messages", "consumers")
        counts = {}
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) == 3 and fields[1].isdigit():
                counts[fields[0]] = (int(fields[1]), int(fields[2]))
        return counts


class ClusterVhost(Vhost):
    """A vhost of the cluster; its `url` lists every node (the services' AMQP_URL)."""

    def __init__(self, rabbit: RabbitCluster) -> None:
        self.rabbit = rabbit
        self.name = unique("bo-cluster")
        self.url = rabbit.urls(self.name)

    def node_url(self, node: RabbitNode) -> str:
        """The vhost on one node only (a client that must not move)."""
        return node.url(self.name)

    def create(self) -> None:
        self.rabbit.ctl(None, "add_vhost", self.name)
        self.rabbit.ctl(None, "set_permissions", "-p", self.name, USER, ".*", ".*", ".*")

    def delete(self) -> None:
        self.rabbit.ctl(None, "delete_vhost", self.name)

"""A Postgres primary with a synchronous standby, managed by Patroni with etcd (both from the
OS packages), on this machine: own ports and data directories, the machine's Postgres on
5432 left alone. Started once per test session by the tests that need it.

Patroni runs in `synchronous_mode`: it sets `synchronous_standby_names` to the standby, so a
commit returns only once the standby has the WAL (`synchronous_commit = on`), and it promotes
only a synchronous standby. A node is killed as a machine dies: SIGKILL to its Patroni and to
its whole Postgres (postmaster and backends); the survivor's Patroni takes the leader key when
the dead one's expires (TTL below) and promotes its Postgres.

Postgres refuses to run as root: when the tests run as root, Patroni (and so Postgres) runs as
the `postgres` OS user, in a directory of its own under the system's temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support import leftovers
from tests.support.processes import free_port

ROOT_PREFIX = "bo-patroni-"


def _pg_bin() -> Path:
    """TEST_PG_BIN, or the newest of the OS's Postgres versions (/usr/lib/postgresql/N/bin)."""
    if os.environ.get("TEST_PG_BIN"):
        return Path(os.environ["TEST_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
# Seconds: the leader key's lifetime (how long a dead primary goes unnoticed, at most), the
# Patroni loop, and how long a DCS or Postgres call is retried before it counts as failed.
TTL, LOOP_WAIT, RETRY_TIMEOUT = 8, 1, 3


class ClusterUnavailable(RuntimeError):
    """Patroni, etcd or the Postgres binaries are missing: `scripts/test` installs them."""


def missing_tools() -> list[str]:
    """What this machine lacks to run the cluster (empty: nothing)."""
    found = [shutil.which("patroni"), shutil.which("etcd"), (PG_BIN / "postgres").exists()]
    names = ["patroni", "etcd", f"{PG_BIN}/postgres"]
    return [name for name, ok in zip(names, found, strict=True) if not ok]


@dataclass
class Node:
    """One Patroni with its Postgres."""

    name: str
    root: Path
    pg_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.pg_port}"

    def config(self, scope: str, etcd: str) -> dict[str, Any]:
        trust = ["local all all trust", "host all all 127.0.0.1/32 trust"]
        return {
            "scope": scope,
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"127.0.0.1:{self.api_port}",
                "connect_address": f"127.0.0.1:{self.api_port}",
            },
            "etcd3": {"hosts": [etcd]},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL,
                    "loop_wait": LOOP_WAIT,
                    "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 0,
                    "synchronous_mode": True,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "parameters": {
                            "synchronous_commit": "on",
                            "max_connections": 200,
                            "wal_log_hints": "on",
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}],
                "pg_hba": [*trust, "host replication replicator 127.0.0.1/32 trust"],
            },
            "postgresql": {
                "listen": self.address,
                "connect_address": self.address,
                "data_dir": str(self.data_dir),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.root / f"{self.name}.pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": "postgres"},
                    "replication": {"username": "replicator", "password": "replicator"},
                    "rewind": {"username": "postgres", "password": "postgres"},
                },
                "parameters": {"unix_socket_directories": str(self.root)},
            },
            "tags": {"nofailover": False, "noloadbalance": False},
        }

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def api(self, path: str) -> Any:
        url = f"http://127.0.0.1:{self.api_port}{path}"
        with urllib.request.urlopen(url, timeout=2) as reply:
            return json.loads(reply.read())


class PatroniCluster:
    """etcd and two Patroni nodes. `url(database)` is the libpq multi-host URL the services
    are given; `primary()` asks Patroni which node leads; `kill(node)` is the fault."""

    def __init__(self) -> None:
        missing = missing_tools()
        if missing:
            raise ClusterUnavailable(
                "the Postgres failover tests need "
                + ", ".join(missing)
                + " (apt-get install patroni etcd-server etcd-client postgresql)"
            )
        # A killed run's cluster (pytest SIGKILLed) is still running: end it first.
        leftovers.reap(Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"))
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        leftovers.claim(self.root)
        self.scope = self.root.name
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.nodes = [Node("pg1", self.root), Node("pg2", self.root)]
        self.etcd: subprocess.Popen[bytes] | None = None
        # Postgres will not run as root; Patroni (and so Postgres) runs as `postgres` then.
        self.user = "postgres" if os.geteuid() == 0 else None

    @property
    def server(self) -> str:
        """postgresql://postgres@host1:port1,host2:port2 (no database, no options)."""
        return "postgresql://postgres@" + ",".join(n.address for n in self.nodes)

    def url(self, database: str) -> str:
        """The multi-host URL of `database` that connects to whichever node is primary."""
        return f"{self.server}/{database}?target_session_attrs=read-write"

    def node_url(self, node: Node, database: str) -> str:
        return f"postgresql://postgres@{node.address}/{database}"

    def start(self, timeout: float = 180) -> None:
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        etcd_dir = self.root / "etcd"
        client, peer = (
            f"http://127.0.0.1:{self.etcd_port}",
            f"http://127.0.0.1:{self.etcd_peer_port}",
        )
        with open(self.root / "etcd.log", "wb") as log:
            self.etcd = subprocess.Popen(
                [
                    "etcd",
                    "--name=bo",
                    f"--data-dir={etcd_dir}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=bo={peer}",
                    f"--initial-cluster-token={self.scope}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait(lambda: self._etcd_healthy(client), 60, "etcd serving")
        for node in self.nodes:
            self.spawn(node)
            # The first bootstraps; the second clones it with pg_basebackup once it leads.
            if node is self.nodes[0]:
                self._wait(lambda: self.primary() is not None, timeout, "a Patroni leader")
        self._wait(self.replicating, timeout, "a synchronous standby streaming")

    def spawn(self, node: Node) -> None:
        config = node.root / f"{node.name}.yml"
        config.write_text(json.dumps(node.config(self.scope, f"127.0.0.1:{self.etcd_port}")))
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(config, entry.pw_uid, entry.pw_gid)
        with open(node.log_path, "ab") as log:
            node.process = subprocess.Popen(
                ["patroni", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                cwd=self.root,
                start_new_session=True,
                # Patroni is the OS's Python program: none of the test venv's settings.
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            )

    def members(self) -> list[dict[str, Any]]:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                return list(node.api("/cluster").get("members", []))
            except (OSError, urllib.error.URLError, ValueError):
                continue
        return []

    def primary(self) -> Node | None:
        """The node Patroni reports as the running leader, if any."""
        for member in self.members():
            if member.get("role") == "leader" and member.get("state") == "running":
                return self._node(member["name"])
        return None

    def standby(self) -> Node | None:
        for member in self.members():
            if member.get("role") == "sync_standby" and member.get("state") in (
                "running",
                "streaming",
            ):
                return self._node(member["name"])
        return None

    def replicating(self) -> bool:
        return self.primary() is not None and self.standby() is not None

    def _node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def kill(self, node: Node) -> None:
        """The node dies at once: SIGKILL to its Patroni and to its Postgres's process group
        (Patroni starts the postmaster in a session of its own; backends share its group)."""
        postgres = self._process_group(node)
        if node.process is not None:
            node.process.kill()
            node.process.wait(10)
        if postgres is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(postgres, signal.SIGKILL)

    def _process_group(self, node: Node) -> int | None:
        """The process group of the node's postmaster (not its pid: Patroni's launcher
        process made the session and left it)."""
        pid = node.postmaster_pid()
        if pid is None:
            return None
        try:
            return os.getpgid(pid)
        except ProcessLookupError:
            return None

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(30)
                except subprocess.TimeoutExpired:
                    self.kill(node)
            group = self._process_group(node)
            if group is not None:  # a Postgres its Patroni left behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
        if self.etcd is not None:
            self.etcd.terminate()
            try:
                self.etcd.wait(15)
            except subprocess.TimeoutExpired:
                self.etcd.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tails(self, lines: int = 30) -> str:
        tails = []
        for path in sorted(self.root.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            tails.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(tails)

    def _etcd_healthy(self, client: str) -> bool:
        try:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as reply:
                return bool(json.loads(reply.read()).get("health") == "true")
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"never happened within {timeout} s: {what}\n{self.log_tails()}")
            time.sleep(0.3)

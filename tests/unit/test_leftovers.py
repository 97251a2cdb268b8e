"""The reaper of a killed test run's servers (tests/support/leftovers.py): what a dead run
left running is ended and its directory deleted; a live run's is left alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import leftovers


def _server_of(directory: Path) -> subprocess.Popen[bytes]:
    """A process that names `directory` only in its environment, as epmd does."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={"HOME": str(directory)},
        start_new_session=True,
    )


def test_a_dead_runs_servers_are_ended_and_a_live_runs_kept(tmp_path: Path) -> None:
    dead_run, live_run, unclaimed = tmp_path / "dead", tmp_path / "live", tmp_path / "none"
    for d in (dead_run, live_run, unclaimed):
        d.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (dead_run / leftovers.OWNER).write_text(str(gone.pid))  # its run exited
    leftovers.claim(live_run)  # this run
    servers = [_server_of(d) for d in (dead_run, live_run, unclaimed)]
    try:
        assert leftovers.reap([dead_run, live_run, unclaimed]) == [dead_run]
        assert servers[0].wait(10) < 0  # killed
        assert servers[1].poll() is None and servers[2].poll() is None
        assert not dead_run.exists() and live_run.exists() and unclaimed.exists()
    finally:
        for server in servers:
            server.kill()
            server.wait()

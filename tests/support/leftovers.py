"""What a killed test run leaves behind, cleaned up by the next one.

The cluster suites start servers of their own (Patroni, etcd and their Postgres; RabbitMQ
nodes and their epmd) in sessions of their own, so that killing one is a machine dying. A
pytest that is itself killed outright (SIGKILL, a CI timeout) never stops them: they keep
running, with their data directories. Each cluster therefore `claim`s its directory with its
test run's pid, and the next run `reap`s every directory whose run is gone: SIGKILL to each
process that names the directory in its command line or environment, then the directory.
A directory whose run is alive (another run on the same machine) is left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterable
from pathlib import Path

OWNER = ".owner-pid"


def claim(directory: Path) -> None:
    """Marks `directory` as this test run's."""
    (directory / OWNER).write_text(str(os.getpid()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner(directory: Path) -> int | None:
    try:
        return int((directory / OWNER).read_text().strip())
    except (OSError, ValueError):
        return None


def _naming(directory: Path) -> list[int]:
    """Pids of the processes whose command line or environment mention `directory`."""
    needle = os.fsencode(str(directory))
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            with contextlib.suppress(OSError):
                if needle in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
    return found


def reap(directories: Iterable[Path]) -> list[Path]:
    """Ends what each claimed directory's dead run left running and deletes the directory;
    returns the directories reaped. Unclaimed directories are not touched."""
    reaped = []
    for directory in directories:
        owner = _owner(directory)
        if owner is None or _alive(owner):
            continue
        for pid in _naming(directory):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
        reaped.append(directory)
    return reaped

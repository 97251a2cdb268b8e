"""The planning worker as `serve`'s child process (docs/spec.md §9): started with the
service, restarted if it dies, stopped (SIGTERM, then waited for) when the service stops.
A process of its own keeps the forecasting library out of the gRPC server's memory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

log = logging.getLogger(__name__)

RESTART_AFTER_SECONDS = 5.0
STOP_GRACE_SECONDS = 10.0


class PlanningChild:
    def __init__(self) -> None:
        self._stopping = asyncio.Event()
        self._process: asyncio.subprocess.Process | None = None

    async def run(self) -> None:
        while not self._stopping.is_set():
            # The same program, environment and settings as this service: `plan`.
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.allocation.main", "plan"
            )
            log.info("planning worker started", extra={"pid": self._process.pid})
            code = await self._process.wait()
            if self._stopping.is_set():
                return
            log.warning("planning worker exited; restarting it", extra={"code": code})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RESTART_AFTER_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            asyncio.get_running_loop().create_task(self._kill_if_slow(process))

    async def _kill_if_slow(self, process: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            process.kill()

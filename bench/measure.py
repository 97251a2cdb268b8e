"""Measuring tools: percentiles, closed-loop load at a fixed concurrency, RSS sampling of the
service processes, CPU seconds per component, and an optional py-spy profile of a service."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; NaN when empty."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Load:
    """Outcome of a closed-loop load: every call's latency in seconds, and the wall time."""

    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else math.nan

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)

    def summary(self) -> dict[str, float]:
        return {
            "calls": len(self.latencies),
            "errors": self.errors,
            "seconds": self.seconds,
            "per_second": self.rate,
            "p50_ms": self.p(50) * 1000,
            "p90_ms": self.p(90) * 1000,
            "p99_ms": self.p(99) * 1000,
            "max_ms": max(self.latencies, default=math.nan) * 1000,
        }


async def closed_loop(
    call: Callable[[int], Awaitable[object]], total: int, concurrency: int
) -> Load:
    """`total` calls of `call(i)` by `concurrency` workers, each starting its next call as
    soon as its previous one answered (what N callers with one request in flight do)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            start = time.perf_counter()
            try:
                await call(i)
            except Exception:
                errors += 1
                if errors > max(10, total // 100):
                    raise
                continue
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load(latencies, time.perf_counter() - start, errors)


@dataclass
class RssSampler:
    """Samples the resident set size of processes every `interval` s; keeps the peak."""

    pids: dict[str, int]
    interval: float = 0.05
    peak_bytes: dict[str, int] = field(default_factory=dict)

    @contextlib.asynccontextmanager
    async def sampling(self) -> AsyncIterator[RssSampler]:
        processes = {name: psutil.Process(pid) for name, pid in self.pids.items()}
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                for name, proc in processes.items():
                    with contextlib.suppress(psutil.Error):
                        rss = proc.memory_info().rss
                        self.peak_bytes[name] = max(self.peak_bytes.get(name, 0), rss)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            stop.set()
            await task

    def peak_mb(self) -> dict[str, float]:
        return {name: b / 2**20 for name, b in self.peak_bytes.items()}


def _component(proc: psutil.Process, mine: dict[int, str], databases: list[str]) -> str | None:
    """Which part of the system a process is, for CPU accounting (None: not ours)."""
    if proc.pid in mine:
        return mine[proc.pid]
    name = proc.name()
    if name == "beam.smp":
        return "rabbitmq (all vhosts)"
    if name.startswith("postgres"):
        cmdline = " ".join(proc.cmdline())
        # A backend's title names its database; only our databases' backends are counted.
        if any(f" {db} " in f" {cmdline} " for db in databases):
            return "postgres (our backends)"
        return None
    return None


class CpuAccount:
    """CPU seconds used by each component between `start()` and `stop()`; the machine's load
    average and total CPU use, so a reader can see how much else was running."""

    def __init__(self, mine: dict[int, str], databases: list[str]) -> None:
        self._mine = mine
        self._databases = databases
        self._before: dict[int, tuple[str, float]] = {}
        self._t0 = 0.0
        self._machine0: float = 0.0

    def _snapshot(self) -> dict[int, tuple[str, float]]:
        seen: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                component = _component(proc, self._mine, self._databases)
                if component is not None:
                    t = proc.cpu_times()
                    seen[proc.pid] = (component, t.user + t.system)
        return seen

    @staticmethod
    def _machine_busy() -> float:
        t = psutil.cpu_times()
        return t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)

    def start(self) -> None:
        self._before = self._snapshot()
        self._t0 = time.perf_counter()
        self._machine0 = self._machine_busy()

    def stop(self) -> dict[str, float]:
        after = self._snapshot()
        wall = time.perf_counter() - self._t0
        used: dict[str, float] = {}
        for pid, (component, cpu) in after.items():
            start = self._before.get(pid, (component, 0.0))[1]
            used[component] = used.get(component, 0.0) + cpu - start
        result = {f"{k} cpu_s": round(v, 2) for k, v in sorted(used.items())}
        result["wall_s"] = round(wall, 2)
        result["machine cpu_s (all processes, 2 cores)"] = round(
            self._machine_busy() - self._machine0, 2
        )
        return result


class Profiler:
    """py-spy attached to a service process for the length of a block (raw collapsed stacks).

    Sampling is non-blocking so the service is not paused; the output is one line per
    distinct stack with its sample count, summarised by `summarise`."""

    def __init__(self, out_dir: Path | None) -> None:
        self.out_dir = out_dir

    @contextlib.asynccontextmanager
    async def record(self, pid: int, name: str | None) -> AsyncIterator[Path | None]:
        if self.out_dir is None or name is None:
            yield None
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        out = self.out_dir / f"profile-{name}.txt"
        spy = Path(sys.executable).parent / "py-spy"
        proc = await asyncio.create_subprocess_exec(
            str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
            "--nonblocking", "--output", str(out),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(0.5)  # attached before the work starts
        try:
            yield out
        finally:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 30)


_LINE_NUMBER = re.compile(r":\d+\)$")
_AREAS = (
    ("services/", "our code (services/)"),
    ("asyncpg/", "asyncpg"),
    ("grpc/", "grpc"),
    ("aio_pika/", "aio-pika/aiormq/pamqp"),
    ("aiormq/", "aio-pika/aiormq/pamqp"),
    ("pamqp/", "aio-pika/aiormq/pamqp"),
    ("google/protobuf", "protobuf"),
    ("prometheus_client/", "prometheus_client"),
    ("logging/", "logging"),
    ("asyncio/", "asyncio event loop"),
    ("uuid.py", "uuid"),
)


def _frames(profile: Path) -> Iterator[tuple[list[str], int]]:
    for line in profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield [_LINE_NUMBER.sub(")", f) for f in stack.split(";")], int(count_text)


def summarise(profile: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Where a py-spy raw profile's samples went, in % of the samples taken while the
    process was busy: by library of the innermost frame ("area"), the busiest innermost
    functions ("self") and our own functions including what they call ("inclusive")."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    area: dict[str, int] = {}
    total = 0
    for frames, count in _frames(profile):
        total += count
        for frame in set(frames):
            if "services/" in frame:
                inclusive[frame] = inclusive.get(frame, 0) + count
        leaf = frames[-1]
        own[leaf] = own.get(leaf, 0) + count
        name = next((label for key, label in _AREAS if key in leaf), "other")
        area[name] = area.get(name, 0) + count
    if not total:
        return {}

    def ranked(counts: dict[str, int]) -> list[tuple[str, float]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [(frame, 100 * n / total) for frame, n in best]

    return {
        "samples": [("busy samples", float(total))],
        "area": ranked(area),
        "self": ranked(own),
        "inclusive": ranked(inclusive),
    }

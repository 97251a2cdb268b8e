"""`python -m bench [--quick|--full] [--rows ...] [--profile]`: runs the docs/spec.md §7 rows
and their raw baselines in one go and writes bench/results/latest.json, latest.md and latest.png."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench import calls, drain, events, orders, planning, scaling
from bench.context import DEFAULT, FULL, QUICK, Bench, Sizes
from bench.infra import Environment, database_url
from bench.measure import Profiler, summarise
from bench.report import Results, markdown_table, plot, table

RESULTS = Path(__file__).parent / "results"
ROWS = (
    "drain",
    "outbox",
    "allocate",
    "hot",
    "latency",
    "growth",
    "memory",
    "mixed",
    "scaling",
    "orders",
    "planning",
)

# drain, growth and memory come out of the same series of drains.
RUNNERS: list[tuple[set[str], str, Callable[[Bench], Awaitable[None]]]] = [
    ({"allocate"}, "allocate + raw SQL + raw RPC", calls.allocate_row),
    ({"hot"}, "hot SKU", calls.hot_row),
    ({"outbox"}, "outbox relay + raw publish", events.outbox_row),
    ({"latency"}, "receipt → line.reserved latency", events.latency_row),
    ({"mixed"}, "receipt → line.reserved latency while 32 callers Allocate", events.mixed_row),
    ({"scaling"}, "Allocate on 1, 2 and 4 allocation processes", scaling.scaling_row),
    ({"drain", "growth", "memory"}, "drain, growth and memory", drain.growth_rows),
    ({"orders"}, "ship-complete orders vs independent lines", orders.orders_row),
    (
        {"planning"},
        "planning: refresh, suggestions, Allocate with the worker",
        planning.planning_rows,
    ),
]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


async def _machine() -> dict[str, Any]:
    conn = await asyncpg.connect(database_url("postgres"))
    try:
        postgres = await conn.fetchval("show server_version")
    finally:
        await conn.close()
    try:
        git = await asyncio.create_subprocess_exec(
            "git", "rev-parse", "--short", "HEAD",
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=Path(__file__).parent,
        )  # fmt: skip
        commit = (await git.communicate())[0].decode().strip()
    except OSError:
        commit = ""
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgres": postgres,
        "commit": commit,
        "uptime": f"load average {_load()} (1, 5, 15 min) at start",
    }


async def run(sizes: Sizes, rows: set[str], profile: bool, out_dir: Path) -> int:
    results = Results(sizes.name)
    results.machine = await _machine()
    errors: list[str] = []
    started = time.perf_counter()
    print(f"benchmark ({sizes.name}), {results.machine['uptime']}", flush=True)
    async with Environment() as env:
        bench = Bench(env, sizes, results, Profiler(out_dir if profile else None))
        await bench.open()
        try:
            for covers, title, runner in RUNNERS:
                if not covers & rows:
                    continue
                print(f"- {title} …", flush=True)
                t0 = time.perf_counter()
                try:
                    await runner(bench)
                except Exception as exc:
                    errors.append(f"{title}: {exc!r}")
                    results.details.setdefault("errors", []).append(
                        {"row": title, "error": repr(exc), "trace": traceback.format_exc()}
                    )
                    traceback.print_exc()
                    print(env.allocation.log_tail(), file=sys.stderr)
                print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
        finally:
            await bench.close()
    results.machine["finished_load"] = f"load average {_load()} at end"
    results.machine["seconds"] = round(time.perf_counter() - started, 1)

    print()
    print(table(results))
    print(f"\n{results.machine['uptime']}; {results.machine['finished_load']}; "
          f"{results.machine['seconds']} s")  # fmt: skip
    path = results.write(out_dir)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    (out_dir / "latest.md").write_text(markdown_table(results) + "\n")
    print("wrote latest.md (the table for docs/performance.md) next to it")
    try:
        picture = plot(results, out_dir / "latest.png")
        if picture:
            print(f"wrote {picture.name} next to it")
    except Exception as exc:  # the figures matter more than the picture
        print(f"plot failed: {exc!r}", file=sys.stderr)
    if profile:
        print_profiles(out_dir)
    if errors:
        print("\nrows that failed:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    return 0


def print_profiles(out_dir: Path) -> None:
    for file in sorted(out_dir.glob("profile-*.txt")):
        print(f"\n{file.name}")
        for kind, entries in summarise(file, top=15).items():
            print(f"  {kind}:")
            for frame, share in entries:
                print(f"    {share:7.1f}  {frame}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, under two minutes")
    size.add_argument(
        "--full", action="store_true", help="docs/spec.md §7 sizes, queues up to 1,000,000 lines"
    )
    parser.add_argument(
        "--rows",
        default=",".join(ROWS),
        help=f"comma-separated subset of {','.join(ROWS)} (default: all)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="attach py-spy to the allocation service during the Allocate load, the outbox "
        "row and the drain; raw profiles go to the results folder",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    rows = {r.strip() for r in args.rows.split(",") if r.strip()}
    unknown = rows - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {','.join(ROWS)}")
    sizes = QUICK if args.quick else FULL if args.full else DEFAULT
    return asyncio.run(run(sizes, rows, args.profile, args.out))


if __name__ == "__main__":
    sys.exit(main())

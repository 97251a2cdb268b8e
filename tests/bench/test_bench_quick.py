"""The benchmark's smoke test: `python -m bench --quick` runs every docs/spec.md §7 row and its raw
baselines against the real servers and writes a figure for each (their values are the
benchmark's business, not the test's)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "drain",
    "outbox",
    "allocate",
    "hot",
    "latency",
    "growth",
    "memory",
    "mixed",
    "orders",
    "planning",
}


def test_quick_benchmark_produces_every_row(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"benchmark failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"

    results = json.loads((tmp_path / "latest.json").read_text())
    figures = results["figures"]
    assert {f["row"] for f in figures} >= ROWS
    for figure in figures:
        assert isinstance(figure["value"], int | float), figure
        assert math.isfinite(figure["value"]), figure
        if figure["raw"] is not None:
            assert math.isfinite(figure["raw"]) and figure["raw"] > 0, figure
    # Each docs/spec.md §7 row is judged against its target (pass or fail, but judged).
    judged = {f["row"] for f in figures if f["passed"] is not None}
    assert judged >= ROWS
    # Scaling on cores (issue 16): Allocate with 1, 2 and 4 processes, each against the last.
    scaling = [f for f in figures if f["row"] == "scaling"]
    assert len(scaling) == 3 and all(f["value"] > 0 for f in scaling), scaling
    # The raw baselines of the same run are there: SQL fill, SQL allocate, publish, RPC.
    raw_names = {f["raw_name"] for f in figures if f["raw"] is not None}
    assert {"one-round-trip SQL", "aio-pika publish+confirm"} <= raw_names
    # The drain against the lean fill with events, and against our own schema's fill.
    assert {"lean set-based fill + events", "one set-based SQL, own schema"} <= raw_names
    # Seven cumulative variants, then another design's statement (its fill all HOT updates).
    costs = results["details"]["drain_schema_costs"]
    assert len(costs) == 8 and all(c["per_second"] > 0 for c in costs), costs
    assert "grpc.aio health check" in raw_names
    assert "process_backorders, per unit" in raw_names  # the peer, measured beside us
    assert (tmp_path / "latest.png").stat().st_size > 0
    markdown = (tmp_path / "latest.md").read_text()
    assert all(f"| {f['name']} |" in markdown for f in figures)
    # The table was printed with every row in it.
    for row in ROWS | {"scaling"}:
        assert f"\n{row} " in run.stdout

"""The benchmark's outputs: one table (figure, target, raw baseline, ratio, pass/fail), the
same as JSON, and a plot of latency percentiles and of drain time against queue length."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """One line of the table. `passed` is None for figures that have no target of their own."""

    row: str
    name: str
    value: float
    unit: str
    target: str = ""
    raw: float | None = None
    raw_name: str = ""
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.raw is None or not self.raw or math.isnan(self.value):
            return None
        return self.value / self.raw


@dataclass
class Results:
    """Everything one run measured: the table's figures and each row's details."""

    size: str
    machine: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "machine": self.machine,
            "figures": [{**asdict(f), "ratio": f.ratio} for f in self.figures],
            "details": self.details,
        }

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "latest.json"
        path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        return path


def _num(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def _cells(f: Figure, fail: str) -> tuple[str, ...]:
    raw = f"{_num(f.raw, f.unit)} ({f.raw_name})" if f.raw is not None else "-"
    verdict = "-" if f.passed is None else ("PASS" if f.passed else fail)
    ratio = f"{f.ratio:.2f}" if f.ratio is not None else "-"
    return (f.row, f.name, _num(f.value, f.unit), f.target, raw, ratio, verdict)


_HEADER = ("row", "figure", "value", "target", "raw baseline", "ratio", "pass")


def table(results: Results) -> str:
    """The figures as a fixed-width table for the terminal."""
    lines = [_cells(f, "FAIL") for f in results.figures]
    widths = [max(len(str(x)) for x in col) for col in zip(_HEADER, *lines, strict=False)]
    out = []
    for i, line in enumerate([_HEADER, *lines]):
        out.append("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(results: Results) -> str:
    """The same as a Markdown table, for docs/performance.md."""
    lines = [_HEADER, ("---",) * len(_HEADER), *(_cells(f, "**FAIL**") for f in results.figures)]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def plot(results: Results, path: Path) -> Path | None:
    """Latency percentiles per measured call, and drain time against queue length."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    latency: dict[str, dict[str, float]] = results.details.get("latency_percentiles", {})
    growth: list[dict[str, Any]] = results.details.get("growth", {}).get("sizes", [])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))

    names = list(latency)
    for i, q in enumerate(("p50_ms", "p90_ms", "p99_ms")):
        values = [latency[n].get(q, math.nan) for n in names]
        left.bar([x + i * 0.27 for x in range(len(names))], values, width=0.27, label=q[:3])
    left.set_xticks([x + 0.27 for x in range(len(names))], names, rotation=30, ha="right")
    left.set_ylabel("ms")
    left.set_yscale("log")
    left.set_title("Latency percentiles")
    left.legend()

    if growth:
        xs = [g["queue_length"] for g in growth]
        right.plot(xs, [g["service_drain_s"] for g in growth], "o-", label="service drain")
        right.plot(xs, [g["raw_drain_s"] for g in growth], "s--", label="raw SQL fill")
        right.plot(xs, [g["service_fill_1k_s"] for g in growth], "^-", label="service: fill 1k")
        right.set_xscale("log")
        right.set_yscale("log")
        right.set_xlabel("waiting lines in the queue")
        right.set_ylabel("seconds")
        right.set_title("Drain time vs queue length")
        right.legend()
    fig.suptitle(f"Backorder benchmark ({results.size}), {results.machine.get('uptime')}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

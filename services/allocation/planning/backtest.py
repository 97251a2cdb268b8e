"""Backtests of planning (docs/spec.md §9, docs/planning.md). Uses the forecasting library:
never imported by the server.

- On stored history (`backorder-allocation backtest`): each SKU's history is cut `holdout`
  days before today, forecast from what came before, and the forecast compared with the
  mean daily demand of the days held out. Summed by method: SKUs, mean absolute error, bias
  (forecast - actual, units a day) and WAPE (absolute errors over actual demand).
- Of the policy on generated demand (`python -m services.allocation.planning.backtest`):
  simulation.py per kind of demand; prints the cycle service level achieved against the
  target, the fill rate and MASE, optionally draws them (--plot, needs matplotlib), and
  exits 1 when a kind misses its target by more than TOLERANCE."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from services.allocation.adapters import planning as planning_db
from services.allocation.planning import simulation
from services.allocation.planning.forecast import forecast


@dataclass(frozen=True)
class Trial:
    sku: str
    method: str
    forecast_daily: float
    actual_daily: float


@dataclass(frozen=True)
class MethodScore:
    method: str
    skus: int
    mean_absolute_error: float
    bias: float
    wape: float | None  # None when the held-out days had no demand at all


def trial(sku: str, series: Sequence[float], holdout: int) -> Trial | None:
    """None when the series is not longer than the holdout (nothing to learn from)."""
    if holdout < 1 or len(series) <= holdout:
        return None
    answer = forecast(series[:-holdout])
    actual = sum(series[-holdout:]) / holdout
    return Trial(sku, answer.method.value, answer.daily_units, actual)


def scores(trials: Iterable[Trial]) -> list[MethodScore]:
    by_method: dict[str, list[Trial]] = {}
    for t in trials:
        by_method.setdefault(t.method, []).append(t)
    out = []
    for method, group in sorted(by_method.items()):
        errors = [t.forecast_daily - t.actual_daily for t in group]
        actual = sum(t.actual_daily for t in group)
        absolute = sum(abs(e) for e in errors)
        out.append(
            MethodScore(
                method,
                len(group),
                absolute / len(group),
                sum(errors) / len(group),
                absolute / actual if actual > 0 else None,
            )
        )
    return out


async def backtest_all(pool: asyncpg.Pool, holdout: int, batch: int = 500) -> list[MethodScore]:
    """The scores of every SKU with demand history, read in batches."""
    trials: list[Trial] = []
    after = ""
    while skus := await planning_db.skus_after(pool, after, batch):
        inputs = await planning_db.histories(pool, skus)
        for sku, history in inputs.series.items():
            if (t := trial(sku, history, holdout)) is not None:
                trials.append(t)
        after = skus[-1]
    return scores(trials)


TOLERANCE = 0.02  # achieved cycle service level within 2 points of the target


def table(results: Sequence[simulation.KindScore]) -> str:
    """A Markdown table, as docs/planning.md shows it."""
    lines = [
        "| demand | classified as | SKUs | cycles | target | achieved | fill rate | MASE |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        classes = ", ".join(f"{c.lower()} {n}" for c, n in r.classes.items())
        lines.append(
            f"| {r.kind} | {classes} | {r.skus} | {r.cycles} | {r.target:.1%} "
            f"| {r.achieved:.1%} | {r.fill_rate:.1%} | {r.mase:.2f} |"
        )
    return "\n".join(lines)


def plot(results: Sequence[simulation.KindScore], path: str) -> None:
    """Achieved against target per kind and target (left), MASE per kind (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(dict.fromkeys(r.kind for r in results))
    targets = sorted({r.target for r in results})
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=(2, 1))
    width = 0.8 / len(targets)
    for i, target in enumerate(targets):
        got = {r.kind: r.achieved for r in results if r.target == target}
        xs = [k + (i - (len(targets) - 1) / 2) * width for k in range(len(kinds))]
        left.bar(xs, [got[k] * 100 for k in kinds], width, label=f"target {target:.0%}")
        for x in xs:
            left.fill_between(
                [x - width / 2, x + width / 2],
                (target - TOLERANCE) * 100,
                (target + TOLERANCE) * 100,
                color="grey",
                alpha=0.35,
                zorder=3,
            )
    low = min(min(targets) - 0.05, min(r.achieved for r in results) - 0.01)
    left.set_ylim(low * 100, 100)
    left.set_xticks(range(len(kinds)), kinds, rotation=20)
    left.set_ylabel("cycles without a stockout (%)")
    left.set_title("Cycle service level achieved (grey: target ± 2 points)")
    left.legend(loc="lower right", fontsize="small")
    first = [r for r in results if r.target == targets[len(targets) // 2]]
    right.bar(range(len(first)), [r.mase for r in first], color="tab:purple")
    right.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    right.set_xticks(range(len(first)), [r.kind for r in first], rotation=20)
    right.set_title("MASE (scaled by weekly seasonal naive)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.allocation.planning.backtest",
        description="Simulate the replenishment policy on generated demand of each kind.",
    )
    parser.add_argument("--skus", type=int, default=200, help="SKUs per kind (default 200)")
    parser.add_argument("--days", type=int, default=364, help="days simulated (default 364)")
    parser.add_argument(
        "--history-days", type=int, default=182, help="history before the start (default 182)"
    )
    parser.add_argument(
        "--service-level",
        type=float,
        action="append",
        help="target cycle service level; repeat for several (default 0.95)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=1, help="worker processes for the SKUs (default 1)"
    )
    parser.add_argument(
        "--kind", action="append", choices=list(simulation.KINDS), help="default: every kind"
    )
    parser.add_argument("--plot", metavar="PNG", help="also draw the results (matplotlib)")
    args = parser.parse_args(argv)
    results: list[simulation.KindScore] = []
    missed = []
    for target in args.service_level or [0.95]:
        started = time.monotonic()
        scores = simulation.simulate(
            args.kind or list(simulation.KINDS),
            args.skus,
            service_level=target,
            history_days=args.history_days,
            days=args.days,
            seed=args.seed,
            processes=args.jobs,
        )
        print(f"target {target:.1%}: {time.monotonic() - started:.0f} s\n{table(scores)}\n")
        results += scores
        missed += [s for s in scores if abs(s.achieved - s.target) > TOLERANCE]
    if args.plot:
        plot(results, args.plot)
    for s in missed:
        print(f"{s.kind}: achieved {s.achieved:.1%} against {s.target:.1%}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

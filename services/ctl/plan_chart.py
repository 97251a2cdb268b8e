"""backorderctl plan chart: a PNG of one SKU's planning (docs/spec.md §9) — its daily demand
history with the forecast, and its stock levels: reorder point, the safety stock band,
order-up-to and available units now.

The series come from GetDemandHistory and GetReplenishment (`chart_data`, plain data a test
can check); matplotlib draws them. matplotlib is the optional extra `chart`, never a
dependency of the services: without it the command says which extra to install.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass

from backorder.allocation.v1 import allocation_pb2 as alloc
from services.ctl.app import USAGE, CommandFailed, Context, Result, command

MAX_DAYS = 1096  # GetDemandHistory's bound
EXTRA_HINT = "plan chart needs matplotlib: pip install 'backorder[chart]'"


@dataclass(frozen=True)
class ChartData:
    """What the chart plots. Demand panel: `demand` per day of `days`, and the forecast of
    `forecast_daily_units` a day over `forecast_days` (today through lead time + review
    period). Stock panel: the levels, in units, as horizontal lines; `safety_stock` is the
    band from 0 to it."""

    sku: str
    days: list[dt.date]
    demand: list[int]
    forecast_days: list[dt.date]
    forecast: list[float]
    forecast_daily_units: float
    forecast_method: str
    safety_stock: float
    reorder_point: float
    order_up_to: float
    available: int
    refreshed: bool  # False before the planning worker's first refresh of the SKU


def chart_data(history: alloc.GetDemandHistoryResponse, advice: alloc.Replenishment) -> ChartData:
    days = [dt.date.fromisoformat(d.date) for d in history.days]
    today = days[-1] if days else dt.date.today()
    horizon = max(advice.params.lead_time_days + advice.params.review_period_days, 1)
    forecast_days = [today + dt.timedelta(days=i) for i in range(horizon + 1)]
    return ChartData(
        sku=history.sku,
        days=days,
        demand=[d.units for d in history.days],
        forecast_days=forecast_days,
        forecast=[advice.forecast_daily_units] * len(forecast_days),
        forecast_daily_units=advice.forecast_daily_units,
        forecast_method=alloc.ForecastMethod.Name(advice.forecast_method).removeprefix(
            "FORECAST_METHOD_"
        ),
        safety_stock=advice.safety_stock,
        reorder_point=advice.reorder_point,
        order_up_to=advice.order_up_to,
        available=advice.available,
        refreshed=advice.HasField("refreshed_at"),
    )


def draw(data: ChartData, out: str) -> None:
    """Writes the chart of `data` to the PNG file `out`."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only; never a display
        import matplotlib.pyplot as plt
    except ImportError:
        raise CommandFailed(EXTRA_HINT, USAGE) from None
    fig, (demand_ax, stock_ax) = plt.subplots(
        2, 1, figsize=(10, 7), height_ratios=(3, 2), constrained_layout=True
    )
    try:
        demand_ax.bar(
            data.days, data.demand, width=1.0, color="#7a9cc6", label="demand (units/day)"
        )
        method = data.forecast_method if data.refreshed else "not refreshed yet"
        demand_ax.plot(
            data.forecast_days,
            data.forecast,
            color="#d62728",
            linewidth=2,
            label=f"forecast {data.forecast_daily_units:.2f}/day ({method})",
        )
        demand_ax.set_title(f"{data.sku}: daily demand and forecast")
        demand_ax.set_ylabel("units per day")
        demand_ax.legend(loc="upper left")

        stock_ax.axhspan(0, data.safety_stock, color="#ffbb78", alpha=0.6, label="safety stock")
        stock_ax.axhline(data.reorder_point, color="#d62728", label="reorder point")
        stock_ax.axhline(data.order_up_to, color="#2ca02c", linestyle="--", label="order-up-to")
        stock_ax.axhline(data.available, color="#1f77b4", linewidth=2, label="available now")
        stock_ax.set_title("stock levels (units)")
        stock_ax.set_ylabel("units")
        stock_ax.set_xticks([])
        stock_ax.legend(loc="best", ncol=2)
        fig.savefig(out, format="png", dpi=100)
    except OSError as exc:
        raise CommandFailed(f"{out}: {exc.strerror}", USAGE) from None
    finally:
        plt.close(fig)


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"expected days from 1 to {MAX_DAYS}, got {text!r}")
    return int(text)


def _chart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("--out", help="the PNG to write (default: SKU.png)")
    parser.add_argument(
        "--days", type=_days, default=365, help="days of history, today included (default 365)"
    )


@command(
    "plan",
    "chart",
    help="a PNG of a SKU's demand, forecast, reorder point and safety stock",
    arguments=_chart_arguments,
)
def plan_chart(ctx: Context, args: argparse.Namespace) -> Result:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CommandFailed(EXTRA_HINT, USAGE) from None
    stub = ctx.allocation()
    history = ctx.call(
        stub.GetDemandHistory, alloc.GetDemandHistoryRequest(sku=args.sku, days=args.days)
    )
    advice = ctx.call(
        stub.GetReplenishment, alloc.GetReplenishmentRequest(sku=args.sku)
    ).replenishment
    out = args.out or f"{args.sku}.png"
    data = chart_data(history, advice)
    draw(data, out)
    return Result(
        {
            "sku": args.sku,
            "file": out,
            "days": len(data.days),
            "demand_units": sum(data.demand),
            "forecast_daily_units": data.forecast_daily_units,
            "reorder_point": data.reorder_point,
            "safety_stock": data.safety_stock,
        }
    )

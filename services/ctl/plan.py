"""backorderctl plan: replenishment advice and its inputs (docs/spec.md §9) — show one SKU's
advice, list reorder suggestions, set planning parameters, import demand history."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from backorder.allocation.v1 import allocation_pb2 as alloc
from services.ctl.app import USAGE, CommandFailed, Context, Result, command
from services.ctl.commands import page_arguments, pages, positive, sku_argument

IMPORT_CHUNK = 1000  # days per ImportDemandHistory call (it takes up to 1,100)


@command(
    "plan",
    "show",
    help="a SKU's forecast, reorder point and suggested order",
    arguments=sku_argument,
)
def plan_show(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.allocation().GetReplenishment, alloc.GetReplenishmentRequest(sku=args.sku))
    return Result.of(reply.replenishment)


@command(
    "plan",
    "list",
    help="SKUs below their reorder point, fewest days of cover first",
    arguments=page_arguments,
)
def plan_list(ctx: Context, args: argparse.Namespace) -> Result:
    rows = pages(
        ctx,
        ctx.allocation().ListReorderSuggestions,
        alloc.ListReorderSuggestionsRequest(),
        "suggestions",
        args.limit,
    )
    return Result.rows(
        rows,
        columns=(
            "sku",
            "available",
            "reorder_point",
            "suggested_order_quantity",
            "days_of_cover",
            "forecast_daily_units",
            "forecast_method",
        ),
    )


def _non_negative(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 0, got {text!r}")
    return int(text)


def _params_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("--lead-time-days", type=_non_negative, help="days from order to receipt")
    parser.add_argument(
        "--service-level", type=float, help="wanted chance of no stock-out per cycle, 0.5-0.999"
    )
    parser.add_argument("--review-period-days", type=_non_negative, help="days between reviews")
    parser.add_argument("--moq", type=positive, help="least units one order may ask for")
    parser.add_argument("--pack-size", type=positive, help="orders are a multiple of it")


@command(
    "plan",
    "params",
    help="set a SKU's planning parameters (the others keep their value)",
    arguments=_params_arguments,
)
def plan_params(ctx: Context, args: argparse.Namespace) -> Result:
    request = alloc.SetPlanningParamsRequest(sku=args.sku)
    for name, value in (
        ("lead_time_days", args.lead_time_days),
        ("service_level", args.service_level),
        ("review_period_days", args.review_period_days),
        ("min_order_quantity", args.moq),
        ("pack_size", args.pack_size),
    ):
        if value is not None:
            setattr(request, name, value)
    reply = ctx.call(ctx.allocation().SetPlanningParams, request)
    return Result.of(reply.params)


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument(
        "file", help="CSV of DATE,UNITS lines (YYYY-MM-DD; a header line is skipped); - for stdin"
    )


def demand_days(lines: Iterable[str]) -> list[alloc.DemandDay]:
    """The days of a DATE,UNITS CSV; a first line that is not a day is a header."""
    days = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        date, sep, units = (part.strip() for part in text.partition(","))
        if not sep or not units.lstrip("-").isdigit():
            if number == 1 and not date[:1].isdigit():
                continue  # a header
            raise CommandFailed(f"line {number}: expected DATE,UNITS, got {text!r}", USAGE)
        days.append(alloc.DemandDay(date=date, units=int(units)))
    return days


@command(
    "plan", "import", help="load a SKU's demand history from a CSV", arguments=_import_arguments
)
def plan_import(ctx: Context, args: argparse.Namespace) -> Result:
    if args.file == "-":
        days = demand_days(sys.stdin)
    else:
        try:
            with open(args.file, encoding="utf-8") as file:
                days = demand_days(file)
        except OSError as exc:
            raise CommandFailed(f"{args.file}: {exc.strerror}", USAGE) from None
    if not days:
        raise CommandFailed(f"{args.file}: no DATE,UNITS lines", USAGE)
    imported = 0
    for start in range(0, len(days), IMPORT_CHUNK):
        request = alloc.ImportDemandHistoryRequest(
            sku=args.sku, days=days[start : start + IMPORT_CHUNK]
        )
        imported += ctx.call(ctx.allocation().ImportDemandHistory, request).days_imported
    return Result({"sku": args.sku, "days_imported": imported})


# `plan chart` lives in a module of its own (it draws with the optional matplotlib).
from services.ctl import plan_chart as _chart  # noqa: E402, F401

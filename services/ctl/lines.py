"""backorderctl lines, reservations, summary and policy: the allocation service's side."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from google.protobuf.message import Message

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from services.ctl.app import Context, Result, by_location, command
from services.ctl.commands import page_arguments, pages, positive, priority, sku_argument

LINE_COLUMNS = (
    "order_id",
    "line_id",
    "sku",
    "quantity",
    "priority",
    "status",
    "reserved_quantity",
    "backordered_quantity",
    "queue_position",
)


def _line_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("order_id")
    parser.add_argument("line_id")


def _line_result(message: Message, *path: str, **first: Any) -> Result:
    """A reply carrying a line (at `path` within it, e.g. "line"): for people, where the line
    may ship from as `locations  east,west` (or `any`) and its units per location as
    `allocations.<id>.<figure>` lines, both left out when it never left `default`."""
    result = Result.of(message, **first)
    shown = result.shown
    for key in path:
        shown = shown[key]
    eligible = shown.pop("locations", [])
    entries = shown.pop("allocations", [])
    if eligible or [e["location_id"] for e in entries] not in ([], ["default"]):
        shown["locations"] = ",".join(eligible) or "any"
        shown["allocations"] = {e.pop("location_id"): e for e in entries}
    return result


def _location_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--location", default="", metavar="LOCATION_ID", help=help)


def _allocate_arguments(parser: argparse.ArgumentParser) -> None:
    _line_key(parser)
    parser.add_argument("sku")
    parser.add_argument("quantity", type=positive)
    parser.add_argument("--priority", type=priority, default=0, help="0-9, 9 first (default 0)")
    parser.add_argument(
        "--allow-partial", action="store_true", help="accept part of the units at once"
    )
    parser.add_argument("--customer-id", default="")
    parser.add_argument(
        "--location",
        dest="locations",
        action="append",
        default=[],
        metavar="LOCATION_ID",
        help="a location the line may ship from (repeatable; default: any active location)",
    )


@command(
    "lines",
    "allocate",
    help="place an order line: reserve now or queue as a backorder",
    arguments=_allocate_arguments,
)
def lines_allocate(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().Allocate,
        alloc.AllocateRequest(
            order_id=args.order_id,
            line_id=args.line_id,
            sku=args.sku,
            quantity=args.quantity,
            priority=args.priority,
            allow_partial=args.allow_partial,
            customer_id=args.customer_id,
            locations=args.locations,
        ),
    )
    return _line_result(reply, "line")


@command("lines", "get", help="one order line with its status and ETA", arguments=_line_key)
def lines_get(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().GetLine,
        alloc.GetLineRequest(order_id=args.order_id, line_id=args.line_id),
    )
    return _line_result(reply.line)


LINE_STATUSES = (
    "BACKORDERED",
    "PARTIALLY_RESERVED",
    "RESERVED",
    "PARTIALLY_FULFILLED",
    "FULFILLED",
    "CANCELLED",
)


def _lines_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku", default="")
    parser.add_argument("--order-id", default="")
    parser.add_argument("--status", choices=[s.lower() for s in LINE_STATUSES])
    _location_argument(parser, "only lines holding or having shipped units at this location")
    page_arguments(parser)


@command(
    "lines", "list", help="order lines by SKU, order or status", arguments=_lines_list_arguments
)
def lines_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = alloc.ListLinesRequest(
        sku=args.sku, order_id=args.order_id, location_id=args.location
    )
    if args.status:
        request.status = alloc_events.LineStatus.Value(f"LINE_STATUS_{args.status.upper()}")
    rows: list[alloc.Line] = pages(ctx, ctx.allocation().ListLines, request, "lines", args.limit)
    result = Result.rows(rows, columns=LINE_COLUMNS)
    # Where the reserved units are, as `east:2,west:1` (one cell), once beyond `default`.
    if args.location or any(a.location_id != "default" for r in rows for a in r.allocations):
        result.columns = (*LINE_COLUMNS[:-1], "reserved_at", LINE_COLUMNS[-1])
        for row, line in zip(result.shown, rows, strict=True):
            row["reserved_at"] = ",".join(
                f"{a.location_id}:{a.reserved_quantity}"
                for a in line.allocations
                if a.reserved_quantity
            )
    return result


@command(
    "lines", "cancel", help="cancel a line; its reserved units go to the next", arguments=_line_key
)
def lines_cancel(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().CancelLine,
        alloc.CancelLineRequest(order_id=args.order_id, line_id=args.line_id),
    )
    return _line_result(reply.line, released_quantity=reply.released_quantity)


def _fulfil_arguments(parser: argparse.ArgumentParser) -> None:
    _line_key(parser)
    parser.add_argument("quantity", type=positive, help="units shipped (at most reserved)")
    parser.add_argument("--fulfillment-id", help="idempotency key (default: a new one, printed)")
    _location_argument(
        parser,
        "where the units ship from; needed only when the line holds units at several",
    )


@command("lines", "fulfil", help="mark reserved units as shipped", arguments=_fulfil_arguments)
def lines_fulfil(ctx: Context, args: argparse.Namespace) -> Result:
    fulfillment_id = args.fulfillment_id or f"ctl-{uuid.uuid4()}"
    reply = ctx.call(
        ctx.allocation().FulfillLine,
        alloc.FulfillLineRequest(
            order_id=args.order_id,
            line_id=args.line_id,
            fulfillment_id=fulfillment_id,
            quantity=args.quantity,
            location_id=args.location,
        ),
    )
    return _line_result(reply.line, fulfillment_id=fulfillment_id)


def _priority_arguments(parser: argparse.ArgumentParser) -> None:
    _line_key(parser)
    parser.add_argument("priority", type=priority, help="0-9, 9 first")


@command(
    "lines", "priority", help="change a line's priority (its rank)", arguments=_priority_arguments
)
def lines_priority(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().SetPriority,
        alloc.SetPriorityRequest(
            order_id=args.order_id, line_id=args.line_id, priority=args.priority
        ),
    )
    return _line_result(reply.line)


def _reservations_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku", default="")
    parser.add_argument("--order-id", default="")
    parser.add_argument("--line-id", default="")
    page_arguments(parser)


@command(
    "reservations",
    "list",
    help="the decision log of a line (--order-id and --line-id) or of a SKU (--sku)",
    arguments=_reservations_arguments,
)
def reservations_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = alloc.ListReservationsRequest(
        sku=args.sku, order_id=args.order_id, line_id=args.line_id
    )
    rows: list[alloc.Reservation] = pages(
        ctx, ctx.allocation().ListReservations, request, "reservations", args.limit
    )
    where = ("location_id",) if any(r.location_id != "default" for r in rows) else ()
    return Result.rows(
        rows,
        columns=(
            "reservation_id",
            "order_id",
            "line_id",
            *where,
            "quantity",
            "rule",
            "queue_position",
            "cause",
            "created_at",
        ),
    )


# --- SKU summary and policy --------------------------------------------------------------------


@command(
    "summary", help="free, reserved, backordered units and policy of a SKU", arguments=sku_argument
)
def summary(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.allocation().GetSkuSummary, alloc.GetSkuSummaryRequest(sku=args.sku))
    return _summary_result(reply.summary)


def _summary_result(summary: alloc.SkuSummary) -> Result:
    """For people, the SKU's free/reserved/inbound per location as `locations.<id>.<figure>`
    lines, as `stock get` shows them (left out when only `default` is involved)."""
    result = Result.of(summary)
    by_location(result.shown)
    return result


def _policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("--fill-policy", choices=("strict", "skip"))
    accepted = parser.add_mutually_exclusive_group()
    accepted.add_argument(
        "--backorders",
        dest="backorders_accepted",
        action="store_true",
        default=None,
        help="accept backorders",
    )
    accepted.add_argument(
        "--no-backorders",
        dest="backorders_accepted",
        action="store_false",
        help="accept a line only if it can be reserved in full at once",
    )
    parser.add_argument(
        "--backorder-limit", type=int, help="max backordered units of the SKU (0: none)"
    )
    parser.add_argument(
        "--max-units-per-customer",
        type=int,
        help="max open (reserved + backordered) units one customer may hold in the SKU "
        "(0: none); a line over it, or without --customer-id, is refused",
    )
    parser.add_argument(
        "--location-strategy",
        choices=("fill-rank", "most-stock"),
        help="which of a line's locations give units first: by the locations' fill rank, "
        "or the one with the most free units",
    )


@command(
    "policy",
    help="set a SKU's fill policy, backorder rules, per-customer cap and location strategy",
    arguments=_policy_arguments,
)
def policy(ctx: Context, args: argparse.Namespace) -> Result:
    request = alloc.SetSkuPolicyRequest(sku=args.sku)
    if args.fill_policy:
        request.fill_policy = alloc.FillPolicy.Value(f"FILL_POLICY_{args.fill_policy.upper()}")
    if args.backorders_accepted is not None:
        request.backorders_accepted = args.backorders_accepted
    if args.backorder_limit is not None:
        request.backorder_limit = args.backorder_limit
    if args.max_units_per_customer is not None:
        request.max_units_per_customer = args.max_units_per_customer
    if args.location_strategy:
        request.location_strategy = alloc.LocationStrategy.Value(
            "LOCATION_STRATEGY_" + args.location_strategy.upper().replace("-", "_")
        )
    reply = ctx.call(ctx.allocation().SetSkuPolicy, request)
    return _summary_result(reply.summary)

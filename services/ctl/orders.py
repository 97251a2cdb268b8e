"""backorderctl orders: place, read and cancel an order's lines together (docs/spec.md §10)."""

from __future__ import annotations

import argparse
from typing import Any

from backorder.allocation.v1 import allocation_pb2 as alloc
from services.ctl.app import Context, Result, command, for_people, to_dict
from services.ctl.commands import priority

# What each line of an order shows for people, as `lines.<line_id>.<figure>`.
ORDER_LINE_FIGURES = ("sku", "quantity", "status", "reserved_quantity", "backordered_quantity")


def order_line(text: str) -> tuple[str, int]:
    """argparse type: `SKU:QTY`, a line of the order (the SKU may itself hold colons)."""
    sku, _, quantity = text.rpartition(":")
    if not sku or not quantity.isdigit() or int(quantity) < 1:
        raise argparse.ArgumentTypeError(f"expected SKU:QTY with QTY >= 1, got {text!r}")
    return sku, int(quantity)


def _order_result(order: alloc.Order, **first: Any) -> Result:
    """The order as FIELD VALUE lines: its own fields, then each line's figures."""
    shown = {**first, **for_people(order)}
    lines = shown.pop("lines", [])
    for line in lines:
        shown[f"lines.{line['line_id']}"] = {k: line.get(k) for k in ORDER_LINE_FIGURES}
    return Result({**first, **to_dict(order)}, shown=shown)


def _place_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("order_id")
    parser.add_argument(
        "lines",
        nargs="+",
        type=order_line,
        metavar="SKU:QTY",
        help="the order's lines, in order; their line_ids are 1, 2, ...",
    )
    parser.add_argument("--priority", type=priority, default=0, help="0-9, 9 first (default 0)")
    parser.add_argument("--customer-id", default="")
    parser.add_argument(
        "--ship-complete",
        action="store_true",
        help="the lines hold units only all at once (the order ships together)",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="every line accepts part of its units at once (not with --ship-complete)",
    )


@command(
    "orders",
    "place",
    help="place an order's lines together: all or none",
    arguments=_place_arguments,
)
def orders_place(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().AllocateOrder,
        alloc.AllocateOrderRequest(
            order_id=args.order_id,
            priority=args.priority,
            customer_id=args.customer_id,
            ship_complete=args.ship_complete,
            lines=[
                alloc.OrderLineRequest(
                    line_id=str(n), sku=sku, quantity=quantity, allow_partial=args.allow_partial
                )
                for n, (sku, quantity) in enumerate(args.lines, start=1)
            ],
        ),
    )
    return _order_result(reply.order)


def _order_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("order_id")


@command("orders", "get", help="an order's status, ETA and lines", arguments=_order_key)
def orders_get(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.allocation().GetOrder, alloc.GetOrderRequest(order_id=args.order_id))
    return _order_result(reply.order)


@command("orders", "cancel", help="cancel every open line of an order", arguments=_order_key)
def orders_cancel(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.allocation().CancelOrder, alloc.CancelOrderRequest(order_id=args.order_id))
    return _order_result(reply.order, released_quantity=reply.released_quantity)

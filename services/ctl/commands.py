"""backorderctl commands: one small function each, proto request in, `Result` out.

Adding one: write a function taking (ctx, args), decorate it with `@command("group", "verb",
help=..., arguments=...)`, build the request from `args`, make the call with `ctx.call`, and
return `Result(to_dict(reply...))` (a dict) or `Result([...], columns=...)` (a table).
"""

from __future__ import annotations

import argparse
import uuid

from grpc_health.v1 import health_pb2, health_pb2_grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.inventory.v1 import inventory_pb2 as inv
from services.ctl.app import Context, Result, command, to_dict

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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of units >= 1, got {text!r}")
    return value


def _priority(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 9:
        raise argparse.ArgumentTypeError(f"expected a priority from 0 to 9, got {text!r}")
    return int(text)


# --- health --------------------------------------------------------------------------------------


def _health_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "service",
        nargs="?",
        choices=("inventory", "allocation"),
        help="only this service (default: both)",
    )


@command("health", help="whether the services serve (grpc.health.v1)", arguments=_health_arguments)
def health(ctx: Context, args: argparse.Namespace) -> Result:
    targets = {"inventory": ctx.inventory_addr, "allocation": ctx.allocation_addr}
    rows = []
    for name, target in targets.items():
        if args.service and name != args.service:
            continue
        stub = health_pb2_grpc.HealthStub(ctx.channel(target))
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=ctx.timeout)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except Exception as exc:  # unreachable is an answer here, not a failure of the tool
            code = getattr(exc, "code", None)
            status = code().name if callable(code) else type(exc).__name__
        rows.append({"service": name, "address": target, "status": status})
    return Result(
        rows,
        columns=("service", "address", "status"),
        ok=all(row["status"] == "SERVING" for row in rows),
    )


# --- stock ---------------------------------------------------------------------------------------


def _sku(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")


@command("stock", "get", help="on hand and inbound units of a SKU", arguments=_sku)
def stock_get(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.inventory().GetStock, inv.GetStockRequest(sku=args.sku))
    return Result(to_dict(reply.stock))


def _receive_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("quantity", type=_positive)
    parser.add_argument(
        "--receipt-id",
        help="idempotency key; repeat it to retry safely (default: a new one, printed)",
    )
    parser.add_argument("--inbound-id", default="", help="the expected receipt this fulfils")
    parser.add_argument("--note", default="")


@command("stock", "receive", help="record a receipt of units", arguments=_receive_arguments)
def stock_receive(ctx: Context, args: argparse.Namespace) -> Result:
    receipt_id = args.receipt_id or f"ctl-{uuid.uuid4()}"
    reply = ctx.call(
        ctx.inventory().ReceiveStock,
        inv.ReceiveStockRequest(
            receipt_id=receipt_id,
            sku=args.sku,
            quantity=args.quantity,
            inbound_id=args.inbound_id,
            note=args.note,
        ),
    )
    return Result({"receipt_id": receipt_id, **to_dict(reply)})


# --- lines ---------------------------------------------------------------------------------------


def _line_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("order_id")
    parser.add_argument("line_id")


def _allocate_arguments(parser: argparse.ArgumentParser) -> None:
    _line_key(parser)
    parser.add_argument("sku")
    parser.add_argument("quantity", type=_positive)
    parser.add_argument("--priority", type=_priority, default=0, help="0-9, 9 first (default 0)")
    parser.add_argument(
        "--allow-partial", action="store_true", help="accept part of the units at once"
    )
    parser.add_argument("--customer-id", default="")


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
        ),
    )
    return Result(to_dict(reply))


@command("lines", "get", help="one order line with its status and ETA", arguments=_line_key)
def lines_get(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().GetLine,
        alloc.GetLineRequest(order_id=args.order_id, line_id=args.line_id),
    )
    return Result(to_dict(reply.line))

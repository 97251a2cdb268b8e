"""backorderctl commands: one small function each, proto request in, `Result` out.

Adding one: write a function taking (ctx, args), decorate it with `@command("group", "verb",
help=..., arguments=...)`, build the request from `args`, make the call with `ctx.call`, and
return `Result(to_dict(reply...))` (a dict) or `Result([...], columns=...)` (a table).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backorder.allocation.v1 import allocation_pb2 as alloc
from backorder.allocation.v1 import events_pb2 as alloc_events
from backorder.inventory.v1 import events_pb2 as inventory_events
from backorder.inventory.v1 import inventory_pb2 as inv
from backorder.operations.v1 import dead_letters_pb2, dead_letters_pb2_grpc
from services.ctl.app import USAGE, CommandFailed, Context, Result, command, to_dict

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


def _page_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=_positive, default=50, help="at most this many rows (default 50)"
    )


def _pages(
    ctx: Context, method: Callable[..., Any], request: Message, field: str, limit: int
) -> list[dict[str, Any]]:
    """Follows next_page_token until `limit` rows or the end of the list."""
    rows: list[dict[str, Any]] = []
    while len(rows) < limit:
        request.page_size = min(limit - len(rows), 500)
        reply = ctx.call(method, request)
        rows += [to_dict(item) for item in getattr(reply, field)]
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    return rows[:limit]


# --- stock: list, adjust, movements, inbound ------------------------------------------------------


STOCK_COLUMNS = ("sku", "on_hand", "inbound_quantity", "updated_at")


def _stock_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku-prefix", default="", help="only SKUs starting with this")
    _page_arguments(parser)


@command("stock", "list", help="stock of every SKU, by SKU", arguments=_stock_list_arguments)
def stock_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListStockRequest(sku_prefix=args.sku_prefix)
    rows = _pages(ctx, ctx.inventory().ListStock, request, "stocks", args.limit)
    return Result(rows, columns=STOCK_COLUMNS)


def _adjust_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("delta", type=int, help="signed change of on hand, e.g. -3 or 5")
    parser.add_argument(
        "--reason",
        required=True,
        choices=[r.lower() for r in ADJUSTMENT_REASONS],
        help="why on hand changed",
    )
    parser.add_argument("--adjustment-id", help="idempotency key (default: a new one, printed)")
    parser.add_argument("--note", default="")


ADJUSTMENT_REASONS = ("CYCLE_COUNT", "DAMAGED", "LOST", "FOUND", "RETURNED", "OTHER")


@command("stock", "adjust", help="change on hand with a reason", arguments=_adjust_arguments)
def stock_adjust(ctx: Context, args: argparse.Namespace) -> Result:
    adjustment_id = args.adjustment_id or f"ctl-{uuid.uuid4()}"
    reply = ctx.call(
        ctx.inventory().AdjustStock,
        inv.AdjustStockRequest(
            adjustment_id=adjustment_id,
            sku=args.sku,
            delta=args.delta,
            reason=inventory_events.AdjustmentReason.Value(
                f"ADJUSTMENT_REASON_{args.reason.upper()}"
            ),
            note=args.note,
        ),
    )
    return Result({"adjustment_id": adjustment_id, **to_dict(reply)})


def _sku_pages(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    _page_arguments(parser)


@command("stock", "movements", help="the ledger of a SKU, newest first", arguments=_sku_pages)
def stock_movements(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListMovementsRequest(sku=args.sku)
    rows = _pages(ctx, ctx.inventory().ListMovements, request, "movements", args.limit)
    return Result(rows, columns=("id", "kind", "quantity", "on_hand_after", "created_at"))


def _expect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbound_id")
    parser.add_argument("sku")
    parser.add_argument("quantity", type=_positive)
    parser.add_argument(
        "expected_at", help="when it should arrive, RFC 3339 (e.g. 2026-12-01T09:00:00Z)"
    )


@command(
    "inbound", "expect", help="create or update an expected receipt", arguments=_expect_arguments
)
def inbound_expect(ctx: Context, args: argparse.Namespace) -> Result:
    expected_at = Timestamp()
    try:
        expected_at.FromJsonString(args.expected_at)
    except ValueError:
        raise CommandFailed(
            f"expected_at {args.expected_at!r} is not RFC 3339, e.g. 2026-12-01T09:00:00Z",
            USAGE,
        ) from None
    reply = ctx.call(
        ctx.inventory().ExpectInbound,
        inv.ExpectInboundRequest(
            inbound_id=args.inbound_id,
            sku=args.sku,
            quantity=args.quantity,
            expected_at=expected_at,
        ),
    )
    return Result(to_dict(reply.inbound))


def _inbound_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbound_id")


@command("inbound", "cancel", help="cancel an expected receipt", arguments=_inbound_id)
def inbound_cancel(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.inventory().CancelInbound, inv.CancelInboundRequest(inbound_id=args.inbound_id)
    )
    return Result(to_dict(reply.inbound))


def _inbound_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("--open-only", action="store_true", help="only inbound still expected")
    _page_arguments(parser)


@command("inbound", "list", help="expected receipts of a SKU", arguments=_inbound_list_arguments)
def inbound_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListInboundRequest(sku=args.sku, open_only=args.open_only)
    rows = _pages(ctx, ctx.inventory().ListInbound, request, "inbound", args.limit)
    return Result(
        rows,
        columns=(
            "inbound_id",
            "quantity",
            "received_quantity",
            "open_quantity",
            "expected_at",
            "cancelled",
        ),
    )


# --- lines: list, cancel, fulfil, priority; reservations -----------------------------------


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
    _page_arguments(parser)


@command(
    "lines", "list", help="order lines by SKU, order or status", arguments=_lines_list_arguments
)
def lines_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = alloc.ListLinesRequest(sku=args.sku, order_id=args.order_id)
    if args.status:
        request.status = alloc_events.LineStatus.Value(f"LINE_STATUS_{args.status.upper()}")
    rows = _pages(ctx, ctx.allocation().ListLines, request, "lines", args.limit)
    return Result(rows, columns=LINE_COLUMNS)


@command(
    "lines", "cancel", help="cancel a line; its reserved units go to the next", arguments=_line_key
)
def lines_cancel(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.allocation().CancelLine,
        alloc.CancelLineRequest(order_id=args.order_id, line_id=args.line_id),
    )
    return Result({"released_quantity": reply.released_quantity, **to_dict(reply.line)})


def _fulfil_arguments(parser: argparse.ArgumentParser) -> None:
    _line_key(parser)
    parser.add_argument("quantity", type=_positive, help="units shipped (at most reserved)")
    parser.add_argument("--fulfillment-id", help="idempotency key (default: a new one, printed)")


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
        ),
    )
    return Result({"fulfillment_id": fulfillment_id, **to_dict(reply.line)})


def _priority_arguments(parser: argparse.ArgumentParser) -> None:
    _line_key(parser)
    parser.add_argument("priority", type=_priority, help="0-9, 9 first")


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
    return Result(to_dict(reply.line))


def _reservations_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku", default="")
    parser.add_argument("--order-id", default="")
    parser.add_argument("--line-id", default="")
    _page_arguments(parser)


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
    rows = _pages(ctx, ctx.allocation().ListReservations, request, "reservations", args.limit)
    return Result(
        rows,
        columns=(
            "reservation_id",
            "order_id",
            "line_id",
            "quantity",
            "rule",
            "queue_position",
            "cause",
            "created_at",
        ),
    )


# --- SKU summary and policy --------------------------------------------------------------------


@command("summary", help="free, reserved, backordered units and policy of a SKU", arguments=_sku)
def summary(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.allocation().GetSkuSummary, alloc.GetSkuSummaryRequest(sku=args.sku))
    return Result(to_dict(reply.summary))


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


@command("policy", help="set a SKU's fill policy and backorder rules", arguments=_policy_arguments)
def policy(ctx: Context, args: argparse.Namespace) -> Result:
    request = alloc.SetSkuPolicyRequest(sku=args.sku)
    if args.fill_policy:
        request.fill_policy = alloc.FillPolicy.Value(f"FILL_POLICY_{args.fill_policy.upper()}")
    if args.backorders_accepted is not None:
        request.backorders_accepted = args.backorders_accepted
    if args.backorder_limit is not None:
        request.backorder_limit = args.backorder_limit
    reply = ctx.call(ctx.allocation().SetSkuPolicy, request)
    return Result(to_dict(reply.summary))


# --- dead letters ------------------------------------------------------------------------------


def _dead_letter_service(ctx: Context, service: str) -> dead_letters_pb2_grpc.DeadLetterServiceStub:
    target = ctx.allocation_addr if service == "allocation" else ctx.inventory_addr
    return dead_letters_pb2_grpc.DeadLetterServiceStub(ctx.channel(target))


def _dead_letter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "service",
        choices=("allocation", "inventory"),
        help="whose inbox: allocation (inventory events) or inventory (line.fulfilled)",
    )


def _dead_letter_list_arguments(parser: argparse.ArgumentParser) -> None:
    _dead_letter_arguments(parser)
    parser.add_argument(
        "--limit", type=_positive, default=100, help="at most this many (default 100)"
    )


@command(
    "dead-letters",
    "list",
    help="events a service could not apply (left in place)",
    arguments=_dead_letter_list_arguments,
)
def dead_letters_list(ctx: Context, args: argparse.Namespace) -> Result:
    rows = _pages(
        ctx,
        _dead_letter_service(ctx, args.service).ListDeadLetters,
        dead_letters_pb2.ListDeadLettersRequest(),
        "dead_letters",
        args.limit,
    )
    return Result(
        rows,
        columns=("message_id", "type", "routing_key", "reason", "deaths", "published_at"),
    )


def _dead_letter_replay_arguments(parser: argparse.ArgumentParser) -> None:
    _dead_letter_arguments(parser)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="replay every dead letter")
    which.add_argument("--message-id", action="append", dest="message_ids", help="repeatable")


@command(
    "dead-letters",
    "replay",
    help="republish dead letters where they were first published, once each",
    arguments=_dead_letter_replay_arguments,
)
def dead_letters_replay(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        _dead_letter_service(ctx, args.service).ReplayDeadLetters,
        dead_letters_pb2.ReplayDeadLettersRequest(all=args.all, message_ids=args.message_ids or []),
    )
    return Result(to_dict(reply))

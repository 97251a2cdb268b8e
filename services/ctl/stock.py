"""backorderctl stock and inbound commands: the inventory service's side."""

from __future__ import annotations

import argparse
import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from backorder.inventory.v1 import events_pb2 as inventory_events
from backorder.inventory.v1 import inventory_pb2 as inv
from services.ctl.app import USAGE, CommandFailed, Context, Result, command
from services.ctl.commands import page_arguments, pages, positive, sku_argument


@command("stock", "get", help="on hand and inbound units of a SKU", arguments=sku_argument)
def stock_get(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.inventory().GetStock, inv.GetStockRequest(sku=args.sku))
    return Result.of(reply.stock)


def _receive_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("quantity", type=positive)
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
    return Result.of(reply, receipt_id=receipt_id)


STOCK_COLUMNS = ("sku", "on_hand", "inbound_quantity", "updated_at")


def _stock_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku-prefix", default="", help="only SKUs starting with this")
    page_arguments(parser)


@command("stock", "list", help="stock of every SKU, by SKU", arguments=_stock_list_arguments)
def stock_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListStockRequest(sku_prefix=args.sku_prefix)
    rows = pages(ctx, ctx.inventory().ListStock, request, "stocks", args.limit)
    return Result.rows(rows, columns=STOCK_COLUMNS)


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
    return Result.of(reply, adjustment_id=adjustment_id)


def _movements_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku", default="", help="only this SKU's movements")
    page_arguments(parser)


@command("stock", "movements", help="the ledger, newest first", arguments=_movements_arguments)
def stock_movements(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListMovementsRequest(sku=args.sku)
    rows = pages(ctx, ctx.inventory().ListMovements, request, "movements", args.limit)
    return Result.rows(rows, columns=("id", "kind", "quantity", "on_hand_after", "created_at"))


def _expect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbound_id")
    parser.add_argument("sku")
    parser.add_argument("quantity", type=positive)
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
    return Result.of(reply.inbound)


def _inbound_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbound_id")


@command("inbound", "cancel", help="cancel an expected receipt", arguments=_inbound_id)
def inbound_cancel(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(
        ctx.inventory().CancelInbound, inv.CancelInboundRequest(inbound_id=args.inbound_id)
    )
    return Result.of(reply.inbound)


def _inbound_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku", default="", help="only this SKU's inbound")
    parser.add_argument("--open-only", action="store_true", help="only inbound still expected")
    page_arguments(parser)


@command(
    "inbound", "list", help="expected receipts, by expected time", arguments=_inbound_list_arguments
)
def inbound_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListInboundRequest(sku=args.sku, open_only=args.open_only)
    rows = pages(ctx, ctx.inventory().ListInbound, request, "inbound", args.limit)
    return Result.rows(
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

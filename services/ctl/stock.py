"""backorderctl stock, inbound and locations commands: the inventory service's side."""

from __future__ import annotations

import argparse
import uuid

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from backorder.inventory.v1 import events_pb2 as inventory_events
from backorder.inventory.v1 import inventory_pb2 as inv
from services.ctl.app import USAGE, CommandFailed, Context, Result, by_location, command
from services.ctl.commands import page_arguments, pages, positive, sku_argument


def _location_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--location", default="", metavar="LOCATION_ID", help=help)


def _timestamp(text: str, name: str) -> Timestamp:
    stamp = Timestamp()
    try:
        stamp.FromJsonString(text)
    except ValueError:
        raise CommandFailed(
            f"{name} {text!r} is not RFC 3339, e.g. 2026-12-01T09:00:00Z", USAGE
        ) from None
    return stamp


@command(
    "stock", "get", help="on hand and inbound units of a SKU, per location", arguments=sku_argument
)
def stock_get(ctx: Context, args: argparse.Namespace) -> Result:
    reply = ctx.call(ctx.inventory().GetStock, inv.GetStockRequest(sku=args.sku))
    return _stock_result(reply.stock)


def _stock_result(stock: inv.Stock) -> Result:
    result = Result.of(stock)
    by_location(result.shown)
    return result


def _with_stock(reply: Message, **first: str) -> Result:
    """A reply that carries the SKU's stock (receive, adjust, transfer)."""
    result = Result.of(reply, **first)
    by_location(result.shown["stock"])
    return result


def _receive_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("quantity", type=positive)
    parser.add_argument(
        "--receipt-id",
        help="idempotency key; repeat it to retry safely (default: a new one, printed)",
    )
    parser.add_argument("--inbound-id", default="", help="the expected receipt this fulfils")
    parser.add_argument("--note", default="")
    _location_argument(parser, "where the units arrived (default: `default`, or the inbound's)")


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
            location_id=args.location,
        ),
    )
    return _with_stock(reply, receipt_id=receipt_id)


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
    _location_argument(parser, "where on hand changed (default: `default`)")


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
            location_id=args.location,
        ),
    )
    return _with_stock(reply, adjustment_id=adjustment_id)


def _transfer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sku")
    parser.add_argument("quantity", type=positive)
    parser.add_argument("--from", dest="from_location", required=True, metavar="LOCATION_ID")
    parser.add_argument("--to", dest="to_location", required=True, metavar="LOCATION_ID")
    parser.add_argument(
        "--expected-at",
        help="in transit until then, RFC 3339 (default: the units land at once); receive "
        "them with `stock receive --inbound-id TRANSFER_ID`",
    )
    parser.add_argument("--transfer-id", help="idempotency key (default: a new one, printed)")


@command("stock", "transfer", help="move units between locations", arguments=_transfer_arguments)
def stock_transfer(ctx: Context, args: argparse.Namespace) -> Result:
    transfer_id = args.transfer_id or f"ctl-{uuid.uuid4()}"
    request = inv.TransferStockRequest(
        transfer_id=transfer_id,
        sku=args.sku,
        from_location_id=args.from_location,
        to_location_id=args.to_location,
        quantity=args.quantity,
    )
    if args.expected_at:
        request.expected_at.CopyFrom(_timestamp(args.expected_at, "--expected-at"))
    reply = ctx.call(ctx.inventory().TransferStock, request)
    return _with_stock(reply, transfer_id=transfer_id)


def _movements_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sku", default="", help="only this SKU's movements")
    _location_argument(parser, "only movements at this location")
    page_arguments(parser)


@command("stock", "movements", help="the ledger, newest first", arguments=_movements_arguments)
def stock_movements(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListMovementsRequest(sku=args.sku, location_id=args.location)
    rows = pages(ctx, ctx.inventory().ListMovements, request, "movements", args.limit)
    columns: tuple[str, ...] = ("id", "kind", "quantity", "on_hand_after", "created_at")
    if args.location or any(m.location_id != "default" for m in rows):
        columns = ("id", "kind", "location_id", "quantity", "on_hand_after", "created_at")
    return Result.rows(rows, columns=columns)


def _expect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inbound_id")
    parser.add_argument("sku")
    parser.add_argument("quantity", type=positive)
    parser.add_argument(
        "expected_at", help="when it should arrive, RFC 3339 (e.g. 2026-12-01T09:00:00Z)"
    )
    _location_argument(parser, "where it is expected (default: `default`); never changes")


@command(
    "inbound", "expect", help="create or update an expected receipt", arguments=_expect_arguments
)
def inbound_expect(ctx: Context, args: argparse.Namespace) -> Result:
    expected_at = _timestamp(args.expected_at, "expected_at")
    reply = ctx.call(
        ctx.inventory().ExpectInbound,
        inv.ExpectInboundRequest(
            inbound_id=args.inbound_id,
            sku=args.sku,
            quantity=args.quantity,
            expected_at=expected_at,
            location_id=args.location,
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
    _location_argument(parser, "only inbound expected at this location")
    page_arguments(parser)


@command(
    "inbound", "list", help="expected receipts, by expected time", arguments=_inbound_list_arguments
)
def inbound_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListInboundRequest(
        sku=args.sku, open_only=args.open_only, location_id=args.location
    )
    rows = pages(ctx, ctx.inventory().ListInbound, request, "inbound", args.limit)
    where: tuple[str, ...] = ()
    if args.location or any(i.location_id != "default" for i in rows):
        where = ("location_id", "from_location_id")
    return Result.rows(
        rows,
        columns=(
            "inbound_id",
            *where,
            "quantity",
            "received_quantity",
            "open_quantity",
            "expected_at",
            "cancelled",
        ),
    )


# --- locations ---------------------------------------------------------------------------


def _yes_no(text: str) -> bool:
    if text.lower() not in ("yes", "no"):
        raise argparse.ArgumentTypeError(f"expected yes or no, got {text!r}")
    return text.lower() == "yes"


def _put_location_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("location_id")
    parser.add_argument("--name", default="", help="for people (default: keep; the id if new)")
    parser.add_argument(
        "--fill-rank", type=int, help="lower is used first (default: keep; 0 if new)"
    )
    parser.add_argument(
        "--active",
        type=_yes_no,
        metavar="yes|no",
        help="whether it takes receipts and promises stock (default: keep; yes if new)",
    )


@command(
    "locations",
    "put",
    help="create or change a location",
    arguments=_put_location_arguments,
)
def locations_put(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.PutLocationRequest(location_id=args.location_id, name=args.name)
    if args.fill_rank is not None:
        request.fill_rank = args.fill_rank
    if args.active is not None:
        request.active = args.active
    reply = ctx.call(ctx.inventory().PutLocation, request)
    return Result.of(reply.location)


@command(
    "locations",
    "list",
    help="every location, by fill rank",
    arguments=page_arguments,
)
def locations_list(ctx: Context, args: argparse.Namespace) -> Result:
    request = inv.ListLocationsRequest()
    rows = pages(ctx, ctx.inventory().ListLocations, request, "locations", args.limit)
    return Result.rows(
        rows, columns=("location_id", "name", "fill_rank", "active", "version", "updated_at")
    )

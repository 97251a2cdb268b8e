"""backorderctl commands: health and dead letters, and what every command module shares
(argument types, paging). Stock, inbound and locations commands are in services/ctl/stock.py; lines,
reservations, SKU summary and policy in services/ctl/lines.py.

Adding one: write a function taking (ctx, args), decorate it with `@command("group", "verb",
help=..., arguments=...)`, build the request from `args`, make the call with `ctx.call`, and
return `Result.of(reply...)` (one message) or `Result.rows(messages, columns=...)` (a table).
Conventions: the object a command acts on is positional (`stock get SKU`, `lines get ORDER
LINE`); what narrows a list is a flag (`lines list --sku SKU`, `inbound list --sku SKU`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backorder.operations.v1 import dead_letters_pb2, dead_letters_pb2_grpc
from services.ctl.app import Context, Result, command


def positive(text: str) -> int:
    """argparse type: a whole number of units, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of units >= 1, got {text!r}")
    return value


def priority(text: str) -> int:
    """argparse type: a priority from 0 to 9."""
    if not text.isdigit() or not 0 <= int(text) <= 9:
        raise argparse.ArgumentTypeError(f"expected a priority from 0 to 9, got {text!r}")
    return int(text)


def sku_argument(parser: argparse.ArgumentParser) -> None:
    """The SKU a command acts on, positional."""
    parser.add_argument("sku")


def page_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=positive, default=50, help="at most this many rows (default 50)"
    )


def pages(
    ctx: Context, method: Callable[..., Any], request: Message, field: str, limit: int
) -> list[Message]:
    """Follows next_page_token until `limit` items or the end of the list."""
    items: list[Message] = []
    while len(items) < limit:
        request.page_size = min(limit - len(items), 500)
        reply = ctx.call(method, request)
        items += getattr(reply, field)
        if not reply.next_page_token:
            break
        request.page_token = reply.next_page_token
    return items[:limit]


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
    parser.add_argument("--limit", type=positive, default=100, help="at most this many")


@command(
    "dead-letters",
    "list",
    help="events a service could not apply (left in place)",
    arguments=_dead_letter_list_arguments,
)
def dead_letters_list(ctx: Context, args: argparse.Namespace) -> Result:
    letters = pages(
        ctx,
        _dead_letter_service(ctx, args.service).ListDeadLetters,
        dead_letters_pb2.ListDeadLettersRequest(),
        "dead_letters",
        args.limit,
    )
    return Result.rows(
        letters,
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
    return Result.of(reply)

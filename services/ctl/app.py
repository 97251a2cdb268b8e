"""The frame of backorderctl: options, connections, output (table or JSON) and exit codes.

Commands live in services/ctl/commands.py (health, dead letters), stock.py (stock, inbound,
locations) and lines.py (lines, reservations, SKU summary and policy), one small function each,
registered with `@command(...)`; this module turns their `Result` into output and any failure
into a line on stderr and a distinct exit code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from backorder.allocation.v1 import allocation_pb2_grpc
from backorder.client import ClientSecurity, RetryPolicy, SecurityConfigError, blocking_channel
from backorder.inventory.v1 import inventory_pb2_grpc

PROG = "backorderctl"

# Exit codes, so scripts can tell outcomes apart.
OK = 0
FAILED = 1  # anything else (internal error, unexpected status)
USAGE = 2  # bad command line or client settings (argparse uses 2 as well)
NOT_FOUND = 3
REJECTED = 4  # invalid argument, failed precondition, already exists, out of range
UNAVAILABLE = 5  # server unreachable, timed out, not serving
DENIED = 6  # unauthenticated or permission denied
# The reader of stdout went away (`backorderctl … | head`): what a tool killed by SIGPIPE
# reports to the shell (128 + 13), so `set -o pipefail` scripts see it like any other tool.
PIPE_CLOSED = 141

EXIT_CODES: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: REJECTED,
    grpc.StatusCode.FAILED_PRECONDITION: REJECTED,
    grpc.StatusCode.ALREADY_EXISTS: REJECTED,
    grpc.StatusCode.OUT_OF_RANGE: REJECTED,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.UNAUTHENTICATED: DENIED,
    grpc.StatusCode.PERMISSION_DENIED: DENIED,
}


class CommandFailed(Exception):
    """A command's own failure: a message for stderr and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def to_dict(message: Message) -> dict[str, Any]:
    """The proto3 JSON form (what grpcurl prints): field names as in the proto, enums by
    name, timestamps RFC 3339, int64 as strings, fields at their default value included."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def for_people(message: Message) -> dict[str, Any]:
    """`to_dict`, with enum values named as people say them: `RESERVED`, not
    `LINE_STATUS_RESERVED` (the proto names stay in --json, where scripts rely on them)."""
    return _shorten_enums(to_dict(message), message.DESCRIPTOR)


def _shorten_enums(data: dict[str, Any], descriptor: Descriptor) -> dict[str, Any]:
    for field_ in descriptor.fields:
        if field_.name not in data:
            continue
        value = data[field_.name]
        if field_.enum_type is not None:
            prefix = _enum_prefix(field_.enum_type)
            if isinstance(value, list):
                data[field_.name] = [v.removeprefix(prefix) for v in value]
            else:
                data[field_.name] = value.removeprefix(prefix)
        elif field_.type == FieldDescriptor.TYPE_MESSAGE and field_.message_type.fields:
            # Well-known types (Timestamp, …) are strings in proto3 JSON: nothing to walk.
            if isinstance(value, dict):
                _shorten_enums(value, field_.message_type)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        _shorten_enums(item, field_.message_type)
    return data


def _enum_prefix(enum: EnumDescriptor) -> str:
    """LineStatus -> "LINE_STATUS_" (the style guide's prefix of every value)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


@dataclass
class Result:
    """What a command produced: `data` for --json, and how to show it to a person."""

    data: Any
    # A list of rows shows as a table with these columns; a dict as KEY  VALUE lines.
    columns: Sequence[str] = ()
    ok: bool = True  # False: print it, but exit UNAVAILABLE (e.g. a health check failed)
    # What a person sees, when it differs from `data` (enum names without their prefix).
    shown: Any = None

    @classmethod
    def of(cls, message: Message, **first: Any) -> Result:
        """One message, as FIELD VALUE lines; `first` are fields shown before it (e.g. the
        idempotency key a command made up)."""
        return cls({**first, **to_dict(message)}, shown={**first, **for_people(message)})

    @classmethod
    def rows(cls, messages: Sequence[Message], columns: Sequence[str]) -> Result:
        """Messages as a table with `columns`."""
        return cls(
            [to_dict(m) for m in messages],
            columns=columns,
            shown=[for_people(m) for m in messages],
        )

    def render(self) -> str:
        data = self.data if self.shown is None else self.shown
        if isinstance(data, list):
            return table(data, self.columns)
        return table(
            [{"field": k, "value": v} for k, v in flatten(data).items()], ("field", "value")
        )


def by_location(shown: dict[str, Any], key: str = "locations") -> None:
    """For people, per-location entries (`key`, each with a `location_id`) as
    `<key>.<id>.<figure>` lines; left out when only `default` is involved (a business with
    one place never sees locations)."""
    entries = shown.pop(key, [])
    if [e["location_id"] for e in entries] != ["default"]:
        shown[key] = {e.pop("location_id"): e for e in entries}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    columns = list(columns) or list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@dataclass
class Context:
    """Connections to both services, made on first use, and the per-call settings.

    The channels are the client package's (backorder.client): every call carries the token,
    gets the deadline (`timeout`, the whole call) and is retried on UNAVAILABLE with the same
    request, so the same idempotency key, under `retry`."""

    inventory_addr: str
    allocation_addr: str
    security: ClientSecurity
    timeout: float
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    def channel(self, target: str) -> grpc.Channel:
        if target not in self._channels:
            self._channels[target] = blocking_channel(
                target, self.security, timeout=self.timeout, retry=self.retry
            )
        return self._channels[target]

    def inventory(self) -> inventory_pb2_grpc.InventoryServiceStub:
        return inventory_pb2_grpc.InventoryServiceStub(self.channel(self.inventory_addr))

    def allocation(self) -> allocation_pb2_grpc.AllocationServiceStub:
        return allocation_pb2_grpc.AllocationServiceStub(self.channel(self.allocation_addr))

    def call(self, method: Callable[..., Any], request: Message) -> Any:
        """One unary RPC (the channel adds the token, the deadline and the retries)."""
        return method(request, timeout=self.timeout)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


Run = Callable[[Context, argparse.Namespace], Result]


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    help: str
    run: Run
    arguments: Callable[[argparse.ArgumentParser], None] | None


COMMANDS: list[Command] = []


def command(
    *path: str, help: str, arguments: Callable[[argparse.ArgumentParser], None] | None = None
) -> Callable[[Run], Run]:
    """Registers `backorderctl <path…>`; `arguments` adds its own arguments to its parser."""

    def register(run: Run) -> Run:
        COMMANDS.append(Command(path, help, run, arguments))
        return run

    return register


def _connection_options() -> argparse.ArgumentParser:
    """Options accepted before or after the command; defaults come from the environment.

    They are parsed in a pass of their own over the whole command line (`main`), so each
    command's usage shows only its own arguments and `backorderctl --help` lists these once.
    """
    # No abbreviations: `--tok` must not be taken for --token when a command has --tokens.
    common = argparse.ArgumentParser(prog=PROG, add_help=False, allow_abbrev=False)
    group = common.add_argument_group(
        "connection and output (before or after the command; flags override the variables)"
    )
    suppress: Any = argparse.SUPPRESS  # so a leaf parser does not reset what the root parsed
    group.add_argument("--json", action="store_true", default=suppress, help="JSON output")
    group.add_argument("--inventory-addr", default=suppress, help="HOST:PORT [INVENTORY_GRPC_ADDR]")
    group.add_argument(
        "--allocation-addr", default=suppress, help="HOST:PORT [ALLOCATION_GRPC_ADDR]"
    )
    group.add_argument(
        "--token-file", default=suppress, help="file with the bearer token [BACKORDER_TOKEN_FILE]"
    )
    group.add_argument(
        "--token",
        default=suppress,
        help="bearer token [BACKORDER_TOKEN]; prefer the variable or --token-file, "
        "a flag is visible to other users of the machine",
    )
    group.add_argument(
        "--tls", action="store_true", default=suppress, help="use TLS [BACKORDER_TLS=1]"
    )
    group.add_argument("--ca-file", default=suppress, help="CA of the servers [BACKORDER_CA_FILE]")
    group.add_argument(
        "--cert-file", default=suppress, help="client cert, mTLS [BACKORDER_CLIENT_CERT_FILE]"
    )
    group.add_argument(
        "--key-file", default=suppress, help="client key, mTLS [BACKORDER_CLIENT_KEY_FILE]"
    )
    group.add_argument(
        "--server-name",
        default=suppress,
        help="name on the server certificates, if not the host [BACKORDER_TLS_SERVER_NAME]",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=suppress,
        help="seconds per call, retries included (default 10)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=suppress,
        help="times a call is sent again while a service is UNAVAILABLE, with the same "
        "idempotency key (default 4; 0: never)",
    )
    return common


ENV_DEFAULTS = {
    "inventory_addr": ("INVENTORY_GRPC_ADDR", "127.0.0.1:50051"),
    "allocation_addr": ("ALLOCATION_GRPC_ADDR", "127.0.0.1:50052"),
    "token": ("BACKORDER_TOKEN", None),
    "token_file": ("BACKORDER_TOKEN_FILE", None),
    "ca_file": ("BACKORDER_CA_FILE", None),
    "cert_file": ("BACKORDER_CLIENT_CERT_FILE", None),
    "key_file": ("BACKORDER_CLIENT_KEY_FILE", None),
    "server_name": ("BACKORDER_TLS_SERVER_NAME", None),
}


LEAF_EPILOG = f"connection and output options (--json, …): {PROG} --help"


def build_parser() -> argparse.ArgumentParser:
    """The command tree; the root parser shows the connection options in its --help."""
    # No abbreviations here either: the root sees every argument, and a command's `--to`
    # must not be taken for a prefix of --token.
    parser = argparse.ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        usage=f"{PROG} [-h] [OPTIONS] COMMAND … [OPTIONS]",
        parents=[_connection_options()],
        description="Operate the Backorder services over gRPC.",
        epilog="exit codes: 0 ok, 1 other error, 2 usage, 3 not found, "
        "4 rejected (invalid, precondition, already exists), 5 unavailable, "
        "6 unauthenticated or permission denied, 141 output pipe closed",
    )
    groups: dict[tuple[str, ...], argparse._SubParsersAction[argparse.ArgumentParser]] = {
        (): parser.add_subparsers(
            dest="command", metavar="COMMAND", required=True, prog=f"{PROG} [OPTIONS]"
        )
    }
    # --help lists them as an operator meets them (modules register in import order).
    for cmd in sorted(COMMANDS, key=_help_rank):
        for depth in range(1, len(cmd.path)):
            prefix = cmd.path[:depth]
            if prefix not in groups:
                verbs = [c.path[depth] for c in COMMANDS if c.path[:depth] == prefix]
                group_parser = groups[prefix[:-1]].add_parser(prefix[-1], help=" | ".join(verbs))
                groups[prefix] = group_parser.add_subparsers(
                    dest=f"command_{depth}",
                    metavar="COMMAND",
                    required=True,
                    prog=f"{PROG} [OPTIONS] {' '.join(prefix)}",
                )
        leaf = groups[cmd.path[:-1]].add_parser(
            cmd.path[-1], help=cmd.help, description=cmd.help, epilog=LEAF_EPILOG
        )
        if cmd.arguments is not None:
            cmd.arguments(leaf)
        leaf.set_defaults(run=cmd.run)
    return parser


HELP_ORDER = (
    "health",
    "stock",
    "inbound",
    "locations",
    "lines",
    "orders",
    "reservations",
    "summary",
    "policy",
)


def _help_rank(cmd: Command) -> int:
    return HELP_ORDER.index(cmd.path[0]) if cmd.path[0] in HELP_ORDER else len(HELP_ORDER)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    # The connection options first, wherever they stand; then the command tree parses the rest.
    connection, rest = _connection_options().parse_known_args(argv)
    args = build_parser().parse_args(rest, namespace=connection)
    # A token given by flag (either form) wins over both variables.
    flagged_token = any(getattr(args, n, None) for n in ("token", "token_file"))
    for name, (variable, default) in ENV_DEFAULTS.items():
        if getattr(args, name, None) is None:
            from_env = None if flagged_token and name.startswith("token") else env.get(variable)
            setattr(args, name, from_env or default)
    as_json = bool(getattr(args, "json", False))
    try:
        security = ClientSecurity.from_options(
            tls=bool(getattr(args, "tls", False))
            or env.get("BACKORDER_TLS", "").lower() in ("1", "true", "yes"),
            ca_file=args.ca_file,
            cert_file=args.cert_file,
            key_file=args.key_file,
            server_name=args.server_name,
            token=args.token,
            token_file=args.token_file,
        )
    except SecurityConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return USAGE
    timeout, retries = getattr(args, "timeout", 10.0), getattr(args, "retries", 4)
    if timeout <= 0 or retries < 0:
        print(f"{PROG}: --timeout must be positive and --retries at least 0", file=sys.stderr)
        return USAGE
    context = Context(
        args.inventory_addr,
        args.allocation_addr,
        security,
        timeout,
        RetryPolicy(attempts=retries + 1),
    )
    try:
        result = args.run(context, args)
    except grpc.RpcError as exc:
        return _report_rpc_error(exc)
    except CommandFailed as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.code
    finally:
        context.close()
    try:
        print(json.dumps(result.data, indent=2) if as_json else result.render(), flush=True)
    except BrokenPipeError:
        # The reader is gone (`| head`, `| grep -q`): nothing to tell anyone. Point stdout at
        # /dev/null so the interpreter's final flush does not raise the same error again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED
    return OK if result.ok else UNAVAILABLE


def _report_rpc_error(exc: grpc.RpcError) -> int:
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    print(f"{PROG}: {code.name}: {details}", file=sys.stderr)
    if isinstance(exc, grpc.Call):
        status = rpc_status.from_call(exc)
        for detail in status.details if status else []:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                for violation in bad.field_violations:
                    print(f"  {violation.field}: {violation.description}", file=sys.stderr)
    return EXIT_CODES.get(code, FAILED)

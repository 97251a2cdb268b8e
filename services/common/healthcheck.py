"""Ask a gRPC server's standard health service whether it is serving.

Container healthchecks (deploy/docker-compose.yml) and operators run it as

    python -m services.common.healthcheck HOST:PORT [--service NAME] [--timeout SECONDS]

It calls ``grpc.health.v1.Health/Check`` once, prints one line and exits 0 when the answer
is SERVING, 1 for anything else (NOT_SERVING, unknown service, unreachable, timed out, bad
arguments: Docker reserves exit code 2).
The empty service name (the default) asks about the server as a whole.

It speaks plaintext gRPC unless TLS is asked for: ``--tls``, or a CA / client certificate
given by flag or by the client variables backorderctl reads (BACKORDER_TLS, BACKORDER_CA_FILE,
BACKORDER_CLIENT_CERT_FILE, BACKORDER_CLIENT_KEY_FILE, BACKORDER_TLS_SERVER_NAME). Health
checks need no bearer token.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common.security import ClientSecurity, SecurityConfigError

DEFAULT_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class HealthResult:
    """Outcome of one health check: whether it passed and a one-line description."""

    serving: bool
    message: str


def check_health(
    target: str,
    service: str = "",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    security: ClientSecurity | None = None,
) -> HealthResult:
    """Call Health/Check on ``target`` (HOST:PORT) for ``service`` within ``timeout`` seconds."""
    label = f"{target} {service or '(server)'}"
    request = health_pb2.HealthCheckRequest(service=service)
    with (security or ClientSecurity()).channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(request, timeout=timeout)
        except grpc.RpcError as exc:
            # The errors the stub raises are also grpc.Call objects, which carry the status.
            if isinstance(exc, grpc.Call):
                code = exc.code()
                details = exc.details()
                name = code.name if code is not None else "UNKNOWN"
                return HealthResult(False, f"{label}: {name}" + (f": {details}" if details else ""))
            return HealthResult(False, f"{label}: {exc}")
    status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return HealthResult(serving, f"{label}: {status_name}")


def _target(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return seconds


class _ArgumentParser(argparse.ArgumentParser):
    # Docker reserves healthcheck exit code 2, argparse's usual code for bad arguments.
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check from the command line; return the process exit code."""
    parser = _ArgumentParser(
        prog="python -m services.common.healthcheck",
        description="Exit 0 when a gRPC server reports SERVING through grpc.health.v1, else 1.",
    )
    parser.add_argument("target", type=_target, help="server address, HOST:PORT")
    parser.add_argument(
        "--service", default="", help="service name to ask about (default: the whole server)"
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds to wait for the answer (default: {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    env = os.environ
    parser.add_argument(
        "--tls",
        action="store_true",
        default=env.get("BACKORDER_TLS", "") in ("1", "true", "yes"),
        help="use TLS (implied by --ca-file/--cert-file)",
    )
    parser.add_argument("--ca-file", default=env.get("BACKORDER_CA_FILE"), help="trusted CA")
    parser.add_argument(
        "--cert-file", default=env.get("BACKORDER_CLIENT_CERT_FILE"), help="client cert (mTLS)"
    )
    parser.add_argument(
        "--key-file", default=env.get("BACKORDER_CLIENT_KEY_FILE"), help="client key (mTLS)"
    )
    parser.add_argument(
        "--server-name",
        default=env.get("BACKORDER_TLS_SERVER_NAME"),
        help="name the server certificate must carry, when it is not the target's host",
    )
    args = parser.parse_args(argv)
    try:
        security = ClientSecurity.from_options(
            tls=args.tls,
            ca_file=args.ca_file,
            cert_file=args.cert_file,
            key_file=args.key_file,
            server_name=args.server_name,
        )
    except SecurityConfigError as exc:
        parser.error(str(exc))
    result = check_health(args.target, args.service, args.timeout, security)
    print(result.message, file=sys.stdout if result.serving else sys.stderr)
    return 0 if result.serving else 1


if __name__ == "__main__":
    sys.exit(main())

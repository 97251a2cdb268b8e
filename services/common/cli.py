"""The `serve` / `migrate` command line both service entry points share."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from services.common import db, logs
from services.common.runtime import InsecureBindRefused, check_bind
from services.common.settings import ServiceSettings, SettingsError, redact_url


def main(
    service: str,
    migrations_package: str,
    serve: Callable[[ServiceSettings, argparse.Namespace], Coroutine[Any, Any, None]],
    argv: list[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=f"backorder-{service}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="migrate if needed, then serve gRPC and events")
    serve_cmd.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext gRPC without tokens on a non-loopback address (trusted networks)",
    )
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    args = parser.parse_args(argv)

    try:
        settings = ServiceSettings.from_env(service)
    except SettingsError as exc:
        print(f"backorder-{service}: bad setting: {exc}", file=sys.stderr)
        return 2
    logs.configure(service, settings.log_level)

    try:
        if args.command == "migrate":
            applied = asyncio.run(db.migrate(settings.database_url, migrations_package))
            target = redact_url(settings.database_url)
            print(
                f"{target}: {len(applied)} migration(s) applied"
                + "".join(f"\n  {name}" for name in applied)
            )
            return 0
        check_bind(settings.grpc_addr, insecure=args.insecure, security=settings.security)
        asyncio.run(serve(settings, args))
        return 0
    except InsecureBindRefused as exc:
        print(f"backorder-{service}: {exc}", file=sys.stderr)
        return 2
    except db.MigrationChanged as exc:
        print(f"backorder-{service}: cannot migrate: {exc}", file=sys.stderr)
        return 1
    except (OSError, ConnectionError) as exc:
        print(f"backorder-{service}: cannot start: {exc}", file=sys.stderr)
        return 1

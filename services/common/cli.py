"""The `serve` / `migrate` command line both service entry points share."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from services.common import amqp, db, logs, paging, tracing
from services.common.runtime import InsecureBindRefused, check_bind
from services.common.settings import ServiceSettings, SettingsError, redact_url

log = logging.getLogger(__name__)


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
        help=(
            "allow a non-loopback address without authentication (tokens or mTLS): "
            "trusted networks only"
        ),
    )
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    args = parser.parse_args(argv)

    try:
        settings = ServiceSettings.from_env(service)
    except SettingsError as exc:
        print(f"backorder-{service}: bad setting: {exc}", file=sys.stderr)
        return 2
    logs.configure(service, settings.log_level)
    if args.command == "serve":
        try:
            tracing.configure(service)
        except SettingsError as exc:
            print(f"backorder-{service}: bad setting: {exc}", file=sys.stderr)
            return 2

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
        asyncio.run(_start_and_serve(settings, args, migrations_package, serve))
        return 0
    except InsecureBindRefused as exc:
        print(f"backorder-{service}: {exc}", file=sys.stderr)
        return 2
    except db.MigrationChanged as exc:
        print(f"backorder-{service}: cannot migrate: {exc}", file=sys.stderr)
        return 1
    except amqp.BrokerRefused as exc:
        print(
            f"backorder-{service}: AMQP_URL={redact_url(settings.amqp_url)}: {exc}",
            file=sys.stderr,
        )
        return 2
    except (OSError, ConnectionError) as exc:
        print(f"backorder-{service}: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        tracing.shutdown()


async def _start_and_serve(
    settings: ServiceSettings,
    args: argparse.Namespace,
    migrations_package: str,
    serve: Callable[[ServiceSettings, argparse.Namespace], Coroutine[Any, Any, None]],
) -> None:
    """What must hold before serving: the database migrated, the page-token key loaded, and
    RabbitMQ taking us. A broker that is not up yet is waited for (SIGTERM ends the wait at
    once); one that refuses us stops start-up (amqp.BrokerRefused): health never says
    SERVING for a service that can neither publish nor consume."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Until serve() installs its own handlers for the same signals.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await db.migrate(settings.database_url, migrations_package)
        paging.use_key(await paging.load_key(settings.database_url))
        await amqp.wait_for_broker(settings.amqp_url, stopping)
    finally:
        # Back to the default (terminate) until serve() installs its graceful stop, so that
        # no signal is swallowed in between.
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    if stopping.is_set():
        log.info("stopped before serving")
        return
    await serve(settings, args)

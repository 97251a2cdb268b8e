"""Composition root of the inventory service: settings -> pool -> relay -> gRPC server."""

from __future__ import annotations

import argparse
import sys

from services.common import db, metrics, runtime
from services.common.cli import main as cli_main
from services.common.outbox import OutboxRelay
from services.common.settings import ServiceSettings
from services.inventory.entrypoints import grpc as grpc_entry

MIGRATIONS = "services.inventory.migrations"


async def serve(settings: ServiceSettings, args: argparse.Namespace) -> None:
    await db.migrate(settings.database_url, MIGRATIONS)
    pool = await db.create_pool(settings.database_url)
    relay = OutboxRelay(settings.database_url, settings.amqp_url)
    try:
        await runtime.serve(
            grpc_addr=settings.grpc_addr,
            metrics_addr=settings.metrics_addr,
            register=lambda server: grpc_entry.register(server, pool),
            workers=[runtime.Worker("outbox-relay", relay.run, relay.stop)],
            insecure=args.insecure,
            security=settings.security,
            samplers=metrics.service_samplers(pool, settings),
        )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    return cli_main("inventory", MIGRATIONS, serve, argv)


if __name__ == "__main__":
    sys.exit(main())

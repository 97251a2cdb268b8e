"""Composition root of the inventory service:
settings -> pool -> line.fulfilled consumer + outbox relay + stock change feed -> gRPC server."""

from __future__ import annotations

import argparse
import functools
import sys

from backorder.allocation.v1 import events_pb2 as allocation_events
from services.common import db, dead_letter_service, metrics, runtime
from services.common.amqp import INVENTORY_EXCHANGE, INVENTORY_INBOX
from services.common.change_feed import ChangeFeed
from services.common.cli import main as cli_main
from services.common.consumer import EventConsumer, Route
from services.common.outbox import OutboxRelay
from services.common.settings import ServiceSettings
from services.inventory import handlers
from services.inventory.adapters.postgres import STOCK_CHANNEL
from services.inventory.entrypoints import grpc as grpc_entry

MIGRATIONS = "services.inventory.migrations"


async def serve(settings: ServiceSettings, args: argparse.Namespace) -> None:
    await db.migrate(settings.database_url, MIGRATIONS)
    pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_size)
    relay = OutboxRelay(settings.database_url, settings.amqp_url, [INVENTORY_EXCHANGE])
    feed = ChangeFeed(settings.database_url, STOCK_CHANNEL)
    consumer = EventConsumer(
        settings.amqp_url,
        INVENTORY_INBOX,
        {
            allocation_events.LineFulfilled.DESCRIPTOR.full_name: Route(
                allocation_events.LineFulfilled, functools.partial(handlers.line_fulfilled, pool)
            ),
        },
    )
    try:
        await runtime.serve(
            grpc_addr=settings.grpc_addr,
            metrics_addr=settings.metrics_addr,
            register=lambda server: [
                *grpc_entry.register(server, pool, feed),
                *dead_letter_service.register(server, settings.amqp_url, INVENTORY_INBOX),
            ],
            workers=[
                runtime.Worker("outbox-relay", relay.run, relay.stop),
                runtime.Worker("allocation-events", consumer.run, consumer.stop),
                runtime.Worker("stock-feed", feed.run, feed.stop, feeds_streams=True),
            ],
            insecure=args.insecure,
            security=settings.security,
            samplers=metrics.service_samplers(pool, settings, INVENTORY_INBOX),
        )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    return cli_main("inventory", MIGRATIONS, serve, argv)


if __name__ == "__main__":
    sys.exit(main())

"""Composition root of the allocation service:
settings -> pool -> inventory-event consumer + outbox relay -> gRPC server."""

from __future__ import annotations

import argparse
import functools
import sys

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers, metrics
from services.allocation.entrypoints import grpc as grpc_entry
from services.common import db, dead_letter_service, runtime
from services.common.amqp import ALLOCATION_EXCHANGE, ALLOCATION_INBOX
from services.common.cli import main as cli_main
from services.common.consumer import EventConsumer, Route
from services.common.outbox import OutboxRelay
from services.common.settings import ServiceSettings

MIGRATIONS = "services.allocation.migrations"


async def serve(settings: ServiceSettings, args: argparse.Namespace) -> None:
    await db.migrate(settings.database_url, MIGRATIONS)
    pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_size)
    # Its outbox has late_fields: Allocate's one-round-trip path leaves the queue position
    # of line.backordered to the relay (adapters/placement.py).
    relay = OutboxRelay(
        settings.database_url, settings.amqp_url, [ALLOCATION_EXCHANGE], late_fields=True
    )
    consumer = EventConsumer(
        settings.amqp_url,
        ALLOCATION_INBOX,
        {
            message.DESCRIPTOR.full_name: Route(message, functools.partial(handle, pool))
            for message, handle in (
                (inventory_events.StockReceived, handlers.stock_received),
                (inventory_events.StockAdjusted, handlers.stock_adjusted),
                (inventory_events.StockIssued, handlers.stock_issued),
                (inventory_events.InboundUpdated, handlers.inbound_updated),
                (inventory_events.StockTransferred, handlers.stock_transferred),
                (inventory_events.LocationUpdated, handlers.location_updated),
            )
        },
    )
    try:
        await runtime.serve(
            grpc_addr=settings.grpc_addr,
            metrics_addr=settings.metrics_addr,
            register=lambda server: [
                *grpc_entry.register(server, pool),
                *dead_letter_service.register(server, settings.amqp_url, ALLOCATION_INBOX),
            ],
            workers=[
                runtime.Worker("outbox-relay", relay.run, relay.stop),
                runtime.Worker("inventory-events", consumer.run, consumer.stop),
            ],
            insecure=args.insecure,
            security=settings.security,
            samplers=metrics.samplers(pool, settings),
        )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    return cli_main("allocation", MIGRATIONS, serve, argv)


if __name__ == "__main__":
    sys.exit(main())

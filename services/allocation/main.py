"""Composition root of the allocation service:
settings -> pool -> inventory-event consumer + outbox relay -> gRPC server."""

from __future__ import annotations

import argparse
import asyncio
import functools
import signal
import sys

from backorder.inventory.v1 import events_pb2 as inventory_events
from services.allocation import handlers, metrics
from services.allocation.adapters import planning as planning_db
from services.allocation.entrypoints import grpc as grpc_entry
from services.allocation.planning.child import PlanningChild
from services.allocation.planning.settings import PlanningSettings
from services.common import db, dead_letter_service, runtime
from services.common.amqp import ALLOCATION_EXCHANGE, ALLOCATION_INBOX
from services.common.cli import Command
from services.common.cli import main as cli_main
from services.common.consumer import EventConsumer, Route
from services.common.outbox import OutboxRelay
from services.common.settings import ServiceSettings

MIGRATIONS = "services.allocation.migrations"


async def serve(settings: ServiceSettings, args: argparse.Namespace) -> None:
    planning = PlanningSettings.from_env()
    await db.migrate(settings.database_url, MIGRATIONS)
    pool = await db.create_pool(settings.database_url, max_size=settings.db_pool_size)
    await planning_db.use_time_zone(pool, planning.time_zone)
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
    workers = [
        runtime.Worker("outbox-relay", relay.run, relay.stop),
        runtime.Worker("inventory-events", consumer.run, consumer.stop),
    ]
    if planning.worker:
        child = PlanningChild()
        workers.append(runtime.Worker("planning-worker", child.run, child.stop))
    try:
        await runtime.serve(
            grpc_addr=settings.grpc_addr,
            metrics_addr=settings.metrics_addr,
            register=lambda server: [
                *grpc_entry.register(server, pool),
                *dead_letter_service.register(server, settings.amqp_url, ALLOCATION_INBOX),
            ],
            workers=workers,
            insecure=args.insecure,
            security=settings.security,
            samplers=metrics.samplers(pool, settings),
        )
    finally:
        await pool.close()


async def plan(settings: ServiceSettings, args: argparse.Namespace) -> None:
    """The planning worker (docs/spec.md §9) until SIGTERM/SIGINT, or one refresh (--once)."""
    # Imported here: it loads the forecasting library, which `serve` never does.
    from services.allocation.planning.worker import PlanningWorker

    worker = PlanningWorker(settings.database_url, PlanningSettings.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run(once=args.once)


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="refresh every SKU once, then exit (for cron, tests)"
    )


COMMANDS = {
    "plan": Command(
        "run the planning worker: forecasts and reorder points (one at a time across replicas)",
        plan,
        _plan_arguments,
    )
}


def main(argv: list[str] | None = None) -> int:
    return cli_main(
        "allocation", MIGRATIONS, serve, argv, COMMANDS, check_settings=PlanningSettings.from_env
    )


if __name__ == "__main__":
    sys.exit(main())

"""Composition root of the allocation service:
settings -> pool -> inventory-event consumer + outbox relay -> gRPC server."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
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
# How much lower the planning worker's CPU priority is than the service's (nice(2) steps): the
# lowest there is, so its Python takes the CPU only when the server leaves it.
WORKER_NICENESS = 19


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

    # Refreshing is background work: at a lower CPU priority than the gRPC server's, so that
    # a refresh running beside Allocate takes only the CPU the server leaves (docs/planning.md).
    os.nice(WORKER_NICENESS)
    if hasattr(os, "SCHED_IDLE"):
        # Linux: the idle class also gives way at once to a server thread that wakes up (a
        # nice +19 task may finish its slice first); it still gets a small share of a busy
        # CPU, so a pass keeps going, slowly, however busy the machine is.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    worker = PlanningWorker(settings.database_url, PlanningSettings.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    await worker.run(once=args.once)


def _plan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--once", action="store_true", help="refresh every SKU once, then exit (for cron, tests)"
    )


async def backtest(settings: ServiceSettings, args: argparse.Namespace) -> None:
    """Prints how each method's forecasts would have done on the last --holdout-days."""
    from services.allocation.planning.backtest import backtest_all

    pool = await db.create_pool(settings.database_url, max_size=2)
    try:
        await planning_db.use_time_zone(pool, PlanningSettings.from_env().time_zone)
        results = await backtest_all(pool, args.holdout_days)
    finally:
        await pool.close()
    print(f"{'method':<12} {'skus':>6} {'mae/day':>9} {'bias/day':>9} {'wape':>6}")
    for r in results:
        wape = "-" if r.wape is None else f"{r.wape:.2f}"
        print(f"{r.method:<12} {r.skus:>6} {r.mean_absolute_error:>9.3f} {r.bias:>9.3f} {wape:>6}")


def _holdout_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 365:
        raise argparse.ArgumentTypeError(f"expected whole days from 1 to 365, got {text!r}")
    return int(text)


def _backtest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--holdout-days",
        type=_holdout_days,
        default=28,
        help="days before today held out and compared with the forecast (default 28)",
    )


COMMANDS = {
    "plan": Command(
        "run the planning worker: forecasts and reorder points (one at a time across replicas)",
        plan,
        _plan_arguments,
    ),
    "backtest": Command(
        "score each forecasting method on the last --holdout-days of every SKU's history",
        backtest,
        _backtest_arguments,
    ),
}


def main(argv: list[str] | None = None) -> int:
    return cli_main(
        "allocation", MIGRATIONS, serve, argv, COMMANDS, check_settings=PlanningSettings.from_env
    )


if __name__ == "__main__":
    sys.exit(main())

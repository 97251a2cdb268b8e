"""Deletes all of Backorder's data on a development machine: both databases and the broker's
contract topology (queues, their dead-letter queues, both exchanges). The next `serve` or
`migrate` creates them anew, empty.

Run by `scripts/down --reset` after it stopped the services; on its own:
`python -m services.reset` (database and AMQP URLs from the environment, as the services
read them). Never point it at a production deployment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

import aio_pika
import asyncpg

from services.common import amqp
from services.common.amqp import ALLOCATION_EXCHANGE, CONTRACT_QUEUES, INVENTORY_EXCHANGE
from services.common.db import database_name, maintenance_url
from services.common.settings import DEFAULTS, SettingsError, redact_url

DATABASE_SETTINGS = ("INVENTORY_DATABASE_URL", "ALLOCATION_DATABASE_URL")


async def drop_database(url: str) -> bool:
    """Drops the URL's database (ending sessions still connected to it). Returns whether
    it existed."""
    name = database_name(url)
    conn = await asyncpg.connect(maintenance_url(url))
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", name):
            return False
        # Identifiers cannot be parameters; quote_ident makes the name safe.
        quoted = await conn.fetchval("select quote_ident($1)", name)
        await conn.execute(f"drop database {quoted} with (force)")
        return True
    finally:
        await conn.close()


async def delete_topology(amqp_url: str) -> list[str]:
    """Deletes the contract queues, their dead-letter queues and both exchanges; returns
    what existed. Queues the operator bound to the exchanges lose their bindings only."""
    deleted = []
    connection = await amqp.connect(amqp_url)
    async with connection:
        queues = [q.name for q in CONTRACT_QUEUES] + [q.dead_letter_queue for q in CONTRACT_QUEUES]
        for name in queues:
            # RabbitMQ deletes what is missing without complaint, so ask first (passively:
            # a missing one closes the channel, hence a channel per name).
            channel = await connection.channel()
            try:
                await channel.declare_queue(name, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                continue
            await channel.queue_delete(name)
            deleted.append(f"queue {name}")
        for name in (INVENTORY_EXCHANGE, ALLOCATION_EXCHANGE):
            channel = await connection.channel()
            try:
                await channel.declare_exchange(name, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                continue
            await channel.exchange_delete(name)
            deleted.append(f"exchange {name}")
    return deleted


async def reset(env: Mapping[str, str]) -> None:
    for setting in DATABASE_SETTINGS:
        url = env.get(setting) or DEFAULTS[setting]
        dropped = await drop_database(url)
        print(f"database {database_name(url)}: {'dropped' if dropped else 'did not exist'}")
    amqp_url = env.get("AMQP_URL") or DEFAULTS["AMQP_URL"]
    deleted = await delete_topology(amqp_url)
    print(f"{redact_url(amqp_url)}: deleted {', '.join(deleted) or 'nothing (none existed)'}")


def main() -> int:
    try:
        asyncio.run(reset(os.environ))
    except (OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPError, SettingsError) as exc:
        print(f"reset failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Isolation on the real Postgres and RabbitMQ: a database and a vhost per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from urllib.parse import quote

import asyncpg

PG_SERVER = os.environ.get("TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
AMQP_SERVER = os.environ.get("TEST_AMQP_SERVER", "amqp://guest:guest@127.0.0.1:5672")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def database_url(name: str) -> str:
    return f"{PG_SERVER}/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(database_url("postgres"))
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


class Vhost:
    """A RabbitMQ vhost of its own, so exchanges and queues of one run meet no other's."""

    def __init__(self) -> None:
        self.name = unique("bo-test")
        self.url = f"{AMQP_SERVER}/{quote(self.name, safe='')}"

    def create(self) -> None:
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            raise RuntimeError("rabbitmqctl not found: the tests make a vhost per run with it")
        subprocess.run([ctl, "-q", "add_vhost", self.name], check=True, timeout=60)
        subprocess.run(
            [ctl, "-q", "set_permissions", "-p", self.name, "guest", ".*", ".*", ".*"],
            check=True,
            timeout=60,
        )

    def delete(self) -> None:
        ctl = shutil.which("rabbitmqctl")
        if ctl:
            subprocess.run([ctl, "-q", "delete_vhost", self.name], check=False, timeout=60)

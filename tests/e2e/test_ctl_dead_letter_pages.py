"""`backorderctl dead-letters list` follows pages: more dead letters than one call may serve
(1,000) are all listed, once each; `replay` by id finds them wherever they are."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any

import aio_pika

from services.common.amqp import INVENTORY_INBOX
from tests.e2e.conftest import System
from tests.e2e.test_ctl import ctl
from tests.support.servers import Vhost, unique

LETTERS = 1_010  # over the 1,000 one ListDeadLetters call serves


async def test_dead_letters_list_follows_pages(system: System, vhost: Vhost) -> None:
    sent = [unique("many") for _ in range(LETTERS)]
    connection = await aio_pika.connect(vhost.url)
    async with connection:
        channel = await connection.channel()
        for message_id in sent:
            await channel.default_exchange.publish(
                aio_pika.Message(b"junk", message_id=message_id, type="test.NotAnEvent"),
                INVENTORY_INBOX.name,
            )

    def listed() -> list[dict[str, Any]]:
        outcome = ctl(system, "--json", "dead-letters", "list", "inventory", "--limit", "5000")
        assert outcome.code == 0, outcome.stderr
        rows: list[dict[str, Any]] = outcome.json()  # type: ignore[assignment]
        return rows

    try:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            rows = await asyncio.to_thread(listed)
            ours = [row["message_id"] for row in rows if row["message_id"] in set(sent)]
            if len(ours) >= LETTERS or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        # Each once (the consumer rejects concurrently, so the dead-letter queue's order need
        # not be the publication order).
        assert len(ours) == len(set(ours)) == LETTERS, f"{len(set(ours))} of {LETTERS} listed"
        limited = await asyncio.to_thread(
            ctl, system, "--json", "dead-letters", "list", "inventory", "--limit", "1005"
        )
        assert limited.code == 0, limited.stderr
        assert len(limited.json()) == 1005  # type: ignore[arg-type]
        # Replay by id finds letters wherever they are in the queue, not only among the
        # first 1,000 it holds: 1,000 ids of 1,010 (the most one call takes) are all replayed.
        wanted = ours[5:1005]
        replay = [arg for message_id in wanted for arg in ("--message-id", message_id)]
        replayed = await asyncio.to_thread(
            ctl, system, "--json", "dead-letters", "replay", "inventory", *replay
        )
        assert replayed.code == 0, replayed.stderr
        answer: dict[str, Any] = replayed.json()  # type: ignore[assignment]
        assert sorted(answer["replayed_message_ids"]) == sorted(wanted)
    finally:
        # Leave the session's dead-letter queue as small as it was for the other tests.
        await asyncio.to_thread(purge, vhost)


def purge(vhost: Vhost) -> None:
    rabbitmqctl = shutil.which("rabbitmqctl")
    assert rabbitmqctl is not None
    subprocess.run(
        [rabbitmqctl, "-q", "purge_queue", "-p", vhost.name, INVENTORY_INBOX.dead_letter_queue],
        check=True,
        timeout=60,
    )

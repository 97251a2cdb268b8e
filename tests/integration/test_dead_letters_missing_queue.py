"""A dead-letter queue not declared yet (a vhost just recreated, before the services declared
their topology) has no dead letters: listing and replaying find none instead of failing."""

from __future__ import annotations

from services.common import dead_letters
from tests.support.servers import Vhost, unique


async def test_a_missing_dead_letter_queue_has_none(own_vhost: Vhost) -> None:
    queue = f"{unique('nobody')}.dead"
    assert await dead_letters.list_dead_letters(own_vhost.url, queue) == []
    result = await dead_letters.replay(own_vhost.url, queue)
    assert (result.replayed, result.kept) == ([], 0)

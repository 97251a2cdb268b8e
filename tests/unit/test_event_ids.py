"""The batch-made event ids of line.reserved are proper random UUIDs, all distinct."""

from __future__ import annotations

import uuid

from services.allocation.handlers.events import event_ids as _event_ids


def test_event_ids_are_distinct_version_4_uuids() -> None:
    ids = _event_ids(5000)
    assert len({str(i) for i in ids}) == 5000
    for value in ids:
        parsed = uuid.UUID(str(value))
        assert isinstance(value, uuid.UUID) and parsed == value
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert _event_ids(0) == []

"""The protobuf encoding the fill's statement writes its line.reserved bodies with
(services/allocation/migrations/repeatable/protobuf.sql), held to the protobuf library's own
bytes: subscribers decode these bodies with the generated classes, and the relay publishes
them as they are."""

from __future__ import annotations

import uuid

import asyncpg
from hypothesis import given, settings
from hypothesis import strategies as st

from backorder.allocation.v1 import events_pb2
from services.allocation.domain.model import LineStatus
from services.allocation.handlers import events

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Every length of varint, its edges most of all (a byte more at each power of 2^7).
EDGES = st.sampled_from([0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**28, 2**35 - 1, 2**35])
UNITS = st.one_of(EDGES, st.integers(min_value=0, max_value=2**63 - 1))
# Text as an id may hold it: printable, any script (several UTF-8 bytes a character), no NUL.
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    order_id=TEXT,
    line_id=TEXT,
    location_id=TEXT,
    sku=TEXT,
    cause=st.one_of(st.none(), st.uuids()),
    numbers=st.tuples(UNITS, UNITS, UNITS, UNITS, UNITS),
    status=st.sampled_from(list(LineStatus)),
    seconds=st.integers(min_value=0, max_value=253402300799),
    nanos=st.integers(min_value=0, max_value=999_999_999),
)
async def test_line_reserved_body_is_what_protobuf_serializes(
    allocation_pool: asyncpg.Pool,
    order_id: str,
    line_id: str,
    location_id: str,
    sku: str,
    cause: uuid.UUID | None,
    numbers: tuple[int, int, int, int, int],
    status: LineStatus,
    seconds: int,
    nanos: int,
) -> None:
    quantity, reserved_now, reserved, backordered, reservation_id = numbers
    event_id = uuid.uuid4()
    expected = events_pb2.LineReserved(
        event_id=str(event_id),
        sku=sku,
        order_id=order_id,
        line_id=line_id,
        quantity=quantity,
        reserved_now=reserved_now,
        reserved_quantity=reserved,
        backordered_quantity=backordered,
        status=events.status_proto(status),
        reservation_id=reservation_id,
        cause_event_id=str(cause) if cause else "",
        location_id=location_id,
    )
    expected.occurred_at.seconds, expected.occurred_at.nanos = seconds, nanos
    shared = events.reserved_events(cause, expected.occurred_at)
    body = await allocation_pool.fetchval(
        "select line_reserved_body($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        event_id,
        shared.occurred,
        sku,
        order_id,
        line_id,
        quantity,
        reserved_now,
        reserved,
        backordered,
        status.value,
        reservation_id,
        shared.cause,
        location_id,
    )
    assert body == expected.SerializeToString()


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(EDGES, INT64))
async def test_an_integer_field_is_what_protobuf_serializes(
    allocation_pool: asyncpg.Pool, value: int
) -> None:
    # Any int64, negative ones too (ten bytes of two's complement): pb_varint's general case.
    body = await allocation_pool.fetchval("select pb_int(6, $1)", value)
    assert body == events_pb2.LineReserved(quantity=value).SerializeToString()

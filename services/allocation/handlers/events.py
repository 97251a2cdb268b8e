"""The events the allocation service publishes (allocation.events), built from the domain
types: one builder per event, and the mapping of a line's status to the proto's. (The
fill's line.reserved, one per filled line, is finished in SQL by the statement that writes
the fill: here are the parts one fill's events share.)"""

from __future__ import annotations

import uuid

from google.protobuf.timestamp_pb2 import Timestamp

from backorder.allocation.v1 import events_pb2
from services.allocation.adapters.placement import LineRequest
from services.allocation.adapters.queue import ReservedEvents, RevokedLine
from services.allocation.domain.model import Line, LineStatus
from services.allocation.planning.advice import Advice
from services.common import tracing
from services.common.amqp import ALLOCATION_EXCHANGE as EXCHANGE
from services.common.outbox import OutgoingEvent, check_published, new_event
from services.common.timestamps import to_proto

_STATUS: dict[str, events_pb2.LineStatus] = {
    status: events_pb2.LineStatus.Value(f"LINE_STATUS_{status.value}") for status in LineStatus
}


def status_proto(status: LineStatus) -> events_pb2.LineStatus:
    return _STATUS[status]


def status_from_proto(value: events_pb2.LineStatus) -> LineStatus:
    """The LineStatus of a proto value other than UNSPECIFIED (ValueError if unknown)."""
    return LineStatus(events_pb2.LineStatus.Name(value).removeprefix("LINE_STATUS_"))


def reserved_events(cause_event_id: uuid.UUID | None, occurred_at: Timestamp) -> ReservedEvents:
    """What the line.reserved events of one fill share (one occurred_at: the fill happens in
    one transaction), for the fill's statement to write them (queue.apply_fills): a drain
    makes one per line, so each line's own fields are added in SQL, with the fill's writes,
    instead of read back and built here one by one."""
    check_published(EXCHANGE, "line.reserved", events_pb2.LineReserved)
    occurred = events_pb2.LineReserved()
    occurred.occurred_at.CopyFrom(occurred_at)
    cause = events_pb2.LineReserved(cause_event_id=str(cause_event_id) if cause_event_id else "")
    return ReservedEvents(
        EXCHANGE,
        "line.reserved",
        events_pb2.LineReserved.DESCRIPTOR.full_name,
        occurred.SerializeToString(),
        cause.SerializeToString(),
        tracing.current_context(),
    )


def revoked_event(r: RevokedLine, cause_event_id: uuid.UUID) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "line.revoked",
        events_pb2.LineRevoked(
            sku=r.line.sku,
            order_id=r.line.order_id,
            line_id=r.line.line_id,
            quantity=r.line.quantity,
            revoked_now=r.revoked_now,
            reserved_quantity=r.line.reserved,
            backordered_quantity=r.line.backordered,
            status=_STATUS[r.line.status],
            cause_event_id=str(cause_event_id),
            location_id=r.location_id,
        ),
    )


def backordered_event(line: Line, queue_position: int) -> OutgoingEvent:
    return _backordered(
        line.sku,
        line.order_id,
        line.line_id,
        line.quantity,
        line.reserved,
        line.backordered,
        line.status,
        queue_position,
    )


def queued_event(request: LineRequest) -> OutgoingEvent:
    """line.backordered of a line that is only queued (Allocate's one-round-trip path),
    without its queue position: placement.queue_line has the relay set it."""
    return _backordered(
        request.sku,
        request.order_id,
        request.line_id,
        request.quantity,
        0,
        request.quantity,
        LineStatus.BACKORDERED,
        0,
    )


def _backordered(
    sku: str,
    order_id: str,
    line_id: str,
    quantity: int,
    reserved: int,
    backordered: int,
    status: LineStatus,
    queue_position: int,
) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "line.backordered",
        events_pb2.LineBackordered(
            sku=sku,
            order_id=order_id,
            line_id=line_id,
            quantity=quantity,
            backordered_quantity=backordered,
            reserved_quantity=reserved,
            queue_position=queue_position,
            status=_STATUS[status],
        ),
    )


def cancelled_event(line: Line, released: int) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "line.cancelled",
        events_pb2.LineCancelled(
            sku=line.sku,
            order_id=line.order_id,
            line_id=line.line_id,
            quantity=line.quantity,
            released_quantity=released,
            fulfilled_quantity=line.fulfilled,
            status=_STATUS[line.status],
        ),
    )


def fulfilled_event(
    line: Line, fulfillment_id: str, quantity: int, location_id: str
) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "line.fulfilled",
        events_pb2.LineFulfilled(
            sku=line.sku,
            order_id=line.order_id,
            line_id=line.line_id,
            fulfillment_id=fulfillment_id,
            quantity=quantity,
            fulfilled_quantity=line.fulfilled,
            reserved_quantity=line.reserved,
            status=_STATUS[line.status],
            location_id=location_id,
        ),
    )


def eta_event(line: Line) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "line.eta_changed",
        events_pb2.LineEtaChanged(
            sku=line.sku,
            order_id=line.order_id,
            line_id=line.line_id,
            estimated_fill_at=to_proto(line.eta),
            eta_known=line.eta is not None,
            backordered_quantity=line.backordered,
            version=line.eta_version,
        ),
    )


def reorder_suggested_event(advice: Advice) -> OutgoingEvent:
    """sku.reorder_suggested of a SKU that just fell below its reorder point."""
    result = advice.result
    assert result is not None  # only refreshed SKUs have a reorder point
    message = events_pb2.SkuReorderSuggested(
        sku=advice.sku,
        version=advice.event_version,
        available=advice.available,
        reorder_point=result.reorder_point,
        suggested_order_quantity=advice.suggested_order_quantity,
        forecast_daily_units=result.forecast_daily_units,
    )
    if advice.days_of_cover is not None:
        message.days_of_cover = advice.days_of_cover
    return new_event(EXCHANGE, "sku.reorder_suggested", message)

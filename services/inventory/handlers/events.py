"""The events the inventory service publishes (inventory.events), built from the domain
types: one builder per event."""

from __future__ import annotations

from backorder.inventory.v1 import events_pb2
from services.common.amqp import INVENTORY_EXCHANGE as EXCHANGE
from services.common.outbox import OutgoingEvent, new_event
from services.common.timestamps import to_proto
from services.inventory.domain.model import Inbound, Location, Movement


def received_event(
    movement: Movement, location_on_hand_after: int, stock_version: int
) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "stock.received",
        events_pb2.StockReceived(
            occurred_at=to_proto(movement.created_at),
            sku=movement.sku,
            receipt_id=movement.key,
            quantity=movement.quantity,
            on_hand_after=movement.on_hand_after,
            inbound_id=movement.inbound_id,
            location_id=movement.location_id,
            location_on_hand_after=location_on_hand_after,
            stock_version=stock_version,
        ),
    )


def adjusted_event(
    movement: Movement, reason: int, location_on_hand_after: int, stock_version: int
) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "stock.adjusted",
        events_pb2.StockAdjusted(
            occurred_at=to_proto(movement.created_at),
            sku=movement.sku,
            adjustment_id=movement.key,
            delta=movement.quantity,
            reason=reason,  # type: ignore[arg-type]
            on_hand_after=movement.on_hand_after,
            note=movement.note,
            location_id=movement.location_id,
            location_on_hand_after=location_on_hand_after,
            stock_version=stock_version,
        ),
    )


def issued_event(movement: Movement) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "stock.issued",
        events_pb2.StockIssued(
            occurred_at=to_proto(movement.created_at),
            sku=movement.sku,
            fulfillment_id=movement.key,
            order_id=movement.order_id,
            line_id=movement.line_id,
            quantity=-movement.quantity,
            on_hand_after=movement.on_hand_after,
            shortfall=movement.shortfall,
            location_id=movement.location_id,
        ),
    )


def inbound_updated_event(inbound: Inbound) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "inbound.updated",
        events_pb2.InboundUpdated(
            occurred_at=to_proto(inbound.updated_at),
            sku=inbound.sku,
            inbound_id=inbound.inbound_id,
            open_quantity=inbound.open_quantity,
            expected_at=to_proto(inbound.expected_at),
            cancelled=inbound.cancelled,
            version=inbound.version,
            location_id=inbound.location_id,
            from_location_id=inbound.from_location_id,
        ),
    )


def transferred_event(
    out: Movement,
    *,
    to_location_id: str,
    in_transit: Inbound | None,
    from_on_hand_after: int,
    to_on_hand_after: int,
    stock_version: int,
) -> OutgoingEvent:
    message = events_pb2.StockTransferred(
        occurred_at=to_proto(out.created_at),
        sku=out.sku,
        transfer_id=out.key,
        from_location_id=out.location_id,
        to_location_id=to_location_id,
        quantity=-out.quantity,
        in_transit=in_transit is not None,
        from_on_hand_after=from_on_hand_after,
        to_on_hand_after=to_on_hand_after,
        location_id=out.location_id,
        stock_version=stock_version,
    )
    if in_transit is not None:
        message.expected_at.CopyFrom(to_proto(in_transit.expected_at))
    return new_event(EXCHANGE, "stock.transferred", message)


def location_updated_event(location: Location) -> OutgoingEvent:
    return new_event(
        EXCHANGE,
        "location.updated",
        events_pb2.LocationUpdated(
            occurred_at=to_proto(location.updated_at),
            sku="",
            location_id=location.location_id,
            name=location.name,
            fill_rank=location.fill_rank,
            active=location.active,
            version=location.version,
        ),
    )

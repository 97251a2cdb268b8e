"""The events the inventory service publishes (inventory.events), built from the domain
types: one builder per event."""

from __future__ import annotations

from backorder.inventory.v1 import events_pb2
from services.common.amqp import INVENTORY_EXCHANGE as EXCHANGE
from services.common.outbox import OutgoingEvent, new_event
from services.common.timestamps import to_proto
from services.inventory.domain.model import Inbound, Movement


def received_event(movement: Movement) -> OutgoingEvent:
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
        ),
    )


def adjusted_event(movement: Movement, reason: int) -> OutgoingEvent:
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
        ),
    )

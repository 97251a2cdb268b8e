"""Publishing inventory events straight into `inventory.events` of a test vhost, the way the
inventory service's outbox relay does: what a real allocation process consumes."""

from __future__ import annotations

import uuid
from datetime import datetime

import aio_pika
from google.protobuf.message import Message

from backorder.inventory.v1 import events_pb2 as inv_events
from services.common import amqp
from services.common.amqp import INVENTORY_EXCHANGE, PUBLISHED_EVENTS
from services.common.outbox import new_event

# The routing key of each inventory message, as the service publishes it.
ROUTING_KEYS = {message: key for key, message in PUBLISHED_EVENTS[INVENTORY_EXCHANGE].items()}


def new_inventory_event(message: Message) -> Message:
    """`message` stamped as a new event (a new event_id; occurred_at unless set), the way
    the inventory service's outbox does it."""
    return new_event(INVENTORY_EXCHANGE, ROUTING_KEYS[type(message)], message).message


class InventoryFeed:
    def __init__(self, amqp_url: str) -> None:
        self._url = amqp_url
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def open(self) -> InventoryFeed:
        # AMQP_URL's way: one broker, or the first answering node of a cluster's list.
        self._connection = await amqp.connect(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.declare_exchange(
            INVENTORY_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return self

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def publish(self, message: Message) -> str:
        """Stamps event_id/occurred_at when missing, publishes with confirm; the event id."""
        if not message.event_id:
            new_inventory_event(message)
        elif not message.HasField("occurred_at"):
            message.occurred_at.GetCurrentTime()
        assert self._exchange is not None, "open() first"
        await self._exchange.publish(
            aio_pika.Message(
                body=message.SerializeToString(),
                content_type="application/x-protobuf",
                type=message.DESCRIPTOR.full_name,
                message_id=message.event_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            ROUTING_KEYS[type(message)],
            mandatory=True,
        )
        return str(message.event_id)

    async def publish_raw(
        self, body: bytes, *, type: str | None, routing_key: str, message_id: str | None = None
    ) -> str:
        """Publishes any body with any `type`: how a test sends what no service would."""
        assert self._exchange is not None, "open() first"
        message_id = message_id or str(uuid.uuid4())
        await self._exchange.publish(
            aio_pika.Message(
                body=body,
                content_type="application/x-protobuf",
                type=type,
                message_id=message_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key,
            mandatory=True,
        )
        return message_id

    async def received(self, sku: str, quantity: int, location_id: str = "") -> str:
        return await self.publish(
            inv_events.StockReceived(
                sku=sku, quantity=quantity, receipt_id=str(uuid.uuid4()), location_id=location_id
            )
        )

    async def adjusted(self, sku: str, delta: int, location_id: str = "") -> str:
        return await self.publish(
            inv_events.StockAdjusted(
                sku=sku,
                delta=delta,
                adjustment_id=str(uuid.uuid4()),
                reason=inv_events.ADJUSTMENT_REASON_CYCLE_COUNT,
                location_id=location_id,
            )
        )

    async def transferred(
        self, sku: str, quantity: int, from_location_id: str, to_location_id: str
    ) -> str:
        """A transfer that landed at once (in_transit false)."""
        return await self.publish(
            inv_events.StockTransferred(
                sku=sku,
                transfer_id=str(uuid.uuid4()),
                from_location_id=from_location_id,
                to_location_id=to_location_id,
                quantity=quantity,
                location_id=from_location_id,
            )
        )

    async def inbound(
        self,
        sku: str,
        inbound_id: str,
        open_quantity: int,
        expected_at: datetime,
        version: int,
        *,
        cancelled: bool = False,
    ) -> str:
        event = inv_events.InboundUpdated(
            sku=sku,
            inbound_id=inbound_id,
            open_quantity=open_quantity,
            cancelled=cancelled,
            version=version,
        )
        event.expected_at.FromDatetime(expected_at)
        return await self.publish(event)

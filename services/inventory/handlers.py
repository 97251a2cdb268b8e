"""Inventory use cases: each opens a transaction, changes stock, records events, commits."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from backorder.inventory.v1 import events_pb2
from services.common import validation
from services.common.amqp import INVENTORY_EXCHANGE
from services.common.db import run_in_transaction
from services.common.errors import AlreadyExists, NotFound
from services.common.outbox import add_events, new_event
from services.common.timestamps import to_proto
from services.inventory.adapters import postgres as db
from services.inventory.adapters.postgres import MovementRow, StockRow


@dataclass(frozen=True)
class ReceiveStock:
    receipt_id: str
    sku: str
    quantity: int
    inbound_id: str = ""
    note: str = ""

    def validated(self) -> ReceiveStock:
        validation.identifier(self.receipt_id, "receipt_id")
        validation.sku(self.sku)
        validation.quantity(self.quantity)
        validation.optional_identifier(self.inbound_id, "inbound_id")
        validation.note(self.note)
        return self

    def matches(self, movement: MovementRow) -> bool:
        return (movement.sku, movement.quantity, movement.inbound_id, movement.note) == (
            self.sku,
            self.quantity,
            self.inbound_id,
            self.note,
        )


@dataclass(frozen=True)
class Receipt:
    stock: StockRow
    movement: MovementRow


async def get_stock(pool: asyncpg.Pool, sku: str) -> StockRow:
    validation.sku(sku)
    stock = await db.get_stock(pool, sku)
    if stock is None:
        raise NotFound(f"sku {sku!r} is unknown: nothing has referenced it yet")
    return stock


async def receive_stock(pool: asyncpg.Pool, cmd: ReceiveStock) -> Receipt:
    cmd = cmd.validated()

    async def work(conn: asyncpg.Connection) -> Receipt:
        earlier = await db.find_movement(conn, "RECEIPT", cmd.receipt_id)
        if earlier is not None:
            if not cmd.matches(earlier):
                raise AlreadyExists(
                    f"receipt_id {cmd.receipt_id!r} was already used for a different receipt "
                    f"({earlier.quantity} of {earlier.sku!r}); use a new receipt_id"
                )
            stock = await db.get_stock(conn, earlier.sku)
            assert stock is not None
            return Receipt(stock, earlier)
        stock = await db.add_on_hand(conn, cmd.sku, cmd.quantity)
        movement = await db.insert_movement(
            conn,
            sku=cmd.sku,
            kind="RECEIPT",
            key=cmd.receipt_id,
            quantity=cmd.quantity,
            on_hand_after=stock.on_hand,
            inbound_id=cmd.inbound_id,
            note=cmd.note,
        )
        event = events_pb2.StockReceived(
            occurred_at=to_proto(movement.created_at),
            sku=cmd.sku,
            receipt_id=cmd.receipt_id,
            quantity=cmd.quantity,
            on_hand_after=stock.on_hand,
            inbound_id=cmd.inbound_id,
        )
        await add_events(conn, [new_event(INVENTORY_EXCHANGE, "stock.received", event)])
        return Receipt(stock, movement)

    return await run_in_transaction(pool, work)

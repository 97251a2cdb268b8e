"""InventoryService over gRPC: proto in, handler, proto out. Errors map in grpc_errors."""

from __future__ import annotations

import asyncpg
import grpc

from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from services.common.timestamps import to_proto
from services.inventory import handlers
from services.inventory.adapters.postgres import StockRow


def stock_proto(stock: StockRow) -> inventory_pb2.Stock:
    return inventory_pb2.Stock(
        sku=stock.sku,
        on_hand=stock.on_hand,
        inbound_quantity=stock.inbound_quantity,
        updated_at=to_proto(stock.updated_at),
    )


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetStockResponse:
        stock = await handlers.get_stock(self._pool, request.sku)
        return inventory_pb2.GetStockResponse(stock=stock_proto(stock))

    async def ReceiveStock(
        self, request: inventory_pb2.ReceiveStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ReceiveStockResponse:
        receipt = await handlers.receive_stock(
            self._pool,
            handlers.ReceiveStock(
                receipt_id=request.receipt_id,
                sku=request.sku,
                quantity=request.quantity,
                inbound_id=request.inbound_id,
                note=request.note,
            ),
        )
        return inventory_pb2.ReceiveStockResponse(
            stock=stock_proto(receipt.stock), movement_id=receipt.movement.id
        )


def register(server: grpc.aio.Server, pool: asyncpg.Pool) -> list[str]:
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(pool), server)
    return [inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name]

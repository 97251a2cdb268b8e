"""InventoryService over gRPC: proto in, handler, proto out. Errors map in grpc_errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from backorder.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from services.common.change_feed import ChangeFeed
from services.common.errors import InvalidArgument
from services.common.security import READ, WRITE, declare_scopes
from services.common.timestamps import to_proto
from services.inventory import handlers
from services.inventory.domain.model import Inbound, Location, Movement, Stock

_SERVICE = "/backorder.inventory.v1.InventoryService/"
# The scope each RPC needs (services.common.security): reads `read`, changes `write`.
SCOPES = {
    _SERVICE + "GetStock": READ,
    _SERVICE + "ListStock": READ,
    _SERVICE + "ListInbound": READ,
    _SERVICE + "ListMovements": READ,
    _SERVICE + "WatchStock": READ,
    _SERVICE + "ListLocations": READ,
    _SERVICE + "PutLocation": WRITE,
    _SERVICE + "TransferStock": WRITE,
    _SERVICE + "ReceiveStock": WRITE,
    _SERVICE + "AdjustStock": WRITE,
    _SERVICE + "ExpectInbound": WRITE,
    _SERVICE + "CancelInbound": WRITE,
}
declare_scopes(SCOPES)

# The range a Timestamp may hold (0001-01-01 .. 9999-12-31), per google/protobuf/timestamp.proto.
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799


def stock_proto(stock: Stock) -> inventory_pb2.Stock:
    return inventory_pb2.Stock(
        sku=stock.sku,
        on_hand=stock.on_hand,
        inbound_quantity=stock.inbound_quantity,
        updated_at=to_proto(stock.updated_at),
        in_transit_quantity=stock.in_transit_quantity,
        locations=[
            inventory_pb2.LocationStock(
                location_id=entry.location_id,
                on_hand=entry.on_hand,
                inbound_quantity=entry.inbound_quantity,
                in_transit_quantity=entry.in_transit_quantity,
            )
            for entry in stock.locations
        ],
    )


def location_proto(location: Location) -> inventory_pb2.Location:
    return inventory_pb2.Location(
        location_id=location.location_id,
        name=location.name,
        fill_rank=location.fill_rank,
        active=location.active,
        version=location.version,
        updated_at=to_proto(location.updated_at),
    )


def inbound_proto(inbound: Inbound) -> inventory_pb2.Inbound:
    return inventory_pb2.Inbound(
        inbound_id=inbound.inbound_id,
        sku=inbound.sku,
        quantity=inbound.quantity,
        received_quantity=inbound.received_quantity,
        open_quantity=inbound.open_quantity,
        expected_at=to_proto(inbound.expected_at),
        cancelled=inbound.cancelled,
        version=inbound.version,
        created_at=to_proto(inbound.created_at),
        updated_at=to_proto(inbound.updated_at),
        location_id=inbound.location_id,
        from_location_id=inbound.from_location_id,
    )


def movement_proto(movement: Movement) -> inventory_pb2.Movement:
    return inventory_pb2.Movement(
        id=movement.id,
        sku=movement.sku,
        kind=inventory_pb2.MovementKind.Value("MOVEMENT_KIND_" + movement.kind.value),
        key=movement.key,
        quantity=movement.quantity,
        on_hand_after=movement.on_hand_after,
        inbound_id=movement.inbound_id,
        reason=handlers.reason_value(movement.reason),  # type: ignore[arg-type]
        note=movement.note,
        order_id=movement.order_id,
        line_id=movement.line_id,
        shortfall=movement.shortfall,
        created_at=to_proto(movement.created_at),
        location_id=movement.location_id,
        other_location_id=movement.other_location_id,
    )


def optional_time(message: object, field: str) -> datetime | None:
    """The Timestamp field as an aware datetime, None when unset; out of range is bad input."""
    if not message.HasField(field):  # type: ignore[attr-defined]
        return None
    stamp: Timestamp = getattr(message, field)
    if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 10**9):
        raise InvalidArgument(field, "is not a valid time (0001-01-01 to 9999-12-31 UTC)")
    return stamp.ToDatetime(tzinfo=UTC)


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, pool: asyncpg.Pool, feed: ChangeFeed) -> None:
        self._pool = pool
        self._feed = feed

    async def GetStock(
        self, request: inventory_pb2.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.GetStockResponse:
        stock = await handlers.get_stock(self._pool, request.sku)
        return inventory_pb2.GetStockResponse(stock=stock_proto(stock))

    async def ListStock(
        self, request: inventory_pb2.ListStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListStockResponse:
        page = await handlers.list_stock(
            self._pool,
            page_size=request.page_size,
            page_token=request.page_token,
            sku_prefix=request.sku_prefix,
        )
        return inventory_pb2.ListStockResponse(
            stocks=[stock_proto(s) for s in page.items], next_page_token=page.next_page_token
        )

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
                location_id=request.location_id,
            ),
        )
        return inventory_pb2.ReceiveStockResponse(
            stock=stock_proto(receipt.stock),
            movement_id=receipt.movement.id,
            inbound=inbound_proto(receipt.inbound) if receipt.inbound else None,
        )

    async def AdjustStock(
        self, request: inventory_pb2.AdjustStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.AdjustStockResponse:
        adjustment = await handlers.adjust_stock(
            self._pool,
            handlers.AdjustStock(
                adjustment_id=request.adjustment_id,
                sku=request.sku,
                delta=request.delta,
                reason=request.reason,
                note=request.note,
                location_id=request.location_id,
            ),
        )
        return inventory_pb2.AdjustStockResponse(
            stock=stock_proto(adjustment.stock), movement_id=adjustment.movement.id
        )

    async def ExpectInbound(
        self, request: inventory_pb2.ExpectInboundRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ExpectInboundResponse:
        change = await handlers.expect_inbound(
            self._pool,
            handlers.ExpectInbound(
                inbound_id=request.inbound_id,
                sku=request.sku,
                quantity=request.quantity,
                expected_at=optional_time(request, "expected_at"),
                location_id=request.location_id,
            ),
        )
        return inventory_pb2.ExpectInboundResponse(
            inbound=inbound_proto(change.inbound), stock=stock_proto(change.stock)
        )

    async def CancelInbound(
        self, request: inventory_pb2.CancelInboundRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.CancelInboundResponse:
        change = await handlers.cancel_inbound(self._pool, request.inbound_id)
        return inventory_pb2.CancelInboundResponse(
            inbound=inbound_proto(change.inbound), stock=stock_proto(change.stock)
        )

    async def ListInbound(
        self, request: inventory_pb2.ListInboundRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListInboundResponse:
        page = await handlers.list_inbound(
            self._pool,
            sku=request.sku,
            page_size=request.page_size,
            page_token=request.page_token,
            open_only=request.open_only,
            location_id=request.location_id,
        )
        return inventory_pb2.ListInboundResponse(
            inbound=[inbound_proto(i) for i in page.items], next_page_token=page.next_page_token
        )

    async def ListMovements(
        self, request: inventory_pb2.ListMovementsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListMovementsResponse:
        page = await handlers.list_movements(
            self._pool,
            sku=request.sku,
            page_size=request.page_size,
            page_token=request.page_token,
            location_id=request.location_id,
        )
        return inventory_pb2.ListMovementsResponse(
            movements=[movement_proto(m) for m in page.items],
            next_page_token=page.next_page_token,
        )

    async def WatchStock(
        self, request: inventory_pb2.WatchStockRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inventory_pb2.WatchStockResponse]:
        changes = handlers.watch_stock(
            self._pool, self._feed, list(request.skus), request.location_id
        )
        async for change in changes:
            yield inventory_pb2.WatchStockResponse(
                stock=stock_proto(change.stock),
                kind=inventory_pb2.StockChangeKind.Value("STOCK_CHANGE_KIND_" + change.kind.value),
                movement_id=change.movement_id,
                inbound_id=change.inbound_id,
                location_id=change.location_id,
            )

    async def PutLocation(
        self, request: inventory_pb2.PutLocationRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.PutLocationResponse:
        location = await handlers.put_location(
            self._pool,
            request.location_id,
            name=request.name,
            fill_rank=request.fill_rank if request.HasField("fill_rank") else None,
            active=request.active if request.HasField("active") else None,
        )
        return inventory_pb2.PutLocationResponse(location=location_proto(location))

    async def ListLocations(
        self, request: inventory_pb2.ListLocationsRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.ListLocationsResponse:
        page = await handlers.list_locations(
            self._pool, page_size=request.page_size, page_token=request.page_token
        )
        return inventory_pb2.ListLocationsResponse(
            locations=[location_proto(x) for x in page.items],
            next_page_token=page.next_page_token,
        )

    async def TransferStock(
        self, request: inventory_pb2.TransferStockRequest, context: grpc.aio.ServicerContext
    ) -> inventory_pb2.TransferStockResponse:
        transfer = await handlers.transfer_stock(
            self._pool,
            handlers.TransferStock(
                transfer_id=request.transfer_id,
                sku=request.sku,
                from_location_id=request.from_location_id,
                to_location_id=request.to_location_id,
                quantity=request.quantity,
                expected_at=optional_time(request, "expected_at"),
            ),
        )
        return inventory_pb2.TransferStockResponse(
            stock=stock_proto(transfer.stock),
            movement_id=transfer.out.id,
            inbound=inbound_proto(transfer.inbound) if transfer.inbound else None,
        )


def register(server: grpc.aio.Server, pool: asyncpg.Pool, feed: ChangeFeed) -> list[str]:
    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(pool, feed), server)
    return [inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name]

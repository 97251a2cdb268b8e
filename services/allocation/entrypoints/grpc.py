"""AllocationService over gRPC: proto in, handler, proto out. Errors map in grpc_errors."""

from __future__ import annotations

import asyncpg
import grpc

from backorder.allocation.v1 import allocation_pb2, allocation_pb2_grpc
from services.allocation import handlers
from services.allocation.handlers import LineView
from services.common.timestamps import to_proto

_OUTCOME = allocation_pb2.AllocationOutcome


def line_proto(view: LineView) -> allocation_pb2.Line:
    line = view.line
    return allocation_pb2.Line(
        order_id=line.order_id,
        line_id=line.line_id,
        sku=line.sku,
        quantity=line.quantity,
        priority=line.priority,
        allow_partial=line.allow_partial,
        status=handlers.line_status(line),
        reserved_quantity=line.reserved,
        fulfilled_quantity=line.fulfilled,
        backordered_quantity=line.backordered,
        queue_position=view.queue_position,
        eta_known=False,
        placed_at=to_proto(line.placed_at),
        customer_id=line.customer_id,
    )


class AllocationServicer(allocation_pb2_grpc.AllocationServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def Allocate(
        self, request: allocation_pb2.AllocateRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.AllocateResponse:
        placed = await handlers.allocate(
            self._pool,
            handlers.Allocate(
                order_id=request.order_id,
                line_id=request.line_id,
                sku=request.sku,
                quantity=request.quantity,
                priority=request.priority,
                allow_partial=request.allow_partial,
                customer_id=request.customer_id,
            ),
        )
        line = placed.view.line
        if line.backordered == 0 and line.reserved + line.fulfilled == line.quantity:
            outcome = _OUTCOME.ALLOCATION_OUTCOME_RESERVED
        elif line.reserved or line.fulfilled:
            outcome = _OUTCOME.ALLOCATION_OUTCOME_PARTIALLY_RESERVED
        else:
            outcome = _OUTCOME.ALLOCATION_OUTCOME_BACKORDERED
        return allocation_pb2.AllocateResponse(line=line_proto(placed.view), outcome=outcome)

    async def GetLine(
        self, request: allocation_pb2.GetLineRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.GetLineResponse:
        view = await handlers.get_line(self._pool, request.order_id, request.line_id)
        return allocation_pb2.GetLineResponse(line=line_proto(view))


def register(server: grpc.aio.Server, pool: asyncpg.Pool) -> list[str]:
    allocation_pb2_grpc.add_AllocationServiceServicer_to_server(AllocationServicer(pool), server)
    return [allocation_pb2.DESCRIPTOR.services_by_name["AllocationService"].full_name]

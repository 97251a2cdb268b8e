"""AllocationService over gRPC: proto in, handler, proto out. Errors map in grpc_errors."""

from __future__ import annotations

import datetime as dt

import asyncpg
import grpc

from backorder.allocation.v1 import allocation_pb2, allocation_pb2_grpc, events_pb2
from services.allocation import handlers
from services.allocation.domain.fill import FillPolicy, LocationStrategy
from services.allocation.domain.model import LineStatus, Reservation
from services.allocation.handlers import LineView, OrderView, SkuSummary
from services.allocation.planning.advice import Advice
from services.allocation.planning.params import PlanningParams
from services.common.errors import InvalidArgument
from services.common.security import ADMIN, READ, WRITE, declare_scopes
from services.common.timestamps import to_proto

_SERVICE = "/backorder.allocation.v1.AllocationService/"
# The scope each RPC needs (services.common.security): reads `read`, changes of lines
# `write`, a SKU's policy and planning `admin`.
SCOPES = {
    _SERVICE + "GetLine": READ,
    _SERVICE + "ListLines": READ,
    _SERVICE + "GetSkuSummary": READ,
    _SERVICE + "ListReservations": READ,
    _SERVICE + "GetOrder": READ,
    _SERVICE + "Allocate": WRITE,
    _SERVICE + "CancelLine": WRITE,
    _SERVICE + "FulfillLine": WRITE,
    _SERVICE + "SetPriority": WRITE,
    _SERVICE + "AllocateOrder": WRITE,
    _SERVICE + "CancelOrder": WRITE,
    _SERVICE + "SetSkuPolicy": ADMIN,
    _SERVICE + "ImportDemandHistory": ADMIN,
    _SERVICE + "SetPlanningParams": ADMIN,
    _SERVICE + "GetReplenishment": READ,
    _SERVICE + "ListReorderSuggestions": READ,
    _SERVICE + "GetDemandHistory": READ,
}
declare_scopes(SCOPES)

_OUTCOME = allocation_pb2.AllocationOutcome
_POLICY: dict[int, FillPolicy] = {
    allocation_pb2.FILL_POLICY_STRICT: FillPolicy.STRICT,
    allocation_pb2.FILL_POLICY_SKIP: FillPolicy.SKIP,
}
_POLICY_PROTO: dict[FillPolicy, allocation_pb2.FillPolicy] = {
    FillPolicy.STRICT: allocation_pb2.FILL_POLICY_STRICT,
    FillPolicy.SKIP: allocation_pb2.FILL_POLICY_SKIP,
}

_STRATEGY: dict[int, LocationStrategy] = {
    allocation_pb2.LOCATION_STRATEGY_FILL_RANK: LocationStrategy.FILL_RANK,
    allocation_pb2.LOCATION_STRATEGY_MOST_STOCK: LocationStrategy.MOST_STOCK,
}
_STRATEGY_PROTO: dict[LocationStrategy, allocation_pb2.LocationStrategy] = {
    LocationStrategy.FILL_RANK: allocation_pb2.LOCATION_STRATEGY_FILL_RANK,
    LocationStrategy.MOST_STOCK: allocation_pb2.LOCATION_STRATEGY_MOST_STOCK,
}


def line_proto(view: LineView) -> allocation_pb2.Line:
    line = view.line
    waiting = line.backordered > 0
    return allocation_pb2.Line(
        order_id=line.order_id,
        line_id=line.line_id,
        sku=line.sku,
        quantity=line.quantity,
        priority=line.priority,
        allow_partial=line.allow_partial,
        status=handlers.status_proto(line.status),
        reserved_quantity=line.reserved,
        fulfilled_quantity=line.fulfilled,
        backordered_quantity=line.backordered,
        queue_position=view.queue_position,
        estimated_fill_at=to_proto(line.eta) if waiting else None,
        eta_known=waiting and line.eta is not None,
        placed_at=to_proto(line.placed_at),
        customer_id=line.customer_id,
        locations=line.locations or (),
        allocations=[
            allocation_pb2.LineAllocation(
                location_id=a.location_id,
                reserved_quantity=a.reserved,
                fulfilled_quantity=a.fulfilled,
            )
            for a in view.allocations
        ],
    )


def order_proto(view: OrderView) -> allocation_pb2.Order:
    order = view.order
    eta, eta_known = view.eta
    lines = [line_proto(v) for v in view.lines]
    if order.ship_complete:
        # Its lines ship together: each waiting line shows the order's (latest) ETA.
        for line in lines:
            if line.backordered_quantity > 0:
                line.eta_known = eta_known
                line.ClearField("estimated_fill_at")
                if eta is not None:
                    line.estimated_fill_at.CopyFrom(to_proto(eta))
    return allocation_pb2.Order(
        order_id=order.order_id,
        priority=order.priority,
        customer_id=order.customer_id,
        ship_complete=order.ship_complete,
        status=allocation_pb2.OrderStatus.Value(f"ORDER_STATUS_{view.status}"),
        lines=lines,
        estimated_fill_at=to_proto(eta) if eta is not None else None,
        eta_known=eta_known,
        placed_at=to_proto(order.placed_at),
        version=order.version,
    )


def summary_proto(summary: SkuSummary) -> allocation_pb2.SkuSummary:
    sku = summary.sku
    message = allocation_pb2.SkuSummary(
        sku=sku.sku,
        free_units=sku.free_units,
        reserved_units=sku.reserved_units,
        backordered_units=sku.backordered_units,
        waiting_lines=sku.waiting_lines,
        fulfilled_units=sku.fulfilled_units,
        inbound_units=sum(i.open_quantity for i in summary.inbound),
        policy=allocation_pb2.SkuPolicy(
            fill_policy=_POLICY_PROTO[sku.fill_policy],
            backorders_accepted=sku.backorders_accepted,
            backorder_limit=sku.backorder_limit,
            location_strategy=_STRATEGY_PROTO[sku.location_strategy],
            max_units_per_customer=sku.max_units_per_customer,
        ),
        unmatched_shrinkage_units=sku.unmatched_shrinkage_units,
        locations=[
            allocation_pb2.LocationSummary(
                location_id=at.location_id,
                free_units=at.free_units,
                reserved_units=at.reserved_units,
                inbound_units=at.inbound_units,
                active=at.active,
            )
            for at in summary.locations
        ],
    )
    if summary.inbound:
        first = summary.inbound[0]
        message.next_inbound.CopyFrom(
            allocation_pb2.NextInbound(
                inbound_id=first.inbound_id,
                open_quantity=first.open_quantity,
                expected_at=to_proto(first.expected_at),
            )
        )
    return message


def reservation_proto(row: Reservation) -> allocation_pb2.Reservation:
    return allocation_pb2.Reservation(
        reservation_id=row.reservation_id,
        order_id=row.order_id,
        line_id=row.line_id,
        sku=row.sku,
        quantity=row.quantity,
        cause=row.cause,
        cause_event_id=str(row.cause_event_id) if row.cause_event_id else "",
        queue_position=row.queue_position,
        rule=allocation_pb2.ReservationRule.Value(f"RESERVATION_RULE_{row.rule.value}"),
        fill_policy=_POLICY_PROTO[row.fill_policy],
        created_at=to_proto(row.created_at),
        location_id=row.location_id,
    )


def _status(value: int) -> LineStatus | None:
    if value == events_pb2.LINE_STATUS_UNSPECIFIED:
        return None
    if value not in events_pb2.LineStatus.values():
        raise InvalidArgument("status", f"{value} is not a LineStatus")
    return handlers.status_from_proto(value)  # type: ignore[arg-type]


def _fill_policy(value: int) -> FillPolicy | None:
    if value == allocation_pb2.FILL_POLICY_UNSPECIFIED:
        return None
    if value not in _POLICY:
        raise InvalidArgument("fill_policy", f"{value} is not a fill policy (STRICT or SKIP)")
    return _POLICY[value]


def _location_strategy(value: int) -> LocationStrategy | None:
    if value == allocation_pb2.LOCATION_STRATEGY_UNSPECIFIED:
        return None
    if value not in _STRATEGY:
        raise InvalidArgument(
            "location_strategy", f"{value} is not a location strategy (FILL_RANK or MOST_STOCK)"
        )
    return _STRATEGY[value]


class AllocationServicer(allocation_pb2_grpc.AllocationServiceServicer):
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        # Concurrent Allocates are placed together (group commit, docs/performance.md).
        self._group = handlers.GroupCommit()

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
                locations=tuple(request.locations),
            ),
            group=self._group,
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

    async def ListLines(
        self, request: allocation_pb2.ListLinesRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.ListLinesResponse:
        page = await handlers.list_lines(
            self._pool,
            sku=request.sku,
            order_id=request.order_id,
            status=_status(request.status),
            location_id=request.location_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return allocation_pb2.ListLinesResponse(
            lines=[line_proto(v) for v in page.items], next_page_token=page.next_page_token
        )

    async def CancelLine(
        self, request: allocation_pb2.CancelLineRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.CancelLineResponse:
        cancelled = await handlers.cancel_line(self._pool, request.order_id, request.line_id)
        return allocation_pb2.CancelLineResponse(
            line=line_proto(cancelled.view), released_quantity=cancelled.released
        )

    async def FulfillLine(
        self, request: allocation_pb2.FulfillLineRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.FulfillLineResponse:
        view = await handlers.fulfill_line(
            self._pool,
            handlers.FulfillLine(
                order_id=request.order_id,
                line_id=request.line_id,
                fulfillment_id=request.fulfillment_id,
                quantity=request.quantity,
                location_id=request.location_id,
            ),
        )
        return allocation_pb2.FulfillLineResponse(line=line_proto(view))

    async def SetPriority(
        self, request: allocation_pb2.SetPriorityRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.SetPriorityResponse:
        view = await handlers.set_priority(
            self._pool, request.order_id, request.line_id, request.priority
        )
        return allocation_pb2.SetPriorityResponse(line=line_proto(view))

    async def GetSkuSummary(
        self, request: allocation_pb2.GetSkuSummaryRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.GetSkuSummaryResponse:
        summary = await handlers.get_sku_summary(self._pool, request.sku)
        return allocation_pb2.GetSkuSummaryResponse(summary=summary_proto(summary))

    async def SetSkuPolicy(
        self, request: allocation_pb2.SetSkuPolicyRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.SetSkuPolicyResponse:
        summary = await handlers.set_sku_policy(
            self._pool,
            handlers.SetSkuPolicy(
                sku=request.sku,
                fill_policy=_fill_policy(request.fill_policy),
                backorders_accepted=(
                    request.backorders_accepted if request.HasField("backorders_accepted") else None
                ),
                backorder_limit=(
                    request.backorder_limit if request.HasField("backorder_limit") else None
                ),
                location_strategy=_location_strategy(request.location_strategy),
                max_units_per_customer=(
                    request.max_units_per_customer
                    if request.HasField("max_units_per_customer")
                    else None
                ),
            ),
        )
        return allocation_pb2.SetSkuPolicyResponse(summary=summary_proto(summary))

    async def ListReservations(
        self, request: allocation_pb2.ListReservationsRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.ListReservationsResponse:
        page = await handlers.list_reservations(
            self._pool,
            order_id=request.order_id,
            line_id=request.line_id,
            sku=request.sku,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return allocation_pb2.ListReservationsResponse(
            reservations=[reservation_proto(r) for r in page.items],
            next_page_token=page.next_page_token,
        )

    async def ImportDemandHistory(
        self, request: allocation_pb2.ImportDemandHistoryRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.ImportDemandHistoryResponse:
        imported = await handlers.import_demand_history(
            self._pool,
            handlers.ImportDemandHistory(
                sku=request.sku, days=tuple((d.date, d.units) for d in request.days)
            ),
        )
        return allocation_pb2.ImportDemandHistoryResponse(sku=request.sku, days_imported=imported)

    async def SetPlanningParams(
        self, request: allocation_pb2.SetPlanningParamsRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.SetPlanningParamsResponse:
        given = {
            name: getattr(request, name)
            for name in (
                "lead_time_days",
                "service_level",
                "review_period_days",
                "min_order_quantity",
                "pack_size",
            )
            if request.HasField(name)
        }
        params = await handlers.set_planning_params(
            self._pool, handlers.SetPlanningParams(sku=request.sku, **given)
        )
        return allocation_pb2.SetPlanningParamsResponse(params=params_proto(params))

    async def GetReplenishment(
        self, request: allocation_pb2.GetReplenishmentRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.GetReplenishmentResponse:
        advice = await handlers.get_replenishment(self._pool, request.sku)
        return allocation_pb2.GetReplenishmentResponse(replenishment=replenishment_proto(advice))

    async def ListReorderSuggestions(
        self,
        request: allocation_pb2.ListReorderSuggestionsRequest,
        context: grpc.aio.ServicerContext,
    ) -> allocation_pb2.ListReorderSuggestionsResponse:
        page = await handlers.list_reorder_suggestions(
            self._pool, request.page_size, request.page_token
        )
        return allocation_pb2.ListReorderSuggestionsResponse(
            suggestions=[replenishment_proto(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

    async def AllocateOrder(
        self, request: allocation_pb2.AllocateOrderRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.AllocateOrderResponse:
        view, _ = await handlers.allocate_order(
            self._pool,
            handlers.AllocateOrder(
                order_id=request.order_id,
                priority=request.priority,
                customer_id=request.customer_id,
                ship_complete=request.ship_complete,
                lines=tuple(
                    handlers.OrderLine(
                        line_id=line.line_id,
                        sku=line.sku,
                        quantity=line.quantity,
                        allow_partial=line.allow_partial,
                        locations=tuple(line.locations),
                    )
                    for line in request.lines
                ),
            ),
        )
        return allocation_pb2.AllocateOrderResponse(order=order_proto(view))

    async def GetOrder(
        self, request: allocation_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.GetOrderResponse:
        view = await handlers.get_order(self._pool, request.order_id)
        return allocation_pb2.GetOrderResponse(order=order_proto(view))

    async def CancelOrder(
        self, request: allocation_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.CancelOrderResponse:
        cancelled = await handlers.cancel_order(self._pool, request.order_id)
        return allocation_pb2.CancelOrderResponse(
            order=order_proto(cancelled.view), released_quantity=cancelled.released
        )

    async def GetDemandHistory(
        self, request: allocation_pb2.GetDemandHistoryRequest, context: grpc.aio.ServicerContext
    ) -> allocation_pb2.GetDemandHistoryResponse:
        history = await handlers.get_demand_history(self._pool, request.sku, request.days)
        return allocation_pb2.GetDemandHistoryResponse(
            sku=history.sku,
            days=[
                allocation_pb2.DemandDay(
                    date=(history.first_day + dt.timedelta(days=i)).isoformat(), units=units
                )
                for i, units in enumerate(history.units)
            ],
        )


def params_proto(params: PlanningParams) -> allocation_pb2.PlanningParams:
    return allocation_pb2.PlanningParams(
        sku=params.sku,
        lead_time_days=params.lead_time_days,
        service_level=params.service_level,
        review_period_days=params.review_period_days,
        min_order_quantity=params.min_order_quantity,
        pack_size=params.pack_size,
    )


def replenishment_proto(advice: Advice) -> allocation_pb2.Replenishment:
    message = allocation_pb2.Replenishment(
        sku=advice.sku,
        available=advice.available,
        suggested_order_quantity=advice.suggested_order_quantity,
        params=params_proto(advice.params),
    )
    if advice.days_of_cover is not None:
        message.days_of_cover = advice.days_of_cover
    result = advice.result
    if result is not None:
        message.forecast_daily_units = result.forecast_daily_units
        message.forecast_method = allocation_pb2.ForecastMethod.Value(
            f"FORECAST_METHOD_{result.forecast_method}"
        )
        message.demand_class = allocation_pb2.DemandClass.Value(
            f"DEMAND_CLASS_{result.demand_class}"
        )
        message.demand_std = result.demand_std
        message.safety_stock = result.safety_stock
        message.reorder_point = result.reorder_point
        message.order_up_to = result.order_up_to
        message.history_days = result.history_days
    if advice.refreshed_at is not None:
        message.refreshed_at.CopyFrom(to_proto(advice.refreshed_at))
    return message


def register(server: grpc.aio.Server, pool: asyncpg.Pool) -> list[str]:
    allocation_pb2_grpc.add_AllocationServiceServicer_to_server(AllocationServicer(pool), server)
    return [allocation_pb2.DESCRIPTOR.services_by_name["AllocationService"].full_name]

import datetime

from backorder.allocation.v1 import events_pb2 as _events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AllocationOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALLOCATION_OUTCOME_UNSPECIFIED: _ClassVar[AllocationOutcome]
    ALLOCATION_OUTCOME_RESERVED: _ClassVar[AllocationOutcome]
    ALLOCATION_OUTCOME_PARTIALLY_RESERVED: _ClassVar[AllocationOutcome]
    ALLOCATION_OUTCOME_BACKORDERED: _ClassVar[AllocationOutcome]

class FillPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILL_POLICY_UNSPECIFIED: _ClassVar[FillPolicy]
    FILL_POLICY_STRICT: _ClassVar[FillPolicy]
    FILL_POLICY_SKIP: _ClassVar[FillPolicy]

class LocationStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOCATION_STRATEGY_UNSPECIFIED: _ClassVar[LocationStrategy]
    LOCATION_STRATEGY_FILL_RANK: _ClassVar[LocationStrategy]
    LOCATION_STRATEGY_MOST_STOCK: _ClassVar[LocationStrategy]

class ReservationRule(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESERVATION_RULE_UNSPECIFIED: _ClassVar[ReservationRule]
    RESERVATION_RULE_PARTIAL: _ClassVar[ReservationRule]
    RESERVATION_RULE_WHOLE: _ClassVar[ReservationRule]
    RESERVATION_RULE_WHOLE_AFTER_SKIP: _ClassVar[ReservationRule]
    RESERVATION_RULE_REVOKED: _ClassVar[ReservationRule]

class DemandClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEMAND_CLASS_UNSPECIFIED: _ClassVar[DemandClass]
    DEMAND_CLASS_SMOOTH: _ClassVar[DemandClass]
    DEMAND_CLASS_ERRATIC: _ClassVar[DemandClass]
    DEMAND_CLASS_INTERMITTENT: _ClassVar[DemandClass]
    DEMAND_CLASS_LUMPY: _ClassVar[DemandClass]
    DEMAND_CLASS_NONE: _ClassVar[DemandClass]

class ForecastMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FORECAST_METHOD_UNSPECIFIED: _ClassVar[ForecastMethod]
    FORECAST_METHOD_SES: _ClassVar[ForecastMethod]
    FORECAST_METHOD_CROSTON_SBA: _ClassVar[ForecastMethod]
    FORECAST_METHOD_TSB: _ClassVar[ForecastMethod]
    FORECAST_METHOD_NONE: _ClassVar[ForecastMethod]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_WAITING: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_RESERVED: _ClassVar[OrderStatus]
    ORDER_STATUS_READY: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FULFILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FULFILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
ALLOCATION_OUTCOME_UNSPECIFIED: AllocationOutcome
ALLOCATION_OUTCOME_RESERVED: AllocationOutcome
ALLOCATION_OUTCOME_PARTIALLY_RESERVED: AllocationOutcome
ALLOCATION_OUTCOME_BACKORDERED: AllocationOutcome
FILL_POLICY_UNSPECIFIED: FillPolicy
FILL_POLICY_STRICT: FillPolicy
FILL_POLICY_SKIP: FillPolicy
LOCATION_STRATEGY_UNSPECIFIED: LocationStrategy
LOCATION_STRATEGY_FILL_RANK: LocationStrategy
LOCATION_STRATEGY_MOST_STOCK: LocationStrategy
RESERVATION_RULE_UNSPECIFIED: ReservationRule
RESERVATION_RULE_PARTIAL: ReservationRule
RESERVATION_RULE_WHOLE: ReservationRule
RESERVATION_RULE_WHOLE_AFTER_SKIP: ReservationRule
RESERVATION_RULE_REVOKED: ReservationRule
DEMAND_CLASS_UNSPECIFIED: DemandClass
DEMAND_CLASS_SMOOTH: DemandClass
DEMAND_CLASS_ERRATIC: DemandClass
DEMAND_CLASS_INTERMITTENT: DemandClass
DEMAND_CLASS_LUMPY: DemandClass
DEMAND_CLASS_NONE: DemandClass
FORECAST_METHOD_UNSPECIFIED: ForecastMethod
FORECAST_METHOD_SES: ForecastMethod
FORECAST_METHOD_CROSTON_SBA: ForecastMethod
FORECAST_METHOD_TSB: ForecastMethod
FORECAST_METHOD_NONE: ForecastMethod
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_WAITING: OrderStatus
ORDER_STATUS_PARTIALLY_RESERVED: OrderStatus
ORDER_STATUS_READY: OrderStatus
ORDER_STATUS_PARTIALLY_FULFILLED: OrderStatus
ORDER_STATUS_FULFILLED: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus

class Line(_message.Message):
    __slots__ = ("order_id", "line_id", "sku", "quantity", "priority", "allow_partial", "status", "reserved_quantity", "fulfilled_quantity", "backordered_quantity", "queue_position", "estimated_fill_at", "eta_known", "placed_at", "customer_id", "locations", "allocations")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FULFILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FILL_AT_FIELD_NUMBER: _ClassVar[int]
    ETA_KNOWN_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATIONS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    status: _events_pb2.LineStatus
    reserved_quantity: int
    fulfilled_quantity: int
    backordered_quantity: int
    queue_position: int
    estimated_fill_at: _timestamp_pb2.Timestamp
    eta_known: bool
    placed_at: _timestamp_pb2.Timestamp
    customer_id: str
    locations: _containers.RepeatedScalarFieldContainer[str]
    allocations: _containers.RepeatedCompositeFieldContainer[LineAllocation]
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., priority: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., status: _Optional[_Union[_events_pb2.LineStatus, str]] = ..., reserved_quantity: _Optional[int] = ..., fulfilled_quantity: _Optional[int] = ..., backordered_quantity: _Optional[int] = ..., queue_position: _Optional[int] = ..., estimated_fill_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., eta_known: _Optional[bool] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_id: _Optional[str] = ..., locations: _Optional[_Iterable[str]] = ..., allocations: _Optional[_Iterable[_Union[LineAllocation, _Mapping]]] = ...) -> None: ...

class LineAllocation(_message.Message):
    __slots__ = ("location_id", "reserved_quantity", "fulfilled_quantity")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FULFILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    location_id: str
    reserved_quantity: int
    fulfilled_quantity: int
    def __init__(self, location_id: _Optional[str] = ..., reserved_quantity: _Optional[int] = ..., fulfilled_quantity: _Optional[int] = ...) -> None: ...

class AllocateRequest(_message.Message):
    __slots__ = ("order_id", "line_id", "sku", "quantity", "priority", "allow_partial", "customer_id", "locations")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    customer_id: str
    locations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., priority: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., customer_id: _Optional[str] = ..., locations: _Optional[_Iterable[str]] = ...) -> None: ...

class AllocateResponse(_message.Message):
    __slots__ = ("line", "outcome")
    LINE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    line: Line
    outcome: AllocationOutcome
    def __init__(self, line: _Optional[_Union[Line, _Mapping]] = ..., outcome: _Optional[_Union[AllocationOutcome, str]] = ...) -> None: ...

class GetLineRequest(_message.Message):
    __slots__ = ("order_id", "line_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ...) -> None: ...

class GetLineResponse(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: Line
    def __init__(self, line: _Optional[_Union[Line, _Mapping]] = ...) -> None: ...

class ListLinesRequest(_message.Message):
    __slots__ = ("sku", "order_id", "status", "location_id", "page_size", "page_token")
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sku: str
    order_id: str
    status: _events_pb2.LineStatus
    location_id: str
    page_size: int
    page_token: str
    def __init__(self, sku: _Optional[str] = ..., order_id: _Optional[str] = ..., status: _Optional[_Union[_events_pb2.LineStatus, str]] = ..., location_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLinesResponse(_message.Message):
    __slots__ = ("lines", "next_page_token")
    LINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[Line]
    next_page_token: str
    def __init__(self, lines: _Optional[_Iterable[_Union[Line, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelLineRequest(_message.Message):
    __slots__ = ("order_id", "line_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ...) -> None: ...

class CancelLineResponse(_message.Message):
    __slots__ = ("line", "released_quantity")
    LINE_FIELD_NUMBER: _ClassVar[int]
    RELEASED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    line: Line
    released_quantity: int
    def __init__(self, line: _Optional[_Union[Line, _Mapping]] = ..., released_quantity: _Optional[int] = ...) -> None: ...

class FulfillLineRequest(_message.Message):
    __slots__ = ("order_id", "line_id", "fulfillment_id", "quantity", "location_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    FULFILLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    fulfillment_id: str
    quantity: int
    location_id: str
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., fulfillment_id: _Optional[str] = ..., quantity: _Optional[int] = ..., location_id: _Optional[str] = ...) -> None: ...

class FulfillLineResponse(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: Line
    def __init__(self, line: _Optional[_Union[Line, _Mapping]] = ...) -> None: ...

class SetPriorityRequest(_message.Message):
    __slots__ = ("order_id", "line_id", "priority")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    priority: int
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., priority: _Optional[int] = ...) -> None: ...

class SetPriorityResponse(_message.Message):
    __slots__ = ("line",)
    LINE_FIELD_NUMBER: _ClassVar[int]
    line: Line
    def __init__(self, line: _Optional[_Union[Line, _Mapping]] = ...) -> None: ...

class SkuPolicy(_message.Message):
    __slots__ = ("fill_policy", "backorders_accepted", "backorder_limit", "location_strategy", "max_units_per_customer")
    FILL_POLICY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    BACKORDER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MAX_UNITS_PER_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    fill_policy: FillPolicy
    backorders_accepted: bool
    backorder_limit: int
    location_strategy: LocationStrategy
    max_units_per_customer: int
    def __init__(self, fill_policy: _Optional[_Union[FillPolicy, str]] = ..., backorders_accepted: _Optional[bool] = ..., backorder_limit: _Optional[int] = ..., location_strategy: _Optional[_Union[LocationStrategy, str]] = ..., max_units_per_customer: _Optional[int] = ...) -> None: ...

class LocationSummary(_message.Message):
    __slots__ = ("location_id", "free_units", "reserved_units", "inbound_units", "active")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    FREE_UNITS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    INBOUND_UNITS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    location_id: str
    free_units: int
    reserved_units: int
    inbound_units: int
    active: bool
    def __init__(self, location_id: _Optional[str] = ..., free_units: _Optional[int] = ..., reserved_units: _Optional[int] = ..., inbound_units: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class NextInbound(_message.Message):
    __slots__ = ("inbound_id", "open_quantity", "expected_at")
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AT_FIELD_NUMBER: _ClassVar[int]
    inbound_id: str
    open_quantity: int
    expected_at: _timestamp_pb2.Timestamp
    def __init__(self, inbound_id: _Optional[str] = ..., open_quantity: _Optional[int] = ..., expected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SkuSummary(_message.Message):
    __slots__ = ("sku", "free_units", "reserved_units", "backordered_units", "waiting_lines", "fulfilled_units", "next_inbound", "inbound_units", "policy", "unmatched_shrinkage_units", "locations")
    SKU_FIELD_NUMBER: _ClassVar[int]
    FREE_UNITS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_UNITS_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_UNITS_FIELD_NUMBER: _ClassVar[int]
    WAITING_LINES_FIELD_NUMBER: _ClassVar[int]
    FULFILLED_UNITS_FIELD_NUMBER: _ClassVar[int]
    NEXT_INBOUND_FIELD_NUMBER: _ClassVar[int]
    INBOUND_UNITS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_SHRINKAGE_UNITS_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    free_units: int
    reserved_units: int
    backordered_units: int
    waiting_lines: int
    fulfilled_units: int
    next_inbound: NextInbound
    inbound_units: int
    policy: SkuPolicy
    unmatched_shrinkage_units: int
    locations: _containers.RepeatedCompositeFieldContainer[LocationSummary]
    def __init__(self, sku: _Optional[str] = ..., free_units: _Optional[int] = ..., reserved_units: _Optional[int] = ..., backordered_units: _Optional[int] = ..., waiting_lines: _Optional[int] = ..., fulfilled_units: _Optional[int] = ..., next_inbound: _Optional[_Union[NextInbound, _Mapping]] = ..., inbound_units: _Optional[int] = ..., policy: _Optional[_Union[SkuPolicy, _Mapping]] = ..., unmatched_shrinkage_units: _Optional[int] = ..., locations: _Optional[_Iterable[_Union[LocationSummary, _Mapping]]] = ...) -> None: ...

class GetSkuSummaryRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class GetSkuSummaryResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: SkuSummary
    def __init__(self, summary: _Optional[_Union[SkuSummary, _Mapping]] = ...) -> None: ...

class SetSkuPolicyRequest(_message.Message):
    __slots__ = ("sku", "fill_policy", "backorders_accepted", "backorder_limit", "location_strategy", "max_units_per_customer")
    SKU_FIELD_NUMBER: _ClassVar[int]
    FILL_POLICY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERS_ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    BACKORDER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    MAX_UNITS_PER_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    sku: str
    fill_policy: FillPolicy
    backorders_accepted: bool
    backorder_limit: int
    location_strategy: LocationStrategy
    max_units_per_customer: int
    def __init__(self, sku: _Optional[str] = ..., fill_policy: _Optional[_Union[FillPolicy, str]] = ..., backorders_accepted: _Optional[bool] = ..., backorder_limit: _Optional[int] = ..., location_strategy: _Optional[_Union[LocationStrategy, str]] = ..., max_units_per_customer: _Optional[int] = ...) -> None: ...

class SetSkuPolicyResponse(_message.Message):
    __slots__ = ("summary",)
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    summary: SkuSummary
    def __init__(self, summary: _Optional[_Union[SkuSummary, _Mapping]] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("reservation_id", "order_id", "line_id", "sku", "quantity", "cause", "cause_event_id", "queue_position", "rule", "fill_policy", "created_at", "location_id")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    FILL_POLICY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: int
    order_id: str
    line_id: str
    sku: str
    quantity: int
    cause: str
    cause_event_id: str
    queue_position: int
    rule: ReservationRule
    fill_policy: FillPolicy
    created_at: _timestamp_pb2.Timestamp
    location_id: str
    def __init__(self, reservation_id: _Optional[int] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., cause: _Optional[str] = ..., cause_event_id: _Optional[str] = ..., queue_position: _Optional[int] = ..., rule: _Optional[_Union[ReservationRule, str]] = ..., fill_policy: _Optional[_Union[FillPolicy, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location_id: _Optional[str] = ...) -> None: ...

class ListReservationsRequest(_message.Message):
    __slots__ = ("order_id", "line_id", "sku", "page_size", "page_token")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    sku: str
    page_size: int
    page_token: str
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., sku: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReservationsResponse(_message.Message):
    __slots__ = ("reservations", "next_page_token")
    RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    reservations: _containers.RepeatedCompositeFieldContainer[Reservation]
    next_page_token: str
    def __init__(self, reservations: _Optional[_Iterable[_Union[Reservation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DemandDay(_message.Message):
    __slots__ = ("date", "units")
    DATE_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    date: str
    units: int
    def __init__(self, date: _Optional[str] = ..., units: _Optional[int] = ...) -> None: ...

class ImportDemandHistoryRequest(_message.Message):
    __slots__ = ("sku", "days")
    SKU_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    days: _containers.RepeatedCompositeFieldContainer[DemandDay]
    def __init__(self, sku: _Optional[str] = ..., days: _Optional[_Iterable[_Union[DemandDay, _Mapping]]] = ...) -> None: ...

class ImportDemandHistoryResponse(_message.Message):
    __slots__ = ("sku", "days_imported")
    SKU_FIELD_NUMBER: _ClassVar[int]
    DAYS_IMPORTED_FIELD_NUMBER: _ClassVar[int]
    sku: str
    days_imported: int
    def __init__(self, sku: _Optional[str] = ..., days_imported: _Optional[int] = ...) -> None: ...

class PlanningParams(_message.Message):
    __slots__ = ("sku", "lead_time_days", "service_level", "review_period_days", "min_order_quantity", "pack_size")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_DAYS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    REVIEW_PERIOD_DAYS_FIELD_NUMBER: _ClassVar[int]
    MIN_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PACK_SIZE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    lead_time_days: int
    service_level: float
    review_period_days: int
    min_order_quantity: int
    pack_size: int
    def __init__(self, sku: _Optional[str] = ..., lead_time_days: _Optional[int] = ..., service_level: _Optional[float] = ..., review_period_days: _Optional[int] = ..., min_order_quantity: _Optional[int] = ..., pack_size: _Optional[int] = ...) -> None: ...

class SetPlanningParamsRequest(_message.Message):
    __slots__ = ("sku", "lead_time_days", "service_level", "review_period_days", "min_order_quantity", "pack_size")
    SKU_FIELD_NUMBER: _ClassVar[int]
    LEAD_TIME_DAYS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    REVIEW_PERIOD_DAYS_FIELD_NUMBER: _ClassVar[int]
    MIN_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PACK_SIZE_FIELD_NUMBER: _ClassVar[int]
    sku: str
    lead_time_days: int
    service_level: float
    review_period_days: int
    min_order_quantity: int
    pack_size: int
    def __init__(self, sku: _Optional[str] = ..., lead_time_days: _Optional[int] = ..., service_level: _Optional[float] = ..., review_period_days: _Optional[int] = ..., min_order_quantity: _Optional[int] = ..., pack_size: _Optional[int] = ...) -> None: ...

class SetPlanningParamsResponse(_message.Message):
    __slots__ = ("params",)
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    params: PlanningParams
    def __init__(self, params: _Optional[_Union[PlanningParams, _Mapping]] = ...) -> None: ...

class Replenishment(_message.Message):
    __slots__ = ("sku", "forecast_daily_units", "forecast_method", "demand_class", "demand_std", "safety_stock", "reorder_point", "order_up_to", "available", "suggested_order_quantity", "days_of_cover", "history_days", "refreshed_at", "params")
    SKU_FIELD_NUMBER: _ClassVar[int]
    FORECAST_DAILY_UNITS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_METHOD_FIELD_NUMBER: _ClassVar[int]
    DEMAND_CLASS_FIELD_NUMBER: _ClassVar[int]
    DEMAND_STD_FIELD_NUMBER: _ClassVar[int]
    SAFETY_STOCK_FIELD_NUMBER: _ClassVar[int]
    REORDER_POINT_FIELD_NUMBER: _ClassVar[int]
    ORDER_UP_TO_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    DAYS_OF_COVER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_DAYS_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_AT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    forecast_daily_units: float
    forecast_method: ForecastMethod
    demand_class: DemandClass
    demand_std: float
    safety_stock: float
    reorder_point: float
    order_up_to: float
    available: int
    suggested_order_quantity: int
    days_of_cover: float
    history_days: int
    refreshed_at: _timestamp_pb2.Timestamp
    params: PlanningParams
    def __init__(self, sku: _Optional[str] = ..., forecast_daily_units: _Optional[float] = ..., forecast_method: _Optional[_Union[ForecastMethod, str]] = ..., demand_class: _Optional[_Union[DemandClass, str]] = ..., demand_std: _Optional[float] = ..., safety_stock: _Optional[float] = ..., reorder_point: _Optional[float] = ..., order_up_to: _Optional[float] = ..., available: _Optional[int] = ..., suggested_order_quantity: _Optional[int] = ..., days_of_cover: _Optional[float] = ..., history_days: _Optional[int] = ..., refreshed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., params: _Optional[_Union[PlanningParams, _Mapping]] = ...) -> None: ...

class GetReplenishmentRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class GetReplenishmentResponse(_message.Message):
    __slots__ = ("replenishment",)
    REPLENISHMENT_FIELD_NUMBER: _ClassVar[int]
    replenishment: Replenishment
    def __init__(self, replenishment: _Optional[_Union[Replenishment, _Mapping]] = ...) -> None: ...

class ListReorderSuggestionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListReorderSuggestionsResponse(_message.Message):
    __slots__ = ("suggestions", "next_page_token")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[Replenishment]
    next_page_token: str
    def __init__(self, suggestions: _Optional[_Iterable[_Union[Replenishment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "priority", "customer_id", "ship_complete", "status", "lines", "estimated_fill_at", "eta_known", "placed_at", "version")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SHIP_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FILL_AT_FIELD_NUMBER: _ClassVar[int]
    ETA_KNOWN_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    priority: int
    customer_id: str
    ship_complete: bool
    status: OrderStatus
    lines: _containers.RepeatedCompositeFieldContainer[Line]
    estimated_fill_at: _timestamp_pb2.Timestamp
    eta_known: bool
    placed_at: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, order_id: _Optional[str] = ..., priority: _Optional[int] = ..., customer_id: _Optional[str] = ..., ship_complete: _Optional[bool] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., lines: _Optional[_Iterable[_Union[Line, _Mapping]]] = ..., estimated_fill_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., eta_known: _Optional[bool] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class OrderLineRequest(_message.Message):
    __slots__ = ("line_id", "sku", "quantity", "allow_partial", "locations")
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    line_id: str
    sku: str
    quantity: int
    allow_partial: bool
    locations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., locations: _Optional[_Iterable[str]] = ...) -> None: ...

class AllocateOrderRequest(_message.Message):
    __slots__ = ("order_id", "priority", "customer_id", "ship_complete", "lines")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SHIP_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    priority: int
    customer_id: str
    ship_complete: bool
    lines: _containers.RepeatedCompositeFieldContainer[OrderLineRequest]
    def __init__(self, order_id: _Optional[str] = ..., priority: _Optional[int] = ..., customer_id: _Optional[str] = ..., ship_complete: _Optional[bool] = ..., lines: _Optional[_Iterable[_Union[OrderLineRequest, _Mapping]]] = ...) -> None: ...

class AllocateOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order", "released_quantity")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    RELEASED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order: Order
    released_quantity: int
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ..., released_quantity: _Optional[int] = ...) -> None: ...

class GetDemandHistoryRequest(_message.Message):
    __slots__ = ("sku", "days")
    SKU_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    days: int
    def __init__(self, sku: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class GetDemandHistoryResponse(_message.Message):
    __slots__ = ("sku", "days")
    SKU_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    days: _containers.RepeatedCompositeFieldContainer[DemandDay]
    def __init__(self, sku: _Optional[str] = ..., days: _Optional[_Iterable[_Union[DemandDay, _Mapping]]] = ...) -> None: ...

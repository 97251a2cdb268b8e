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

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LineStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LINE_STATUS_UNSPECIFIED: _ClassVar[LineStatus]
    LINE_STATUS_BACKORDERED: _ClassVar[LineStatus]
    LINE_STATUS_PARTIALLY_RESERVED: _ClassVar[LineStatus]
    LINE_STATUS_RESERVED: _ClassVar[LineStatus]
    LINE_STATUS_PARTIALLY_FULFILLED: _ClassVar[LineStatus]
    LINE_STATUS_FULFILLED: _ClassVar[LineStatus]
    LINE_STATUS_CANCELLED: _ClassVar[LineStatus]
LINE_STATUS_UNSPECIFIED: LineStatus
LINE_STATUS_BACKORDERED: LineStatus
LINE_STATUS_PARTIALLY_RESERVED: LineStatus
LINE_STATUS_RESERVED: LineStatus
LINE_STATUS_PARTIALLY_FULFILLED: LineStatus
LINE_STATUS_FULFILLED: LineStatus
LINE_STATUS_CANCELLED: LineStatus

class LineBackordered(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "order_id", "line_id", "quantity", "backordered_quantity", "reserved_quantity", "queue_position", "status")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    order_id: str
    line_id: str
    quantity: int
    backordered_quantity: int
    reserved_quantity: int
    queue_position: int
    status: LineStatus
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., quantity: _Optional[int] = ..., backordered_quantity: _Optional[int] = ..., reserved_quantity: _Optional[int] = ..., queue_position: _Optional[int] = ..., status: _Optional[_Union[LineStatus, str]] = ...) -> None: ...

class LineReserved(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "order_id", "line_id", "quantity", "reserved_now", "reserved_quantity", "backordered_quantity", "status", "reservation_id", "cause_event_id", "location_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_NOW_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    order_id: str
    line_id: str
    quantity: int
    reserved_now: int
    reserved_quantity: int
    backordered_quantity: int
    status: LineStatus
    reservation_id: int
    cause_event_id: str
    location_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., quantity: _Optional[int] = ..., reserved_now: _Optional[int] = ..., reserved_quantity: _Optional[int] = ..., backordered_quantity: _Optional[int] = ..., status: _Optional[_Union[LineStatus, str]] = ..., reservation_id: _Optional[int] = ..., cause_event_id: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class LineRevoked(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "order_id", "line_id", "quantity", "revoked_now", "reserved_quantity", "backordered_quantity", "status", "cause_event_id", "location_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_NOW_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    order_id: str
    line_id: str
    quantity: int
    revoked_now: int
    reserved_quantity: int
    backordered_quantity: int
    status: LineStatus
    cause_event_id: str
    location_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., quantity: _Optional[int] = ..., revoked_now: _Optional[int] = ..., reserved_quantity: _Optional[int] = ..., backordered_quantity: _Optional[int] = ..., status: _Optional[_Union[LineStatus, str]] = ..., cause_event_id: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class LineEtaChanged(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "order_id", "line_id", "estimated_fill_at", "eta_known", "backordered_quantity", "version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FILL_AT_FIELD_NUMBER: _ClassVar[int]
    ETA_KNOWN_FIELD_NUMBER: _ClassVar[int]
    BACKORDERED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    order_id: str
    line_id: str
    estimated_fill_at: _timestamp_pb2.Timestamp
    eta_known: bool
    backordered_quantity: int
    version: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., estimated_fill_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., eta_known: _Optional[bool] = ..., backordered_quantity: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class LineCancelled(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "order_id", "line_id", "quantity", "released_quantity", "fulfilled_quantity", "status")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RELEASED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FULFILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    order_id: str
    line_id: str
    quantity: int
    released_quantity: int
    fulfilled_quantity: int
    status: LineStatus
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., quantity: _Optional[int] = ..., released_quantity: _Optional[int] = ..., fulfilled_quantity: _Optional[int] = ..., status: _Optional[_Union[LineStatus, str]] = ...) -> None: ...

class LineFulfilled(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "order_id", "line_id", "fulfillment_id", "quantity", "fulfilled_quantity", "reserved_quantity", "status", "location_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    FULFILLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FULFILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    order_id: str
    line_id: str
    fulfillment_id: str
    quantity: int
    fulfilled_quantity: int
    reserved_quantity: int
    status: LineStatus
    location_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., fulfillment_id: _Optional[str] = ..., quantity: _Optional[int] = ..., fulfilled_quantity: _Optional[int] = ..., reserved_quantity: _Optional[int] = ..., status: _Optional[_Union[LineStatus, str]] = ..., location_id: _Optional[str] = ...) -> None: ...

class SkuReorderSuggested(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "version", "available", "reorder_point", "suggested_order_quantity", "forecast_daily_units", "days_of_cover")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    REORDER_POINT_FIELD_NUMBER: _ClassVar[int]
    SUGGESTED_ORDER_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FORECAST_DAILY_UNITS_FIELD_NUMBER: _ClassVar[int]
    DAYS_OF_COVER_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    version: int
    available: int
    reorder_point: float
    suggested_order_quantity: int
    forecast_daily_units: float
    days_of_cover: float
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., version: _Optional[int] = ..., available: _Optional[int] = ..., reorder_point: _Optional[float] = ..., suggested_order_quantity: _Optional[int] = ..., forecast_daily_units: _Optional[float] = ..., days_of_cover: _Optional[float] = ...) -> None: ...

class OrderReady(_message.Message):
    __slots__ = ("event_id", "occurred_at", "order_id", "customer_id", "line_count", "reserved_quantity", "version", "cause_event_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESERVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    order_id: str
    customer_id: str
    line_count: int
    reserved_quantity: int
    version: int
    cause_event_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., line_count: _Optional[int] = ..., reserved_quantity: _Optional[int] = ..., version: _Optional[int] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

class OrderWaiting(_message.Message):
    __slots__ = ("event_id", "occurred_at", "order_id", "customer_id", "released_quantity", "version", "cause_event_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    RELEASED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CAUSE_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    order_id: str
    customer_id: str
    released_quantity: int
    version: int
    cause_event_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., released_quantity: _Optional[int] = ..., version: _Optional[int] = ..., cause_event_id: _Optional[str] = ...) -> None: ...

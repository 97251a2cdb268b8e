import datetime

from backorder.allocation.v1 import events_pb2 as _events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AllocationOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALLOCATION_OUTCOME_UNSPECIFIED: _ClassVar[AllocationOutcome]
    ALLOCATION_OUTCOME_RESERVED: _ClassVar[AllocationOutcome]
    ALLOCATION_OUTCOME_PARTIALLY_RESERVED: _ClassVar[AllocationOutcome]
    ALLOCATION_OUTCOME_BACKORDERED: _ClassVar[AllocationOutcome]
ALLOCATION_OUTCOME_UNSPECIFIED: AllocationOutcome
ALLOCATION_OUTCOME_RESERVED: AllocationOutcome
ALLOCATION_OUTCOME_PARTIALLY_RESERVED: AllocationOutcome
ALLOCATION_OUTCOME_BACKORDERED: AllocationOutcome

class Line(_message.Message):
    __slots__ = ("order_id", "line_id", "sku", "quantity", "priority", "allow_partial", "status", "reserved_quantity", "fulfilled_quantity", "backordered_quantity", "queue_position", "estimated_fill_at", "eta_known", "placed_at", "customer_id")
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
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., priority: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., status: _Optional[_Union[_events_pb2.LineStatus, str]] = ..., reserved_quantity: _Optional[int] = ..., fulfilled_quantity: _Optional[int] = ..., backordered_quantity: _Optional[int] = ..., queue_position: _Optional[int] = ..., estimated_fill_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., eta_known: _Optional[bool] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., customer_id: _Optional[str] = ...) -> None: ...

class AllocateRequest(_message.Message):
    __slots__ = ("order_id", "line_id", "sku", "quantity", "priority", "allow_partial", "customer_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    line_id: str
    sku: str
    quantity: int
    priority: int
    allow_partial: bool
    customer_id: str
    def __init__(self, order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., priority: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., customer_id: _Optional[str] = ...) -> None: ...

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

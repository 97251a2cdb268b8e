import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdjustmentReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADJUSTMENT_REASON_UNSPECIFIED: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_CYCLE_COUNT: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_DAMAGED: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_LOST: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_FOUND: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_RETURNED: _ClassVar[AdjustmentReason]
    ADJUSTMENT_REASON_OTHER: _ClassVar[AdjustmentReason]
ADJUSTMENT_REASON_UNSPECIFIED: AdjustmentReason
ADJUSTMENT_REASON_CYCLE_COUNT: AdjustmentReason
ADJUSTMENT_REASON_DAMAGED: AdjustmentReason
ADJUSTMENT_REASON_LOST: AdjustmentReason
ADJUSTMENT_REASON_FOUND: AdjustmentReason
ADJUSTMENT_REASON_RETURNED: AdjustmentReason
ADJUSTMENT_REASON_OTHER: AdjustmentReason

class StockReceived(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "receipt_id", "quantity", "on_hand_after", "inbound_id", "location_id", "location_on_hand_after", "stock_version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    STOCK_VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    receipt_id: str
    quantity: int
    on_hand_after: int
    inbound_id: str
    location_id: str
    location_on_hand_after: int
    stock_version: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., receipt_id: _Optional[str] = ..., quantity: _Optional[int] = ..., on_hand_after: _Optional[int] = ..., inbound_id: _Optional[str] = ..., location_id: _Optional[str] = ..., location_on_hand_after: _Optional[int] = ..., stock_version: _Optional[int] = ...) -> None: ...

class StockAdjusted(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "adjustment_id", "delta", "reason", "on_hand_after", "note", "location_id", "location_on_hand_after", "stock_version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ADJUSTMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    STOCK_VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    adjustment_id: str
    delta: int
    reason: AdjustmentReason
    on_hand_after: int
    note: str
    location_id: str
    location_on_hand_after: int
    stock_version: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., adjustment_id: _Optional[str] = ..., delta: _Optional[int] = ..., reason: _Optional[_Union[AdjustmentReason, str]] = ..., on_hand_after: _Optional[int] = ..., note: _Optional[str] = ..., location_id: _Optional[str] = ..., location_on_hand_after: _Optional[int] = ..., stock_version: _Optional[int] = ...) -> None: ...

class StockIssued(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "fulfillment_id", "order_id", "line_id", "quantity", "on_hand_after", "shortfall", "location_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    FULFILLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    fulfillment_id: str
    order_id: str
    line_id: str
    quantity: int
    on_hand_after: int
    shortfall: int
    location_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., fulfillment_id: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., quantity: _Optional[int] = ..., on_hand_after: _Optional[int] = ..., shortfall: _Optional[int] = ..., location_id: _Optional[str] = ...) -> None: ...

class InboundUpdated(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "inbound_id", "open_quantity", "expected_at", "cancelled", "version", "location_id", "from_location_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    OPEN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    inbound_id: str
    open_quantity: int
    expected_at: _timestamp_pb2.Timestamp
    cancelled: bool
    version: int
    location_id: str
    from_location_id: str
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., inbound_id: _Optional[str] = ..., open_quantity: _Optional[int] = ..., expected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancelled: _Optional[bool] = ..., version: _Optional[int] = ..., location_id: _Optional[str] = ..., from_location_id: _Optional[str] = ...) -> None: ...

class StockTransferred(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "transfer_id", "from_location_id", "to_location_id", "quantity", "in_transit", "expected_at", "from_on_hand_after", "to_on_hand_after", "location_id", "stock_version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    IN_TRANSIT_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AT_FIELD_NUMBER: _ClassVar[int]
    FROM_ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    TO_ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    STOCK_VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    transfer_id: str
    from_location_id: str
    to_location_id: str
    quantity: int
    in_transit: bool
    expected_at: _timestamp_pb2.Timestamp
    from_on_hand_after: int
    to_on_hand_after: int
    location_id: str
    stock_version: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., transfer_id: _Optional[str] = ..., from_location_id: _Optional[str] = ..., to_location_id: _Optional[str] = ..., quantity: _Optional[int] = ..., in_transit: _Optional[bool] = ..., expected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., from_on_hand_after: _Optional[int] = ..., to_on_hand_after: _Optional[int] = ..., location_id: _Optional[str] = ..., stock_version: _Optional[int] = ...) -> None: ...

class LocationUpdated(_message.Message):
    __slots__ = ("event_id", "occurred_at", "sku", "location_id", "name", "fill_rank", "active", "version")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILL_RANK_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    occurred_at: _timestamp_pb2.Timestamp
    sku: str
    location_id: str
    name: str
    fill_rank: int
    active: bool
    version: int
    def __init__(self, event_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sku: _Optional[str] = ..., location_id: _Optional[str] = ..., name: _Optional[str] = ..., fill_rank: _Optional[int] = ..., active: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

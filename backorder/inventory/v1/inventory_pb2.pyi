import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Stock(_message.Message):
    __slots__ = ("sku", "on_hand", "inbound_quantity", "updated_at")
    SKU_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    INBOUND_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    sku: str
    on_hand: int
    inbound_quantity: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, sku: _Optional[str] = ..., on_hand: _Optional[int] = ..., inbound_quantity: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("sku",)
    SKU_FIELD_NUMBER: _ClassVar[int]
    sku: str
    def __init__(self, sku: _Optional[str] = ...) -> None: ...

class GetStockResponse(_message.Message):
    __slots__ = ("stock",)
    STOCK_FIELD_NUMBER: _ClassVar[int]
    stock: Stock
    def __init__(self, stock: _Optional[_Union[Stock, _Mapping]] = ...) -> None: ...

class ReceiveStockRequest(_message.Message):
    __slots__ = ("receipt_id", "sku", "quantity", "inbound_id", "note")
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    receipt_id: str
    sku: str
    quantity: int
    inbound_id: str
    note: str
    def __init__(self, receipt_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., inbound_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ReceiveStockResponse(_message.Message):
    __slots__ = ("stock", "movement_id")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    stock: Stock
    movement_id: int
    def __init__(self, stock: _Optional[_Union[Stock, _Mapping]] = ..., movement_id: _Optional[int] = ...) -> None: ...

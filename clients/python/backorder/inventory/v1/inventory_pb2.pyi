import datetime

from backorder.inventory.v1 import events_pb2 as _events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MovementKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MOVEMENT_KIND_UNSPECIFIED: _ClassVar[MovementKind]
    MOVEMENT_KIND_RECEIPT: _ClassVar[MovementKind]
    MOVEMENT_KIND_ADJUSTMENT: _ClassVar[MovementKind]
    MOVEMENT_KIND_ISSUE: _ClassVar[MovementKind]
    MOVEMENT_KIND_TRANSFER_OUT: _ClassVar[MovementKind]
    MOVEMENT_KIND_TRANSFER_IN: _ClassVar[MovementKind]

class StockChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOCK_CHANGE_KIND_UNSPECIFIED: _ClassVar[StockChangeKind]
    STOCK_CHANGE_KIND_SNAPSHOT: _ClassVar[StockChangeKind]
    STOCK_CHANGE_KIND_RECEIPT: _ClassVar[StockChangeKind]
    STOCK_CHANGE_KIND_ADJUSTMENT: _ClassVar[StockChangeKind]
    STOCK_CHANGE_KIND_ISSUE: _ClassVar[StockChangeKind]
    STOCK_CHANGE_KIND_INBOUND: _ClassVar[StockChangeKind]
    STOCK_CHANGE_KIND_TRANSFER: _ClassVar[StockChangeKind]
MOVEMENT_KIND_UNSPECIFIED: MovementKind
MOVEMENT_KIND_RECEIPT: MovementKind
MOVEMENT_KIND_ADJUSTMENT: MovementKind
MOVEMENT_KIND_ISSUE: MovementKind
MOVEMENT_KIND_TRANSFER_OUT: MovementKind
MOVEMENT_KIND_TRANSFER_IN: MovementKind
STOCK_CHANGE_KIND_UNSPECIFIED: StockChangeKind
STOCK_CHANGE_KIND_SNAPSHOT: StockChangeKind
STOCK_CHANGE_KIND_RECEIPT: StockChangeKind
STOCK_CHANGE_KIND_ADJUSTMENT: StockChangeKind
STOCK_CHANGE_KIND_ISSUE: StockChangeKind
STOCK_CHANGE_KIND_INBOUND: StockChangeKind
STOCK_CHANGE_KIND_TRANSFER: StockChangeKind

class Location(_message.Message):
    __slots__ = ("location_id", "name", "fill_rank", "active", "version", "updated_at")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILL_RANK_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    location_id: str
    name: str
    fill_rank: int
    active: bool
    version: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, location_id: _Optional[str] = ..., name: _Optional[str] = ..., fill_rank: _Optional[int] = ..., active: _Optional[bool] = ..., version: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LocationStock(_message.Message):
    __slots__ = ("location_id", "on_hand", "inbound_quantity", "in_transit_quantity")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    INBOUND_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    IN_TRANSIT_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    location_id: str
    on_hand: int
    inbound_quantity: int
    in_transit_quantity: int
    def __init__(self, location_id: _Optional[str] = ..., on_hand: _Optional[int] = ..., inbound_quantity: _Optional[int] = ..., in_transit_quantity: _Optional[int] = ...) -> None: ...

class Stock(_message.Message):
    __slots__ = ("sku", "on_hand", "inbound_quantity", "updated_at", "in_transit_quantity", "locations")
    SKU_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_FIELD_NUMBER: _ClassVar[int]
    INBOUND_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    IN_TRANSIT_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    on_hand: int
    inbound_quantity: int
    updated_at: _timestamp_pb2.Timestamp
    in_transit_quantity: int
    locations: _containers.RepeatedCompositeFieldContainer[LocationStock]
    def __init__(self, sku: _Optional[str] = ..., on_hand: _Optional[int] = ..., inbound_quantity: _Optional[int] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., in_transit_quantity: _Optional[int] = ..., locations: _Optional[_Iterable[_Union[LocationStock, _Mapping]]] = ...) -> None: ...

class Inbound(_message.Message):
    __slots__ = ("inbound_id", "sku", "quantity", "received_quantity", "open_quantity", "expected_at", "cancelled", "version", "created_at", "updated_at", "location_id", "from_location_id")
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    OPEN_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AT_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    inbound_id: str
    sku: str
    quantity: int
    received_quantity: int
    open_quantity: int
    expected_at: _timestamp_pb2.Timestamp
    cancelled: bool
    version: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    location_id: str
    from_location_id: str
    def __init__(self, inbound_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., received_quantity: _Optional[int] = ..., open_quantity: _Optional[int] = ..., expected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cancelled: _Optional[bool] = ..., version: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location_id: _Optional[str] = ..., from_location_id: _Optional[str] = ...) -> None: ...

class Movement(_message.Message):
    __slots__ = ("id", "sku", "kind", "key", "quantity", "on_hand_after", "inbound_id", "reason", "note", "order_id", "line_id", "shortfall", "created_at", "location_id", "other_location_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ON_HAND_AFTER_FIELD_NUMBER: _ClassVar[int]
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    LINE_ID_FIELD_NUMBER: _ClassVar[int]
    SHORTFALL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    OTHER_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    sku: str
    kind: MovementKind
    key: str
    quantity: int
    on_hand_after: int
    inbound_id: str
    reason: _events_pb2.AdjustmentReason
    note: str
    order_id: str
    line_id: str
    shortfall: int
    created_at: _timestamp_pb2.Timestamp
    location_id: str
    other_location_id: str
    def __init__(self, id: _Optional[int] = ..., sku: _Optional[str] = ..., kind: _Optional[_Union[MovementKind, str]] = ..., key: _Optional[str] = ..., quantity: _Optional[int] = ..., on_hand_after: _Optional[int] = ..., inbound_id: _Optional[str] = ..., reason: _Optional[_Union[_events_pb2.AdjustmentReason, str]] = ..., note: _Optional[str] = ..., order_id: _Optional[str] = ..., line_id: _Optional[str] = ..., shortfall: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location_id: _Optional[str] = ..., other_location_id: _Optional[str] = ...) -> None: ...

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

class ListStockRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "sku_prefix")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SKU_PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    sku_prefix: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., sku_prefix: _Optional[str] = ...) -> None: ...

class ListStockResponse(_message.Message):
    __slots__ = ("stocks", "next_page_token")
    STOCKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    stocks: _containers.RepeatedCompositeFieldContainer[Stock]
    next_page_token: str
    def __init__(self, stocks: _Optional[_Iterable[_Union[Stock, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ReceiveStockRequest(_message.Message):
    __slots__ = ("receipt_id", "sku", "quantity", "inbound_id", "note", "location_id")
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    receipt_id: str
    sku: str
    quantity: int
    inbound_id: str
    note: str
    location_id: str
    def __init__(self, receipt_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., inbound_id: _Optional[str] = ..., note: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class ReceiveStockResponse(_message.Message):
    __slots__ = ("stock", "movement_id", "inbound")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    stock: Stock
    movement_id: int
    inbound: Inbound
    def __init__(self, stock: _Optional[_Union[Stock, _Mapping]] = ..., movement_id: _Optional[int] = ..., inbound: _Optional[_Union[Inbound, _Mapping]] = ...) -> None: ...

class AdjustStockRequest(_message.Message):
    __slots__ = ("adjustment_id", "sku", "delta", "reason", "note", "location_id")
    ADJUSTMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    adjustment_id: str
    sku: str
    delta: int
    reason: _events_pb2.AdjustmentReason
    note: str
    location_id: str
    def __init__(self, adjustment_id: _Optional[str] = ..., sku: _Optional[str] = ..., delta: _Optional[int] = ..., reason: _Optional[_Union[_events_pb2.AdjustmentReason, str]] = ..., note: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class AdjustStockResponse(_message.Message):
    __slots__ = ("stock", "movement_id")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    stock: Stock
    movement_id: int
    def __init__(self, stock: _Optional[_Union[Stock, _Mapping]] = ..., movement_id: _Optional[int] = ...) -> None: ...

class ExpectInboundRequest(_message.Message):
    __slots__ = ("inbound_id", "sku", "quantity", "expected_at", "location_id")
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AT_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    inbound_id: str
    sku: str
    quantity: int
    expected_at: _timestamp_pb2.Timestamp
    location_id: str
    def __init__(self, inbound_id: _Optional[str] = ..., sku: _Optional[str] = ..., quantity: _Optional[int] = ..., expected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., location_id: _Optional[str] = ...) -> None: ...

class ExpectInboundResponse(_message.Message):
    __slots__ = ("inbound", "stock")
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    inbound: Inbound
    stock: Stock
    def __init__(self, inbound: _Optional[_Union[Inbound, _Mapping]] = ..., stock: _Optional[_Union[Stock, _Mapping]] = ...) -> None: ...

class CancelInboundRequest(_message.Message):
    __slots__ = ("inbound_id",)
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    inbound_id: str
    def __init__(self, inbound_id: _Optional[str] = ...) -> None: ...

class CancelInboundResponse(_message.Message):
    __slots__ = ("inbound", "stock")
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    inbound: Inbound
    stock: Stock
    def __init__(self, inbound: _Optional[_Union[Inbound, _Mapping]] = ..., stock: _Optional[_Union[Stock, _Mapping]] = ...) -> None: ...

class ListInboundRequest(_message.Message):
    __slots__ = ("sku", "page_size", "page_token", "open_only", "location_id")
    SKU_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    sku: str
    page_size: int
    page_token: str
    open_only: bool
    location_id: str
    def __init__(self, sku: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., open_only: _Optional[bool] = ..., location_id: _Optional[str] = ...) -> None: ...

class ListInboundResponse(_message.Message):
    __slots__ = ("inbound", "next_page_token")
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    inbound: _containers.RepeatedCompositeFieldContainer[Inbound]
    next_page_token: str
    def __init__(self, inbound: _Optional[_Iterable[_Union[Inbound, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListMovementsRequest(_message.Message):
    __slots__ = ("sku", "page_size", "page_token", "location_id")
    SKU_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    sku: str
    page_size: int
    page_token: str
    location_id: str
    def __init__(self, sku: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class ListMovementsResponse(_message.Message):
    __slots__ = ("movements", "next_page_token")
    MOVEMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    movements: _containers.RepeatedCompositeFieldContainer[Movement]
    next_page_token: str
    def __init__(self, movements: _Optional[_Iterable[_Union[Movement, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchStockRequest(_message.Message):
    __slots__ = ("skus", "location_id")
    SKUS_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    skus: _containers.RepeatedScalarFieldContainer[str]
    location_id: str
    def __init__(self, skus: _Optional[_Iterable[str]] = ..., location_id: _Optional[str] = ...) -> None: ...

class WatchStockResponse(_message.Message):
    __slots__ = ("stock", "kind", "movement_id", "inbound_id", "location_id")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    INBOUND_ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    stock: Stock
    kind: StockChangeKind
    movement_id: int
    inbound_id: str
    location_id: str
    def __init__(self, stock: _Optional[_Union[Stock, _Mapping]] = ..., kind: _Optional[_Union[StockChangeKind, str]] = ..., movement_id: _Optional[int] = ..., inbound_id: _Optional[str] = ..., location_id: _Optional[str] = ...) -> None: ...

class PutLocationRequest(_message.Message):
    __slots__ = ("location_id", "name", "fill_rank", "active")
    LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FILL_RANK_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    location_id: str
    name: str
    fill_rank: int
    active: bool
    def __init__(self, location_id: _Optional[str] = ..., name: _Optional[str] = ..., fill_rank: _Optional[int] = ..., active: _Optional[bool] = ...) -> None: ...

class PutLocationResponse(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: Location
    def __init__(self, location: _Optional[_Union[Location, _Mapping]] = ...) -> None: ...

class ListLocationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLocationsResponse(_message.Message):
    __slots__ = ("locations", "next_page_token")
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    locations: _containers.RepeatedCompositeFieldContainer[Location]
    next_page_token: str
    def __init__(self, locations: _Optional[_Iterable[_Union[Location, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TransferStockRequest(_message.Message):
    __slots__ = ("transfer_id", "sku", "from_location_id", "to_location_id", "quantity", "expected_at")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    FROM_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    TO_LOCATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AT_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    sku: str
    from_location_id: str
    to_location_id: str
    quantity: int
    expected_at: _timestamp_pb2.Timestamp
    def __init__(self, transfer_id: _Optional[str] = ..., sku: _Optional[str] = ..., from_location_id: _Optional[str] = ..., to_location_id: _Optional[str] = ..., quantity: _Optional[int] = ..., expected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TransferStockResponse(_message.Message):
    __slots__ = ("stock", "movement_id", "inbound")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    stock: Stock
    movement_id: int
    inbound: Inbound
    def __init__(self, stock: _Optional[_Union[Stock, _Mapping]] = ..., movement_id: _Optional[int] = ..., inbound: _Optional[_Union[Inbound, _Mapping]] = ...) -> None: ...

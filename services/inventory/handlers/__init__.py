"""The inventory service's use cases, what entrypoints call. Where to look:

- commands: what clients ask, validated (ReceiveStock, AdjustStock, ExpectInbound,
  TransferStock)
- locations: PutLocation, ListLocations, resolving the location a write names
- stock: use cases that change stock (receive, adjust, transfer, expect and cancel inbound)
- reads: stock, the ledger, inbound, WatchStock
- allocation_events: line.fulfilled from the allocation service (issues units)
- events: the events published (inventory.events)
"""

from services.inventory.handlers.allocation_events import line_fulfilled
from services.inventory.handlers.commands import (
    REASONS,
    AdjustStock,
    ExpectInbound,
    ReceiveStock,
    TransferStock,
    reason_value,
)
from services.inventory.handlers.locations import list_locations, put_location
from services.inventory.handlers.reads import (
    MAX_WATCHED_SKUS,
    StockChange,
    get_stock,
    list_inbound,
    list_movements,
    list_stock,
    watch_stock,
)
from services.inventory.handlers.stock import (
    Adjustment,
    InboundChange,
    Receipt,
    Transfer,
    adjust_stock,
    cancel_inbound,
    expect_inbound,
    receive_stock,
    transfer_stock,
)

__all__ = [
    "MAX_WATCHED_SKUS",
    "REASONS",
    "AdjustStock",
    "Adjustment",
    "ExpectInbound",
    "InboundChange",
    "Receipt",
    "ReceiveStock",
    "StockChange",
    "Transfer",
    "TransferStock",
    "adjust_stock",
    "cancel_inbound",
    "expect_inbound",
    "get_stock",
    "line_fulfilled",
    "list_inbound",
    "list_locations",
    "list_movements",
    "list_stock",
    "put_location",
    "reason_value",
    "receive_stock",
    "transfer_stock",
    "watch_stock",
]

"""The inventory service's use cases, what entrypoints call. Where to look:

- commands: what clients ask, validated (ReceiveStock, AdjustStock, ExpectInbound)
- stock: use cases that change stock (receive, adjust, expect and cancel inbound)
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
    reason_value,
)
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
    adjust_stock,
    cancel_inbound,
    expect_inbound,
    receive_stock,
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
    "adjust_stock",
    "cancel_inbound",
    "expect_inbound",
    "get_stock",
    "line_fulfilled",
    "list_inbound",
    "list_movements",
    "list_stock",
    "reason_value",
    "receive_stock",
    "watch_stock",
]

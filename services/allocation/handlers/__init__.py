"""The allocation service's use cases, what entrypoints call. Where to look:

- commands: what clients ask, validated (Allocate, FulfillLine, SetSkuPolicy)
- lines: use cases of one line (allocate, get, list, cancel, fulfill, priority)
- skus: a SKU's summary and policy, the decision log
- inventory_events: receipts, adjustments and inbound from the inventory service
- locked_sku: the fill, shrinkage and the ETA walk of a locked SKU
- events: the events published (allocation.events)
- planning: demand history, planning parameters, replenishment advice (docs/spec.md §9)
"""

from services.allocation.handlers.commands import (
    Allocate,
    AllocateOrder,
    FulfillLine,
    OrderLine,
    SetSkuPolicy,
)
from services.allocation.handlers.events import status_from_proto, status_proto
from services.allocation.handlers.inventory_events import (
    inbound_updated,
    location_updated,
    stock_adjusted,
    stock_issued,
    stock_received,
    stock_transferred,
)
from services.allocation.handlers.lines import (
    Cancelled,
    LineView,
    cancel_line,
    fulfill_line,
    get_line,
    list_lines,
    set_priority,
)
from services.allocation.handlers.orders import (
    OrderCancelled,
    OrderView,
    allocate_order,
    cancel_order,
    get_order,
)
from services.allocation.handlers.placing import GroupCommit, Placed, allocate
from services.allocation.handlers.planning import (
    DemandHistory,
    ImportDemandHistory,
    SetPlanningParams,
    check_crossings,
    get_demand_history,
    get_replenishment,
    import_demand_history,
    list_reorder_suggestions,
    set_planning_params,
)
from services.allocation.handlers.skus import (
    SkuSummary,
    get_sku_summary,
    list_reservations,
    set_sku_policy,
)

__all__ = [
    "Allocate",
    "AllocateOrder",
    "Cancelled",
    "DemandHistory",
    "FulfillLine",
    "GroupCommit",
    "ImportDemandHistory",
    "LineView",
    "OrderCancelled",
    "OrderLine",
    "OrderView",
    "Placed",
    "SetPlanningParams",
    "SetSkuPolicy",
    "SkuSummary",
    "allocate",
    "allocate_order",
    "cancel_line",
    "cancel_order",
    "check_crossings",
    "fulfill_line",
    "get_demand_history",
    "get_line",
    "get_order",
    "get_replenishment",
    "get_sku_summary",
    "import_demand_history",
    "inbound_updated",
    "list_lines",
    "list_reorder_suggestions",
    "list_reservations",
    "location_updated",
    "set_planning_params",
    "set_priority",
    "set_sku_policy",
    "status_from_proto",
    "status_proto",
    "stock_adjusted",
    "stock_issued",
    "stock_received",
    "stock_transferred",
]

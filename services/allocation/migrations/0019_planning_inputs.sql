-- A full planning refresh recomputes only the SKUs whose forecast would change
-- (docs/spec.md §9, docs/planning.md "What a refresh recomputes"): each result records the
-- inputs it was computed from, and a SKU is refreshed again when they differ from the
-- SKU's current ones. The inputs of a forecast are the SKU's demand history through today
-- and its parameters:
--  * its demand changes with every line placed (sku.lines_placed counts them, migration
--    0004) and every import (sku.demand_imports, counted by ImportDemandHistory);
--  * its parameters change with planning_params.updated_at (none: the defaults);
--  * its history grows by a day when the planning day turns over (a SKU without any day in
--    its history window stays without one until a line or an import adds one).
-- A result from before this migration has no recorded inputs: it is refreshed once.

alter table sku add column demand_imports bigint not null default 0
    check (demand_imports >= 0);

alter table planning_result
    add column demand_seen bigint,          -- lines_placed + demand_imports as read
    add column params_seen timestamptz,     -- planning_params.updated_at as read (null: none)
    add column history_through date;        -- the planning day the history was read through

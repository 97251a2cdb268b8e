-- Forecasts read complete days only (docs/spec.md §9, docs/planning.md "What a refresh
-- recomputes"): a SKU's history runs through yesterday in the planning time zone; today's
-- running total joins it when the day is over. A partial today read as a day of demand
-- pulled every forecast down in the morning and back up by night, and it made every line
-- placed a reason to recompute its SKU (which then changed nothing real).
-- So a line placed no longer makes its SKU's result stale; an import still does, at once
-- (it may rewrite any past day): each result records the SKU's import count as read. A
-- result from before this migration recorded none and was computed through a partial
-- today: it is refreshed once.
-- The first pass of a day recomputes every SKU that ever had demand, read from the SKU's
-- counters as of the pass (its history may have grown by the day that ended);
-- history_through is the planning day of the refresh, its history read through the day
-- before.

alter table planning_result add column imports_seen bigint;  -- sku.demand_imports as read

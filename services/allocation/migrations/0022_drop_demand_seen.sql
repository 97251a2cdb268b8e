-- A result's demand_seen (migration 0019: the SKU's lines_placed + demand_imports as the
-- refresh read them) has had no reader since 0021: a placed line no longer makes a result
-- stale, an import is marked by imports_seen, and a new day's pass reads the SKU's own
-- counters. Every refresh still wrote it; it goes.

alter table planning_result drop column demand_seen;

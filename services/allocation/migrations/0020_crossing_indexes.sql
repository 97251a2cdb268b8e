-- The crossing check behind sku.reorder_suggested (docs/spec.md §9) in proportion to the
-- crossings, not to the SKUs below their reorder point: every 2 s it read every SKU below
-- (to find those not yet flagged) and every flagged SKU (to find those back at or above),
-- 20-60 ms at 110,000 SKUs and growing with them. The flag moves onto the SKU row, beside
-- the counters and the copied reorder point (migration 0016), so that two partial indexes
-- hold exactly the SKUs the check has to act on — normally none:
--  * sku_fell_below_reorder_point: below now and not flagged (an event to fire);
--  * sku_back_at_reorder_point: flagged and not below now (to re-arm).
-- The expressions are those of the view planning_advice (repeatable/planning.sql), which
-- is made anew after this file with the flag read from here.

drop view if exists planning_advice;

alter table sku add column planning_below_reorder_point boolean not null default false;

update sku s set planning_below_reorder_point = true
from planning_result r where r.sku = s.sku and r.below_reorder_point;

-- Its index (migration 0015) goes with it.
alter table planning_result drop column below_reorder_point;

create index sku_fell_below_reorder_point on sku (sku)
    where free_units + inbound_units - backordered_units < planning_reorder_point
      and not planning_below_reorder_point;

create index sku_back_at_reorder_point on sku (sku)
    where planning_below_reorder_point
      and (free_units + inbound_units - backordered_units < planning_reorder_point) is not true;

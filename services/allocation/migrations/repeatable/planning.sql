-- Demand history (docs/spec.md §9): the one home of how placing and cancelling lines count
-- as demand. `place_line` (placement.sql) and the cancel (adapters/lines.py) call these, in
-- the transaction that places or cancels the line: a line refused afterwards rolls back with
-- its demand, and a repeat never reaches them.
-- A repeatable file: applied again whenever it changes (create or replace).

-- The calendar day of `at` in the planning time zone. (PL/pgSQL: a SQL function that is
-- not inlined, as this one is not with its subquery, plans it on every call.)
create or replace function planning_day(at timestamptz) returns date
language plpgsql stable as $$
begin
    return (at at time zone (select time_zone from planning_clock))::date;
end $$;

-- `units` of SKU `p_sku` ordered by a line placed at `at`.
-- (PL/pgSQL, as the next one: its statement's plan is made once per session and kept; a
-- SQL function that writes is planned again on every call, and every placed line calls it.)
create or replace function record_demand_ordered(p_sku text, units bigint, at timestamptz)
returns void
language plpgsql as $$
begin
    insert into demand_day as d (sku, day, ordered_units)
    values (p_sku, planning_day(at), units)
    on conflict (sku, day) do update set ordered_units = d.ordered_units + excluded.ordered_units;
end $$;

-- `units` of SKU `p_sku` cancelled at `at` (the units of the line not shipped).
create or replace function record_demand_cancelled(p_sku text, units bigint, at timestamptz)
returns void
language plpgsql as $$
begin
    insert into demand_day as d (sku, day, cancelled_units)
    values (p_sku, planning_day(at), units)
    on conflict (sku, day)
        do update set cancelled_units = d.cancelled_units + excluded.cancelled_units;
end $$;

-- Views are dropped and made anew: `create or replace` cannot change a column's type.
drop view if exists planning_advice;
drop view if exists sku_available;

-- Each known SKU's advice as of now: the planning worker's latest levels (null columns if it
-- never refreshed the SKU) with current `available` and days of cover (available / daily
-- forecast; null when the forecast is 0). GetReplenishment, ListReorderSuggestions and the
-- crossing check (sku.reorder_suggested) all read this view.
-- `available` is what a SKU can still promise without ordering more (docs/spec.md §9): free
-- units plus open inbound minus backordered units, across locations, from counters the
-- transactions that change them keep current (inbound_units by a trigger on inbound,
-- migration 0016). This view is its one home; days of cover and the reorder point are read
-- from the SKU row (its copies of the levels) in the expressions of the index
-- sku_reorder_urgency, which repeats them as an index must, so that the list walks it.
create or replace view planning_advice as
select s.sku, s.free_units + s.inbound_units - s.backordered_units as available,
       case when s.planning_forecast_daily_units > 0
            then (s.free_units + s.inbound_units - s.backordered_units)
                 / s.planning_forecast_daily_units
       end as days_of_cover,
       r.demand_class, r.forecast_method, r.forecast_daily_units, r.demand_std,
       r.safety_stock, s.planning_reorder_point as reorder_point, r.order_up_to,
       r.history_days, r.refreshed_at, s.planning_below_reorder_point as below_reorder_point,
       r.event_version
from sku s
left join planning_result r on r.sku = s.sku;

-- Demand history (docs/spec.md §9): the one home of how placing and cancelling lines count
-- as demand. `place_line` (placement.sql) and the cancel (adapters/lines.py) call these, in
-- the transaction that places or cancels the line: a line refused afterwards rolls back with
-- its demand, and a repeat never reaches them.
-- A repeatable file: applied again whenever it changes (create or replace).

-- The calendar day of `at` in the planning time zone.
create or replace function planning_day(at timestamptz) returns date
language sql stable as $$
    select (at at time zone (select time_zone from planning_clock))::date
$$;

-- `units` of SKU `p_sku` ordered by a line placed at `at`.
create or replace function record_demand_ordered(p_sku text, units bigint, at timestamptz)
returns void
language sql as $$
    insert into demand_day as d (sku, day, ordered_units)
    values (p_sku, planning_day(at), units)
    on conflict (sku, day) do update set ordered_units = d.ordered_units + excluded.ordered_units
$$;

-- `units` of SKU `p_sku` cancelled at `at` (the units of the line not shipped).
create or replace function record_demand_cancelled(p_sku text, units bigint, at timestamptz)
returns void
language sql as $$
    insert into demand_day as d (sku, day, cancelled_units)
    values (p_sku, planning_day(at), units)
    on conflict (sku, day)
        do update set cancelled_units = d.cancelled_units + excluded.cancelled_units
$$;

-- What a SKU can still promise without ordering more (docs/spec.md §9): free units plus open
-- inbound minus backordered units, across locations. The one home of `available`.
create or replace view sku_available as
select s.sku,
       s.free_units + coalesce(i.open_units, 0) - s.backordered_units as available
from sku s
left join (select sku, sum(open_quantity) as open_units from inbound
           where open_quantity > 0 and not cancelled group by sku) i on i.sku = s.sku;

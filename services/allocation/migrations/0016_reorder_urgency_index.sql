-- ListReorderSuggestions over any number of SKUs (docs/spec.md §9, docs/planning.md): the
-- list walks an index in urgency order instead of computing `available` for every SKU and
-- sorting them all on every page. Its sort key (days of cover = available / daily forecast)
-- and its filter (available < reorder point) must then be columns of one row:
--  * `inbound_units`: the SKU's open inbound units (open_quantity of its inbounds that are
--    open and not cancelled), kept exact by a trigger on `inbound`;
--  * `planning_forecast_daily_units` and `planning_reorder_point`: copies of the planning
--    worker's latest `planning_result` levels (null until its first refresh), kept by a
--    trigger on `planning_result`, whoever writes it.
-- `available` = free_units + inbound_units - backordered_units (repeatable/planning.sql, its
-- one home) is then current in every transaction that changes a counter, and the partial
-- index below holds exactly the SKUs under their reorder point, in urgency order.

alter table sku add column inbound_units bigint not null default 0
        check (inbound_units >= 0),
    add column planning_forecast_daily_units double precision,
    add column planning_reorder_point double precision;

create function inbound_open_units(i inbound) returns bigint
language sql immutable as $$
    select case when i.open_quantity > 0 and not i.cancelled then i.open_quantity else 0 end
$$;

create function count_inbound_units() returns trigger language plpgsql as $$
begin
    if TG_OP in ('UPDATE', 'DELETE') then
        update sku set inbound_units = inbound_units - inbound_open_units(old)
        where sku.sku = old.sku and inbound_open_units(old) <> 0;
    end if;
    if TG_OP in ('INSERT', 'UPDATE') then
        update sku set inbound_units = inbound_units + inbound_open_units(new)
        where sku.sku = new.sku and inbound_open_units(new) <> 0;
    end if;
    return null;
end $$;

create trigger inbound_units_count after insert or update or delete on inbound
    for each row execute function count_inbound_units();

update sku s set inbound_units = i.units
from (select sku, sum(inbound_open_units(inbound)) as units from inbound group by sku) i
where i.sku = s.sku and i.units <> 0;

create function copy_planning_levels() returns trigger language plpgsql as $$
begin
    if TG_OP = 'DELETE' then
        update sku set planning_forecast_daily_units = null, planning_reorder_point = null
        where sku.sku = old.sku;
    else
        update sku set planning_forecast_daily_units = new.forecast_daily_units,
                       planning_reorder_point = new.reorder_point
        where sku.sku = new.sku
          and (planning_forecast_daily_units, planning_reorder_point)
              is distinct from (new.forecast_daily_units, new.reorder_point);
    end if;
    return null;
end $$;

create trigger planning_levels_copy after insert or update or delete on planning_result
    for each row execute function copy_planning_levels();

update sku s set planning_forecast_daily_units = r.forecast_daily_units,
                 planning_reorder_point = r.reorder_point
from planning_result r where r.sku = s.sku;

-- The SKUs under their reorder point, fewest days of cover first (none: a zero forecast,
-- last), ties by SKU: ListReorderSuggestions' order and keyset, and the crossing check's
-- "below now". The expressions are those of the view planning_advice, word for word.
create index sku_reorder_urgency on sku (
    (case when planning_forecast_daily_units > 0
          then (free_units + inbound_units - backordered_units) / planning_forecast_daily_units
     end),
    sku)
    where free_units + inbound_units - backordered_units < planning_reorder_point;

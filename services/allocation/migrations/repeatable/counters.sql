-- A locked SKU's counters moved by deltas, in one statement: the change of each priority
-- band's (waiting lines, backordered units) (`sku_queue`), of each location's (free,
-- reserved) units (`sku_location`), and the SKU's totals (free and reserved are the sums of
-- the locations' changes, given as `p_free` and `p_reserved`; its waiting lines and
-- backordered units the sums of the bands'). Returns the SKU row after. The one home of
-- these moves: services/allocation/adapters/skus.py `change_totals` calls it for every use
-- case, and `reserve_new_line` (placement.sql) for Allocate's one-round-trip reservation.
-- A repeatable file: applied again whenever it changes (create or replace).
create or replace function change_totals(
    p_sku text, p_priorities smallint[], p_lines bigint[], p_units bigint[],
    p_free bigint, p_reserved bigint, p_fulfilled bigint, p_unmatched bigint,
    p_locations text[], p_location_free bigint[], p_location_reserved bigint[])
returns sku
language plpgsql as $$
#variable_conflict use_column
declare
    after sku;
begin
    with band as (
        select * from unnest(p_priorities, p_lines, p_units)
            as b(priority, lines, units)),
    -- Two parts, as a CHECK fails on the row an upsert proposes before it conflicts;
    -- only a band gaining lines can be new (the SKU row is locked: no race).
    queued as (
        update sku_queue q set waiting_lines = q.waiting_lines + b.lines,
            backordered_units = q.backordered_units + b.units
        from band b where q.sku = p_sku and q.priority = b.priority
        returning 1),
    opened as (
        insert into sku_queue (sku, priority, waiting_lines, backordered_units)
        select p_sku, b.priority, b.lines, b.units from band b
        where not exists (
            select 1 from sku_queue q where q.sku = p_sku and q.priority = b.priority)
        returning 1),
    move as (
        select * from unnest(p_locations, p_location_free, p_location_reserved)
            as m(location_id, free, reserved)),
    moved as (
        update sku_location l set free_units = l.free_units + m.free,
            reserved_units = l.reserved_units + m.reserved
        from move m where l.sku = p_sku and l.location_id = m.location_id
        returning 1),
    stocked as (
        insert into sku_location (sku, location_id, free_units, reserved_units)
        select p_sku, m.location_id, m.free, m.reserved from move m
        where not exists (select 1 from sku_location l
                          where l.sku = p_sku and l.location_id = m.location_id)
        returning 1)
    update sku s set free_units = s.free_units + p_free,
        reserved_units = s.reserved_units + p_reserved,
        fulfilled_units = s.fulfilled_units + p_fulfilled,
        unmatched_shrinkage_units = s.unmatched_shrinkage_units + p_unmatched,
        waiting_lines = s.waiting_lines + (select coalesce(sum(lines), 0) from band),
        backordered_units = s.backordered_units
            + (select coalesce(sum(units), 0) from band),
        updated_at = clock_timestamp()
    where s.sku = p_sku returning s.* into after;
    return after;
end $$;

-- A line's units per location (Line.allocations): reserved there = units the fill gave
-- there - units shrinkage took back there - units shipped from there (0 once cancelled:
-- cancelling releases them all); fulfilled there = units shipped from there. Derived from
-- the decision log and the fulfilments (a handful of rows per line), so the fill writes
-- nothing more than before.
-- A repeatable file: applied again whenever it changes (create or replace).

create or replace function line_allocations(p_line bigint)
returns table (location_id text, reserved bigint, fulfilled bigint)
language sql stable as $$
    select a.location_id,
           case when l.cancelled then 0 else sum(a.reserved) end::bigint,
           sum(a.fulfilled)::bigint
    from (select r.location_id,
                 case when r.rule = 'REVOKED' then -r.quantity else r.quantity end as reserved,
                 0::bigint as fulfilled
          from reservation r where r.line = p_line
          union all
          select f.location_id, -f.quantity, f.quantity from fulfillment f
          where f.line = p_line) a
    join line l on l.id = p_line
    group by a.location_id, l.cancelled
    having (case when l.cancelled then 0 else sum(a.reserved) end) <> 0
        or sum(a.fulfilled) <> 0
    order by a.location_id
$$;

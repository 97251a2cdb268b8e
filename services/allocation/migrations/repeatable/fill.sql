-- The fill's writes (services/allocation/adapters/queue.py `apply_fills`, and Allocate's
-- one-round-trip reservation, `reserve_new_line` in placement.sql): one statement writes the
-- decision log rows, the lines' reserved units, and each fill's line.reserved in the outbox
-- (its body built in SQL: protobuf.sql), in fill order (rank order; a whole fill's
-- queue_position is 1 for each line, so it cannot order them), and wakes the relay. Row i
-- of the arrays is fill i. Returns each fill's line as that fill left it. A line may have
-- several fills (one per location, at most one per location in one call): it is updated
-- once, by their sum, and each fill but its last shows fewer units reserved than in the
-- end (the later fills' units still waiting). A line that stops waiting loses its ETA.
-- `p_occurred` and `p_cause_part` are the events' fields 2 and 12, encoded by protobuf.
-- A repeatable file: applied again whenever it changes (create or replace).
create or replace function apply_fills(
    p_sku text, p_lines bigint[], p_quantities bigint[], p_positions bigint[],
    p_rules text[], p_locations text[], p_cause text, p_cause_event_id uuid, p_policy text,
    p_exchange text, p_routing_key text, p_message_type text, p_occurred bytea,
    p_cause_part bytea, p_trace_context jsonb, p_notify_channel text)
returns table (line_key bigint, line_priority smallint, line_reserved bigint,
               line_backordered bigint, line_status text, reserved_now bigint)
language plpgsql as $$
#variable_conflict use_column
begin
    return query
    with fill as (
            select * from unnest(p_lines, p_quantities, p_positions, p_rules, p_locations)
                with ordinality as f(line, quantity, queue_position, rule, location_id, n)),
        logged as (
            insert into reservation (line, sku, quantity, cause, cause_event_id,
                                     queue_position, rule, fill_policy, location_id)
            select line, p_sku, quantity, p_cause, p_cause_event_id, queue_position, rule, p_policy,
                   location_id
            from fill order by n
            returning id, line, location_id),
        per_line as (
            select line, sum(quantity) as quantity from fill group by line),
        updated as (
            update line l set reserved = l.reserved + f.quantity,
                eta = case when l.backordered = f.quantity then null else l.eta end
            from per_line f where l.id = f.line
            returning l.id, l.order_id, l.line_id, l.quantity, l.priority, l.reserved,
                      l.backordered, l.status),
        later as (
            select *, coalesce(sum(quantity) over (partition by line order by n desc
                                                   rows between unbounded preceding
                                                   and 1 preceding), 0)::bigint as later
            from fill),
        filled as (
            select f.n, u.id, u.order_id, u.line_id, u.quantity, u.priority,
                   f.quantity as reserved_now, g.id as reservation_id, f.location_id,
                   u.reserved - f.later as reserved, u.backordered + f.later as backordered,
                   case when f.later > 0 and u.status = 'RESERVED' then 'PARTIALLY_RESERVED'
                        else u.status end as status,
                   gen_random_uuid() as event_id
            from later f join updated u on u.id = f.line
            join logged g on g.line = f.line and g.location_id = f.location_id),
        written as (
            insert into outbox (event_id, exchange, routing_key, message_type, sku, body,
                                trace_context)
            select event_id, p_exchange, p_routing_key, p_message_type, p_sku,
                   line_reserved_body(event_id, p_occurred, p_sku, order_id, line_id, quantity,
                                      reserved_now, reserved, backordered, status,
                                      reservation_id, p_cause_part, location_id),
                   p_trace_context
            from filled order by n
            returning 1),
        -- The relay's wake-up, delivered at commit.
        notified as (select pg_notify(p_notify_channel, ''))
        select f.id, f.priority, f.reserved, f.backordered, f.status, f.reserved_now
        from filled f cross join notified order by f.n;
end $$;

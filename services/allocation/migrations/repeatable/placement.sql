-- Placing a new line: the one home of the rule (migration 0004) that queues a line.
-- Every path that creates a line goes through `place_line`: Allocate's one-round-trip path
-- (`queue_line` below) and its full path (services/allocation/adapters/placement.py).
-- bench/workload.py builds long queues with a set-based copy of it that
-- tests/integration/test_placement.py holds equal.
-- A repeatable file: applied again whenever it changes (create or replace).
-- The small predicates below are PL/pgSQL, not SQL: Postgres inlines none of them into its
-- callers (a row argument, an argument read twice), and a SQL function it does not inline
-- plans its statement again on every call, where PL/pgSQL keeps the plan for the session.
-- Allocate called them on every line: 150-200 us of planning a call (docs/performance.md).

-- The one guard of Allocate's paths: true when placing a line of `p_quantity` units in SKU
-- `s` (its row read under its lock) is more than queueing it: free units for the fill to
-- give, a policy to refuse it (no backorders, over the limit), or open inbound for the ETA
-- walk. Then the service's full path places it; otherwise the line is only queued.
create or replace function line_needs_the_fill(s sku, p_quantity bigint) returns boolean
language plpgsql stable as $$
begin
    return s.free_units > 0
        or not s.backorders_accepted
        or (s.backorder_limit > 0 and s.backordered_units + p_quantity > s.backorder_limit)
        or exists (select 1 from inbound i
                   where i.sku = s.sku and i.open_quantity > 0 and not i.cancelled);
end $$;

-- Queues a new line in SKU `p_sku`, whose row the caller has locked (`s_lines_placed` is
-- its lines_placed as read under the lock): the line with its arrival number (sku_seq =
-- lines_placed + 1, placed_at = clock_timestamp() under the same lock, so arrival order is
-- rank order within a band), its band's counters (`sku_queue`) and the SKU's. The bucket
-- counters follow by trigger. Returns the line's key and placed_at, the queue seen from its
-- band once it is in (waiting lines and units at its priority or higher, waiting lines
-- below) and the SKU row after.
-- When the SKU caps the open units per customer (migration 0010), the line is checked
-- first: one without a customer, or one that would take its customer's open units
-- (reserved + backordered, all its lines of the SKU) over the cap, raises SQLSTATE 'BOCAP'
-- (detail: the cap and the customer's current units, space-separated) before anything is
-- written; the caller's statement or transaction then writes nothing.
-- `p_held_for_order`: a line of a ship-complete order (migration 0009), which the SKU's fill
-- passes over.
drop function if exists place_line(text, text, text, bigint, smallint, boolean, text, text[],
                                   bigint);
create or replace function place_line(
    p_order_id text, p_line_id text, p_sku text, p_quantity bigint, p_priority smallint,
    p_allow_partial boolean, p_customer_id text, p_locations text[], s_lines_placed bigint,
    p_held_for_order boolean default false,
    out line_key bigint, out placed_at timestamptz, out lines_through bigint,
    out units_through bigint, out lines_below bigint, out sku_after sku)
language plpgsql as $$
declare
    cap bigint;
    held bigint := 0;
begin
    select s.max_units_per_customer into cap from sku s where s.sku = p_sku;
    if cap > 0 then
        if p_customer_id <> '' then
            select coalesce(sum(l.reserved + l.backordered), 0) into held
            from line l
            where l.sku = p_sku and l.customer_id = p_customer_id and l.customer_id <> ''
              and l.reserved + l.backordered > 0;
        end if;
        if p_customer_id = '' or held + p_quantity > cap then
            raise exception 'customer cap of sku % exceeded', p_sku
                using errcode = 'BOCAP', detail = cap || ' ' || held;
        end if;
    end if;
    insert into line (order_id, line_id, sku, quantity, priority, allow_partial,
                      customer_id, locations, placed_at, placed_priority, sku_seq,
                      held_for_order)
    values (p_order_id, p_line_id, p_sku, p_quantity, p_priority, p_allow_partial,
            p_customer_id, p_locations, clock_timestamp(), p_priority, s_lines_placed + 1,
            p_held_for_order)
    returning line.id, line.placed_at into line_key, placed_at;
    perform record_demand_ordered(p_sku, p_quantity, placed_at);  -- planning.sql
    insert into sku_queue as q (sku, priority, waiting_lines, backordered_units)
    values (p_sku, p_priority, 1, p_quantity)
    on conflict (sku, priority) do update
        set waiting_lines = q.waiting_lines + 1,
            backordered_units = q.backordered_units + p_quantity;
    update sku set backordered_units = backordered_units + p_quantity,
                   waiting_lines = waiting_lines + 1,
                   lines_placed = lines_placed + 1,
                   updated_at = clock_timestamp()
    where sku.sku = p_sku
    returning sku.* into sku_after;
    -- The new line is the last of its band: every waiting line of its priority or higher
    -- (itself included) is ahead of or at it.
    select coalesce(sum(q.waiting_lines) filter (where q.priority >= p_priority), 0),
           coalesce(sum(q.backordered_units) filter (where q.priority >= p_priority), 0),
           coalesce(sum(q.waiting_lines) filter (where q.priority < p_priority), 0)
    into lines_through, units_through, lines_below
    from sku_queue q where q.sku = p_sku;
end $$;

-- Where a new line of `p_quantity` units takes free units whole at once, when that is all
-- the full path would do for it: nothing waits in the SKU's queue (held lines of ship-complete
-- orders included), the SKU caps no customer, and one active location holds every free unit
-- of the SKU, enough for the whole line, and the line may ship from there. The fill then
-- gives the line, first in the queue, all its units there (rule WHOLE, queue position 1)
-- whatever the fill policy and location strategy; nothing is left waiting, so neither a
-- backorder policy nor inbound has a say. That location, or null: the full path decides.
create or replace function line_takes_free_units(s sku, p_quantity bigint, p_locations text[])
returns text language plpgsql stable as $$
begin
    return (select sl.location_id from sku_location sl join location l using (location_id)
            where s.waiting_lines = 0 and s.max_units_per_customer = 0
              and sl.sku = s.sku and sl.free_units = s.free_units
              and sl.free_units >= p_quantity and l.active
              and (p_locations is null or sl.location_id = any(p_locations)));
end $$;

-- Places a new line that `line_takes_free_units` found whole units for at `p_location`, and
-- reserves them there as the full path's fill would: `place_line`, the fill's writes
-- (`apply_fills`, fill.sql: the reservation, the line, its line.reserved with `p_occurred`,
-- field 2, encoded by the caller) and the counters the fill moves (`change_totals`,
-- counters.sql: the line's band's, the location's, the SKU's). The caller holds the SKU's lock; `s` is its row read under it.
create or replace function reserve_new_line(
    s sku, p_location text, p_order_id text, p_line_id text, p_quantity bigint,
    p_priority smallint, p_allow_partial boolean, p_customer_id text, p_locations text[],
    p_exchange text, p_routing_key text, p_message_type text, p_occurred bytea,
    p_notify_channel text, p_trace_context jsonb,
    out line_key bigint, out placed_at timestamptz)
language plpgsql as $$
declare
    placed record;
begin
    select * into placed
    from place_line(p_order_id, p_line_id, s.sku, p_quantity, p_priority, p_allow_partial,
                    p_customer_id, p_locations, s.lines_placed);
    perform apply_fills(s.sku, array[placed.line_key], array[p_quantity], array[1::bigint],
                        array['WHOLE'], array[p_location], 'Allocate', null, s.fill_policy,
                        p_exchange, p_routing_key, p_message_type, p_occurred, ''::bytea,
                        p_trace_context, p_notify_channel);
    -- The moves the fill makes (locked_sku.py): the line leaves its band, the location's
    -- free units become reserved.
    perform change_totals(s.sku, array[p_priority], array[-1::bigint], array[-p_quantity],
                          -p_quantity, p_quantity, 0, 0, array[p_location],
                          array[-p_quantity], array[p_quantity]);
    line_key := placed.line_key;
    placed_at := placed.placed_at;
end $$;

-- Whether Allocate may not queue (order_id, line_id) itself: the line exists (a repeat, or
-- a key taken by another line), or the order_id is an AllocateOrder order's
-- (customer_order, migration 0009), which is never Allocate's. Either way the full path
-- answers. Used by `queue_line` and `queue_lines`, so both decide alike.
create or replace function line_key_taken(p_order_id text, p_line_id text) returns boolean
language plpgsql stable as $$
begin
    return exists (select 1 from line l where l.order_id = p_order_id and l.line_id = p_line_id)
        or exists (select 1 from customer_order o where o.order_id = p_order_id);
end $$;

-- Allocate's common case in one round trip: a new line for a SKU where nothing but
-- queueing is to be done (`line_needs_the_fill` is false) is placed, its line.backordered
-- event written to the outbox and the relay woken, in one statement committed on its own.
-- `p_event_body` is the event without its queue position, which only this function knows:
-- it goes into the outbox row's late_fields, and the relay sets it into the message.
-- Returns outcome 'QUEUED' with the line's key, placed_at and queue position; or, when the
-- guard is true only because the line takes free units whole (`line_takes_free_units`: all
-- the full path would do), 'RESERVED', placed and reserved by `reserve_new_line` with its
-- line.reserved (`p_occurred`: the event's field 2), with the key, placed_at and the
-- location (`reserved_at`); or 'NEEDS_THE_FILL' (or 'PLACED_BEFORE': the key (order_id,
-- line_id) is taken) with nothing written beyond creating an unknown SKU, which the full
-- path does too.
-- PL/pgSQL because each statement in it takes a fresh snapshot after the SKU lock is held;
-- one plain statement would read the queue counters as they were before it waited.
drop function if exists queue_line(text, text, text, bigint, smallint, boolean, text, text[],
                                   uuid, text, text, text, bytea, text, jsonb);
create or replace function queue_line(
    p_order_id text, p_line_id text, p_sku text, p_quantity bigint, p_priority smallint,
    p_allow_partial boolean, p_customer_id text, p_locations text[],
    p_event_id uuid, p_exchange text, p_routing_key text, p_message_type text,
    p_event_body bytea, p_notify_channel text, p_trace_context jsonb,
    p_reserved_routing_key text, p_reserved_message_type text, p_occurred bytea,
    out outcome text, out line_key bigint, out placed_at timestamptz,
    out queue_position bigint, out reserved_at text)
language plpgsql as $$
declare
    s sku%rowtype;
    placed record;
begin
    -- A repeat, or a key taken by another line: the full path answers, and nothing is
    -- written here, not even the SKU row (the call may be refused). A line committed after
    -- this check makes the insert fail on the unique key: the caller then takes the full
    -- path too.
    -- An order_id of AllocateOrder (customer_order, migration 0009) is never Allocate's: the
    -- full path refuses it. The order's advisory lock orders this against an AllocateOrder
    -- of the same order_id that has not committed yet: shared here (Allocates of one order
    -- do not wait for each other; a line twice is the unique key's business), exclusive in
    -- AllocateOrder.
    perform pg_advisory_xact_lock_shared(order_lock_key(p_order_id));
    if line_key_taken(p_order_id, p_line_id) then
        outcome := 'PLACED_BEFORE';
        return;
    end if;
    insert into sku (sku) values (p_sku) on conflict (sku) do nothing;
    select * into s from sku where sku.sku = p_sku for update;
    if line_needs_the_fill(s, p_quantity) then
        reserved_at := line_takes_free_units(s, p_quantity, p_locations);
        if reserved_at is null then
            outcome := 'NEEDS_THE_FILL';
            return;
        end if;
        select * into placed
        from reserve_new_line(s, reserved_at, p_order_id, p_line_id, p_quantity, p_priority,
                              p_allow_partial, p_customer_id, p_locations, p_exchange,
                              p_reserved_routing_key, p_reserved_message_type, p_occurred,
                              p_notify_channel, p_trace_context);
        outcome := 'RESERVED';
        line_key := placed.line_key;
        placed_at := placed.placed_at;
        queue_position := 0;
        return;
    end if;
    select * into placed from place_line(p_order_id, p_line_id, p_sku, p_quantity, p_priority,
                                         p_allow_partial, p_customer_id, p_locations,
                                         s.lines_placed);
    insert into outbox (event_id, exchange, routing_key, message_type, sku, body, late_fields,
                        trace_context)
    values (p_event_id, p_exchange, p_routing_key, p_message_type, p_sku, p_event_body,
            jsonb_build_object('queue_position', placed.lines_through), p_trace_context);
    perform pg_notify(p_notify_channel, '');
    outcome := 'QUEUED';
    line_key := placed.line_key;
    placed_at := placed.placed_at;
    queue_position := placed.lines_through;
end $$;

-- Group commit of Allocate (services/allocation/handlers/placing.py, `GroupCommit`): the
-- common case of many concurrent Allocates in one statement and one transaction. Row i of
-- the arrays is call i, in arrival order. The locks come first, each kind in one fixed
-- order so that two batches (or a batch and AllocateOrder) never wait on each other in a
-- cycle: every order_id's advisory lock, shared, by lock key; then every SKU row (created
-- when unknown), by sku. Then each row, in arrival order, is what `queue_line` does for
-- one call: 'PLACED_BEFORE' when its key or order_id is taken (a repeat inside the batch
-- included: it sees the row placed before it), 'NEEDS_THE_FILL' when the guard says more
-- than queueing is to be done or the SKU caps units per customer (the caller's full path
-- decides those, one line at a time, after this commits), 'RESERVED' when it is more only
-- because the line takes free units whole (as in `queue_line`), else 'QUEUED': placed
-- through `place_line` with its line.backordered outbox row. Once a row of a SKU is sent to the
-- full path, every later row of that SKU is too, so a SKU's lines keep arrival order.
-- Nothing here raises for a single row; a statement that fails (a key committed by
-- another transaction meanwhile: unique violation) writes nothing, and the caller then
-- answers each call on its own. The relay is woken once.
-- `p_locations` is a JSON array with one element per row: null (any location) or an array
-- of location ids.
-- Generic plans throughout (plan_cache_mode): Postgres would otherwise plan the statements
-- that take the arrays (the locks, the new SKUs) again on every call, their generic plan
-- looking dearer than one made for the arrays at hand (same plans; 60-100 us a batch).
drop function if exists queue_lines(text[], text[], text[], bigint[], smallint[], boolean[],
                                    text[], jsonb, uuid[], text, text, text, bytea[], text,
                                    jsonb[]);
create or replace function queue_lines(
    p_order_ids text[], p_line_ids text[], p_skus text[], p_quantities bigint[],
    p_priorities smallint[], p_allow_partials boolean[], p_customer_ids text[],
    p_locations jsonb, p_event_ids uuid[], p_exchange text, p_routing_key text,
    p_message_type text, p_event_bodies bytea[], p_notify_channel text,
    p_trace_contexts jsonb[], p_reserved_routing_key text, p_reserved_message_type text,
    p_occurred bytea)
returns table (outcome text, line_key bigint, placed_at timestamptz, queue_position bigint,
               reserved_at text)
language plpgsql set plan_cache_mode = force_generic_plan as $$
declare
    k bigint;
    s sku%rowtype;
    placed record;
    locs jsonb;
    line_locations text[];
    deferred text[] := '{}';
    queued boolean := false;
begin
    for k in select distinct order_lock_key(o) from unnest(p_order_ids) o order by 1 loop
        perform pg_advisory_xact_lock_shared(k);
    end loop;
    insert into sku (sku) select distinct u from unnest(p_skus) u order by 1
    on conflict (sku) do nothing;
    perform 1 from sku where sku.sku = any(p_skus) order by sku.sku for update;
    for i in 1 .. coalesce(array_length(p_order_ids, 1), 0) loop
        outcome := null; line_key := null; placed_at := null; queue_position := null;
        reserved_at := null;
        locs := p_locations -> (i - 1);
        line_locations := case when locs is null or jsonb_typeof(locs) = 'null' then null
                               else array(select jsonb_array_elements_text(locs)) end;
        if p_skus[i] = any(deferred) then
            outcome := 'NEEDS_THE_FILL';
        elsif line_key_taken(p_order_ids[i], p_line_ids[i]) then
            outcome := 'PLACED_BEFORE';
        else
            select * into s from sku where sku.sku = p_skus[i];
            if s.max_units_per_customer > 0 or line_needs_the_fill(s, p_quantities[i]) then
                reserved_at := line_takes_free_units(s, p_quantities[i], line_locations);
                if reserved_at is null then
                    deferred := deferred || p_skus[i];
                    outcome := 'NEEDS_THE_FILL';
                else
                    select * into placed
                    from reserve_new_line(s, reserved_at, p_order_ids[i], p_line_ids[i],
                                          p_quantities[i], p_priorities[i],
                                          p_allow_partials[i], p_customer_ids[i],
                                          line_locations, p_exchange, p_reserved_routing_key,
                                          p_reserved_message_type, p_occurred,
                                          p_notify_channel, p_trace_contexts[i]);
                    outcome := 'RESERVED';
                    line_key := placed.line_key;
                    placed_at := placed.placed_at;
                    queue_position := 0;
                end if;
            end if;
        end if;
        if outcome is null then
            select * into placed
            from place_line(p_order_ids[i], p_line_ids[i], p_skus[i], p_quantities[i],
                            p_priorities[i], p_allow_partials[i], p_customer_ids[i],
                            line_locations, s.lines_placed);
            insert into outbox (event_id, exchange, routing_key, message_type, sku, body,
                                late_fields, trace_context)
            values (p_event_ids[i], p_exchange, p_routing_key, p_message_type, p_skus[i],
                    p_event_bodies[i],
                    jsonb_build_object('queue_position', placed.lines_through),
                    p_trace_contexts[i]);
            queued := true;
            outcome := 'QUEUED';
            line_key := placed.line_key;
            placed_at := placed.placed_at;
            queue_position := placed.lines_through;
        end if;
        return next;
    end loop;
    if queued then
        perform pg_notify(p_notify_channel, '');
    end if;
end $$;

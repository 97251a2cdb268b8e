-- Placing a new line: the one home of the rule (migration 0004) that queues a line.
-- Every path that creates a line goes through `place_line`: Allocate's one-round-trip path
-- (`queue_line` below) and its full path (services/allocation/adapters/placement.py).
-- bench/workload.py builds long queues with a set-based copy of it that
-- tests/integration/test_placement.py holds equal.
-- A repeatable file: applied again whenever it changes (create or replace).

-- The one guard of Allocate's paths: true when placing a line of `p_quantity` units in SKU
-- `s` (its row read under its lock) is more than queueing it: free units for the fill to
-- give, a policy to refuse it (no backorders, over the limit), or open inbound for the ETA
-- walk. Then the service's full path places it; otherwise the line is only queued.
create or replace function line_needs_the_fill(s sku, p_quantity bigint) returns boolean
language sql stable as $$
    select s.free_units > 0
        or not s.backorders_accepted
        or (s.backorder_limit > 0 and s.backordered_units + p_quantity > s.backorder_limit)
        or exists (select 1 from inbound i
                   where i.sku = s.sku and i.open_quantity > 0 and not i.cancelled)
$$;

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
            where l.sku = p_sku and l.customer_id = p_customer_id
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

-- Allocate's common case in one round trip: a new line for a SKU where nothing but
-- queueing is to be done (`line_needs_the_fill` is false) is placed, its line.backordered
-- event written to the outbox and the relay woken, in one statement committed on its own.
-- `p_event_body` is the event without its queue position, which only this function knows:
-- it goes into the outbox row's late_fields, and the relay sets it into the message.
-- Returns outcome 'QUEUED' with the line's key, placed_at and queue position; or
-- 'NEEDS_THE_FILL' (or 'PLACED_BEFORE': the key (order_id, line_id) is taken) with
-- nothing written beyond creating an unknown SKU, which the full path does too.
-- PL/pgSQL because each statement in it takes a fresh snapshot after the SKU lock is held;
-- one plain statement would read the queue counters as they were before it waited.
create or replace function queue_line(
    p_order_id text, p_line_id text, p_sku text, p_quantity bigint, p_priority smallint,
    p_allow_partial boolean, p_customer_id text, p_locations text[],
    p_event_id uuid, p_exchange text, p_routing_key text, p_message_type text,
    p_event_body bytea, p_notify_channel text, p_trace_context jsonb,
    out outcome text, out line_key bigint, out placed_at timestamptz,
    out queue_position bigint)
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
    if exists (select 1 from line l where l.order_id = p_order_id and l.line_id = p_line_id)
       or exists (select 1 from customer_order o where o.order_id = p_order_id) then
        outcome := 'PLACED_BEFORE';
        return;
    end if;
    insert into sku (sku) values (p_sku) on conflict (sku) do nothing;
    select * into s from sku where sku.sku = p_sku for update;
    if line_needs_the_fill(s, p_quantity) then
        outcome := 'NEEDS_THE_FILL';
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

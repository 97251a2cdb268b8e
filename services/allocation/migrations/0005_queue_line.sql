-- Allocate's common case in one round trip: a new line for a SKU with no free units and
-- no open inbound is only queued — the fill has nothing to give, the ETA walk nothing to
-- estimate — so the whole change (SKU lock, line, counters, its line.backordered event in
-- the outbox and the relay's wake-up) is one statement, committed on its own.
--
-- Anything the fill, the SKU policy or the ETA walk must decide is left to the service:
-- the function then writes nothing (beyond creating an unknown SKU, which that path does
-- too) and returns no row. It is PL/pgSQL because each statement in it takes a fresh
-- snapshot after the SKU lock is held; one plain statement would read the queue counters
-- as they were before it waited for the lock.

-- Protocol Buffers base-128 varint of a non-negative number.
create function protobuf_varint(value bigint) returns bytea
language plpgsql immutable strict as $$
declare
    encoded bytea := '';
begin
    while value >= 128 loop
        encoded := encoded || set_byte('\x00'::bytea, 0, ((value & 127) | 128)::int);
        value := value >> 7;
    end loop;
    return encoded || set_byte('\x00'::bytea, 0, value::int);
end $$;

-- Queues line (p_order_id, p_line_id) if nothing but queueing is to be done; returns the
-- new line's id, placed_at and queue position (the rest of the row is what the caller
-- asked for: nothing reserved, everything backordered, no ETA), or no row.
-- `p_event_body` is the line.backordered message without its queue position: the position
-- (varint field `p_position_field`) is appended, which a protobuf parser reads as part of
-- the same message. The line's arrival number follows the rule of 0004: `s` is the SKU row
-- read under its lock, so s.lines_placed + 1 is the next one (the update below counts it).
create function queue_line(
    p_order_id text, p_line_id text, p_sku text, p_quantity bigint, p_priority smallint,
    p_allow_partial boolean, p_customer_id text,
    p_event_id uuid, p_exchange text, p_routing_key text, p_message_type text,
    p_event_body bytea, p_position_field int, p_notify_channel text)
returns table (id bigint, placed_at timestamptz, queue_position bigint)
language plpgsql as $$
declare
    s sku%rowtype;
    new_id bigint;
    new_placed_at timestamptz;
    v_position bigint;
begin
    -- A repeat, or a key taken by another line: the full path answers, and nothing is
    -- written here, not even the SKU row (the call may be refused). A line committed after
    -- this check makes the insert below fail on the unique key: the caller then takes the
    -- full path too.
    if exists (select 1 from line l where l.order_id = p_order_id and l.line_id = p_line_id) then
        return;
    end if;
    insert into sku (sku) values (p_sku) on conflict (sku) do nothing;
    select * into s from sku where sku.sku = p_sku for update;
    if s.free_units > 0
        or not s.backorders_accepted
        or (s.backorder_limit > 0 and s.backordered_units + p_quantity > s.backorder_limit)
        or exists (select 1 from inbound i
                   where i.sku = p_sku and i.open_quantity > 0 and not i.cancelled)
    then
        return;
    end if;

    insert into line (order_id, line_id, sku, quantity, priority, allow_partial,
                      customer_id, placed_at, placed_priority, sku_seq)
    values (p_order_id, p_line_id, p_sku, p_quantity, p_priority, p_allow_partial,
            p_customer_id, clock_timestamp(), p_priority, s.lines_placed + 1)
    returning line.id, line.placed_at into new_id, new_placed_at;
    insert into sku_queue as q (sku, priority, waiting_lines, backordered_units)
    values (p_sku, p_priority, 1, p_quantity)
    on conflict (sku, priority) do update
        set waiting_lines = q.waiting_lines + 1,
            backordered_units = q.backordered_units + p_quantity;
    update sku set backordered_units = backordered_units + p_quantity,
                   waiting_lines = waiting_lines + 1,
                   lines_placed = lines_placed + 1,
                   updated_at = clock_timestamp()
    where sku.sku = p_sku;
    -- The new line is the last of its band: every waiting line of its priority or higher
    -- (itself included) is ahead of or at it.
    select coalesce(sum(q.waiting_lines), 0) into v_position
    from sku_queue q where q.sku = p_sku and q.priority >= p_priority;

    insert into outbox (event_id, exchange, routing_key, message_type, sku, body)
    values (p_event_id, p_exchange, p_routing_key, p_message_type, p_sku,
            p_event_body || protobuf_varint(p_position_field::bigint << 3)
                         || protobuf_varint(v_position));
    perform pg_notify(p_notify_channel, '');

    id := new_id;
    placed_at := new_placed_at;
    queue_position := v_position;
    return next;
end $$;

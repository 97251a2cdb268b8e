-- Orders (docs/spec.md §10): lines placed together by AllocateOrder. The lines themselves are
-- ordinary lines (table `line`, placed through `place_line`); this row holds what belongs to
-- the order as a whole. An order_id here is never used by Allocate, and the reverse
-- (both paths take the transaction-level advisory lock `order_lock_key(order_id)`).
create table customer_order (
    order_id        text primary key,
    -- The order's priority now (SetPriority on any of its lines changes every line's).
    priority        smallint not null check (priority between 0 and 9),
    -- The priority it was placed with: a repeated AllocateOrder is compared with it.
    placed_priority smallint not null check (placed_priority between 0 and 9),
    customer_id     text not null default '',
    ship_complete   boolean not null,
    placed_at       timestamptz not null,
    line_count      integer not null check (line_count between 1 and 500),
    -- Increases with every order event (order.ready, order.waiting) and the cancel.
    version         bigint not null default 1
);

create or replace function order_lock_key(p_order_id text) returns bigint
language sql immutable as $$
    select hashtextextended('order:' || p_order_id, 0)
$$;

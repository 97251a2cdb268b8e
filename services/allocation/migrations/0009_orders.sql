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

-- A line of a ship-complete order holds units only all at once with the rest of its order:
-- the SKU's own fill passes over it (it neither takes units there nor blocks); the order's
-- completion step reserves every line of the order at once (handlers/orders.py).
alter table line add column held_for_order boolean not null default false;

-- The index of waiting ship-complete orders per SKU: one row per (SKU, order) while the
-- order waits, so a SKU that gains free units finds the orders to try to complete, best
-- ranked first, without a scan of all orders.
create table order_waiting_sku (
    sku        text not null,
    order_id   text not null references customer_order (order_id),
    priority   smallint not null,
    placed_at  timestamptz not null,
    -- Since when the order waits (for the age metric).
    waiting_since timestamptz not null default clock_timestamp(),
    primary key (sku, order_id)
);
create index order_waiting_sku_rank on order_waiting_sku (sku, priority desc, placed_at, order_id);
create index order_waiting_sku_order on order_waiting_sku (order_id);

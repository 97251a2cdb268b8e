-- Allocation database: SKUs with their policy and counters, order lines (the queue),
-- reservations (the decision log), the inbox of consumed events and the outbox.

create table sku (
    sku                 text primary key,
    fill_policy         text not null default 'STRICT' check (fill_policy in ('STRICT', 'SKIP')),
    backorders_accepted boolean not null default true,
    backorder_limit     bigint not null default 0 check (backorder_limit >= 0),
    -- Units known and not promised: supply received - reserved - fulfilled +- adjustments.
    free_units          bigint not null default 0 check (free_units >= 0),
    reserved_units      bigint not null default 0 check (reserved_units >= 0),
    fulfilled_units     bigint not null default 0 check (fulfilled_units >= 0),
    backordered_units   bigint not null default 0 check (backordered_units >= 0),
    waiting_lines       bigint not null default 0 check (waiting_lines >= 0),
    updated_at          timestamptz not null default clock_timestamp()
);

create table line (
    -- Monotonic sequence: the last tie-breaker of rank.
    id            bigserial primary key,
    order_id      text not null,
    line_id       text not null,
    sku           text not null references sku (sku),
    quantity      bigint not null check (quantity between 1 and 1000000000),
    priority      smallint not null check (priority between 0 and 9),
    allow_partial boolean not null,
    customer_id   text not null default '',
    placed_at     timestamptz not null,
    reserved      bigint not null default 0 check (reserved >= 0),
    fulfilled     bigint not null default 0 check (fulfilled >= 0),
    cancelled     boolean not null default false,
    backordered   bigint generated always as (
        case when cancelled then 0 else quantity - reserved - fulfilled end) stored,
    status        text generated always as (
        case
            when cancelled then 'CANCELLED'
            when fulfilled = quantity then 'FULFILLED'
            when fulfilled > 0 then 'PARTIALLY_FULFILLED'
            when reserved = quantity then 'RESERVED'
            when reserved > 0 then 'PARTIALLY_RESERVED'
            else 'BACKORDERED'
        end) stored,
    unique (order_id, line_id),
    check (reserved + fulfilled <= quantity)
);

-- The queue: waiting lines of a SKU in rank order.
create index line_queue on line (sku, priority desc, placed_at, id) where backordered > 0;

create table reservation (
    id             bigserial primary key,
    line           bigint not null references line (id),
    sku            text not null,
    quantity       bigint not null check (quantity > 0),
    -- What caused the fill: an event (its id and routing key) or an RPC.
    cause          text not null,
    cause_event_id uuid,
    queue_position bigint not null,
    rule           text not null,
    fill_policy    text not null,
    created_at     timestamptz not null default clock_timestamp()
);
create index reservation_line on reservation (line, id);
create index reservation_sku on reservation (sku, id);

-- Consumed events, for exactly-once application (written in the same transaction).
create table processed_event (
    event_id     uuid primary key,
    routing_key  text not null,
    processed_at timestamptz not null default clock_timestamp()
);

create table outbox (
    id           bigserial primary key,
    event_id     uuid not null unique,
    exchange     text not null,
    routing_key  text not null,
    message_type text not null,
    sku          text not null,
    body         bytea not null,
    created_at   timestamptz not null default clock_timestamp(),
    sent_at      timestamptz
);
create index outbox_unsent on outbox (id) where sent_at is null;

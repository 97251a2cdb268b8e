-- Inventory database: stock per SKU, the movement ledger, the inbox and the outbox.

create table stock (
    sku              text primary key,
    on_hand          bigint not null default 0 check (on_hand >= 0),
    inbound_quantity bigint not null default 0 check (inbound_quantity >= 0),
    updated_at       timestamptz not null default clock_timestamp()
);

-- Every change of on hand with its cause; on hand is the sum of quantity per SKU.
create table movement (
    id            bigserial primary key,
    sku           text not null references stock (sku),
    kind          text not null check (kind in ('RECEIPT', 'ADJUSTMENT', 'ISSUE')),
    -- The caller's idempotency key (receipt_id, adjustment_id, fulfillment_id).
    key           text not null,
    quantity      bigint not null,
    on_hand_after bigint not null,
    inbound_id    text not null default '',
    reason        text not null default '',
    note          text not null default '',
    created_at    timestamptz not null default clock_timestamp(),
    unique (kind, key)
);
create index movement_sku on movement (sku, id desc);

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

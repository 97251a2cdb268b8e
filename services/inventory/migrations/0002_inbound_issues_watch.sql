-- Expected inbound, the details an issue records on the ledger, and keyset paging indexes.

-- An expected receipt (purchase order line). Open units count into stock.inbound_quantity.
create table inbound (
    inbound_id        text primary key,
    sku               text not null references stock (sku),
    quantity          bigint not null check (quantity > 0),
    -- Units received against it; may exceed quantity (over-receipt is recorded, not refused).
    received_quantity bigint not null default 0 check (received_quantity >= 0),
    expected_at       timestamptz not null,
    cancelled         boolean not null default false,
    open_quantity     bigint generated always as (
        case when cancelled then 0 else greatest(quantity - received_quantity, 0) end
    ) stored,
    -- Increases with every change; inbound.updated carries it so consumers keep the newest.
    version           bigint not null default 1,
    created_at        timestamptz not null default clock_timestamp(),
    updated_at        timestamptz not null default clock_timestamp()
);
create index inbound_by_sku on inbound (sku, expected_at, inbound_id);
create index inbound_by_time on inbound (expected_at, inbound_id);

-- Issues (line.fulfilled): which line, the event that caused it, and any shortfall, i.e.
-- units the fulfilment asked for that were not on hand (a discrepancy, kept visible).
alter table movement
    add column order_id  text not null default '',
    add column line_id   text not null default '',
    add column shortfall bigint not null default 0 check (shortfall >= 0),
    add column event_id  uuid;

-- Outbox clean-up deletes sent rows by age.
create index outbox_sent on outbox (sent_at) where sent_at is not null;

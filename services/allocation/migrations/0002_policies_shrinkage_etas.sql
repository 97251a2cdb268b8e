-- Fulfilments, inbound (for ETAs), per-priority queue counters, ETAs on lines, revocations
-- in the decision log.

-- Waiting lines and units per (SKU, priority): queue positions and units ahead of a line
-- are read from at most 10 rows plus the line's own priority band, never a whole queue.
create table sku_queue (
    sku               text not null references sku (sku),
    priority          smallint not null check (priority between 0 and 9),
    waiting_lines     bigint not null default 0 check (waiting_lines >= 0),
    backordered_units bigint not null default 0 check (backordered_units >= 0),
    primary key (sku, priority)
);
insert into sku_queue (sku, priority, waiting_lines, backordered_units)
select sku, priority, count(*), sum(backordered) from line where backordered > 0
group by sku, priority;

-- Negative adjustments that found neither free nor reserved units (already shipped).
alter table sku add column unmatched_shrinkage_units bigint not null default 0
    check (unmatched_shrinkage_units >= 0);

-- The estimate of when a waiting line is filled (null: unknown or not waiting), and the
-- version carried by line.eta_changed (increases with every change).
alter table line add column eta timestamptz;
alter table line add column eta_version bigint not null default 0;
-- The priority a line was placed with: a retried Allocate is compared with it, since
-- SetPriority may have changed `priority` since.
alter table line add column placed_priority smallint;
update line set placed_priority = priority;
alter table line alter column placed_priority set not null;
create index line_known_eta on line (sku) where eta is not null;
-- Active reservations, lowest rank first: where shrinkage takes units back.
create index line_revocable on line (sku, priority, placed_at desc, id desc) where reserved > 0;
create index line_order on line (order_id, id);
create index line_sku on line (sku, id);

-- One row per FulfillLine, keyed by its idempotency key.
create table fulfillment (
    fulfillment_id text primary key,
    line           bigint not null references line (id),
    quantity       bigint not null check (quantity > 0),
    created_at     timestamptz not null default clock_timestamp()
);

-- The last known state of each inbound, from inbound.updated (newest version wins).
create table inbound (
    inbound_id    text primary key,
    sku           text not null,
    open_quantity bigint not null check (open_quantity >= 0),
    expected_at   timestamptz not null,
    cancelled     boolean not null,
    version       bigint not null
);
create index inbound_open on inbound (sku, expected_at) where open_quantity > 0 and not cancelled;

-- The decision log also records revocations (rule REVOKED, queue_position 0).
alter table reservation add constraint reservation_rule check (
    rule in ('PARTIAL', 'WHOLE', 'WHOLE_AFTER_SKIP', 'REVOKED'));

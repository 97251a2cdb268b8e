-- Stock events applied in the inventory service's order, per SKU (docs/spec.md §4): the
-- stock version last applied, and the events that arrived ahead of a missing one, held until
-- it comes. Receipts and shrinkage at one location do not commute (a transfer out applied
-- before the receipt that made it possible would be clamped), so they wait their turn.
alter table sku add column stock_version bigint not null default 0;

create table held_stock_event (
    sku           text not null references sku (sku),
    stock_version bigint not null,
    routing_key   text not null,
    body          bytea not null,
    held_at       timestamptz not null default clock_timestamp(),
    primary key (sku, stock_version)
);

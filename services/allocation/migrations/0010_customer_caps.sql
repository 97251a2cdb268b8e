-- Per-customer caps (docs/spec.md §2, SKU policy): a SKU may cap the open units (reserved +
-- backordered) one customer holds in it; 0 = no cap. `place_line`
-- (repeatable/placement.sql) checks it when a line is first placed.
alter table sku add column max_units_per_customer bigint not null default 0
    check (max_units_per_customer >= 0);

-- The check sums a customer's open lines of a SKU: an index-only range of exactly those
-- lines (lines that are cancelled or shipped in full drop out of it), so its cost grows
-- with that customer's open lines of the SKU, not with the queue. Read only when the SKU
-- has a cap.
create index line_customer_open on line (sku, customer_id) include (reserved, backordered)
    where reserved + backordered > 0;

-- The SKU's stock version (docs/spec.md §4): bumped with each stock.received, stock.adjusted
-- and stock.transferred event, under the SKU's row lock, and carried by the event, so a
-- consumer can apply a SKU's stock events in the order they happened here.
alter table stock add column stock_version bigint not null default 0;

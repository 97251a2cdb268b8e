-- Stock in several locations (docs/spec.md §8): the locations, stock per (SKU, location),
-- and the location of every movement and inbound. Existing data moves to `default`.

create table location (
    location_id text primary key,
    name        text not null,
    fill_rank   integer not null default 0,
    active      boolean not null default true,
    -- Increases with every change; location.updated carries it.
    version     bigint not null default 1,
    updated_at  timestamptz not null default clock_timestamp(),
    -- `default` always exists and is never deactivated.
    check (location_id <> 'default' or active)
);
insert into location (location_id, name) values ('default', 'default');
create index location_by_rank on location (fill_rank, location_id);

-- The SKU's totals stay in `stock` (its row is still the lock every change of the SKU takes
-- first); a SKU's figures at each location are here. on_hand and inbound_quantity of `stock`
-- are the sums of these rows.
alter table stock add column in_transit_quantity bigint not null default 0
    check (in_transit_quantity >= 0);

create table stock_location (
    sku                 text not null references stock (sku),
    location_id         text not null references location (location_id),
    on_hand             bigint not null default 0 check (on_hand >= 0),
    inbound_quantity    bigint not null default 0 check (inbound_quantity >= 0),
    in_transit_quantity bigint not null default 0 check (in_transit_quantity >= 0),
    updated_at          timestamptz not null default clock_timestamp(),
    primary key (sku, location_id)
);
insert into stock_location (sku, location_id, on_hand, inbound_quantity, updated_at)
    select sku, 'default', on_hand, inbound_quantity, updated_at from stock;

alter table movement
    add column location_id       text not null default 'default',
    add column other_location_id text not null default '',
    drop constraint movement_kind_check,
    add constraint movement_kind_check
        check (kind in ('RECEIPT', 'ADJUSTMENT', 'ISSUE', 'TRANSFER_OUT', 'TRANSFER_IN'));
create index movement_location on movement (location_id, id desc);

-- An inbound's location never changes; a transfer in transit is the inbound whose
-- inbound_id is the transfer_id, with from_location_id set.
alter table inbound
    add column location_id      text not null default 'default' references location (location_id),
    add column from_location_id text not null default '';

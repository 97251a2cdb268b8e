-- Stock in several locations (docs/spec.md §8): the locations the service has heard of,
-- free and reserved units per (SKU, location), the location of every reservation,
-- fulfilment and inbound, the locations a line may ship from and a SKU's location strategy.
-- Everything that existed before is at `default`.

-- Locations as the inventory service announces them (location.updated, newest version
-- wins); one first seen in a stock event is created active and ranked last (version 0)
-- until its location.updated arrives. `default` always exists, fill_rank 0.
create table location (
    location_id text primary key,
    name        text not null default '',
    fill_rank   integer not null default 2147483647,
    active      boolean not null default true,
    version     bigint not null default 0
);
insert into location (location_id, name, fill_rank, active) values ('default', 'default', 0, true);

-- A SKU's units at one location; sku.free_units and sku.reserved_units are their sums.
create table sku_location (
    sku            text not null references sku (sku),
    location_id    text not null references location (location_id),
    free_units     bigint not null default 0 check (free_units >= 0),
    reserved_units bigint not null default 0 check (reserved_units >= 0),
    primary key (sku, location_id)
);
insert into sku_location (sku, location_id, free_units, reserved_units)
select sku, 'default', free_units, reserved_units from sku
where free_units > 0 or reserved_units > 0;

alter table sku add column location_strategy text not null default 'FILL_RANK'
    check (location_strategy in ('FILL_RANK', 'MOST_STOCK'));

-- The locations a line may ship from, as placed; null: any active location.
alter table line add column locations text[];

-- Where each decision, shipment and inbound is. A constant default: no table rewrite.
alter table reservation add column location_id text not null default 'default';
alter table fulfillment add column location_id text not null default 'default';
create index fulfillment_line on fulfillment (line);
alter table inbound add column location_id text not null default 'default';

-- Placing a line now records its locations: repeatable/placement.sql makes the functions
-- again with the new argument.
drop function if exists queue_line(text, text, text, bigint, smallint, boolean, text, uuid,
                                   text, text, text, bytea, text);
drop function if exists place_line(text, text, text, bigint, smallint, boolean, text, bigint);

-- Planning (docs/spec.md §9): demand history per SKU per day and each SKU's planning
-- parameters. Days are calendar days in the planning time zone (PLANNING_TIME_ZONE), kept
-- in planning_clock so that placing a line, in SQL, knows which day it is.

-- The planning time zone (an IANA name); the service writes its setting here at start-up.
create table planning_clock (
    only_row  boolean primary key default true check (only_row),
    time_zone text not null default 'UTC'
);
insert into planning_clock default values;

-- Units asked for per SKU and day: `ordered_units` by lines placed that day (each line once,
-- on the day it was placed), `cancelled_units` by lines cancelled that day (recorded, never
-- subtracted), `imported_units` loaded from a former system (ImportDemandHistory; a day
-- imported again replaces its import). A day's demand is ordered + imported.
create table demand_day (
    sku             text not null references sku (sku),
    day             date not null,
    ordered_units   bigint not null default 0 check (ordered_units >= 0),
    cancelled_units bigint not null default 0 check (cancelled_units >= 0),
    imported_units  bigint not null default 0 check (imported_units >= 0),
    primary key (sku, day)
);

-- A SKU's replenishment parameters (SetPlanningParams); a SKU without a row has the
-- defaults of docs/spec.md §9, which these column defaults are.
create table planning_params (
    sku                text primary key references sku (sku),
    lead_time_days     integer not null default 14 check (lead_time_days >= 0),
    service_level      double precision not null default 0.95
        check (service_level between 0.5 and 0.999),
    review_period_days integer not null default 7 check (review_period_days >= 0),
    min_order_quantity bigint not null default 1 check (min_order_quantity >= 1),
    pack_size          bigint not null default 1 check (pack_size >= 1),
    updated_at         timestamptz not null default clock_timestamp()
);

-- The planning worker's latest answer per SKU (docs/spec.md §9): the forecast and the levels
-- that do not depend on current stock. `available`, the suggested quantity and days of
-- cover are computed when read. `below_reorder_point` is the state of the last crossing
-- check: sku.reorder_suggested fires when it turns true (its `event_version` counts them),
-- and is re-armed when it turns false.
create table planning_result (
    sku                  text primary key references sku (sku),
    demand_class         text not null,
    forecast_method      text not null,
    forecast_daily_units double precision not null,
    demand_std           double precision not null,
    safety_stock         double precision not null,
    reorder_point        double precision not null,
    order_up_to          double precision not null,
    history_days         integer not null,
    refreshed_at         timestamptz not null,
    below_reorder_point  boolean not null default false,
    event_version        bigint not null default 0
);

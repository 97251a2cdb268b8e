-- Queue positions in time independent of the queue's length (SPEC §7 Growth).
--
-- A waiting line's position is 1 + the waiting lines of higher priority (`sku_queue`, at
-- most 9 rows) + the waiting lines ahead of it in its own priority band. That last part was
-- a count over the band up to the line: O(position). Now each line has an arrival number
-- in its SKU, `line.sku_seq`, and the band is cut into buckets of `queue_bucket_size()`
-- consecutive arrival numbers, whose waiting lines are counted in `sku_queue_bucket`:
--     lines ahead in the band = sum of the band's buckets before the line's bucket
--                               + waiting lines of its own bucket with a smaller sku_seq
-- which reads at most (waiting lines / bucket size) counter rows and one bucket of lines.
--
-- The rule for whoever inserts a line (with its SKU row locked, as every queue change is):
--     update sku set lines_placed = lines_placed + 1 where sku = $sku returning lines_placed
--     and that value is the new line's sku_seq (1, 2, 3, ... per SKU; never reused).
-- Arrival order must be rank order within a band, i.e. sku_seq ascending = (placed_at, id)
-- ascending among a SKU's lines: true as long as placed_at is taken (clock_timestamp())
-- under the same lock as sku_seq. Nothing else has to be done: the bucket counters follow
-- every insert, update and delete of `line` by themselves (statement triggers below).
-- Inserts today: `insert_line` (adapters/postgres.py) and `queue_line` (0005).

create function queue_bucket_size() returns bigint
    language sql immutable parallel safe
    as $$ select 1024::bigint $$;

-- How many lines each SKU has ever had placed: the last sku_seq given out.
alter table sku add column lines_placed bigint not null default 0 check (lines_placed >= 0);

alter table line add column sku_seq bigint;
-- Existing lines: numbered in rank order within their SKU (placed_at, then id).
update line l set sku_seq = n.seq
from (select id, row_number() over (partition by sku order by placed_at, id) as seq
      from line) n
where n.id = l.id;
alter table line alter column sku_seq set not null;
update sku s set lines_placed = n.placed
from (select sku, max(sku_seq) as placed from line group by sku) n
where n.sku = s.sku;

-- Waiting lines ahead within a bucket: an index range of at most one bucket.
create index line_band_seq on line (sku, priority, sku_seq) where backordered > 0;

-- Waiting lines per (SKU, priority, bucket = sku_seq / queue_bucket_size()); only buckets
-- with waiting lines have a row.
create table sku_queue_bucket (
    sku           text not null references sku (sku),
    priority      smallint not null check (priority between 0 and 9),
    bucket        bigint not null check (bucket >= 0),
    waiting_lines bigint not null check (waiting_lines >= 0),
    primary key (sku, priority, bucket)
);
insert into sku_queue_bucket (sku, priority, bucket, waiting_lines)
select sku, priority, sku_seq / queue_bucket_size(), count(*)
from line where backordered > 0
group by 1, 2, 3;

-- Adds `lines[i]` (negative: lines that stopped waiting) to bucket (skus[i], priorities[i],
-- buckets[i]); keys are unique. Buckets left empty lose their row. Callers hold the lines'
-- SKU locks, so no other transaction changes these rows meanwhile. (PL/pgSQL rather than
-- SQL: its statements' plans are cached; a SQL function's are made again on every call.)
create function change_queue_buckets(
    skus text[], priorities smallint[], buckets bigint[], lines bigint[]
) returns void language plpgsql as $$
begin
    with change as (
        select * from unnest(skus, priorities, buckets, lines) as c(sku, priority, bucket, n)),
    -- Two parts, as a CHECK fails on the row an upsert proposes before it conflicts (a
    -- negative change); only a bucket gaining lines can be new.
    changed as (
        update sku_queue_bucket b set waiting_lines = b.waiting_lines + c.n
        from change c
        where b.sku = c.sku and b.priority = c.priority and b.bucket = c.bucket
        returning b.sku, b.priority, b.bucket)
    insert into sku_queue_bucket (sku, priority, bucket, waiting_lines)
    select c.sku, c.priority, c.bucket, c.n from change c
    where not exists (select 1 from changed d
                      where d.sku = c.sku and d.priority = c.priority and d.bucket = c.bucket);
    if exists (select 1 from unnest(lines) n where n < 0) then
        delete from sku_queue_bucket b
        using unnest(skus, priorities, buckets, lines) as c(sku, priority, bucket, n)
        where c.n < 0 and b.sku = c.sku and b.priority = c.priority and b.bucket = c.bucket
          and b.waiting_lines = 0;
    end if;
end $$;

-- After each statement on `line`: +1 per waiting line among the new rows, -1 per waiting
-- line among the old rows, netted per bucket, so a statement that moves no line in or out
-- of a bucket (a partial fill, an ETA update) changes no counter. Set-based: one aggregate
-- per statement, however many lines it touched (a drain's chunk, a 50,000-line ETA walk);
-- no call of change_queue_buckets when no bucket changes.
-- (A trigger with transition tables takes one event only; hence three triggers.)
create function count_queue_buckets() returns trigger language plpgsql as $$
begin
    if TG_OP = 'INSERT' then
        -- Only gains: one upsert (a third of the cost of the general path, for Allocate).
        insert into sku_queue_bucket as b (sku, priority, bucket, waiting_lines)
        select sku, priority, sku_seq / queue_bucket_size(), count(*)
        from new_lines where backordered > 0 group by 1, 2, 3
        on conflict (sku, priority, bucket) do update
            set waiting_lines = b.waiting_lines + excluded.waiting_lines;
    elsif TG_OP = 'DELETE' then
        perform change_queue_buckets(array_agg(sku), array_agg(priority), array_agg(bucket),
                                     array_agg(lines))
        from (select sku, priority, sku_seq / queue_bucket_size() as bucket, -count(*) as lines
              from old_lines where backordered > 0 group by 1, 2, 3) c
        having count(*) > 0;
    else
        perform change_queue_buckets(array_agg(sku), array_agg(priority), array_agg(bucket),
                                     array_agg(lines))
        from (select sku, priority, sku_seq / queue_bucket_size() as bucket, sum(lines) as lines
              from (select sku, priority, sku_seq, 1 as lines from new_lines
                    where backordered > 0
                    union all
                    select sku, priority, sku_seq, -1 from old_lines
                    where backordered > 0) m
              group by 1, 2, 3 having sum(lines) <> 0) c
        having count(*) > 0;
    end if;
    return null;
end $$;

create trigger line_queue_buckets_insert after insert on line
    referencing new table as new_lines
    for each statement execute function count_queue_buckets();
create trigger line_queue_buckets_update after update on line
    referencing old table as old_lines new table as new_lines
    for each statement execute function count_queue_buckets();
create trigger line_queue_buckets_delete after delete on line
    referencing old table as old_lines
    for each statement execute function count_queue_buckets();

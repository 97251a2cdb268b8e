-- The queue's bucket counters (`sku_queue_bucket`, migration 0004 explains them) follow
-- every insert, update and delete of `line` by themselves: these statement triggers.
-- A repeatable file: applied again whenever it changes (create or replace).

create or replace function queue_bucket_size() returns bigint
    language sql immutable parallel safe
    as $$ select 1024::bigint $$;

-- Adds `lines[i]` (negative: lines that stopped waiting) to bucket (skus[i], priorities[i],
-- buckets[i]); keys are unique. Buckets left empty lose their row. Callers hold the lines'
-- SKU locks, so no other transaction changes these rows meanwhile. (PL/pgSQL rather than
-- SQL: its statements' plans are cached; a SQL function's are made again on every call.)
create or replace function change_queue_buckets(
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
create or replace function count_queue_buckets() returns trigger language plpgsql as $$
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

create or replace trigger line_queue_buckets_insert after insert on line
    referencing new table as new_lines
    for each statement execute function count_queue_buckets();
create or replace trigger line_queue_buckets_update after update on line
    referencing old table as old_lines new table as new_lines
    for each statement execute function count_queue_buckets();
create or replace trigger line_queue_buckets_delete after delete on line
    referencing old table as old_lines
    for each statement execute function count_queue_buckets();

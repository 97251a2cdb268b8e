-- Line placement moves to repeatable/placement.sql (`place_line`, `queue_line`), and the
-- line.backordered body of Allocate's one-round-trip path is no longer completed in SQL:
-- the queue position, known only once the line is queued, is carried by the outbox row's
-- `late_fields` and set into the message by the relay (services/common/outbox.py).

drop function queue_line(text, text, text, bigint, smallint, boolean, text, uuid, text, text,
                         text, bytea, int, text);
drop function protobuf_varint(bigint);

-- Fields of the message known only when the row was written (JSON, proto field names);
-- the relay sets them into `body` before publishing. Null for almost every row.
alter table outbox add column late_fields jsonb;

-- Tracing (docs/spec.md §5, "Tracing"): the trace context of the call that wrote an event
-- (the propagator's headers as a JSON object: W3C traceparent, tracestate), published with
-- it so the consumer continues that trace. Null when tracing is off.
alter table outbox add column trace_context jsonb;

-- Allocate's one-round-trip path writes its outbox row in SQL: repeatable/placement.sql
-- makes queue_line again with the trace context as its last argument.
drop function if exists queue_line(text, text, text, bigint, smallint, boolean, text, text[],
                                   uuid, text, text, text, bytea, text);

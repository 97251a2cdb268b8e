-- Tracing (docs/spec.md §5, "Tracing"): the trace context of the call that wrote an event
-- (the propagator's headers as a JSON object: W3C traceparent, tracestate), published with
-- it so the consumer continues that trace. Null when tracing is off.
alter table outbox add column trace_context jsonb;

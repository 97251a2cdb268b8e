-- Fewer index entries per filled line (issue 16, the drain). A fill's update of a line is
-- not HOT (it changes indexed columns), so its new version goes into every index whose
-- predicate it matches. One of them had no query that needed it for most lines:
--
-- line_customer_open serves only the per-customer cap check of place_line
-- (repeatable/placement.sql), which reads it for a non-empty customer id only; lines with
-- no customer id (most of them) no longer get an entry. The check states
-- `customer_id <> ''` itself so the planner can use the narrower predicate.
drop index line_customer_open;
create index line_customer_open on line (sku, customer_id) include (reserved, backordered)
    where reserved + backordered > 0 and customer_id <> '';

-- line_order (order_id, id) stays, although most orders have a few lines: ListLines by order
-- pages by id with it, and an order_id may hold any number of Allocate lines.

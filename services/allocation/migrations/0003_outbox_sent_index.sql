-- The outbox relay deletes sent rows by age (retention clean-up): index them as the
-- inventory database does (its 0002).
create index outbox_sent on outbox (sent_at) where sent_at is not null;

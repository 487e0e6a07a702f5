-- Consecutive identical failures of a tenant (same kind, same detail) are one row: how many
-- times it happened and when it last did. `created_at` stays the first time.
alter table tenant_event add column repeat_count integer not null default 1;
alter table tenant_event add column last_at text;

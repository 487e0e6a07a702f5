-- Continuous health: when the last check failed, and how many failed in a row (a
-- success resets it). next_verify_at (the next check) now applies to every tenant.
alter table tenant add column last_failure_at text;
alter table tenant add column consecutive_failures integer not null default 0;

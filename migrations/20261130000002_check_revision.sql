-- Checks never overwrite what happened while they ran (optimistic concurrency).
--
-- tenant.revision counts the writes a check must respect. THE RULE: every statement that
-- changes what a running check must not overwrite sets `revision = revision + 1` in the
-- same statement, and makes the tenant due (`next_verify_at` = now) when it wants a new
-- check. Those writes are: a callback recording consent (store/consent.rs
-- complete_consent), an operator's "verify now" (request_verification), schedule_now,
-- and a check's own saved outcome (save_check). A check remembers the revision of the row
-- it read and saves its outcome only `where revision = <what it read>`; otherwise it drops
-- the outcome and the tenant keeps the schedule the other write gave it, so a callback or
-- "verify now" made during a check is followed by a new check instead of being lost.
alter table tenant add column revision integer not null default 0;

-- Tenants verified before continuous health (migration 3) kept next_verify_at null, so
-- they were never checked again: check them now (then every interval).
update tenant set next_verify_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
where next_verify_at is null
  and (verified_at is not null or status in ('active', 'missing_permissions'));

-- First checks (verify_attempts = 0: after a callback or "verify now") are looked up on
-- their own, ahead of the due batch.
create index tenant_first_check on tenant (next_verify_at) where verify_attempts = 0;

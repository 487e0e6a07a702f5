-- Early checks: one budget per tenant for every check asked for ahead of schedule (a
-- consent callback, an API client's POST .../verify, an operator's "verify now"), kept in
-- the database so that several instances share it (store/tenant.rs `take_early_check`
-- states the rule: a burst of 2 for callers holding credentials, a callback only when the
-- budget is whole, then one a minute).
--
-- early_checks_full_at: when the budget is whole again (the theoretical arrival time of
-- the generic cell rate algorithm); null or past: whole.
alter table tenant add column early_checks_full_at text;
-- check_requested_at: when the early check still to save its outcome was asked for; a
-- check that saves its outcome clears it (one that started before the request cannot save:
-- the request moved the revision). Pages show "check running" from it.
alter table tenant add column check_requested_at text;

-- forced_check_at (callbacks' own spacing, migration 20261130000001) is no longer written:
-- its last value becomes the budget it left.
update tenant
set early_checks_full_at = strftime('%Y-%m-%dT%H:%M:%fZ', forced_check_at, '+60 seconds')
where forced_check_at is not null;

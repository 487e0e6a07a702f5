-- What happened to tenants, counted per day for the console's charts, so that a chart
-- reads a few hundred rows instead of the event log (a year of it at 100,000 tenants is
-- millions of rows). Kept by triggers on the tenant table, whose columns say exactly what
-- changed (the events say it in words); days are UTC dates, the first ten characters of
-- the stored timestamps.
--
--   consent       a tenant confirmed for the first time: pending → active or missing
--                 permissions (pending tenants were never verified)
--   reconsent     a revoked or gone tenant confirmed again
--   revocation    a tenant became revoked
--   failed_check  a tenant, verified once, had at least one failed check that day: it
--                 counts once a day however often it was retried (a failing tenant is
--                 retried every few seconds to minutes; those retries are merged into one
--                 event with a count). Tenants never verified do not count: a sign-up's
--                 retries while its consent propagates are expected, and one that gives
--                 up shows as failed among the statuses.
create table tenant_daily_count (
    kind  text not null,
    day   text not null,
    n     integer not null,
    primary key (kind, day)
) without rowid;

-- Status changes: every writer sets updated_at to the time of the change.
create trigger tenant_daily_consent after update of status on tenant
when old.status = 'pending' and new.status in ('active', 'missing_permissions') begin
    insert into tenant_daily_count (kind, day, n) values ('consent', substr(new.updated_at, 1, 10), 1)
        on conflict (kind, day) do update set n = n + 1;
end;
create trigger tenant_daily_reconsent after update of status on tenant
when old.status in ('revoked', 'gone') and new.status in ('active', 'missing_permissions') begin
    insert into tenant_daily_count (kind, day, n) values ('reconsent', substr(new.updated_at, 1, 10), 1)
        on conflict (kind, day) do update set n = n + 1;
end;
create trigger tenant_daily_revocation after update of status on tenant
when old.status <> 'revoked' and new.status = 'revoked' begin
    insert into tenant_daily_count (kind, day, n) values ('revocation', substr(new.updated_at, 1, 10), 1)
        on conflict (kind, day) do update set n = n + 1;
end;
-- A failed check moves last_failure_at (never back): the first failure of a tenant on a
-- day is the one that moves it to another day.
create trigger tenant_daily_failed_check after update of last_failure_at on tenant
when new.verified_at is not null and new.last_failure_at is not null
    and (old.last_failure_at is null or substr(old.last_failure_at, 1, 10) <> substr(new.last_failure_at, 1, 10)) begin
    insert into tenant_daily_count (kind, day, n) values ('failed_check', substr(new.last_failure_at, 1, 10), 1)
        on conflict (kind, day) do update set n = n + 1;
end;

-- The past, from what was kept: first verifications from the tenants themselves;
-- revocations and reconsents from the status_changed events ("Status: Active → Consent
-- revoked.", in the labels of domain/status.rs as they are now); failed checks from the
-- failure events of verified tenants, every day from a (merged) event's first to its last
-- occurrence. Tenants purged or deleted since are not counted.
insert into tenant_daily_count (kind, day, n)
select 'consent', substr(verified_at, 1, 10), count(*) from tenant
where verified_at is not null group by 2;

insert into tenant_daily_count (kind, day, n)
select 'revocation', substr(created_at, 1, 10), count(*) from tenant_event
where kind = 'status_changed' and detail like 'Status: % → Consent revoked.'
group by 2;

insert into tenant_daily_count (kind, day, n)
select 'reconsent', substr(created_at, 1, 10), count(*) from tenant_event
where kind = 'status_changed' and detail in (
    'Status: Consent revoked → Active.', 'Status: Consent revoked → Missing permissions.',
    'Status: Tenant gone → Active.', 'Status: Tenant gone → Missing permissions.')
group by 2;

with recursive failing (tenant_id, day, last_day) as (
    select e.tenant_id, substr(e.created_at, 1, 10), substr(coalesce(e.last_at, e.created_at), 1, 10)
    from tenant_event e join tenant t on t.id = e.tenant_id
    where e.kind in ('verification_retrying', 'verification_failed', 'check_failed', 'app_credential_rejected')
        and t.verified_at is not null and e.created_at > t.verified_at
    union
    select tenant_id, date(day, '+1 day'), last_day from failing where day < last_day
)
insert into tenant_daily_count (kind, day, n)
select 'failed_check', day, count(distinct tenant_id) from failing group by day;

-- The console's status sort puts what needs attention first: a rank per status (its
-- severity), as a virtual generated column so that the list's expression is one word and
-- the indexes below serve it. The ranks are repeated in domain/status.rs
-- (`TenantStatus::severity`, for the cursor's key); a unit test compares the two.
alter table tenant add column severity integer generated always as (
    case status
        when 'failing' then 0
        when 'revoked' then 1
        when 'gone' then 2
        when 'missing_permissions' then 3
        when 'failed' then 4
        when 'pending' then 5
        when 'active' then 6
        else 7
    end
) virtual;

-- The status sort's indexes (the list, a status filter, the default verified-only list),
-- replacing those of the alphabetical sort. "Needs attention" is the first four ranks
-- (severity <= 3): a range of console_severity, in order, with no index of its own.
drop index console_status;
drop index console_attention_status;
drop index console_verified_status;
create index console_severity on tenant (severity, id);
create index console_status_severity on tenant (status, severity, id);
create index console_verified_severity on tenant (severity, id)
    where verified_at is not null;

-- "All" counts what the default list shows (tenants verified at least once) unless never
-- verified ones are included: the counts keep the verified tenants per status too.
alter table tenant_status_count add column verified integer not null default 0;
update tenant_status_count set verified = (
    select count(*) from tenant
    where tenant.status = tenant_status_count.status and tenant.verified_at is not null);

drop trigger tenant_status_count_insert;
drop trigger tenant_status_count_delete;
drop trigger tenant_status_count_update;
create trigger tenant_status_count_insert after insert on tenant begin
    insert into tenant_status_count (status, n, verified)
        values (new.status, 1, new.verified_at is not null)
        on conflict (status) do update set n = n + 1, verified = verified + excluded.verified;
end;
create trigger tenant_status_count_delete after delete on tenant begin
    update tenant_status_count
        set n = n - 1, verified = verified - (old.verified_at is not null)
        where status = old.status;
end;
create trigger tenant_status_count_update after update of status, verified_at on tenant
when old.status <> new.status or (old.verified_at is null) <> (new.verified_at is null) begin
    update tenant_status_count
        set n = n - 1, verified = verified - (old.verified_at is not null)
        where status = old.status;
    insert into tenant_status_count (status, n, verified)
        values (new.status, 1, new.verified_at is not null)
        on conflict (status) do update set n = n + 1, verified = verified + excluded.verified;
end;

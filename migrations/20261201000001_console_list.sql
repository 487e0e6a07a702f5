-- The operator console's tenant list at 100,000 tenants: every sort walks an index in
-- order from the page's cursor, the status filter is the index's first column, search is
-- an FTS5 index, and the counts per status are kept by triggers.
--
-- Each sort has a unique key (the sort column, then the id) so that a page continues
-- after exactly the tenant it ended with. The keys, spelled identically in
-- store/tenant.rs (SQLite uses an index on an expression only for the same expression):
--   consented   consented_at
--   name        lower(coalesce(display_name, ''))
--   status      status
--   checked     max(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, ''))
create index console_consented on tenant (consented_at, id);
create index console_status_consented on tenant (status, consented_at, id);
create index console_name on tenant (lower(coalesce(display_name, '')), id);
create index console_status_name on tenant (status, lower(coalesce(display_name, '')), id);
create index console_status on tenant (status, id);
create index console_checked on tenant (max(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id);
create index console_status_checked on tenant (status, max(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id);

-- "Needs attention" (four statuses): partial indexes, so that the view walks one index
-- in sort order instead of merging four and sorting.
create index console_attention_consented on tenant (consented_at, id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');
create index console_attention_name on tenant (lower(coalesce(display_name, '')), id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');
create index console_attention_status on tenant (status, id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');
create index console_attention_checked on tenant (max(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');

-- The default list: tenants verified at least once. Forged callbacks (never verified,
-- purged after a week) are the newest rows; without these the first page would step over
-- every one of them.
create index console_verified_consented on tenant (consented_at, id)
    where verified_at is not null;
create index console_verified_name on tenant (lower(coalesce(display_name, '')), id)
    where verified_at is not null;
create index console_verified_status on tenant (status, id)
    where verified_at is not null;
create index console_verified_checked on tenant (max(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id)
    where verified_at is not null;

-- Tenants per status, kept by triggers: the counts atop every list page cost a lookup of
-- seven rows instead of a walk of the whole status index.
create table tenant_status_count (
    status  text primary key,
    n       integer not null
);
insert into tenant_status_count (status, n) select status, count(*) from tenant group by status;

create trigger tenant_status_count_insert after insert on tenant begin
    insert into tenant_status_count (status, n) values (new.status, 1)
        on conflict (status) do update set n = n + 1;
end;
create trigger tenant_status_count_delete after delete on tenant begin
    update tenant_status_count set n = n - 1 where status = old.status;
end;
create trigger tenant_status_count_update after update of status on tenant
when old.status <> new.status begin
    update tenant_status_count set n = n - 1 where status = old.status;
    insert into tenant_status_count (status, n) values (new.status, 1)
        on conflict (status) do update set n = n + 1;
end;

-- Search by organisation name and verified domain: words and word prefixes ("conto"
-- finds Contoso, "contoso.com" the domain). Its own table, not external content: the
-- tenant table's rowid is not stable (VACUUM may renumber it), so each row names its
-- tenant and the triggers find it by that id, through the index itself.
create virtual table tenant_search using fts5(
    tenant_id, name, domains,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);
insert into tenant_search (tenant_id, name, domains)
select id, coalesce(display_name, ''), verified_domains from tenant;

create trigger tenant_search_insert after insert on tenant begin
    insert into tenant_search (tenant_id, name, domains)
    values (new.id, coalesce(new.display_name, ''), new.verified_domains);
end;
create trigger tenant_search_update after update of display_name, verified_domains on tenant
when old.display_name is not new.display_name or old.verified_domains is not new.verified_domains begin
    delete from tenant_search where rowid in (
        select rowid from tenant_search where tenant_search match 'tenant_id:"' || old.id || '"');
    insert into tenant_search (tenant_id, name, domains)
    values (new.id, coalesce(new.display_name, ''), new.verified_domains);
end;
create trigger tenant_search_delete after delete on tenant begin
    delete from tenant_search where rowid in (
        select rowid from tenant_search where tenant_search match 'tenant_id:"' || old.id || '"');
end;

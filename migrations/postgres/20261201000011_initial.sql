-- consentry's schema on PostgreSQL (15 or later): the tables, indexes and rules of the
-- SQLite migrations in `migrations/`, as they stand at 20261201000011, in one migration.
-- From here on, every change to the schema is a migration in both folders under the same
-- version, so that both databases report the same latest migration
-- (tests/api/postgres_schema.rs compares the two schemas column by column).
--
-- Types follow the SQLite schema so that the store reads both into the same Rust types:
-- timestamps are fixed-width RFC 3339 UTC text (text order is time order), ids are text,
-- SQLite's integers are bigint (flags too: 0 or 1). Text that is compared or sorted is
-- `collate "C"`, byte order as in SQLite, whatever the database's locale.

-- A "Connect your organisation" click waiting for Microsoft's callback (only HMACs of the
-- state and browser binding), with the claims the sign-up carried.
create table consent_request (
    id                  text collate "C" primary key,
    state_hash          text collate "C" not null unique,
    binding_hash        text collate "C" not null,
    organisation_name   text,
    contact_email       text,
    domain_hint         text,
    client_addr         text collate "C",
    created_at          text collate "C" not null,
    expires_at          text collate "C" not null,
    consumed_at         text collate "C",
    tenant_id           text collate "C",
    client_net          text collate "C",
    refusals            bigint not null default 0,
    invitation_id       text collate "C",
    signed_in_tenant    text collate "C",
    signed_in_oid       text collate "C",
    signed_in_name      text,
    signed_in_username  text,
    signed_in_at        text collate "C"
);
create index consent_request_expires_at on consent_request (expires_at);
create index consent_request_binding_hash on consent_request (binding_hash, consumed_at);
create index consent_request_client_addr on consent_request (client_addr, consumed_at);
create index consent_request_client_net on consent_request (client_net, consumed_at);
create index consent_request_tenant_id on consent_request (tenant_id, consumed_at);
create index consent_request_invitation_id on consent_request (invitation_id, created_at);

-- A customer organisation (Microsoft Entra tenant) that went through admin consent.
create table tenant (
    id                    text collate "C" primary key,
    status                text collate "C" not null,
    display_name          text collate "C",
    verified_domains      text collate "C" not null default '[]',
    granted_roles         text collate "C" not null default '[]',
    organisation_name     text,
    contact_email         text,
    consent_request_id    text collate "C",
    consented_at          text collate "C" not null,
    verified_at           text collate "C",
    last_token_ok_at      text collate "C",
    last_error_code       text collate "C",
    last_error            text,
    verify_attempts       bigint not null default 0,
    next_verify_at        text collate "C",
    created_at            text collate "C" not null,
    updated_at            text collate "C" not null,
    last_failure_at       text collate "C",
    consecutive_failures  bigint not null default 0,
    -- No longer written (see the SQLite migration 20261201000006); kept so that both
    -- schemas have the same columns.
    forced_check_at       text collate "C",
    -- Optimistic concurrency of checks: THE RULE of migration 20261130000002.
    revision              bigint not null default 0,
    user_count            bigint,
    user_count_at         text collate "C",
    early_checks_full_at  text collate "C",
    check_requested_at    text collate "C",
    -- The status sort's rank (domain/status.rs `TenantStatus::severity`).
    severity              bigint generated always as (
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
    ) stored
);
create index tenant_status on tenant (status);
create index tenant_next_verify_at on tenant (next_verify_at);
create index tenant_consented_at on tenant (consented_at);
create index tenant_status_consented_at on tenant (status, consented_at);
create index tenant_first_check on tenant (next_verify_at) where verify_attempts = 0;
create index tenant_consented_at_id on tenant (consented_at, id);

-- The console's sorts (migration 20261201000001): each walks an index from the page's
-- cursor. SQLite's two-argument max() is PostgreSQL's greatest().
create index console_consented on tenant (consented_at, id);
create index console_status_consented on tenant (status, consented_at, id);
create index console_name on tenant (lower(coalesce(display_name, '')), id);
create index console_status_name on tenant (status, lower(coalesce(display_name, '')), id);
create index console_checked on tenant (greatest(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id);
create index console_status_checked on tenant (status, greatest(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id);
create index console_attention_consented on tenant (consented_at, id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');
create index console_attention_name on tenant (lower(coalesce(display_name, '')), id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');
create index console_attention_checked on tenant (greatest(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id)
    where status in ('failing', 'revoked', 'missing_permissions', 'gone');
create index console_verified_consented on tenant (consented_at, id)
    where verified_at is not null;
create index console_verified_name on tenant (lower(coalesce(display_name, '')), id)
    where verified_at is not null;
create index console_verified_checked on tenant (greatest(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, '')), id)
    where verified_at is not null;
create index console_severity on tenant (severity, id);
create index console_status_severity on tenant (status, severity, id);
create index console_verified_severity on tenant (severity, id)
    where verified_at is not null;

-- Search by organisation name and verified domain, words and word prefixes, ignoring
-- case and diacritics (SQLite: the FTS5 table tenant_search). Here: a text-search
-- document per tenant, kept by a trigger, under a GIN index.
create extension if not exists unaccent;
create table tenant_search (
    tenant_id  text collate "C" primary key references tenant (id) on delete cascade,
    document   tsvector not null
);
create index tenant_search_document on tenant_search using gin (document);
-- Punctuation separates words, as in SQLite's unicode61 tokenizer: "contoso.com" is the
-- words contoso and com (PostgreSQL's parser would keep a host name as one word, which
-- "microsoft" could not find in "contoso.onmicrosoft.com"). The name's words are weighted
-- A and the domains' B, so that a phrase is looked for within one of them (as FTS5 does
-- per column), never across the end of the name and the first domain.
create function tenant_search_document(name text, domains text) returns tsvector
language sql immutable parallel safe as $$
    select setweight(to_tsvector('simple', regexp_replace(
            public.unaccent('public.unaccent', coalesce(name, '')), '[[:punct:]]+', ' ', 'g')), 'A')
        || setweight(to_tsvector('simple',
            regexp_replace(coalesce(domains, ''), '[[:punct:]]+', ' ', 'g')), 'B')
$$;
create function tenant_search_keep() returns trigger language plpgsql as $$
begin
    insert into tenant_search (tenant_id, document)
    values (new.id, tenant_search_document(new.display_name, new.verified_domains))
    on conflict (tenant_id) do update set document = excluded.document;
    return null;
end;
$$;
create trigger tenant_search_insert after insert on tenant
    for each row execute function tenant_search_keep();
create trigger tenant_search_update after update of display_name, verified_domains on tenant
    for each row
    when (old.display_name is distinct from new.display_name
          or old.verified_domains is distinct from new.verified_domains)
    execute function tenant_search_keep();

-- Tenants per status, all and verified at least once, kept by a trigger: the counts atop
-- every list page are a lookup of seven rows.
create table tenant_status_count (
    status    text collate "C" primary key,
    n         bigint not null,
    verified  bigint not null default 0
);
create function tenant_status_count_keep() returns trigger language plpgsql as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        update tenant_status_count
            set n = n - 1, verified = verified - (old.verified_at is not null)::int
            where status = old.status;
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        insert into tenant_status_count (status, n, verified)
            values (new.status, 1, (new.verified_at is not null)::int)
            on conflict (status) do update
            set n = tenant_status_count.n + 1,
                verified = tenant_status_count.verified + excluded.verified;
    end if;
    return null;
end;
$$;
create trigger tenant_status_count_insert after insert on tenant
    for each row execute function tenant_status_count_keep();
create trigger tenant_status_count_delete after delete on tenant
    for each row execute function tenant_status_count_keep();
create trigger tenant_status_count_update after update of status, verified_at on tenant
    for each row
    when (old.status <> new.status or (old.verified_at is null) <> (new.verified_at is null))
    execute function tenant_status_count_keep();

-- What happened to tenants, counted per UTC day for the console's charts (the kinds are
-- described in the SQLite migration 20261201000008).
create table tenant_daily_count (
    kind  text collate "C" not null,
    day   text collate "C" not null,
    n     bigint not null,
    primary key (kind, day)
);
create function tenant_daily_count_add(what text, at text) returns void
language sql as $$
    insert into tenant_daily_count (kind, day, n) values (what, substr(at, 1, 10), 1)
    on conflict (kind, day) do update set n = tenant_daily_count.n + 1
$$;
create function tenant_daily_count_keep() returns trigger language plpgsql as $$
begin
    if old.status is distinct from new.status then
        if old.status = 'pending' and new.status in ('active', 'missing_permissions') then
            perform tenant_daily_count_add('consent', new.updated_at);
        end if;
        if old.status in ('revoked', 'gone') and new.status in ('active', 'missing_permissions') then
            perform tenant_daily_count_add('reconsent', new.updated_at);
        end if;
        if old.status <> 'revoked' and new.status = 'revoked' then
            perform tenant_daily_count_add('revocation', new.updated_at);
        end if;
    end if;
    -- A failed check moves last_failure_at (never back): the first failure of a tenant on
    -- a day is the one that moves it to another day.
    if new.verified_at is not null and new.last_failure_at is not null
        and (old.last_failure_at is null
             or substr(old.last_failure_at, 1, 10) <> substr(new.last_failure_at, 1, 10)) then
        perform tenant_daily_count_add('failed_check', new.last_failure_at);
    end if;
    return null;
end;
$$;
create trigger tenant_daily_count_update after update of status, last_failure_at on tenant
    for each row execute function tenant_daily_count_keep();

-- Append-only history of tenants, and refused callbacks (which may name no tenant). Ids
-- are UUIDv7: id order is time order. Identical consecutive failures are one row.
create table tenant_event (
    id            text collate "C" primary key,
    tenant_id     text collate "C",
    kind          text collate "C" not null,
    detail        text not null,
    request_id    text collate "C",
    created_at    text collate "C" not null,
    repeat_count  bigint not null default 1,
    last_at       text collate "C"
);
create index tenant_event_tenant_id on tenant_event (tenant_id, id);
create index tenant_event_created_at on tenant_event (created_at);

-- People who sign in to /admin (Argon2id PHC strings; empty for Microsoft-only operators).
create table operator (
    id                  text collate "C" primary key,
    name                text collate "C" not null unique,
    password_hash       text not null,
    created_at          text collate "C" not null,
    updated_at          text collate "C" not null,
    role                text collate "C" not null default 'owner'
        check (role in ('owner', 'operator', 'viewer')),
    disabled_at         text collate "C",
    microsoft_tenant    text collate "C",
    microsoft_oid       text collate "C",
    microsoft_username  text
);
create unique index operator_microsoft_identity on operator (microsoft_tenant, microsoft_oid)
    where microsoft_oid is not null;

-- Signed-in operators: the cookie holds a random id, the table only its HMAC.
create table operator_session (
    id_hash       text collate "C" primary key,
    operator_id   text collate "C" not null references operator (id) on delete cascade,
    csrf_token    text collate "C" not null,
    created_at    text collate "C" not null,
    expires_at    text collate "C" not null,
    public_id     text collate "C",
    last_seen_at  text collate "C",
    address       text not null default '',
    user_agent    text not null default ''
);
create index operator_session_expires_at on operator_session (expires_at);
create unique index operator_session_public_id on operator_session (public_id);
create index operator_session_operator on operator_session (operator_id);

-- The audit trail: what operators did (and tried), append-only; id order is time order.
create table audit_event (
    id       bigint generated by default as identity primary key,
    at       text collate "C" not null,
    actor    text collate "C" not null,
    address  text not null,
    action   text collate "C" not null,
    target   text not null default '',
    outcome  text collate "C" not null check (outcome in ('success', 'failure', 'denied'))
);
create index audit_event_actor on audit_event (actor, id);
create index audit_event_action on audit_event (action, id);
create index audit_event_at on audit_event (at);
create function audit_event_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'the audit trail is append-only';
end;
$$;
create trigger audit_event_no_update before update on audit_event
    for each row execute function audit_event_append_only();
create trigger audit_event_no_delete before delete on audit_event
    for each row execute function audit_event_append_only();

-- API keys: only the SHA-256 of a key and its first characters.
create table api_key (
    id            text collate "C" primary key,
    name          text not null,
    prefix        text collate "C" not null,
    key_hash      text collate "C" not null unique,
    scopes        text not null,
    created_at    text collate "C" not null,
    last_used_at  text collate "C",
    revoked_at    text collate "C"
);
create index api_key_created_at on api_key (created_at);

-- Idempotency keys of API requests that create something (24 hours).
create table api_idempotency_key (
    api_key_id       text collate "C" not null,
    idempotency_key  text collate "C" not null,
    operation        text collate "C" not null,
    request_hash     text collate "C" not null,
    resource_id      text collate "C" not null,
    created_at       text collate "C" not null,
    primary key (api_key_id, idempotency_key)
);
create index api_idempotency_key_created_at on api_idempotency_key (created_at);

-- Webhooks: the outbox of events, the endpoints, one delivery per (event, endpoint)
-- (THE OUTBOX RULE of migration 20261130000004).
create table webhook_event (
    id          text collate "C" primary key,
    type        text collate "C" not null,
    tenant_id   text collate "C",
    payload     text not null,
    created_at  text collate "C" not null
);
create index webhook_event_tenant_id on webhook_event (tenant_id, id);
create index webhook_event_created_at on webhook_event (created_at);

create table webhook_endpoint (
    id                          text collate "C" primary key,
    url                         text not null,
    description                 text not null default '',
    event_types                 text not null default '',
    state                       text collate "C" not null default 'enabled',
    state_reason                text,
    secret_salt                 text not null,
    previous_secret_salt        text,
    previous_secret_expires_at  text collate "C",
    created_at                  text collate "C" not null,
    updated_at                  text collate "C" not null
);
create index webhook_endpoint_created_at on webhook_endpoint (created_at);

create table webhook_delivery (
    id                text collate "C" primary key,
    event_id          text collate "C" not null references webhook_event (id) on delete cascade,
    endpoint_id       text collate "C" not null references webhook_endpoint (id) on delete cascade,
    tenant_id         text collate "C",
    status            text collate "C" not null default 'pending',
    attempts          bigint not null default 0,
    schedule_step     bigint not null default 0,
    next_attempt_at   text collate "C",
    lease_until       text collate "C",
    lease_token       text collate "C",
    last_attempt_at   text collate "C",
    last_status_code  bigint,
    last_duration_ms  bigint,
    last_error        text,
    created_at        text collate "C" not null,
    updated_at        text collate "C" not null,
    unique (event_id, endpoint_id)
);
create index webhook_delivery_due on webhook_delivery (next_attempt_at) where status = 'pending';
create index webhook_delivery_endpoint_id on webhook_delivery (endpoint_id, id);
create index webhook_delivery_tenant_id on webhook_delivery (tenant_id, id);

-- App-wide alerts, raised and cleared exactly once.
create table app_alert (
    kind        text collate "C" primary key,
    code        text collate "C" not null,
    headline    text not null,
    message     text not null,
    raised_at   text collate "C" not null,
    cleared_at  text collate "C"
);

-- Invitations (status and expiry as in the SQLite migration 20261201000005).
create table invitation (
    id                   text collate "C" primary key,
    salt                 text not null,
    token_hash           text collate "C" not null unique,
    organisation_name    text not null,
    contact_email        text not null,
    tenant_id            text collate "C",
    domain               text collate "C",
    status               text collate "C" not null
        check (status in ('created', 'opened', 'consented', 'verified', 'revoked')),
    expires_at           text collate "C" not null,
    created_by           text collate "C" not null,
    created_at           text collate "C" not null,
    opened_at            text collate "C",
    consented_at         text collate "C",
    verified_at          text collate "C",
    revoked_at           text collate "C",
    revoked_by           text collate "C",
    consent_request_id   text collate "C",
    callback_tenant_id   text collate "C",
    connected_tenant_id  text collate "C",
    failure              text,
    failed_at            text collate "C",
    updated_at           text collate "C" not null
);
create index invitation_status_id on invitation (status, id);
create index invitation_tenant_id on invitation (tenant_id, id);
create index invitation_callback_tenant_id on invitation (callback_tenant_id, status);
create index invitation_connected_tenant_id on invitation (connected_tenant_id);

-- Sign-ins with Microsoft waiting for their answer (only HMACs of state and binding).
create table sign_in_request (
    id            text collate "C" primary key,
    state_hash    text collate "C" not null unique,
    binding_hash  text collate "C" not null,
    purpose       text collate "C" not null check (purpose in ('signup', 'operator')),
    client_addr   text collate "C",
    created_at    text collate "C" not null,
    expires_at    text collate "C" not null,
    consumed_at   text collate "C",
    refusals      bigint not null default 0
);
create index sign_in_request_expires_at on sign_in_request (expires_at);
create index sign_in_request_client_addr on sign_in_request (client_addr, consumed_at);

-- Background jobs leased to one instance at a time (purging stale rows).
create table job_lease (
    name    text collate "C" primary key,
    holder  text collate "C" not null,
    until   text collate "C" not null
);

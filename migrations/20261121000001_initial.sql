-- consentry's schema. Portable SQL (text timestamps in RFC 3339 UTC, text UUIDs, no
-- autoincrement) so that a PostgreSQL twin of this migration can follow.

-- A "Connect your organisation" click waiting for Microsoft's callback. Neither the state
-- nor the browser-binding value is stored: only their HMACs under the session key.
create table consent_request (
    id                 text primary key,
    state_hash         text not null unique,
    binding_hash       text not null,
    organisation_name  text,
    contact_email      text,
    domain_hint        text,
    client_addr        text,
    created_at         text not null,
    expires_at         text not null,
    consumed_at        text
);
create index consent_request_expires_at on consent_request (expires_at);

-- A customer organisation (Microsoft Entra tenant) that went through admin consent.
create table tenant (
    id                     text primary key,
    status                 text not null,
    display_name           text,
    verified_domains       text not null default '[]',
    granted_roles          text not null default '[]',
    organisation_name      text,
    contact_email          text,
    consent_request_id     text,
    consented_at           text not null,
    verified_at            text,
    last_token_ok_at       text,
    last_error_code        text,
    last_error             text,
    verify_attempts        integer not null default 0,
    next_verify_at         text,
    created_at             text not null,
    updated_at             text not null
);
create index tenant_status on tenant (status);
create index tenant_next_verify_at on tenant (next_verify_at);

-- Append-only history: what happened to a tenant, and callbacks that were refused (those
-- may name no tenant). Ids are UUIDv7, so they sort by time.
create table tenant_event (
    id          text primary key,
    tenant_id   text,
    kind        text not null,
    detail      text not null,
    request_id  text,
    created_at  text not null
);
create index tenant_event_tenant_id on tenant_event (tenant_id, id);

-- People who sign in to /admin. Passwords are Argon2id PHC strings.
create table operator (
    id             text primary key,
    name           text not null unique,
    password_hash  text not null,
    created_at     text not null,
    updated_at     text not null
);

-- Signed-in operators. The cookie holds a random id; the table only its HMAC.
create table operator_session (
    id_hash      text primary key,
    operator_id  text not null references operator (id) on delete cascade,
    csrf_token   text not null,
    created_at   text not null,
    expires_at   text not null
);
create index operator_session_expires_at on operator_session (expires_at);

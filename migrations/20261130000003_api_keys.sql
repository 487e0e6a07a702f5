-- Keys other systems present as `Authorization: Bearer cst_live_...`. The key is shown once
-- and never stored: only its SHA-256 (key_hash) and its first characters (prefix), which
-- are enough for people to tell keys apart and useless to anyone holding the database.
-- scopes is a space-separated list (`tenants:read tokens:issue`). A revoked key is kept,
-- with revoked_at, so that the dashboard can still say who held it.
create table api_key (
    id            text primary key,
    name          text not null,
    prefix        text not null,
    key_hash      text not null unique,
    scopes        text not null,
    created_at    text not null,
    last_used_at  text,
    revoked_at    text
);
create index api_key_created_at on api_key (created_at);

-- The API pages tenants in (consented_at, id) order: a unique key, so pages stay stable
-- while tenants are added.
create index tenant_consented_at_id on tenant (consented_at, id);

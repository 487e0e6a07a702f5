-- Invitations: a link an operator sends a named customer (a new one, or a tenant that has
-- to consent again). The link's token is never stored: it is HMAC-SHA256 of `salt` under
-- the session key, so the dashboard can show it again while the database alone cannot;
-- `token_hash` (HMAC of the token) finds the invitation when the link is opened.
--
-- `status` moves created → opened → consented → verified, or to revoked. Expired is not
-- stored: an invitation still created or opened whose `expires_at` has passed is expired,
-- and every query that filters on status says so.
create table invitation (
    id                   text primary key,
    salt                 text not null,
    token_hash           text not null unique,
    organisation_name    text not null,
    contact_email        text not null,
    -- What the operator named, if anything: a tenant id or a domain (the adminconsent
    -- page's tenant segment).
    tenant_id            text,
    domain               text,
    status               text not null
        check (status in ('created', 'opened', 'consented', 'verified', 'revoked')),
    expires_at           text not null,
    -- The operator's name, as the audit trail names operators.
    created_by           text not null,
    created_at           text not null,
    opened_at            text,
    consented_at         text,
    verified_at          text,
    revoked_at           text,
    revoked_by           text,
    -- The sign-up whose callback consented it (its browser may see the outcome), and the
    -- tenant that callback named.
    consent_request_id   text,
    callback_tenant_id   text,
    -- The tenant verified through it.
    connected_tenant_id  text,
    -- The last thing that went wrong (a decline, a refused callback, a failed check).
    failure              text,
    failed_at            text,
    updated_at           text not null
);
-- Ids are UUIDv7, so id order is creation order: the list pages walk it backwards, all or
-- by status.
create index invitation_status_id on invitation (status, id);
-- A tenant's page lists its invitations; a check of a tenant finds those awaiting it.
create index invitation_tenant_id on invitation (tenant_id, id);
create index invitation_callback_tenant_id on invitation (callback_tenant_id, status);
create index invitation_connected_tenant_id on invitation (connected_tenant_id);

-- The invitation a sign-up was started from, if any.
alter table consent_request add column invitation_id text;
create index consent_request_invitation_id on consent_request (invitation_id, created_at);

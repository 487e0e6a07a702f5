-- Sign-ins with Microsoft (OpenID Connect) waiting for their answer. As for consent
-- requests, neither the state nor the browser binding is stored, only their HMACs under
-- the session key; the nonce and the PKCE verifier are derived from the state under the
-- same key when the answer comes, so nothing here can be replayed at Microsoft.
create table sign_in_request (
    id            text primary key,
    state_hash    text not null unique,
    binding_hash  text not null,
    -- What the sign-in is for: 'signup' (a verified sign-up) or 'operator' (the console).
    purpose       text not null check (purpose in ('signup', 'operator')),
    client_addr   text,
    created_at    text not null,
    expires_at    text not null,
    consumed_at   text,
    -- 1 once a refusal wrote its event: later refusals of the same request only count.
    refusals      integer not null default 0
);
create index sign_in_request_expires_at on sign_in_request (expires_at);
create index sign_in_request_client_addr on sign_in_request (client_addr, consumed_at);

-- Who signed in before a sign-up went to its tenant's adminconsent page, from a validated
-- ID token (never the token itself): the callback must name this same tenant, and the
-- claim is then authenticated.
alter table consent_request add column signed_in_tenant text;
alter table consent_request add column signed_in_oid text;
alter table consent_request add column signed_in_name text;
alter table consent_request add column signed_in_username text;
alter table consent_request add column signed_in_at text;

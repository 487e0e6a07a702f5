-- Operators who sign in with Microsoft (CONSENTRY_OPERATOR_TENANT). An operator is tied to
-- one Microsoft identity by the ID token's `tid` and `oid` (immutable), never by the
-- username (which an administrator can rename or give to someone else): the username is
-- matched only once, at the first sign-in, to take over an operator an owner registered
-- under that name. An operator created by a sign-in has no password (an empty hash).
alter table operator add column microsoft_tenant text;
alter table operator add column microsoft_oid text;
-- The username the last sign-in carried, for the operators page only.
alter table operator add column microsoft_username text;
create unique index operator_microsoft_identity on operator (microsoft_tenant, microsoft_oid)
    where microsoft_oid is not null;

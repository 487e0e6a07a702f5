-- Which tenant a consumed consent request named. Several requests may name one tenant (a
-- re-consent, or a forged callback); the tenant keeps the request that first recorded it,
-- and only that browser's status page shows the tenant's details.
alter table consent_request add column tenant_id text;

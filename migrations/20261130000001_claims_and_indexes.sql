-- Sign-up details are claims: they stay with the consent request that carried them and are
-- never written over a tenant. A consumed request that named a tenant is that tenant's
-- claim; the tenant's name and domains come from Graph only.

-- The client's network (an IPv4 address, an IPv6 /48) beside its address (IPv4, IPv6 /64):
-- pending sign-ups are bounded per address and per network.
alter table consent_request add column client_net text;
-- 1 once a callback for this request was refused: only that first refusal writes an event,
-- so a replayed callback URL costs no row.
alter table consent_request add column refusals integer not null default 0;

-- The last time a callback forced an early check of the tenant: at most one a minute.
alter table tenant add column forced_check_at text;

-- Earlier versions copied a sign-up's details onto the tenant. Keep them as the claim of
-- the request that recorded the tenant (re-creating it when it was purged), then clear them.
update consent_request
set organisation_name = coalesce(consent_request.organisation_name, (select t.organisation_name from tenant t where t.consent_request_id = consent_request.id)),
    contact_email = coalesce(consent_request.contact_email, (select t.contact_email from tenant t where t.consent_request_id = consent_request.id)),
    tenant_id = coalesce(consent_request.tenant_id, (select t.id from tenant t where t.consent_request_id = consent_request.id))
where id in (select consent_request_id from tenant where consent_request_id is not null);

insert into consent_request (id, state_hash, binding_hash, organisation_name, contact_email, created_at,
                             expires_at, consumed_at, tenant_id)
select 'migrated-' || t.id, 'migrated-' || t.id, '', t.organisation_name, t.contact_email, t.consented_at,
       t.consented_at, t.consented_at, t.id
from tenant t
where (t.organisation_name is not null or t.contact_email is not null)
  and not exists (select 1 from consent_request r where r.id = t.consent_request_id);

update tenant set consent_request_id = 'migrated-' || id
where (organisation_name is not null or contact_email is not null)
  and not exists (select 1 from consent_request r where r.id = tenant.consent_request_id);

update tenant set organisation_name = null, contact_email = null;

-- What the dashboard and the status page ask, at 100,000 tenants.
create index tenant_consented_at on tenant (consented_at);
create index tenant_status_consented_at on tenant (status, consented_at);
create index consent_request_binding_hash on consent_request (binding_hash, consumed_at);
create index consent_request_client_addr on consent_request (client_addr, consumed_at);
create index consent_request_client_net on consent_request (client_net, consumed_at);
create index consent_request_tenant_id on consent_request (tenant_id, consumed_at);
create index tenant_event_created_at on tenant_event (created_at);

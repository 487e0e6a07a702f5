-- Webhooks (Standard Webhooks): an outbox of events, the endpoints that receive them, and
-- one delivery per (event, endpoint).
--
-- THE OUTBOX RULE: an event is inserted in the same transaction as the change it reports
-- (store/webhook.rs insert_outbox, called from save_check, complete_consent,
-- decline_consent and the app alert), together with one pending delivery per endpoint
-- subscribed to its type. A crash therefore cannot lose an event nor invent one, and a
-- delivery exists before anything could try to send it.

-- What happened, as it is sent: `payload` is the exact body of every delivery of the event
-- (so retries and resends send identical bytes). Ids are `evt_` + a UUIDv7 in hex: stable
-- across retries (the `webhook-id` header receivers de-duplicate on) and sorted by time.
create table webhook_event (
    id          text primary key,
    type        text not null,
    tenant_id   text,
    payload     text not null,
    created_at  text not null
);
create index webhook_event_tenant_id on webhook_event (tenant_id, id);
create index webhook_event_created_at on webhook_event (created_at);

-- A receiver. `event_types` is a space-separated list; empty means every type, including
-- types added later. `state`: enabled (delivered to), paused (by an operator) or disabled
-- (the endpoint answered 410 Gone); deliveries of a paused or disabled endpoint wait and go
-- out when it is enabled again.
--
-- The signing secret is never stored: it is HMAC-SHA256(session key, salt), and only the
-- random salt is here. During a rotation the previous salt is kept until
-- previous_secret_expires_at and deliveries are signed with both secrets.
create table webhook_endpoint (
    id                          text primary key,
    url                         text not null,
    description                 text not null default '',
    event_types                 text not null default '',
    state                       text not null default 'enabled',
    state_reason                text,
    secret_salt                 text not null,
    previous_secret_salt        text,
    previous_secret_expires_at  text,
    created_at                  text not null,
    updated_at                  text not null
);
create index webhook_endpoint_created_at on webhook_endpoint (created_at);

-- One event to one endpoint. `status`: pending (next_attempt_at says when), succeeded, or
-- failed (the retry schedule is exhausted; a resend makes it pending again).
-- `attempts` counts every attempt ever made; `schedule_step` the attempts since it was
-- last (re)queued, i.e. the position in the retry schedule. A worker claims a due delivery
-- by setting a lease (lease_until, lease_token); only the holder of the lease can record
-- the attempt, and a lease whose worker died expires, so another worker takes it over.
create table webhook_delivery (
    id                 text primary key,
    event_id           text not null references webhook_event (id) on delete cascade,
    endpoint_id        text not null references webhook_endpoint (id) on delete cascade,
    tenant_id          text,
    status             text not null default 'pending',
    attempts           integer not null default 0,
    schedule_step      integer not null default 0,
    next_attempt_at    text,
    lease_until        text,
    lease_token        text,
    last_attempt_at    text,
    last_status_code   integer,
    last_duration_ms   integer,
    last_error         text,
    created_at         text not null,
    updated_at         text not null,
    unique (event_id, endpoint_id)
);
create index webhook_delivery_due on webhook_delivery (next_attempt_at) where status = 'pending';
create index webhook_delivery_endpoint_id on webhook_delivery (endpoint_id, id);
create index webhook_delivery_tenant_id on webhook_delivery (tenant_id, id);

-- App-wide alerts that outlive a restart and are raised and cleared exactly once (each
-- change writes an `app.credential_alert` event). `kind` is 'credential'.
create table app_alert (
    kind        text primary key,
    code        text not null,
    headline    text not null,
    message     text not null,
    raised_at   text not null,
    cleared_at  text
);

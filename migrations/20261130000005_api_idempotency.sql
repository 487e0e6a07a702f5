-- Idempotency keys of API requests that create something (`Idempotency-Key` header): the
-- same key from the same API key within 24 hours answers with what the first request
-- created instead of creating it again, so a client may retry a request whose answer it
-- lost. Only the id of what was created is kept, and a hash of the request (a key reused
-- for a different request is refused): never a response body, so never a secret.
-- Written in the transaction that creates the resource; rows older than a day are purged
-- by the next request that writes one.
create table api_idempotency_key (
    api_key_id       text not null,
    idempotency_key  text not null,
    -- What the request did, e.g. 'create_webhook_endpoint'.
    operation        text not null,
    -- SHA-256 (base64url) of the request's meaning: its parsed fields.
    request_hash     text not null,
    resource_id      text not null,
    created_at       text not null,
    primary key (api_key_id, idempotency_key)
);
create index api_idempotency_key_created_at on api_idempotency_key (created_at);

//! Idempotency keys of API requests that create something (migration
//! 20261130000005_api_idempotency.sql states the rules).

use time::OffsetDateTime;

use super::webhook::{EndpointRow, NewEndpoint, insert_endpoint};
use super::{Store, StoreError, ts};

/// A key stays bound to its first request this long.
pub const IDEMPOTENCY_WINDOW: time::Duration = time::Duration::hours(24);

/// The `Idempotency-Key` of a request, scoped to the API key that sent it.
#[derive(Debug, Clone)]
pub struct IdempotencyKey<'a> {
    pub api_key_id: &'a str,
    pub key: &'a str,
    /// A hash of the request's meaning: the same key with another request is refused.
    pub request_hash: &'a str,
}

/// What a create with an idempotency key did.
#[derive(Debug, Clone)]
pub enum CreatedOnce {
    /// The first request with this key: created now.
    Created(EndpointRow),
    /// The key was used before (within the window): nothing was created now.
    Replayed {
        /// What the first request created, as it is now; `None` once it was deleted.
        endpoint: Option<EndpointRow>,
        /// Whether the first request was this same request.
        same_request: bool,
    },
}

const OPERATION: &str = "create_webhook_endpoint";

impl Store {
    /// Creates an endpoint unless `key` was used in the last 24 hours, in one transaction
    /// with the key's record: two requests racing with one key create one endpoint.
    pub async fn create_endpoint_once(
        &self,
        key: &IdempotencyKey<'_>,
        endpoint: &NewEndpoint<'_>,
        now: OffsetDateTime,
    ) -> Result<CreatedOnce, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The insert comes first, so SQLite takes the write lock before the key is looked
        // up: a request racing with the same key waits, then finds it.
        let created = insert_endpoint(&mut tx, endpoint, now).await?;
        sqlx::query("delete from api_idempotency_key where created_at < $1")
            .bind(ts(now - IDEMPOTENCY_WINDOW))
            .execute(&mut *tx)
            .await?;
        let recorded = sqlx::query(
            "insert into api_idempotency_key (api_key_id, idempotency_key, operation, request_hash, resource_id, created_at) \
             values ($1, $2, $3, $4, $5, $6) on conflict (api_key_id, idempotency_key) do nothing",
        )
        .bind(key.api_key_id)
        .bind(key.key)
        .bind(OPERATION)
        .bind(key.request_hash)
        .bind(&created.id)
        .bind(ts(now))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if recorded {
            tx.commit().await?;
            return Ok(CreatedOnce::Created(created));
        }
        let (operation, request_hash, resource_id): (String, String, String) = sqlx::query_as(
            "select operation, request_hash, resource_id from api_idempotency_key \
             where api_key_id = $1 and idempotency_key = $2",
        )
        .bind(key.api_key_id)
        .bind(key.key)
        .fetch_one(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(CreatedOnce::Replayed {
            endpoint: self.endpoint(&resource_id).await?,
            same_request: operation == OPERATION && request_hash == key.request_hash,
        })
    }
}

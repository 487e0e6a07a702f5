//! API keys: their hashes, scopes and use.

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, ts};
use crate::domain::api_key::Scope;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    /// The key's first characters (`cst_live_AbCdEfGh`), for people.
    pub prefix: String,
    /// SHA-256 of the key, base64url; the key itself is never stored.
    pub key_hash: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl ApiKeyRow {
    pub fn scopes(&self) -> Vec<Scope> {
        Scope::parse_list(&self.scopes)
    }

    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes().contains(&scope)
    }
}

/// A key to record: everything but the key itself.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub scopes: &'a [Scope],
}

impl Store {
    /// Records a key; returns its id.
    pub async fn create_api_key(
        &self,
        key: &NewApiKey<'_>,
        now: OffsetDateTime,
    ) -> Result<String, StoreError> {
        let id = Uuid::new_v4().to_string();
        sqlx::query(
            "insert into api_key (id, name, prefix, key_hash, scopes, created_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(key.name)
        .bind(key.prefix)
        .bind(key.key_hash)
        .bind(Scope::join(key.scopes))
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// Every key, revoked ones too, newest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        Ok(
            sqlx::query_as("select * from api_key order by created_at desc, id desc")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The key with this hash, revoked or not.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        Ok(sqlx::query_as("select * from api_key where key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The key with this hash as it was at most [`super::API_KEY_TTL`] ago, revoked or
    /// not: what every API request asks. A key revoked through this store is dropped from
    /// the cache at once; one revoked by another process is seen within the TTL. Keys that
    /// are not found are not remembered (see `cache.rs`).
    pub async fn api_key_by_hash_cached(
        &self,
        key_hash: &str,
    ) -> Result<Option<Arc<ApiKeyRow>>, StoreError> {
        if let Some(row) = self.caches.api_keys.get(key_hash) {
            return Ok(Some(row));
        }
        let start = self.caches.api_keys.read_start();
        let Some(row) = self.api_key_by_hash(key_hash).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        self.caches
            .api_keys
            .insert(key_hash.to_owned(), row.clone(), start);
        Ok(Some(row))
    }

    /// Revokes a key now; false when there is no such key or it was already revoked.
    pub async fn revoke_api_key(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        let done =
            sqlx::query("update api_key set revoked_at = $1 where id = $2 and revoked_at is null")
                .bind(ts(now))
                .bind(id)
                .execute(&self.pool)
                .await?;
        // After the write; a lookup that read the row before it is kept out of the cache
        // (`TtlCache::forget`), so from here on this process refuses the key.
        self.caches.api_keys.forget(|row| row.id == id);
        Ok(done.rows_affected() > 0)
    }

    /// Sets `last_used_at` to `now` unless it is already at or after `not_before`: of
    /// several requests racing past the caller's own check, one writes. The cached row
    /// takes the new time first, so that requests reading the cache meanwhile do not write
    /// as well.
    pub async fn touch_api_key(
        &self,
        id: &str,
        now: OffsetDateTime,
        not_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let used = ts(now);
        self.caches.api_keys.update(|row| {
            (row.id == id).then(|| {
                Arc::new(ApiKeyRow {
                    last_used_at: Some(used.clone()),
                    ..ApiKeyRow::clone(row)
                })
            })
        });
        sqlx::query(
            "update api_key set last_used_at = $1 where id = $2 and (last_used_at is null or last_used_at < $3)",
        )
        .bind(used)
        .bind(id)
        .bind(ts(not_before))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

//! `Authorization: Bearer cst_live_...`: who is calling, and what they may do.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use time::OffsetDateTime;

use super::problem::{Problem, request_id_of};
use crate::domain::api_key::{ApiKeySecret, Scope};
use crate::store::parse_ts;
use crate::web::AppState;

/// `last_used_at` is written at most this often per key: a busy integration would
/// otherwise turn every read into a write.
const LAST_USED_GRANULARITY: time::Duration = time::Duration::minutes(1);

/// A caller holding a live API key. Extracting one answers 401 for a missing, malformed,
/// unknown or revoked key and 429 past the key's rate limit; [`ApiClient::require`] answers
/// 403 for a missing scope.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub key_id: String,
    pub key_name: String,
    /// The key's first characters (`cst_live_AbCdEfGh`), to name it in events.
    pub key_prefix: String,
    scopes: Vec<Scope>,
    request_id: String,
}

impl ApiClient {
    /// 403 unless the key carries `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), Problem> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Problem::insufficient_scope(
                &self.request_id,
                scope.as_str(),
            ))
        }
    }

    /// The key as events name it: its name and prefix, never the key.
    pub fn describe(&self) -> String {
        format!("API key {} ({})", self.key_name, self.key_prefix)
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl FromRequest for ApiClient {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// The key in `Authorization: Bearer <key>` (the scheme is case-insensitive, RFC 9110
/// §11.1).
fn presented_key(req: &HttpRequest) -> Result<ApiKeySecret, Problem> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        Problem::unauthorized(
            req,
            "No API key: send it as `Authorization: Bearer cst_live_...`.",
        )
    })?;
    let malformed = || {
        Problem::unauthorized(
            req,
            "The Authorization header is not `Bearer` followed by a consentry API key (cst_live_...).",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, key) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    ApiKeySecret::parse(key.trim()).ok_or_else(malformed)
}

async fn authenticate(req: &HttpRequest) -> Result<ApiClient, Problem> {
    let request_id = request_id_of(req);
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| {
            Problem::new(
                req,
                actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
        })?;
    let key = presented_key(req)?;
    // The lookup matches on the key's SHA-256, which tells an attacker timing it nothing
    // about any key; the hash is then compared again in constant time, so no comparison of
    // secret material depends on the database's (or the cache's) string equality. Found
    // keys are cached for `store::API_KEY_TTL` (a revocation by another process takes that
    // long to be seen; one through this process is at once); unknown ones are not cached.
    let row = state
        .store
        .api_key_by_hash_cached(&key.hash())
        .await
        .map_err(|e| Problem::from_store(&request_id, e))?
        .filter(|row| key.matches(&row.key_hash))
        .ok_or_else(|| Problem::unauthorized(req, "This API key is not known here."))?;
    if row.revoked_at.is_some() {
        return Err(Problem::unauthorized(req, "This API key was revoked."));
    }
    state
        .api_limit
        .acquire(&row.id)
        .map_err(|wait| Problem::too_many_requests(req, wait))?;
    let now = OffsetDateTime::now_utc();
    let stale_before = now - LAST_USED_GRANULARITY;
    let stale = row
        .last_used_at
        .as_deref()
        .and_then(parse_ts)
        .is_none_or(|at| at < stale_before);
    if stale {
        // A failure to record use is logged, never a reason to refuse the request.
        if let Err(e) = state.store.touch_api_key(&row.id, now, stale_before).await {
            tracing::warn!(%request_id, error = %e, "could not record an API key's use");
        }
    }
    Ok(ApiClient {
        scopes: row.scopes(),
        key_id: row.id.clone(),
        key_name: row.name.clone(),
        key_prefix: row.prefix.clone(),
        request_id,
    })
}

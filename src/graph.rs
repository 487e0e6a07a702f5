//! Microsoft Graph on behalf of a tenant (ENTRA.md §7): tokens from the engine, one
//! refresh on 401, `Retry-After` on 429/503, and `@odata.nextLink` followed to the end.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::domain::TenantId;
use crate::entra::{EntraClient, GraphError};
use crate::tokens::TokenEngine;

/// Attempts per request: the first, one after a 401, and throttling waits.
const MAX_ATTEMPTS: usize = 4;
/// Pages followed at most: Graph's largest collections here fit many times over.
const MAX_PAGES: usize = 100_000;

pub struct GraphClient {
    entra: Arc<EntraClient>,
    engine: Arc<TokenEngine>,
    /// The longest `Retry-After` waited for in place; a longer one is returned as an error
    /// for the caller to schedule.
    max_wait: Duration,
}

impl GraphClient {
    pub fn new(entra: Arc<EntraClient>, engine: Arc<TokenEngine>) -> GraphClient {
        GraphClient {
            entra,
            engine,
            max_wait: Duration::from_secs(60),
        }
    }

    /// `GET {graph}{path}` for `tenant`, as JSON.
    pub async fn get(&self, tenant: TenantId, path: &str) -> Result<Value, GraphError> {
        let url = format!("{}{path}", self.entra.graph_host());
        let body = self.send(tenant, &url, &[]).await?;
        serde_json::from_slice(&body).map_err(|e| GraphError::Malformed(e.to_string()))
    }

    /// Every item of a collection: follows `@odata.nextLink` verbatim until it is absent
    /// (a page may be empty). Links are followed only on the Graph host, so a token never
    /// goes anywhere else.
    pub async fn list(&self, tenant: TenantId, path: &str) -> Result<Vec<Value>, GraphError> {
        let mut url = format!("{}{path}", self.entra.graph_host());
        let mut items = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.page(tenant, &url).await?;
            if let Some(Value::Array(values)) = page.get("value") {
                items.extend(values.iter().cloned());
            }
            match page.get("@odata.nextLink").and_then(Value::as_str) {
                None => return Ok(items),
                Some(next) => url = next.to_owned(),
            }
        }
        Err(GraphError::Malformed(format!(
            "more than {MAX_PAGES} pages"
        )))
    }

    /// One page of a collection: `url` is a first request or an `@odata.nextLink`, and must
    /// be on the Graph host, so a token never goes anywhere else. The page is Graph's JSON,
    /// with its `value` array and, unless it is the last, its `@odata.nextLink`.
    pub async fn page(&self, tenant: TenantId, url: &str) -> Result<Value, GraphError> {
        if !url.starts_with(&format!("{}/", self.entra.graph_host())) {
            return Err(GraphError::Malformed("a link to another host".into()));
        }
        let body = self.send(tenant, url, &[]).await?;
        let page: Value =
            serde_json::from_slice(&body).map_err(|e| GraphError::Malformed(e.to_string()))?;
        if !page.get("value").is_some_and(Value::is_array) {
            return Err(GraphError::Malformed("a page without a value array".into()));
        }
        Ok(page)
    }

    /// The number of users, from `GET /v1.0/users/$count` (an advanced query).
    pub async fn user_count(&self, tenant: TenantId) -> Result<u64, GraphError> {
        let url = format!("{}/v1.0/users/$count", self.entra.graph_host());
        let body = self
            .send(tenant, &url, &[("ConsistencyLevel", "eventual")])
            .await?;
        String::from_utf8_lossy(&body)
            .trim()
            .parse()
            .map_err(|_| GraphError::Malformed("$count is not a number".into()))
    }

    async fn send(
        &self,
        tenant: TenantId,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>, GraphError> {
        let mut refreshed = false;
        let mut last = GraphError::Unreachable("no attempt made".into());
        for attempt in 1..=MAX_ATTEMPTS {
            let token = if refreshed {
                self.engine.fresh_token(tenant).await
            } else {
                self.engine.token(tenant).await
            };
            let token = token.map_err(|e| GraphError::Status {
                status: 401,
                code: e.code(),
                message: e.to_string(),
            })?;
            let mut request = self
                .entra
                .http()
                .get(url)
                .bearer_auth(EntraClient::bearer(&token.token));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| GraphError::Unreachable(crate::entra::transport(&e)))?;
            let status = response.status().as_u16();
            let wait = crate::entra::retry_after(response.headers());
            let body = response
                .bytes()
                .await
                .map_err(|e| GraphError::Unreachable(crate::entra::transport(&e)))?;
            if (200..300).contains(&status) {
                return Ok(body.to_vec());
            }
            let (code, message) = match serde_json::from_slice::<Value>(&body) {
                Ok(v) => (
                    v["error"]["code"].as_str().unwrap_or_default().to_owned(),
                    v["error"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ),
                Err(_) => (format!("HTTP {status}"), String::new()),
            };
            last = GraphError::Status {
                status,
                code,
                message,
            };
            match status {
                // The token may have been revoked or rotated: one fresh token, one retry.
                401 if !refreshed => {
                    self.engine.forget(tenant);
                    refreshed = true;
                }
                429 | 503 => {
                    let wait = wait.unwrap_or(Duration::from_secs(1));
                    // Too long to wait in place, or no attempt left: the caller is told how
                    // long Graph asked for (its own caller may pass it on as Retry-After).
                    if wait > self.max_wait || attempt == MAX_ATTEMPTS {
                        return Err(GraphError::Throttled {
                            status,
                            retry_after: wait,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(last),
            }
        }
        Err(last)
    }
}

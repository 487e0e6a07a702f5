//! The per-tenant token engine: MSAL's confidential-client cache rules (ENTRA.md §6), plus
//! what a multi-tenant service needs.
//!
//! - One cache entry per tenant, in memory only, bounded (least recently used go first).
//! - A token is served until 5 minutes before it expires. After `refresh_in` (or half its
//!   life) the first caller triggers a background refresh and is served the cached token;
//!   a failed refresh keeps serving it.
//! - Single-flight: however many callers want one tenant's token at once, at most one
//!   request reaches the token endpoint; the others wait for its result.
//! - `Retry-After` (429, 503) is honoured per tenant: no call before it passes.
//! - a failed background refresh is tried again 30 s later, not on every call (the
//!   cached token is served meanwhile);
//! - 5xx and timeouts are retried once after about a second; a refusal (4xx) is
//!   remembered for 60 s, as MSAL Python does, unless a fresh token is asked for.

mod entry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::domain::TenantId;
use crate::entra::{AppToken, EntraClient, Fault, TokenError};
use entry::{Entry, Lookup};

/// MSAL treats a token as expired this long before `expires_in` runs out.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// After a failed background refresh, the next one waits this long.
const REFRESH_RETRY_PAUSE: time::Duration = time::Duration::seconds(30);
/// The pause before the one retry of a 5xx or a timeout (MSAL.NET: 1 s).
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A token in the cache.
#[derive(Debug)]
pub struct CachedToken {
    pub token: AppToken,
    pub fetched_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// When a background refresh starts.
    pub refresh_at: OffsetDateTime,
}

impl CachedToken {
    /// Lifetimes were clamped where they were parsed; the additions saturate all the same,
    /// so that no number can make this panic.
    fn new(token: AppToken, now: OffsetDateTime) -> CachedToken {
        let life = Duration::from_secs(token.expires_in);
        let refresh_after = token
            .refresh_in
            .map(Duration::from_secs)
            .unwrap_or(life / 2);
        CachedToken {
            expires_at: later(now, life),
            refresh_at: later(now, refresh_after.min(life)),
            fetched_at: now,
            token,
        }
    }

    /// Servable: more than the margin before expiry.
    fn usable(&self, now: OffsetDateTime) -> bool {
        later(now, EXPIRY_MARGIN) < self.expires_at
    }
}

/// `now + d`, saturating at the end of time instead of panicking.
pub(crate) fn later(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
}

/// Token requests made and served, for operators and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub requests: u64,
    pub cache_hits: u64,
    /// Background refreshes started.
    pub background_refreshes: u64,
    /// Background refreshes that failed (each pauses the next for 30 s).
    pub failed_refreshes: u64,
}

pub struct TokenEngine {
    entra: Arc<EntraClient>,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<TenantId, Arc<Entry>>>,
    capacity: usize,
    stats: Mutex<EngineStats>,
    /// Real-time pause before retrying (tests shorten it).
    retry_pause: Duration,
}

impl TokenEngine {
    pub fn new(entra: Arc<EntraClient>, clock: Arc<dyn Clock>, capacity: usize) -> TokenEngine {
        TokenEngine {
            entra,
            clock,
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            stats: Mutex::new(EngineStats::default()),
            retry_pause: RETRY_PAUSE,
        }
    }

    pub fn stats(&self) -> EngineStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cached_tenants(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A token for `tenant`, from the cache when it may be.
    pub async fn token(self: &Arc<Self>, tenant: TenantId) -> Result<Arc<CachedToken>, TokenError> {
        let entry = self.entry(tenant);
        let now = self.clock.now();
        match entry.lookup(now) {
            Lookup::Fresh(token) => {
                self.count(|s| s.cache_hits += 1);
                return Ok(token);
            }
            Lookup::RefreshInBackground(token) => {
                self.count(|s| {
                    s.cache_hits += 1;
                    s.background_refreshes += 1;
                });
                let engine = self.clone();
                let entry = entry.clone();
                tokio::spawn(async move {
                    // Whatever happens to this task (even a panic), the entry must not stay
                    // "refreshing" for good.
                    let mut pending = RefreshGuard {
                        entry: &entry,
                        failed_at: None,
                    };
                    // A failed refresh keeps the cached token; its error is not the caller's,
                    // and the next attempt waits REFRESH_RETRY_PAUSE (`Entry::lookup`).
                    if engine.fetch(tenant, &entry, false).await.is_err() {
                        pending.failed_at = Some(engine.clock.now());
                        engine.count(|s| s.failed_refreshes += 1);
                    }
                });
                return Ok(token);
            }
            Lookup::Waiting(remaining) => return Err(TokenError::Waiting { remaining }),
            Lookup::Refused(e) => {
                self.count(|s| s.cache_hits += 1);
                return Err(e);
            }
            Lookup::Missing => {}
        }
        self.fetch(tenant, &entry, false).await
    }

    /// A new token from the token endpoint, whatever the cache holds (health checks use it
    /// to notice a revoked consent). Still single-flight and still under `Retry-After`.
    pub async fn fresh_token(
        self: &Arc<Self>,
        tenant: TenantId,
    ) -> Result<Arc<CachedToken>, TokenError> {
        let entry = self.entry(tenant);
        self.fetch(tenant, &entry, true).await
    }

    /// Forgets a tenant's token (after a 401 from Graph, or when its consent is gone).
    pub fn forget(&self, tenant: TenantId) {
        if let Some(entry) = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant)
        {
            entry.clear();
        }
    }

    /// One fetch per tenant at a time: the first caller requests, later ones wait on the
    /// same lock and then take what it stored.
    async fn fetch(
        &self,
        tenant: TenantId,
        entry: &Arc<Entry>,
        force: bool,
    ) -> Result<Arc<CachedToken>, TokenError> {
        let attempts_before = entry.attempts();
        let _flight = entry.flight.lock().await;
        let now = self.clock.now();
        // Someone else's request completed while we waited: share its outcome.
        if let Some(outcome) = entry.outcome_since(attempts_before, force, now) {
            self.count(|s| s.cache_hits += 1);
            return outcome;
        }
        if let Some(remaining) = entry.waiting(now) {
            return Err(TokenError::Waiting { remaining });
        }
        let mut result = self.request(tenant).await;
        if result.as_ref().is_err_and(TokenError::is_retryable) {
            tokio::time::sleep(self.retry_pause).await;
            result = self.request(tenant).await;
        }
        let now = self.clock.now();
        match result {
            Ok(token) => Ok(entry.store(CachedToken::new(token, now))),
            Err(e) => {
                match &e {
                    TokenError::Throttled { retry_after, .. } => {
                        entry.wait_until(later(now, *retry_after))
                    }
                    // The consent or the tenant is gone: stop acting with what we hold.
                    e if matches!(e.fault(), Fault::ConsentMissing | Fault::TenantGone) => {
                        entry.clear()
                    }
                    _ => {}
                }
                entry.record_failure(&e, now);
                Err(e)
            }
        }
    }

    async fn request(&self, tenant: TenantId) -> Result<AppToken, TokenError> {
        self.count(|s| s.requests += 1);
        self.entra.app_token(tenant).await
    }

    fn entry(&self, tenant: TenantId) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get(&tenant) {
            entry.touch(self.clock.now());
            return entry.clone();
        }
        if entries.len() >= self.capacity {
            evict(&mut entries, self.capacity);
        }
        let entry = Arc::new(Entry::new(self.clock.now()));
        entries.insert(tenant, entry.clone());
        entry
    }

    fn count(&self, f: impl FnOnce(&mut EngineStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Changes the pause before the one retry (tests shorten it).
    pub fn with_retry_pause(mut self, pause: Duration) -> TokenEngine {
        self.retry_pause = pause;
        self
    }
}

/// Marks a background refresh finished when dropped, failed or not.
struct RefreshGuard<'a> {
    entry: &'a Entry,
    failed_at: Option<OffsetDateTime>,
}

impl Drop for RefreshGuard<'_> {
    fn drop(&mut self) {
        self.entry.refresh_done(self.failed_at, REFRESH_RETRY_PAUSE);
    }
}

/// Drops the least recently used tenth (at least one entry) whose fetch is not in flight:
/// amortised O(1) per insertion, and memory stays bounded by `capacity`.
fn evict(entries: &mut HashMap<TenantId, Arc<Entry>>, capacity: usize) {
    let mut idle: Vec<(i64, TenantId)> = entries
        .iter()
        .filter(|(_, e)| Arc::strong_count(e) == 1)
        .map(|(t, e)| (e.last_used(), *t))
        .collect();
    let n = (capacity / 10).max(1).min(idle.len());
    if n == 0 {
        return;
    }
    idle.select_nth_unstable(n - 1);
    for (_, tenant) in idle.into_iter().take(n) {
        entries.remove(&tenant);
    }
}

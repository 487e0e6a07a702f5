//! One tenant's cache entry: the token, the `Retry-After` gate, and the single-flight lock.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use super::CachedToken;
use crate::entra::TokenError;

pub(super) struct Entry {
    state: Mutex<State>,
    /// Held by whoever is fetching this tenant's token.
    pub(super) flight: tokio::sync::Mutex<()>,
    last_used: AtomicI64,
}

#[derive(Default)]
struct State {
    token: Option<Arc<CachedToken>>,
    not_before: Option<OffsetDateTime>,
    refreshing: bool,
    /// After a failed background refresh, none before this (the cached token still serves).
    refresh_not_before: Option<OffsetDateTime>,
    /// Completed requests so far: a caller that waited for the lock while this moved
    /// takes the outcome instead of asking again.
    attempts: u64,
    last_error: Option<TokenError>,
    /// A refusal (4xx) is answered from here for a while, as MSAL Python caches a 400 for
    /// 60 s: asking again at once would get the same answer.
    refused_until: Option<OffsetDateTime>,
}

/// How long a refusal is remembered.
const REFUSAL_MEMORY: time::Duration = time::Duration::seconds(60);

pub(super) enum Lookup {
    Fresh(Arc<CachedToken>),
    /// Microsoft refused moments ago.
    Refused(TokenError),
    /// Serve it, and refresh in the background (this caller was the first to notice).
    RefreshInBackground(Arc<CachedToken>),
    /// `Retry-After` has not passed.
    Waiting(Duration),
    Missing,
}

impl Entry {
    pub(super) fn new(now: OffsetDateTime) -> Entry {
        Entry {
            state: Mutex::new(State::default()),
            flight: tokio::sync::Mutex::new(()),
            last_used: AtomicI64::new(now.unix_timestamp()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn touch(&self, now: OffsetDateTime) {
        self.last_used
            .store(now.unix_timestamp(), Ordering::Relaxed);
    }

    pub(super) fn last_used(&self) -> i64 {
        self.last_used.load(Ordering::Relaxed)
    }

    pub(super) fn lookup(&self, now: OffsetDateTime) -> Lookup {
        let mut st = self.state();
        if let Some(token) = st.token.clone().filter(|t| t.usable(now)) {
            if now >= token.refresh_at
                && !st.refreshing
                && st.not_before.is_none_or(|nb| now >= nb)
                && st.refresh_not_before.is_none_or(|nb| now >= nb)
            {
                st.refreshing = true;
                return Lookup::RefreshInBackground(token);
            }
            return Lookup::Fresh(token);
        }
        if let (Some(until), Some(e)) = (st.refused_until, &st.last_error)
            && now < until
        {
            return Lookup::Refused(e.clone());
        }
        match st.not_before {
            Some(nb) if now < nb => Lookup::Waiting(to_std(nb - now)),
            _ => Lookup::Missing,
        }
    }

    pub(super) fn attempts(&self) -> u64 {
        self.state().attempts
    }

    /// The outcome of a request completed while the caller waited for the lock (it saw
    /// `attempts_before`), so that concurrent callers share one request, success or failure.
    /// Without a new outcome, a cached token still does unless the caller insists on a
    /// request of its own.
    pub(super) fn outcome_since(
        &self,
        attempts_before: u64,
        force: bool,
        now: OffsetDateTime,
    ) -> Option<Result<Arc<CachedToken>, TokenError>> {
        let st = self.state();
        if st.attempts != attempts_before {
            return Some(match (&st.last_error, &st.token) {
                (Some(e), _) => Err(e.clone()),
                (None, Some(t)) => Ok(t.clone()),
                (None, None) => return None,
            });
        }
        let token = st.token.as_ref()?;
        (!force && token.usable(now) && now < token.refresh_at).then(|| Ok(token.clone()))
    }

    pub(super) fn waiting(&self, now: OffsetDateTime) -> Option<Duration> {
        self.state()
            .not_before
            .filter(|nb| now < *nb)
            .map(|nb| to_std(nb - now))
    }

    pub(super) fn store(&self, token: CachedToken) -> Arc<CachedToken> {
        let token = Arc::new(token);
        let mut st = self.state();
        st.token = Some(token.clone());
        st.not_before = None;
        st.attempts += 1;
        st.last_error = None;
        st.refused_until = None;
        st.refresh_not_before = None;
        token
    }

    pub(super) fn wait_until(&self, not_before: OffsetDateTime) {
        self.state().not_before = Some(not_before);
    }

    pub(super) fn record_failure(&self, error: &TokenError, now: OffsetDateTime) {
        let mut st = self.state();
        st.attempts += 1;
        st.last_error = Some(error.clone());
        st.refused_until = matches!(
            error,
            TokenError::Refused {
                status: 400..=499,
                ..
            }
        )
        .then_some(now + REFUSAL_MEMORY);
    }

    /// The background refresh finished; after a failure, wait `pause` before the next.
    pub(super) fn refresh_done(&self, failed_at: Option<OffsetDateTime>, pause: time::Duration) {
        let mut st = self.state();
        st.refreshing = false;
        st.refresh_not_before = failed_at.and_then(|t| t.checked_add(pause));
    }

    pub(super) fn clear(&self) {
        self.state().token = None;
    }
}

fn to_std(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or_default()
}

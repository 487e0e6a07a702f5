//! The delivery worker: a background task of `serve` that sends the outbox's due
//! deliveries, signed per Standard Webhooks, and records each attempt.
//!
//! One loop claims due deliveries (a lease in the database, so that neither another task of
//! this instance nor another instance on the same database sends them meanwhile), hands
//! each to a task of its own, at most [`IN_FLIGHT`] at once, and claims more as tasks
//! finish. It claims only as many as it can start at once, so a claimed delivery is being
//! sent, never queued behind others while its lease runs out. Each task signs the stored
//! payload, sends it, decides what follows ([`RetrySchedule::after_attempt`]) and records
//! the attempt, which the store accepts only while the lease is held.
//!
//! Delivery is at least once: a process killed mid-attempt leaves the lease to expire,
//! and whichever worker claims the delivery next sends it again, with the same
//! `webhook-id` (the event's id) for the receiver to de-duplicate on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use url::Url;

use super::client::{DeliveryClient, DeliveryError, DeliveryOutcome};
use super::schedule::RetrySchedule;
use super::signature::{self, WebhookSecret};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::Keyed;
use crate::store::{Attempt, AttemptOutcome, ClaimedDelivery, Store};

/// Deliveries sent at once. Each is one outbound connection and, when it ends, one write;
/// 16 keeps a slow receiver from holding up the others without queueing more writes than
/// SQLite's one writer clears in a few milliseconds.
pub const IN_FLIGHT: usize = 16;

/// How often an idle worker looks for due deliveries. Events are written by other tasks
/// (checks, callbacks) and, once several instances share a database, by other processes,
/// which no in-process signal reaches; a query a second (an indexed `min()`) is cheap and
/// sends a new event within about a second. The web layer's actions that make deliveries
/// due (resend, enable) wake the worker at once through [`WebhookWorker::wake`].
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// While fewer slots than this are free, the worker waits (up to `BATCH_WAIT`) for more
/// sends to finish before claiming, so that one claim covers several deliveries.
const CLAIM_AT_LEAST: usize = IN_FLIGHT / 2;
const BATCH_WAIT: Duration = Duration::from_millis(20);

/// Tries at recording an attempt, a second apart. Safe however long they take: the store
/// takes the record only from the lease's holder, and refuses it once another worker has
/// claimed the delivery.
const RECORD_TRIES: u32 = 3;
const RECORD_PAUSE: Duration = Duration::from_secs(1);

/// The pause after a database error before trying again.
const DATABASE_PAUSE: Duration = Duration::from_secs(5);

/// What the lease adds to the attempt's timeout: recording the attempt may wait up to 5 s
/// for SQLite's write lock (the store's busy timeout), and instances' clocks differ by a
/// little. A lease that ran out before the attempt was recorded would let another worker
/// send the delivery a second time.
const LEASE_MARGIN: Duration = Duration::from_secs(10);

/// Events are kept this long once nothing is pending for them.
const KEEP_EVENTS: time::Duration = time::Duration::days(30);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The lease a worker takes on the deliveries it claims, for attempts of `timeout`.
pub fn lease_for(timeout: Duration) -> Duration {
    timeout + LEASE_MARGIN
}

/// The delivery worker of one instance.
pub struct WebhookWorker {
    store: Store,
    client: DeliveryClient,
    keyed: Keyed,
    schedule: RetrySchedule,
    lease: Duration,
    clock: Arc<dyn Clock>,
    wake: Notify,
}

impl std::fmt::Debug for WebhookWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookWorker")
            .field("schedule", &self.schedule)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl WebhookWorker {
    /// A worker on `store` configured by `settings` (address guard, attempt timeout, retry
    /// schedule; secrets derived under the session key).
    pub fn new(store: Store, settings: &Settings) -> anyhow::Result<WebhookWorker> {
        let client =
            DeliveryClient::with_timeout(settings.webhook_allow_private, settings.webhook_timeout)?;
        Ok(WebhookWorker {
            store,
            client,
            keyed: Keyed::new(settings.session_key.bytes()),
            schedule: settings.webhook_retry_schedule.clone(),
            lease: lease_for(settings.webhook_timeout),
            clock: Arc::new(SystemClock),
            wake: Notify::new(),
        })
    }

    /// Looks for due deliveries now rather than at the next poll: for the web layer after
    /// it made deliveries due (a resend, an endpoint enabled). A wake while the worker is
    /// busy is kept for its next pause.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Claims and sends due deliveries until aborted. Never returns: a database error is
    /// logged and retried after a pause, and one delivery's failure (even a panic) is that
    /// delivery's alone.
    pub async fn run_forever(self: Arc<Self>) {
        let mut sending: JoinSet<()> = JoinSet::new();
        let mut next_purge = Instant::now();
        loop {
            while let Some(done) = sending.try_join_next() {
                reap(done);
            }
            if Instant::now() >= next_purge {
                self.purge().await;
                next_purge = Instant::now() + PURGE_EVERY;
            }
            let mut free = IN_FLIGHT.saturating_sub(sending.len());
            if free < CLAIM_AT_LEAST {
                // Claims are writes: one for several deliveries rather than one each. A
                // free slot waits at most BATCH_WAIT, so a few slow receivers do not hold
                // up the rest.
                let deadline = tokio::time::Instant::now() + BATCH_WAIT;
                while free < CLAIM_AT_LEAST {
                    match tokio::time::timeout_at(deadline, sending.join_next()).await {
                        Ok(Some(done)) => {
                            reap(done);
                            free = IN_FLIGHT.saturating_sub(sending.len());
                        }
                        // Nothing in flight, or the wait is over.
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            if free == 0 {
                if let Some(done) = sending.join_next().await {
                    reap(done);
                }
                continue;
            }
            let limit = i64::try_from(free).unwrap_or(1);
            match self
                .store
                .claim_deliveries(self.clock.now(), self.lease, limit)
                .await
            {
                Ok(claimed) if claimed.is_empty() => self.idle().await,
                Ok(claimed) => {
                    for delivery in claimed {
                        let worker = self.clone();
                        sending.spawn(async move { worker.attempt(delivery).await });
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming webhook deliveries failed; trying again shortly");
                    tokio::time::sleep(DATABASE_PAUSE).await;
                }
            }
        }
    }

    /// Sleeps until the next delivery is due, at most [`POLL_INTERVAL`], or until woken.
    async fn idle(&self) {
        let now = self.clock.now();
        let pause = match self.store.next_delivery_due().await {
            Ok(Some(due)) if due > now => Duration::try_from(due - now)
                .unwrap_or(POLL_INTERVAL)
                .min(POLL_INTERVAL),
            // Nothing pending, or due but leased by another worker: poll.
            Ok(_) => POLL_INTERVAL,
            Err(e) => {
                tracing::error!(error = %e, "reading when the next webhook delivery is due failed");
                DATABASE_PAUSE
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.wake.notified() => {}
        }
    }

    /// One attempt of a claimed delivery, recorded.
    async fn attempt(&self, delivery: ClaimedDelivery) {
        let at = self.clock.now();
        let started = Instant::now();
        let answer = self.send(&delivery, at).await;
        let elapsed = started.elapsed();
        let outcome =
            self.schedule
                .after_attempt(delivery.schedule_step, &answer, at + elapsed, jitter());
        let attempt = Attempt {
            at,
            status_code: answer.as_ref().ok().map(|a| a.status),
            duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            error: describe(&answer),
        };
        let number = delivery.attempts + 1;
        let mut tries = 1;
        loop {
            match self
                .store
                .record_attempt(&delivery, &attempt, &outcome)
                .await
            {
                Ok(true) => log_outcome(&delivery, &attempt, &outcome, number),
                Ok(false) => tracing::info!(
                    delivery = %delivery.id,
                    "webhook attempt not recorded: the delivery was resent or its lease taken over meanwhile"
                ),
                // A busy database: a record that never lands means the delivery is sent
                // again, so it is worth another try.
                Err(e) if tries < RECORD_TRIES => {
                    tracing::warn!(delivery = %delivery.id, error = %e, "recording a webhook attempt failed; trying again");
                    tries += 1;
                    tokio::time::sleep(RECORD_PAUSE).await;
                    continue;
                }
                Err(e) => tracing::error!(
                    delivery = %delivery.id,
                    error = %e,
                    "recording a webhook attempt failed; the delivery is sent again when its lease expires"
                ),
            }
            return;
        }
    }

    /// Signs the stored payload with the endpoint's secret (and, during a rotation's
    /// overlap, the previous one) and sends it.
    async fn send(
        &self,
        delivery: &ClaimedDelivery,
        at: time::OffsetDateTime,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        let url = Url::parse(&delivery.url).map_err(|_| DeliveryError::InvalidUrl)?;
        let body = delivery.payload.as_bytes();
        let current = WebhookSecret::derive(&self.keyed, &delivery.secret_salt);
        let previous = delivery
            .previous_salt_at(at)
            .map(|salt| WebhookSecret::derive(&self.keyed, salt));
        let mut secrets = vec![&current];
        secrets.extend(previous.as_ref());
        let mut headers = HeaderMap::new();
        for (name, value) in
            signature::headers(&delivery.event_id, at.unix_timestamp(), body, &secrets)
        {
            // The id is ours (`evt_` and hex), the rest digits and base64: always valid.
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        self.client.deliver(&url, headers, body.to_vec()).await
    }

    async fn purge(&self) {
        match self
            .store
            .purge_webhook_events(self.clock.now() - KEEP_EVENTS)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "purged webhook events older than 30 days"),
            Err(e) => tracing::error!(error = %e, "purging old webhook events failed"),
        }
    }
}

/// A finished delivery task; a panic is logged (its lease expires and the delivery is
/// tried again).
fn reap(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a webhook delivery panicked; it is tried again when its lease expires");
    }
}

/// Uniform in [0, 1), from the system's randomness (0.5, no jitter, if there is none).
fn jitter() -> f64 {
    use rand_core::RngCore;
    let mut bytes = [0u8; 4];
    match rand_core::OsRng.try_fill_bytes(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0),
        Err(_) => 0.5,
    }
}

/// Why an attempt failed, in words: the status or the transport failure, never the body,
/// the URL or the secret.
fn describe(answer: &Result<DeliveryOutcome, DeliveryError>) -> Option<String> {
    match answer {
        Ok(outcome) if outcome.is_success() => None,
        Ok(outcome) => {
            let status = outcome.status;
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            let note = match status {
                300..=399 => " (redirects are not followed)".to_owned(),
                410 => " (the endpoint is disabled until enabled again)".to_owned(),
                _ => match outcome.retry_after {
                    Some(wait) => format!(" (Retry-After: {}s)", wait.as_secs()),
                    None => String::new(),
                },
            };
            Some(format!("the endpoint answered {status}{reason}{note}"))
        }
        Err(e) => Some(e.to_string()),
    }
}

fn log_outcome(
    delivery: &ClaimedDelivery,
    attempt: &Attempt,
    outcome: &AttemptOutcome,
    number: i64,
) {
    let error = attempt.error.as_deref().unwrap_or("");
    match outcome {
        AttemptOutcome::Delivered => tracing::debug!(
            delivery = %delivery.id,
            event_type = %delivery.event_type,
            attempt = number,
            status = attempt.status_code,
            duration_ms = attempt.duration_ms,
            "webhook delivered"
        ),
        AttemptOutcome::RetryAt(when) => tracing::info!(
            delivery = %delivery.id,
            endpoint = %delivery.endpoint_id,
            attempt = number,
            next_attempt_at = %crate::store::ts(*when),
            error,
            "webhook attempt failed; retrying"
        ),
        AttemptOutcome::GaveUp => tracing::warn!(
            delivery = %delivery.id,
            endpoint = %delivery.endpoint_id,
            attempt = number,
            error,
            "webhook delivery failed: the retry schedule is exhausted"
        ),
        AttemptOutcome::EndpointGone => tracing::warn!(
            delivery = %delivery.id,
            endpoint = %delivery.endpoint_id,
            "the webhook endpoint answered 410 Gone: disabled; its deliveries wait"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_described_without_the_body_or_url() {
        let answered = |status, retry_after: Option<u64>| {
            describe(&Ok(DeliveryOutcome {
                status,
                retry_after: retry_after.map(Duration::from_secs),
                elapsed: Duration::from_millis(3),
            }))
        };

        assert_eq!(answered(204, None), None);
        assert_eq!(
            answered(503, Some(30)).as_deref(),
            Some("the endpoint answered 503 Service Unavailable (Retry-After: 30s)")
        );
        assert_eq!(
            answered(302, None).as_deref(),
            Some("the endpoint answered 302 Found (redirects are not followed)")
        );
        assert_eq!(
            answered(599, None).as_deref(),
            Some("the endpoint answered 599")
        );
        assert_eq!(
            describe(&Err(DeliveryError::TimedOut {
                elapsed: Duration::from_secs(15)
            }))
            .as_deref(),
            Some("no answer within 15s")
        );
    }

    #[test]
    fn the_lease_outlasts_the_attempt_and_jitter_is_a_fraction() {
        assert!(lease_for(Duration::from_secs(15)) > Duration::from_secs(15));
        for _ in 0..100 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }
}

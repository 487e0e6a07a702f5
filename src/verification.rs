//! Proving and re-proving consents: a client-credentials token FOR the tenant (always a
//! fresh one: that is how a revoked consent shows), then Graph `GET /v1.0/organization`
//! with it (ENTRA.md §2). Runs right after each callback, then every check interval, with
//! jitter and bounded concurrency.
//!
//! The callback's `tenant` is never trusted on its own: a forged callback for a tenant that
//! never consented gets AADSTS700016 until the deadline, and then `failed`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::domain::{TenantId, TenantStatus};
use crate::entra::{EntraClient, Fault, GraphError, Organization, TokenError};
use crate::store::{CheckOutcome, CheckResult, EventKind, Store, StoreError, TenantRow};
use crate::tokens::TokenEngine;

/// When to check, and how hard to retry.
#[derive(Debug, Clone)]
pub struct CheckPolicy {
    /// After a callback, how long "no service principal" counts as propagation.
    pub deadline: Duration,
    /// How often every tenant is re-checked (jittered by ±10%).
    pub interval: Duration,
    /// Checks running at once.
    pub concurrency: usize,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// When the app's own credential is rejected, retry this rarely: hammering Microsoft
    /// with a bad secret helps nobody.
    pub app_fault_retry: Duration,
}

impl CheckPolicy {
    pub fn new(deadline: Duration, interval: Duration, concurrency: usize) -> CheckPolicy {
        CheckPolicy {
            deadline,
            interval,
            concurrency: concurrency.max(1),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
            app_fault_retry: Duration::from_secs(60),
        }
    }

    /// 1 s, 2 s, 4 s, ... capped at `max_retry` and at the interval.
    fn backoff(&self, failures: i64) -> Duration {
        let factor = 1u32 << failures.clamp(0, 16);
        self.first_retry
            .saturating_mul(factor)
            .min(self.max_retry)
            .min(self.interval.max(self.first_retry))
    }
}

/// The app-wide alert: Microsoft rejects consentry's own credential or requests.
#[derive(Debug, Default)]
pub struct AppHealth {
    alert: Mutex<Option<AppAlert>>,
}

#[derive(Debug, Clone)]
pub struct AppAlert {
    pub code: String,
    pub message: String,
    pub at: OffsetDateTime,
}

impl AppHealth {
    pub fn credential_alert(&self) -> Option<AppAlert> {
        self.alert.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, alert: Option<AppAlert>) {
        *self.alert.lock().unwrap_or_else(|p| p.into_inner()) = alert;
    }
}

/// What one probe of Microsoft found.
#[derive(Debug)]
pub enum Probe {
    NoToken(TokenError),
    Token {
        tid: Option<String>,
        roles: Vec<String>,
        organization: Result<Organization, GraphError>,
    },
}

pub struct Verifier {
    store: Store,
    engine: Arc<TokenEngine>,
    entra: Arc<EntraClient>,
    clock: Arc<dyn Clock>,
    required: Vec<String>,
    policy: CheckPolicy,
    pub health: AppHealth,
    wake: Notify,
}

impl Verifier {
    pub fn new(
        store: Store,
        engine: Arc<TokenEngine>,
        entra: Arc<EntraClient>,
        clock: Arc<dyn Clock>,
        required: Vec<String>,
        policy: CheckPolicy,
    ) -> Verifier {
        Verifier {
            store,
            engine,
            entra,
            clock,
            required,
            policy,
            health: AppHealth::default(),
            wake: Notify::new(),
        }
    }

    /// Asks the background loop to look for due tenants now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Checks one tenant and stores the outcome; returns the new status.
    pub async fn verify(&self, tenant: &TenantRow) -> Result<TenantStatus, StoreError> {
        let (Some(id), Some(previous)) = (tenant.tenant_id(), tenant.status()) else {
            return Ok(TenantStatus::Failed);
        };
        let probe = self.probe(id).await;
        let now = self.clock.now();
        let outcome = self.decide(tenant, previous, &probe, now);
        match &probe {
            Probe::NoToken(e)
                if matches!(e.fault(), Fault::AppCredential | Fault::AppConfiguration) =>
            {
                self.health.set(Some(AppAlert {
                    code: e.code(),
                    message: format!("{e} {}", e.fault().advice()),
                    at: now,
                }));
            }
            Probe::Token { .. } => self.health.set(None),
            Probe::NoToken(_) => {}
        }
        self.store.save_check(id, previous, &outcome, now).await?;
        tracing::info!(tenant = %id, status = %outcome.status, "checked");
        Ok(outcome.status)
    }

    async fn probe(&self, id: TenantId) -> Probe {
        let token = match self.engine.fresh_token(id).await {
            Ok(token) => token,
            Err(e) => return Probe::NoToken(e),
        };
        let organization = match self.entra.organization(&token.token).await {
            // A token Graph no longer takes: forget it and try once with a new one.
            Err(GraphError::Status { status: 401, .. }) => {
                match self.engine.fresh_token(id).await {
                    Ok(again) => self.entra.organization(&again.token).await,
                    Err(e) => return Probe::NoToken(e),
                }
            }
            other => other,
        };
        Probe::Token {
            tid: token.token.tid.clone(),
            roles: token.token.roles.clone(),
            organization,
        }
    }

    /// What a probe means for the tenant: the status it moves to, what to record, and when
    /// to look again.
    fn decide(
        &self,
        tenant: &TenantRow,
        previous: TenantStatus,
        probe: &Probe,
        now: OffsetDateTime,
    ) -> CheckOutcome {
        let confirmed = tenant.verified_at.is_some();
        let failures = tenant.consecutive_failures;
        let consented_at = crate::store::parse_ts(&tenant.consented_at).unwrap_or(now);
        let within_deadline = now < consented_at + self.policy.deadline;
        let id = tenant.id.as_str();
        let fail =
            |status, next: Option<Duration>, event, code: String, message: String| CheckOutcome {
                status,
                next_at: next.map(|d| now + d),
                event,
                detail: format!("{code}: {message}"),
                result: CheckResult::Failed { code, message },
            };
        match probe {
            Probe::NoToken(e) => {
                let (code, fault) = (e.code(), e.fault());
                let message = format!("{e} {}", fault.advice());
                match fault {
                    Fault::ConsentMissing if !confirmed && within_deadline => fail(
                        TenantStatus::Pending,
                        Some(self.policy.backoff(failures)),
                        EventKind::VerificationRetrying,
                        code,
                        format!(
                            "{e} Microsoft does not see the consent yet; it can take a few minutes to propagate."
                        ),
                    ),
                    Fault::ConsentMissing if !confirmed => fail(
                        TenantStatus::Failed,
                        None,
                        EventKind::VerificationFailed,
                        code,
                        message,
                    ),
                    Fault::ConsentMissing => fail(
                        TenantStatus::Revoked,
                        Some(self.slow()),
                        EventKind::CheckFailed,
                        code,
                        message,
                    ),
                    Fault::TenantGone if !confirmed => fail(
                        TenantStatus::Failed,
                        None,
                        EventKind::VerificationFailed,
                        code,
                        message,
                    ),
                    Fault::TenantGone => fail(
                        TenantStatus::Gone,
                        Some(self.slow()),
                        EventKind::CheckFailed,
                        code,
                        message,
                    ),
                    Fault::TenantPolicy if !confirmed => fail(
                        TenantStatus::Failed,
                        None,
                        EventKind::VerificationFailed,
                        code,
                        message,
                    ),
                    // The app's own fault: no tenant is blamed, its status stays.
                    Fault::AppCredential | Fault::AppConfiguration => fail(
                        previous,
                        Some(
                            self.policy
                                .app_fault_retry
                                .max(self.policy.backoff(failures)),
                        ),
                        EventKind::AppCredentialRejected,
                        code,
                        message,
                    ),
                    Fault::Transient | Fault::TenantPolicy => {
                        let wait = match e {
                            TokenError::Throttled { retry_after, .. } => *retry_after,
                            TokenError::Waiting { remaining } => *remaining,
                            _ => self.policy.backoff(failures),
                        };
                        let status = if confirmed {
                            TenantStatus::Failing
                        } else {
                            TenantStatus::Pending
                        };
                        fail(
                            status,
                            Some(wait.max(Duration::from_millis(100))),
                            EventKind::VerificationRetrying,
                            code,
                            message,
                        )
                    }
                }
            }
            Probe::Token { tid, .. }
                if tid.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case(id)) =>
            {
                fail(
                    TenantStatus::Failed,
                    None,
                    EventKind::VerificationFailed,
                    "tenant_mismatch".into(),
                    "Microsoft issued a token for a different tenant than this one.".into(),
                )
            }
            Probe::Token {
                roles,
                organization,
                ..
            } => {
                let missing: Vec<String> = self
                    .required
                    .iter()
                    .filter(|r| !roles.iter().any(|g| g.eq_ignore_ascii_case(r)))
                    .cloned()
                    .collect();
                let (display_name, verified_domains, missing) = match organization {
                    Ok(org) if org.id.eq_ignore_ascii_case(id) => (
                        org.display_name.clone(),
                        org.verified_domains.clone(),
                        missing,
                    ),
                    Ok(org) => {
                        return fail(
                            TenantStatus::Failed,
                            None,
                            EventKind::VerificationFailed,
                            "tenant_mismatch".into(),
                            format!(
                                "Graph answered for organisation {}, not for this tenant.",
                                org.id
                            ),
                        );
                    }
                    // The token proves the service principal; it lacks the role to read the
                    // organisation, which the missing list says.
                    Err(GraphError::Status { status: 403, .. }) => {
                        let missing = if missing.is_empty() {
                            vec!["Organization.Read.All".to_owned()]
                        } else {
                            missing
                        };
                        (None, Vec::new(), missing)
                    }
                    Err(e) => {
                        let status = if confirmed {
                            TenantStatus::Failing
                        } else {
                            TenantStatus::Pending
                        };
                        return fail(
                            status,
                            Some(self.policy.backoff(failures)),
                            EventKind::VerificationRetrying,
                            "graph_unavailable".into(),
                            e.to_string(),
                        );
                    }
                };
                let named = display_name
                    .as_deref()
                    .map(|n| format!(" {n}"))
                    .unwrap_or_default();
                let (status, event, detail) = if missing.is_empty() {
                    (
                        TenantStatus::Active,
                        EventKind::VerificationSucceeded,
                        format!("Verified{named}: a token for the tenant works and Graph answers."),
                    )
                } else {
                    (
                        TenantStatus::MissingPermissions,
                        EventKind::MissingPermissions,
                        format!(
                            "Consent verified{named}, but these required permissions are not granted: {}.",
                            missing.join(", ")
                        ),
                    )
                };
                CheckOutcome {
                    status,
                    next_at: Some(now + jitter(self.policy.interval)),
                    event,
                    detail,
                    result: CheckResult::Verified {
                        display_name,
                        verified_domains,
                        granted_roles: roles.clone(),
                    },
                }
            }
        }
    }

    /// Revoked and gone tenants are asked rarely: 5000225 explicitly asks for few requests.
    fn slow(&self) -> Duration {
        jitter(self.policy.interval.saturating_mul(4))
    }

    /// Permission drift: tenants marked active whose granted roles lack a permission now
    /// required (the configuration changed) are checked at once, so their status says they
    /// need re-consent. Returns how many.
    pub async fn recheck_drifted(&self) -> Result<usize, StoreError> {
        let all = self
            .store
            .list_tenants(&crate::store::TenantFilter {
                limit: i64::MAX,
                ..Default::default()
            })
            .await?;
        let drifted: Vec<TenantId> = all
            .iter()
            .filter(|t| t.status() == Some(TenantStatus::Active))
            .filter(|t| {
                let granted = t.granted_roles();
                self.required
                    .iter()
                    .any(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
            })
            .filter_map(|t| t.tenant_id())
            .collect();
        if !drifted.is_empty() {
            tracing::info!(
                tenants = drifted.len(),
                "required permissions changed; re-checking tenants that lack them"
            );
            self.store.schedule_now(&drifted, self.clock.now()).await?;
        }
        Ok(drifted.len())
    }

    /// Checks every due tenant, `concurrency` at a time.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let due = self.store.tenants_due(self.clock.now(), 1024).await?;
        let n = due.len();
        let results: Vec<Result<TenantStatus, StoreError>> = futures_util::stream::iter(due)
            .map(|t| async move { self.verify(&t).await })
            .buffer_unordered(self.policy.concurrency)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(n)
    }

    /// The background loop: due tenants as soon as woken (or every second), and expired
    /// sign-ups purged every minute. Database trouble is logged and retried, never fatal.
    pub async fn run_forever(self: Arc<Self>) {
        if let Err(e) = self.recheck_drifted().await {
            tracing::warn!(error = %e, "looking for permission drift failed");
        }
        let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            match self.run_due().await {
                Ok(n) if n >= 1024 => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "checking due tenants failed; retrying shortly")
                }
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                match self.store.purge_stale(self.clock.now()).await {
                    Ok(r) if r.total() > 0 => tracing::info!(
                        consent_requests = r.consent_requests,
                        tenants = r.tenants,
                        events = r.events,
                        "purged stale rows"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging stale rows failed"),
                }
                last_purge = std::time::Instant::now();
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }
}

/// `d` ± 10%, so that tenants checked together drift apart instead of arriving in waves.
fn jitter(d: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut byte);
    let unit = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX); // 0..=1
    d.mul_f64(0.9 + 0.2 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = CheckPolicy::new(Duration::from_secs(600), Duration::from_secs(3600), 8);
        assert_eq!(p.backoff(0), Duration::from_secs(1));
        assert_eq!(p.backoff(3), Duration::from_secs(8));
        assert_eq!(p.backoff(40), Duration::from_secs(30));
        let short = CheckPolicy::new(Duration::from_secs(600), Duration::from_secs(3), 8);
        assert_eq!(
            short.backoff(10),
            Duration::from_secs(3),
            "never later than the interval"
        );
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(100));
            assert!(
                j >= Duration::from_secs(90) && j <= Duration::from_secs(110),
                "{j:?}"
            );
        }
    }
}

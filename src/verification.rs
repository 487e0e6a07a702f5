//! Proving a consent is real: a client-credentials token FOR the tenant, then Graph
//! `GET /v1.0/organization` with it (ENTRA.md §2). The callback's `tenant` parameter is
//! never trusted on its own: a forged callback for a tenant that never consented gets
//! AADSTS700016 here, for as long as the deadline allows, and then `failed`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::domain::{TenantId, TenantStatus};
use crate::entra::{EntraClient, Fault, GraphError, TokenError};
use crate::store::{Store, StoreError, TenantRow, Verification};

/// Retry timing. Consent takes seconds to minutes to propagate (ENTRA.md §2).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// After a callback, how long "no service principal" counts as propagation.
    pub deadline: Duration,
    pub first_retry: Duration,
    pub max_retry: Duration,
    /// When the app's own credential is rejected, retry this rarely: hammering Microsoft
    /// with a bad secret helps nobody.
    pub credential_retry: Duration,
}

impl RetryPolicy {
    pub fn new(deadline: Duration) -> RetryPolicy {
        RetryPolicy {
            deadline,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
            credential_retry: Duration::from_secs(60),
        }
    }

    /// 1 s, 2 s, 4 s, ... capped.
    fn backoff(&self, attempts: i64) -> time::Duration {
        let factor = 1u32 << attempts.clamp(0, 16);
        let d = self.first_retry.saturating_mul(factor).min(self.max_retry);
        time::Duration::try_from(d).unwrap_or(time::Duration::seconds(30))
    }
}

/// The app-wide alert: Microsoft rejected consentry's own credential.
#[derive(Debug, Default)]
pub struct AppHealth {
    credential_error: Mutex<Option<CredentialAlert>>,
}

#[derive(Debug, Clone)]
pub struct CredentialAlert {
    pub code: String,
    pub message: String,
    pub at: OffsetDateTime,
}

impl AppHealth {
    pub fn credential_alert(&self) -> Option<CredentialAlert> {
        self.credential_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, alert: Option<CredentialAlert>) {
        *self
            .credential_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = alert;
    }
}

pub struct Verifier {
    store: Store,
    entra: Arc<EntraClient>,
    required: Vec<String>,
    policy: RetryPolicy,
    pub health: AppHealth,
    wake: Notify,
}

impl Verifier {
    pub fn new(
        store: Store,
        entra: Arc<EntraClient>,
        required: Vec<String>,
        policy: RetryPolicy,
    ) -> Verifier {
        Verifier {
            store,
            entra,
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

    /// Verifies one tenant and stores the outcome.
    pub async fn verify(
        &self,
        tenant: &TenantRow,
        now: OffsetDateTime,
    ) -> Result<TenantStatus, StoreError> {
        let Some(id) = tenant.tenant_id() else {
            return Ok(TenantStatus::Failed);
        };
        let outcome = self.check(id, tenant, now).await;
        let status = self.store.save_verification(id, &outcome, now).await?;
        tracing::info!(tenant = %id, status = %status, "verification");
        Ok(status)
    }

    /// Verifies every due tenant, eight at a time.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let now = OffsetDateTime::now_utc();
        let due = self.store.tenants_due(now, 64).await?;
        let n = due.len();
        for chunk in due.chunks(8) {
            let results =
                futures_util::future::join_all(chunk.iter().map(|t| self.verify(t, now))).await;
            for r in results {
                r?;
            }
        }
        Ok(n)
    }

    /// The background loop: due tenants as soon as woken (or every second), and expired
    /// sign-ups purged every minute. Database trouble is logged and retried, never fatal.
    pub async fn run_forever(self: Arc<Self>) {
        let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
        loop {
            if let Err(e) = self.run_due().await {
                tracing::warn!(error = %e, "verifying due tenants failed; retrying shortly");
            }
            if last_purge.elapsed() > Duration::from_secs(60) {
                match self
                    .store
                    .purge_consent_requests(OffsetDateTime::now_utc())
                    .await
                {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "purged old consent requests"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging consent requests failed"),
                }
                last_purge = std::time::Instant::now();
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }

    async fn check(&self, id: TenantId, tenant: &TenantRow, now: OffsetDateTime) -> Verification {
        let retry_at = now + self.policy.backoff(tenant.verify_attempts);
        let token = match self.entra.app_token(id).await {
            Ok(token) => {
                self.health.set(None);
                token
            }
            Err(e) => return self.token_failure(&e, tenant, now, retry_at),
        };
        if token
            .tid
            .as_deref()
            .is_some_and(|tid| !tid.eq_ignore_ascii_case(&id.to_string()))
        {
            return Verification::Failed {
                code: "tenant_mismatch".into(),
                message:
                    "Microsoft issued a token for a different tenant than the one that consented."
                        .into(),
            };
        }
        let missing: Vec<String> = self
            .required
            .iter()
            .filter(|r| !token.roles.iter().any(|g| g.eq_ignore_ascii_case(r)))
            .cloned()
            .collect();
        match self.entra.organization(&token).await {
            Ok(org) if org.id.eq_ignore_ascii_case(&id.to_string()) => Verification::Verified {
                display_name: org.display_name,
                verified_domains: org.verified_domains,
                granted_roles: token.roles,
                missing,
            },
            Ok(org) => Verification::Failed {
                code: "tenant_mismatch".into(),
                message: format!(
                    "Graph answered for organisation {}, not for this tenant.",
                    org.id
                ),
            },
            // The token proves the service principal exists; it lacks the role to read
            // the organisation, which the missing list shows.
            Err(GraphError::Status { status: 403, .. }) => Verification::Verified {
                display_name: None,
                verified_domains: Vec::new(),
                granted_roles: token.roles,
                missing: if missing.is_empty() {
                    vec!["Organization.Read.All".into()]
                } else {
                    missing
                },
            },
            Err(e) => Verification::Retry {
                code: "graph_unavailable".into(),
                message: e.to_string(),
                next_at: retry_at,
                app_fault: false,
            },
        }
    }

    fn token_failure(
        &self,
        e: &TokenError,
        tenant: &TenantRow,
        now: OffsetDateTime,
        retry_at: OffsetDateTime,
    ) -> Verification {
        let fault = e.fault();
        let code = e.code();
        let message = format!("{e} {}", fault.advice());
        let consented_at = crate::store::parse_ts(&tenant.consented_at).unwrap_or(now);
        let deadline = consented_at
            + time::Duration::try_from(self.policy.deadline).unwrap_or(time::Duration::minutes(10));
        // Propagation explains a missing service principal only before the consent was ever
        // confirmed; afterwards it means the consent was revoked.
        let propagating = tenant.verified_at.is_none() && now < deadline;
        match fault {
            Fault::ConsentMissing if propagating => Verification::Retry {
                code,
                message: format!(
                    "{e} Microsoft does not see the consent yet; it can take a few minutes to propagate."
                ),
                next_at: retry_at,
                app_fault: false,
            },
            Fault::Transient => Verification::Retry {
                code,
                message,
                next_at: retry_at,
                app_fault: false,
            },
            Fault::AppCredential => {
                self.health.set(Some(CredentialAlert {
                    code: code.clone(),
                    message: message.clone(),
                    at: now,
                }));
                let later = now
                    + time::Duration::try_from(self.policy.credential_retry)
                        .unwrap_or(time::Duration::minutes(1));
                Verification::Retry {
                    code,
                    message,
                    next_at: later.max(retry_at),
                    app_fault: true,
                }
            }
            Fault::ConsentMissing
            | Fault::TenantGone
            | Fault::TenantPolicy
            | Fault::AppConfiguration => Verification::Failed { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::new(Duration::from_secs(600));
        assert_eq!(p.backoff(0), time::Duration::seconds(1));
        assert_eq!(p.backoff(3), time::Duration::seconds(8));
        assert_eq!(p.backoff(40), time::Duration::seconds(30));
    }
}

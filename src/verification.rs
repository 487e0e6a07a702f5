//! Proving and re-proving consents: a client-credentials token FOR the tenant (always a
//! fresh one: that is how a revoked consent shows), then Graph `GET /v1.0/organization`
//! with it (ENTRA.md §2). Runs right after each callback, then every check interval, with
//! jitter and bounded concurrency.
//!
//! The callback's `tenant` is never trusted on its own: a forged callback for a tenant that
//! never consented gets AADSTS700016 until the deadline, and then `failed`. Every fault of
//! a never-verified tenant has a deadline (see `CheckPolicy`), so nothing stays pending for
//! ever at our cost.
//!
//! Two lanes: the background loop works through due tenants in batches; first checks
//! (after a callback or a "verify now", or asked for with `Verifier::check_soon`) are
//! served by a worker of their own, so that they never wait behind a batch. A tenant is
//! checked by one lane at a time, and a check saves its outcome only if nothing wrote the
//! tenant meanwhile (its `revision`).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

use crate::clock::Clock;
use crate::domain::{TenantId, TenantStatus};
use crate::entra::{EntraClient, Fault, GraphError, Organization, TokenError};
use crate::store::{
    CheckOutcome, CheckResult, EventKind, RaisedAlert, Store, StoreError, TenantRow,
};
use crate::tokens::{TokenEngine, later};

/// Tenants due in one batch of the background loop.
const BATCH: i64 = 1024;
/// `check_soon` requests queued at most; beyond, the tenant is left to the due scans.
const SOON_QUEUE: usize = 1024;

/// How long a claimed check keeps other instances off its tenant
/// ([`Store::claim_check`]) unless `CONSENTRY_VERIFY_LEASE` says otherwise. A check is a
/// token request and one or two Graph requests, each with a 10 s timeout and one retry:
/// well under a minute. Twice that, so that a slow check is not taken over while it runs
/// (were it taken over, the revision would still let only one outcome be saved); an
/// instance killed mid-check delays its tenants by this much at most.
pub const DEFAULT_CHECK_LEASE: Duration = Duration::from_secs(120);

/// How often the background loop purges stale rows, and how long its lease on the purge
/// lasts: longer than the period, so that the instance holding it renews it before anyone
/// else may take it.
const PURGE_EVERY: Duration = Duration::from_secs(60);
const PURGE_LEASE: Duration = Duration::from_secs(90);

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
    /// A never-verified tenant that Microsoft cannot be asked about (unreachable, 5xx,
    /// throttling, Graph failing) stays pending this long past `deadline`, then `failed`:
    /// an outage of an hour does not fail real tenants, and a forged one costs at most
    /// an hour of backed-off calls more.
    pub outage_grace: Duration,
    /// A never-verified tenant whose checks fail on OUR credential or configuration (the
    /// app-wide alert is raised) stays pending this long past `deadline`: operators get a
    /// day to fix the credential before real tenants are failed for it, and a forged tenant
    /// still ends (checked once a minute meanwhile).
    pub credential_grace: Duration,
    /// First checks running at once in their own lane, beside `concurrency`.
    pub first_check_concurrency: usize,
    /// How long a claimed check keeps other instances off its tenant.
    pub lease: Duration,
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
            outage_grace: Duration::from_secs(3600),
            credential_grace: Duration::from_secs(86_400),
            first_check_concurrency: 4,
            lease: DEFAULT_CHECK_LEASE,
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

/// The alert's headline when Microsoft rejects consentry's credential.
const CREDENTIAL_FAILING: &str = "consentry's own credential is failing.";
/// The alert's headline when Microsoft rejects consentry's requests' configuration.
const MISCONFIGURED: &str = "Microsoft refuses consentry's requests as misconfigured.";

/// The app-wide alert: Microsoft rejects consentry's own credential or requests.
///
/// Held in memory for the dashboard, and mirrored in the store, whose every change
/// (raised, cleared) is an `app.credential_alert` event: `stored` is whether the store is
/// known to say raised (`None` until this process has told it once), so the store is
/// written only when the alert changes.
#[derive(Debug, Default)]
pub struct AppHealth {
    alert: Mutex<Option<AppAlert>>,
    stored: Mutex<Option<bool>>,
}

#[derive(Debug, Clone)]
pub struct AppAlert {
    /// What is wrong, in a few words (the credential, or the requests' configuration).
    pub headline: &'static str,
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

    /// Takes up the alert the store kept from before a restart (raised and not cleared),
    /// so the dashboard shows it until a check says otherwise.
    pub fn restore(&self, stored: Option<&crate::store::AppAlertRow>) {
        let raised = stored.filter(|a| a.cleared_at.is_none());
        if let Some(row) = raised {
            self.set(Some(AppAlert {
                headline: if row.headline == MISCONFIGURED {
                    MISCONFIGURED
                } else {
                    CREDENTIAL_FAILING
                },
                code: row.code.clone(),
                message: row.message.clone(),
                at: crate::store::parse_ts(&row.raised_at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            }));
        }
        self.stored(raised.is_some());
    }

    /// Whether the store must be told that the alert is `raised` (or cleared).
    fn store_differs(&self, raised: bool) -> bool {
        *self.stored.lock().unwrap_or_else(|p| p.into_inner()) != Some(raised)
    }

    fn stored(&self, raised: bool) {
        *self.stored.lock().unwrap_or_else(|p| p.into_inner()) = Some(raised);
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
        /// The tenant's users, when the token carries User.Read.All and Graph counted them
        /// in time; pages show the last count instead of calling Graph while rendering.
        users: Option<u64>,
    },
}

pub struct Verifier {
    store: Store,
    engine: Arc<TokenEngine>,
    entra: Arc<EntraClient>,
    /// For the user count, through the engine's cached token the probe just refreshed.
    graph: crate::graph::GraphClient,
    clock: Arc<dyn Clock>,
    required: Vec<String>,
    policy: CheckPolicy,
    pub health: AppHealth,
    wake: Notify,
    /// Tenants some lane is checking right now.
    in_flight: Mutex<HashSet<TenantId>>,
    /// `check_soon` requests, in order, without duplicates.
    soon: Mutex<SoonQueue>,
    soon_wake: Notify,
    /// This instance, as the holder of job leases.
    instance: String,
}

#[derive(Default)]
struct SoonQueue {
    order: VecDeque<TenantId>,
    queued: HashSet<TenantId>,
}

/// A tenant claimed by one lane; released when dropped (panics included).
struct InFlight<'a> {
    verifier: &'a Verifier,
    tenant: TenantId,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.verifier
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.tenant);
    }
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
            graph: crate::graph::GraphClient::new(entra.clone(), engine.clone()),
            engine,
            entra,
            clock,
            required,
            policy,
            health: AppHealth::default(),
            wake: Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
            soon: Mutex::new(SoonQueue::default()),
            soon_wake: Notify::new(),
            instance: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Asks the background lanes to look for due tenants now (first checks included).
    pub fn wake(&self) {
        self.wake.notify_one();
        self.soon_wake.notify_one();
    }

    /// Asks for `tenant` to be checked at once, in the first-check lane, never behind the
    /// due batch. Cheap and non-blocking: callable from request handlers. The tenant is
    /// checked if it is due (`next_verify_at` has passed), so the caller makes it due first
    /// (a callback recording consent, "verify now"); asking twice before the check starts
    /// queues it once; when the queue is full, the due scans find it instead.
    pub fn check_soon(&self, tenant: TenantId) {
        {
            let mut soon = self.soon.lock().unwrap_or_else(|p| p.into_inner());
            if soon.queued.contains(&tenant) {
                return;
            }
            if soon.order.len() >= SOON_QUEUE {
                drop(soon);
                self.wake();
                return;
            }
            soon.queued.insert(tenant);
            soon.order.push_back(tenant);
        }
        self.soon_wake.notify_one();
    }

    /// Claims `tenant` for one check, unless a lane is checking it already.
    fn claim(&self, tenant: TenantId) -> Option<InFlight<'_>> {
        // The lock is released before a guard exists: the guard's drop takes it again.
        let claimed = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant);
        claimed.then(|| InFlight {
            verifier: self,
            tenant,
        })
    }

    /// Checks a tenant claimed by a lane, as it stands now, if it is (still) due. Returns
    /// whether it was checked.
    async fn check_if_due(&self, tenant: TenantId) -> Result<bool, StoreError> {
        let Some(_claim) = self.claim(tenant) else {
            return Ok(false);
        };
        // Claimed in the database too, so that no other instance checks it meanwhile.
        let now = self.clock.now();
        let Some(row) = self
            .store
            .claim_check(tenant, now, now + self.policy.lease)
            .await?
        else {
            return Ok(false);
        };
        self.verify(&row).await?;
        Ok(true)
    }

    /// Checks one tenant and stores the outcome, unless the tenant was written since `tenant`
    /// was read (then the outcome is dropped and the tenant stays as that write left it);
    /// returns the status the check found.
    pub async fn verify(&self, tenant: &TenantRow) -> Result<TenantStatus, StoreError> {
        let (Some(id), Some(previous)) = (tenant.tenant_id(), tenant.status()) else {
            return Ok(TenantStatus::Failed);
        };
        let probe = self.probe(id).await;
        let now = self.clock.now();
        // A verified tenant whose consent is missing may have just been consented again
        // through an invitation: only then is the invitation table asked.
        let reconsented_at = match &probe {
            Probe::NoToken(e)
                if e.fault() == Fault::ConsentMissing && tenant.verified_at.is_some() =>
            {
                self.store.awaiting_invitation(id).await?
            }
            _ => None,
        };
        let outcome = self.decide(tenant, previous, &probe, now, reconsented_at);
        let alert = match &probe {
            // Only evidence that OUR credential or requests are wrong raises the alert
            // (an unknown code does not, nor does a tenant's own refusal).
            Probe::NoToken(e)
                if matches!(e.fault(), Fault::AppCredential | Fault::AppConfiguration) =>
            {
                Some(Some(AppAlert {
                    headline: if e.fault() == Fault::AppCredential {
                        CREDENTIAL_FAILING
                    } else {
                        MISCONFIGURED
                    },
                    code: e.code(),
                    message: format!("{e} {}", e.fault().advice()),
                    at: now,
                }))
            }
            Probe::Token { .. } => Some(None),
            Probe::NoToken(_) => None,
        };
        if let Some(alert) = alert {
            self.report_alert(alert, now).await;
        }
        let saved = self
            .store
            .save_check(id, previous, tenant.revision, &outcome, now)
            .await?;
        if saved {
            tracing::info!(tenant = %id, status = %outcome.status, "checked");
        } else {
            tracing::info!(
                tenant = %id,
                status = %outcome.status,
                "checked, but the tenant was written meanwhile (a callback or verify now); outcome dropped"
            );
        }
        Ok(outcome.status)
    }

    /// Shows the alert on the dashboard and, when it changed, records the change (and its
    /// event) in the store. A store that cannot be written is told again at the next check.
    async fn report_alert(&self, alert: Option<AppAlert>, now: OffsetDateTime) {
        let raised = alert.is_some();
        self.health.set(alert.clone());
        if !self.health.store_differs(raised) {
            return;
        }
        let words = alert.as_ref().map(|a| RaisedAlert {
            code: &a.code,
            headline: a.headline,
            message: &a.message,
        });
        match self.store.set_app_alert(words, now).await {
            Ok(changed) => {
                if changed {
                    tracing::warn!(raised, "the app credential alert changed");
                }
                self.health.stored(raised);
            }
            Err(e) => tracing::warn!(error = %e, "could not record the app credential alert"),
        }
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
        // Counting is informational: it never fails a check, and waits at most 5 s.
        let can_count = organization.is_ok()
            && token
                .token
                .roles
                .iter()
                .any(|r| r.eq_ignore_ascii_case("User.Read.All"));
        let users = if can_count {
            tokio::time::timeout(Duration::from_secs(5), self.graph.user_count(id))
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        Probe::Token {
            tid: token.token.tid.clone(),
            roles: token.token.roles.clone(),
            organization,
            users,
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
        reconsented_at: Option<OffsetDateTime>,
    ) -> CheckOutcome {
        let confirmed = tenant.verified_at.is_some();
        let failures = tenant.consecutive_failures;
        let consented_at = crate::store::parse_ts(&tenant.consented_at).unwrap_or(now);
        let id = tenant.id.as_str();
        let fail =
            |status, next: Option<Duration>, event, code: String, message: String| CheckOutcome {
                status,
                next_at: next.map(|d| later(now, d)),
                event,
                detail: format!("{code}: {message}"),
                result: CheckResult::Failed { code, message },
            };
        // A never-verified tenant stays pending until its deadline, which depends on whose
        // fault the failure is; after it, `failed` with the code.
        let pending_until =
            |grace: Duration| later(consented_at, self.policy.deadline.saturating_add(grace));
        let not_yet = |grace: Duration| !confirmed && now < pending_until(grace);
        match probe {
            Probe::NoToken(e) => {
                let (code, fault) = (e.code(), e.fault());
                let message = format!("{e} {}", fault.advice());
                let backoff = self.policy.backoff(failures);
                // Throttling says when to ask again; nothing is sent before.
                let retry = match e {
                    TokenError::Throttled { retry_after, .. } => *retry_after,
                    TokenError::Waiting { remaining } => *remaining,
                    _ => backoff,
                }
                .max(Duration::from_millis(100));
                let app_retry = self.policy.app_fault_retry.max(backoff);
                match fault {
                    Fault::ConsentMissing if not_yet(Duration::ZERO) => fail(
                        TenantStatus::Pending,
                        Some(backoff),
                        EventKind::VerificationRetrying,
                        code,
                        format!(
                            "{e} Microsoft does not see the consent yet; it can take a few minutes to propagate."
                        ),
                    ),
                    Fault::Unclassified if not_yet(Duration::ZERO) => fail(
                        TenantStatus::Pending,
                        Some(backoff),
                        EventKind::VerificationRetrying,
                        code,
                        message,
                    ),
                    Fault::Transient if not_yet(self.policy.outage_grace) => fail(
                        TenantStatus::Pending,
                        Some(retry),
                        EventKind::VerificationRetrying,
                        code,
                        message,
                    ),
                    // Our credential or configuration, not the tenant: pending (with the
                    // app-wide alert) for a day past the deadline at most.
                    Fault::AppCredential | Fault::AppConfiguration
                        if not_yet(self.policy.credential_grace) =>
                    {
                        fail(
                            TenantStatus::Pending,
                            Some(app_retry),
                            EventKind::AppCredentialRejected,
                            code,
                            message,
                        )
                    }
                    // Consented again through an invitation: propagation, as for a first
                    // consent, until the deadline; the status stays what it was meanwhile.
                    Fault::ConsentMissing
                        if reconsented_at
                            .is_some_and(|at| now < later(at, self.policy.deadline)) =>
                    {
                        fail(
                            previous,
                            Some(backoff),
                            EventKind::VerificationRetrying,
                            code,
                            format!(
                                "{e} Microsoft does not see the renewed consent yet; it can take a few minutes to propagate."
                            ),
                        )
                    }
                    // Past its deadline, or a fault that no wait will change.
                    _ if !confirmed => fail(
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
                    Fault::TenantGone => fail(
                        TenantStatus::Gone,
                        Some(self.slow()),
                        EventKind::CheckFailed,
                        code,
                        message,
                    ),
                    // The app's own fault: no tenant is blamed, its status stays.
                    Fault::AppCredential | Fault::AppConfiguration => fail(
                        previous,
                        Some(app_retry),
                        EventKind::AppCredentialRejected,
                        code,
                        message,
                    ),
                    Fault::Transient | Fault::TenantPolicy | Fault::Unclassified => fail(
                        TenantStatus::Failing,
                        Some(retry),
                        EventKind::VerificationRetrying,
                        code,
                        message,
                    ),
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
                users,
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
                    // A token was issued, so Microsoft knows the consent; Graph is unwell.
                    // Retried like an outage (after Graph's Retry-After, when it gave one).
                    Err(e) => {
                        let wait = match e {
                            GraphError::Throttled { retry_after, .. } => *retry_after,
                            _ => self.policy.backoff(failures),
                        };
                        let (status, next, event) = if confirmed {
                            (
                                TenantStatus::Failing,
                                Some(wait),
                                EventKind::VerificationRetrying,
                            )
                        } else if not_yet(self.policy.outage_grace) {
                            (
                                TenantStatus::Pending,
                                Some(wait),
                                EventKind::VerificationRetrying,
                            )
                        } else {
                            (TenantStatus::Failed, None, EventKind::VerificationFailed)
                        };
                        return fail(
                            status,
                            next,
                            event,
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
                    next_at: Some(later(now, jitter(self.policy.interval))),
                    event,
                    detail,
                    result: CheckResult::Verified {
                        display_name,
                        verified_domains,
                        granted_roles: roles.clone(),
                        missing_permissions: missing,
                        user_count: *users,
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
        // Active tenants only, a page at a time (keyset), so that memory stays flat at
        // 100,000 tenants. Idempotent: instances starting together schedule the same
        // tenants, and a tenant checked meanwhile is no longer active-but-drifted.
        let filter = crate::store::TenantPageFilter {
            status: Some(TenantStatus::Active),
            ..Default::default()
        };
        let mut after = None;
        let mut drifted = 0;
        loop {
            let page = self
                .store
                .tenants_page(&filter, after.as_ref(), BATCH)
                .await?;
            let ids: Vec<TenantId> = page
                .iter()
                .filter(|t| !t.missing_permissions(&self.required).is_empty())
                .filter_map(|t| t.tenant_id())
                .collect();
            if !ids.is_empty() {
                self.store.schedule_now(&ids, self.clock.now()).await?;
                drifted += ids.len();
            }
            match page.last() {
                Some(last) if page.len() as i64 == BATCH => after = Some(last.cursor()),
                _ => break,
            }
        }
        if drifted > 0 {
            tracing::info!(
                tenants = drifted,
                "required permissions changed; re-checking tenants that lack them"
            );
        }
        Ok(drifted)
    }

    /// Checks every due tenant (up to a batch), `concurrency` at a time; tenants the
    /// first-check lane is checking, or checked since the batch was read, are skipped.
    /// Returns how many were due.
    pub async fn run_due(&self) -> Result<usize, StoreError> {
        let due = self.store.tenants_due(self.clock.now(), BATCH).await?;
        let n = due.len();
        let results: Vec<Result<bool, StoreError>> = futures_util::stream::iter(due)
            .filter_map(|t| async move { t.tenant_id() })
            .map(|id| self.check_if_due(id))
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
        let mut last_purge: Option<std::time::Instant> = None;
        loop {
            match self.run_due().await {
                Ok(n) if n >= BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "checking due tenants failed; retrying shortly")
                }
            }
            if last_purge.is_none_or(|t| t.elapsed() > PURGE_EVERY) {
                match self.purge_if_leased().await {
                    Ok(r) if r.total() > 0 => tracing::info!(
                        consent_requests = r.consent_requests,
                        tenants = r.tenants,
                        events = r.events,
                        "purged stale rows"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging stale rows failed"),
                }
                last_purge = Some(std::time::Instant::now());
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }

    /// Purges stale rows if this instance holds (or takes) the purge's lease: of several
    /// instances on one database, one purges a minute, and another takes over within
    /// [`PURGE_LEASE`] of its death. Answers an empty report when another holds it.
    async fn purge_if_leased(&self) -> Result<crate::store::PurgeReport, StoreError> {
        let now = self.clock.now();
        if !self
            .store
            .take_lease("purge", &self.instance, now, now + PURGE_LEASE)
            .await?
        {
            return Ok(Default::default());
        }
        self.store.purge_stale(now).await
    }

    /// The first-check lane: tenants asked for with `check_soon`, and tenants due for their
    /// first check since a callback or "verify now", checked at once with a concurrency of
    /// their own, whatever batch the background loop is working through.
    pub async fn run_first_checks(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.policy.first_check_concurrency.max(1)));
        loop {
            let mut wanted: Vec<TenantId> = {
                let mut soon = self.soon.lock().unwrap_or_else(|p| p.into_inner());
                soon.queued.clear();
                soon.order.drain(..).collect()
            };
            let limit = (self.policy.first_check_concurrency * 16) as i64;
            match self.store.first_checks_due(self.clock.now(), limit).await {
                Ok(rows) => wanted.extend(rows.iter().filter_map(TenantRow::tenant_id)),
                Err(e) => tracing::warn!(error = %e, "looking for first checks failed"),
            }
            let mut seen = HashSet::new();
            wanted.retain(|t| seen.insert(*t));
            for tenant in wanted {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let verifier = self.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = verifier.check_if_due(tenant).await {
                        tracing::warn!(tenant = %tenant, error = %e, "a first check failed");
                    }
                });
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.soon_wake.notified()).await;
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

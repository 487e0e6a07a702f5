//! Injected faults: latency, throttling (429) and server errors (5xx) on the token and Graph
//! endpoints, set through the control API so that clients' retry and back-off logic can be
//! tested against the emulator (ENTRA.md §6, §7).
//!
//! One set of faults applies to every tenant; a tenant may have its own set, which replaces
//! the global one for that tenant. Counters (`throttle_next`, `fail_next`,
//! `unauthorized_next`) make tests deterministic; rates draw a random number per request.
//! Besides faults, a set can make successful token answers claim an odd `expires_in`, and
//! make throttled token answers plain text, as Microsoft has been seen to do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::stats::FaultKind;

/// A minute: longer than any client timeout worth testing.
pub const MAX_LATENCY_MS: u64 = 60_000;
/// MSAL caps the `Retry-After` it honours at an hour (ENTRA.md §6).
pub const MAX_RETRY_AFTER_SECS: u32 = 3600;
/// Enough for any test; bounded so a typo cannot wedge an emulator for good.
pub const MAX_NEXT: u32 = 1_000_000;
/// The statuses Microsoft's front doors answer when a service is unwell.
const ERROR_STATUSES: &[u16] = &[500, 502, 503, 504];

/// The endpoint families faults can be aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultTarget {
    /// `POST /{tenant}/oauth2/v2.0/token` and `POST /{tenant}/oauth2/token`.
    Token,
    /// `GET /v1.0/organization`, `/v1.0/users` and `/v1.0/users/$count`.
    Graph,
}

/// The body of a throttled token answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleBody {
    /// The identity platform's error JSON (`temporarily_unavailable`, AADSTS90033).
    #[default]
    Json,
    /// `text/plain` "Too Many Requests", as a real 429 has been seen to answer
    /// (AzureAD/microsoft-authentication-library-for-dotnet#2855).
    Text,
}

/// `PUT /_emulator/faults` and `PUT /_emulator/tenants/{id}/faults`, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    pub latency_ms: Option<u64>,
    pub error_rate: Option<f64>,
    pub error_status: Option<u16>,
    pub throttle_rate: Option<f64>,
    pub retry_after_seconds: Option<u32>,
    pub fail_next: Option<u32>,
    pub throttle_next: Option<u32>,
    pub throttle_body: Option<ThrottleBody>,
    pub unauthorized_next: Option<u32>,
    /// Any `u64`: clients must clamp what the wire claims (ENTRA.md §3).
    pub expires_in: Option<u64>,
    pub endpoints: Option<Vec<FaultTarget>>,
}

/// Why a fault request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("latency_ms must be between 0 and {MAX_LATENCY_MS}")]
    Latency,
    #[error("{0} must be a number between 0.0 and 1.0")]
    Rate(&'static str),
    #[error("error_status must be one of 500, 502, 503, 504")]
    Status,
    #[error("retry_after_seconds must be between 0 and {MAX_RETRY_AFTER_SECS}")]
    RetryAfter,
    #[error("{0} must be at most {MAX_NEXT}")]
    Count(&'static str),
    #[error("endpoints must name at least one of \"token\" and \"graph\"")]
    NoEndpoints,
    /// A field that acts on one family only, while `endpoints` leaves that family out.
    #[error("{field} acts on {family} requests only: endpoints must include \"{family}\"")]
    NotTargeted {
        field: &'static str,
        family: &'static str,
    },
}

/// A validated set of faults; the `*_next` counters count down as they fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    latency: Duration,
    error_rate: f64,
    error_status: u16,
    throttle_rate: f64,
    retry_after_secs: u32,
    fail_next: u32,
    throttle_next: u32,
    throttle_body: ThrottleBody,
    unauthorized_next: u32,
    expires_in: Option<u64>,
    token: bool,
    graph: bool,
}

impl TryFrom<FaultRequest> for Faults {
    type Error = FaultError;

    fn try_from(r: FaultRequest) -> Result<Faults, FaultError> {
        let latency_ms = r.latency_ms.unwrap_or(0);
        if latency_ms > MAX_LATENCY_MS {
            return Err(FaultError::Latency);
        }
        let rate = |value: Option<f64>, name| match value {
            None => Ok(0.0),
            Some(v) if (0.0..=1.0).contains(&v) => Ok(v),
            Some(_) => Err(FaultError::Rate(name)),
        };
        let error_rate = rate(r.error_rate, "error_rate")?;
        let throttle_rate = rate(r.throttle_rate, "throttle_rate")?;
        let error_status = r.error_status.unwrap_or(503);
        if !ERROR_STATUSES.contains(&error_status) {
            return Err(FaultError::Status);
        }
        let retry_after_secs = r.retry_after_seconds.unwrap_or(1);
        if retry_after_secs > MAX_RETRY_AFTER_SECS {
            return Err(FaultError::RetryAfter);
        }
        let count = |value: Option<u32>, name| match value.unwrap_or(0) {
            n if n > MAX_NEXT => Err(FaultError::Count(name)),
            n => Ok(n),
        };
        let fail_next = count(r.fail_next, "fail_next")?;
        let throttle_next = count(r.throttle_next, "throttle_next")?;
        let unauthorized_next = count(r.unauthorized_next, "unauthorized_next")?;
        let throttle_body = r.throttle_body.unwrap_or_default();
        let (token, graph) = match r.endpoints {
            None => (true, true),
            Some(list) if list.is_empty() => return Err(FaultError::NoEndpoints),
            Some(list) => (
                list.contains(&FaultTarget::Token),
                list.contains(&FaultTarget::Graph),
            ),
        };
        // A field that could never act is a mistake in the test that set it.
        let not_targeted = |field, family| FaultError::NotTargeted { field, family };
        if !token && r.expires_in.is_some() {
            return Err(not_targeted("expires_in", "token"));
        }
        if !token && throttle_body == ThrottleBody::Text {
            return Err(not_targeted("throttle_body", "token"));
        }
        if !graph && unauthorized_next > 0 {
            return Err(not_targeted("unauthorized_next", "graph"));
        }
        Ok(Faults {
            latency: Duration::from_millis(latency_ms),
            error_rate,
            error_status,
            throttle_rate,
            retry_after_secs,
            fail_next,
            throttle_next,
            throttle_body,
            unauthorized_next,
            expires_in: r.expires_in,
            token,
            graph,
        })
    }
}

/// A fault to answer with instead of doing the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// 429 with `Retry-After`; `body` says how a token endpoint words it.
    Throttled {
        retry_after_secs: u32,
        body: ThrottleBody,
    },
    /// A 5xx; `retry_after_secs` only with 503, the status that promises recovery.
    Failed {
        status: u16,
        retry_after_secs: Option<u32>,
    },
    /// Graph's 401 `InvalidAuthenticationToken`, as for a token it no longer accepts.
    Unauthorized,
}

impl Injected {
    pub fn kind(self) -> FaultKind {
        match self {
            Injected::Throttled { .. } => FaultKind::Throttled,
            Injected::Failed { .. } => FaultKind::Error,
            Injected::Unauthorized => FaultKind::Unauthorized,
        }
    }
}

/// How a request is served under the faults that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Slept before answering, whatever the answer.
    pub delay: Duration,
    pub fault: Option<Injected>,
    /// What a successful token answer claims as `expires_in` and `ext_expires_in`.
    pub expires_in: Option<u64>,
}

impl Faults {
    fn applies_to(&self, target: FaultTarget) -> bool {
        match target {
            FaultTarget::Token => self.token,
            FaultTarget::Graph => self.graph,
        }
    }

    /// Decides one request. Deterministic counters go first (throttling, then failures,
    /// then, on Graph, refused tokens), then the rates, each a draw from `random` (uniform
    /// in `[0, 1)`).
    fn decide(&mut self, target: FaultTarget, random: &mut dyn FnMut() -> f64) -> Option<Decision> {
        if !self.applies_to(target) {
            return None;
        }
        let throttled = Injected::Throttled {
            retry_after_secs: self.retry_after_secs,
            body: self.throttle_body,
        };
        let failed = Injected::Failed {
            status: self.error_status,
            retry_after_secs: (self.error_status == 503).then_some(self.retry_after_secs),
        };
        let fault = if self.throttle_next > 0 {
            self.throttle_next -= 1;
            Some(throttled)
        } else if self.fail_next > 0 {
            self.fail_next -= 1;
            Some(failed)
        } else if target == FaultTarget::Graph && self.unauthorized_next > 0 {
            self.unauthorized_next -= 1;
            Some(Injected::Unauthorized)
        } else if self.throttle_rate > 0.0 && random() < self.throttle_rate {
            Some(throttled)
        } else if self.error_rate > 0.0 && random() < self.error_rate {
            Some(failed)
        } else {
            None
        };
        Some(Decision {
            delay: self.latency,
            fault,
            expires_in: self.expires_in.filter(|_| target == FaultTarget::Token),
        })
    }

    /// What the control API shows: the request's fields, counters as they stand now.
    pub fn view(&self) -> serde_json::Value {
        let mut endpoints = Vec::new();
        if self.token {
            endpoints.push(FaultTarget::Token);
        }
        if self.graph {
            endpoints.push(FaultTarget::Graph);
        }
        serde_json::json!({
            "latency_ms": self.latency.as_millis() as u64,
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "throttle_rate": self.throttle_rate,
            "retry_after_seconds": self.retry_after_secs,
            "fail_next": self.fail_next,
            "throttle_next": self.throttle_next,
            "throttle_body": self.throttle_body,
            "unauthorized_next": self.unauthorized_next,
            "expires_in": self.expires_in,
            "endpoints": endpoints,
        })
    }
}

#[derive(Debug, Default)]
struct FaultTable {
    global: Option<Faults>,
    tenants: HashMap<Uuid, Faults>,
}

impl FaultTable {
    fn is_empty(&self) -> bool {
        self.global.is_none() && self.tenants.is_empty()
    }
}

/// The faults in force, shared by every worker.
#[derive(Debug, Default)]
pub struct FaultInjector {
    /// Whether any faults are set. Token issuance is the emulator's hot path: with no
    /// faults, a request costs one atomic load here and takes no lock.
    armed: AtomicBool,
    table: Mutex<FaultTable>,
}

impl FaultInjector {
    /// The decision for one request to `target`; `None` when no fault set applies. `tenant`
    /// is called only when faults are set, so resolving it costs nothing otherwise.
    pub fn decide(
        &self,
        target: FaultTarget,
        tenant: impl FnOnce() -> Option<Uuid>,
    ) -> Option<Decision> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let tenant = tenant();
        let mut table = self.lock();
        let table = &mut *table;
        let faults = match tenant.and_then(|id| table.tenants.get_mut(&id)) {
            Some(own) => own,
            None => table.global.as_mut()?,
        };
        let mut random = || {
            // 53 random bits make every double in [0, 1) equally likely.
            (rand_core::OsRng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        };
        faults.decide(target, &mut random)
    }

    pub fn global(&self) -> Option<serde_json::Value> {
        self.lock().global.as_ref().map(Faults::view)
    }

    pub fn tenant(&self, id: Uuid) -> Option<serde_json::Value> {
        self.lock().tenants.get(&id).map(Faults::view)
    }

    /// Every tenant's own faults, keyed by tenant id.
    pub fn tenants(&self) -> serde_json::Map<String, serde_json::Value> {
        self.lock()
            .tenants
            .iter()
            .map(|(id, f)| (id.to_string(), f.view()))
            .collect()
    }

    /// Replaces (or with `None` clears) the faults every tenant without its own sees.
    pub fn set_global(&self, faults: Option<Faults>) {
        let mut table = self.lock();
        table.global = faults;
        self.armed.store(!table.is_empty(), Ordering::Release);
    }

    /// Replaces (or with `None` clears) one tenant's own faults.
    pub fn set_tenant(&self, id: Uuid, faults: Option<Faults>) {
        let mut table = self.lock();
        match faults {
            Some(f) => table.tenants.insert(id, f),
            None => table.tenants.remove(&id),
        };
        self.armed.store(!table.is_empty(), Ordering::Release);
    }

    /// Clears every fault, the global ones and every tenant's own.
    pub fn clear(&self) {
        let mut table = self.lock();
        *table = FaultTable::default();
        self.armed.store(false, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultTable> {
        // Nothing panics while holding the lock; if something did, the table is still whole.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(request: FaultRequest) -> Faults {
        Faults::try_from(request).unwrap()
    }

    #[test]
    fn defaults_are_a_503_with_one_second_retry_after_on_both_families() {
        let f = faults(FaultRequest::default());
        assert_eq!(f.error_status, 503);
        assert_eq!(f.retry_after_secs, 1);
        assert!(f.token && f.graph);
        assert_eq!(f.view()["endpoints"], serde_json::json!(["token", "graph"]));
    }

    #[test]
    fn refuses_values_out_of_range() {
        let cases = [
            (
                FaultRequest {
                    latency_ms: Some(60_001),
                    ..Default::default()
                },
                FaultError::Latency,
            ),
            (
                FaultRequest {
                    error_rate: Some(1.5),
                    ..Default::default()
                },
                FaultError::Rate("error_rate"),
            ),
            (
                FaultRequest {
                    throttle_rate: Some(-0.1),
                    ..Default::default()
                },
                FaultError::Rate("throttle_rate"),
            ),
            (
                FaultRequest {
                    error_status: Some(501),
                    ..Default::default()
                },
                FaultError::Status,
            ),
            (
                FaultRequest {
                    retry_after_seconds: Some(3601),
                    ..Default::default()
                },
                FaultError::RetryAfter,
            ),
            (
                FaultRequest {
                    fail_next: Some(MAX_NEXT + 1),
                    ..Default::default()
                },
                FaultError::Count("fail_next"),
            ),
            (
                FaultRequest {
                    endpoints: Some(vec![]),
                    ..Default::default()
                },
                FaultError::NoEndpoints,
            ),
            (
                FaultRequest {
                    unauthorized_next: Some(MAX_NEXT + 1),
                    ..Default::default()
                },
                FaultError::Count("unauthorized_next"),
            ),
            (
                FaultRequest {
                    unauthorized_next: Some(1),
                    endpoints: Some(vec![FaultTarget::Token]),
                    ..Default::default()
                },
                FaultError::NotTargeted {
                    field: "unauthorized_next",
                    family: "graph",
                },
            ),
            (
                FaultRequest {
                    expires_in: Some(0),
                    endpoints: Some(vec![FaultTarget::Graph]),
                    ..Default::default()
                },
                FaultError::NotTargeted {
                    field: "expires_in",
                    family: "token",
                },
            ),
            (
                FaultRequest {
                    throttle_body: Some(ThrottleBody::Text),
                    endpoints: Some(vec![FaultTarget::Graph]),
                    ..Default::default()
                },
                FaultError::NotTargeted {
                    field: "throttle_body",
                    family: "token",
                },
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(Faults::try_from(request).unwrap_err(), expected);
        }
    }

    #[test]
    fn counters_fire_first_then_rates_decide() {
        let mut f = faults(FaultRequest {
            throttle_next: Some(1),
            fail_next: Some(1),
            error_rate: Some(0.5),
            error_status: Some(500),
            ..Default::default()
        });
        let mut draws = [0.9, 0.1].into_iter();
        let mut random = || draws.next().unwrap();
        let mut next = || f.decide(FaultTarget::Token, &mut random).unwrap().fault;

        assert_eq!(
            next(),
            Some(Injected::Throttled {
                retry_after_secs: 1,
                body: ThrottleBody::Json,
            })
        );
        assert_eq!(
            next(),
            Some(Injected::Failed {
                status: 500,
                retry_after_secs: None
            })
        );
        assert_eq!(next(), None, "0.9 is above the error rate");
        assert_eq!(
            next(),
            Some(Injected::Failed {
                status: 500,
                retry_after_secs: None
            }),
            "0.1 is below it"
        );
    }

    #[test]
    fn unauthorized_next_fires_on_graph_only_after_the_other_counters() {
        let mut f = faults(FaultRequest {
            fail_next: Some(1),
            unauthorized_next: Some(1),
            ..Default::default()
        });
        let mut next = |target| f.decide(target, &mut || 0.9).unwrap().fault;

        assert_eq!(
            next(FaultTarget::Token),
            Some(Injected::Failed {
                status: 503,
                retry_after_secs: Some(1)
            })
        );
        assert_eq!(next(FaultTarget::Token), None, "tokens are never refused");
        assert_eq!(next(FaultTarget::Graph), Some(Injected::Unauthorized));
        assert_eq!(next(FaultTarget::Graph), None);
    }

    #[test]
    fn expires_in_is_any_u64_and_reaches_token_decisions_only() {
        let mut f = faults(FaultRequest {
            expires_in: Some(u64::MAX),
            throttle_body: Some(ThrottleBody::Text),
            ..Default::default()
        });
        let token = f.decide(FaultTarget::Token, &mut || 0.9).unwrap();
        let graph = f.decide(FaultTarget::Graph, &mut || 0.9).unwrap();

        assert_eq!(token.expires_in, Some(u64::MAX));
        assert_eq!(graph.expires_in, None);
        assert_eq!(f.view()["expires_in"], serde_json::json!(u64::MAX));
        assert_eq!(f.view()["throttle_body"], "text");
    }

    #[test]
    fn faults_for_other_endpoints_do_not_apply() {
        let mut f = faults(FaultRequest {
            fail_next: Some(1),
            endpoints: Some(vec![FaultTarget::Graph]),
            ..Default::default()
        });
        assert_eq!(f.decide(FaultTarget::Token, &mut || 0.0), None);
        assert_eq!(f.fail_next, 1, "the counter is kept for Graph");
    }

    #[test]
    fn a_tenants_own_faults_replace_the_global_ones() {
        let injector = FaultInjector::default();
        let (quiet, noisy) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(injector.decide(FaultTarget::Token, || Some(noisy)), None);

        injector.set_global(Some(faults(FaultRequest {
            throttle_rate: Some(1.0),
            ..Default::default()
        })));
        injector.set_tenant(quiet, Some(faults(FaultRequest::default())));

        let noisy_fault = injector
            .decide(FaultTarget::Token, || Some(noisy))
            .and_then(|d| d.fault);
        let quiet_fault = injector
            .decide(FaultTarget::Token, || Some(quiet))
            .and_then(|d| d.fault);
        assert!(matches!(noisy_fault, Some(Injected::Throttled { .. })));
        assert_eq!(quiet_fault, None);

        injector.set_global(None);
        injector.set_tenant(quiet, None);
        assert!(!injector.armed.load(Ordering::Relaxed));
    }
}

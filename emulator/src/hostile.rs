//! Hostile modes for negative tests (`/_emulator/hostile`), in the spirit of the OpenID
//! conformance suite's client tests: the next tokens come out wrong in one stated way, or
//! the endpoints throttle and catch clients that retry before `Retry-After` has passed
//! (as Microsoft's Dev Proxy does).
//!
//! Both are off by default and then cost one atomic load per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::clock::rfc3339_seconds;
use super::faults::FaultTarget;
use super::signing::{SigningKey, TokenKind};
use super::stats::FaultKind;

/// Tokens or requests one hostile mode may cover.
pub const MAX_COUNT: u32 = 1_000_000;
/// Microsoft caps `Retry-After` at an hour, and so does MSAL (ENTRA.md §6).
pub const MAX_RETRY_AFTER: u32 = 3600;
/// Throttled clients remembered at once; beyond, new ones are throttled but not watched.
const MAX_WATCHED: usize = 10_000;
/// Client ids and tenants are the client's input: a key keeps at most this much of each.
const MAX_KEY_PART: usize = 256;

/// How the next tokens come out wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tamper {
    /// `iss` names another tenant (validators must compare it with the tenant they expect).
    WrongIssuer,
    /// `aud` is an app id nobody asked for.
    WrongAudience,
    /// `tid` names another tenant while `iss` still names the right one.
    WrongTenant,
    /// The whole validity window moved an hour and more into the past.
    Expired,
    /// The whole validity window moved an hour and more into the future.
    NotYetValid,
    /// Signed by the current key, but the header names a `kid` the JWKS never published.
    UnknownKid,
    /// The right header and claims, with a signature that does not verify.
    BadSignature,
    /// An unsecured JWT (RFC 7519 §6): `alg: none` and an empty signature.
    AlgNone,
}

/// `POST /_emulator/hostile`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostileRequest {
    pub mode: Mode,
    /// Tampering only: which kinds of token; all of them when left out.
    pub tokens: Option<Vec<TokenKind>>,
    /// How many tokens to tamper with, or requests to throttle afresh; 1 when left out.
    pub count: Option<u32>,
    /// Throttling only: the `Retry-After` of each 429; 10 when left out.
    pub retry_after_seconds: Option<u32>,
    /// Throttling only: `token`, `graph` or both (the default).
    pub endpoints: Option<Vec<FaultTarget>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    WrongIssuer,
    WrongAudience,
    WrongTenant,
    Expired,
    NotYetValid,
    UnknownKid,
    BadSignature,
    AlgNone,
    Throttle,
}

/// A hostile mode, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Hostile {
    Tamper(TamperRule),
    Throttle(ThrottleRule),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostileError {
    #[error("count must be between 1 and {MAX_COUNT}")]
    Count,
    #[error("retry_after_seconds must be between 1 and {MAX_RETRY_AFTER}")]
    RetryAfter,
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} applies to {mode} only")]
    NotFor {
        field: &'static str,
        mode: &'static str,
    },
}

impl TryFrom<HostileRequest> for Hostile {
    type Error = HostileError;

    fn try_from(r: HostileRequest) -> Result<Hostile, HostileError> {
        let count = r.count.unwrap_or(1);
        if !(1..=MAX_COUNT).contains(&count) {
            return Err(HostileError::Count);
        }
        let tamper = match r.mode {
            Mode::WrongIssuer => Tamper::WrongIssuer,
            Mode::WrongAudience => Tamper::WrongAudience,
            Mode::WrongTenant => Tamper::WrongTenant,
            Mode::Expired => Tamper::Expired,
            Mode::NotYetValid => Tamper::NotYetValid,
            Mode::UnknownKid => Tamper::UnknownKid,
            Mode::BadSignature => Tamper::BadSignature,
            Mode::AlgNone => Tamper::AlgNone,
            Mode::Throttle => {
                if r.tokens.is_some() {
                    return Err(HostileError::NotFor {
                        field: "tokens",
                        mode: "token tampering",
                    });
                }
                let retry_after_secs = r.retry_after_seconds.unwrap_or(10);
                if !(1..=MAX_RETRY_AFTER).contains(&retry_after_secs) {
                    return Err(HostileError::RetryAfter);
                }
                let endpoints = r
                    .endpoints
                    .unwrap_or_else(|| vec![FaultTarget::Token, FaultTarget::Graph]);
                if endpoints.is_empty() {
                    return Err(HostileError::Empty("endpoints"));
                }
                return Ok(Hostile::Throttle(ThrottleRule {
                    retry_after_secs,
                    remaining: count,
                    token: endpoints.contains(&FaultTarget::Token),
                    graph: endpoints.contains(&FaultTarget::Graph),
                }));
            }
        };
        for (field, set) in [
            ("retry_after_seconds", r.retry_after_seconds.is_some()),
            ("endpoints", r.endpoints.is_some()),
        ] {
            if set {
                return Err(HostileError::NotFor {
                    field,
                    mode: "throttle",
                });
            }
        }
        let kinds = r.tokens.unwrap_or_else(|| TokenKind::ALL.to_vec());
        if kinds.is_empty() {
            return Err(HostileError::Empty("tokens"));
        }
        Ok(Hostile::Tamper(TamperRule {
            tamper,
            kinds,
            remaining: count,
            forged: 0,
        }))
    }
}

/// Tamper with the next `remaining` tokens of `kinds`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperRule {
    tamper: Tamper,
    kinds: Vec<TokenKind>,
    remaining: u32,
    forged: u64,
}

impl TamperRule {
    fn view(&self) -> Value {
        json!({
            "mode": self.tamper,
            "tokens": self.kinds,
            "remaining": self.remaining,
            "forged": self.forged,
        })
    }
}

/// The token tampering in force, consulted by [`super::signing::TokenSigner::sign`].
#[derive(Debug, Default)]
pub struct TokenForge {
    /// Whether a rule has tokens left: token issuance costs one atomic load otherwise.
    armed: AtomicBool,
    rule: Mutex<Option<TamperRule>>,
}

impl TokenForge {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<TamperRule>> {
        // Nothing panics while holding the lock; if something did, the rule is still whole.
        self.rule.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tampering for the next token of `kind`, counting it.
    pub fn take(&self, kind: TokenKind) -> Option<Tamper> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let mut rule = self.lock();
        let rule = rule.as_mut()?;
        if rule.remaining == 0 || !rule.kinds.contains(&kind) {
            return None;
        }
        rule.remaining -= 1;
        rule.forged += 1;
        if rule.remaining == 0 {
            self.armed.store(false, Ordering::Release);
        }
        Some(rule.tamper)
    }

    /// Replaces (or with `None` clears) the rule.
    pub fn set(&self, rule: Option<TamperRule>) {
        let mut current = self.lock();
        self.armed.store(
            rule.as_ref().is_some_and(|r| r.remaining > 0),
            Ordering::Release,
        );
        *current = rule;
    }

    pub fn view(&self) -> Option<Value> {
        self.lock().as_ref().map(TamperRule::view)
    }
}

/// `claims` signed by `key`, wrong in the way `tamper` says.
pub fn forge(tamper: Tamper, key: &SigningKey, claims: &impl Serialize) -> anyhow::Result<String> {
    let mut claims = serde_json::to_value(claims)?;
    let c = claims
        .as_object_mut()
        .ok_or_else(|| anyhow::anyhow!("claims are not a JSON object"))?;
    let other_tenant = Uuid::new_v4().to_string();
    let number =
        |c: &serde_json::Map<String, Value>, name: &str| c.get(name).and_then(Value::as_i64);
    match tamper {
        Tamper::WrongIssuer => {
            let tid = c.get("tid").and_then(Value::as_str).unwrap_or_default();
            let iss = c.get("iss").and_then(Value::as_str).unwrap_or_default();
            let wrong = if !tid.is_empty() && iss.contains(tid) {
                iss.replace(tid, &other_tenant)
            } else {
                format!("https://sts.windows.net/{other_tenant}/")
            };
            c.insert("iss".into(), json!(wrong));
        }
        Tamper::WrongAudience => {
            c.insert("aud".into(), json!(Uuid::new_v4().to_string()));
        }
        Tamper::WrongTenant => {
            c.insert("tid".into(), json!(other_tenant));
        }
        Tamper::Expired | Tamper::NotYetValid => {
            let exp = number(c, "exp").unwrap_or(0);
            let nbf = number(c, "nbf").unwrap_or(exp);
            // Shifted by the lifetime plus an hour: well outside any validator's skew.
            let shift = exp.saturating_sub(nbf).saturating_add(3600);
            let shift = if tamper == Tamper::Expired {
                -shift
            } else {
                shift
            };
            for name in ["iat", "nbf", "exp"] {
                if let Some(t) = number(c, name) {
                    c.insert(name.into(), json!(t.saturating_add(shift)));
                }
            }
        }
        Tamper::UnknownKid | Tamper::BadSignature | Tamper::AlgNone => {}
    }
    let payload = serde_json::to_vec(&claims)?;
    match tamper {
        Tamper::UnknownKid => {
            let kid = URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes());
            let header = json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid});
            key.sign_parts(&URL_SAFE_NO_PAD.encode(header.to_string()), &payload)
        }
        Tamper::BadSignature => {
            let token = key.sign_parts(key.encoded_header(), &payload)?;
            let (signed, signature) = token
                .rsplit_once('.')
                .ok_or_else(|| anyhow::anyhow!("a JWS has three parts"))?;
            let mut signature = URL_SAFE_NO_PAD.decode(signature)?;
            // RSASSA-PKCS1-v1_5 is deterministic: any changed bit fails verification.
            if let Some(first) = signature.first_mut() {
                *first ^= 0x01;
            }
            Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
        }
        Tamper::AlgNone => {
            let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": "none"}).to_string());
            Ok(format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload)))
        }
        _ => key.sign_parts(key.encoded_header(), &payload),
    }
}

/// Throttle the next `remaining` requests afresh, each for `retry_after_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleRule {
    retry_after_secs: u32,
    remaining: u32,
    token: bool,
    graph: bool,
}

impl ThrottleRule {
    fn applies_to(&self, target: FaultTarget) -> bool {
        match target {
            FaultTarget::Token => self.token,
            FaultTarget::Graph => self.graph,
        }
    }
}

/// Who a throttled request came from: the endpoint family, the client id and the tenant
/// (for Graph, the token's `appid` and `tid`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    target: FaultTarget,
    client_id: String,
    tenant: String,
}

impl ClientKey {
    pub fn new(target: FaultTarget, client_id: &str, tenant: &str) -> ClientKey {
        let cut = |s: &str| s.chars().take(MAX_KEY_PART).collect::<String>();
        ClientKey {
            target,
            client_id: cut(client_id),
            tenant: cut(&tenant.to_ascii_lowercase()),
        }
    }
}

/// What the throttle answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A fresh 429.
    Throttled { retry_after_secs: u32 },
    /// A 429 again: the client came back before its `Retry-After` had passed.
    Violation { retry_after_secs: u32 },
}

impl Verdict {
    pub fn retry_after_secs(self) -> u32 {
        match self {
            Verdict::Throttled { retry_after_secs } | Verdict::Violation { retry_after_secs } => {
                retry_after_secs
            }
        }
    }

    /// The short reason the request audit gives.
    pub fn reason(self) -> String {
        match self {
            Verdict::Throttled { retry_after_secs } => {
                format!("throttled (hostile mode): Retry-After {retry_after_secs} s")
            }
            Verdict::Violation { retry_after_secs } => format!(
                "retried {retry_after_secs} s before Retry-After had passed: throttled again, violation counted"
            ),
        }
    }
}

impl From<Verdict> for FaultKind {
    fn from(v: Verdict) -> FaultKind {
        match v {
            Verdict::Throttled { .. } => FaultKind::Throttled,
            Verdict::Violation { .. } => FaultKind::Violation,
        }
    }
}

#[derive(Debug, Default)]
struct ThrottleState {
    rule: Option<ThrottleRule>,
    /// Clients throttled, and until when their `Retry-After` runs.
    watched: HashMap<ClientKey, OffsetDateTime>,
    throttled: u64,
    violations: u64,
}

/// The throttling mode in force.
#[derive(Debug, Default)]
pub struct Throttle {
    /// Whether requests remain to throttle or clients to watch.
    armed: AtomicBool,
    state: Mutex<ThrottleState>,
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, ThrottleState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides one request to `target` at `now` (the emulator's clock, which tests move
    /// instead of waiting). `client` is called only while the mode is on.
    pub fn check(
        &self,
        target: FaultTarget,
        client: impl FnOnce() -> ClientKey,
        now: OffsetDateTime,
    ) -> Option<Verdict> {
        if !self.armed.load(Ordering::Acquire) {
            return None;
        }
        let client = client();
        let mut state = self.lock();
        let state = &mut *state;
        state.watched.retain(|_, until| *until > now);
        let verdict = if let Some(until) = state.watched.get(&client) {
            state.violations += 1;
            let left = (*until - now).as_seconds_f64().ceil().max(1.0) as u32;
            Some(Verdict::Violation {
                retry_after_secs: left,
            })
        } else {
            match state.rule.as_mut() {
                Some(rule) if rule.remaining > 0 && rule.applies_to(target) => {
                    rule.remaining -= 1;
                    state.throttled += 1;
                    let secs = rule.retry_after_secs;
                    if state.watched.len() < MAX_WATCHED {
                        state
                            .watched
                            .insert(client, now + time::Duration::seconds(i64::from(secs)));
                    }
                    Some(Verdict::Throttled {
                        retry_after_secs: secs,
                    })
                }
                _ => None,
            }
        };
        let busy =
            !state.watched.is_empty() || state.rule.as_ref().is_some_and(|r| r.remaining > 0);
        self.armed.store(busy, Ordering::Release);
        verdict
    }

    /// Replaces (or with `None` clears) the rule; the counts and the clients being watched
    /// start afresh.
    pub fn set(&self, rule: Option<ThrottleRule>) {
        let mut state = self.lock();
        self.armed.store(rule.is_some(), Ordering::Release);
        *state = ThrottleState {
            rule,
            ..ThrottleState::default()
        };
    }

    pub fn view(&self, now: OffsetDateTime) -> Option<Value> {
        let state = self.lock();
        let rule = state.rule.as_ref()?;
        let mut endpoints = Vec::new();
        if rule.token {
            endpoints.push(FaultTarget::Token);
        }
        if rule.graph {
            endpoints.push(FaultTarget::Graph);
        }
        let mut watched: Vec<Value> = state
            .watched
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(k, until)| {
                json!({
                    "endpoint": k.target,
                    "client_id": k.client_id,
                    "tenant": k.tenant,
                    "retry_after_until": rfc3339_seconds(*until),
                })
            })
            .collect();
        watched.sort_by_key(Value::to_string);
        Some(json!({
            "mode": "throttle",
            "retry_after_seconds": rule.retry_after_secs,
            "endpoints": endpoints,
            "remaining": rule.remaining,
            "throttled": state.throttled,
            "violations": state.violations,
            "watched": watched,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> Result<Hostile, HostileError> {
        Hostile::try_from(serde_json::from_value::<HostileRequest>(body).unwrap())
    }

    #[test]
    fn requests_are_checked() {
        assert!(matches!(
            request(json!({"mode": "expired"})),
            Ok(Hostile::Tamper(TamperRule { remaining: 1, .. }))
        ));
        assert_eq!(
            request(json!({"mode": "expired", "count": 0})),
            Err(HostileError::Count)
        );
        assert_eq!(
            request(json!({"mode": "alg_none", "retry_after_seconds": 5})),
            Err(HostileError::NotFor {
                field: "retry_after_seconds",
                mode: "throttle"
            })
        );
        assert_eq!(
            request(json!({"mode": "throttle", "tokens": ["id_token"]})),
            Err(HostileError::NotFor {
                field: "tokens",
                mode: "token tampering"
            })
        );
        assert_eq!(
            request(json!({"mode": "throttle", "retry_after_seconds": 3601})),
            Err(HostileError::RetryAfter)
        );
        assert_eq!(
            request(json!({"mode": "wrong_tenant", "tokens": []})),
            Err(HostileError::Empty("tokens"))
        );
    }

    #[test]
    fn the_forge_takes_only_the_kinds_and_count_asked() {
        let forge = TokenForge::default();
        assert_eq!(forge.take(TokenKind::IdToken), None);
        let Ok(Hostile::Tamper(rule)) =
            request(json!({"mode": "unknown_kid", "tokens": ["id_token"], "count": 2}))
        else {
            panic!("a tamper rule")
        };
        forge.set(Some(rule));
        assert_eq!(forge.take(TokenKind::AppAccessToken), None);
        assert_eq!(forge.take(TokenKind::IdToken), Some(Tamper::UnknownKid));
        assert_eq!(forge.take(TokenKind::IdToken), Some(Tamper::UnknownKid));
        assert_eq!(forge.take(TokenKind::IdToken), None);
        assert_eq!(forge.view().unwrap()["forged"], 2);
        assert!(!forge.armed.load(Ordering::Relaxed));
    }

    #[test]
    fn early_retries_are_violations_until_retry_after_passes() {
        let throttle = Throttle::default();
        let Ok(Hostile::Throttle(rule)) =
            request(json!({"mode": "throttle", "retry_after_seconds": 30, "endpoints": ["token"]}))
        else {
            panic!("a throttle rule")
        };
        throttle.set(Some(rule));
        let t0 = OffsetDateTime::now_utc();
        let at = |s| t0 + time::Duration::seconds(s);
        let me = || ClientKey::new(FaultTarget::Token, "app", "Contoso.onmicrosoft.com");
        let other = || ClientKey::new(FaultTarget::Token, "app", "fabrikam.onmicrosoft.com");

        assert_eq!(
            throttle.check(FaultTarget::Graph, me, t0),
            None,
            "Graph is not throttled"
        );
        assert_eq!(
            throttle.check(FaultTarget::Token, me, t0),
            Some(Verdict::Throttled {
                retry_after_secs: 30
            })
        );
        assert_eq!(
            throttle.check(FaultTarget::Token, me, at(20)),
            Some(Verdict::Violation {
                retry_after_secs: 10
            })
        );
        assert_eq!(
            throttle.check(FaultTarget::Token, other, at(20)),
            None,
            "the one request to throttle was used"
        );
        assert_eq!(throttle.check(FaultTarget::Token, me, at(30)), None);
        let view = throttle.view(at(30)).unwrap();
        assert_eq!(
            (view["throttled"].clone(), view["violations"].clone()),
            (json!(1), json!(1))
        );
        assert!(
            !throttle.armed.load(Ordering::Relaxed),
            "nothing left to do"
        );
    }
}

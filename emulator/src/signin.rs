//! The state of sign-ins under way: authorize requests waiting for the person to pick an
//! account or consent ("flows"), authorization codes, refresh tokens and browser sessions.
//!
//! Codes and refresh tokens are kept by their SHA-256 only; flows are bound to the browser
//! that started them by a random cookie. Every map is bounded: a stranger who starts a
//! million sign-ins pushes out the oldest, never the emulator's memory.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// How long the sign-in page's form stays valid (Microsoft's flow token: AADSTS50089 after).
pub const FLOW_LIFETIME: Duration = Duration::minutes(15);
/// Authorization codes live about ten minutes at Microsoft
/// (learn.microsoft.com, "Microsoft identity platform and OAuth 2.0 authorization code flow").
pub const CODE_LIFETIME: Duration = Duration::minutes(10);
/// Refresh tokens of web apps expire after 90 days without use (AADSTS700082).
pub const REFRESH_LIFETIME: Duration = Duration::days(90);
/// How long a browser stays signed in for `prompt=none`.
pub const SESSION_LIFETIME: Duration = Duration::hours(24);

const MAX_FLOWS: usize = 10_000;
const MAX_CODES: usize = 10_000;
const MAX_REFRESH: usize = 100_000;
const MAX_SESSIONS: usize = 10_000;

/// `code_challenge_method` (RFC 7636 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    Plain,
    S256,
}

/// RFC 7636 §4.2: what the token request's `code_verifier` must turn into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub value: String,
    pub method: ChallengeMethod,
}

impl Challenge {
    /// Constant time, as for any secret.
    pub fn matches(&self, verifier: &str) -> bool {
        use subtle::ConstantTimeEq;
        let derived = match self.method {
            ChallengeMethod::Plain => verifier.to_owned(),
            ChallengeMethod::S256 => URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA256,
                verifier.as_bytes(),
            )),
        };
        bool::from(derived.as_bytes().ct_eq(self.value.as_bytes()))
    }
}

/// How the answer goes back to the app (`response_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// `prompt` (OpenID Connect Core §3.1.2.1, as Microsoft supports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Absent: the account picker, consent only when needed.
    Default,
    Login,
    SelectAccount,
    Consent,
    None,
}

/// A checked authorize request, waiting for the person.
#[derive(Debug, Clone)]
pub struct Flow {
    /// The random id of the browser that started it (its cookie).
    pub browser: String,
    /// The `{tenant}` path segment, lower case, as the app sent it.
    pub segment: String,
    /// The tenant, when the segment names one (not `organizations`/`common`).
    pub tenant: Option<Uuid>,
    pub client_id: Uuid,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<Vec<u8>>,
    pub nonce: Option<String>,
    /// Normalised: `openid`, `profile`, `email`, `offline_access`, and Graph's delegated
    /// permissions by their short names (`User.Read`).
    pub scopes: Vec<String>,
    pub challenge: Option<Challenge>,
    pub prompt: Prompt,
    pub login_hint: Option<String>,
    pub domain_hint: Option<String>,
    pub created_at: OffsetDateTime,
    /// Set once the person picked an account and only consent is left.
    pub user: Option<Uuid>,
}

/// An issued authorization code (RFC 6749 §4.1.2), bound to everything it must be redeemed
/// with.
#[derive(Debug, Clone)]
pub struct Code {
    pub client_id: Uuid,
    pub redirect_uri: String,
    /// The segment the code was asked for: it must be redeemed at the same kind of
    /// endpoint (AADSTS700005).
    pub segment: String,
    pub tenant: Uuid,
    pub user: Uuid,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub challenge: Option<Challenge>,
    pub issued_at: OffsetDateTime,
    pub redeemed: bool,
    /// The refresh token issued for it, revoked should the code be replayed
    /// (RFC 6749 §4.1.2: "SHOULD revoke ... all tokens previously issued based on that code").
    pub refresh: Option<[u8; 32]>,
}

/// A refresh token's grant.
#[derive(Debug, Clone)]
pub struct Refresh {
    pub client_id: Uuid,
    pub tenant: Uuid,
    pub user: Uuid,
    pub scopes: Vec<String>,
    pub issued_at: OffsetDateTime,
}

/// A browser's signed-in account.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub user: Uuid,
    pub at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Inner {
    flows: HashMap<String, Flow>,
    codes: HashMap<[u8; 32], Code>,
    refresh: HashMap<[u8; 32], Refresh>,
    sessions: HashMap<String, Session>,
}

/// Every sign-in under way, behind one mutex held for map operations only.
#[derive(Debug, Default)]
pub struct SignIns {
    inner: Mutex<Inner>,
}

/// A fresh random value: 32 bytes, base64url (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system's generator does not fail on the platforms we run on; should it, a
    // v4 UUID's randomness is the fallback.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What codes and refresh tokens are stored under.
pub fn digest(token: &str) -> [u8; 32] {
    let hash = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

/// Makes room in `map` for one more entry: the expired go first, then the oldest.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    born: impl Fn(&V) -> OffsetDateTime,
    expired: impl Fn(&V) -> bool,
) {
    if map.len() < max {
        return;
    }
    map.retain(|_, v| !expired(v));
    while map.len() >= max {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| born(v))
            .map(|(k, _)| k.clone())
        else {
            return;
        };
        map.remove(&oldest);
    }
}

impl SignIns {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every flow, code, refresh token and browser session (`POST /_emulator/reset`).
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// Stores a flow and returns its id.
    pub fn start(&self, flow: Flow, now: OffsetDateTime) -> String {
        let id = random_token();
        let mut inner = self.lock();
        make_room(
            &mut inner.flows,
            MAX_FLOWS,
            |f| f.created_at,
            |f| now - f.created_at > FLOW_LIFETIME,
        );
        inner.flows.insert(id.clone(), flow);
        id
    }

    /// The flow `id` if it exists, is fresh and was started by `browser`.
    pub fn flow(&self, id: &str, browser: Option<&str>, now: OffsetDateTime) -> Option<Flow> {
        use subtle::ConstantTimeEq;
        let inner = self.lock();
        let flow = inner.flows.get(id)?;
        let same_browser =
            browser.is_some_and(|b| bool::from(b.as_bytes().ct_eq(flow.browser.as_bytes())));
        (same_browser && now - flow.created_at <= FLOW_LIFETIME).then(|| flow.clone())
    }

    /// Moves a flow on to consent for `user`.
    pub fn choose(&self, id: &str, user: Uuid) {
        if let Some(flow) = self.lock().flows.get_mut(id) {
            flow.user = Some(user);
        }
    }

    /// Ends a flow: its form can no longer be posted.
    pub fn finish(&self, id: &str) {
        self.lock().flows.remove(id);
    }

    /// Issues a code; returns it (the only time it exists in clear).
    pub fn issue_code(&self, code: Code, now: OffsetDateTime) -> String {
        let token = random_token();
        let mut inner = self.lock();
        make_room(
            &mut inner.codes,
            MAX_CODES,
            |c| c.issued_at,
            |c| now - c.issued_at > CODE_LIFETIME,
        );
        inner.codes.insert(digest(&token), code);
        token
    }

    /// Marks a code redeemed and returns it as it was before; a replayed code revokes the
    /// refresh token issued for it.
    pub fn redeem(&self, token: &str) -> Option<Code> {
        let mut inner = self.lock();
        let code = inner.codes.get_mut(&digest(token))?;
        let before = code.clone();
        if code.redeemed {
            if let Some(refresh) = code.refresh.take() {
                inner.refresh.remove(&refresh);
            }
        } else {
            code.redeemed = true;
        }
        Some(before)
    }

    /// Issues a refresh token, remembered against `code` when it came from one.
    pub fn issue_refresh(&self, grant: Refresh, code: Option<&str>, now: OffsetDateTime) -> String {
        let token = random_token();
        let key = digest(&token);
        let mut inner = self.lock();
        make_room(
            &mut inner.refresh,
            MAX_REFRESH,
            |r| r.issued_at,
            |r| now - r.issued_at > REFRESH_LIFETIME,
        );
        inner.refresh.insert(key, grant);
        if let Some(c) = code.and_then(|c| inner.codes.get_mut(&digest(c))) {
            c.refresh = Some(key);
        }
        token
    }

    pub fn refresh(&self, token: &str) -> Option<Refresh> {
        self.lock().refresh.get(&digest(token)).cloned()
    }

    pub fn sign_in(&self, browser: &str, user: Uuid, now: OffsetDateTime) {
        let mut inner = self.lock();
        make_room(
            &mut inner.sessions,
            MAX_SESSIONS,
            |s| s.at,
            |s| now - s.at > SESSION_LIFETIME,
        );
        inner
            .sessions
            .insert(browser.to_owned(), Session { user, at: now });
    }

    pub fn session(&self, browser: Option<&str>, now: OffsetDateTime) -> Option<Session> {
        let inner = self.lock();
        let session = inner.sessions.get(browser?)?;
        (now - session.at <= SESSION_LIFETIME).then_some(*session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_challenges_follow_rfc_7636_appendix_b() {
        let challenge = Challenge {
            value: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            method: ChallengeMethod::S256,
        };
        assert!(challenge.matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!challenge.matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"));
        let plain = Challenge {
            value: "abc".into(),
            method: ChallengeMethod::Plain,
        };
        assert!(plain.matches("abc") && !plain.matches("abd"));
    }

    #[test]
    fn maps_stay_bounded_and_drop_the_oldest() {
        let mut map: HashMap<u32, OffsetDateTime> = HashMap::new();
        let now = OffsetDateTime::now_utc();
        for n in 0..5u32 {
            make_room(&mut map, 3, |t| *t, |_| false);
            map.insert(n, now + Duration::seconds(i64::from(n)));
        }
        let mut keys: Vec<u32> = map.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, [2, 3, 4]);
    }

    #[test]
    fn a_replayed_code_revokes_its_refresh_token() {
        let sign_ins = SignIns::default();
        let now = OffsetDateTime::now_utc();
        let code = sign_ins.issue_code(
            Code {
                client_id: Uuid::nil(),
                redirect_uri: String::new(),
                segment: String::new(),
                tenant: Uuid::nil(),
                user: Uuid::nil(),
                scopes: vec![],
                nonce: None,
                challenge: None,
                issued_at: now,
                redeemed: false,
                refresh: None,
            },
            now,
        );
        assert!(!sign_ins.redeem(&code).unwrap().redeemed);
        let refresh = sign_ins.issue_refresh(
            Refresh {
                client_id: Uuid::nil(),
                tenant: Uuid::nil(),
                user: Uuid::nil(),
                scopes: vec![],
                issued_at: now,
            },
            Some(&code),
            now,
        );
        assert!(sign_ins.refresh(&refresh).is_some());
        assert!(sign_ins.redeem(&code).unwrap().redeemed);
        assert!(sign_ins.refresh(&refresh).is_none());
        assert!(sign_ins.redeem("unknown").is_none());
    }

    #[test]
    fn flows_belong_to_their_browser_and_expire() {
        let sign_ins = SignIns::default();
        let now = OffsetDateTime::now_utc();
        let flow = Flow {
            browser: "b1".into(),
            segment: "common".into(),
            tenant: None,
            client_id: Uuid::nil(),
            redirect_uri: String::new(),
            response_mode: ResponseMode::Query,
            state: None,
            nonce: None,
            scopes: vec![],
            challenge: None,
            prompt: Prompt::Default,
            login_hint: None,
            domain_hint: None,
            created_at: now,
            user: None,
        };
        let id = sign_ins.start(flow, now);
        assert!(sign_ins.flow(&id, Some("b1"), now).is_some());
        assert!(sign_ins.flow(&id, Some("b2"), now).is_none());
        assert!(sign_ins.flow(&id, None, now).is_none());
        assert!(
            sign_ins
                .flow(&id, Some("b1"), now + FLOW_LIFETIME + Duration::seconds(1))
                .is_none()
        );
        sign_ins.finish(&id);
        assert!(sign_ins.flow(&id, Some("b1"), now).is_none());
    }
}

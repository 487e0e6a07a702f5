//! Request counters, so tests can assert how often a client called each endpoint
//! (`GET /_emulator/requests`).
//!
//! Memory stays bounded whatever clients send: known tenants are as many as the directory
//! holds, and segments that name no tenant (which anyone can invent) get a key of their own
//! only up to [`MAX_UNKNOWN_SEGMENTS`] of them; the rest are counted under [`OTHER_UNKNOWN`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Serialize, Serializer};

/// The endpoints the emulator counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    AdminConsent,
    AdminConsentDecision,
    TokenV2,
    TokenV1,
    Discovery,
    Keys,
    GraphOrganization,
    GraphUsers,
    GraphUsersCount,
}

const ENDPOINTS: usize = 9;

impl Endpoint {
    /// Every endpoint, in the order of the enum (which is the order of the counts' JSON).
    const ALL: [Endpoint; ENDPOINTS] = [
        Endpoint::AdminConsent,
        Endpoint::AdminConsentDecision,
        Endpoint::TokenV2,
        Endpoint::TokenV1,
        Endpoint::Discovery,
        Endpoint::Keys,
        Endpoint::GraphOrganization,
        Endpoint::GraphUsers,
        Endpoint::GraphUsersCount,
    ];
}

/// One count per endpoint, inline: a tenant's counts are copied without an allocation.
/// Serialises as a map of the endpoints counted at least once, as a map of only those
/// endpoints did.
#[derive(Debug, Default, Clone)]
struct PerEndpoint<T>([T; ENDPOINTS]);

impl<T> PerEndpoint<T> {
    fn get_mut(&mut self, endpoint: Endpoint) -> &mut T {
        // `ALL` lists every variant in declaration order, so the discriminant is in range.
        &mut self.0[endpoint as usize]
    }
}

/// Whether a count is still untouched (and so left out of the JSON).
trait Untouched {
    fn untouched(&self) -> bool;
}

impl Untouched for u64 {
    fn untouched(&self) -> bool {
        *self == 0
    }
}

impl<T: Serialize + Untouched> Serialize for PerEndpoint<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            Endpoint::ALL
                .iter()
                .zip(&self.0)
                .filter(|(_, n)| !n.untouched()),
        )
    }
}

/// Keys shared between the counts and their copies: copying one is a reference count.
type Key = Arc<str>;

fn by_key<S: Serializer, V: Serialize>(map: &BTreeMap<Key, V>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(map.iter().map(|(k, v)| (&**k, v)))
}

/// Distinct unknown segments counted under their own key; enough for any test.
pub const MAX_UNKNOWN_SEGMENTS: usize = 1000;
/// Longer unknown segments are never a key of their own (the longest DNS name is 253).
const MAX_SEGMENT_KEY: usize = 253;
/// Where unknown segments beyond those limits are counted.
pub const OTHER_UNKNOWN: &str = "(other unknown tenants)";

/// How a request names its tenant in the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantKey {
    /// A tenant's GUID (or a multi-tenant alias): bounded by the directory.
    Known(String),
    /// A segment, in lower case, that names no tenant: unbounded, so counted with care.
    Unknown(String),
}

impl TenantKey {
    pub fn as_str(&self) -> &str {
        match self {
            TenantKey::Known(k) | TenantKey::Unknown(k) => k,
        }
    }
}

/// What an injected fault answered (see `faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Throttled,
    Error,
    /// Graph's injected 401 (`unauthorized_next`).
    Unauthorized,
    /// A 429 again to a client that retried before `Retry-After` had passed (`hostile`).
    Violation,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
struct FaultCounts {
    throttled: u64,
    errors: u64,
    /// Left out while zero, so that the shape stays the same for the token endpoints,
    /// which never answer it.
    #[serde(skip_serializing_if = "is_zero")]
    unauthorized: u64,
    /// Early retries under the hostile throttle; left out while zero, like `unauthorized`.
    #[serde(skip_serializing_if = "is_zero")]
    violations: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Untouched for FaultCounts {
    fn untouched(&self) -> bool {
        *self == FaultCounts::default()
    }
}

impl FaultCounts {
    fn add(&mut self, kind: FaultKind) {
        match kind {
            FaultKind::Throttled => self.throttled += 1,
            FaultKind::Error => self.errors += 1,
            FaultKind::Unauthorized => self.unauthorized += 1,
            FaultKind::Violation => self.violations += 1,
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
struct Counts {
    total: u64,
    endpoints: BTreeMap<Endpoint, u64>,
    /// Keyed by tenant GUID when the tenant is known, else by the segment the client sent.
    #[serde(serialize_with = "by_key")]
    tenants: BTreeMap<Key, PerEndpoint<u64>>,
    /// Injected faults per endpoint. Those requests are counted above as well.
    faults: BTreeMap<Endpoint, FaultCounts>,
    /// Injected faults per tenant, keyed as `tenants` is.
    #[serde(serialize_with = "by_key")]
    tenant_faults: BTreeMap<Key, PerEndpoint<FaultCounts>>,
    /// How many keys of `tenants` are unknown segments.
    #[serde(skip)]
    unknown_segments: usize,
}

impl Counts {
    /// The key `tenant` is counted under: a new unknown segment gets one of its own while
    /// there is room (the caller then inserts it).
    fn key<'k>(&mut self, tenant: &'k TenantKey) -> &'k str {
        match tenant {
            TenantKey::Known(k) => k,
            TenantKey::Unknown(k) if self.tenants.contains_key(k.as_str()) => k,
            TenantKey::Unknown(k)
                if self.unknown_segments < MAX_UNKNOWN_SEGMENTS && k.len() <= MAX_SEGMENT_KEY =>
            {
                self.unknown_segments += 1;
                k
            }
            TenantKey::Unknown(_) => OTHER_UNKNOWN,
        }
    }
}

/// The counts at one moment, detached from [`RequestStats`] and its mutex.
#[derive(Debug)]
pub struct CountsCopy(Counts);

impl CountsCopy {
    /// What `GET /_emulator/requests` answers.
    #[cfg(test)]
    pub fn to_json(&self) -> serde_json::Value {
        // Maps with string keys and numbers always convert.
        serde_json::to_value(&self.0).unwrap_or_default()
    }

    /// [`CountsCopy::to_json`] serialised, without building the `Value` first.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).unwrap_or_default()
    }
}

/// Counts per endpoint and per tenant. One mutex: a few hundred nanoseconds per request
/// against the millisecond an RSA signature costs.
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: Mutex<Counts>,
}

impl RequestStats {
    pub fn record(&self, endpoint: Endpoint, tenant: Option<&TenantKey>) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total += 1;
        *c.endpoints.entry(endpoint).or_default() += 1;
        if let Some(t) = tenant {
            let t = c.key(t);
            let per = match c.tenants.get_mut(t) {
                Some(per) => per,
                None => c.tenants.entry(Key::from(t)).or_default(),
            };
            *per.get_mut(endpoint) += 1;
        }
    }

    /// Counts an injected fault, on top of the request's own count (recorded first, so an
    /// unknown segment already has its key or is counted under [`OTHER_UNKNOWN`]).
    pub fn record_fault(&self, endpoint: Endpoint, tenant: Option<&TenantKey>, kind: FaultKind) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.faults.entry(endpoint).or_default().add(kind);
        if let Some(t) = tenant {
            let t = match t {
                TenantKey::Unknown(k) if !c.tenants.contains_key(k.as_str()) => OTHER_UNKNOWN,
                TenantKey::Known(k) | TenantKey::Unknown(k) => k.as_str(),
            };
            let per = match c.tenant_faults.get_mut(t) {
                Some(per) => per,
                None => c.tenant_faults.entry(Key::from(t)).or_default(),
            };
            per.get_mut(endpoint).add(kind);
        }
    }

    /// The counts as they stand, for [`CountsCopy::to_json`] after the mutex is released,
    /// which every request waits for to count itself. A tenant's counts are a key's
    /// reference count and an array: at 100,000 tenants the clone is a few milliseconds,
    /// against tens for the JSON.
    pub fn copy(&self) -> CountsCopy {
        CountsCopy(
            self.counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// [`RequestStats::copy`], then [`CountsCopy::to_json`].
    #[cfg(test)]
    pub fn snapshot(&self) -> serde_json::Value {
        self.copy().to_json()
    }

    pub fn reset(&self) {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner()) = Counts::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_endpoint_and_tenant() {
        let stats = RequestStats::default();
        let t1 = TenantKey::Known("t1".into());
        stats.record(Endpoint::TokenV2, Some(&t1));
        stats.record(Endpoint::TokenV2, Some(&t1));
        stats.record(Endpoint::GraphUsers, None);
        let s = stats.snapshot();
        assert_eq!(s["total"], 3);
        assert_eq!(s["endpoints"]["token_v2"], 2);
        assert_eq!(s["tenants"]["t1"]["token_v2"], 2);
        assert_eq!(s["faults"], serde_json::json!({}));
        stats.reset();
        assert_eq!(stats.snapshot()["total"], 0);
    }

    #[test]
    fn a_copy_is_converted_without_the_mutex_and_keeps_its_moment() {
        let stats = RequestStats::default();
        let t1 = TenantKey::Known("t1".into());
        stats.record(Endpoint::TokenV2, Some(&t1));
        stats.record_fault(Endpoint::TokenV2, Some(&t1), FaultKind::Throttled);

        let copy = stats.copy();
        let free = stats.counts.try_lock().is_ok();
        stats.record(Endpoint::TokenV2, Some(&t1));
        stats.record(Endpoint::Keys, Some(&TenantKey::Known("t2".into())));
        let s = copy.to_json();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&copy.to_bytes()).unwrap(),
            s
        );

        assert!(free, "the mutex is released once the counts are copied");
        assert_eq!(s["total"], 1);
        assert_eq!(s["tenants"], serde_json::json!({"t1": {"token_v2": 1}}));
        assert_eq!(
            s["tenant_faults"]["t1"]["token_v2"],
            serde_json::json!({"throttled": 1, "errors": 0})
        );
        assert_eq!(s, {
            let again = RequestStats::default();
            again.record(Endpoint::TokenV2, Some(&t1));
            again.record_fault(Endpoint::TokenV2, Some(&t1), FaultKind::Throttled);
            again.snapshot()
        });
        assert_eq!(stats.snapshot()["total"], 3);
    }

    #[test]
    fn every_endpoint_has_its_own_slot_and_name() {
        for (i, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, i);
        }
        let stats = RequestStats::default();
        let t1 = TenantKey::Known("t1".into());
        for endpoint in Endpoint::ALL.into_iter().rev() {
            stats.record(endpoint, Some(&t1));
        }
        stats.record(Endpoint::Keys, Some(&t1));
        stats.record_fault(Endpoint::GraphUsers, Some(&t1), FaultKind::Unauthorized);
        let s = stats.snapshot();
        assert_eq!(
            s["tenants"]["t1"],
            serde_json::json!({
                "admin_consent": 1, "admin_consent_decision": 1, "token_v2": 1, "token_v1": 1,
                "discovery": 1, "keys": 2, "graph_organization": 1, "graph_users": 1,
                "graph_users_count": 1,
            })
        );
        assert_eq!(s["tenants"]["t1"], s["endpoints"]);
        assert_eq!(
            s["tenant_faults"]["t1"],
            serde_json::json!({"graph_users": {"throttled": 0, "errors": 0, "unauthorized": 1}})
        );
    }

    #[test]
    fn counts_faults_per_endpoint_and_tenant() {
        let stats = RequestStats::default();
        let t1 = TenantKey::Known("t1".into());
        stats.record_fault(Endpoint::TokenV2, Some(&t1), FaultKind::Throttled);
        stats.record_fault(Endpoint::TokenV2, Some(&t1), FaultKind::Error);
        stats.record_fault(Endpoint::GraphUsers, None, FaultKind::Throttled);
        let s = stats.snapshot();
        assert_eq!(
            s["faults"]["token_v2"],
            serde_json::json!({"throttled": 1, "errors": 1})
        );
        assert_eq!(s["faults"]["graph_users"]["throttled"], 1);
        assert_eq!(s["tenant_faults"]["t1"]["token_v2"]["errors"], 1);
        assert!(s["tenant_faults"].get("graph_users").is_none());
    }

    #[test]
    fn unknown_segments_beyond_the_limit_share_one_key() {
        let stats = RequestStats::default();
        for n in 0..MAX_UNKNOWN_SEGMENTS + 50 {
            let key = TenantKey::Unknown(format!("nobody{n}.example"));
            stats.record(Endpoint::TokenV2, Some(&key));
            stats.record_fault(Endpoint::TokenV2, Some(&key), FaultKind::Error);
        }
        let long = TenantKey::Unknown("a".repeat(MAX_SEGMENT_KEY + 1));
        stats.record(Endpoint::Discovery, Some(&long));
        stats.record(Endpoint::Discovery, Some(&TenantKey::Known("t1".into())));

        let s = stats.snapshot();
        let tenants = s["tenants"].as_object().unwrap();
        assert_eq!(
            tenants.len(),
            MAX_UNKNOWN_SEGMENTS + 2,
            "known keys are not limited"
        );
        assert_eq!(s["tenants"]["nobody0.example"]["token_v2"], 1);
        assert_eq!(s["tenants"][OTHER_UNKNOWN]["token_v2"], 50);
        assert_eq!(s["tenants"][OTHER_UNKNOWN]["discovery"], 1);
        assert_eq!(s["tenant_faults"][OTHER_UNKNOWN]["token_v2"]["errors"], 50);
        assert_eq!(s["total"], MAX_UNKNOWN_SEGMENTS as u64 + 52);

        stats.reset();
        stats.record(
            Endpoint::TokenV2,
            Some(&TenantKey::Unknown("fresh.example".into())),
        );
        assert_eq!(stats.snapshot()["tenants"]["fresh.example"]["token_v2"], 1);
    }
}

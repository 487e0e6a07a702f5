//! Request counters, so tests can assert how often a client called each endpoint
//! (`GET /_emulator/requests`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

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

/// What an injected fault answered (see `faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Throttled,
    Error,
    /// Graph's injected 401 (`unauthorized_next`).
    Unauthorized,
}

#[derive(Debug, Default, Serialize)]
struct FaultCounts {
    throttled: u64,
    errors: u64,
    /// Left out while zero, so that the shape stays the same for the token endpoints,
    /// which never answer it.
    #[serde(skip_serializing_if = "is_zero")]
    unauthorized: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl FaultCounts {
    fn add(&mut self, kind: FaultKind) {
        match kind {
            FaultKind::Throttled => self.throttled += 1,
            FaultKind::Error => self.errors += 1,
            FaultKind::Unauthorized => self.unauthorized += 1,
        }
    }
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    total: u64,
    endpoints: BTreeMap<Endpoint, u64>,
    /// Keyed by tenant GUID when the tenant is known, else by the segment the client sent.
    tenants: BTreeMap<String, BTreeMap<Endpoint, u64>>,
    /// Injected faults per endpoint. Those requests are counted above as well.
    faults: BTreeMap<Endpoint, FaultCounts>,
    /// Injected faults per tenant, keyed as `tenants` is.
    tenant_faults: BTreeMap<String, BTreeMap<Endpoint, FaultCounts>>,
}

/// Counts per endpoint and per tenant. One mutex: a few hundred nanoseconds per request
/// against the millisecond an RSA signature costs.
#[derive(Debug, Default)]
pub struct RequestStats {
    counts: Mutex<Counts>,
}

impl RequestStats {
    pub fn record(&self, endpoint: Endpoint, tenant: Option<&str>) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total += 1;
        *c.endpoints.entry(endpoint).or_default() += 1;
        if let Some(t) = tenant {
            let per = match c.tenants.get_mut(t) {
                Some(per) => per,
                None => c.tenants.entry(t.to_owned()).or_default(),
            };
            *per.entry(endpoint).or_default() += 1;
        }
    }

    /// Counts an injected fault, on top of the request's own count.
    pub fn record_fault(&self, endpoint: Endpoint, tenant: Option<&str>, kind: FaultKind) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.faults.entry(endpoint).or_default().add(kind);
        if let Some(t) = tenant {
            c.tenant_faults
                .entry(t.to_owned())
                .or_default()
                .entry(endpoint)
                .or_default()
                .add(kind);
        }
    }

    pub fn snapshot(&self) -> serde_json::Value {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        serde_json::to_value(&*c).unwrap_or_default()
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
        stats.record(Endpoint::TokenV2, Some("t1"));
        stats.record(Endpoint::TokenV2, Some("t1"));
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
    fn counts_faults_per_endpoint_and_tenant() {
        let stats = RequestStats::default();
        stats.record_fault(Endpoint::TokenV2, Some("t1"), FaultKind::Throttled);
        stats.record_fault(Endpoint::TokenV2, Some("t1"), FaultKind::Error);
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
}

//! The service's own figures in the Prometheus text format, for `GET /metrics`.
//!
//! Each running service has its own recorder (not the process-wide one of the `metrics`
//! macros), so two services in one process (the tests) never mix their figures. Counters
//! and histograms move as things happen: HTTP requests by route pattern (never the raw
//! path, which holds tenant ids), method and status, with latency; token requests by
//! outcome and AADSTS code. Gauges read from the database (tenants by status, how late
//! the most overdue check is, webhook deliveries by status) are refreshed when scraped, at
//! most once every [`FIGURES_REFRESH`].

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use time::OffsetDateTime;

use crate::domain::TenantStatus;
use crate::entra::TokenError;
use crate::store::Store;

pub const HTTP_REQUESTS: &str = "consentry_http_requests_total";
pub const HTTP_DURATION: &str = "consentry_http_request_duration_seconds";
pub const TOKEN_REQUESTS: &str = "consentry_token_requests_total";
pub const TENANTS: &str = "consentry_tenants";
pub const VERIFIER_LAG: &str = "consentry_verifier_lag_seconds";
pub const WEBHOOK_DELIVERIES: &str = "consentry_webhook_deliveries";

/// The database's figures are read again at most this often, however often Prometheus
/// (or anyone holding the token) scrapes.
pub const FIGURES_REFRESH: Duration = Duration::from_secs(2);

/// Histogram samples are folded into buckets this often even when nobody scrapes (they
/// are buffered until then).
const UPKEEP: Duration = Duration::from_secs(5);

/// Upper bounds of the latency buckets, in seconds: from a cached page (~1 ms) to a
/// request that waited on Microsoft (the outbound timeout is 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

/// The webhook delivery statuses, each reported even at zero.
const DELIVERY_STATUSES: [&str; 3] = ["pending", "succeeded", "failed"];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// When the database's figures were last read.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    /// Set once the upkeep task runs.
    upkeep: Mutex<bool>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let builder = PrometheusBuilder::new();
        // Only an empty list of buckets is refused.
        let builder = match builder
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), LATENCY_BUCKETS)
        {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            (
                KeyName::from_const_str(name),
                unit,
                SharedString::const_str(help),
            )
        };
        let (name, unit, help) = describe(
            HTTP_REQUESTS,
            None,
            "HTTP requests served, by route pattern, method and status.",
        );
        recorder.describe_counter(name, unit, help);
        let (name, unit, help) = describe(
            HTTP_DURATION,
            Some(Unit::Seconds),
            "How long HTTP requests took, by route pattern and method.",
        );
        recorder.describe_histogram(name, unit, help);
        let (name, unit, help) = describe(
            TOKEN_REQUESTS,
            None,
            "Token requests sent to Microsoft, by outcome and AADSTS code (empty when none).",
        );
        recorder.describe_counter(name, unit, help);
        let (name, unit, help) = describe(TENANTS, None, "Tenants by status.");
        recorder.describe_gauge(name, unit, help);
        let (name, unit, help) = describe(
            VERIFIER_LAG,
            Some(Unit::Seconds),
            "How late the most overdue scheduled check is (0 when none is overdue).",
        );
        recorder.describe_gauge(name, unit, help);
        let (name, unit, help) = describe(
            WEBHOOK_DELIVERIES,
            None,
            "Webhook deliveries by status: pending, succeeded, failed.",
        );
        recorder.describe_gauge(name, unit, help);
        Arc::new(Metrics {
            recorder,
            handle,
            refreshed: tokio::sync::Mutex::new(None),
            upkeep: Mutex::new(false),
        })
    }

    /// Folds buffered histogram samples into their buckets every few seconds, for as long
    /// as these metrics are in use. Needs a Tokio runtime; a second call does nothing.
    pub fn start_upkeep(self: &Arc<Self>) {
        {
            let mut started = self.upkeep.lock().unwrap_or_else(PoisonError::into_inner);
            if *started {
                return;
            }
            *started = true;
        }
        let weak: Weak<Metrics> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(metrics) => metrics.handle.run_upkeep(),
                    None => return,
                }
            }
        });
    }

    /// One HTTP request served: `route` is the matched pattern (`/admin/tenants/{id}`), or
    /// `unmatched` for a path no route serves.
    pub fn http_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let route = Label::new("route", route.to_owned());
        let method = Label::new("method", method.to_owned());
        let key = Key::from_parts(
            HTTP_REQUESTS,
            vec![
                route.clone(),
                method.clone(),
                Label::new("status", status.to_string()),
            ],
        );
        self.recorder.register_counter(&key, &METADATA).increment(1);
        let key = Key::from_parts(HTTP_DURATION, vec![route, method]);
        self.recorder
            .register_histogram(&key, &METADATA)
            .record(took.as_secs_f64());
    }

    /// One token request to Microsoft and how it ended.
    pub fn token_request(&self, result: Result<(), &TokenError>) {
        let (outcome, code) = match result {
            Ok(()) => ("issued", String::new()),
            Err(e @ TokenError::Refused { codes, .. }) => (
                "refused",
                codes
                    .first()
                    .map(|c| format!("AADSTS{c}"))
                    .unwrap_or_else(|| e.code()),
            ),
            Err(TokenError::Throttled { .. }) => ("throttled", String::new()),
            Err(TokenError::Waiting { .. }) => ("waiting", String::new()),
            Err(TokenError::Unreachable(_)) => ("unreachable", String::new()),
            Err(TokenError::Server(_)) => ("server_error", String::new()),
            Err(TokenError::Malformed(_)) => ("malformed", String::new()),
            Err(TokenError::Credential(_)) => ("credential_unusable", String::new()),
        };
        let key = Key::from_parts(
            TOKEN_REQUESTS,
            vec![Label::new("outcome", outcome), Label::new("code", code)],
        );
        self.recorder.register_counter(&key, &METADATA).increment(1);
    }

    /// The text exposition, with the database's figures refreshed when they are older than
    /// [`FIGURES_REFRESH`]. A database that does not answer leaves the last figures (the
    /// readiness probe says the database is down).
    pub async fn render(&self, store: &Store) -> String {
        {
            let mut refreshed = self.refreshed.lock().await;
            if refreshed.is_none_or(|at| at.elapsed() >= FIGURES_REFRESH) {
                match store.health_figures().await {
                    Ok(figures) => {
                        self.set_figures(&figures, OffsetDateTime::now_utc());
                        *refreshed = Some(Instant::now());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics: the database's figures cannot be read")
                    }
                }
            }
        }
        self.handle.render()
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &METADATA)
            .set(value);
    }

    fn set_figures(&self, figures: &crate::store::HealthFigures, now: OffsetDateTime) {
        // Every status, so that one that emptied reads 0 rather than its last count.
        for status in TenantStatus::ALL {
            let n = figures
                .tenants
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            self.gauge(
                TENANTS,
                vec![Label::new("status", status.as_str())],
                n as f64,
            );
        }
        let lag = figures
            .oldest_due
            .map_or(0.0, |due| (now - due).as_seconds_f64().max(0.0));
        self.gauge(VERIFIER_LAG, Vec::new(), lag);
        for status in DELIVERY_STATUSES {
            let n = figures
                .deliveries
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            self.gauge(
                WEBHOOK_DELIVERIES,
                vec![Label::new("status", status)],
                n as f64,
            );
        }
    }
}

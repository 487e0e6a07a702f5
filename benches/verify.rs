//! Verifying every tenant through consentry's engine, against MSAL for Python.
//!
//! `cargo bench --bench verify -- --tenants N --latency-ms L --concurrency C`
//! (defaults 10000, 50, 64). Starts `consentry emulator --https` as its own process,
//! onboards N consented tenants, injects L ms of latency on the token and Graph endpoints,
//! then verifies every tenant (a fresh client-credentials token, then Graph
//! `GET /v1.0/organization` with it), C at a time, through consentry's token engine.
//! The ideal is N x 2 x L / C. Then the same job with MSAL for Python (one
//! `ConfidentialClientApplication` per tenant, a thread pool of C) against the same
//! emulator, and the ratio of the two wall times.
//!
//! `--instances K` (default 3; 0 skips it): the verify-all job of the background verifier,
//! due tenants in a database, done by one verifier on a fresh SQLite file, then by K
//! verifiers on one database as K instances would (each its own pool, engine and claims);
//! wall times, their ratio, and the checks each tenant got (Graph probes counted by the
//! emulator: exactly one each). `--database URL` names the K instances' database,
//! `sqlite://FILE` or `postgres://...` (default: a fresh SQLite file); give it a database
//! of its own: the benchmark's tenants are added to it (or reset, on a second run) and made
//! due, and any other due tenant would be checked too.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use consentry::clock::SystemClock;
use consentry::config::RawSettings;
use consentry::domain::TenantId;
use consentry::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use consentry::entra::EntraClient;
use consentry::store::Store;
use consentry::tokens::TokenEngine;
use futures_util::StreamExt;
use serde_json::{Value, json};

struct Options {
    tenants: usize,
    latency_ms: usize,
    concurrency: usize,
    skip_msal: bool,
    instances: usize,
    database: Option<String>,
}

fn options() -> Options {
    Options {
        tenants: common::arg("--tenants").unwrap_or(10_000),
        latency_ms: common::arg("--latency-ms").unwrap_or(50),
        concurrency: common::arg("--concurrency").unwrap_or(64),
        skip_msal: std::env::args().any(|a| a == "--skip-msal"),
        instances: common::arg("--instances").unwrap_or(3),
        database: common::arg("--database"),
    }
}

/// This process's peak resident memory (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc (Linux)");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The emulator's request log (`GET /_emulator/requests`).
async fn request_log(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/_emulator/requests"))
        .send()
        .await
        .expect("counts")
        .json()
        .await
        .expect("JSON")
}

async fn counts(http: &reqwest::Client, base: &str) -> (u64, u64) {
    let r = request_log(http, base).await;
    (
        r["endpoints"]["token_v2"].as_u64().unwrap_or(0),
        r["endpoints"]["graph_organization"].as_u64().unwrap_or(0),
    )
}

#[path = "common/mod.rs"]
mod common;

use common::{cpu_seconds, start_emulator};

fn main() {
    let o = options();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("consentry-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let tls_dir = dir.display().to_string();
        let emulator = start_emulator(&["--https", "--users", "1", "--tls-dir", &tls_dir]);
        let ca_path = dir.join("ca.pem");
        let pid = emulator.child.id();
        let base = emulator.base.clone();
        let ca = std::fs::read(&ca_path).expect("ca.pem");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("pem")])
            .build()
            .expect("client");
        // Only the ids: a generic JSON value of 100,000 tenants would dwarf the engine in the
        // peak-memory figure.
        #[derive(serde::Deserialize)]
        struct Created {
            id: String,
        }
        let created: Vec<Created> = http
            .post(format!("{base}/_emulator/tenants"))
            .json(&json!({"count": o.tenants, "consented": true, "users": 1}))
            .send()
            .await
            .expect("create tenants")
            .json()
            .await
            .expect("JSON");
        let tenants: Vec<String> = created.into_iter().map(|t| t.id).collect();
        let baseline_mib = peak_rss_mib();
        let fault = http
            .put(format!("{base}/_emulator/faults"))
            .json(&json!({"latency_ms": o.latency_ms, "endpoints": ["token", "graph"]}))
            .send()
            .await
            .expect("faults");
        assert!(
            fault.status().is_success(),
            "the emulator refused the latency: {}",
            fault.text().await.unwrap_or_default()
        );
        http.delete(format!("{base}/_emulator/requests"))
            .send()
            .await
            .expect("reset");
        let ideal = o.tenants as f64 * 2.0 * o.latency_ms as f64 / 1000.0 / o.concurrency as f64;
        println!(
            "verify: {} tenants, {} ms latency per call, {} at a time, emulator {base} (pid {pid})",
            o.tenants, o.latency_ms, o.concurrency
        );

        // consentry's engine.
        let mut raw = RawSettings::default();
        raw.set("CONSENTRY_CLIENT_ID", DEFAULT_CLIENT_ID.to_string());
        raw.set("CONSENTRY_CLIENT_SECRET", DEFAULT_CLIENT_SECRET);
        raw.set("CONSENTRY_AUTHORITY_HOST", base.as_str());
        raw.set("CONSENTRY_GRAPH_HOST", base.as_str());
        raw.set("CONSENTRY_CA_FILE", ca_path.display().to_string());
        raw.set(
            "CONSENTRY_SESSION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        );
        let settings = raw.clone().parse().expect("settings");
        let entra = Arc::new(EntraClient::new(&settings).expect("client"));
        let engine = Arc::new(TokenEngine::new(
            entra.clone(),
            Arc::new(SystemClock),
            o.tenants.max(1),
        ));
        let ids: Vec<TenantId> = tenants
            .iter()
            .map(|t| TenantId::parse(t).expect("guid"))
            .collect();
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let failures = futures_util::stream::iter(ids)
            .map(|id| {
                let (engine, entra) = (engine.clone(), entra.clone());
                async move {
                    let Ok(token) = engine.fresh_token(id).await else {
                        return false;
                    };
                    entra
                        .organization(&token.token)
                        .await
                        .is_ok_and(|org| org.id == id.to_string())
                }
            })
            .buffer_unordered(o.concurrency)
            .filter(|ok| std::future::ready(!ok))
            .count()
            .await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid) - cpu_before;
        let (token_requests, graph_requests) = counts(&http, &base).await;
        println!("consentry_wall_seconds: {wall:.2}");
        println!("ideal_seconds: {ideal:.2}");
        println!("ratio_to_ideal: {:.3}", wall / ideal);
        println!("token_requests: {token_requests}");
        println!("graph_requests: {graph_requests}");
        println!("failures: {failures}");
        println!("peak_memory_mib: {:.1}", peak_rss_mib());
        println!("peak_memory_before_verifying_mib: {baseline_mib:.1}");
        println!("emulator_cpu_seconds: {cpu:.2}");
        println!("cached_tenants: {}", engine.cached_tenants());
        drop(engine);

        if o.instances > 0 {
            let url = o
                .database
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", dir.join("verify.db").display()));
            instances_phase(&o, &http, &base, &raw, &url, &tenants).await;
        }

        if o.skip_msal {
            return;
        }
        // MSAL for Python, the same job against the same emulator.
        let python = std::env::var("CONSENTRY_TEST_PYTHON").unwrap_or_else(|_| {
            let out = Command::new("bash")
                .arg("tests/python/setup-venv.sh")
                .output()
                .expect("bash");
            assert!(
                out.status.success(),
                "setting up MSAL for Python failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        });
        let list = dir.join("tenants.txt");
        std::fs::write(&list, tenants.join("\n")).expect("tenant list");
        http.delete(format!("{base}/_emulator/requests"))
            .send()
            .await
            .expect("reset");
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let output = tokio::process::Command::new(python)
            .arg("benches/msal_verify.py")
            .args([
                base.as_str(),
                &DEFAULT_CLIENT_ID.to_string(),
                DEFAULT_CLIENT_SECRET,
            ])
            .arg(&ca_path)
            .arg(o.concurrency.to_string())
            .arg(&list)
            // Where set, these override the `verify` the script passes (requests's rules).
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .output()
            .await
            .expect("python runs");
        let msal_wall = started.elapsed().as_secs_f64();
        assert!(
            output.status.success(),
            "MSAL run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let result: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
        let (token_requests, graph_requests) = counts(&http, &base).await;
        println!("msal_python_wall_seconds: {msal_wall:.2}");
        println!("msal_python_failures: {}", result["failed"]);
        println!("msal_python_token_requests: {token_requests}");
        println!("msal_python_graph_requests: {graph_requests}");
        println!(
            "msal_python_emulator_cpu_seconds: {:.2}",
            cpu_seconds(pid) - cpu_before
        );
        println!("speedup_vs_msal_python: {:.2}", msal_wall / wall);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every tenant due in the database at `url`, checked by the background verifier's
/// `run_due` until nothing is due: by one verifier, then by `o.instances` of them at once.
async fn instances_phase(
    o: &Options,
    http: &reqwest::Client,
    base: &str,
    raw: &RawSettings,
    url: &str,
    tenants: &[String],
) {
    let sqlite = format!(
        "sqlite://{}",
        std::env::temp_dir()
            .join(format!("consentry-bench-{}.db", uuid::Uuid::new_v4()))
            .display()
    );
    let mut walls = Vec::new();
    for (instances, url) in [(1, sqlite.as_str()), (o.instances, url)] {
        let mut raw = raw.clone();
        raw.set("CONSENTRY_DATABASE_URL", url);
        raw.set("CONSENTRY_VERIFY_CONCURRENCY", o.concurrency.to_string());
        let settings = raw.parse().expect("settings");
        // Connecting applies the migrations.
        let own = Store::connect(url).await.expect("the database");
        seed_due(url, tenants).await;
        println!(
            "instances: the verifier's job on {}, {} at a time per instance",
            consentry::store::redacted_url(url),
            o.concurrency
        );
        http.delete(format!("{base}/_emulator/requests"))
            .send()
            .await
            .expect("reset");
        let verifiers: Vec<_> = futures_util::future::join_all((0..instances).map(|_| async {
            // An instance of its own: its own pool on the database, engine and claims.
            let store = Store::connect(url).await.expect("the database");
            consentry::web::verifier_for(&settings, store).expect("verifier")
        }))
        .await;
        let started = Instant::now();
        futures_util::future::join_all(
            verifiers
                .iter()
                .map(|v| async move { while v.run_due().await.expect("checks") > 0 {} }),
        )
        .await;
        let wall = started.elapsed().as_secs_f64();
        let checks = checks_per_tenant(http, base, tenants).await;
        let (min, max) = (
            checks.iter().min().copied().unwrap_or(0),
            checks.iter().max().copied().unwrap_or(0),
        );
        let active = own
            .status_counts()
            .await
            .expect("counts")
            .into_iter()
            .find(|(status, _)| *status == consentry::domain::TenantStatus::Active)
            .map_or(0, |(_, n)| n);
        own.close().await;
        println!("instances_{instances}_wall_seconds: {wall:.2}");
        println!("instances_{instances}_checks_per_tenant_min: {min}");
        println!("instances_{instances}_checks_per_tenant_max: {max}");
        println!("instances_{instances}_active_after: {active}");
        walls.push(wall);
    }
    if let Some(path) = sqlite.strip_prefix("sqlite://") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    println!(
        "instances_wall_ratio_{}_to_1: {:.3}",
        o.instances,
        walls[1] / walls[0]
    );
}

/// The tenants as the verifier finds them between checks: active, checked before, due.
async fn seed_due(url: &str, tenants: &[String]) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("the database");
    let now = consentry::store::ts(time::OffsetDateTime::now_utc());
    let mut tx = pool.begin().await.expect("a transaction");
    for id in tenants {
        sqlx::query(
            "insert into tenant (id, status, granted_roles, consented_at, verified_at, \
             last_token_ok_at, verify_attempts, next_verify_at, created_at, updated_at) \
             values ($1, 'active', $2, $3, $3, $3, 1, $3, $3, $3) \
             on conflict (id) do update set status = 'active', granted_roles = $2, \
             verify_attempts = 1, next_verify_at = $3, updated_at = $3",
        )
        .bind(id)
        .bind(r#"["User.Read.All","Organization.Read.All"]"#)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .expect("a tenant");
    }
    tx.commit().await.expect("commit");
    pool.close().await;
}

/// Graph `GET /v1.0/organization` requests per tenant, from the emulator's log.
async fn checks_per_tenant(http: &reqwest::Client, base: &str, tenants: &[String]) -> Vec<u64> {
    let r = request_log(http, base).await;
    tenants
        .iter()
        .map(|t| r["tenants"][t]["graph_organization"].as_u64().unwrap_or(0))
        .collect()
}

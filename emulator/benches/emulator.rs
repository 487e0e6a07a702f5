//! How fast is the emulator? `cargo bench -p consentry-emulator -- [--requests N]
//! [--concurrency C] [--tenants T]`
//!
//! Starts `consentry-emulator --workers 1` as its own process (one worker thread: "one
//! core"), creates T consented tenants, then sends N client-credentials token requests
//! (round-robin over the tenants) and N Graph `GET /v1.0/organization` calls from C
//! concurrent connections in this process. Prints wall-clock throughput and, the figure
//! that matters, requests per second of the emulator's own CPU time (read from
//! /proc/PID/stat), which does not depend on how busy the load generator kept the machine.
//!
//! Then creates B more tenants in one request (`--bulk B`, default 100,000) while sending
//! Graph requests one after another, and prints how many were answered before the create
//! was, and the longest any of them waited; the same while all tenants are listed
//! (`GET /_emulator/tenants`). Then N `organizations` consent pages (which list no tenants
//! above 200), one discovery request per created tenant, and the same Graph figures while
//! `GET /_emulator/requests` reports the counts of all those tenants.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Options {
    requests: usize,
    concurrency: usize,
    tenants: usize,
    bulk: usize,
}

fn options() -> Options {
    Options {
        requests: common::arg("--requests").unwrap_or(20_000),
        concurrency: common::arg("--concurrency").unwrap_or(32),
        tenants: common::arg("--tenants").unwrap_or(1_000),
        bulk: common::arg("--bulk").unwrap_or(100_000),
    }
}

struct Run {
    wall: Duration,
    cpu: f64,
    failures: usize,
}

/// Sends `total` requests made by `make(i)` from `concurrency` tasks.
async fn drive<F, Fut>(pid: u32, total: usize, concurrency: usize, make: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let make = Arc::new(make);
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, failures, make) = (next.clone(), failures.clone(), make.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    if !make(i).await {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("load task");
    }
    let wall = started.elapsed();
    Run {
        wall,
        cpu: cpu_seconds(pid) - cpu_before,
        failures: failures.load(Ordering::Relaxed),
    }
}

fn report(name: &str, total: usize, run: &Run) {
    let secs = run.wall.as_secs_f64();
    println!("{name}_requests: {total}");
    println!("{name}_failures: {}", run.failures);
    println!("{name}_wall_seconds: {secs:.3}");
    println!("{name}_per_wall_second: {:.0}", total as f64 / secs);
    println!("{name}_emulator_cpu_seconds: {:.2}", run.cpu);
    println!(
        "{name}_per_emulator_cpu_second: {:.0}",
        total as f64 / run.cpu.max(0.01)
    );
}

/// Sends Graph `GET /v1.0/organization` requests one after another while `request` is sent
/// and its whole body received, and prints how long that took, how many Graph requests were
/// answered before it was, and the longest any of them waited. Returns the body as JSON,
/// parsed afterwards so that the parsing takes no CPU from what is measured.
async fn meanwhile(
    name: &str,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    request: reqwest::RequestBuilder,
    expected: u16,
) -> Option<Value> {
    let started = Instant::now();
    let task = tokio::spawn(async move {
        let body = async {
            let response = request.send().await.ok()?;
            if response.status() != expected {
                return None;
            }
            response.bytes().await.ok()
        }
        .await;
        (body, started.elapsed())
    });
    let (mut answered, mut longest) = (0usize, Duration::ZERO);
    while !task.is_finished() {
        let started = Instant::now();
        let ok = http
            .get(format!("{base}/v1.0/organization"))
            .bearer_auth(token)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        longest = longest.max(started.elapsed());
        if ok && !task.is_finished() {
            answered += 1;
        }
    }
    let (body, took) = task.await.expect("the request's task");
    let json = body.and_then(|b| serde_json::from_slice(&b).ok());
    println!("{name}_wall_seconds: {:.3}", took.as_secs_f64());
    println!("{name}_graph_answered_meanwhile: {answered}");
    println!(
        "{name}_graph_longest_wait_ms: {:.1}",
        longest.as_secs_f64() * 1000.0
    );
    json
}

fn outcome(name: &str, ok: bool) {
    println!("{name}: {}", if ok { "ok" } else { "FAILED" });
}

#[path = "common/mod.rs"]
mod common;

use common::{EmulatorProcess, cpu_seconds};

/// Starts `consentry-emulator --port 0 {extra}` and reads its URL from the banner.
fn start_emulator(extra: &[&str]) -> EmulatorProcess {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_consentry-emulator"));
    command.args(["--port", "0"]).args(extra);
    EmulatorProcess::start(command)
}

fn main() {
    let o = options();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let emulator = start_emulator(&["--workers", "1"]);
        let pid = emulator.child.id();
        let http = reqwest::Client::builder().pool_max_idle_per_host(o.concurrency).build().expect("client");
        let base = emulator.base.clone();
        let created: Value = http
            .post(format!("{base}/_emulator/tenants"))
            .json(&serde_json::json!({"count": o.tenants, "consented": true, "users": 1}))
            .send()
            .await
            .expect("create tenants")
            .json()
            .await
            .expect("JSON");
        let tenants: Arc<Vec<String>> = Arc::new(
            created.as_array().expect("array").iter().map(|t| t["id"].as_str().expect("id").to_owned()).collect(),
        );
        let app: Value = http.get(format!("{base}/_emulator/app")).send().await.expect("app").json().await.expect("JSON");
        let client_id = app["client_id"].as_str().expect("client id").to_owned();
        println!("emulator: {base} (pid {pid}, 1 worker), {} tenants, {} concurrent connections", tenants.len(), o.concurrency);

        let token_body = Arc::new(move |tenant: &str| {
            let _ = tenant;
            format!(
                "grant_type=client_credentials&client_id={client_id}&client_secret=consentry-emulator-secret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
            )
        });
        let (h, b, t, tb) = (http.clone(), base.clone(), tenants.clone(), token_body.clone());
        let tokens = drive(pid, o.requests, o.concurrency, move |i| {
            let (h, b, t, tb) = (h.clone(), b.clone(), t.clone(), tb.clone());
            async move {
                let tenant = &t[i % t.len()];
                h.post(format!("{b}/{tenant}/oauth2/v2.0/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(tb(tenant))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        report("token", o.requests, &tokens);

        // One token per tenant for the Graph run.
        let mut access = Vec::with_capacity(tenants.len().min(64));
        for tenant in tenants.iter().take(64) {
            let v: Value = http
                .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(token_body(tenant))
                .send()
                .await
                .expect("token")
                .json()
                .await
                .expect("JSON");
            access.push(v["access_token"].as_str().expect("token").to_owned());
        }
        let access = Arc::new(access);
        let bulk_token = access[0].clone();
        let (h, b) = (http.clone(), base.clone());
        let graph = drive(pid, o.requests, o.concurrency, move |i| {
            let (h, b, a) = (h.clone(), b.clone(), access.clone());
            async move {
                h.get(format!("{b}/v1.0/organization"))
                    .bearer_auth(&a[i % a.len()])
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        report("graph", o.requests, &graph);

        // Graph requests one after another while one request creates `bulk` tenants.
        let create = http
            .post(format!("{base}/_emulator/tenants"))
            .json(&serde_json::json!({"count": o.bulk, "users": 1}));
        let created = meanwhile("bulk_create", &http, &base, &bulk_token, create, 201).await;
        let bulk_ids: Vec<String> = created
            .as_ref()
            .and_then(Value::as_array)
            .map(|all| all.iter().filter_map(|t| t["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        outcome("bulk_create", bulk_ids.len() == o.bulk);
        let all = tenants.len() + o.bulk;

        // The same while every tenant is listed.
        let list = http.get(format!("{base}/_emulator/tenants"));
        let listed = meanwhile("list_tenants", &http, &base, &bulk_token, list, 200).await;
        outcome(
            "list_tenants",
            listed.as_ref().and_then(Value::as_array).is_some_and(|l| l.len() >= all),
        );

        // The consent page for `organizations`, which lists tenants only up to 200.
        let query = format!(
            "client_id={}&redirect_uri={}&state=s",
            app["client_id"].as_str().expect("client id"),
            app["redirect_uris"][0].as_str().expect("a redirect URI").replace(':', "%3A").replace('/', "%2F"),
        );
        let (h, b) = (http.clone(), base.clone());
        let pages = drive(pid, o.requests, o.concurrency, move |_| {
            let (h, url) = (h.clone(), format!("{b}/organizations/adminconsent?{query}"));
            async move { h.get(url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        report(&format!("organizations_consent_page_at_{all}_tenants"), o.requests, &pages);

        // Count a request for each created tenant, then read the counts meanwhile.
        let ids = Arc::new(bulk_ids);
        let (h, b, t) = (http.clone(), base.clone(), ids.clone());
        let counted = drive(pid, ids.len(), o.concurrency, move |i| {
            let (h, url) = (h.clone(), format!("{b}/{}/v2.0/.well-known/openid-configuration", t[i]));
            async move { h.get(url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
        report("discovery", ids.len(), &counted);
        let read = http.get(format!("{base}/_emulator/requests"));
        let counts = meanwhile("request_counts", &http, &base, &bulk_token, read, 200).await;
        outcome(
            "request_counts",
            counts
                .as_ref()
                .and_then(|c| c["tenants"].as_object())
                .is_some_and(|t| t.len() >= ids.len()),
        );
    });
}

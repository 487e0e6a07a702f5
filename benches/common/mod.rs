//! What the benchmarks share: their flags, `consentry emulator` as its own process (so its
//! CPU time is its own) and that CPU time (from the emulator's benchmark), and a real onboarding of Contoso through the demo's
//! emulator. Each benchmark uses a part of it.
#![allow(dead_code)]

use std::net::IpAddr;
use std::process::Command;

/// `--name value` flags, the emulator as a process and its CPU time: the emulator's
/// benchmark's, shared rather than copied.
#[path = "../../emulator/benches/common/mod.rs"]
mod process;
#[allow(unused_imports)]
pub use process::{EmulatorProcess, arg, cpu_seconds};

/// Starts `consentry emulator --port 0 {extra}` and reads its URL from the banner.
pub fn start_emulator(extra: &[&str]) -> EmulatorProcess {
    let mut command = Command::new(env!("CARGO_BIN_EXE_consentry"));
    command.args(["emulator", "--port", "0"]).args(extra);
    EmulatorProcess::start(command)
}

/// An HTTP client that does not follow redirects, from `ip` when given, keeping cookies in
/// `jar` when given.
pub fn client(
    ip: Option<IpAddr>,
    jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    if let Some(ip) = ip {
        builder = builder.local_address(ip);
    }
    if let Some(jar) = jar {
        builder = builder.cookie_provider(jar);
    }
    builder.build().expect("client")
}

/// The seeded Contoso tenant.
pub const CONTOSO: &str = "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58";

/// A real administrator: sign-up, Accept on the emulator's page for Contoso; returns the
/// callback URL and the browser that must open it.
pub async fn real_consent(base: &str, emulator: &str) -> (String, reqwest::Client) {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let browser = client(None, Some(jar));
    let landing = browser
        .get(format!("{base}/"))
        .send()
        .await
        .expect("landing");
    let html = landing.text().await.expect("html");
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("csrf field") + marker.len();
    let csrf = &html[start..start + html[start..].find('"').expect("quote")];
    let to_microsoft = browser
        .post(format!("{base}/signup"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .expect("sign-up");
    let location = to_microsoft.headers()["location"].to_str().expect("ascii");
    let url = url::Url::parse(location).expect("absolute");
    let back = client(None, None)
        .post(format!("{emulator}{}", url.path()))
        .form(&[
            ("request", url.query().unwrap_or_default()),
            ("decision", "accept"),
            ("tenant", CONTOSO),
        ])
        .send()
        .await
        .expect("consent");
    let callback = back.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    (callback, browser)
}

/// The path and query of a callback URL.
pub fn strip(url: &str) -> &str {
    url.find("/consent/callback")
        .map(|i| &url[i..])
        .unwrap_or(url)
}

/// `consentry demo` in this process, on port 0, with a fresh SQLite file that goes with it.
pub struct DemoRun {
    /// consentry's URL.
    pub base: String,
    /// The emulator's URL.
    pub emulator: String,
    /// `sqlite://...`
    pub database: String,
    /// The database file (`-wal` and `-shm` beside it).
    pub path: std::path::PathBuf,
}

impl DemoRun {
    /// Starts the demo and serves it in the background; `name` goes into the file's name.
    pub async fn start(name: &str) -> DemoRun {
        let path =
            std::env::temp_dir().join(format!("consentry-{name}-{}.db", uuid::Uuid::new_v4()));
        let database = format!("sqlite://{}", path.display());
        let demo = consentry::demo::Demo::start(consentry::demo::DemoOptions {
            port: 0,
            emulator_port: 0,
            inbox_port: 0,
            database: database.clone(),
        })
        .await
        .expect("the demo starts");
        let run = DemoRun {
            base: demo.public_url.clone(),
            emulator: demo.emulator.base_url().to_owned(),
            database,
            path,
        };
        tokio::spawn(demo.run_until_stopped());
        run
    }
}

impl Drop for DemoRun {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

/// What one endpoint did over all its rounds of load.
#[derive(Default)]
pub struct Run {
    pub latencies: Vec<std::time::Duration>,
    pub wall: std::time::Duration,
    /// Answers other than 200, by status (0: no answer).
    pub failures: std::collections::BTreeMap<u16, usize>,
}

impl Run {
    /// Prints the figures under `name`; returns (requests a second, p50 in ms).
    pub fn report(&mut self, name: &str) -> (f64, f64) {
        self.latencies.sort();
        let at = |q: f64| {
            let i = ((self.latencies.len() as f64 * q) as usize).min(self.latencies.len() - 1);
            self.latencies[i].as_secs_f64() * 1000.0
        };
        let rate = self.latencies.len() as f64 / self.wall.as_secs_f64();
        println!("  {name}_requests: {}", self.latencies.len());
        println!("  {name}_failures: {:?}", self.failures);
        println!("  {name}_per_second: {rate:.0}");
        println!("  {name}_p50_ms: {:.2}", at(0.50));
        println!("  {name}_p99_ms: {:.2}", at(0.99));
        (rate, at(0.50))
    }

    /// `n` requests made by `request` from one task per client, added to this run. Each
    /// body is read, so that connections are kept alive.
    pub async fn round<C, F>(&mut self, clients: &[C], n: usize, request: F)
    where
        C: Clone + Send + 'static,
        F: Fn(&C) -> reqwest::RequestBuilder + Clone + Send + 'static,
    {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Instant;
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = clients
            .iter()
            .cloned()
            .map(|client| {
                let (next, request) = (next.clone(), request.clone());
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let sent = Instant::now();
                        let status = match request(&client).send().await {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let _ = r.bytes().await;
                                status
                            }
                            Err(_) => 0,
                        };
                        seen.push((sent.elapsed(), status));
                    }
                    seen
                })
            })
            .collect();
        for task in tasks {
            for (took, status) in task.await.expect("a client task") {
                self.latencies.push(took);
                if status != 200 {
                    *self.failures.entry(status).or_default() += 1;
                }
            }
        }
        self.wall += started.elapsed();
    }
}

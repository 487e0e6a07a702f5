//! `kill -9` during hundreds of concurrent onboardings: after a restart on the same
//! database, every callback that was answered with the redirect to the status page has
//! its tenant recorded. Also the subprocess helpers `tests/api/logs.rs` uses.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use consentry::emulator::DEFAULT_CLIENT_ID;
use consentry::store::Store;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::app_helpers::hidden;
use crate::helpers::{TestEmulator, spawn_emulator_with};

/// A port nobody listens on now (bound, read, released), so that the emulator can be
/// told consentry's redirect URI before consentry starts.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// What a `consentry serve` subprocess needs: where it listens and its database, and the
/// emulator it is pointed at.
pub struct ServeConfig {
    pub port: u16,
    pub database_url: String,
    pub emulator_base: String,
    pub client_secret: String,
    pub session_key: String,
    /// Extra variables (`RUST_LOG`, ...).
    pub env: Vec<(String, String)>,
}

impl ServeConfig {
    pub fn new(port: u16, emulator: &TestEmulator) -> ServeConfig {
        let db = std::env::temp_dir().join(format!("consentry-proc-{}.db", uuid::Uuid::new_v4()));
        ServeConfig {
            port,
            database_url: format!("sqlite://{}", db.display()),
            emulator_base: emulator.base.clone(),
            client_secret: emulator.client_secret.clone(),
            session_key: base64::engine::general_purpose::STANDARD.encode(
                [
                    uuid::Uuid::new_v4().into_bytes(),
                    uuid::Uuid::new_v4().into_bytes(),
                ]
                .concat(),
            ),
            env: Vec::new(),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `consentry serve` configured only by this (no inherited `CONSENTRY_*`), not started.
    pub fn serve_command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_consentry"));
        for (key, _) in std::env::vars() {
            if key.starts_with("CONSENTRY_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .arg("serve")
            .env("CONSENTRY_CLIENT_ID", DEFAULT_CLIENT_ID.to_string())
            .env("CONSENTRY_CLIENT_SECRET", &self.client_secret)
            .env("CONSENTRY_AUTHORITY_HOST", &self.emulator_base)
            .env("CONSENTRY_GRAPH_HOST", &self.emulator_base)
            .env("CONSENTRY_PUBLIC_URL", self.base())
            .env("CONSENTRY_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("CONSENTRY_DATABASE_URL", &self.database_url)
            .env("CONSENTRY_SESSION_KEY", &self.session_key)
            .env("CONSENTRY_VERIFY_DEADLINE", "30s")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// The SQLite files, removed by the test at the end.
    pub fn remove_database(&self) {
        let path = self.database_url.trim_start_matches("sqlite://");
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}

/// A running `consentry serve`, its stdout and stderr collected as they come.
pub struct Served {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Served {
    /// Starts [`ServeConfig::serve_command`] and waits until `/health` answers 200.
    pub async fn start(config: &ServeConfig) -> Served {
        let mut command = config.serve_command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("consentry serve starts");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        readers.push(tokio::spawn(collect(stdout, output.clone())));
        readers.push(tokio::spawn(collect(stderr, output.clone())));
        let served = Served {
            child,
            output,
            readers,
        };
        served.wait_healthy(&config.base()).await;
        served
    }

    async fn wait_healthy(&self, base: &str) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{base}/health")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "consentry serve never answered /health: {}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Everything it wrote so far, stdout and stderr interleaved.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().expect("lock")).into_owned()
    }

    /// SIGKILL (`kill -9`): no shutdown code runs.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("kill");
        let _ = self.child.wait().await;
    }

    /// Kills it and returns everything it wrote.
    pub async fn finish(mut self) -> String {
        self.kill().await;
        for reader in self.readers.drain(..) {
            let _ = reader.await;
        }
        self.output()
    }
}

async fn collect(mut from: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into.lock().expect("lock").extend_from_slice(&buf[..n]),
        }
    }
}

/// A browser with its own cookie jar, connecting from its own loopback address (sign-ups
/// are rate-limited per address, and each onboarding here is a different customer).
fn browser(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(Policy::none())
        .local_address(IpAddr::V4(source))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// How one onboarding ended.
pub enum Ended {
    /// The callback answered 303 to the status page.
    Answered,
    /// Anything else, at whichever step (the kill cuts most of these short).
    Cut(String),
}

/// Sign-up, consent on the emulator's page, callback: the steps a browser takes.
pub async fn onboard(
    base: &str,
    emulator: &TestEmulator,
    tenant: &str,
    source: Ipv4Addr,
) -> Result<Ended, reqwest::Error> {
    let http = browser(source);
    let landing = http.get(format!("{base}/")).send().await?;
    if landing.status() != 200 {
        return Ok(Ended::Cut(format!("landing {}", landing.status())));
    }
    let csrf = hidden(&landing.text().await?, "csrf");
    let signup = http
        .post(format!("{base}/signup"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await?;
    if signup.status() != 303 {
        return Ok(Ended::Cut(format!("sign-up {}", signup.status())));
    }
    let to_microsoft = signup.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let callback = emulator.decide(&to_microsoft, "accept", Some(tenant)).await;
    let back = http.get(&callback).send().await?;
    let to_status = back
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.ends_with("/consent/status"));
    if back.status() == 303 && to_status {
        Ok(Ended::Answered)
    } else {
        Ok(Ended::Cut(format!("callback {}", back.status())))
    }
}

/// The first `n` tenants of the emulator (generated ones, asked for with
/// `generate_tenants`), asserting there are that many.
pub async fn generated_tenants(emulator: &TestEmulator, n: usize) -> Vec<String> {
    let (status, listing) = emulator
        .control(reqwest::Method::GET, "/tenants", None)
        .await;
    assert_eq!(status, 200);
    let tenants: Vec<String> = listing
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .take(n)
        .collect();
    assert_eq!(tenants.len(), n);
    tenants
}

const ONBOARDINGS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_answered_callback_is_lost_when_the_process_is_killed() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let emulator = spawn_emulator_with(|c| {
        c.redirect_uris = vec![format!("{base}/consent/callback")];
        c.generate_tenants = ONBOARDINGS as u32;
        c.users_per_generated_tenant = 1;
        c.workers = Some(2);
    })
    .await;
    let tenants = generated_tenants(&emulator, ONBOARDINGS).await;

    let config = ServeConfig::new(port, &emulator);
    let mut served = Served::start(&config).await;

    let emulator = Arc::new(emulator);
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let answered_count = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut onboardings = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let (base, emulator, tenant) = (base.clone(), emulator.clone(), tenant.clone());
        let (answered, answered_count) = (answered.clone(), answered_count.clone());
        let finished = finished.clone();
        let source = Ipv4Addr::new(127, 3, (i / 250) as u8, (i % 250 + 1) as u8);
        onboardings.push(tokio::spawn(async move {
            let ended = onboard(&base, &emulator, &tenant, source).await;
            finished.fetch_add(1, Ordering::SeqCst);
            match ended {
                Ok(Ended::Answered) => {
                    answered.lock().expect("lock").push(tenant);
                    answered_count.fetch_add(1, Ordering::SeqCst);
                    None
                }
                Ok(Ended::Cut(why)) => Some(why),
                Err(e) => Some(format!("{e}")),
            }
        }));
    }

    // Midway: once a third of the callbacks have been answered.
    let kill_at = ONBOARDINGS / 3;
    while answered_count.load(Ordering::SeqCst) < kill_at
        && finished.load(Ordering::SeqCst) < ONBOARDINGS
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    served.kill().await;
    let at_kill = answered_count.load(Ordering::SeqCst);

    let mut cut = 0;
    for onboarding in onboardings {
        if onboarding.await.expect("the task ends").is_some() {
            cut += 1;
        }
    }
    let answered = answered.lock().expect("lock").clone();
    println!(
        "{ONBOARDINGS} onboardings: killed with {at_kill} callbacks answered; {} answered in \
         all (the kill raced a few), {cut} cut short",
        answered.len()
    );

    // Restart on the same database: it must open, and hold every answered callback.
    let restarted = Served::start(&config).await;
    let store = Store::connect(&config.database_url).await.expect("store");
    let mut lost = Vec::new();
    for tenant in &answered {
        let id = consentry::domain::TenantId::parse(tenant).expect("guid");
        if store.tenant(id).await.expect("store").is_none() {
            lost.push(tenant.clone());
        }
    }
    store.close().await;
    let output = restarted.finish().await;
    config.remove_database();
    println!(
        "after the restart: {} of {} answered callbacks have their tenant; lost: {}",
        answered.len() - lost.len(),
        answered.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "lost tenants: {lost:?}\n{output}");
    assert!(!answered.is_empty());
}

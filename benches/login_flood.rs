//! A flood of failed operator logins against `consentry serve`, run as its own process: how
//! many attempts were evaluated (Argon2, 19 MiB each) and refused, and the server's peak
//! memory (VmHWM, from /proc) before and after.
//!
//! ```sh
//! cargo bench --bench login_flood                                   # 1,000 at once, one address, one name
//! cargo bench --bench login_flood -- --addresses 200 --names 1000  # spread over 127.0.0.2-201 and 1,000 names
//! ```
//!
//! Every attempt is sent at once, each on a connection of its own; `--addresses N` makes them
//! come from N loopback addresses (127.0.0.2 onwards), `--names M` spreads them over M
//! operator names. Linux only (/proc).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

const OPERATOR: &str = "ops";

struct Options {
    attempts: usize,
    addresses: usize,
    names: usize,
}

fn options() -> Options {
    let mut options = Options {
        attempts: 1000,
        addresses: 1,
        names: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| panic!("{name} takes a positive number"))
        };
        match arg.as_str() {
            "--attempts" => options.attempts = value("--attempts"),
            "--addresses" => options.addresses = value("--addresses").min(250),
            "--names" => options.names = value("--names"),
            // `cargo bench` passes --bench.
            _ => {}
        }
    }
    options
}

/// `consentry serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn configured(database: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_consentry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONSENTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd.env(
        "CONSENTRY_CLIENT_ID",
        "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90",
    )
    .env(
        "CONSENTRY_CLIENT_SECRET",
        "not used: no tenant is ever checked",
    )
    .env(
        "CONSENTRY_SESSION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )
    .env("CONSENTRY_DATABASE_URL", database)
    .env("CONSENTRY_LISTEN", "127.0.0.1:0");
    cmd
}

fn start_server(database: &str) -> Server {
    let status = configured(database)
        .args(["operators", "add", OPERATOR])
        .env(
            "CONSENTRY_OPERATOR_PASSWORD",
            "the operator's real password",
        )
        .stdout(Stdio::null())
        .status()
        .expect("consentry operators add");
    assert!(status.success(), "operators add failed");
    let mut child = configured(database)
        .arg("serve")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("consentry serve starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.expect("log");
        if line.contains("consentry is serving") {
            port = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("port="))
                .map(str::to_owned);
            break;
        }
    }
    // Keep draining the log (one line per request) so the server never blocks on it.
    std::thread::spawn(move || lines.for_each(drop));
    Server {
        child,
        base: format!("http://127.0.0.1:{}", port.expect("the log names the port")),
    }
}

/// `VmHWM` (peak resident memory) and `VmRSS` of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc (Linux only)");
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .expect("a kB figure")
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A client sending from `address`, with the login form's CSRF token and cookie.
async fn client(base: &str, address: IpAddr) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .local_address(address)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let html = http
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let csrf = html[start..start + html[start..].find('"').expect("quote")].to_owned();
    (http, csrf)
}

#[tokio::main]
async fn main() {
    let options = options();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let db = std::env::temp_dir().join(format!("consentry-login-flood-{}.db", std::process::id()));
    let database = format!("sqlite://{}", db.display());
    let server = start_server(&database);
    let pid = server.child.id();

    let mut clients = Vec::new();
    for i in 0..options.addresses {
        // 127.0.0.2 onwards: every 127/8 address is this machine's (loopback).
        let address = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8));
        clients.push(client(&server.base, address).await);
    }
    let (hwm_before, rss_before) = memory_mib(pid);

    let started = Instant::now();
    let answers = join_all((0..options.attempts).map(|i| {
        let (http, csrf) = &clients[i % clients.len()];
        let name = if options.names == 1 {
            OPERATOR.to_owned()
        } else {
            format!("name-{}", i % options.names)
        };
        let url = format!("{}/admin/login", server.base);
        async move {
            let response = http
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", name.as_str()),
                    ("password", &format!("wrong guess {i}")),
                ])
                .send()
                .await;
            match response {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) => format!(
                    "error ({})",
                    if e.is_connect() { "connect" } else { "other" }
                ),
            }
        }
    }))
    .await;
    let took = started.elapsed();
    // Whatever the server still holds a moment later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (hwm_after, rss_after) = memory_mib(pid);

    let mut by_answer: BTreeMap<String, usize> = BTreeMap::new();
    for answer in answers {
        *by_answer.entry(answer).or_default() += 1;
    }
    let count = |status: &str| by_answer.get(status).copied().unwrap_or(0);
    println!(
        "{} failed logins at once from {} address(es) for {} name(s), in {:.2} s",
        options.attempts,
        options.addresses,
        options.names,
        took.as_secs_f64()
    );
    println!(
        "  evaluated (401, Argon2 ran)     {}\n  refused by the limit (429)      {}\n  refused, checks busy (503)      {}",
        count("401"),
        count("429"),
        count("503")
    );
    for (answer, n) in &by_answer {
        if !["401", "429", "503"].contains(&answer.as_str()) {
            println!("  other: {answer}                   {n}");
        }
    }
    println!(
        "  server peak RSS (VmHWM)         {hwm_before:.1} MiB before, {hwm_after:.1} MiB after"
    );
    println!(
        "  server RSS now (VmRSS)          {rss_before:.1} MiB before, {rss_after:.1} MiB after"
    );
    drop(server);
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

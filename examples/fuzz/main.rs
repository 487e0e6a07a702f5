//! Fires malformed and hostile requests at consentry and its emulator, both started in
//! this process, and prints what came back. Exits 1 on any violation: a 5xx other than a
//! 503 with Retry-After, injected markup reflected unescaped in an HTML page, a header
//! injected through an input, or a server not answering afterwards.
//!
//! ```sh
//! cargo run --release --example fuzz -- --requests 100000 [--seed N] [--concurrency N]
//! ```
//!
//! Logs go to stderr at `error` unless `RUST_LOG` says otherwise.

mod hostile;

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Instant;

use base64::Engine;
use consentry::config::RawSettings;
use consentry::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};
use consentry::store::Store;
use consentry::web::Application;

const OPERATOR: &str = "fuzz-operator";

struct Options {
    requests: usize,
    seed: u64,
    concurrency: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        requests: 10_000,
        seed: 1,
        concurrency: 64,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.replace('_', "").parse::<u64>().ok())
                .ok_or_else(|| format!("{name} takes a number"))
        };
        match flag.as_str() {
            "--requests" => options.requests = value("--requests")? as usize,
            "--seed" => options.seed = value("--seed")?,
            "--concurrency" => options.concurrency = value("--concurrency")?.max(1) as usize,
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: fuzz [--requests N] [--seed N] [--concurrency N]"
                ));
            }
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    consentry::telemetry::init_with_default("error");
    let _ = rustls::crypto::ring::default_provider().install_default();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind consentry");
    let app_addr: SocketAddr = listener.local_addr().expect("address");
    let public_url = format!("http://{app_addr}");
    let emulator = Emulator::build(EmulatorConfig {
        port: 0,
        redirect_uris: vec![format!("{public_url}/consent/callback")],
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts");
    let emulator_url = emulator.base_url().to_owned();
    let emulator_addr: SocketAddr = emulator_url
        .trim_start_matches("http://")
        .parse()
        .expect("the emulator's address");
    tokio::spawn(emulator.run_until_stopped());

    let db_path = std::env::temp_dir().join(format!("consentry-fuzz-{}.db", uuid::Uuid::new_v4()));
    let database_url = format!("sqlite://{}", db_path.display());
    let mut raw = RawSettings::default();
    raw.set("CONSENTRY_CLIENT_ID", DEFAULT_CLIENT_ID.to_string());
    raw.set("CONSENTRY_CLIENT_SECRET", DEFAULT_CLIENT_SECRET);
    raw.set("CONSENTRY_AUTHORITY_HOST", emulator_url.as_str());
    raw.set("CONSENTRY_GRAPH_HOST", emulator_url.as_str());
    raw.set("CONSENTRY_PUBLIC_URL", public_url.as_str());
    raw.set("CONSENTRY_DATABASE_URL", database_url.as_str());
    raw.set(
        "CONSENTRY_SESSION_KEY",
        base64::engine::general_purpose::STANDARD.encode([42u8; 32]),
    );
    let settings = raw.parse().expect("settings");
    let app = Application::build(settings, listener)
        .await
        .expect("consentry starts");
    tokio::spawn(app.run_until_stopped());

    let password = uuid::Uuid::new_v4().to_string();
    let store = Store::connect(&database_url).await.expect("store");
    let hash = consentry::domain::password::hash_password(&password).expect("hash");
    store
        .upsert_operator(OPERATOR, &hash, time::OffsetDateTime::now_utc())
        .await
        .expect("operator");
    store.close().await;

    println!(
        "fuzz: {} requests, seed {}, at most {} at once; consentry {public_url}, emulator {emulator_url}\n",
        options.requests, options.seed, options.concurrency
    );
    let ctx = hostile::prepare(
        app_addr,
        emulator_addr,
        (OPERATOR, &password),
        (&DEFAULT_CLIENT_ID.to_string(), DEFAULT_CLIENT_SECRET),
        options.seed,
    )
    .await;
    let started = Instant::now();
    let report = hostile::run(&ctx, options.requests, options.seed, options.concurrency).await;
    let elapsed = started.elapsed();
    report.print();
    println!(
        "\n{} requests in {:.1} s ({:.0} a second)",
        report.requests,
        elapsed.as_secs_f64(),
        report.requests as f64 / elapsed.as_secs_f64()
    );
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db_path.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
    if report.failures().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

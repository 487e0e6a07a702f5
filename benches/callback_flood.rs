//! A flood of refused consent callbacks: what it costs us.
//!
//! `cargo bench --bench callback_flood -- --requests 20000 --addresses 200 --concurrency 64`
//! (the defaults). Starts `consentry demo` in-process on port 0 with a fresh database,
//! makes one real onboarding, then floods `/consent/callback` from `--addresses` loopback
//! addresses (127.0.x.y): forged callbacks with states we never issued, and replays of the
//! real callback. Prints the answers by status, the rows written to each table during the
//! flood and per refused callback, and the database's growth. A real sign-up made after
//! the flood must still go through.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use base64::Engine;
use futures_util::StreamExt;
use sqlx::sqlite::SqlitePoolOptions;

mod common;

use common::{client, real_consent, strip};

struct Options {
    requests: usize,
    addresses: usize,
    concurrency: usize,
}

fn options() -> Options {
    Options {
        requests: common::arg("--requests").unwrap_or(20_000),
        addresses: common::arg("--addresses")
            .unwrap_or(200)
            .clamp(1, 250 * 250),
        concurrency: common::arg("--concurrency").unwrap_or(64),
    }
}

fn random_state() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat(),
    )
}

async fn rows(db: &sqlx::SqlitePool) -> [(String, i64); 3] {
    let mut out = [
        ("tenant_event".to_owned(), 0),
        ("consent_request".to_owned(), 0),
        ("tenant".to_owned(), 0),
    ];
    for (table, n) in out.iter_mut() {
        *n = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(db)
            .await
            .expect("count");
    }
    out
}

fn file_size(path: &str) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|s| {
            std::fs::metadata(format!("{path}{s}"))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::main]
async fn main() {
    let o = options();
    let run = common::DemoRun::start("flood").await;
    let (base, emulator, database) = (run.base.clone(), run.emulator.clone(), run.database.clone());
    let db = SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&database)
        .await
        .expect("the database");

    let (callback, admin) = real_consent(&base, &emulator).await;
    let first = admin
        .get(format!("{base}{}", strip(&callback)))
        .send()
        .await
        .expect("callback");
    assert_eq!(first.status(), 303, "the real callback is accepted");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let before = rows(&db).await;
    let size_before = file_size(&run.path.display().to_string());

    // The flood: each address sends its share; a tenth of the requests replay the real
    // callback URL (its state is stored and used), the rest carry states never issued.
    let clients: Vec<reqwest::Client> = (0..o.addresses)
        .map(|i| {
            client(
                Some(IpAddr::V4(Ipv4Addr::new(
                    127,
                    1,
                    (i / 250) as u8,
                    (i % 250 + 1) as u8,
                ))),
                None,
            )
        })
        .collect();
    let replay = strip(&callback).to_owned();
    let started = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(0..o.requests)
        .map(|i| {
            let http = clients[i % clients.len()].clone();
            let url = if i % 10 == 0 {
                format!("{base}{replay}")
            } else {
                format!(
                    "{base}/consent/callback?admin_consent=True&tenant=3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58&state={}",
                    random_state()
                )
            };
            async move {
                http.get(url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        })
        .buffer_unordered(o.concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let after = rows(&db).await;
    let size_after = file_size(&run.path.display().to_string());

    let mut by_status = std::collections::BTreeMap::new();
    for s in &statuses {
        *by_status.entry(*s).or_insert(0u64) += 1;
    }
    let refused = statuses.iter().filter(|s| **s == 400 || **s == 429).count() as f64;
    let written: i64 = after.iter().zip(&before).map(|(a, b)| a.1 - b.1).sum();
    println!(
        "callback_flood: {} requests from {} addresses, {} at a time",
        o.requests, o.addresses, o.concurrency
    );
    println!(
        "  wall_seconds: {elapsed:.2}  requests_per_second: {:.0}",
        o.requests as f64 / elapsed
    );
    println!("  by_status: {by_status:?}");
    for ((table, a), (_, b)) in after.iter().zip(&before) {
        println!("  rows_written.{table}: {}", a - b);
    }
    println!(
        "  rows_written_per_refused_callback: {:.5}",
        written as f64 / refused.max(1.0)
    );
    println!(
        "  database_growth_bytes: {}",
        size_after.saturating_sub(size_before)
    );

    // A real administrator still gets through.
    let (callback, admin) = real_consent(&base, &emulator).await;
    let status = admin
        .get(format!("{base}{}", strip(&callback)))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    println!("  real_callback_after_flood: {status}");
    db.close().await;
}

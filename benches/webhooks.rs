//! Webhook deliveries to a local receiver: a backlog of pending events drained, then events
//! written one by one while the worker runs.
//!
//! `cargo bench --bench webhooks -- --events 10000 --live 1000 --live-rate 100` (the
//! defaults). Writes `--events` events into a fresh database's outbox (each a real change:
//! the app's credential alert raised or cleared, its event and one delivery written in one
//! transaction) for one endpoint, a receiver in this process (actix-web on port 0,
//! answering 204 and noting when each `webhook-id` arrived). Then starts consentry as
//! `serve` does (the worker under its supervisor, 16 deliveries in flight) and measures:
//!
//! - backlog: deliveries a second, from the start until the last one arrived;
//! - live: `--live` events written `--live-rate` a second while the worker runs, and the
//!   lag of each from its `created_at` to its arrival (p50, p99, max): what a receiver
//!   waits for an event when nothing is queued.
//!
//! Measured on the 2-core development machine, shared with other builds (release, four
//! runs of the defaults): backlog 2,540 to 3,300 deliveries a second (10,000 in 3.0 to
//! 3.9 s); live lag p50 0.53 to 0.55 s, p99 1.00 s, max 1.01 to 1.04 s; never a request
//! more than events. The live lag is the worker's one-second poll (an event waits half of
//! it on average); the backlog rate is bound by SQLite's one writer: a write to record
//! each attempt, and one claim per batch of 8 to 16. (Claiming one delivery per finished
//! send, two writes a delivery, gave about 1,500 a second.)

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use consentry::config::RawSettings;
use consentry::domain::webhook::EventFilter;
use consentry::store::{NewEndpoint, RaisedAlert, Store};
use consentry::web::Application;
use time::OffsetDateTime;

mod common;

use common::arg;

/// When each `webhook-id` first arrived, and how many requests came in all.
#[derive(Default)]
struct Arrivals {
    first: HashMap<String, OffsetDateTime>,
    requests: usize,
}

async fn receive(request: HttpRequest, arrivals: web::Data<Mutex<Arrivals>>) -> HttpResponse {
    let at = OffsetDateTime::now_utc();
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
    arrivals.requests += 1;
    arrivals.first.entry(id).or_insert(at);
    HttpResponse::NoContent().finish()
}

/// Toggles the app's credential alert: each call is one change and one event.
async fn write_event(store: &Store, i: usize) {
    let alert = i.is_multiple_of(2).then_some(RaisedAlert {
        code: "AADSTS7000215",
        headline: "The client secret is invalid",
        message: "Microsoft refuses the app's client secret.",
    });
    let changed = store
        .set_app_alert(alert, OffsetDateTime::now_utc())
        .await
        .expect("the event is written");
    assert!(changed);
}

async fn wait_for(arrivals: &Mutex<Arrivals>, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while arrivals.lock().expect("lock").first.len() < n {
        assert!(Instant::now() < deadline, "deliveries stopped arriving");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64()
}

#[tokio::main]
async fn main() {
    let events: usize = arg("--events").unwrap_or(10_000);
    let live: usize = arg("--live").unwrap_or(1000);
    let live_rate: f64 = arg("--live-rate").unwrap_or(100.0);

    // The receiver.
    let arrivals = web::Data::new(Mutex::new(Arrivals::default()));
    let receiver = TcpListener::bind("127.0.0.1:0").expect("bind");
    let receiver_url = format!("http://{}/hook", receiver.local_addr().expect("an address"));
    let shared = arrivals.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(shared.clone())
            .route("/hook", web::post().to(receive))
    })
    .workers(1)
    .listen(receiver)
    .expect("listen")
    .run();
    tokio::spawn(server);

    // The backlog, written before the worker runs.
    let db = std::env::temp_dir().join(format!("consentry-bench-{}.db", uuid::Uuid::new_v4()));
    let database_url = format!("sqlite://{}", db.display());
    let store = Store::connect(&database_url).await.expect("store");
    store
        .create_endpoint(
            &NewEndpoint {
                url: &receiver_url,
                description: "bench",
                filter: &EventFilter::all(),
                secret_salt: "bench-salt",
            },
            OffsetDateTime::now_utc(),
        )
        .await
        .expect("endpoint");
    let writing = Instant::now();
    for i in 0..events {
        write_event(&store, i).await;
    }
    let written_in = writing.elapsed();

    // consentry, as `serve` runs it (no tenants: only the worker has work).
    let mut raw = RawSettings::default();
    raw.set(
        "CONSENTRY_CLIENT_ID",
        "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90",
    );
    raw.set("CONSENTRY_CLIENT_SECRET", "unused");
    raw.set("CONSENTRY_DATABASE_URL", database_url.as_str());
    raw.set(
        "CONSENTRY_SESSION_KEY",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    );
    raw.set("CONSENTRY_WEBHOOK_ALLOW_PRIVATE", "true");
    let settings = raw.parse().expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let app = Application::build(settings, listener)
        .await
        .expect("consentry starts");
    let started = Instant::now();
    tokio::spawn(app.run_until_stopped());
    wait_for(&arrivals, events).await;
    let drained_in = started.elapsed();

    // Live: events written one by one at `live_rate` while the worker runs.
    let pace = Duration::from_secs_f64(1.0 / live_rate);
    let live_started = Instant::now();
    for i in 0..live {
        write_event(&store, events + i).await;
        let due = pace.mul_f64((i + 1) as f64);
        if let Some(wait) = due.checked_sub(live_started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    wait_for(&arrivals, events + live).await;

    // Lags of the live events, from their created_at to their arrival.
    let mut created = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .webhook_events(after.as_deref(), None, None, 1000)
            .await
            .expect("events");
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        for event in page {
            created.insert(event.id, event.created_at);
        }
    }
    let arrivals = std::mem::take(&mut *arrivals.lock().expect("lock"));
    let mut ids: Vec<&String> = created.keys().collect();
    ids.sort();
    let mut lags: Vec<Duration> = ids[events..]
        .iter()
        .map(|id| {
            let at = consentry::store::parse_ts(&created[*id]).expect("a timestamp");
            let arrived = arrivals.first[*id];
            Duration::try_from(arrived - at).unwrap_or_default()
        })
        .collect();
    lags.sort();

    println!("webhook deliveries to one local receiver (204), 16 in flight:");
    println!(
        "  backlog_written: {events} events in {:.1} s",
        written_in.as_secs_f64()
    );
    println!("  backlog_drained_s: {:.2}", drained_in.as_secs_f64());
    println!(
        "  backlog_deliveries_per_second: {:.0}",
        events as f64 / drained_in.as_secs_f64()
    );
    println!("  live_events: {live} at {live_rate}/s");
    println!("  live_lag_p50_s: {:.3}", percentile(&lags, 0.50));
    println!("  live_lag_p99_s: {:.3}", percentile(&lags, 0.99));
    println!(
        "  live_lag_max_s: {:.3}",
        lags.last().map(Duration::as_secs_f64).unwrap_or_default()
    );
    println!(
        "  requests: {} for {} events (more would be a delivery sent twice)",
        arrivals.requests,
        arrivals.first.len()
    );

    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

//! Cached tokens through the API against `/health`, on one server in one run.
//!
//! `cargo bench --bench api -- --requests 20000 --concurrency 32` (the defaults). Starts
//! `consentry demo` in-process on port 0 with a fresh database, onboards Contoso through the
//! emulator, waits until it is active, creates one `tokens:issue` key per client task (the
//! per-key limit, a burst of 1,000 then 500/s, would otherwise be what is measured) and
//! warms the token cache. Then `--requests` `GET /health` and as many
//! `POST /api/v1/tenants/{id}/token`, in alternating rounds (health, token, health, token:
//! noise hits both), each from `--concurrency` tasks with a keep-alive client apiece.
//! Prints each endpoint's rate and p50/p99 latency, and the token/health ratio (target: at
//! least 0.8, token p99 under 5 ms).
//!
//! Measured on the 2-core development machine, shared with other builds (release, the
//! defaults). Before group commit and the caches, the route made three database round
//! trips, one a commit of its own: health 36,000 to 46,000/s, token 3,900/s (p50 7.5 ms,
//! p99 18.5 to 21.8 ms), ratio 0.08 to 0.11. Now (`store::EventWriter` writes the events of
//! concurrent requests in one statement; keys and tenant rows are cached for 2 s and 1 s),
//! three runs: health 38,100 / 40,600 / 69,100/s (p99 4.1 / 2.9 / 1.9 ms), token 17,000 /
//! 21,200 / 32,300/s (p50 1.40 / 1.26 / 0.88 ms, p99 9.0 / 5.2 / 3.3 ms): ratio 0.45 to
//! 0.52, still short of 0.8, and p99 around the 5 ms target depending on the other load.
//! One at a time (`--concurrency 1 --requests 900`): health p50 0.02 ms, token p50 0.17 ms
//! (p99 0.59 ms; every request waits for its own commit), 5,400/s.
//!
//! Where the rest goes (`perf record -F 1999` of 60,000 requests of each endpoint alone,
//! client and server in this one process): about 49 us of CPU per token request against
//! 25 us per health request. Of the 24 us more: 10 us on SQLite's connection thread, half
//! of it the scheduler waking that thread and switching to it once per batch (batches
//! average about 10 events at 32 clients), the rest the WAL writes and the three b-tree
//! inserts per event; 8 us on the actix workers (the key's SHA-256 and checks, JSON with a
//! 1.5 KB token, two route regexes, handing the event to the writer and being woken by its
//! acknowledgement); 5.5 us on the Tokio runtime (the writer task, and the client reading
//! the larger body). Two experiments, not kept, place the gap: with the event's write
//! skipped, the route reached 0.84 and 1.05 of health in two runs, so the rest of it meets
//! the target; with the writer pausing 200 us to gather batches of about 20 events instead
//! of 10, nothing changed, so the cost is per event (SQLite's inserts into the table and its
//! three indexes, and the WAL pages they fill), not per commit. What is left is the price of
//! a durable row per token through one SQLite connection on two cores that also run the
//! client.

use std::time::{Duration, Instant};

use consentry::domain::TenantId;
use consentry::domain::api_key::{ApiKeySecret, Scope};
use consentry::store::{NewApiKey, Store};

mod common;

use common::{CONTOSO, Run, client, real_consent, strip};

/// Rounds of each endpoint, alternating.
const ROUNDS: usize = 4;

#[tokio::main]
async fn main() {
    let requests: usize = common::arg("--requests").unwrap_or(20_000);
    let concurrency: usize = common::arg::<usize>("--concurrency").unwrap_or(32).max(1);
    let run = common::DemoRun::start("api").await;
    let (base, emulator, database) = (run.base.clone(), run.emulator.clone(), run.database.clone());

    let (callback, admin) = real_consent(&base, &emulator).await;
    let answer = admin
        .get(format!("{base}{}", strip(&callback)))
        .send()
        .await
        .expect("callback");
    assert_eq!(answer.status(), 303, "the callback is accepted");
    let store = Store::connect(&database).await.expect("the database");
    let contoso = TenantId::parse(CONTOSO).expect("a tenant id");
    let waited = Instant::now();
    loop {
        let row = store.tenant(contoso).await.expect("the tenant row");
        if row.is_some_and(|r| r.status.as_str() == "active") {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "Contoso becomes active"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut clients = Vec::new();
    for i in 0..concurrency {
        let key = ApiKeySecret::generate();
        let new = NewApiKey {
            name: &format!("bench {i}"),
            prefix: &key.shown_prefix(),
            key_hash: &key.hash(),
            scopes: &[Scope::TokensIssue],
        };
        store
            .create_api_key(&new, time::OffsetDateTime::now_utc())
            .await
            .expect("an API key");
        // One connection per client, kept alive.
        clients.push((client(None, None), key.expose().to_owned()));
    }
    store.close().await;

    let health = format!("{base}/health");
    let token = format!("{base}/api/v1/tenants/{CONTOSO}/token");
    let warm = clients[0].0.post(&token).bearer_auth(&clients[0].1).send();
    assert_eq!(warm.await.expect("a token").status(), 200, "a first token");

    let (mut h, mut t) = (Run::default(), Run::default());
    for r in 0..ROUNDS {
        // Rounds split the requests; the first rounds take any remainder.
        let n = requests / ROUNDS + usize::from(r < requests % ROUNDS);
        let health = health.clone();
        h.round(&clients, n, move |(http, _): &(reqwest::Client, String)| {
            http.get(&health)
        })
        .await;
        let token = token.clone();
        t.round(
            &clients,
            n,
            move |(http, key): &(reqwest::Client, String)| http.post(&token).bearer_auth(key),
        )
        .await;
    }
    println!(
        "api: {requests} requests per endpoint in {ROUNDS} alternating rounds, {concurrency} at a time, {concurrency} API keys (limit each: burst 1000, then 500/s)"
    );
    let (health_rate, _) = h.report("health");
    let (token_rate, _) = t.report("token");
    if t.failures.contains_key(&429) {
        println!("  token_note: 429s are the per-key limit; more keys (--concurrency) lift it");
    }
    println!(
        "  token_to_health_ratio: {:.2} (target: at least 0.8)",
        token_rate / health_rate
    );
}

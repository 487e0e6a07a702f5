//! Malformed and hostile requests to every route of consentry and the emulator (the
//! generator of `cargo run --release --example fuzz`, at CI size): no 5xx other than a 503
//! with Retry-After, no injected markup reflected unescaped, no header injected, and both
//! servers still answer afterwards.

#[path = "../../examples/fuzz/hostile.rs"]
mod hostile;

use std::net::SocketAddr;

use consentry::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

use crate::app_helpers::{OPERATOR, OPERATOR_PASSWORD, spawn_app};

/// Requests per CI run; `cargo run --release --example fuzz -- --requests 100000` for more.
const REQUESTS: usize = 3_000;
const SEED: u64 = 7;

fn addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .parse()
        .expect("an http://ip:port base")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_no_5xx_and_no_reflected_markup() {
    let app = spawn_app().await;
    let ctx = hostile::prepare(
        addr(&app.base),
        addr(&app.emulator.base),
        (OPERATOR, OPERATOR_PASSWORD),
        (&DEFAULT_CLIENT_ID.to_string(), DEFAULT_CLIENT_SECRET),
        SEED,
    )
    .await;

    let report = hostile::run(&ctx, REQUESTS, SEED, 16).await;

    report.print();
    assert_eq!(report.requests, REQUESTS);
    let failures = report.failures();
    assert!(
        failures.is_empty(),
        "{} violation(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The checks catch what they are for (so that "0 violations" means something).
#[test]
fn the_checks_flag_5xx_reflected_markup_and_injected_headers() {
    let answer = |status: u16, headers: &[(&str, &str)], body: &str| hostile::Answer::Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    };
    let html = ("content-type", "text/html; charset=utf-8");

    assert!(hostile::check(&answer(500, &[html], "oops")).is_some());
    assert!(hostile::check(&answer(502, &[], "")).is_some());
    assert!(hostile::check(&answer(503, &[html], "busy")).is_some());
    assert!(hostile::check(&answer(503, &[html, ("retry-after", "5")], "busy")).is_none());
    assert!(
        hostile::check(&answer(
            400,
            &[html],
            "<p>You sent <script>fz1</script></p>"
        ))
        .is_some()
    );
    assert!(hostile::check(&answer(200, &[], "\"><img src=x onerror=fz2>")).is_some());
    assert!(
        hostile::check(&answer(
            400,
            &[html],
            "<p>&lt;script&gt;fz1&lt;/script&gt;</p>"
        ))
        .is_none()
    );
    assert!(
        hostile::check(&answer(
            400,
            &[("content-type", "application/json")],
            "<script>fz1"
        ))
        .is_none()
    );
    assert!(hostile::check(&answer(302, &[("x-fuzz-injected", "1")], "")).is_some());
    assert!(hostile::check(&hostile::Answer::Closed).is_none());
}

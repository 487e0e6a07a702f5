//! The token engine against the emulator over HTTP, with a manual clock where time matters.

use std::sync::Arc;
use std::time::Duration;

use consentry::clock::ManualClock;
use consentry::domain::TenantId;
use consentry::entra::EntraClient;
use consentry::tokens::TokenEngine;

use crate::helpers::{TestEmulator, spawn_emulator};

pub(crate) fn engine(emulator: &TestEmulator, clock: Arc<ManualClock>) -> Arc<TokenEngine> {
    let raw = crate::helpers::settings_for(emulator);
    let settings = raw.parse().expect("settings");
    let entra = Arc::new(EntraClient::new(&settings).expect("client"));
    Arc::new(TokenEngine::new(entra, clock, 1000).with_retry_pause(Duration::from_millis(50)))
}

pub(crate) fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(time::OffsetDateTime::now_utc()))
}

async fn token_requests(emulator: &TestEmulator, tenant: &str) -> u64 {
    emulator.requests().await["tenants"][tenant]["token_v2"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_cause_one_token_request() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let engine = engine(&emulator, clock());
    let tenant = TenantId::parse(&contoso).expect("guid");

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.token(tenant).await.map(|t| t.fetched_at) })
        })
        .collect();
    let mut fetched = Vec::new();
    for t in tasks {
        fetched.push(t.await.expect("task").expect("a token"));
    }

    assert_eq!(token_requests(&emulator, &contoso).await, 1);
    assert!(
        fetched.windows(2).all(|w| w[0] == w[1]),
        "everyone got the same token"
    );
    assert_eq!(engine.stats().requests, 1);
}

#[tokio::test]
async fn the_cached_token_is_served_until_refresh_time() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let clock = clock();
    let engine = engine(&emulator, clock.clone());
    let tenant = TenantId::parse(&contoso).expect("guid");
    let first = engine.token(tenant).await.expect("token");

    clock.advance(Duration::from_secs(1700));
    let later = engine.token(tenant).await.expect("token");

    assert!(Arc::ptr_eq(&first, &later));
    assert_eq!(token_requests(&emulator, &contoso).await, 1);
}

#[tokio::test]
async fn past_half_its_life_the_old_token_is_served_and_refreshed_in_the_background() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let clock = clock();
    let engine = engine(&emulator, clock.clone());
    let tenant = TenantId::parse(&contoso).expect("guid");
    let first = engine.token(tenant).await.expect("token");

    clock.advance(Duration::from_secs(3000));
    let served = engine.token(tenant).await.expect("token");
    let mut refreshed = None;
    for _ in 0..100 {
        let t = engine.token(tenant).await.expect("token");
        if !Arc::ptr_eq(&t, &first) {
            refreshed = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(
        Arc::ptr_eq(&served, &first),
        "the caller is not kept waiting"
    );
    let refreshed = refreshed.expect("a background refresh replaced the token");
    assert!(refreshed.fetched_at > first.fetched_at);
    assert_eq!(token_requests(&emulator, &contoso).await, 2);
    assert_eq!(engine.stats().background_refreshes, 1);
}

#[tokio::test]
async fn within_five_minutes_of_expiry_the_caller_waits_for_a_new_token() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let clock = clock();
    let engine = engine(&emulator, clock.clone());
    let tenant = TenantId::parse(&contoso).expect("guid");
    let first = engine.token(tenant).await.expect("token");

    // 3599 s of life: 3300 s in, less than 300 s remain.
    clock.advance(Duration::from_secs(3300));
    let next = engine.token(tenant).await.expect("token");

    assert!(!Arc::ptr_eq(&first, &next));
    assert_eq!(
        next.fetched_at,
        first.fetched_at + Duration::from_secs(3300)
    );
    assert_eq!(token_requests(&emulator, &contoso).await, 2);
}

#[tokio::test]
async fn a_fresh_token_always_asks_and_a_revoked_consent_empties_the_cache() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let engine = engine(&emulator, clock());
    let tenant = TenantId::parse(&contoso).expect("guid");
    engine.token(tenant).await.expect("token");

    engine.fresh_token(tenant).await.expect("fresh token");
    emulator
        .control(
            reqwest::Method::DELETE,
            &format!("/tenants/{contoso}/consent"),
            None,
        )
        .await;
    let revoked = engine
        .fresh_token(tenant)
        .await
        .expect_err("consent is gone");
    let after = engine
        .token(tenant)
        .await
        .expect_err("nothing cached to serve");

    assert_eq!(revoked.code(), "AADSTS700016");
    assert_eq!(after.code(), "AADSTS700016");
    // token, fresh token, fresh token refused; the last call is answered from the
    // 60-second memory of that refusal, without a request.
    assert_eq!(token_requests(&emulator, &contoso).await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_share_one_failure_too() {
    let emulator = spawn_emulator().await;
    let fabrikam = crate::helpers::FABRIKAM;
    let engine = engine(&emulator, clock());
    let tenant = TenantId::parse(fabrikam).expect("guid");

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(
                async move { engine.token(tenant).await.map(|_| ()).map_err(|e| e.code()) },
            )
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("task").expect_err("never consented"));
    }

    assert!(codes.iter().all(|c| c == "AADSTS700016"), "{codes:?}");
    assert_eq!(token_requests(&emulator, fabrikam).await, 1);
}

#[tokio::test]
async fn the_cache_stays_within_its_capacity() {
    let emulator = spawn_emulator().await;
    let (_, created) = emulator
        .control(
            reqwest::Method::POST,
            "/tenants",
            Some(serde_json::json!({"count": 300, "consented": true, "users": 1})),
        )
        .await;
    let raw = crate::helpers::settings_for(&emulator);
    let entra = Arc::new(EntraClient::new(&raw.parse().expect("settings")).expect("client"));
    let engine = Arc::new(TokenEngine::new(entra, clock(), 100));

    for t in created.as_array().expect("array") {
        let tenant = TenantId::parse(t["id"].as_str().expect("id")).expect("guid");
        engine.token(tenant).await.expect("token");
    }

    assert!(
        engine.cached_tenants() <= 100,
        "{}",
        engine.cached_tenants()
    );
    assert_eq!(engine.stats().requests, 300);
}

async fn put_faults(emulator: &TestEmulator, body: serde_json::Value) {
    let (status, answer) = emulator
        .control(reqwest::Method::PUT, "/faults", Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn no_call_before_retry_after_passes() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let clock = clock();
    let engine = engine(&emulator, clock.clone());
    let tenant = TenantId::parse(&contoso).expect("guid");
    put_faults(
        &emulator,
        serde_json::json!({"throttle_next": 1, "retry_after_seconds": 120}),
    )
    .await;

    let throttled = engine.token(tenant).await.expect_err("throttled");
    let early = engine.token(tenant).await.expect_err("still waiting");
    clock.advance(Duration::from_secs(119));
    let still_early = engine
        .fresh_token(tenant)
        .await
        .expect_err("even a fresh token waits");
    let requests_while_waiting = token_requests(&emulator, &contoso).await;
    clock.advance(Duration::from_secs(2));
    let after = engine.token(tenant).await;

    assert_eq!(throttled.code(), "http_429");
    assert_eq!(early.code(), "retry_after");
    assert_eq!(still_early.code(), "retry_after");
    assert_eq!(
        requests_while_waiting, 1,
        "only the throttled request reached the emulator"
    );
    assert!(after.is_ok(), "{after:?}");
    assert_eq!(token_requests(&emulator, &contoso).await, 2);
}

#[tokio::test]
async fn a_server_error_is_retried_once() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let engine = engine(&emulator, clock());
    let tenant = TenantId::parse(&contoso).expect("guid");
    put_faults(
        &emulator,
        serde_json::json!({"fail_next": 1, "error_status": 500}),
    )
    .await;

    let recovered = engine.token(tenant).await;
    put_faults(
        &emulator,
        serde_json::json!({"fail_next": 2, "error_status": 500}),
    )
    .await;
    let given_up = engine.fresh_token(tenant).await;

    assert!(recovered.is_ok(), "{recovered:?}");
    assert_eq!(
        given_up.expect_err("two failures in a row").code(),
        "http_500"
    );
    assert_eq!(
        token_requests(&emulator, &contoso).await,
        4,
        "1 failed + 1 retried, 2 failed"
    );
}

#[tokio::test]
async fn a_failed_background_refresh_keeps_serving_the_cached_token_and_pauses_30_s() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let clock = clock();
    let engine = engine(&emulator, clock.clone());
    let tenant = TenantId::parse(&contoso).expect("guid");
    let first = engine.token(tenant).await.expect("token");
    put_faults(
        &emulator,
        serde_json::json!({"error_rate": 1.0, "error_status": 500}),
    )
    .await;

    clock.advance(Duration::from_secs(2000));
    let during = engine.token(tenant).await.expect("served from the cache");
    let failed = wait_for_failed_refreshes(&engine, 1).await;
    let soon_after = token_requests(&emulator, &contoso).await;
    // The refresh has failed and finished: for 30 s, callers get the cached token and no
    // new refresh starts.
    let mut served = Vec::new();
    for _ in 0..5 {
        served.push(engine.token(tenant).await.expect("still served"));
        clock.advance(Duration::from_secs(5));
    }
    let refreshes_in_pause = engine.stats().background_refreshes;
    let requests_in_pause = token_requests(&emulator, &contoso).await;
    clock.advance(Duration::from_secs(6));
    engine.token(tenant).await.expect("still served");
    let refreshes_after = engine.stats().background_refreshes;
    let later = wait_for_requests(&emulator, &contoso, 5).await;

    assert!(Arc::ptr_eq(&first, &during));
    assert!(
        served.iter().all(|t| Arc::ptr_eq(&first, t)),
        "the failed refresh kept the token"
    );
    assert_eq!(failed, 1);
    assert_eq!(
        soon_after, 3,
        "1, then a refresh tried twice (a 500 is retried once)"
    );
    assert_eq!(refreshes_in_pause, 1, "no refresh during the 30 s pause");
    assert_eq!(requests_in_pause, 3);
    assert_eq!(refreshes_after, 2, "after 30 s the refresh is tried again");
    assert_eq!(later, 5);
}

/// Polls the engine until `n` background refreshes have failed (or 5 s pass).
async fn wait_for_failed_refreshes(engine: &TokenEngine, n: u64) -> u64 {
    for _ in 0..250 {
        if engine.stats().failed_refreshes >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.stats().failed_refreshes
}

#[tokio::test]
async fn a_cloud_asks_for_its_own_graph_resource_from_whatever_host() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let tenant = TenantId::parse(&contoso).expect("guid");
    let mut audiences = Vec::new();

    for (cloud, version) in [
        ("public", "v2"),
        ("usgov", "v2"),
        ("usgov", "v1"),
        ("usgov-dod", "v2"),
        ("usgov-dod", "v1"),
        ("china", "v2"),
        ("china", "v1"),
    ] {
        let mut raw = crate::helpers::settings_for(&emulator);
        raw.set("CONSENTRY_CLOUD", cloud);
        raw.set("CONSENTRY_TOKEN_VERSION", version);
        let entra = Arc::new(EntraClient::new(&raw.parse().expect("settings")).expect("client"));
        let engine = Arc::new(TokenEngine::new(entra, clock(), 10));
        let token = engine.fresh_token(tenant).await.expect("a token");
        audiences.push(token.token.audience.clone().unwrap_or_default());
    }

    assert_eq!(
        audiences,
        [
            "https://graph.microsoft.com",
            "https://graph.microsoft.us",
            "https://graph.microsoft.us",
            "https://dod-graph.microsoft.us",
            "https://dod-graph.microsoft.us",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ]
    );
}

#[tokio::test]
async fn a_tenant_in_a_national_cloud_is_verified_through_its_graph() {
    let app =
        crate::app_helpers::spawn_app_with(|raw, _| raw.set("CONSENTRY_CLOUD", "usgov")).await;
    let contoso = app.emulator.contoso();

    let row = app.onboard(&app.browser(), &contoso).await;

    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(row.display_name.as_deref(), Some("Contoso Ltd"));
}

/// Polls the emulator's count until it reaches `n` (or 2 s pass), and returns it.
async fn wait_for_requests(emulator: &TestEmulator, tenant: &str, n: u64) -> u64 {
    let mut seen = 0;
    for _ in 0..100 {
        seen = token_requests(emulator, tenant).await;
        if seen >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

//! Microsoft's quirks, each over HTTP against the emulator: each ends in the right status,
//! and nothing is sent before a `Retry-After` has passed (the emulator's request counts
//! prove it).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::app_helpers::{TestApp, spawn_app, spawn_app_with};

async fn faults(app: &TestApp, body: Value) {
    let (status, answer) = app
        .emulator
        .control(Method::PUT, "/faults", Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// `requests[…]` for one tenant and endpoint.
async fn count(app: &TestApp, tenant: &str, endpoint: &str) -> u64 {
    app.emulator.requests().await["tenants"][tenant][endpoint]
        .as_u64()
        .unwrap_or(0)
}

/// Signs up, accepts for `tenant` and follows the callback (not waiting for the check).
async fn callback(app: &TestApp, tenant: &str) {
    let browser = app.browser();
    let callback = app.consent(&browser, tenant).await;
    assert_eq!(browser.get(&callback).await.status(), 303);
}

/// Waits for the first request to `endpoint` for `tenant`, then watches the count for
/// `window` (well inside the `Retry-After` Microsoft gave with its answer) and returns the
/// highest count seen. Observing the first request late only shortens the window.
async fn count_during_retry_after(
    app: &TestApp,
    tenant: &str,
    endpoint: &str,
    window: Duration,
) -> u64 {
    app.poll("the first request", 15, || async {
        (count(app, tenant, endpoint).await >= 1).then_some(())
    })
    .await;
    let until = Instant::now() + window;
    let mut highest = 0;
    while Instant::now() < until {
        highest = highest.max(count(app, tenant, endpoint).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    highest
}

async fn active(app: &TestApp, tenant: &str) -> consentry::store::TenantRow {
    app.poll("the tenant to be active", 30, || async {
        app.tenant(tenant).await.filter(|t| t.status == "active")
    })
    .await
}

#[tokio::test]
async fn a_429_with_a_text_body_is_waited_out_then_the_tenant_is_active() {
    let app = spawn_app().await;
    faults(
        &app,
        json!({"throttle_next": 1, "retry_after_seconds": 6, "throttle_body": "text", "endpoints": ["token"]}),
    )
    .await;
    let contoso = app.emulator.contoso();

    callback(&app, &contoso).await;
    let during = count_during_retry_after(&app, &contoso, "token_v2", Duration::from_secs(3)).await;
    let row = active(&app, &contoso).await;
    let requests = app.emulator.requests().await;

    assert_eq!(during, 1, "nothing before Retry-After passed");
    assert_eq!(row.status, "active");
    assert_eq!(
        requests["tenants"][&contoso]["token_v2"], 2,
        "the throttled request, then one after the wait: {requests}"
    );
    assert_eq!(requests["faults"]["token_v2"]["throttled"], 1, "{requests}");
    assert!(
        app.tenant_event_kinds(&contoso)
            .await
            .contains(&"verification_retrying".to_owned())
    );
}

#[tokio::test]
async fn a_token_lifetime_far_out_of_range_does_not_stop_monitoring() {
    let app = spawn_app().await;
    faults(&app, json!({"expires_in": 1_000_000_000_000_000u64})).await;
    let contoso = app.emulator.contoso();

    let first = app.onboard(&app.browser(), &contoso).await;
    let second = app.onboard(&app.browser(), crate::helpers::FABRIKAM).await;
    let readiness = crate::monitoring::ready(&app.base).await;

    assert_eq!(first.status, "active", "{first:?}");
    assert_eq!(second.status, "active", "checks go on: {second:?}");
    assert_eq!(readiness["tasks"]["verifier"], "running", "{readiness}");
    assert_eq!(readiness["tasks"]["first_checks"], "running", "{readiness}");
}

#[tokio::test]
async fn graph_answering_503_then_200_is_retried_after_its_retry_after() {
    let app = spawn_app().await;
    faults(
        &app,
        json!({"fail_next": 1, "error_status": 503, "retry_after_seconds": 6, "endpoints": ["graph"]}),
    )
    .await;
    let contoso = app.emulator.contoso();

    callback(&app, &contoso).await;
    let during =
        count_during_retry_after(&app, &contoso, "graph_organization", Duration::from_secs(3))
            .await;
    let row = active(&app, &contoso).await;

    assert_eq!(during, 1, "no Graph call before Retry-After passed");
    assert_eq!(row.status, "active");
    assert_eq!(count(&app, &contoso, "graph_organization").await, 2);
}

#[tokio::test]
async fn graph_refusing_a_token_once_gets_one_fresh_token_and_the_tenant_is_active() {
    let app = spawn_app().await;
    faults(&app, json!({"unauthorized_next": 1})).await;
    let contoso = app.emulator.contoso();

    let row = app.onboard(&app.browser(), &contoso).await;
    let requests = app.emulator.requests().await;

    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(requests["tenants"][&contoso]["token_v2"], 2, "{requests}");
    assert_eq!(requests["endpoints"]["graph_organization"], 2, "{requests}");
}

#[tokio::test]
async fn consent_that_appears_seconds_after_the_callback_ends_active_within_the_deadline() {
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_DEADLINE", "30s")).await;
    let contoso = app.emulator.contoso();
    let browser = app.browser();
    let callback = app.consent(&browser, &contoso).await;
    // Microsoft has not propagated the consent yet when the administrator comes back.
    let (status, body) = app
        .emulator
        .control(Method::DELETE, &format!("/tenants/{contoso}/consent"), None)
        .await;
    assert_eq!(status, 200, "{body}");

    assert_eq!(browser.get(&callback).await.status(), 303);
    let propagating = app
        .poll("a check that finds no consent yet", 15, || async {
            app.tenant(&contoso)
                .await
                .filter(|t| t.last_error_code.is_some())
        })
        .await;
    app.emulator.consent(&contoso).await;
    let row = active(&app, &contoso).await;

    assert_eq!(propagating.status, "pending", "{propagating:?}");
    assert_eq!(propagating.last_error_code.as_deref(), Some("AADSTS700016"));
    assert_eq!(row.status, "active");
    assert!(
        !app.tenant_event_kinds(&contoso)
            .await
            .contains(&"verification_failed".to_owned())
    );
}

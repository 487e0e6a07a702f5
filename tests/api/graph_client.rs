//! The Graph client against the emulator: paging to the end, one refresh on 401.

use std::sync::Arc;

use consentry::domain::TenantId;
use consentry::entra::EntraClient;
use consentry::graph::GraphClient;
use serde_json::json;

use crate::helpers::{TestEmulator, WOODGROVE, spawn_emulator};
use crate::token_engine::{clock, engine};

fn graph(emulator: &TestEmulator) -> GraphClient {
    let raw = crate::helpers::settings_for(emulator);
    let entra = Arc::new(EntraClient::new(&raw.parse().expect("settings")).expect("client"));
    GraphClient::new(entra, engine(emulator, clock()))
}

#[tokio::test]
async fn list_follows_next_links_across_three_pages_to_the_end() {
    let emulator = spawn_emulator().await;
    emulator.consent(WOODGROVE).await;
    let graph = graph(&emulator);
    let tenant = TenantId::parse(WOODGROVE).expect("guid");

    let users = graph
        .list(tenant, "/v1.0/users?$top=50&$select=id,displayName")
        .await
        .expect("users");

    assert_eq!(users.len(), 130);
    let ids: std::collections::HashSet<&str> =
        users.iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(ids.len(), 130, "no user twice");
    let requests = emulator.requests().await;
    assert_eq!(
        requests["tenants"][WOODGROVE]["graph_users"], 3,
        "{requests}"
    );
    assert_eq!(
        requests["tenants"][WOODGROVE]["token_v2"], 1,
        "one token for all pages"
    );
}

#[tokio::test]
async fn a_401_gets_one_fresh_token_and_one_retry() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let graph = graph(&emulator);
    let tenant = TenantId::parse(&contoso).expect("guid");
    graph
        .get(tenant, "/v1.0/organization")
        .await
        .expect("warm the cache");
    // Graph now sees the cached token as expired (beyond its five minutes of skew).
    emulator
        .control(
            reqwest::Method::POST,
            "/clock",
            Some(json!({"advance_seconds": 7200})),
        )
        .await;

    let org = graph
        .get(tenant, "/v1.0/organization")
        .await
        .expect("after one refresh");

    assert_eq!(org["value"][0]["id"], contoso);
    let requests = emulator.requests().await;
    assert_eq!(requests["tenants"][&contoso]["token_v2"], 2, "{requests}");
    // Warm-up, the refused call (counted without a tenant: its token was refused), the retry.
    assert_eq!(requests["endpoints"]["graph_organization"], 3, "{requests}");
    assert_eq!(
        requests["tenants"][&contoso]["graph_organization"], 2,
        "{requests}"
    );
}

#[tokio::test]
async fn user_count_reads_the_count() {
    let emulator = spawn_emulator().await;
    emulator.consent(WOODGROVE).await;

    let n = graph(&emulator)
        .user_count(TenantId::parse(WOODGROVE).expect("guid"))
        .await
        .expect("count");

    assert_eq!(n, 130);
}

#[tokio::test]
async fn the_tenant_page_shows_the_user_count_of_the_last_check_without_calling_graph() {
    let app = crate::app_helpers::spawn_app().await;
    let contoso = app.emulator.contoso();
    let row = app.onboard(&app.browser(), &contoso).await;
    let operator = app.operator().await;
    let graph_calls = |requests: &serde_json::Value| {
        ["graph_users_count", "graph_users", "graph_organization"]
            .map(|e| requests["endpoints"][e].as_u64().unwrap_or(0))
    };
    let before = graph_calls(&app.emulator.requests().await);

    let page = operator
        .get(&format!("/admin/tenants/{contoso}"))
        .await
        .text()
        .await
        .expect("html");
    let after = graph_calls(&app.emulator.requests().await);

    assert_eq!(row.user_count, Some(36), "the check counted them: {row:?}");
    assert!(row.user_count_at.is_some(), "{row:?}");
    assert!(
        page.contains(r#"<dd id="users">36 <span class="small">as of the check"#),
        "{page}"
    );
    assert_eq!(before, after, "rendering the page called Graph");
}

#[tokio::test]
async fn graph_throttling_is_waited_out_as_retry_after_says() {
    let emulator = spawn_emulator().await;
    emulator.consent(WOODGROVE).await;
    let graph = graph(&emulator);
    let tenant = TenantId::parse(WOODGROVE).expect("guid");
    let (status, body) = emulator
        .control(
            reqwest::Method::PUT,
            "/faults",
            Some(json!({"throttle_next": 1, "retry_after_seconds": 1, "endpoints": ["graph"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let started = std::time::Instant::now();
    let users = graph
        .list(tenant, "/v1.0/users?$top=100&$select=id")
        .await
        .expect("users after the wait");

    assert_eq!(users.len(), 130);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "waited at least Retry-After"
    );
    let requests = emulator.requests().await;
    assert_eq!(
        requests["tenants"][WOODGROVE]["graph_users"], 3,
        "the throttled page, again, then the last: {requests}"
    );
}

#[tokio::test]
async fn throttling_that_outlasts_the_retries_reports_graphs_wait() {
    let emulator = spawn_emulator().await;
    emulator.consent(WOODGROVE).await;
    let graph = graph(&emulator);
    let tenant = TenantId::parse(WOODGROVE).expect("guid");
    let (status, body) = emulator
        .control(
            reqwest::Method::PUT,
            "/faults",
            Some(json!({"throttle_next": 10, "retry_after_seconds": 1, "endpoints": ["graph"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let error = graph
        .list(tenant, "/v1.0/users?$top=100&$select=id")
        .await
        .expect_err("still throttled after every attempt");

    assert!(
        matches!(
            error,
            consentry::entra::GraphError::Throttled { status: 429, retry_after }
                if retry_after == std::time::Duration::from_secs(1)
        ),
        "{error:?}"
    );
    let requests = emulator.requests().await;
    assert_eq!(
        requests["tenants"][WOODGROVE]["graph_users"], 4,
        "four attempts, none after the last answer: {requests}"
    );
}

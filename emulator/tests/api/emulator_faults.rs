//! Injected faults: latency, throttling and server errors on the token and Graph endpoints,
//! globally and per tenant, and how they are counted.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    FABRIKAM, TestEmulator, assert_graph_error, assert_sts_error, claims, spawn_emulator,
};

impl TestEmulator {
    /// `PUT /_emulator/faults` (or a tenant's); panics unless it answers 200.
    async fn set_faults(&self, tenant: Option<&str>, body: Value) -> Value {
        let (status, view) = self
            .control(Method::PUT, &faults_path(tenant), Some(body))
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// A v1 token request with the default secret.
    async fn token_v1(&self, tenant: &str) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("client_secret", &self.client_secret)
            .append_pair("resource", "https://graph.microsoft.com")
            .finish();
        self.token_raw(tenant, "v1", body).await
    }
}

fn faults_path(tenant: Option<&str>) -> String {
    match tenant {
        Some(t) => format!("/tenants/{t}/faults"),
        None => "/faults".to_owned(),
    }
}

fn retry_after(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An emulator with Contoso and Fabrikam consented, and a token for each.
async fn two_tenants() -> (TestEmulator, String, String) {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso_token().await;
    emulator.consent(FABRIKAM).await;
    let fabrikam = emulator.access_token(FABRIKAM).await;
    (emulator, contoso, fabrikam)
}

#[tokio::test]
async fn latency_delays_token_and_graph_answers() {
    let (emulator, token, _) = two_tenants().await;
    emulator.set_faults(None, json!({"latency_ms": 300})).await;

    let started = Instant::now();
    let issued = emulator.token_v2(&emulator.contoso(), &[]).await;
    let token_took = started.elapsed();
    let started = Instant::now();
    let listed = emulator.graph("/v1.0/users", Some(&token)).await;
    let graph_took = started.elapsed();

    assert_eq!(issued.status(), 200);
    assert_eq!(listed.status(), 200);
    assert!(token_took >= Duration::from_millis(300), "{token_took:?}");
    assert!(graph_took >= Duration::from_millis(300), "{graph_took:?}");
}

#[tokio::test]
async fn latency_applies_to_failed_requests_too() {
    let emulator = spawn_emulator().await;
    emulator
        .set_faults(None, json!({"latency_ms": 200, "fail_next": 1}))
        .await;

    let started = Instant::now();
    let failed = emulator.token_v2(&emulator.contoso(), &[]).await;
    let took = started.elapsed();

    assert_eq!(failed.status(), 503);
    assert!(took >= Duration::from_millis(200), "{took:?}");
}

#[tokio::test]
async fn fail_next_gives_exactly_that_many_503s_with_retry_after_then_tokens() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_faults(None, json!({"fail_next": 2, "retry_after_seconds": 7}))
        .await;

    let mut failures = Vec::new();
    for _ in 0..2 {
        let response = emulator.token_v2(&emulator.contoso(), &[]).await;
        failures.push(retry_after(&response));
        assert_sts_error(response, 503, "temporarily_unavailable", 90033).await;
    }
    let then = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_eq!(failures, [Some("7".to_owned()), Some("7".to_owned())]);
    assert_eq!(then.status(), 200);
}

#[tokio::test]
async fn faults_come_before_any_check_of_the_request() {
    let emulator = spawn_emulator().await;
    emulator.set_faults(None, json!({"fail_next": 1})).await;

    // Not consented, and a wrong secret: the fault answers first all the same.
    let response = emulator
        .token_v2(&emulator.contoso(), &[("client_secret", "wrong")])
        .await;

    assert_sts_error(response, 503, "temporarily_unavailable", 90033).await;
}

#[tokio::test]
async fn throttled_token_request_is_429_with_retry_after_and_the_sts_json() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator.set_faults(None, json!({"throttle_next": 1})).await;

    let throttled = emulator.token_v2(&emulator.contoso(), &[]).await;
    let header = retry_after(&throttled);
    let body = assert_sts_error(throttled, 429, "temporarily_unavailable", 90033).await;
    let then = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_eq!(header.as_deref(), Some("1"), "the default Retry-After");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("AADSTS90033: A transient error has occurred.")),
        "{body}"
    );
    assert_eq!(then.status(), 200);
}

#[tokio::test]
async fn v1_token_endpoint_is_faulted_too() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_faults(None, json!({"throttle_next": 1, "retry_after_seconds": 30}))
        .await;

    let throttled = emulator.token_v1(&emulator.contoso()).await;
    let header = retry_after(&throttled);
    assert_sts_error(throttled, 429, "temporarily_unavailable", 90033).await;
    let then = emulator.token_v1(&emulator.contoso()).await;

    assert_eq!(header.as_deref(), Some("30"));
    assert_eq!(then.status(), 200);
}

#[tokio::test]
async fn throttle_body_text_answers_a_plain_text_429_on_both_token_endpoints() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_faults(
            None,
            json!({"throttle_next": 2, "throttle_body": "text", "retry_after_seconds": 60}),
        )
        .await;

    let mut answers = Vec::new();
    for throttled in [
        emulator.token_v2(&emulator.contoso(), &[]).await,
        emulator.token_v1(&emulator.contoso()).await,
    ] {
        let status = throttled.status().as_u16();
        let content_type = throttled
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let header = retry_after(&throttled);
        answers.push((
            status,
            content_type,
            header,
            throttled.text().await.unwrap(),
        ));
    }
    let then = emulator.token_v2(&emulator.contoso(), &[]).await;

    let expected = (
        429,
        Some("text/plain".to_owned()),
        Some("60".to_owned()),
        "Too Many Requests".to_owned(),
    );
    assert_eq!(answers, [expected.clone(), expected]);
    assert_eq!(then.status(), 200);
}

#[tokio::test]
async fn throttle_body_text_leaves_graph_429s_in_graphs_json() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"throttle_next": 1, "throttle_body": "text"}))
        .await;

    let throttled = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_graph_error(throttled, 429, "TooManyRequests").await;
}

#[tokio::test]
async fn unauthorized_next_refuses_that_many_graph_calls_then_serves_again() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"unauthorized_next": 3}))
        .await;

    let mut refused = Vec::new();
    for path in ["/v1.0/organization", "/v1.0/users", "/v1.0/users/$count"] {
        let response = emulator.graph(path, Some(&token)).await;
        let challenge = response.headers().contains_key("www-authenticate");
        let body = assert_graph_error(response, 401, "InvalidAuthenticationToken").await;
        refused.push((
            challenge,
            body["error"]["innerError"]["request-id"].is_string(),
        ));
    }
    let issued = emulator.token_v2(&emulator.contoso(), &[]).await;
    let then = emulator.graph("/v1.0/organization", Some(&token)).await;
    let stats = emulator.requests().await;

    assert_eq!(refused, [(true, true); 3]);
    assert_eq!(issued.status(), 200, "token requests are never refused");
    assert_eq!(then.status(), 200);
    assert_eq!(
        stats["faults"]["graph_organization"],
        json!({"throttled": 0, "errors": 0, "unauthorized": 1}),
        "{stats}"
    );
}

#[tokio::test]
async fn unauthorized_next_of_a_tenant_refuses_only_its_tokens() {
    let (emulator, contoso, fabrikam) = two_tenants().await;
    emulator
        .set_faults(Some(FABRIKAM), json!({"unauthorized_next": 1}))
        .await;

    let contoso_answer = emulator.graph("/v1.0/organization", Some(&contoso)).await;
    let fabrikam_answer = emulator.graph("/v1.0/organization", Some(&fabrikam)).await;

    assert_eq!(contoso_answer.status(), 200);
    assert_graph_error(fabrikam_answer, 401, "InvalidAuthenticationToken").await;
}

#[tokio::test]
async fn expires_in_is_claimed_by_both_token_endpoints_while_the_jwt_stays_sane() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let absurd: u64 = 1_000_000_000_000_000;
    emulator
        .set_faults(None, json!({"expires_in": absurd}))
        .await;

    let v2: Value = emulator
        .token_v2(&emulator.contoso(), &[])
        .await
        .json()
        .await
        .unwrap();
    let v1: Value = emulator
        .token_v1(&emulator.contoso())
        .await
        .json()
        .await
        .unwrap();
    let token = v2["access_token"].as_str().unwrap();
    let jwt = claims(token);
    let graph = emulator.graph("/v1.0/organization", Some(token)).await;

    assert_eq!(v2["expires_in"], json!(absurd), "{v2}");
    assert_eq!(v2["ext_expires_in"], json!(absurd), "{v2}");
    assert!(
        v2.get("refresh_in").is_none(),
        "follows the real lifetime: {v2}"
    );
    assert_eq!(v1["expires_in"], absurd.to_string(), "{v1}");
    assert_eq!(v1["ext_expires_in"], absurd.to_string(), "{v1}");
    let lifetime = jwt["exp"].as_i64().unwrap() - jwt["iat"].as_i64().unwrap();
    assert_eq!(
        lifetime,
        3599 + 300,
        "the JWT keeps the configured lifetime"
    );
    assert_eq!(
        v1["expires_on"].as_str().unwrap().parse::<i64>().unwrap()
            - v1["not_before"].as_str().unwrap().parse::<i64>().unwrap(),
        lifetime
    );
    assert_eq!(graph.status(), 200);
}

#[tokio::test]
async fn expires_in_takes_the_whole_u64_range_and_zero() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let mut claimed = Vec::new();
    for value in [0, u64::MAX] {
        emulator
            .set_faults(Some(&emulator.contoso()), json!({"expires_in": value}))
            .await;
        let body: Value = emulator
            .token_v2(&emulator.contoso(), &[])
            .await
            .json()
            .await
            .unwrap();
        claimed.push(body["expires_in"].clone());
    }
    emulator
        .control(
            Method::DELETE,
            &faults_path(Some(&emulator.contoso())),
            None,
        )
        .await;
    let then: Value = emulator
        .token_v2(&emulator.contoso(), &[])
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(claimed, [json!(0), json!(u64::MAX)]);
    assert_eq!(then["expires_in"], 3599);
}

#[tokio::test]
async fn expires_in_is_not_claimed_by_error_answers() {
    let emulator = spawn_emulator().await;
    emulator.set_faults(None, json!({"expires_in": 5})).await;

    let refused: Value = emulator
        .token_v2(&emulator.contoso(), &[])
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(
        refused["error"], "unauthorized_client",
        "not consented: {refused}"
    );
    assert!(refused.get("expires_in").is_none());
}

#[tokio::test]
async fn throttled_graph_request_is_429_too_many_requests_with_retry_after() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"throttle_next": 1, "retry_after_seconds": 5}))
        .await;

    let throttled = emulator.graph("/v1.0/organization", Some(&token)).await;
    let header = retry_after(&throttled);
    assert_graph_error(throttled, 429, "TooManyRequests").await;
    let then = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_eq!(header.as_deref(), Some("5"));
    assert_eq!(then.status(), 200);
}

#[tokio::test]
async fn graph_503_is_service_not_available_with_retry_after() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"fail_next": 1, "retry_after_seconds": 3}))
        .await;

    let failed = emulator.graph("/v1.0/users", Some(&token)).await;
    let header = retry_after(&failed);
    assert_graph_error(failed, 503, "serviceNotAvailable").await;

    assert_eq!(header.as_deref(), Some("3"));
}

#[tokio::test]
async fn graph_500_is_general_exception_without_retry_after() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"fail_next": 1, "error_status": 500}))
        .await;

    let failed = emulator.graph("/v1.0/users/$count", Some(&token)).await;
    let header = retry_after(&failed);
    assert_graph_error(failed, 500, "generalException").await;

    assert_eq!(header, None);
}

#[tokio::test]
async fn error_rate_one_fails_every_request_with_the_configured_status() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"error_rate": 1.0, "error_status": 502}))
        .await;

    for _ in 0..3 {
        let response = emulator.token_v2(&emulator.contoso(), &[]).await;
        assert_eq!(retry_after(&response), None, "only 503 promises a retry");
        assert_sts_error(response, 502, "temporarily_unavailable", 90033).await;
        let graph = emulator.graph("/v1.0/organization", Some(&token)).await;
        assert_graph_error(graph, 502, "generalException").await;
    }
}

#[tokio::test]
async fn throttle_rate_one_throttles_every_request() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(
            None,
            json!({"throttle_rate": 1.0, "retry_after_seconds": 2}),
        )
        .await;

    for _ in 0..3 {
        let response = emulator.token_v2(&emulator.contoso(), &[]).await;
        assert_eq!(retry_after(&response).as_deref(), Some("2"));
        assert_sts_error(response, 429, "temporarily_unavailable", 90033).await;
        let graph = emulator.graph("/v1.0/users", Some(&token)).await;
        assert_eq!(retry_after(&graph).as_deref(), Some("2"));
        assert_graph_error(graph, 429, "TooManyRequests").await;
    }
}

#[tokio::test]
async fn rates_of_zero_inject_nothing() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_faults(None, json!({"error_rate": 0.0, "throttle_rate": 0.0}))
        .await;

    for _ in 0..5 {
        assert_eq!(
            emulator.token_v2(&emulator.contoso(), &[]).await.status(),
            200
        );
    }
}

#[tokio::test]
async fn a_tenants_faults_affect_only_its_token_requests() {
    let (emulator, _, _) = two_tenants().await;
    emulator
        .set_faults(Some(FABRIKAM), json!({"throttle_rate": 1.0}))
        .await;

    let fabrikam_by_guid = emulator.token_v2(FABRIKAM, &[]).await;
    let fabrikam_by_domain = emulator.token_v2("fabrikam.com", &[]).await;
    let contoso = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_eq!(fabrikam_by_guid.status(), 429);
    assert_eq!(fabrikam_by_domain.status(), 429, "scoped by resolved GUID");
    assert_eq!(contoso.status(), 200);
}

#[tokio::test]
async fn a_tenants_faults_affect_only_graph_calls_with_its_tokens() {
    let (emulator, contoso, fabrikam) = two_tenants().await;
    emulator
        .set_faults(Some(FABRIKAM), json!({"fail_next": 5}))
        .await;

    let with_fabrikam = emulator.graph("/v1.0/organization", Some(&fabrikam)).await;
    let with_contoso = emulator.graph("/v1.0/organization", Some(&contoso)).await;

    assert_graph_error(with_fabrikam, 503, "serviceNotAvailable").await;
    assert_eq!(with_contoso.status(), 200);
}

#[tokio::test]
async fn a_tenants_own_faults_replace_the_global_ones() {
    let (emulator, contoso, fabrikam) = two_tenants().await;
    emulator
        .set_faults(None, json!({"throttle_rate": 1.0}))
        .await;
    emulator.set_faults(Some(FABRIKAM), json!({})).await;

    assert_eq!(emulator.token_v2(FABRIKAM, &[]).await.status(), 200);
    assert_eq!(
        emulator
            .graph("/v1.0/organization", Some(&fabrikam))
            .await
            .status(),
        200
    );
    assert_eq!(
        emulator.token_v2(&emulator.contoso(), &[]).await.status(),
        429
    );
    assert_eq!(
        emulator
            .graph("/v1.0/organization", Some(&contoso))
            .await
            .status(),
        429
    );
}

#[tokio::test]
async fn unauthenticated_graph_requests_see_only_global_faults() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator
        .set_faults(Some(&contoso), json!({"throttle_rate": 1.0}))
        .await;

    let tenant_scoped = emulator.graph("/v1.0/users", None).await;
    emulator
        .set_faults(None, json!({"throttle_rate": 1.0}))
        .await;
    let global = emulator.graph("/v1.0/users", None).await;

    assert_graph_error(tenant_scoped, 401, "InvalidAuthenticationToken").await;
    assert_graph_error(global, 429, "TooManyRequests").await;
}

#[tokio::test]
async fn graph_only_faults_leave_tokens_alone() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"error_rate": 1.0, "endpoints": ["graph"]}))
        .await;

    let issued = emulator.token_v2(&emulator.contoso(), &[]).await;
    let graph = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_eq!(issued.status(), 200);
    assert_eq!(graph.status(), 503);
}

#[tokio::test]
async fn token_only_faults_leave_graph_alone() {
    let (emulator, token, _) = two_tenants().await;
    emulator
        .set_faults(None, json!({"error_rate": 1.0, "endpoints": ["token"]}))
        .await;

    let issued = emulator.token_v2(&emulator.contoso(), &[]).await;
    let graph = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_eq!(issued.status(), 503);
    assert_eq!(graph.status(), 200);
}

#[tokio::test]
async fn faults_can_be_read_back_with_their_defaults_and_remaining_counters() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let put = emulator
        .set_faults(None, json!({"fail_next": 3, "endpoints": ["token"]}))
        .await;
    emulator
        .set_faults(Some(&contoso), json!({"latency_ms": 10}))
        .await;
    emulator.token_v2(FABRIKAM, &[]).await;

    let (status, global) = emulator.control(Method::GET, "/faults", None).await;
    let (tenant_status, tenant) = emulator
        .control(Method::GET, &faults_path(Some(&contoso)), None)
        .await;

    assert_eq!(
        put,
        json!({
            "latency_ms": 0,
            "error_rate": 0.0,
            "error_status": 503,
            "throttle_rate": 0.0,
            "retry_after_seconds": 1,
            "fail_next": 3,
            "throttle_next": 0,
            "throttle_body": "json",
            "unauthorized_next": 0,
            "expires_in": null,
            "endpoints": ["token"],
        })
    );
    assert_eq!(status, 200);
    assert_eq!(global["global"]["fail_next"], 2, "{global}");
    assert_eq!(global["tenants"][&contoso]["latency_ms"], 10, "{global}");
    assert_eq!(tenant_status, 200);
    assert_eq!(tenant["tenant"], contoso);
    assert_eq!(tenant["faults"]["latency_ms"], 10, "{tenant}");
}

#[tokio::test]
async fn clearing_faults_restores_service() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    emulator.consent(FABRIKAM).await;
    emulator.set_faults(None, json!({"error_rate": 1.0})).await;
    emulator
        .set_faults(Some(&contoso), json!({"throttle_rate": 1.0}))
        .await;

    let (global_cleared, _) = emulator.control(Method::DELETE, "/faults", None).await;
    let fabrikam = emulator.token_v2(FABRIKAM, &[]).await;
    let contoso_still = emulator.token_v2(&contoso, &[]).await;
    let (tenant_cleared, _) = emulator
        .control(Method::DELETE, &faults_path(Some(&contoso)), None)
        .await;
    let contoso_then = emulator.token_v2(&contoso, &[]).await;
    let (_, all) = emulator.control(Method::GET, "/faults", None).await;

    assert_eq!(global_cleared, 204);
    assert_eq!(fabrikam.status(), 200);
    assert_eq!(
        contoso_still.status(),
        429,
        "a tenant's faults outlive the global ones"
    );
    assert_eq!(tenant_cleared, 204);
    assert_eq!(contoso_then.status(), 200);
    assert_eq!(all, json!({"global": null, "tenants": {}}));
}

#[tokio::test]
async fn deleting_a_tenant_drops_its_faults() {
    let emulator = spawn_emulator().await;
    emulator
        .set_faults(Some(FABRIKAM), json!({"fail_next": 1}))
        .await;

    emulator
        .control(Method::DELETE, &format!("/tenants/{FABRIKAM}"), None)
        .await;
    let (_, all) = emulator.control(Method::GET, "/faults", None).await;

    assert_eq!(all["tenants"], json!({}));
}

#[tokio::test]
async fn bad_fault_bodies_are_400_with_a_reason() {
    let emulator = spawn_emulator().await;
    let cases = [
        (json!({"latency": 5}), "unknown field"),
        (json!({"latency_ms": 60_001}), "latency_ms"),
        (json!({"latency_ms": -1}), "invalid JSON"),
        (json!({"error_rate": 1.5}), "error_rate"),
        (json!({"throttle_rate": -0.5}), "throttle_rate"),
        (json!({"error_status": 418}), "error_status"),
        (json!({"retry_after_seconds": 3601}), "retry_after_seconds"),
        (json!({"fail_next": 2_000_000}), "fail_next"),
        (json!({"endpoints": ["mail"]}), "unknown variant"),
        (json!({"endpoints": []}), "endpoints"),
        (json!(["token"]), "invalid JSON"),
        (json!({"throttle_body": "html"}), "unknown variant"),
        (json!({"unauthorized_next": 1_000_001}), "unauthorized_next"),
        (
            json!({"unauthorized_next": 1, "endpoints": ["token"]}),
            "unauthorized_next acts on graph requests only",
        ),
        (
            json!({"throttle_body": "text", "endpoints": ["graph"]}),
            "throttle_body acts on token requests only",
        ),
        (
            json!({"expires_in": 1, "endpoints": ["graph"]}),
            "expires_in acts on token requests only",
        ),
        (json!({"expires_in": -1}), "invalid JSON"),
        (json!({"expires_in": 1.5}), "invalid JSON"),
        (json!({"expires_in": 1e20}), "invalid JSON"),
    ];

    for (body, reason) in cases {
        for path in [faults_path(None), faults_path(Some(FABRIKAM))] {
            let (status, error) = emulator
                .control(Method::PUT, &path, Some(body.clone()))
                .await;
            assert_eq!(status, 400, "{path} {body} -> {error}");
            assert!(
                error["error"].as_str().is_some_and(|e| e.contains(reason)),
                "{body}: {error}"
            );
        }
    }
    let (_, all) = emulator.control(Method::GET, "/faults", None).await;
    assert_eq!(
        all,
        json!({"global": null, "tenants": {}}),
        "nothing was set"
    );
}

#[tokio::test]
async fn tenant_faults_need_an_existing_tenant() {
    let emulator = spawn_emulator().await;

    let (unknown, _) = emulator
        .set_faults_raw(
            &faults_path(Some("00000000-0000-0000-0000-000000000001")),
            json!({}),
        )
        .await;
    let (malformed, _) = emulator
        .set_faults_raw(&faults_path(Some("contoso")), json!({}))
        .await;

    assert_eq!(unknown, 404);
    assert_eq!(malformed, 400);
}

impl TestEmulator {
    async fn set_faults_raw(&self, path: &str, body: Value) -> (u16, Value) {
        self.control(Method::PUT, path, Some(body)).await
    }
}

#[tokio::test]
async fn request_counts_include_injected_faults_per_endpoint_and_tenant() {
    let (emulator, token, _) = two_tenants().await;
    let contoso = emulator.contoso();
    emulator.control(Method::DELETE, "/requests", None).await;
    emulator
        .set_faults(None, json!({"throttle_next": 1, "fail_next": 2}))
        .await;

    emulator.token_v2(&contoso, &[]).await; // throttled
    emulator.token_v2(&contoso, &[]).await; // failed
    emulator.graph("/v1.0/users", Some(&token)).await; // failed
    emulator.graph("/v1.0/users", Some(&token)).await; // served
    let stats = emulator.requests().await;

    assert_eq!(
        stats["total"], 4,
        "faulted requests are still requests: {stats}"
    );
    assert_eq!(stats["endpoints"]["token_v2"], 2, "{stats}");
    assert_eq!(stats["tenants"][&contoso]["graph_users"], 2, "{stats}");
    assert_eq!(
        stats["faults"],
        json!({
            "token_v2": {"throttled": 1, "errors": 1},
            "graph_users": {"throttled": 0, "errors": 1},
        }),
        "{stats}"
    );
    assert_eq!(
        stats["tenant_faults"][&contoso],
        json!({
            "token_v2": {"throttled": 1, "errors": 1},
            "graph_users": {"throttled": 0, "errors": 1},
        }),
        "{stats}"
    );
}

#[tokio::test]
async fn resetting_request_counts_resets_fault_counts() {
    let emulator = spawn_emulator().await;
    emulator.set_faults(None, json!({"fail_next": 1})).await;
    emulator.token_v2(&emulator.contoso(), &[]).await;

    emulator.control(Method::DELETE, "/requests", None).await;
    let stats = emulator.requests().await;

    assert_eq!(stats["faults"], json!({}), "{stats}");
    assert_eq!(stats["tenant_faults"], json!({}), "{stats}");
}

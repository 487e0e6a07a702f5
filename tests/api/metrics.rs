//! `GET /metrics`: behind `CONSENTRY_METRICS_TOKEN` on the main port (404 without one), or
//! open on `CONSENTRY_METRICS_LISTEN`; the figures move with what the service does.

use crate::app_helpers::{TestApp, callback_url, spawn_app, spawn_app_with, state_of};
use crate::crash::free_port;
use crate::helpers::FABRIKAM;

const TOKEN: &str = "metrics-token-0123456789abcdef";

async fn scrape(url: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("GET /metrics")
}

async fn metrics(app: &TestApp) -> String {
    let response = scrape(&format!("{}/metrics", app.base), Some(TOKEN)).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

/// The sum of the samples of `name` whose labels include all of `labels`.
fn value(body: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[tokio::test]
async fn metrics_on_the_main_port_need_the_token_and_are_404_without_one_configured() {
    // Arrange
    let closed = spawn_app().await;
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_METRICS_TOKEN", TOKEN)).await;
    let url = format!("{}/metrics", app.base);

    // Act
    let unconfigured = scrape(&format!("{}/metrics", closed.base), Some(TOKEN)).await;
    let without = scrape(&url, None).await;
    let wrong = scrape(&url, Some("metrics-token-0123456789abcdeX")).await;
    let prefix = scrape(&url, Some("metrics-token")).await;
    let basic = reqwest::Client::new()
        .get(&url)
        .basic_auth("prometheus", Some(TOKEN))
        .send()
        .await
        .expect("GET");
    let with = scrape(&url, Some(TOKEN)).await;

    // Assert
    assert_eq!(unconfigured.status(), 404);
    for refused in [without, wrong, prefix, basic] {
        assert_eq!(refused.status(), 401);
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    }
    assert_eq!(with.status(), 200);
    assert!(
        with.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let body = with.text().await.expect("text");
    assert!(body.contains("# TYPE consentry_tenants gauge"), "{body}");
    assert!(body.contains("consentry_verifier_lag_seconds "), "{body}");
    assert!(
        body.contains("consentry_webhook_deliveries{status=\"pending\"} 0"),
        "{body}"
    );
}

#[tokio::test]
async fn the_figures_move_after_an_onboarding_and_a_refused_token() {
    // Arrange
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_METRICS_TOKEN", TOKEN)).await;
    let before = metrics(&app).await;
    let contoso = app.emulator.contoso();

    // Act: one tenant onboarded, one forged callback for a tenant that never consented
    // (Microsoft refuses its token with AADSTS700016).
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let browser = app.browser();
    let to_microsoft = browser.signup(&[]).await;
    let forged = callback_url(&[
        ("admin_consent", "True"),
        ("tenant", FABRIKAM),
        ("state", &state_of(&to_microsoft)),
    ]);
    assert_eq!(browser.get(&forged).await.status(), 303);
    let after = app
        .poll("the figures of both tenants", 30, || async {
            let body = metrics(&app).await;
            let refused = value(
                &body,
                "consentry_token_requests_total",
                &[("outcome", "refused"), ("code", "AADSTS700016")],
            );
            let active = value(&body, "consentry_tenants", &[("status", "active")]);
            (refused >= 1.0 && active == 1.0).then_some(body)
        })
        .await;

    // Assert: requests by route pattern and status, with a latency histogram.
    let callbacks = |body: &str| {
        value(
            body,
            "consentry_http_requests_total",
            &[
                ("route", "/consent/callback"),
                ("method", "GET"),
                ("status", "303"),
            ],
        )
    };
    assert_eq!(callbacks(&before), 0.0);
    assert_eq!(callbacks(&after), 2.0, "{after}");
    assert!(
        value(
            &after,
            "consentry_http_request_duration_seconds_count",
            &[("route", "/consent/callback"), ("method", "GET")],
        ) >= 2.0,
        "{after}"
    );
    assert!(
        after.contains("consentry_http_request_duration_seconds_bucket{"),
        "{after}"
    );
    assert!(
        value(
            &after,
            "consentry_http_requests_total",
            &[("route", "/signup"), ("method", "POST")],
        ) >= 2.0,
        "{after}"
    );
    // Token requests by outcome.
    assert_eq!(
        value(
            &before,
            "consentry_token_requests_total",
            &[("outcome", "issued")]
        ),
        0.0
    );
    assert!(
        value(
            &after,
            "consentry_token_requests_total",
            &[("outcome", "issued")]
        ) >= 1.0,
        "{after}"
    );
    // Tenants by status.
    assert_eq!(
        value(&before, "consentry_tenants", &[("status", "active")]),
        0.0
    );
    assert_eq!(value(&after, "consentry_tenants", &[]), 2.0, "{after}");
    // No tenant id in any label: routes are patterns.
    assert!(!after.contains(&contoso), "{after}");
    assert!(!after.contains(FABRIKAM), "{after}");
}

#[tokio::test]
async fn a_separate_listener_serves_the_metrics_without_a_token() {
    // Arrange
    let port = free_port();
    let app = spawn_app_with(move |raw, _| {
        raw.set("CONSENTRY_METRICS_LISTEN", format!("127.0.0.1:{port}"))
    })
    .await;
    assert_eq!(app.get_ok("/health").await, 200);

    // Act
    let open = scrape(&format!("http://127.0.0.1:{port}/metrics"), None).await;
    let main = scrape(&format!("{}/metrics", app.base), None).await;

    // Assert: served there; the main port still hides it (no token configured).
    assert_eq!(open.status(), 200);
    let body = open.text().await.expect("text");
    assert_eq!(
        value(
            &body,
            "consentry_http_requests_total",
            &[("route", "/health"), ("status", "200")],
        ),
        1.0,
        "{body}"
    );
    assert!(body.contains("consentry_tenants{"), "{body}");
    assert_eq!(main.status(), 404);
}

impl TestApp {
    async fn get_ok(&self, path: &str) -> u16 {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("GET")
            .status()
            .as_u16()
    }
}

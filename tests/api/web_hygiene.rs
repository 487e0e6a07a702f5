//! What every response carries (security headers, a request id), the error page for
//! anything that fails, and what no page may ever contain.

use crate::app_helpers::{
    TestApp, assert_error_page, callback_url, request_id, spawn_app, spawn_app_with,
};

/// Asserts the headers every consentry response carries.
fn assert_hygienic(what: &str, response: &reqwest::Response) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
            .to_str()
            .expect("ascii")
            .to_owned()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert!(!header("referrer-policy").is_empty(), "{what}");
    assert!(
        uuid::Uuid::try_parse(&header("x-request-id")).is_ok(),
        "{what}"
    );
}

/// Every page a browser can reach, as (what, response), with a tenant onboarded.
async fn tour(app: &TestApp) -> Vec<(String, reqwest::Response)> {
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let mut seen = Vec::new();
    seen.push(("landing".to_owned(), browser.get("/").await));
    seen.push(("sign-up".to_owned(), browser.signup_response(&[]).await));
    let callback = app.consent(&browser, &contoso).await;
    seen.push(("callback".to_owned(), browser.get(&callback).await));
    app.wait_for_outcome(&contoso, 15).await;
    seen.push(("status".to_owned(), browser.get("/consent/status").await));
    seen.push((
        "status elsewhere".to_owned(),
        app.browser().get("/consent/status").await,
    ));
    seen.push(("callback replayed".to_owned(), browser.get(&callback).await));
    seen.push((
        "callback declined".to_owned(),
        browser
            .get(&callback_url(&[
                ("error", "access_denied"),
                ("error_description", "AADSTS65004: User declined."),
            ]))
            .await,
    ));
    seen.push(("login".to_owned(), browser.get("/admin/login").await));
    seen.push(("anonymous admin".to_owned(), browser.get("/admin").await));
    let operator = app.operator().await;
    seen.push(("dashboard".to_owned(), operator.get("/admin").await));
    seen.push((
        "tenant page".to_owned(),
        operator.get(&format!("/admin/tenants/{contoso}")).await,
    ));
    seen.push((
        "unknown tenant".to_owned(),
        operator
            .get("/admin/tenants/00000000-0000-0000-0000-000000000001")
            .await,
    ));
    seen.push(("not found".to_owned(), browser.get("/no/such/page").await));
    seen.push((
        "wrong method".to_owned(),
        browser.request(reqwest::Method::DELETE, "/").await,
    ));
    seen.push((
        "stylesheet".to_owned(),
        browser.get("/static/consentry.css").await,
    ));
    seen.push(("health".to_owned(), browser.get("/health").await));
    seen
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = spawn_app().await;

    let seen = tour(&app).await;

    assert!(seen.len() >= 15);
    for (what, response) in &seen {
        assert_hygienic(what, response);
    }
}

/// Whether `html` has an attribute like ` onclick=`.
fn has_event_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    })
}

#[tokio::test]
async fn no_page_shows_a_secret_or_a_token_or_runs_a_script() {
    let app = spawn_app().await;

    let seen = tour(&app).await;

    for (what, response) in seen {
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("consentry-emulator-secret"),
            "{what}: {body}"
        );
        assert!(!body.contains("eyJ"), "{what}: {body}");
        assert!(
            !body.to_ascii_lowercase().contains("<script"),
            "{what}: {body}"
        );
        assert!(
            !has_event_handler(&body),
            "{what}: an inline handler: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_path_gets_the_error_page_with_its_request_id() {
    let app = spawn_app().await;
    let browser = app.browser();

    let response = browser.get("/no/such/page").await;

    assert_hygienic("404", &response);
    let rid = request_id(&response);
    let (shown, html) = assert_error_page(response, 404).await;
    assert_eq!(shown, rid);
    assert!(html.contains("There is nothing here."), "{html}");
}

#[tokio::test]
async fn a_wrong_method_gets_the_error_page() {
    let app = spawn_app().await;
    let browser = app.browser();

    let delete = browser.request(reqwest::Method::DELETE, "/").await;
    let get_signup = browser.get("/signup").await;

    assert_hygienic("405", &delete);
    let (_, html) = assert_error_page(delete, 405).await;
    assert!(
        html.contains("does not take that kind of request"),
        "{html}"
    );
    assert_error_page(get_signup, 405).await;
}

#[tokio::test]
async fn private_pages_are_not_cached() {
    let app = spawn_app().await;
    let browser = app.browser();
    let operator = app.operator().await;

    let responses = [
        browser.get("/admin/login").await,
        operator.get("/admin").await,
        browser.get("/consent/status").await,
    ];

    for response in responses {
        assert_eq!(
            response
                .headers()
                .get("cache-control")
                .map(|v| v.to_str().expect("ascii")),
            Some("no-store"),
            "{}",
            response.url()
        );
    }
}

#[tokio::test]
async fn behind_an_https_public_url_every_response_asks_for_https_only() {
    // consentry serves plain http behind a TLS terminator; the public URL says https.
    let app = spawn_app_with(|raw, _| {
        raw.set("CONSENTRY_PUBLIC_URL", "https://onboarding.example.com");
    })
    .await;
    let browser = app.browser();

    let responses = [
        ("landing", browser.get("/").await),
        ("login", browser.get("/admin/login").await),
        ("anonymous admin", browser.get("/admin").await),
        ("not found", browser.get("/no/such/page").await),
        (
            "wrong method",
            browser.request(reqwest::Method::DELETE, "/").await,
        ),
        ("stylesheet", browser.get("/static/consentry.css").await),
        ("health", browser.get("/health").await),
    ];

    for (what, response) in &responses {
        assert_eq!(
            response
                .headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().expect("ascii")),
            Some("max-age=31536000"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn over_plain_http_no_response_asks_for_https() {
    let app = spawn_app().await;

    let seen = tour(&app).await;

    for (what, response) in &seen {
        assert!(
            response
                .headers()
                .get("strict-transport-security")
                .is_none(),
            "{what}"
        );
    }
}

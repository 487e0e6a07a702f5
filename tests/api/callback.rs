//! `GET /consent/callback`: declines and Microsoft's other errors, and every way a success
//! callback can be refused (ENTRA.md §2, RFC 9700 §2.1).

use crate::app_helpers::{
    TestApp, assert_error_page, callback_url, random_token, request_id, section, spawn_app,
    state_of,
};
use crate::helpers::html_unescape;

/// Asserts a refused callback whose state we never stored: consentry's 400 error page, no
/// row written for it, and one more refusal of `reason` on the dashboard's counter.
async fn assert_refused_unstored(
    app: &TestApp,
    response: reqwest::Response,
    reason: &str,
    counted_before: u64,
) -> String {
    let (rid, html) = assert_error_page(response, 400).await;
    let events = app.events().await;
    assert!(
        events
            .iter()
            .all(|e| e.request_id.as_deref() != Some(rid.as_str())),
        "no event for request {rid}: {events:?}"
    );
    assert_eq!(
        refused_count(app, reason).await,
        counted_before + 1,
        "{reason} is counted"
    );
    html
}

/// How many refused callbacks of `reason` the dashboard counts.
pub async fn refused_count(app: &TestApp, reason: &str) -> u64 {
    let html = app.dashboard().await;
    let line = section(&html, r#"<p class="small" id="refused-callbacks">"#, "</p>");
    line.split(['(', ',', ')'])
        .map(str::trim)
        .find_map(|part| part.strip_prefix(&format!("{reason} ")))
        .map(|n| n.parse().expect("a count"))
        .unwrap_or(0)
}

/// Asserts a refused callback whose state we stored: consentry's 400 error page, and one
/// event for its request: `callback_rejected`, naming `reason`. Returns the page.
pub async fn assert_refused(app: &TestApp, response: reqwest::Response, reason: &str) -> String {
    let (rid, html) = assert_error_page(response, 400).await;
    let events = app.events().await;
    let mine: Vec<_> = events
        .iter()
        .filter(|e| e.request_id.as_deref() == Some(rid.as_str()))
        .collect();
    assert_eq!(mine.len(), 1, "one event for request {rid}: {events:?}");
    let event = mine[0];
    assert_eq!(event.kind, "callback_rejected", "{event:?}");
    assert!(event.detail.contains(reason), "{reason} in {event:?}");
    assert!(event.tenant_id.is_none(), "{event:?}");
    html
}

#[tokio::test]
async fn declining_shows_a_friendly_page_records_it_and_burns_the_state() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let to_microsoft = browser.signup(&[]).await;
    let state = state_of(&to_microsoft);

    let declined = app.emulator_decision(&to_microsoft, "cancel", None).await;
    let page = browser.get(&declined).await;

    assert_eq!(page.status(), 200);
    let rid = request_id(&page);
    let html = page.text().await.expect("html");
    assert!(html.contains("<h1>You cancelled</h1>"), "{html}");
    let description = url::Url::parse(&declined)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == "error_description")
        .map(|(_, v)| v.into_owned())
        .expect("Microsoft's description");
    let headline = description.lines().next().expect("a first line").trim();
    assert!(headline.starts_with("AADSTS65004:"), "{headline}");
    let shown = section(
        &html,
        r#"<pre class="aadsts" id="microsoft-says">"#,
        "</pre>",
    );
    assert_eq!(
        html_unescape(shown),
        format!(r#"<pre class="aadsts" id="microsoft-says">{headline}</pre>"#)
    );
    assert!(!html.contains("Trace ID"), "only the first line is shown");
    assert_eq!(app.tenant_count().await, 0);
    assert_eq!(app.event_kinds().await, ["consent_declined"]);
    let event = &app.events().await[0];
    assert!(event.detail.contains("AADSTS65004"), "{event:?}");
    assert_eq!(event.request_id.as_deref(), Some(rid.as_str()));

    // The same state, now presented as a success: it was used up by the decline.
    let replay = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
            ("state", &state),
        ]))
        .await;
    assert_refused(&app, replay, "replayed_state").await;
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn admin_approval_required_is_explained() {
    let app = spawn_app().await;
    let browser = app.browser();
    let state = state_of(&browser.signup(&[]).await);

    let page = browser
        .get(&callback_url(&[
            ("error", "access_denied"),
            (
                "error_description",
                "AADSTS90094: Admin consent is required for the permissions requested by this application.\r\nTrace ID: 1\r\nCorrelation ID: 2\r\nTimestamp: 2026-01-01 00:00:00Z",
            ),
            ("admin_consent", "True"),
            ("state", &state),
        ]))
        .await;

    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("<h1>An administrator has to approve this</h1>"),
        "{html}"
    );
    assert!(
        html.contains("Global or Privileged Role Administrator"),
        "{html}"
    );
    assert!(
        html.contains("AADSTS90094: Admin consent is required"),
        "{html}"
    );
    assert_eq!(app.tenant_count().await, 0);
    assert_eq!(app.event_kinds().await, ["consent_declined"]);
}

#[tokio::test]
async fn microsofts_error_text_is_escaped() {
    let app = spawn_app().await;
    let browser = app.browser();
    let state = state_of(&browser.signup(&[]).await);

    let page = browser
        .get(&callback_url(&[
            ("error", "access_denied"),
            (
                "error_description",
                r#"AADSTS65004: <script>alert("x")</script><img src=x onerror=alert(1)>"#,
            ),
            ("admin_consent", "True"),
            ("state", &state),
        ]))
        .await;

    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    let shown = section(&html, r#"id="microsoft-says">"#, "</pre>");
    let inner = &shown[r#"id="microsoft-says">"#.len()..shown.len() - "</pre>".len()];
    assert!(
        !inner.contains(['<', '>', '"']),
        "markup characters are escaped: {inner}"
    );
    assert!(
        html_unescape(shown).contains(r#"<script>alert("x")</script><img src=x onerror=alert(1)>"#),
        "{shown}"
    );
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn an_unknown_state_is_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    browser.signup(&[]).await;

    let response = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
            ("state", &random_token()),
        ]))
        .await;

    assert_refused_unstored(&app, response, "unknown_state", 0).await;
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let callback = app.consent(&browser, &contoso).await;
    app.expire_consent_requests().await;

    let response = browser.get(&callback).await;

    let html = assert_refused(&app, response, "expired_state").await;
    assert!(html.contains("has expired"), "{html}");
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let callback = app.consent(&browser, &contoso).await;

    let first = browser.get(&callback).await;
    let second = browser.get(&callback).await;

    assert_eq!(first.status(), 303);
    let html = assert_refused(&app, second, "replayed_state").await;
    assert!(html.contains("already used"), "{html}");
    assert_eq!(app.tenant_count().await, 1);
    let kinds = app.event_kinds().await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "consent_recorded").count(),
        1,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_callback_opened_in_another_browser_is_refused_and_burns_nothing() {
    let app = spawn_app().await;
    let (owner, cookieless, other) = (app.browser(), app.browser(), app.browser());
    let contoso = app.emulator.contoso();
    let callback = app.consent(&owner, &contoso).await;
    other.signup(&[]).await; // a binding of its own

    let without_binding = cookieless.get(&callback).await;
    let html = assert_refused(&app, without_binding, "no_binding").await;
    assert!(html.contains("another browser"), "{html}");
    let with_another_binding = other.get(&callback).await;
    // The same stored request refused again: counted, no second row.
    let html = assert_refused_unstored(&app, with_another_binding, "other_browser", 0).await;
    assert!(html.contains("another browser"), "{html}");
    assert_eq!(app.tenant_count().await, 0);

    // The refusals wrote nothing: the admin's own browser still finishes.
    assert_eq!(owner.get(&callback).await.status(), 303);
    assert_eq!(app.tenant_count().await, 1);
}

/// A browser that signed up (so it has a binding and a live state), and that state.
async fn signed_up(app: &TestApp) -> (crate::app_helpers::Browser, String) {
    let browser = app.browser();
    let state = state_of(&browser.signup(&[]).await);
    (browser, state)
}

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let app = spawn_app().await;
    let (browser, _) = signed_up(&app).await;
    let contoso = app.emulator.contoso();

    let response = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
        ]))
        .await;

    assert_refused_unstored(&app, response, "missing_state", 0).await;
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn a_malformed_state_is_refused() {
    let app = spawn_app().await;
    let (browser, _) = signed_up(&app).await;
    let contoso = app.emulator.contoso();

    let response = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
            ("state", "abc"),
        ]))
        .await;

    assert_refused_unstored(&app, response, "malformed_state", 0).await;
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn a_tenant_that_is_not_a_guid_is_refused_and_the_state_survives() {
    let app = spawn_app().await;
    let (browser, state) = signed_up(&app).await;

    let response = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", "contoso.com"),
            ("state", &state),
        ]))
        .await;

    assert_refused(&app, response, "bad_tenant").await;
    assert_eq!(app.tenant_count().await, 0);
    assert_eq!(
        app.count_rows("consent_request where consumed_at is null")
            .await,
        1,
        "the state was not consumed"
    );
}

#[tokio::test]
async fn a_callback_without_admin_consent_is_refused() {
    let app = spawn_app().await;
    let (browser, state) = signed_up(&app).await;
    let contoso = app.emulator.contoso();

    let missing = browser
        .get(&callback_url(&[("tenant", &contoso), ("state", &state)]))
        .await;
    assert_refused(&app, missing, "not_consented").await;
    let falsy = browser
        .get(&callback_url(&[
            ("admin_consent", "False"),
            ("tenant", &contoso),
            ("state", &state),
        ]))
        .await;
    assert_refused_unstored(&app, falsy, "not_consented", 0).await;

    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn a_repeated_state_parameter_is_refused() {
    let app = spawn_app().await;
    let (browser, state) = signed_up(&app).await;
    let contoso = app.emulator.contoso();

    let response = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
            ("state", &state),
            ("state", &state),
        ]))
        .await;

    let html = assert_refused_unstored(&app, response, "malformed_query", 0).await;
    assert!(html_unescape(&html).contains("repeats 'state'"), "{html}");
    assert_eq!(app.tenant_count().await, 0);
    assert_eq!(
        app.count_rows("consent_request where consumed_at is null")
            .await,
        1
    );
}

#[tokio::test]
async fn a_very_long_query_is_refused() {
    let app = spawn_app().await;
    let (browser, state) = signed_up(&app).await;
    let contoso = app.emulator.contoso();
    let padding = "x".repeat(17 * 1024);

    let response = browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
            ("state", &state),
            ("session_state", &padding),
        ]))
        .await;

    let html = assert_refused_unstored(&app, response, "malformed_query", 0).await;
    assert!(html.contains("too long"), "{html}");
    assert!(!html.contains(&padding[..100]), "the query is not echoed");
    assert_eq!(app.tenant_count().await, 0);
}

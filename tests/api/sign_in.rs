//! The verified sign-up (`CONSENTRY_SIGNUP_SIGN_IN`): the person signs in with Microsoft
//! (the emulator's pages), consentry validates the ID token and sends them to their own
//! tenant's admin consent; every refusal of the "Bad input" through the emulator's
//! hostile modes and two cookie-keeping browsers.

use serde_json::json;

use crate::app_helpers::{Browser, TestApp, assert_error_page, hidden, spawn_app, spawn_app_with};
use crate::helpers::FABRIKAM;

const CONTOSO_ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO_MEMBER: &str = "adele.vance@contoso.com";

/// Starts a verified sign-up in `browser`: Microsoft's authorize URL.
async fn start(browser: &Browser) -> String {
    let csrf = browser.csrf_of("/").await;
    let response = browser
        .post_form("/signup/microsoft", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(response.status(), 303, "off to Microsoft");
    response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Signs `username` in on the emulator's pages from `authorize`: the URL Microsoft sends
/// the browser back to (consentry's, not yet visited).
async fn microsoft_answer(app: &TestApp, browser: &Browser, authorize: &str, user: &str) -> String {
    app.emulator
        .sign_in_through_pages(&browser.http, authorize, user)
        .await
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Events of one kind, oldest first: their details.
async fn details(app: &TestApp, kind: &str) -> Vec<String> {
    app.events()
        .await
        .into_iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.detail)
        .collect()
}

/// The whole database as text, to show that no token was written anywhere.
async fn dump(app: &TestApp) -> String {
    let db = app.db().await;
    let mut out = String::new();
    for table in [
        "consent_request",
        "sign_in_request",
        "tenant_event",
        "invitation",
    ] {
        out.push_str(&crate::app_helpers::table_text(&db, table).await);
    }
    db.close().await;
    out
}

#[tokio::test]
async fn an_administrator_signs_in_connects_their_own_tenant_and_is_named_as_verified() {
    // Arrange
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();

    // Act: sign in, then approve on the admin-consent page consentry sends them to.
    let authorize = start(&browser).await;
    assert!(
        authorize.contains("/organizations/oauth2/v2.0/authorize?"),
        "{authorize}"
    );
    assert_eq!(
        param(&authorize, "scope").as_deref(),
        Some("openid profile email")
    );
    assert_eq!(
        param(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(param(&authorize, "nonce").is_some());
    let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_ADMIN).await;
    assert!(
        back.starts_with(&format!("{}/signup/signed-in?", app.base)),
        "{back}"
    );
    let to_consent = browser.get(&back).await;
    assert_eq!(to_consent.status(), 303, "the sign-in is accepted");
    let adminconsent = to_consent.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        adminconsent.contains(&format!("/{contoso}/adminconsent?")),
        "the person's own tenant's consent page: {adminconsent}"
    );
    let callback = app
        .emulator_decision(&adminconsent, "accept", Some(&contoso))
        .await;
    let recorded = browser.get(&callback).await;
    assert_eq!(recorded.status(), 303, "the callback is accepted");
    let tenant = app.wait_for_outcome(&contoso, 15).await;

    // Assert: the browser's status page names the organisation, the outcome and the person.
    assert_eq!(tenant.status, "active");
    let status = browser.get("/consent/status").await.text().await.unwrap();
    assert!(status.contains("Contoso Ltd is connected"), "{status}");
    assert!(
        status.contains("id=\"connected-by\"") && status.contains("Contoso Ltd Administrator"),
        "{status}"
    );
    // The dashboard says who connected it, as verified.
    let operator = app.operator().await;
    let page = operator
        .get(&format!("/admin/tenants/{contoso}"))
        .await
        .text()
        .await
        .unwrap();
    let line = crate::app_helpers::section(&page, "<p id=\"connected-by\">", "</p>");
    assert!(line.contains("verified"), "{line}");
    assert!(line.contains("Contoso Ltd Administrator"), "{line}");
    assert!(line.contains(CONTOSO_ADMIN), "{line}");
    // No token of any kind was stored.
    let everything = dump(&app).await;
    assert!(
        !everything.contains("eyJ"),
        "a JWT was stored: {everything}"
    );
}

#[tokio::test]
async fn a_member_who_is_not_an_administrator_is_told_and_given_an_invitation_to_forward() {
    // Arrange
    let app = spawn_app().await;
    let browser = app.browser();

    // Act
    let authorize = start(&browser).await;
    let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_MEMBER).await;
    let page = browser.get(&back).await;

    // Assert: a plain page with a link for the administrator, and no sign-up.
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("not an"), "{html}");
    assert!(html.contains(CONTOSO_MEMBER), "{html}");
    let link = crate::helpers::html_unescape(&hidden_value(&html, "invitation-link"));
    assert!(link.starts_with(&format!("{}/invite/", app.base)), "{link}");
    assert_eq!(app.count_rows("consent_request").await, 0);
    assert_eq!(app.tenant_count().await, 0);
    assert_eq!(details(&app, "sign_in_not_administrator").await.len(), 1);
    // The link is an invitation for that tenant, which the administrator can open.
    let administrator = app.browser();
    let invitation = administrator.get(&link).await;
    assert_eq!(invitation.status(), 200);
    let html = invitation.text().await.unwrap();
    assert!(html.contains(&app.emulator.contoso()), "{html}");
    // Signing in again shows the same link rather than a new invitation.
    let again = start(&browser).await;
    let back = microsoft_answer(&app, &browser, &again, CONTOSO_MEMBER).await;
    let html = browser.get(&back).await.text().await.unwrap();
    assert_eq!(
        crate::helpers::html_unescape(&hidden_value(&html, "invitation-link")),
        link
    );
    assert_eq!(app.count_rows("invitation").await, 1);
}

/// The `value` of the element with `id`.
fn hidden_value(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).expect("the element");
    let rest = &html[at..];
    let start = rest.find("value=\"").expect("a value") + 7;
    let end = rest[start..].find('"').unwrap() + start;
    rest[start..end].to_owned()
}

#[tokio::test]
async fn a_callback_that_names_another_tenant_than_the_signed_in_persons_is_refused() {
    // Arrange: Contoso's administrator signed in; the consent page's callback is forged to
    // name Fabrikam.
    let app = spawn_app().await;
    let browser = app.browser();
    let authorize = start(&browser).await;
    let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_ADMIN).await;
    let to_consent = browser.get(&back).await;
    let adminconsent = to_consent.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let state = param(&adminconsent, "state").unwrap();

    // Act
    let refused = browser
        .get(&crate::app_helpers::callback_url(&[
            ("admin_consent", "True"),
            ("tenant", FABRIKAM),
            ("state", &state),
        ]))
        .await;

    // Assert: a clear page, an event, no tenant; the state is spent.
    let (_, html) = assert_error_page(refused, 400).await;
    assert!(
        html.contains("another organisation than the one you signed in to"),
        "{html}"
    );
    assert_eq!(app.tenant_count().await, 0);
    let refusals = details(&app, "callback_rejected").await;
    assert!(
        refusals
            .iter()
            .any(|d| d.contains("signed in with Microsoft") && d.contains(FABRIKAM)),
        "{refusals:?}"
    );
    let replay = browser
        .get(&crate::app_helpers::callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &app.emulator.contoso()),
            ("state", &state),
        ]))
        .await;
    assert_error_page(replay, 400).await;
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn every_tampered_id_token_is_refused_with_a_page_and_an_event() {
    let app = spawn_app().await;
    for (i, (mode, reason)) in [
        ("wrong_issuer", "wrong_issuer"),
        ("wrong_audience", "wrong_audience"),
        ("wrong_tenant", "wrong_issuer"),
        ("expired", "expired_id_token"),
        ("not_yet_valid", "id_token_not_yet_valid"),
        ("unknown_kid", "unknown_signing_key"),
        ("bad_signature", "bad_signature"),
        ("alg_none", "id_token_algorithm"),
    ]
    .into_iter()
    .enumerate()
    {
        // Arrange: the next ID token comes out wrong in one way. Each browser on an address
        // of its own, as the sign-up's rate limit is per address.
        let browser = app
            .browser()
            .on_address(std::net::Ipv4Addr::new(127, 0, 0, 10 + i as u8).into());
        let authorize = start(&browser).await;
        let (status, body) = app
            .emulator
            .control(
                reqwest::Method::POST,
                "/hostile",
                Some(json!({"mode": mode, "tokens": ["id_token"]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_ADMIN).await;

        // Act
        let refused = browser.get(&back).await;

        // Assert
        let (rid, html) = assert_error_page(refused, 400).await;
        assert!(html.contains(reason), "{mode}: {html}");
        let events = app.events().await;
        let event = events
            .iter()
            .find(|e| e.request_id.as_deref() == Some(rid.as_str()))
            .unwrap_or_else(|| panic!("{mode}: an event for request {rid}"));
        assert_eq!(event.kind, "sign_in_refused", "{mode}");
        assert!(event.detail.contains(reason), "{mode}: {}", event.detail);
        assert_eq!(app.count_rows("consent_request").await, 0, "{mode}");
    }
    assert_eq!(app.tenant_count().await, 0);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_reads_the_keys_once_more_at_most() {
    // Arrange: a first sign-in loads the keys.
    let app = spawn_app().await;
    let first = app.browser();
    let authorize = start(&first).await;
    let back = microsoft_answer(&app, &first, &authorize, CONTOSO_ADMIN).await;
    assert_eq!(first.get(&back).await.status(), 303);
    let keys_read =
        |requests: serde_json::Value| requests["endpoints"]["keys"].as_u64().unwrap_or(0);
    assert_eq!(keys_read(app.emulator.requests().await), 1);
    app.emulator
        .control(
            reqwest::Method::POST,
            "/hostile",
            Some(json!({"mode": "unknown_kid", "tokens": ["id_token"], "count": 4})),
        )
        .await;

    // Act: four sign-ins whose ID tokens name keys nobody published.
    for _ in 0..4 {
        let browser = app.browser();
        let authorize = start(&browser).await;
        let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_ADMIN).await;
        assert_error_page(browser.get(&back).await, 400).await;
    }

    // Assert: one refresh for the first unknown kid, none for the rest.
    assert_eq!(keys_read(app.emulator.requests().await), 2);
}

#[tokio::test]
async fn an_attackers_sign_in_answer_is_refused_in_the_victims_browser() {
    // Arrange: the attacker signs in as themself and does not visit the answer.
    let app = spawn_app().await;
    let attacker = app.browser();
    let victim = app.browser();
    let authorize = start(&attacker).await;
    let planted = microsoft_answer(&app, &attacker, &authorize, CONTOSO_ADMIN).await;
    victim.get("/").await;

    // Act: the victim is made to open it.
    let refused = victim.get(&planted).await;

    // Assert
    let (_, html) = assert_error_page(refused, 400).await;
    assert!(html.contains("another browser"), "{html}");
    assert_eq!(
        details(&app, "sign_in_refused").await,
        vec!["Sign-in refused: other_browser.".to_owned()]
    );
    assert_eq!(app.count_rows("consent_request").await, 0);
}

#[tokio::test]
async fn an_attackers_code_with_the_victims_state_fails_pkce() {
    // Arrange: the attacker's code, and the victim's own sign-in under way.
    let app = spawn_app().await;
    let attacker = app.browser();
    let victim = app.browser();
    let attackers = start(&attacker).await;
    let planted = microsoft_answer(&app, &attacker, &attackers, CONTOSO_ADMIN).await;
    let victims = start(&victim).await;
    let code = param(&planted, "code").unwrap();
    let state = param(&victims, "state").unwrap();

    // Act: code injection into the victim's answer.
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", &state)
        .finish();
    let refused = victim.get(&format!("/signup/signed-in?{query}")).await;

    // Assert: the verifier derived from the victim's state is not the attacker's.
    let (_, html) = assert_error_page(refused, 400).await;
    assert!(html.contains("code_refused_AADSTS"), "{html}");
    assert_eq!(app.count_rows("consent_request").await, 0);
    assert_eq!(details(&app, "sign_in_refused").await.len(), 1);
}

#[tokio::test]
async fn a_replayed_answer_and_a_replayed_code_are_refused() {
    // Arrange: a sign-in that went through.
    let app = spawn_app().await;
    let browser = app.browser();
    let authorize = start(&browser).await;
    let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_ADMIN).await;
    assert_eq!(browser.get(&back).await.status(), 303);

    // Act + Assert: the same answer again.
    let (_, html) = assert_error_page(browser.get(&back).await, 400).await;
    assert!(html.contains("already used"), "{html}");

    // Act + Assert: the used code with a fresh state of the same browser.
    let fresh = start(&browser).await;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &param(&back, "code").unwrap())
        .append_pair("state", &param(&fresh, "state").unwrap())
        .finish();
    let (_, html) = assert_error_page(
        browser.get(&format!("/signup/signed-in?{query}")).await,
        400,
    )
    .await;
    assert!(html.contains("code_refused_AADSTS"), "{html}");
    assert_eq!(
        app.count_rows("consent_request").await,
        1,
        "only the first sign-in's"
    );
}

#[tokio::test]
async fn an_error_from_the_authorize_endpoint_is_a_clear_page_and_an_event() {
    // Arrange
    let app = spawn_app().await;
    let browser = app.browser();
    let authorize = start(&browser).await;
    let state = param(&authorize, "state").unwrap();

    // Act: Microsoft answers with an error (the person cancelled).
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("error", "access_denied")
        .append_pair(
            "error_description",
            "AADSTS65004: User declined to consent to access the app.",
        )
        .append_pair("state", &state)
        .finish();
    let page = browser.get(&format!("/signup/signed-in?{query}")).await;

    // Assert
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("You cancelled"), "{html}");
    let refused = details(&app, "sign_in_refused").await;
    assert_eq!(refused.len(), 1);
    assert!(refused[0].contains("AADSTS65004"), "{refused:?}");
    assert_eq!(app.count_rows("consent_request").await, 0);
}

#[tokio::test]
async fn answers_without_a_state_of_ours_write_nothing() {
    let app = spawn_app().await;
    let browser = app.browser();
    for query in [
        "code=abc".to_owned(),
        format!("code=abc&state={}", crate::app_helpers::random_token()),
        "state=short&code=abc".to_owned(),
        "code=a&code=b".to_owned(),
    ] {
        let refused = browser.get(&format!("/signup/signed-in?{query}")).await;
        assert_error_page(refused, 400).await;
    }
    assert_eq!(app.events().await.len(), 0);
}

#[tokio::test]
async fn off_keeps_the_old_flow_and_required_allows_only_the_verified_one() {
    // Off: no sign-in button, and its routes are not there.
    let off = spawn_app_with(|raw, _| raw.set("CONSENTRY_SIGNUP_SIGN_IN", "off")).await;
    let browser = off.browser();
    let landing = browser.get("/").await.text().await.unwrap();
    assert!(!landing.contains("/signup/microsoft"), "{landing}");
    let csrf = hidden(&landing, "csrf");
    let response = browser
        .post_form("/signup/microsoft", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(browser.signup_response(&[]).await.status(), 303);

    // Required: only the sign-in; the unauthenticated way is refused with a page.
    let required = spawn_app_with(|raw, _| raw.set("CONSENTRY_SIGNUP_SIGN_IN", "required")).await;
    let browser = required.browser();
    let landing = browser.get("/").await.text().await.unwrap();
    assert!(landing.contains("/signup/microsoft"), "{landing}");
    assert!(!landing.contains("action=\"/signup\""), "{landing}");
    let (_, html) = assert_error_page(browser.signup_response(&[]).await, 400).await;
    assert!(html.contains("Sign in with Microsoft"), "{html}");
    assert_eq!(required.count_rows("consent_request").await, 0);

    // Optional (the default): both, and what signing in adds.
    let optional = spawn_app().await;
    let landing = optional.browser().get("/").await.text().await.unwrap();
    assert!(landing.contains("/signup/microsoft") && landing.contains("action=\"/signup\""));
    assert!(
        landing.contains("Or connect without signing in"),
        "{landing}"
    );
}

#[tokio::test]
async fn a_bad_setting_is_refused_at_start() {
    let mut raw = consentry::config::RawSettings::default();
    raw.set(
        "CONSENTRY_CLIENT_ID",
        consentry::emulator::DEFAULT_CLIENT_ID.to_string(),
    );
    raw.set("CONSENTRY_CLIENT_SECRET", "s");
    raw.set("CONSENTRY_SESSION_KEY", base64_key());
    raw.set("CONSENTRY_SIGNUP_SIGN_IN", "sometimes");
    let error = raw.parse().expect_err("refused");
    assert!(
        error.to_string().contains("CONSENTRY_SIGNUP_SIGN_IN"),
        "{error}"
    );
}

fn base64_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([7u8; 32])
}

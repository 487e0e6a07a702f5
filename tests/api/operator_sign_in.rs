//! Operators sign in with Microsoft (`CONSENTRY_OPERATOR_TENANT`): through the emulator's
//! pages for our own tenant (Contoso here), an operator tied to the ID token's `tid` and
//! `oid`, created as a viewer or taken over from an owner's registration; every refusal of
//! the "Bad input" (hostile ID tokens, another browser's answer, replays, an
//! authorize error, another tenant's user, a missing role, a disabled operator) is a page,
//! an event and an audit line, and never a session.

use serde_json::json;

use crate::app_helpers::{
    Browser, OPERATOR, OPERATOR_PASSWORD, TestApp, hidden, request_id, set_cookie, spawn_app,
    spawn_app_with,
};
use crate::helpers::FABRIKAM;

const CONTOSO_ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO_MEMBER: &str = "adele.vance@contoso.com";
const FABRIKAM_ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
const ROLE: &str = "Consentry.Operator";

/// consentry whose operators' tenant is the emulator's Contoso; `role` required when set.
async fn spawn_for_operators(role: Option<&'static str>, passwords: bool) -> TestApp {
    spawn_app_with(move |raw, _| {
        raw.set(
            "CONSENTRY_OPERATOR_TENANT",
            consentry::emulator::CONTOSO.to_string(),
        );
        if let Some(role) = role {
            raw.set("CONSENTRY_OPERATOR_ROLE", role);
        }
        raw.set(
            "CONSENTRY_OPERATOR_PASSWORDS",
            if passwords { "true" } else { "false" },
        );
    })
    .await
}

/// Presses "Sign in with Microsoft" on the sign-in page: Microsoft's authorize URL.
async fn start(browser: &Browser) -> String {
    let page = browser.get("/admin/login").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/admin/login/microsoft\""), "{html}");
    let csrf = hidden(&html, "csrf");
    let response = browser
        .post_form("/admin/login/microsoft", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(response.status(), 303, "off to Microsoft");
    response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Signs `user` in on the emulator's pages: where Microsoft sends the browser back.
async fn microsoft_answer(app: &TestApp, browser: &Browser, authorize: &str, user: &str) -> String {
    app.emulator
        .sign_in_through_pages(&browser.http, authorize, user)
        .await
}

/// A whole sign-in with Microsoft as `user`: consentry's answer to Microsoft's redirect.
async fn sign_in_as(app: &TestApp, browser: &Browser, user: &str) -> reqwest::Response {
    let authorize = start(browser).await;
    let back = microsoft_answer(app, browser, &authorize, user).await;
    browser.get(&back).await
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// (actor, action, target, outcome) of every audit row, oldest first.
async fn trail(app: &TestApp) -> Vec<(String, String, String, String)> {
    sqlx::query_as("select actor, action, target, outcome from audit_event order by id")
        .fetch_all(&app.db().await)
        .await
        .expect("audit rows")
}

/// The refused sign-ins with Microsoft in the audit trail: their targets.
async fn refused_in_trail(app: &TestApp) -> Vec<String> {
    trail(app)
        .await
        .into_iter()
        .filter(|(actor, action, _, outcome)| {
            actor == "unknown" && action == "sign_in.microsoft" && outcome == "failure"
        })
        .map(|(_, _, target, _)| target)
        .collect()
}

/// Details of the `sign_in_refused` events, oldest first.
async fn refusal_events(app: &TestApp) -> Vec<String> {
    app.events()
        .await
        .into_iter()
        .filter(|e| e.kind == "sign_in_refused")
        .map(|e| e.detail)
        .collect()
}

/// Asserts `response` is the sign-in page refusing with `status`, with no session, and
/// that `/admin` still sends this browser to the sign-in page. Returns (request id, html).
async fn assert_refused(
    browser: &Browser,
    response: reqwest::Response,
    status: u16,
) -> (String, String) {
    let actual = response.status().as_u16();
    assert!(set_cookie(&response, "consentry_session").is_none());
    let rid = request_id(&response);
    let html = response.text().await.unwrap();
    assert_eq!(actual, status, "{html}");
    assert!(html.contains("id=\"login-error\""), "{html}");
    assert!(
        html.contains(&format!("<code id=\"request-id\">{rid}</code>")),
        "{html}"
    );
    assert!(browser.cookie("consentry_session", "/admin").is_none());
    let dashboard = browser.get("/admin").await;
    assert_eq!(dashboard.status(), 303, "no session");
    (rid, html)
}

/// (name, role, microsoft_oid) of every operator, by name.
async fn operators(app: &TestApp) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as("select name, role, microsoft_oid from operator order by name")
        .fetch_all(&app.db().await)
        .await
        .expect("operators")
}

#[tokio::test]
async fn a_user_of_our_tenant_signs_in_as_a_new_viewer_and_again_as_the_same_operator() {
    // Arrange
    let app = spawn_for_operators(None, true).await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();

    // Act: the sign-in page offers both ways; the person signs in on Contoso's own pages.
    let login = browser.get("/admin/login").await.text().await.unwrap();
    let authorize = start(&browser).await;
    let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_MEMBER).await;
    let landed = browser.get(&back).await;

    // Assert: our tenant's authorize endpoint, PKCE, a nonce, OpenID scopes only.
    assert!(login.contains("action=\"/admin/login\""), "{login}");
    assert!(
        authorize.contains(&format!("/{contoso}/oauth2/v2.0/authorize?")),
        "{authorize}"
    );
    assert_eq!(
        param(&authorize, "redirect_uri"),
        Some(format!("{}/admin/signed-in", app.base))
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
    // A page that moves on to the dashboard, with a strict session cookie.
    assert_eq!(landed.status(), 200);
    let cookie = set_cookie(&landed, "consentry_session").expect("a session");
    assert!(cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"));
    let html = landed.text().await.unwrap();
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    assert!(html.contains("id=\"first-sign-in\""), "{html}");
    let dashboard = browser.get("/admin").await;
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.unwrap();
    assert!(html.contains(CONTOSO_MEMBER), "{html}");
    // A viewer tied to the person's object id, and the trail says how they signed in.
    let (_, member) = app
        .emulator
        .control(
            reqwest::Method::GET,
            &format!("/tenants/{contoso}/users/{CONTOSO_MEMBER}"),
            None,
        )
        .await;
    let oid = member["id"].as_str().unwrap().to_owned();
    assert_eq!(
        operators(&app).await,
        vec![
            (CONTOSO_MEMBER.to_owned(), "viewer".to_owned(), Some(oid)),
            (OPERATOR.to_owned(), "owner".to_owned(), None),
        ]
    );
    let rows = trail(&app).await;
    assert!(
        rows.contains(&(
            CONTOSO_MEMBER.into(),
            "sign_in.microsoft".into(),
            CONTOSO_MEMBER.into(),
            "success".into()
        )),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|(a, action, _, _)| a == CONTOSO_MEMBER && action == "operator.add"),
        "{rows:?}"
    );
    // Roles work as for a password sign-in: a viewer may not post an operator's action.
    let csrf = hidden(&html, "csrf");
    let forbidden = browser
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(forbidden.status(), 403);
    // CSRF works too: signing out without the token is refused, with it accepted.
    assert_eq!(browser.post_form("/admin/logout", &[]).await.status(), 403);
    let out = browser
        .post_form("/admin/logout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(out.status(), 303);
    assert_eq!(browser.get("/admin").await.status(), 303);

    // Act again: the second sign-in is the same operator, not a new one.
    let again = sign_in_as(&app, &browser, CONTOSO_MEMBER).await;
    assert_eq!(again.status(), 200);
    let html = again.text().await.unwrap();
    assert!(!html.contains("id=\"first-sign-in\""), "{html}");
    assert_eq!(operators(&app).await.len(), 2);
    assert_eq!(browser.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn an_owners_registration_keeps_its_role_and_its_name_is_matched_at_the_first_sign_in_only() {
    // Arrange: an owner registered Contoso's administrator as an operator.
    let app = spawn_for_operators(None, true).await;
    let owner = app.operator().await;
    let page = owner.get("/admin/operators").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let added = owner
        .post_form(
            "/admin/operators",
            &[
                ("csrf", csrf.as_str()),
                ("name", "Admin@Contoso.onmicrosoft.com"),
                ("role", "operator"),
            ],
        )
        .await;
    assert_eq!(added.status(), 200);

    // Act
    let browser = app.browser();
    let landed = sign_in_as(&app, &browser, CONTOSO_ADMIN).await;

    // Assert: the registered operator, with its role, now tied to the person.
    assert_eq!(landed.status(), 200);
    let html = landed.text().await.unwrap();
    assert!(
        html.contains("<strong>Admin@Contoso.onmicrosoft.com</strong>, operator)"),
        "{html}"
    );
    assert_eq!(browser.get("/admin/audit").await.status(), 200);
    let all = operators(&app).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all.iter()
            .any(|(name, role, oid)| name == "Admin@Contoso.onmicrosoft.com"
                && role == "operator"
                && oid.is_some()),
        "{all:?}"
    );

    // Arrange: the operator is now tied to another identity (the username was given to
    // someone else, as far as consentry can tell).
    let db = app.db().await;
    sqlx::query("update operator set microsoft_oid = 'someone-else' where name = $1")
        .bind("Admin@Contoso.onmicrosoft.com")
        .execute(&db)
        .await
        .unwrap();

    // Act: the person signs in again.
    let other = app.browser();
    let refused = sign_in_as(&app, &other, CONTOSO_ADMIN).await;

    // Assert: the name alone does not let them in.
    let (_, html) = assert_refused(&other, refused, 403).await;
    assert!(
        html.contains("belongs to another Microsoft account"),
        "{html}"
    );
    assert_eq!(operators(&app).await.len(), 2);
    let refusals = refused_in_trail(&app).await;
    assert_eq!(
        refusals,
        vec![format!(
            "{CONTOSO_ADMIN} (username_tied_to_another_account)"
        )]
    );
}

#[tokio::test]
async fn a_disabled_operator_cannot_sign_in_with_microsoft() {
    // Arrange: the member signed in once, then an owner disabled them.
    let app = spawn_for_operators(None, true).await;
    let first = app.browser();
    assert_eq!(sign_in_as(&app, &first, CONTOSO_MEMBER).await.status(), 200);
    let owner = app.operator().await;
    let csrf = hidden(
        &owner.get("/admin/operators").await.text().await.unwrap(),
        "csrf",
    );
    let disabled = owner
        .post_form(
            &format!("/admin/operators/{CONTOSO_MEMBER}/disable"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(disabled.status(), 303);

    // Act
    let browser = app.browser();
    let refused = sign_in_as(&app, &browser, CONTOSO_MEMBER).await;

    // Assert: refused, and the earlier session ended with the disabling.
    let (rid, html) = assert_refused(&browser, refused, 403).await;
    assert!(html.contains("is disabled"), "{html}");
    assert_eq!(first.get("/admin").await.status(), 303);
    let event = app
        .events()
        .await
        .into_iter()
        .find(|e| e.request_id.as_deref() == Some(rid.as_str()))
        .expect("an event for the refusal");
    assert!(
        event.detail.contains("operator_disabled"),
        "{}",
        event.detail
    );
    assert_eq!(
        refused_in_trail(&app).await,
        vec![format!("{CONTOSO_MEMBER} (operator_disabled)")]
    );
}

#[tokio::test]
async fn with_a_role_set_only_users_holding_it_get_in() {
    // Arrange: the app declares the role; only the administrator holds it.
    let app = spawn_for_operators(Some(ROLE), true).await;
    let contoso = app.emulator.contoso();
    let (status, body) = app
        .emulator
        .control(
            reqwest::Method::POST,
            "/app/roles",
            Some(json!({"value": ROLE})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .emulator
        .control(
            reqwest::Method::PUT,
            &format!("/tenants/{contoso}/users/{CONTOSO_ADMIN}/roles"),
            Some(json!([ROLE])),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Act
    let member = app.browser();
    let refused = sign_in_as(&app, &member, CONTOSO_MEMBER).await;
    let holder = app.browser();
    let admitted = sign_in_as(&app, &holder, CONTOSO_ADMIN).await;

    // Assert
    let (_, html) = assert_refused(&member, refused, 403).await;
    assert!(html.contains(ROLE), "{html}");
    assert_eq!(admitted.status(), 200);
    assert_eq!(holder.get("/admin").await.status(), 200);
    assert_eq!(
        refused_in_trail(&app).await,
        vec![format!("{CONTOSO_MEMBER} (missing_role)")]
    );
    let names: Vec<String> = operators(&app).await.into_iter().map(|o| o.0).collect();
    assert_eq!(names, vec![CONTOSO_ADMIN.to_owned(), OPERATOR.to_owned()]);
}

#[tokio::test]
async fn every_tampered_id_token_is_refused_with_a_page_an_event_and_an_audit_line() {
    let app = spawn_for_operators(None, true).await;
    let modes = [
        ("wrong_issuer", "wrong_issuer"),
        ("wrong_audience", "wrong_audience"),
        ("wrong_tenant", "wrong_issuer"),
        ("expired", "expired_id_token"),
        ("not_yet_valid", "id_token_not_yet_valid"),
        ("unknown_kid", "unknown_signing_key"),
        ("bad_signature", "bad_signature"),
        ("alg_none", "id_token_algorithm"),
    ];
    for (i, (mode, reason)) in modes.into_iter().enumerate() {
        // Arrange: the next ID token comes out wrong in one way (a browser on an address of
        // its own each: starting a sign-in is rate-limited per address).
        let browser = app
            .browser()
            .on_address(std::net::Ipv4Addr::new(127, 0, 0, 20 + i as u8).into());
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
        let (rid, html) = assert_refused(&browser, refused, 400).await;
        assert!(html.contains(reason), "{mode}: {html}");
        let events = app.events().await;
        let event = events
            .iter()
            .find(|e| e.request_id.as_deref() == Some(rid.as_str()))
            .unwrap_or_else(|| panic!("{mode}: an event for request {rid}"));
        assert_eq!(event.kind, "sign_in_refused", "{mode}");
        assert!(event.detail.contains(reason), "{mode}: {}", event.detail);
    }
    let refusals = refused_in_trail(&app).await;
    assert_eq!(refusals.len(), modes.len(), "{refusals:?}");
    assert_eq!(operators(&app).await.len(), 1, "no operator was created");
    assert_eq!(app.count_rows("operator_session").await, 0);
}

#[tokio::test]
async fn an_attackers_answer_or_code_in_the_victims_browser_is_refused() {
    // Arrange: the attacker signs in as themself and does not visit the answer.
    let app = spawn_for_operators(None, true).await;
    let attacker = app.browser();
    let victim = app.browser();
    let authorize = start(&attacker).await;
    let planted = microsoft_answer(&app, &attacker, &authorize, CONTOSO_MEMBER).await;
    victim.get("/admin/login").await;

    // Act: the victim is made to open the attacker's answer.
    let refused = victim.get(&planted).await;

    // Assert: bound to the attacker's browser, so no session in the victim's.
    let (_, html) = assert_refused(&victim, refused, 400).await;
    assert!(html.contains("another browser"), "{html}");
    assert_eq!(refused_in_trail(&app).await, vec!["other_browser"]);

    // Act: the attacker's code injected into the victim's own sign-in.
    let victims = start(&victim).await;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &param(&planted, "code").unwrap())
        .append_pair("state", &param(&victims, "state").unwrap())
        .finish();
    let refused = victim.get(&format!("/admin/signed-in?{query}")).await;

    // Assert: the PKCE verifier derived from the victim's state is not the attacker's.
    let (_, html) = assert_refused(&victim, refused, 400).await;
    assert!(html.contains("code_refused_AADSTS"), "{html}");
    assert_eq!(operators(&app).await.len(), 1, "no operator was created");
}

#[tokio::test]
async fn a_replayed_answer_and_a_replayed_code_are_refused() {
    // Arrange: a sign-in that went through.
    let app = spawn_for_operators(None, true).await;
    let browser = app.browser();
    let authorize = start(&browser).await;
    let back = microsoft_answer(&app, &browser, &authorize, CONTOSO_MEMBER).await;
    assert_eq!(browser.get(&back).await.status(), 200);
    let other = app.browser();

    // Act + Assert: the same answer again, in a browser without a session.
    let replay = app.browser();
    // The same browser binding, without the session the first answer opened.
    let binding = browser.cookie("consentry_binding", "/").unwrap();
    replay.plant_cookie("consentry_binding", &binding, "/");
    let (_, html) = assert_refused(&replay, replay.get(&back).await, 400).await;
    assert!(html.contains("already used"), "{html}");

    // Act + Assert: the used code with a fresh state.
    let fresh = start(&other).await;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &param(&back, "code").unwrap())
        .append_pair("state", &param(&fresh, "state").unwrap())
        .finish();
    let (_, html) = assert_refused(
        &other,
        other.get(&format!("/admin/signed-in?{query}")).await,
        400,
    )
    .await;
    assert!(html.contains("code_refused_AADSTS"), "{html}");
    assert_eq!(
        app.count_rows("operator_session").await,
        1,
        "the first only"
    );
}

#[tokio::test]
async fn an_error_from_the_authorize_endpoint_is_a_clear_refusal() {
    // Arrange
    let app = spawn_for_operators(None, true).await;
    let browser = app.browser();
    let authorize = start(&browser).await;

    // Act: Microsoft answers with an error (the person cancelled).
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("error", "access_denied")
        .append_pair(
            "error_description",
            "AADSTS65004: User declined to consent to access the app.",
        )
        .append_pair("state", &param(&authorize, "state").unwrap())
        .finish();
    let refused = browser.get(&format!("/admin/signed-in?{query}")).await;

    // Assert
    let (_, html) = assert_refused(&browser, refused, 400).await;
    assert!(html.contains("Microsoft did not sign you in"), "{html}");
    assert!(html.contains("AADSTS65004"), "{html}");
    assert_eq!(
        refused_in_trail(&app).await,
        vec!["authorize_error AADSTS65004"]
    );
    assert_eq!(refusal_events(&app).await.len(), 1);
}

#[tokio::test]
async fn a_user_of_another_tenant_does_not_get_in_by_signing_in_at_organizations() {
    // Arrange: the attacker edits our authorize URL to Microsoft's multi-tenant endpoint
    // and signs in with an account of their own organisation.
    let app = spawn_for_operators(None, true).await;
    let attacker = app.browser();
    let authorize = start(&attacker).await;
    let contoso = app.emulator.contoso();
    let rewritten = authorize.replacen(&format!("/{contoso}/"), "/organizations/", 1);
    assert_ne!(rewritten, authorize);
    let back = microsoft_answer(&app, &attacker, &rewritten, FABRIKAM_ADMIN).await;

    // Act
    let refused = attacker.get(&back).await;

    // Assert: refused, and no operator for Fabrikam's administrator.
    let (_, html) = assert_refused(&attacker, refused, 400).await;
    assert!(html.contains("We could not confirm your sign-in"), "{html}");
    assert_eq!(operators(&app).await.len(), 1);
    assert_eq!(refused_in_trail(&app).await.len(), 1);
    assert!(!html.contains(FABRIKAM), "{html}");
}

#[tokio::test]
async fn a_sign_ups_answer_is_not_an_operators_sign_in_and_foreign_answers_write_nothing() {
    // Arrange: a verified sign-up's sign-in, answered at the operators' redirect URI.
    let app = spawn_for_operators(None, true).await;
    let browser = app.browser();
    let csrf = browser.csrf_of("/").await;
    let to_microsoft = browser
        .post_form("/signup/microsoft", &[("csrf", csrf.as_str())])
        .await;
    let authorize = to_microsoft.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "anything")
        .append_pair("state", &param(&authorize, "state").unwrap())
        .finish();

    // Act
    let refused = browser.get(&format!("/admin/signed-in?{query}")).await;

    // Assert
    let (_, html) = assert_refused(&browser, refused, 400).await;
    assert!(html.contains("not started on the operators"), "{html}");
    assert_eq!(refused_in_trail(&app).await, vec!["other_purpose"]);

    // Answers without a state of ours are refused and write nothing.
    for query in [
        "code=abc".to_owned(),
        format!("code=abc&state={}", crate::app_helpers::random_token()),
        "code=a&code=b".to_owned(),
    ] {
        let refused = browser.get(&format!("/admin/signed-in?{query}")).await;
        assert_refused(&browser, refused, 400).await;
    }
    assert_eq!(refused_in_trail(&app).await.len(), 1);
    assert_eq!(refusal_events(&app).await.len(), 1);
}

#[tokio::test]
async fn with_passwords_off_the_form_is_gone_and_password_posts_are_refused() {
    // Arrange
    let app = spawn_for_operators(None, false).await;
    let browser = app.browser();

    // Act
    let page = browser.get("/admin/login").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let refused = browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", csrf.as_str()),
                ("name", OPERATOR),
                ("password", OPERATOR_PASSWORD),
            ],
        )
        .await;

    // Assert: the right password opens nothing; Microsoft still does.
    assert!(!page.contains("action=\"/admin/login\""), "{page}");
    assert!(!page.contains("type=\"password\""), "{page}");
    assert!(page.contains("action=\"/admin/login/microsoft\""), "{page}");
    assert_eq!(refused.status(), 403);
    assert!(set_cookie(&refused, "consentry_session").is_none());
    let html = refused.text().await.unwrap();
    assert!(html.contains("Passwords are turned off"), "{html}");
    assert_eq!(browser.get("/admin").await.status(), 303);
    assert_eq!(
        sign_in_as(&app, &browser, CONTOSO_MEMBER).await.status(),
        200
    );
    assert_eq!(browser.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn without_an_operator_tenant_there_is_no_sign_in_with_microsoft() {
    // Arrange
    let app = spawn_app().await;
    let browser = app.browser();

    // Act
    let page = browser.get("/admin/login").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let start = browser
        .post_form("/admin/login/microsoft", &[("csrf", csrf.as_str())])
        .await;
    let answer = browser.get("/admin/signed-in?code=a&state=b").await;

    // Assert
    assert!(!page.contains("/admin/login/microsoft"), "{page}");
    assert_eq!(start.status(), 404);
    assert_eq!(answer.status(), 404);
}

#[tokio::test]
async fn starting_needs_the_forms_csrf_token() {
    // Arrange
    let app = spawn_for_operators(None, true).await;
    let browser = app.browser();
    browser.get("/admin/login").await;

    // Act
    let refused = browser
        .post_form("/admin/login/microsoft", &[("csrf", "forged")])
        .await;

    // Assert
    assert_eq!(refused.status(), 403);
    assert_eq!(app.count_rows("sign_in_request").await, 0);
}

//! The operator dashboard: sign-in, sessions, CSRF on its forms, "verify now", the list's
//! filter and search, and that nothing under /admin answers anonymous requests.

use crate::app_helpers::{
    Browser, OPERATOR, OPERATOR_PASSWORD, TestApp, assert_error_page, callback_url,
    cookie_attributes, cookie_value, hidden, random_token, set_cookie, spawn_app, state_of,
};
use crate::helpers::FABRIKAM;

/// Tenant ids in the dashboard's table (none when it shows no table).
fn listed(html: &str) -> Vec<String> {
    let Some(start) = html.find(r#"<table id="tenants">"#) else {
        assert!(html.contains(r#"<p class="empty">"#), "{html}");
        return Vec::new();
    };
    let end = html[start..].find("</table>").expect("table end") + start;
    // Ids wrap at their dashes (`<wbr>`); the text is the id.
    html[start..end]
        .replace("<wbr>", "")
        .split("<td><code>")
        .skip(1)
        .map(|cell| cell.split('<').next().expect("id").to_owned())
        .collect()
}

/// Asserts an anonymous (or wrongly authenticated) answer: 303 to the login page, no data.
async fn assert_sent_to_login(response: reqwest::Response, secret: &str) {
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_owned());
    let body = response.text().await.expect("body");
    assert_eq!(status, 303, "{body}");
    assert_eq!(location.as_deref(), Some("/admin/login"));
    assert!(!body.contains(secret), "{body}");
    assert!(!body.contains("Contoso"), "{body}");
}

#[tokio::test]
async fn anonymous_requests_to_every_admin_route_go_to_the_login_page() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let anonymous = app.browser();
    let csrf = [("csrf", "whatever")];

    let answers = vec![
        anonymous.get("/admin").await,
        anonymous.get("/admin/").await,
        anonymous.get(&format!("/admin/tenants/{contoso}")).await,
        anonymous.get("/admin?status=active&q=contoso").await,
        anonymous
            .post_form(&format!("/admin/tenants/{contoso}/verify"), &csrf)
            .await,
        anonymous.post_form("/admin/logout", &csrf).await,
    ];

    for answer in answers {
        assert_sent_to_login(answer, &contoso).await;
    }
    assert_eq!(
        app.tenant_event_kinds(&contoso).await,
        [
            "consent_recorded",
            "verification_succeeded",
            "status_changed"
        ],
        "the anonymous verify did nothing"
    );
}

#[tokio::test]
async fn a_forged_session_cookie_gets_the_login_page() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let well_formed = app.browser();
    well_formed.plant_cookie("consentry_session", &random_token(), "/admin");
    let garbage = app.browser();
    garbage.plant_cookie("consentry_session", "admin", "/admin");

    for browser in [&well_formed, &garbage] {
        assert_sent_to_login(browser.get("/admin").await, &contoso).await;
        assert_sent_to_login(
            browser.get(&format!("/admin/tenants/{contoso}")).await,
            &contoso,
        )
        .await;
    }
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_token() {
    let app = spawn_app().await;
    let browser = app.browser();
    let token = browser.csrf_of("/admin/login").await;
    let cookieless = app.browser();

    let without = browser
        .post_form(
            "/admin/login",
            &[("name", OPERATOR), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    let wrong = browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", &random_token()),
                ("name", OPERATOR),
                ("password", OPERATOR_PASSWORD),
            ],
        )
        .await;
    let without_cookie = cookieless
        .post_form(
            "/admin/login",
            &[
                ("csrf", &token),
                ("name", OPERATOR),
                ("password", OPERATOR_PASSWORD),
            ],
        )
        .await;

    for response in [without, wrong, without_cookie] {
        assert!(set_cookie(&response, "consentry_session").is_none());
        assert_error_page(response, 403).await;
    }
    let right = browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", &token),
                ("name", OPERATOR),
                ("password", OPERATOR_PASSWORD),
            ],
        )
        .await;
    assert_eq!(right.status(), 303);
}

/// The session's CSRF token, from the tenant page's "verify now" form.
async fn session_csrf(operator: &Browser, tenant: &str) -> String {
    let page = operator.get(&format!("/admin/tenants/{tenant}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let form = crate::app_helpers::section(
        &html,
        r#"<form method="post" action="/admin/tenants/"#,
        "</form>",
    );
    hidden(form, "csrf")
}

#[tokio::test]
async fn operator_forms_need_the_sessions_csrf_token() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let operator = app.operator().await;
    let csrf = session_csrf(&operator, &contoso).await;
    let form_token = operator
        .cookie("consentry_form", "/admin")
        .expect("the login page's form cookie");
    let verify = format!("/admin/tenants/{contoso}/verify");

    let refused = vec![
        operator.post_form(&verify, &[]).await,
        operator.post_form(&verify, &[("csrf", "")]).await,
        operator
            .post_form(&verify, &[("csrf", &random_token())])
            .await,
        operator.post_form(&verify, &[("csrf", &form_token)]).await,
        operator.post_form("/admin/logout", &[]).await,
        operator
            .post_form("/admin/logout", &[("csrf", &random_token())])
            .await,
    ];
    for response in refused {
        assert_error_page(response, 403).await;
    }
    assert_eq!(
        app.tenant_event_kinds(&contoso).await,
        [
            "consent_recorded",
            "verification_succeeded",
            "status_changed"
        ],
        "no refused verify was recorded"
    );
    assert_eq!(
        operator.get("/admin").await.status(),
        200,
        "still signed in"
    );

    let verified = operator.post_form(&verify, &[("csrf", &csrf)]).await;
    assert_eq!(verified.status(), 303);
    assert_eq!(
        verified.headers()["location"],
        format!("/admin/tenants/{contoso}").as_str()
    );
    let logout = operator
        .post_form("/admin/logout", &[("csrf", &csrf)])
        .await;
    assert_eq!(logout.status(), 303);
    assert_eq!(logout.headers()["location"], "/admin/login");
}

/// Submits the login form in `browser`; returns the response.
async fn log_in(browser: &Browser, name: &str, password: &str) -> reqwest::Response {
    let csrf = browser.csrf_of("/admin/login").await;
    browser
        .post_form(
            "/admin/login",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
}

/// The `#login-error` paragraph of a login page.
fn login_error(html: &str) -> &str {
    crate::app_helpers::section(html, r#"<p class="flash error" id="login-error">"#, "</p>")
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_name_get_the_same_answer() {
    let app = spawn_app().await;
    let browser = app.browser();

    let wrong_password = log_in(&browser, OPERATOR, "not the password at all").await;
    let unknown_name = log_in(&browser, "nobody", OPERATOR_PASSWORD).await;

    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_name.status(), 401);
    assert!(set_cookie(&wrong_password, "consentry_session").is_none());
    assert!(set_cookie(&unknown_name, "consentry_session").is_none());
    let a = wrong_password.text().await.expect("html");
    let b = unknown_name.text().await.expect("html");
    assert!(a.contains("Wrong name or password"), "{a}");
    assert_eq!(login_error(&a), login_error(&b));
    assert!(
        !a.contains("not the password at all"),
        "the password is not echoed"
    );
    assert_eq!(browser.get("/admin").await.status(), 303, "not signed in");
}

#[tokio::test]
async fn after_five_failed_logins_even_the_right_password_must_wait() {
    let app = spawn_app().await;
    let browser = app.browser();
    for attempt in 0..5 {
        let name = if attempt % 2 == 0 { OPERATOR } else { "nobody" };
        let failed = log_in(&browser, name, "wrong password, again").await;
        assert_eq!(failed.status(), 401, "attempt {}", attempt + 1);
    }

    let sixth = log_in(&browser, OPERATOR, OPERATOR_PASSWORD).await;

    // Not a made-up constant: the next try is allowed a minute after the first failure.
    let retry_after: u64 = sixth.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((6..=60).contains(&retry_after), "{retry_after}");
    assert!(set_cookie(&sixth, "consentry_session").is_none());
    // The sign-in form again, not the error page (whose button leads to the sign-up page).
    assert_eq!(sixth.status(), 429);
    let html = sixth.text().await.expect("html");
    assert!(html.contains("Too many attempts"), "{html}");
    assert!(html.contains("action=\"/admin/login\""), "{html}");
    assert_eq!(browser.get("/admin").await.status(), 303, "not signed in");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_scoped_to_admin() {
    let app = spawn_app().await;
    let browser = app.browser();

    let response = log_in(&browser, OPERATOR, OPERATOR_PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/admin");
    let cookie = set_cookie(&response, "consentry_session").expect("a session cookie");
    let attributes = cookie_attributes(&cookie);
    for expected in ["httponly", "samesite=strict", "path=/admin"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} in {cookie}"
        );
    }
    assert_eq!(cookie_value(&cookie).len(), 43, "{cookie}");
    assert_eq!(browser.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn every_login_gets_a_new_session_and_logout_ends_it() {
    let app = spawn_app().await;
    let browser = app.browser();
    // A value planted before sign-in (session fixation) is not adopted.
    let planted = random_token();
    browser.plant_cookie("consentry_session", &planted, "/admin");

    let first = log_in(&browser, OPERATOR, OPERATOR_PASSWORD).await;
    let first = cookie_value(&set_cookie(&first, "consentry_session").expect("cookie"));
    let second = log_in(&browser, OPERATOR, OPERATOR_PASSWORD).await;
    let second = cookie_value(&set_cookie(&second, "consentry_session").expect("cookie"));

    assert_ne!(first, planted);
    assert_ne!(first, second);
    let with = |value: &str| {
        let b = app.browser();
        b.plant_cookie("consentry_session", value, "/admin");
        b
    };
    assert_eq!(
        with(&first).get("/admin").await.status(),
        303,
        "the first session ended when the browser signed in again"
    );
    assert_eq!(with(&second).get("/admin").await.status(), 200);

    let dashboard = browser.get("/admin").await.text().await.expect("html");
    let logout_form = crate::app_helpers::section(
        &dashboard,
        r#"<form method="post" action="/admin/logout""#,
        "</form>",
    );
    let csrf = hidden(logout_form, "csrf");
    let logout = browser.post_form("/admin/logout", &[("csrf", &csrf)]).await;

    assert_eq!(logout.status(), 303);
    assert_eq!(logout.headers()["location"], "/admin/login");
    let removal = set_cookie(&logout, "consentry_session").expect("the cookie is removed");
    assert!(cookie_value(&removal).is_empty(), "{removal}");
    assert_eq!(browser.get("/admin").await.status(), 303);
    assert_eq!(
        with(&second).get("/admin").await.status(),
        303,
        "the old cookie no longer grants access"
    );
}

#[tokio::test]
async fn verify_now_finds_a_revoked_consent_and_marks_the_tenant_revoked() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let row = app.onboard(&app.browser(), &contoso).await;
    assert_eq!(row.status, "active");
    app.emulator.revoke(&contoso).await;
    // Once a consent was verified, a missing service principal means revoked: no grace.
    let operator = app.operator().await;
    let csrf = session_csrf(&operator, &contoso).await;

    let clicked = operator
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    // The requested check has run once the tenant's status moved.
    let after = app
        .poll("the requested verification", 15, || async {
            app.tenant(&contoso).await.filter(|t| t.status != "active")
        })
        .await;

    assert_eq!(clicked.status(), 303);
    assert_eq!(
        clicked.headers()["location"],
        format!("/admin/tenants/{contoso}").as_str()
    );
    // Once confirmed, a consent that disappears was revoked (not a failed onboarding).
    assert_eq!(after.status, "revoked", "{after:?}");
    assert_eq!(after.last_error_code.as_deref(), Some("AADSTS700016"));
    assert_eq!(
        app.tenant_event_kinds(&contoso).await,
        [
            "consent_recorded",
            "verification_succeeded",
            "status_changed",
            "verify_requested",
            "check_failed",
            "status_changed"
        ]
    );
    let page = operator
        .get(&format!("/admin/tenants/{contoso}"))
        .await
        .text()
        .await
        .expect("html")
        .replace("<wbr>", "");
    assert!(
        page.contains(r#"<span class="badge revoked" id="status">Consent revoked</span>"#),
        "{page}"
    );
    assert!(page.contains("failed: AADSTS700016"), "{page}");
    // What the last success read is shown as lost, not as granted.
    let granted = crate::app_helpers::section(&page, r#"<dd id="granted">"#, "</dd>");
    assert!(
        granted.contains(r#"<code class="lost">User.Read.All</code>"#)
            && !granted.contains(r#"class="granted""#)
            && granted.contains("no longer granted"),
        "{granted}"
    );
    assert!(
        page.contains("(1 in a row)"),
        "consecutive failures: {page}"
    );
    assert!(
        page.contains(&format!("/admin/invitations/new?tenant={contoso}")),
        "an invitation to re-consent: {page}"
    );
    assert!(
        page.contains(&format!("{OPERATOR} asked to verify the tenant now.")),
        "{page}"
    );
}

/// Contoso active, Fabrikam failed (a forged callback: it never consented).
async fn two_tenants(app: &TestApp) -> String {
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let forger = app.browser();
    let state = state_of(&forger.signup(&[]).await);
    let forged = forger
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", FABRIKAM),
            ("state", &state),
        ]))
        .await;
    assert_eq!(forged.status(), 303);
    assert_eq!(app.wait_for_outcome(FABRIKAM, 20).await.status, "failed");
    contoso
}

#[tokio::test]
async fn the_dashboard_filters_by_status_and_searches() {
    let app = spawn_app().await;
    let contoso = two_tenants(&app).await;
    let operator = app.operator().await;
    let list = |query: &'static str| {
        let operator = &operator;
        async move {
            let response = operator.get(&format!("/admin{query}")).await;
            assert_eq!(response.status(), 200, "{query}");
            listed(&response.text().await.expect("html"))
        }
    };

    assert_eq!(
        list("").await,
        [contoso.as_str()],
        "tenants never verified are out of the default list"
    );
    let mut all = list("?all=1").await;
    all.sort();
    assert_eq!(all, [contoso.clone(), FABRIKAM.to_owned()]);
    assert_eq!(list("?status=active").await, [contoso.as_str()]);
    assert_eq!(list("?status=failed").await, [FABRIKAM]);
    assert!(list("?status=pending").await.is_empty());
    assert_eq!(
        list("?status=&all=1").await.len(),
        2,
        "an empty status is no filter"
    );
    assert_eq!(list("?q=contoso").await, [contoso.as_str()]);
    assert_eq!(
        list("?q=CONTOSO").await,
        [contoso.as_str()],
        "case-insensitive"
    );
    assert_eq!(
        list("?q=contoso.com").await,
        [contoso.as_str()],
        "by domain"
    );
    assert_eq!(
        list("?q=c6e1b9d4&all=1").await,
        [FABRIKAM],
        "by tenant id prefix"
    );
    assert_eq!(
        list("?q=%20c6e1b9d4-8a2f%20&all=1").await,
        [FABRIKAM],
        "trimmed"
    );
    assert!(list("?q=%25").await.is_empty(), "a literal %");
    assert!(list("?q=_").await.is_empty(), "a literal _");
    assert!(list("?status=failed&q=contoso").await.is_empty());

    let bogus = operator.get("/admin?status=bogus").await;
    let (_, html) = assert_error_page(bogus, 400).await;
    assert!(html.contains("There is no status"), "{html}");
    assert!(!html.contains(&contoso), "{html}");
}

#[tokio::test]
async fn the_empty_dashboard_points_at_the_sign_up_page() {
    let app = spawn_app().await;

    let dashboard = app.dashboard().await;

    let link = format!(r#"<a href="{0}/" id="signup-url">{0}/</a>"#, app.base);
    assert!(dashboard.contains(&link), "{link} in {dashboard}");
}

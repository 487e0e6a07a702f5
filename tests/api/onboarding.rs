//! The onboarding flow end to end over HTTP: consentry, the emulator, SQLite.

use consentry::emulator::DEFAULT_CLIENT_ID;
use serde_json::Value;

use crate::app_helpers::{
    assert_error_page, callback_url, cookie_attributes, section, set_cookie, spawn_app,
    spawn_app_with, state_of,
};
use crate::helpers::{FABRIKAM, WOODGROVE, html_unescape};

#[tokio::test]
async fn landing_says_what_is_granted_and_offers_to_connect() {
    let app = spawn_app().await;
    let browser = app.browser();

    let landing = browser.get("/").await;

    assert_eq!(landing.status(), 200);
    assert!(
        set_cookie(&landing, "consentry_form").is_some(),
        "the landing page sets the form cookie"
    );
    let html = landing.text().await.expect("html");
    for permission in ["User.Read.All", "Organization.Read.All"] {
        assert!(
            html.contains(&format!("<code>{permission}</code>")),
            "names {permission}: {html}"
        );
    }
    assert!(html.contains("read the profiles of everyone in your organisation"));
    assert!(html_unescape(&html).contains("read your organisation's name, domains and settings"));
    assert!(
        html.contains(r#"<button type="submit" id="connect">Connect your organisation</button>"#)
    );
    assert_eq!(crate::app_helpers::hidden(&html, "csrf").len(), 43);
}

#[tokio::test]
async fn signup_sends_the_admin_to_microsoft_with_a_state_bound_to_the_browser() {
    let app = spawn_app().await;
    let browser = app.browser();

    let response = browser.signup_response(&[]).await;

    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let (path_part, query) = location.split_once('?').expect("a query");
    assert_eq!(
        path_part,
        format!("{}/organizations/adminconsent", app.emulator.base)
    );
    let redirect_uri = format!("{}/consent/callback", app.base);
    let encoded_redirect: String =
        form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect();
    assert!(
        query.contains(&format!("redirect_uri={encoded_redirect}")),
        "redirect_uri is URL-encoded: {query}"
    );
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let names: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["client_id", "redirect_uri", "state"]);
    assert_eq!(params[0].1, DEFAULT_CLIENT_ID.to_string());
    assert_eq!(params[1].1, redirect_uri);
    let state = &params[2].1;
    assert!(state.len() >= 43, "{state}");
    assert!(
        state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "base64url: {state}"
    );

    let binding = set_cookie(&response, "consentry_binding").expect("the binding cookie");
    let attributes = cookie_attributes(&binding);
    for expected in ["httponly", "samesite=lax", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected} in {binding}"
        );
    }
    assert!(
        !binding.contains(state.as_str()),
        "the cookie is not the state itself"
    );
    assert_eq!(app.count_rows("consent_request").await, 1);
    assert_eq!(app.tenant_count().await, 0, "nothing is a tenant yet");
}

#[tokio::test]
async fn signup_with_a_domain_sends_the_admin_straight_to_that_tenant() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();

    let to_microsoft = browser
        .signup(&[("tenant_domain", "Contoso.onmicrosoft.com")])
        .await;
    let callback = app.emulator_decision(&to_microsoft, "accept", None).await;
    let back = browser.get(&callback).await;
    let row = app.wait_for_outcome(&contoso, 15).await;

    assert!(
        to_microsoft.starts_with(&format!(
            "{}/contoso.onmicrosoft.com/adminconsent?",
            app.emulator.base
        )),
        "{to_microsoft}"
    );
    assert_eq!(back.status(), 303);
    assert_eq!(row.status, "active", "{row:?}");
}

#[tokio::test]
async fn happy_path_ends_active_with_name_and_roles_in_the_database() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();

    let to_microsoft = browser
        .signup(&[
            ("organisation_name", "Contoso (sign-up name)"),
            ("contact_email", "it@contoso.com"),
        ])
        .await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    let back = browser.get(&callback).await;
    let row = app.wait_for_outcome(&contoso, 15).await;

    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "/consent/status");
    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(row.display_name.as_deref(), Some("Contoso Ltd"));
    let id = consentry::domain::TenantId::parse(&contoso).expect("guid");
    let claims = app.store.claims_for(id).await.expect("claims");
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(
        claims[0].organisation_name.as_deref(),
        Some("Contoso (sign-up name)"),
        "the sign-up's details are a claim"
    );
    assert_eq!(claims[0].contact_email.as_deref(), Some("it@contoso.com"));
    assert_eq!(
        row.consent_request_id.as_deref(),
        Some(claims[0].id.as_str())
    );
    let mut domains = row.verified_domains();
    domains.sort();
    assert_eq!(domains, ["contoso.com", "contoso.onmicrosoft.com"]);
    assert_eq!(
        row.granted_roles(),
        ["Organization.Read.All", "User.Read.All"]
    );
    assert!(row.last_error_code.is_none(), "{row:?}");
    assert_eq!(
        app.tenant_event_kinds(&contoso).await,
        [
            "consent_recorded",
            "verification_succeeded",
            "status_changed"
        ]
    );
    assert_eq!(
        app.count_rows("consent_request where consumed_at is not null")
            .await,
        1
    );

    let status = browser
        .get("/consent/status")
        .await
        .text()
        .await
        .expect("html");
    assert!(status.contains("Contoso Ltd is connected"), "{status}");

    let operator = app.operator().await;
    let dashboard = operator.get("/admin").await;
    assert_eq!(dashboard.status(), 200);
    // Ids and permission names wrap at their separators (`<wbr>`); the text is the value.
    let html = dashboard.text().await.expect("html").replace("<wbr>", "");
    let table = section(&html, r#"<table id="tenants">"#, "</table>");
    let row_html = section(table, "<tbody>", "</tbody>");
    assert!(
        row_html.contains(&format!(
            r#"<a href="/admin/tenants/{contoso}">Contoso Ltd</a>"#
        )),
        "{row_html}"
    );
    assert!(
        row_html.contains(&format!("<code>{contoso}</code>")),
        "{row_html}"
    );
    assert!(
        row_html.contains(r#"<span class="badge active">Active</span>"#),
        "{row_html}"
    );
    for role in ["Organization.Read.All", "User.Read.All"] {
        assert!(
            row_html.contains(&format!(r#"<code class="granted">{role}</code>"#)),
            "{row_html}"
        );
    }
    assert!(!row_html.contains("class=\"missing\""), "{row_html}");
}

#[tokio::test]
async fn tenants_list_json_shows_the_onboarded_tenant() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let onboarded = app.onboard(&app.browser(), &contoso).await;
    assert_eq!(onboarded.status, "active");

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["tenants", "list", "--json", "--database", &app.database_url])
        .env_remove("CONSENTRY_DATABASE_URL")
        .env_remove("CONSENTRY_CONFIG")
        .output()
        .await
        .expect("consentry runs");

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    let tenants = listed.as_array().expect("an array");
    assert_eq!(tenants.len(), 1, "{listed}");
    let tenant = &tenants[0];
    assert_eq!(tenant["id"], contoso.as_str());
    assert_eq!(tenant["status"], "active");
    assert_eq!(tenant["display_name"], "Contoso Ltd");
    assert_eq!(tenant["consented_at"], onboarded.consented_at.as_str());
    assert_eq!(
        tenant["granted_roles"],
        serde_json::json!(["Organization.Read.All", "User.Read.All"])
    );
}

#[tokio::test]
async fn status_page_refreshes_itself_while_pending_and_stops_once_active() {
    // A long deadline: "consent not visible yet" counts as propagation for the whole test.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_DEADLINE", "1h")).await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let callback = app.consent(&browser, &contoso).await;
    // Microsoft has not propagated the consent yet: token requests get AADSTS700016.
    app.emulator.revoke(&contoso).await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    app.poll("a first verification attempt", 15, || async {
        app.tenant(&contoso)
            .await
            .filter(|t| t.last_error_code.as_deref() == Some("AADSTS700016"))
    })
    .await;

    let pending = browser.get("/consent/status").await;
    let pending_status = pending.status();
    let pending_html = pending.text().await.expect("html");
    app.emulator.consent(&contoso).await;
    let row = app.wait_for_outcome(&contoso, 40).await;
    let active = browser.get("/consent/status").await;
    let active_status = active.status();
    let active_html = active.text().await.expect("html");

    assert_eq!(pending_status, 200);
    assert!(
        pending_html.contains(r#"<meta http-equiv="refresh""#),
        "{pending_html}"
    );
    assert!(
        pending_html.contains("Checking with Microsoft"),
        "{pending_html}"
    );
    assert!(pending_html.contains(&contoso), "{pending_html}");
    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(active_status, 200);
    assert!(!active_html.contains("http-equiv"), "{active_html}");
    assert!(
        active_html.contains("Contoso Ltd is connected"),
        "{active_html}"
    );
}

#[tokio::test]
async fn status_page_shows_each_browser_its_own_onboarding_and_nobody_else_anything() {
    let app = spawn_app().await;
    let (first, second, stranger) = (app.browser(), app.browser(), app.browser());
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&first, &contoso).await.status, "active");
    assert_eq!(app.onboard(&second, WOODGROVE).await.status, "active");

    let first_page = first.get("/consent/status").await;
    let second_page = second.get("/consent/status").await;
    let stranger_page = stranger.get("/consent/status").await;

    assert_eq!(first_page.status(), 200);
    let first_html = first_page.text().await.expect("html");
    assert!(
        first_html.contains("Contoso Ltd is connected"),
        "{first_html}"
    );
    assert!(first_html.contains(&contoso));
    assert!(!first_html.contains("Woodgrove") && !first_html.contains(WOODGROVE));
    assert_eq!(second_page.status(), 200);
    let second_html = second_page.text().await.expect("html");
    assert!(
        second_html.contains("Woodgrove Bank is connected"),
        "{second_html}"
    );
    assert!(second_html.contains(WOODGROVE));
    assert!(!second_html.contains("Contoso") && !second_html.contains(&contoso));
    let (_, stranger_html) = assert_error_page(stranger_page, 404).await;
    assert!(!stranger_html.contains("Contoso") && !stranger_html.contains("Woodgrove"));
}

#[tokio::test]
async fn forged_callback_for_a_tenant_that_never_consented_ends_failed_never_active() {
    let app = spawn_app().await;
    let browser = app.browser();
    let to_microsoft = browser.signup(&[]).await;
    let forged = callback_url(&[
        ("admin_consent", "True"),
        ("tenant", FABRIKAM),
        ("state", &state_of(&to_microsoft)),
    ]);

    let back = browser.get(&forged).await;
    let row = app.wait_for_outcome(FABRIKAM, 20).await;

    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "/consent/status");
    assert_eq!(row.status, "failed", "{row:?}");
    assert_eq!(row.last_error_code.as_deref(), Some("AADSTS700016"));
    assert!(row.display_name.is_none() && row.granted_roles().is_empty());
    let kinds = app.tenant_event_kinds(FABRIKAM).await;
    assert_eq!(kinds.first().map(String::as_str), Some("consent_recorded"));
    assert!(
        kinds.iter().any(|k| k == "verification_retrying"),
        "pending first, retried while within the deadline: {kinds:?}"
    );
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["verification_failed", "status_changed"]
    );
    assert!(
        !kinds.iter().any(|k| k == "verification_succeeded"),
        "{kinds:?}"
    );
    let status = browser
        .get("/consent/status")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        status.contains("We could not confirm the connection"),
        "{status}"
    );
    assert!(!status.contains("is connected"), "{status}");
}

#[tokio::test]
async fn ten_concurrent_callbacks_with_one_state_record_the_tenant_once() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let callback = app.consent(&browser, &contoso).await;

    // Ten: the callback's per-client burst (more are answered 429 before any state check).
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let http = browser.http.clone();
            let url = browser.url(&callback);
            tokio::spawn(async move {
                http.get(url)
                    .send()
                    .await
                    .expect("callback answers")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }

    statuses.sort_unstable();
    let mut expected = vec![303];
    expected.extend([400; 9]);
    expected.sort_unstable();
    assert_eq!(statuses, expected);
    assert_eq!(app.tenant_count().await, 1);
    let kinds = app.event_kinds().await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "consent_recorded").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "callback_rejected").count(),
        1,
        "the request's first refusal writes an event; replays only count: {kinds:?}"
    );
    let events = app.events().await;
    assert!(
        events
            .iter()
            .filter(|e| e.kind == "callback_rejected")
            .all(|e| e.detail.contains("replayed_state")),
        "{events:?}"
    );
    assert_eq!(app.wait_for_outcome(&contoso, 15).await.status, "active");
}

#[tokio::test]
async fn the_v1_token_endpoint_onboards_too() {
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_TOKEN_VERSION", "v1")).await;
    let contoso = app.emulator.contoso();

    let row = app.onboard(&app.browser(), &contoso).await;
    let requests = app.emulator.requests().await;

    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(row.display_name.as_deref(), Some("Contoso Ltd"));
    assert!(
        requests["endpoints"]["token_v1"].as_u64().unwrap_or(0) >= 1,
        "{requests}"
    );
    assert!(
        requests["endpoints"]["token_v2"].as_u64().unwrap_or(0) == 0,
        "{requests}"
    );
}

#[tokio::test]
async fn a_rejected_client_secret_keeps_the_tenant_pending_and_alerts_operators() {
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_CLIENT_SECRET", "wrong")).await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();
    let callback = app.consent(&browser, &contoso).await;

    assert_eq!(browser.get(&callback).await.status(), 303);
    let row = app
        .poll("the token request to be refused", 15, || async {
            app.tenant(&contoso)
                .await
                .filter(|t| t.last_error_code.is_some())
        })
        .await;

    assert_eq!(row.status, "pending", "{row:?}");
    assert_eq!(row.last_error_code.as_deref(), Some("AADSTS7000215"));
    let kinds = app.tenant_event_kinds(&contoso).await;
    assert_eq!(kinds, ["consent_recorded", "app_credential_rejected"]);
    let status_page = browser
        .get("/consent/status")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        status_page.contains(r#"<meta http-equiv="refresh""#),
        "the customer sees pending, not a failure: {status_page}"
    );
    let operator = app.operator().await;
    let dashboard = operator
        .get("/admin?all=1")
        .await
        .text()
        .await
        .expect("html");
    let alert = section(&dashboard, r#"id="credential-alert""#, "</p>");
    assert!(alert.contains("credential"), "{alert}");
    assert!(alert.contains("AADSTS7000215"), "{alert}");
    let table = section(&dashboard, r#"<table id="tenants">"#, "</table>");
    assert!(table.contains(r#"<span class="badge pending">"#), "{table}");
    assert!(!table.contains("badge failed"), "{table}");
    let after = app.tenant(&contoso).await.expect("tenant");
    assert_eq!(after.status, "pending", "{after:?}");
}

#[tokio::test]
async fn missing_permissions_are_shown_with_a_way_to_consent_again() {
    let app =
        spawn_app_with(|_, emulator| emulator.permissions = vec!["User.Read.All".into()]).await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();

    let row = app.onboard(&browser, &contoso).await;
    let status = browser.get("/consent/status").await;
    let status_html = status.text().await.expect("html");
    let operator = app.operator().await;
    // Permission names wrap at their dots (`<wbr>`); the text is the name.
    let dashboard = operator
        .get("/admin")
        .await
        .text()
        .await
        .expect("html")
        .replace("<wbr>", "");

    assert_eq!(row.status, "missing_permissions", "{row:?}");
    assert_eq!(row.granted_roles(), ["User.Read.All"]);
    assert_eq!(
        app.tenant_event_kinds(&contoso).await,
        ["consent_recorded", "missing_permissions", "status_changed"]
    );
    assert!(
        status_html.contains("permissions are missing"),
        "{status_html}"
    );
    assert!(status_html.contains("<code>Organization.Read.All</code>"));
    let form = section(
        &status_html,
        r#"<form method="post" action="/signup">"#,
        "</form>",
    );
    assert!(form.contains("Consent again"), "{form}");
    assert_eq!(crate::app_helpers::hidden(form, "tenant_domain"), contoso);
    let table = section(&dashboard, r#"<table id="tenants">"#, "</table>");
    assert!(
        table.contains(
            r#"<code class="missing" title="required, not granted">Organization.Read.All</code>"#
        ),
        "{table}"
    );
    assert!(table.contains(r#"<code class="granted">User.Read.All</code>"#));
    assert!(table.contains(r#"<span class="badge missing_permissions">"#));

    // The form works: it starts a new sign-up aimed at this tenant.
    let csrf = html_unescape(&crate::app_helpers::hidden(form, "csrf"));
    let again = browser
        .post_form("/signup", &[("csrf", &csrf), ("tenant_domain", &contoso)])
        .await;
    assert_eq!(again.status(), 303);
    assert!(
        again.headers()["location"]
            .to_str()
            .expect("ascii")
            .starts_with(&format!("{}/{contoso}/adminconsent?", app.emulator.base))
    );
}

#[tokio::test]
async fn a_forged_callback_naming_a_connected_tenant_changes_nothing_and_reveals_nothing() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let owner = app.browser();
    let to_microsoft = owner
        .signup(&[
            ("organisation_name", "Contoso"),
            ("contact_email", "it@contoso.com"),
        ])
        .await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    owner.get(&callback).await;
    let before = app.wait_for_outcome(&contoso, 10).await;
    let attacker = app.browser();
    let attacker_state = state_of(
        &attacker
            .signup(&[
                ("organisation_name", "Evil"),
                ("contact_email", "x@evil.example"),
            ])
            .await,
    );

    let forged = attacker
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &contoso),
            ("state", &attacker_state),
        ]))
        .await;
    let attacker_status = attacker
        .get("/consent/status")
        .await
        .text()
        .await
        .expect("html");
    let after = app.tenant(&contoso).await.expect("still there");

    assert_eq!(before.status, "active");
    assert_eq!(forged.status(), 303);
    assert_eq!(
        after.status, "active",
        "a verified tenant is not reset to pending"
    );
    assert_eq!(after.consent_request_id, before.consent_request_id);
    assert_eq!(after.consented_at, before.consented_at);
    assert!(
        attacker_status.contains("nothing to show"),
        "{attacker_status}"
    );
    assert!(
        !attacker_status.contains("Contoso Ltd"),
        "{attacker_status}"
    );
    assert!(
        !attacker_status.contains("User.Read.All"),
        "{attacker_status}"
    );
    let owner_status = owner
        .get("/consent/status")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        owner_status.contains("Contoso Ltd is connected"),
        "{owner_status}"
    );
}

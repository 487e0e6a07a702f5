//! Operators and roles: every admin route enforces its role (a viewer posts nothing but
//! signing out and ending their own sessions), owners manage operators on the dashboard and
//! with `consentry operators`, disabling ends sessions at once, the last owner stays, each
//! operator ends their own sessions, and nobody can lock an operator out by failing for
//! their name.

use consentry::store::Role;

use crate::app_helpers::{
    Browser, OPERATOR, OPERATOR_PASSWORD, TestApp, failed_logins, hidden, spawn_app,
};

/// Creates `name` with `role` and `password` straight in the store.
pub async fn add_operator(app: &TestApp, name: &str, role: Role, password: &str) {
    let hash = consentry::domain::password::hash_password(password).expect("hash");
    app.store
        .add_operator(name, &hash, role, time::OffsetDateTime::now_utc())
        .await
        .expect("operator added");
}

/// The status of a sign-in as `name` in `browser`.
pub async fn sign_in_as(browser: &Browser, name: &str, password: &str) -> u16 {
    let csrf = browser.csrf_of("/admin/login").await;
    browser
        .post_form(
            "/admin/login",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
        .status()
        .as_u16()
}

/// A browser signed in as a new operator `name` with `role`.
pub async fn signed_in_as(app: &TestApp, name: &str, role: Role) -> Browser {
    let password = format!("{name}'s long password");
    add_operator(app, name, role, &password).await;
    let browser = app.browser();
    assert_eq!(sign_in_as(&browser, name, &password).await, 303);
    browser
}

/// The CSRF token of a signed-in browser's session (every admin page's forms carry it).
async fn session_csrf(browser: &Browser) -> String {
    let html = browser
        .get("/admin/account")
        .await
        .text()
        .await
        .expect("html");
    hidden(&html, "csrf")
}

/// The text after `start` up to `end`.
pub fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    let to = html[from..].find(end).expect("the end") + from;
    html[from..to].to_owned()
}

/// A route pattern with its `{placeholders}` filled in.
fn concrete(pattern: &str) -> String {
    let mut path = String::new();
    let mut in_placeholder = false;
    for c in pattern.chars() {
        match c {
            '{' => in_placeholder = true,
            '}' => {
                in_placeholder = false;
                path.push_str("someone");
            }
            _ if in_placeholder => {}
            _ => path.push(c),
        }
    }
    path
}

#[tokio::test]
async fn a_viewer_is_refused_every_post_route_but_its_own_with_the_admin_navigation() {
    let app = spawn_app().await;
    let viewer = signed_in_as(&app, "vera", Role::Viewer).await;
    let csrf = session_csrf(&viewer).await;
    let routes = consentry::web::ADMIN_POST_ROUTES;
    assert!(routes.len() >= 19, "the registry lists every POST route");

    let mut refused = 0;
    for (pattern, role) in routes.iter().filter(|(_, role)| *role > Role::Viewer) {
        let path = concrete(pattern);
        let answer = viewer.post_form(&path, &[("csrf", &csrf)]).await;

        assert_eq!(answer.status(), 403, "{path} needs {role:?}");
        let html = answer.text().await.expect("html");
        assert!(html.contains("id=\"forbidden\""), "{path}: {html}");
        assert!(
            html.contains("href=\"/admin/webhooks\""),
            "{path}: the admin navigation"
        );
        assert!(
            html.contains("action=\"/admin/logout\""),
            "{path}: sign-out stays"
        );
        refused += 1;
    }

    assert_eq!(
        refused,
        routes.len() - 4,
        "all but the two sign-ins, logout and ending sessions"
    );
    assert_eq!(viewer.get("/admin").await.status(), 200, "viewers read");
    assert_eq!(viewer.get("/admin/api-keys").await.status(), 200);
    for owners_or_operators in ["/admin/operators", "/admin/audit", "/admin/audit.csv"] {
        assert_eq!(viewer.get(owners_or_operators).await.status(), 403);
    }
    assert_eq!(app.count_rows("api_key").await, 0, "nothing was created");
    let logout = viewer.post_form("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(logout.status(), 303, "a viewer signs out");
}

#[tokio::test]
async fn an_operator_does_everything_but_manage_operators() {
    let app = spawn_app().await;
    let operator = signed_in_as(&app, "otto", Role::Operator).await;
    let csrf = session_csrf(&operator).await;

    for (pattern, role) in consentry::web::ADMIN_POST_ROUTES {
        if *role == Role::Viewer {
            continue;
        }
        let path = concrete(pattern);
        let answer = operator.post_form(&path, &[("csrf", &csrf)]).await;
        let status = answer.status().as_u16();
        let html = answer.text().await.expect("html");

        if *role == Role::Owner {
            assert_eq!(status, 403, "{path}");
            assert!(html.contains("id=\"forbidden\""), "{path}");
        } else {
            // Made-up ids and empty forms: refused for what they are, not for the role.
            assert!(!html.contains("id=\"forbidden\""), "{path}: {status}");
        }
    }
    assert_eq!(operator.get("/admin/audit").await.status(), 200);
    assert_eq!(operator.get("/admin/operators").await.status(), 403);
}

#[tokio::test]
async fn an_owner_adds_resets_and_removes_an_operator_on_the_dashboard() {
    let app = spawn_app().await;
    let owner = app.operator().await;
    let csrf = session_csrf(&owner).await;

    // Added with a generated password, shown once.
    let added = owner
        .post_form(
            "/admin/operators",
            &[("csrf", &csrf), ("name", "alice"), ("role", "operator")],
        )
        .await;
    assert_eq!(added.status(), 200);
    let html = added.text().await.expect("html");
    let first = between(&html, "<code id=\"password\">", "<");
    assert!(first.len() >= 32, "{first}");
    let alice = app.browser();
    assert_eq!(sign_in_as(&alice, "alice", &first).await, 303);
    let listed = owner
        .get("/admin/operators")
        .await
        .text()
        .await
        .expect("html");
    assert!(!listed.contains(&first), "the password is shown only once");
    assert!(listed.contains("id=\"operator-alice\""), "{listed}");

    // A reset ends her session; only the new password works.
    let reset = owner
        .post_form("/admin/operators/alice/reset", &[("csrf", &csrf)])
        .await;
    assert_eq!(reset.status(), 200);
    let html = reset.text().await.expect("html");
    let second = between(&html, "<code id=\"password\">", "<");
    assert_ne!(first, second);
    assert_eq!(
        alice.get("/admin").await.status(),
        303,
        "signed out by the reset"
    );
    assert_eq!(sign_in_as(&alice, "alice", &first).await, 401);
    assert_eq!(sign_in_as(&alice, "alice", &second).await, 303);

    // A new role applies to her live session.
    let demoted = owner
        .post_form(
            "/admin/operators/alice/role",
            &[("csrf", &csrf), ("role", "viewer")],
        )
        .await;
    assert_eq!(demoted.status(), 303);
    let alice_csrf = session_csrf(&alice).await;
    let key = alice
        .post_form(
            "/admin/api-keys",
            &[
                ("csrf", &alice_csrf),
                ("name", "x"),
                ("scope", "tenants:read"),
            ],
        )
        .await;
    assert_eq!(key.status(), 403, "a viewer now");

    // Removed: her session and her sign-in are gone.
    let removed = owner
        .post_form("/admin/operators/alice/remove", &[("csrf", &csrf)])
        .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(alice.get("/admin").await.status(), 303);
    assert_eq!(sign_in_as(&alice, "alice", &second).await, 401);
    assert!(
        app.store
            .operator_by_name("alice")
            .await
            .expect("query")
            .is_none()
    );
}

#[tokio::test]
async fn disabling_an_operator_ends_their_sessions_at_once() {
    let app = spawn_app().await;
    let owner = app.operator().await;
    let csrf = session_csrf(&owner).await;
    let bob = signed_in_as(&app, "bob", Role::Operator).await;
    let bob_elsewhere = app.browser();
    assert_eq!(
        sign_in_as(&bob_elsewhere, "bob", "bob's long password").await,
        303
    );

    let disabled = owner
        .post_form("/admin/operators/bob/disable", &[("csrf", &csrf)])
        .await;

    assert_eq!(disabled.status(), 303);
    assert_eq!(bob.get("/admin").await.status(), 303, "first session ended");
    assert_eq!(
        bob_elsewhere.get("/admin").await.status(),
        303,
        "second too"
    );
    assert_eq!(
        app.count_rows("operator_session").await,
        1,
        "only the owner's left"
    );
    assert_eq!(
        sign_in_as(&bob, "bob", "bob's long password").await,
        401,
        "a disabled operator cannot sign in"
    );
    let enabled = owner
        .post_form("/admin/operators/bob/enable", &[("csrf", &csrf)])
        .await;
    assert_eq!(enabled.status(), 303);
    assert_eq!(sign_in_as(&bob, "bob", "bob's long password").await, 303);
}

#[tokio::test]
async fn the_last_owner_can_be_neither_disabled_removed_nor_demoted() {
    let app = spawn_app().await;
    let owner = app.operator().await;
    let csrf = session_csrf(&owner).await;

    for (path, form) in [
        (format!("/admin/operators/{OPERATOR}/disable"), vec![]),
        (format!("/admin/operators/{OPERATOR}/remove"), vec![]),
        (
            format!("/admin/operators/{OPERATOR}/role"),
            vec![("role", "operator")],
        ),
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form);
        let answer = owner.post_form(&path, &fields).await;

        assert_eq!(answer.status(), 409, "{path}");
        let html = answer.text().await.expect("html");
        assert!(html.contains("is the last owner"), "{path}: {html}");
    }
    assert_eq!(
        owner.get("/admin/operators").await.status(),
        200,
        "still an owner"
    );

    // With a second owner, the first may go.
    add_operator(&app, "carol", Role::Owner, "carol's long password").await;
    let removed = owner
        .post_form(
            &format!("/admin/operators/{OPERATOR}/role"),
            &[("csrf", &csrf), ("role", "viewer")],
        )
        .await;
    assert_eq!(removed.status(), 303);
    assert!(matches!(
        app.store
            .disable_operator("carol", time::OffsetDateTime::now_utc())
            .await,
        Err(consentry::store::OperatorChangeError::LastOwner(_))
    ));
}

#[tokio::test]
async fn an_operator_sees_their_sessions_and_ends_one() {
    let app = spawn_app().await;
    let laptop = app.operator().await;
    let phone = app.operator().await;
    let other = signed_in_as(&app, "dora", Role::Operator).await;

    let html = laptop
        .get("/admin/account")
        .await
        .text()
        .await
        .expect("html");
    let rows: Vec<&str> = html.split("<tr id=\"session-").skip(1).collect();
    assert_eq!(
        rows.len(),
        2,
        "two sessions of {OPERATOR}, not dora's: {html}"
    );
    assert!(
        html.contains("<code>127.0.0.1</code>"),
        "the address: {html}"
    );
    let phone_id = rows
        .iter()
        .find(|r| !r.contains("this browser"))
        .and_then(|r| r.split('"').next())
        .expect("the other session")
        .to_owned();
    let csrf = hidden(&html, "csrf");

    // Someone else's session id ends nothing.
    let dora_csrf = session_csrf(&other).await;
    let not_hers = other
        .post_form(
            &format!("/admin/account/sessions/{phone_id}/end"),
            &[("csrf", &dora_csrf)],
        )
        .await;
    assert_eq!(not_hers.status(), 404);
    assert_eq!(phone.get("/admin").await.status(), 200);

    let ended = laptop
        .post_form(
            &format!("/admin/account/sessions/{phone_id}/end"),
            &[("csrf", &csrf)],
        )
        .await;

    assert_eq!(ended.status(), 303);
    assert_eq!(
        phone.get("/admin").await.status(),
        303,
        "the phone is signed out"
    );
    assert_eq!(
        laptop.get("/admin").await.status(),
        200,
        "the laptop is not"
    );
}

#[tokio::test]
async fn a_stranger_failing_for_a_name_cannot_lock_its_operator_out() {
    let app = spawn_app().await;
    let stranger = app.browser().on_address("127.0.0.2".parse().expect("ip"));
    let statuses = failed_logins(&stranger, 20).await;
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let csrf = stranger.csrf_of("/admin/login").await;
    let refused = stranger
        .post_form(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("name", "someone-else"),
                ("password", "guess"),
            ],
        )
        .await;
    assert_eq!(
        refused.status(),
        429,
        "the address is limited whatever the name"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let html = refused.text().await.expect("html");
    assert!(
        html.contains("action=\"/admin/login\""),
        "the form again: {html}"
    );
    assert!(html.contains("Try again in"), "{html}");
    assert!(
        !html.contains("href=\"/\" class") && !html.contains("sign-up page"),
        "{html}"
    );

    // The operator, from an address that has not been failing, gets in at once.
    let operator = app.browser();
    assert_eq!(
        sign_in_as(&operator, OPERATOR, OPERATOR_PASSWORD).await,
        303
    );
    assert_eq!(operator.get("/admin").await.status(), 200);
}

fn consentry() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_consentry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONSENTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || consentry().args(&args).output().expect("runs"))
        .await
        .expect("join")
}

#[tokio::test]
async fn consentry_operators_adds_lists_resets_disables_and_removes() {
    let app = spawn_app().await;
    let db = app.database_url.clone();
    let cmd = |parts: &[&str]| {
        let mut args: Vec<String> = std::iter::once("operators".to_owned())
            .chain(parts.iter().map(|s| s.to_string()))
            .collect();
        args.extend(["--database".to_owned(), db.clone()]);
        args
    };

    let added = run(cmd(&["add", "erin", "--role", "viewer", "--generate"])).await;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let password = String::from_utf8_lossy(&added.stdout).trim().to_owned();
    assert!(
        password.len() >= 32,
        "stdout is the password alone: {password}"
    );
    let erin = app.browser();
    assert_eq!(sign_in_as(&erin, "erin", &password).await, 303);

    let listed = run(cmd(&["list", "--json"])).await;
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    let roles: Vec<(String, String)> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or_default().to_owned(),
                r["role"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&("erin".into(), "viewer".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&(OPERATOR.into(), "owner".into())),
        "{roles:?}"
    );

    let reset = run(cmd(&["reset", "erin", "--generate"])).await;
    assert!(reset.status.success());
    let new_password = String::from_utf8_lossy(&reset.stdout).trim().to_owned();
    assert_eq!(
        erin.get("/admin").await.status(),
        303,
        "the reset signed erin out"
    );
    assert_eq!(sign_in_as(&erin, "erin", &new_password).await, 303);

    let disabled = run(cmd(&["disable", "erin"])).await;
    assert!(disabled.status.success());
    assert_eq!(
        erin.get("/admin").await.status(),
        303,
        "disabling signed erin out"
    );

    let last_owner = run(cmd(&["remove", OPERATOR])).await;
    assert_eq!(last_owner.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&last_owner.stderr).contains("last owner"));

    let removed = run(cmd(&["remove", "erin"])).await;
    assert!(removed.status.success());
    assert!(
        app.store
            .operator_by_name("erin")
            .await
            .expect("query")
            .is_none()
    );
}

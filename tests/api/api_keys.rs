//! API keys (dashboard and command line), the `ApiClient` extractor's 401/403 problem
//! documents, and `GET /api/v1/tenants` with cursor paging.

use serde_json::Value;

use crate::app_helpers::{Browser, TestApp, hidden, request_id, spawn_app, ts};

/// Creates a key on the dashboard as the test operator; returns the key and the answer
/// page.
pub async fn create_on_dashboard(
    operator: &Browser,
    name: &str,
    scopes: &[&str],
) -> (String, String) {
    let page = operator.get("/admin/api-keys").await;
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.expect("html"), "csrf");
    let mut form = vec![("csrf", csrf.as_str()), ("name", name)];
    form.extend(scopes.iter().map(|s| ("scope", *s)));
    let answer = operator.post_form("/admin/api-keys", &form).await;
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.expect("html");
    let marker = "<code id=\"api-key\">";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no key in {html}"))
        + marker.len();
    let end = html[start..].find('<').expect("closing tag") + start;
    (html[start..end].to_owned(), html)
}

pub async fn api_get(app: &TestApp, path: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url(app, path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("GET")
}

/// Asserts an RFC 9457 problem document with `status` and the request id of its
/// `x-request-id` header; returns its `detail`.
pub async fn assert_problem(response: reqwest::Response, status: u16) -> String {
    let actual = response.status().as_u16();
    let rid = request_id(&response);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["request_id"], rid.as_str(), "{body}");
    body["detail"].as_str().expect("a detail").to_owned()
}

/// A tenant written straight into the app's database, not due for any check.
pub async fn insert_tenant(
    app: &TestApp,
    id: &str,
    status: &str,
    consented_at: &str,
    granted: &str,
) {
    let db = app.db().await;
    sqlx::query(
        "insert into tenant (id, status, granted_roles, consented_at, created_at, updated_at) \
         values ($1, $2, $3, $4, $4, $4)",
    )
    .bind(id)
    .bind(status)
    .bind(granted)
    .bind(consented_at)
    .execute(&db)
    .await
    .expect("insert tenant");
    db.close().await;
}

pub fn url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.base)
}

pub fn guid(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn a_key_made_on_the_dashboard_is_shown_once_stored_as_a_hash_and_revocable() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;

    // Act
    let (key, answer) = create_on_dashboard(&operator, "billing", &["tenants:read"]).await;
    let later = operator
        .get("/admin/api-keys")
        .await
        .text()
        .await
        .expect("html");
    let used = api_get(&app, "/api/v1/tenants", Some(&key)).await;

    // Assert
    assert!(key.starts_with("cst_live_") && key.len() == 52, "{key}");
    assert!(answer.contains("shown only this once"), "{answer}");
    assert!(!later.contains(&key), "the key is shown once only");
    assert!(
        later.contains(&key[..17]),
        "the list names the key by its prefix"
    );
    assert!(later.contains("billing"));
    assert_eq!(used.status(), 200);
    let db = app.db().await;
    let row: (String, String, String, String, String, Option<String>) =
        sqlx::query_as("select id, name, prefix, key_hash, scopes, last_used_at from api_key")
            .fetch_one(&db)
            .await
            .expect("one key");
    db.close().await;
    let stored = format!("{row:?}");
    assert!(
        !stored.contains(&key[9..]),
        "no plaintext in the database: {stored}"
    );
    assert!(!stored.contains(&key[17..]), "{stored}");
    assert_eq!(row.4, "tenants:read");
    assert!(row.5.is_some(), "the use was recorded");
    assert!(
        later.contains("href=\"/admin/api-keys\""),
        "the nav links the page"
    );

    // A second use within the minute writes nothing.
    assert_eq!(
        api_get(&app, "/api/v1/tenants", Some(&key)).await.status(),
        200
    );
    let db = app.db().await;
    let last_used: Option<String> = sqlx::query_scalar("select last_used_at from api_key")
        .fetch_one(&db)
        .await
        .expect("one key");
    db.close().await;
    assert_eq!(
        last_used, row.5,
        "last_used_at is written at most once a minute"
    );

    // Revoking on the dashboard needs the CSRF token, then refuses the key.
    let forged = operator
        .post_form(
            &format!("/admin/api-keys/{}/revoke", row.0),
            &[("csrf", "x")],
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(
        api_get(&app, "/api/v1/tenants", Some(&key)).await.status(),
        200
    );
    let csrf = hidden(&later, "csrf");
    let revoked = operator
        .post_form(
            &format!("/admin/api-keys/{}/revoke", row.0),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), 303);
    let detail = assert_problem(api_get(&app, "/api/v1/tenants", Some(&key)).await, 401).await;
    assert!(detail.contains("revoked"), "{detail}");
}

#[tokio::test]
async fn the_dashboard_refuses_a_key_without_a_session_csrf_name_or_scope() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let page = operator
        .get("/admin/api-keys")
        .await
        .text()
        .await
        .expect("html");
    let csrf = hidden(&page, "csrf");
    let anonymous = app.browser();
    let anonymous_answers = [
        anonymous.get("/admin/api-keys").await,
        anonymous
            .post_form(
                "/admin/api-keys",
                &[
                    ("csrf", csrf.as_str()),
                    ("name", "x"),
                    ("scope", "tenants:read"),
                ],
            )
            .await,
        anonymous
            .post_form(
                "/admin/api-keys/whatever/revoke",
                &[("csrf", csrf.as_str())],
            )
            .await,
    ];
    for answer in anonymous_answers {
        assert_eq!(answer.status(), 303);
        assert_eq!(answer.headers()["location"], "/admin/login");
    }

    let no_csrf = operator
        .post_form(
            "/admin/api-keys",
            &[("name", "x"), ("scope", "tenants:read")],
        )
        .await;
    let no_scope = operator
        .post_form("/admin/api-keys", &[("csrf", csrf.as_str()), ("name", "x")])
        .await;
    let no_name = operator
        .post_form(
            "/admin/api-keys",
            &[
                ("csrf", csrf.as_str()),
                ("name", " "),
                ("scope", "tenants:read"),
            ],
        )
        .await;
    let bad_scope = operator
        .post_form(
            "/admin/api-keys",
            &[
                ("csrf", csrf.as_str()),
                ("name", "x"),
                ("scope", "tenants:write"),
            ],
        )
        .await;

    assert_eq!(no_csrf.status(), 403);
    assert_eq!(no_scope.status(), 422);
    assert_eq!(no_name.status(), 422);
    assert_eq!(bad_scope.status(), 400);
    assert_eq!(app.count_rows("api_key").await, 0);
}

fn consentry() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_consentry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONSENTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[tokio::test]
async fn the_command_line_creates_lists_and_revokes_keys() {
    // Arrange
    let app = spawn_app().await;
    let db = app.database_url.as_str();

    // Act
    let created = consentry()
        .args(["api-keys", "create", "reporting", "--scope", "tenants:read"])
        .args(["--scope", "webhooks:manage", "--database", db])
        .output()
        .await
        .expect("runs");
    let key = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let before = api_get(&app, "/api/v1/tenants", Some(&key)).await.status();
    let listed = consentry()
        .args(["api-keys", "list", "--json", "--database", db])
        .output()
        .await
        .expect("runs");
    let keys: Value = serde_json::from_slice(&listed.stdout).expect("a JSON array");
    let id = keys[0]["id"].as_str().expect("an id").to_owned();
    let revoked = consentry()
        .args(["api-keys", "revoke", &id, "--database", db])
        .output()
        .await
        .expect("runs");
    let again = consentry()
        .args(["api-keys", "revoke", &id, "--database", db])
        .output()
        .await
        .expect("runs");
    let unknown_scope = consentry()
        .args([
            "api-keys",
            "create",
            "x",
            "--scope",
            "tenants:write",
            "--database",
            db,
        ])
        .output()
        .await
        .expect("runs");
    let table = consentry()
        .args(["api-keys", "list", "--database", db])
        .output()
        .await
        .expect("runs");

    // Assert
    assert!(created.status.success(), "{created:?}");
    assert!(ApiKeyShape::is_key(&key), "{key}");
    assert_eq!(before, 200);
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    assert_eq!(keys[0]["name"], "reporting");
    assert_eq!(keys[0]["prefix"], &key[..17]);
    assert_eq!(
        keys[0]["scopes"],
        serde_json::json!(["tenants:read", "webhooks:manage"])
    );
    assert!(keys[0]["revoked_at"].is_null());
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&key[17..]));
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert_eq!(unknown_scope.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown_scope.stderr).contains("no scope 'tenants:write'"));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("reporting") && table.contains("revoked"),
        "{table}"
    );
    // Revoked by another process: the server trusts its cached copy of the key for at most
    // `store::API_KEY_TTL`, then refuses it.
    let refused = app
        .poll("the key revoked elsewhere to be refused", 30, || async {
            let answer = api_get(&app, "/api/v1/tenants", Some(&key)).await;
            (answer.status() == 401).then_some(answer)
        })
        .await;
    let detail = assert_problem(refused, 401).await;
    assert!(detail.contains("revoked"), "{detail}");
}

struct ApiKeyShape;

impl ApiKeyShape {
    fn is_key(raw: &str) -> bool {
        raw.strip_prefix("cst_live_").is_some_and(|r| {
            r.len() == 43
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    }
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_get_401_and_a_missing_scope_403() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (tokens_only, _) = create_on_dashboard(&operator, "tokens", &["tokens:issue"]).await;
    let unknown = format!("cst_live_{}", "A".repeat(43));

    // Act
    let missing = api_get(&app, "/api/v1/tenants", None).await;
    let basic = reqwest::Client::new()
        .get(url(&app, "/api/v1/tenants"))
        .header("Authorization", "Basic b3BzOnB3")
        .send()
        .await
        .expect("GET");
    let not_a_key = api_get(&app, "/api/v1/tenants", Some("sk_live_whatever")).await;
    let unknown_key = api_get(&app, "/api/v1/tenants", Some(&unknown)).await;
    let under_scoped = api_get(&app, "/api/v1/tenants", Some(&tokens_only)).await;

    // Assert
    assert_eq!(
        missing.headers()["www-authenticate"],
        "Bearer realm=\"consentry\""
    );
    assert!(assert_problem(missing, 401).await.contains("No API key"));
    assert_problem(basic, 401).await;
    assert_problem(not_a_key, 401).await;
    assert!(assert_problem(unknown_key, 401).await.contains("not known"));
    assert!(
        under_scoped.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .contains("insufficient_scope")
    );
    let detail = assert_problem(under_scoped, 403).await;
    assert!(detail.contains("tenants:read"), "{detail}");
}

#[tokio::test]
async fn tenants_page_by_cursor_without_duplicates_or_gaps_while_one_is_added() {
    // Arrange: six tenants, two of them consenting in the same millisecond (the id breaks
    // the tie).
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "sync", &["tenants:read"]).await;
    let base = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut expected = Vec::new();
    for n in 0..6u32 {
        let at = ts(base + time::Duration::minutes(i64::from(n.min(4))));
        let id = guid(10 - n);
        insert_tenant(&app, &id, "active", &at, "[\"User.Read.All\"]").await;
        expected.push((at, id));
    }
    expected.sort();
    let mut expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    // Act: the first page, then a new consent, then the rest.
    let mut seen: Vec<String> = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/api/v1/tenants?limit=3".to_owned(),
            Some(c) => format!("/api/v1/tenants?limit=3&cursor={c}"),
        };
        let response = api_get(&app, &path, Some(&key)).await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.expect("json");
        pages += 1;
        for t in page["data"].as_array().expect("data") {
            seen.push(t["id"].as_str().expect("id").to_owned());
        }
        if pages == 1 {
            let newcomer = guid(1);
            insert_tenant(
                &app,
                &newcomer,
                "active",
                &ts(time::OffsetDateTime::now_utc()),
                "[]",
            )
            .await;
            expected.push(newcomer);
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }

    // Assert
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "every tenant once, in consent order");
}

#[tokio::test]
async fn a_tenant_shows_its_permissions_and_the_list_filters_by_status() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let at = ts(time::OffsetDateTime::now_utc());
    insert_tenant(&app, &guid(2), "revoked", &at, "[\"User.Read.All\"]").await;

    // Act
    let all: Value = api_get(&app, "/api/v1/tenants", Some(&key))
        .await
        .json()
        .await
        .expect("json");
    let revoked: Value = api_get(&app, "/api/v1/tenants?status=revoked", Some(&key))
        .await
        .json()
        .await
        .expect("json");

    // Assert
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2), "{all}");
    assert!(all["next_cursor"].is_null());
    let active = &all["data"][0];
    assert_eq!(active["id"], contoso.as_str());
    assert_eq!(active["status"], "active");
    assert!(active["display_name"].as_str().is_some(), "{active}");
    assert!(
        active["verified_domains"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    );
    assert!(active["verified_at"].is_string() && active["last_success_at"].is_string());
    assert_eq!(active["missing_permissions"], serde_json::json!([]));
    assert!(active["next_check_at"].is_string());
    let ids: Vec<&str> = revoked["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, vec![guid(2).as_str()]);
    assert_eq!(
        revoked["data"][0]["missing_permissions"],
        serde_json::json!(["Organization.Read.All"])
    );
}

#[tokio::test]
async fn bad_queries_get_400_problems() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;

    for (query, says) in [
        ("cursor=bm90IGEgY3Vyc29y", "cursor"),
        ("cursor=%%%", "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("status=happy", "status"),
        ("colour=blue", "colour"),
    ] {
        let response = api_get(&app, &format!("/api/v1/tenants?{query}"), Some(&key)).await;
        let detail = assert_problem(response, 400).await;
        assert!(detail.contains(says), "{query}: {detail}");
    }
    let unknown_route = api_get(&app, "/api/v1/nothing", Some(&key)).await;
    assert_problem(unknown_route, 404).await;
    let wrong_method = reqwest::Client::new()
        .delete(url(&app, "/api/v1/tenants"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("DELETE");
    assert_problem(wrong_method, 405).await;
}

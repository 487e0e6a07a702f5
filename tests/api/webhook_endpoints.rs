//! Webhook endpoints managed on the dashboard (sessions and CSRF) and through the API
//! (`webhooks:manage`), their delivery logs and resends, and the event feed.

use consentry::domain::api_key::{ApiKeySecret, Scope};
use consentry::store::{NewApiKey, RaisedAlert};
use serde_json::{Value, json};

use crate::api_keys::{api_get, assert_problem, url};
use crate::app_helpers::{Browser, TestApp, hidden, spawn_app, spawn_app_with};

/// A receiver address where nothing listens: deliveries to it fail at once.
pub const DEAD_RECEIVER: &str = "http://127.0.0.1:9/hook";

/// Creates an endpoint on the dashboard; returns its id, its secret and the answer page.
pub async fn create_on_dashboard(
    operator: &Browser,
    endpoint_url: &str,
    types: Option<&[&str]>,
) -> (String, String, String) {
    let csrf = operator.csrf_of("/admin/webhooks").await;
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("url", endpoint_url),
        ("description", "billing service"),
    ];
    match types {
        None => form.push(("types", "all")),
        Some(types) => {
            form.push(("types", "chosen"));
            form.extend(types.iter().map(|t| ("event_type", *t)));
        }
    }
    let answer = operator.post_form("/admin/webhooks", &form).await;
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.expect("html");
    let secret = between(&html, "id=\"webhook-secret\">", "<");
    let id = format!("ep_{}", between(&html, "href=\"/admin/webhooks/ep_", "\""));
    (id, secret, html)
}

/// The text after `start` up to `end`.
fn between(html: &str, start: &str, end: &str) -> String {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    let to = html[from..].find(end).expect("end") + from;
    html[from..to].to_owned()
}

async fn page(browser: &Browser, path: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn endpoint_row(app: &TestApp, id: &str) -> consentry::store::EndpointRow {
    app.store
        .endpoint(id)
        .await
        .expect("store")
        .expect("the endpoint")
}

#[tokio::test]
async fn an_endpoint_made_on_the_dashboard_shows_its_secret_once_and_the_database_never_holds_it() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;

    // Act
    let (id, secret, answer) = create_on_dashboard(&operator, DEAD_RECEIVER, None).await;
    let list = page(&operator, "/admin/webhooks").await;
    let endpoint = page(&operator, &format!("/admin/webhooks/{id}")).await;

    // Assert
    assert!(
        secret.starts_with("whsec_") && secret.len() == 50,
        "{secret}"
    );
    assert!(answer.contains("shown only this once"), "{answer}");
    assert!(list.contains(DEAD_RECEIVER) && list.contains("billing service"));
    assert!(list.contains("all, including future ones"), "{list}");
    assert!(
        list.contains("href=\"/admin/webhooks\""),
        "the nav links the page"
    );
    assert!(endpoint.contains(DEAD_RECEIVER));
    let encoded = &secret["whsec_".len()..];
    for html in [&list, &endpoint] {
        assert!(!html.contains(encoded), "the secret is shown once only");
    }
    let row = endpoint_row(&app, &id).await;
    assert_eq!(row.event_types, "", "every type");
    // The secret is what the stored salt derives under the session key, and only that.
    let keyed = consentry::domain::Keyed::new(&[7u8; 32]);
    let derived = consentry::webhooks::WebhookSecret::derive(&keyed, &row.secret_salt);
    assert_eq!(
        secrecy::ExposeSecret::expose_secret(&derived.expose_encoded()),
        secret
    );
    let bytes = app.database_bytes().await;
    // Which shows too that the database was read.
    assert!(contains(&bytes, &row.secret_salt), "the salt is stored");
    assert!(
        !contains(&bytes, encoded),
        "the secret is not in the database"
    );
    assert!(!contains(&bytes, &encoded[..20]));
}

#[tokio::test]
async fn an_operator_edits_pauses_resumes_rotates_and_deletes_an_endpoint() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, first_secret, _) = create_on_dashboard(&operator, DEAD_RECEIVER, None).await;
    let path = format!("/admin/webhooks/{id}");
    let csrf = operator.csrf_of(&path).await;

    // Act: edit
    let edited = operator
        .post_form(
            &path,
            &[
                ("csrf", csrf.as_str()),
                ("url", "http://127.0.0.1:9/other"),
                ("description", "CRM sync"),
                ("types", "chosen"),
                ("event_type", "tenant.connected"),
                ("event_type", "tenant.status_changed"),
            ],
        )
        .await;
    let after_edit = page(&operator, &path).await;
    // pause, then resume
    let paused = operator
        .post_form(&format!("{path}/pause"), &[("csrf", csrf.as_str())])
        .await;
    let while_paused = page(&operator, &path).await;
    let paused_row = endpoint_row(&app, &id).await;
    let resumed = operator
        .post_form(&format!("{path}/enable"), &[("csrf", csrf.as_str())])
        .await;
    let resumed_row = endpoint_row(&app, &id).await;
    // rotate
    let salt_before = resumed_row.secret_salt.clone();
    let rotated = operator
        .post_form(&format!("{path}/rotate"), &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(rotated.status(), 200);
    let rotated_html = rotated.text().await.expect("html");
    let new_secret = between(&rotated_html, "id=\"webhook-secret\">", "<");
    let after_rotation = page(&operator, &path).await;
    let rotated_row = endpoint_row(&app, &id).await;
    // delete, after the confirmation page
    let confirm = page(&operator, &format!("{path}/delete")).await;
    let deleted = operator
        .post_form(&format!("{path}/delete"), &[("csrf", csrf.as_str())])
        .await;
    let gone = operator.get(&path).await;

    // Assert
    assert_eq!(edited.status(), 303);
    assert!(after_edit.contains("http://127.0.0.1:9/other"));
    assert!(after_edit.contains("CRM sync"));
    let row = app.store.endpoint(&id).await.expect("store");
    assert!(row.is_none(), "deleted");
    assert_eq!(paused.status(), 303);
    assert_eq!(paused_row.state, "paused");
    assert_eq!(
        paused_row.event_types,
        "tenant.connected tenant.status_changed"
    );
    assert!(while_paused.contains("Paused by ops"), "{while_paused}");
    assert!(while_paused.contains("Resume deliveries"));
    assert_eq!(resumed.status(), 303);
    assert_eq!(resumed_row.state, "enabled");
    assert_eq!(resumed_row.state_reason, None);
    assert!(new_secret.starts_with("whsec_") && new_secret != first_secret);
    assert!(rotated_html.contains("previous secret stays valid until"));
    assert!(rotated_html.contains("two signatures"), "{rotated_html}");
    assert_eq!(
        rotated_row.previous_secret_salt.as_deref(),
        Some(salt_before.as_str())
    );
    assert!(
        rotated_row
            .previous_salt_at(time::OffsetDateTime::now_utc())
            .is_some()
    );
    assert!(after_rotation.contains("deliveries carry both signatures"));
    assert!(!after_rotation.contains(&new_secret["whsec_".len()..]));
    assert!(confirm.contains("Delete this endpoint?"));
    assert_eq!(deleted.status(), 303);
    assert_eq!(deleted.headers()["location"], "/admin/webhooks");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn an_endpoint_disabled_by_a_410_shows_why_and_is_enabled_again() {
    // Arrange: two endpoints the receiver disabled with 410 Gone, as the delivery worker
    // records it.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let key = api_key(&app, &[Scope::WebhooksManage]).await;
    let (on_dashboard, _, _) = create_on_dashboard(&operator, DEAD_RECEIVER, None).await;
    let (through_api, _, _) = create_on_dashboard(&operator, DEAD_RECEIVER, None).await;
    let reason = "The endpoint answered 410 Gone: deliveries wait until it is enabled again.";
    for id in [&on_dashboard, &through_api] {
        let found = app
            .store
            .set_endpoint_state(
                id,
                consentry::domain::webhook::EndpointState::Disabled,
                Some(reason),
                time::OffsetDateTime::now_utc(),
            )
            .await
            .expect("store");
        assert!(found);
    }
    let path = format!("/admin/webhooks/{on_dashboard}");

    // Act
    let list = page(&operator, "/admin/webhooks").await;
    let endpoint = page(&operator, &path).await;
    let csrf = hidden(&endpoint, "csrf");
    let enabled = operator
        .post_form(&format!("{path}/enable"), &[("csrf", csrf.as_str())])
        .await;
    let after = page(&operator, &path).await;
    let shown = json(
        send(
            &app,
            reqwest::Method::GET,
            &format!("/api/v1/webhook-endpoints/{through_api}"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    let patched = json(
        send(
            &app,
            reqwest::Method::PATCH,
            &format!("/api/v1/webhook-endpoints/{through_api}"),
            &key,
            Some(json!({ "state": "enabled" })),
        )
        .await,
        200,
    )
    .await;

    // Assert
    assert!(list.contains(reason), "{list}");
    assert!(endpoint.contains(reason));
    assert!(endpoint.contains("Enable again"), "{endpoint}");
    assert_eq!(enabled.status(), 303);
    assert!(after.contains("Pause deliveries") && !after.contains(reason));
    assert_eq!(endpoint_row(&app, &on_dashboard).await.state, "enabled");
    assert_eq!(shown["state"], "disabled");
    assert_eq!(shown["state_reason"], reason);
    assert_eq!(patched["state"], "enabled");
    assert_eq!(patched["state_reason"], Value::Null);
}

#[tokio::test]
async fn no_other_browser_can_manage_endpoints_without_the_sessions_csrf_token() {
    // Arrange: an endpoint, a stranger without a session, and the same operator in a
    // second browser (its own session and CSRF token) replaying the first one's token.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, _, _) = create_on_dashboard(&operator, DEAD_RECEIVER, None).await;
    let csrf = operator.csrf_of(&format!("/admin/webhooks/{id}")).await;
    let stranger = app.browser();
    let other = app.operator().await;
    let other_csrf = other.csrf_of("/admin/webhooks").await;
    assert_ne!(csrf, other_csrf);
    app.onboard(&app.browser(), &app.emulator.contoso()).await;
    let delivery: String = sqlx::query_scalar("select id from webhook_delivery")
        .fetch_one(&app.db().await)
        .await
        .expect("a delivery");
    let before = endpoint_row(&app, &id).await;
    let posts = [
        "/admin/webhooks".to_owned(),
        format!("/admin/webhooks/{id}"),
        format!("/admin/webhooks/{id}/pause"),
        format!("/admin/webhooks/{id}/enable"),
        format!("/admin/webhooks/{id}/rotate"),
        format!("/admin/webhooks/{id}/delete"),
        format!("/admin/webhook-deliveries/{delivery}/resend"),
    ];
    let form = |token: &str| {
        vec![
            ("csrf".to_owned(), token.to_owned()),
            ("url".to_owned(), "http://127.0.0.1:9/evil".to_owned()),
            ("types".to_owned(), "all".to_owned()),
        ]
    };

    for path in &posts {
        // Act
        let anonymous = stranger
            .http
            .post(stranger.url(path))
            .form(&form(&csrf))
            .send()
            .await
            .expect("POST");
        let replayed = other
            .http
            .post(other.url(path))
            .form(&form(&csrf))
            .send()
            .await
            .expect("POST");
        let without = operator
            .http
            .post(operator.url(path))
            .form(&[("url", "http://127.0.0.1:9/evil")])
            .send()
            .await
            .expect("POST");

        // Assert
        assert_eq!(anonymous.status(), 303, "{path}");
        assert_eq!(anonymous.headers()["location"], "/admin/login", "{path}");
        assert_eq!(replayed.status(), 403, "{path}");
        assert_eq!(without.status(), 403, "{path}");
    }
    let after = endpoint_row(&app, &id).await;
    assert_eq!(app.count_rows("webhook_endpoint").await, 1);
    assert_eq!(
        (after.url, after.state, after.secret_salt, after.updated_at),
        (
            before.url,
            before.state,
            before.secret_salt,
            before.updated_at
        )
    );
    // A stranger cannot read the pages either.
    for path in [
        "/admin/webhooks".to_owned(),
        format!("/admin/webhooks/{id}"),
    ] {
        assert_eq!(stranger.get(&path).await.status(), 303);
    }
}

#[tokio::test]
async fn bad_urls_are_refused_on_the_dashboard_and_the_form_is_kept() {
    // Arrange: the address guard on, as in production.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_WEBHOOK_ALLOW_PRIVATE", "false")).await;
    let operator = app.operator().await;
    let csrf = operator.csrf_of("/admin/webhooks").await;

    for (bad, why) in [
        ("ftp://hooks.example.com/x", "http or https, not ftp"),
        ("http://127.0.0.1:8080/x", "loopback"),
        ("http://localhost:8080/x", "loopback"),
        ("http://192.168.1.20/x", "private"),
        ("http://169.254.169.254/latest", "link-local"),
        ("https://me:pw@hooks.example.com/x", "user name or password"),
    ] {
        // Act
        let answer = operator
            .post_form(
                "/admin/webhooks",
                &[
                    ("csrf", csrf.as_str()),
                    ("url", bad),
                    ("description", "kept description"),
                    ("types", "all"),
                ],
            )
            .await;

        // Assert
        assert_eq!(answer.status(), 422, "{bad}");
        let html = answer.text().await.expect("html");
        let error = between(&html, "id=\"error\">", "</p>");
        assert!(error.contains(why), "{bad}: {error}");
        assert!(
            html.contains("value=\"kept description\""),
            "the form is kept"
        );
    }
    let none_ticked = operator
        .post_form(
            "/admin/webhooks",
            &[
                ("csrf", csrf.as_str()),
                ("url", "https://8.8.8.8/hook"),
                ("types", "chosen"),
            ],
        )
        .await;
    assert_eq!(none_ticked.status(), 422);
    assert_eq!(app.count_rows("webhook_endpoint").await, 0);
}

#[tokio::test]
async fn the_delivery_logs_show_a_tenants_delivery_and_resend_queues_a_failed_one_again() {
    // Arrange: an endpoint for every type, then a tenant connects.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, _, _) = create_on_dashboard(&operator, DEAD_RECEIVER, None).await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;

    // Act
    let log = page(&operator, &format!("/admin/webhooks/{id}")).await;
    let tenant_page = page(&operator, &format!("/admin/tenants/{contoso}")).await;

    // Assert: a pending delivery, even before any worker tried it.
    let row = section_of(&log, "<table id=\"deliveries\">");
    assert!(row.contains("tenant.connected"), "{row}");
    assert!(
        row.contains(&format!(
            "<a href=\"/admin/tenants/{contoso}\">Contoso Ltd</a>"
        )),
        "{row}"
    );
    assert!(row.contains("Resend"));
    let delivery = between(row, "<tr class=\"delivery\" id=\"", "\"");
    let tenant_log = section_of(&tenant_page, "<table id=\"deliveries\">");
    assert!(tenant_log.contains(&delivery), "{tenant_log}");
    assert!(
        tenant_log.contains(DEAD_RECEIVER),
        "the tenant's log names the endpoint"
    );

    // Arrange: the endpoint paused (so no delivery worker takes the delivery meanwhile)
    // and the delivery given up.
    let csrf = hidden(&log, "csrf");
    let paused = operator
        .post_form(
            &format!("/admin/webhooks/{id}/pause"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(paused.status(), 303);
    give_up(&app, &delivery).await;
    let db = app.db().await;

    // Act: resend from the tenant's page.
    let resent = operator
        .post_form(
            &format!("/admin/webhook-deliveries/{delivery}/resend"),
            &[("csrf", csrf.as_str()), ("back", "tenant")],
        )
        .await;

    // Assert
    assert_eq!(resent.status(), 303);
    assert_eq!(
        resent.headers()["location"],
        format!("/admin/tenants/{contoso}#deliveries-log").as_str()
    );
    let (status, step, next): (String, i64, Option<String>) = sqlx::query_as(
        "select status, schedule_step, next_attempt_at from webhook_delivery where id = $1",
    )
    .bind(&delivery)
    .fetch_one(&db)
    .await
    .expect("the delivery");
    assert_eq!((status.as_str(), step), ("pending", 0));
    assert!(next.is_some());
    let unknown = operator
        .post_form(
            "/admin/webhook-deliveries/dlv_nope/resend",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(unknown.status(), 404);
}

/// Marks a delivery as given up (the retry schedule exhausted), once no worker holds it.
async fn give_up(app: &TestApp, delivery: &str) {
    let db = app.db().await;
    app.poll("the delivery's lease to end", 30, || async {
        let held: Option<String> =
            sqlx::query_scalar("select lease_token from webhook_delivery where id = $1")
                .bind(delivery)
                .fetch_one(&db)
                .await
                .expect("the delivery");
        held.is_none().then_some(())
    })
    .await;
    sqlx::query(
        "update webhook_delivery set status = 'failed', next_attempt_at = null, schedule_step = 8 \
         where id = $1 and lease_token is null",
    )
    .bind(delivery)
    .execute(&db)
    .await
    .expect("fail it");
    db.close().await;
}

fn section_of<'a>(html: &'a str, start: &str) -> &'a str {
    crate::app_helpers::section(html, start, "</table>")
}

// ---- The API ----

async fn api_key(app: &TestApp, scopes: &[Scope]) -> String {
    let key = ApiKeySecret::generate();
    app.store
        .create_api_key(
            &NewApiKey {
                name: "integration",
                prefix: &key.shown_prefix(),
                key_hash: &key.hash(),
                scopes,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("key");
    key.expose().to_owned()
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, url(app, path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(method, url(app, path))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    body
}

const ENDPOINT_FIELDS: [&str; 10] = [
    "id",
    "url",
    "description",
    "event_types",
    "state",
    "state_reason",
    "previous_secret_expires_at",
    "deliveries",
    "created_at",
    "updated_at",
];

fn assert_endpoint_shape(body: &Value, with_secret: bool) {
    let mut expected: Vec<&str> = ENDPOINT_FIELDS.to_vec();
    if with_secret {
        expected.push("secret");
    }
    expected.sort_unstable();
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, expected, "{body}");
    let deliveries = &body["deliveries"];
    for status in ["pending", "succeeded", "failed"] {
        assert!(deliveries[status].is_i64(), "{body}");
    }
}

#[tokio::test]
async fn the_api_creates_lists_shows_changes_rotates_and_deletes_endpoints() {
    // Arrange
    let app = spawn_app().await;
    let key = api_key(&app, &[Scope::WebhooksManage]).await;
    use reqwest::Method;

    // Act: create
    let created = send(
        &app,
        Method::POST,
        "/api/v1/webhook-endpoints",
        &key,
        Some(json!({"url": DEAD_RECEIVER, "description": "CRM"})),
    )
    .await;
    assert_eq!(created.headers()["cache-control"], "no-store");
    let location = created.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let created = json(created, 201).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let list = json(
        send(&app, Method::GET, "/api/v1/webhook-endpoints", &key, None).await,
        200,
    )
    .await;
    let one = json(send(&app, Method::GET, &location, &key, None).await, 200).await;
    let patched = json(
        send(
            &app,
            Method::PATCH,
            &location,
            &key,
            Some(json!({"description": "CRM sync", "event_types": ["tenant.status_changed", "tenant.connected"], "state": "paused"})),
        )
        .await,
        200,
    )
    .await;
    let enabled = json(
        send(
            &app,
            Method::PATCH,
            &location,
            &key,
            Some(json!({"state": "enabled", "event_types": null, "url": "http://127.0.0.1:9/v2"})),
        )
        .await,
        200,
    )
    .await;
    let rotated = send(
        &app,
        Method::POST,
        &format!("{location}/rotate-secret"),
        &key,
        None,
    )
    .await;
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let rotated = json(rotated, 200).await;
    let after_rotation = json(send(&app, Method::GET, &location, &key, None).await, 200).await;
    let deleted = send(&app, Method::DELETE, &location, &key, None).await;
    let again = send(&app, Method::DELETE, &location, &key, None).await;
    let gone = send(&app, Method::GET, &location, &key, None).await;

    // Assert
    assert_eq!(location, format!("/api/v1/webhook-endpoints/{id}"));
    assert!(id.starts_with("ep_"), "{id}");
    assert_endpoint_shape(&created, true);
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["url"], DEAD_RECEIVER);
    assert_eq!(created["event_types"], Value::Null, "every type");
    assert_eq!(created["state"], "enabled");
    assert_eq!(list["data"].as_array().expect("data").len(), 1);
    assert_endpoint_shape(&list["data"][0], false);
    assert_endpoint_shape(&one, false);
    assert_eq!(one["id"], id.as_str());
    assert_endpoint_shape(&patched, false);
    assert_eq!(patched["description"], "CRM sync");
    assert_eq!(
        patched["event_types"],
        json!(["tenant.connected", "tenant.status_changed"])
    );
    assert_eq!(patched["state"], "paused");
    assert!(
        patched["state_reason"]
            .as_str()
            .is_some_and(|r| r.contains("API key integration")),
        "{patched}"
    );
    assert_eq!(enabled["state"], "enabled");
    assert_eq!(enabled["state_reason"], Value::Null);
    assert_eq!(enabled["event_types"], Value::Null);
    assert_eq!(enabled["url"], "http://127.0.0.1:9/v2");
    assert_endpoint_shape(&rotated, true);
    let new_secret = rotated["secret"].as_str().expect("secret");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let until = rotated["previous_secret_expires_at"]
        .as_str()
        .expect("an overlap");
    let until = time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
        .expect("rfc 3339");
    let hours = (until - time::OffsetDateTime::now_utc()).whole_minutes();
    assert!((23 * 60..=24 * 60).contains(&hours), "{hours} minutes");
    assert_endpoint_shape(&after_rotation, false);
    let text = format!("{list}{one}{patched}{enabled}{after_rotation}");
    assert!(!text.contains(&secret[6..]) && !text.contains(&new_secret[6..]));
    assert!(!text.contains("salt"));
    assert_eq!(deleted.status(), 204);
    assert_problem(again, 404).await;
    assert_problem(gone, 404).await;
}

#[tokio::test]
async fn bad_requests_are_problems_and_write_nothing() {
    // Arrange
    let app = spawn_app().await;
    let key = api_key(&app, &[Scope::WebhooksManage]).await;
    let reader = api_key(&app, &[Scope::TenantsRead]).await;
    use reqwest::Method;
    let create = "/api/v1/webhook-endpoints";
    let id = json(
        send(
            &app,
            Method::POST,
            create,
            &key,
            Some(json!({"url": DEAD_RECEIVER, "description": "kept"})),
        )
        .await,
        201,
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let one = format!("/api/v1/webhook-endpoints/{id}");
    let before = endpoint_row(&app, &id).await;

    // Act + Assert: scopes and keys on every route.
    let routes = [
        (Method::GET, create.to_owned()),
        (Method::POST, create.to_owned()),
        (Method::GET, one.clone()),
        (Method::PATCH, one.clone()),
        (Method::DELETE, one.clone()),
        (Method::POST, format!("{one}/rotate-secret")),
        (Method::GET, format!("{one}/deliveries")),
        (
            Method::POST,
            "/api/v1/webhook-deliveries/dlv_x/resend".to_owned(),
        ),
    ];
    for (method, path) in &routes {
        let body = Some(json!({"url": "http://127.0.0.1:9/evil"}));
        let forbidden = send(&app, method.clone(), path, &reader, body.clone()).await;
        assert_eq!(
            forbidden.headers()["www-authenticate"],
            "Bearer realm=\"consentry\", error=\"insufficient_scope\", scope=\"webhooks:manage\""
        );
        assert!(
            assert_problem(forbidden, 403)
                .await
                .contains("webhooks:manage")
        );
        let anonymous = reqwest::Client::new()
            .request(method.clone(), url(&app, path))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_problem(anonymous, 401).await;
    }
    let manage_only_feed = api_get(&app, "/api/v1/events", Some(&key)).await;
    assert!(
        assert_problem(manage_only_feed, 403)
            .await
            .contains("tenants:read")
    );

    // Bodies: malformed, unknown fields, oversized, not JSON.
    for (method, path) in [(Method::POST, create), (Method::PATCH, one.as_str())] {
        let malformed = raw(
            &app,
            method.clone(),
            path,
            &key,
            "application/json",
            "{\"url\": ",
        )
        .await;
        assert!(
            assert_problem(malformed, 400)
                .await
                .contains("not valid JSON")
        );
        let unknown = send(
            &app,
            method.clone(),
            path,
            &key,
            Some(json!({"url": DEAD_RECEIVER, "secret": "whsec_mine"})),
        )
        .await;
        let detail = assert_problem(unknown, 400).await;
        assert!(detail.contains("unknown field `secret`"), "{detail}");
        let oversized = send(
            &app,
            method.clone(),
            path,
            &key,
            Some(json!({"url": DEAD_RECEIVER, "description": "x".repeat(20_000)})),
        )
        .await;
        assert_problem(oversized, 413).await;
        let form = raw(
            &app,
            method.clone(),
            path,
            &key,
            "application/x-www-form-urlencoded",
            "url=http%3A%2F%2F127.0.0.1%3A9%2F",
        )
        .await;
        assert_problem(form, 415).await;
    }
    let missing_url = send(&app, Method::POST, create, &key, Some(json!({}))).await;
    assert!(
        assert_problem(missing_url, 400)
            .await
            .contains("missing field `url`")
    );
    let wrong_type = send(&app, Method::POST, create, &key, Some(json!({"url": 5}))).await;
    assert_problem(wrong_type, 400).await;

    // Fields: 422 naming the field.
    let cases = [
        (
            json!({"url": "ftp://hooks.example.com/x"}),
            "url: webhook URLs are http or https, not ftp",
        ),
        (json!({"url": "not a url"}), "url: "),
        (
            json!({"url": format!("https://hooks.example.com/{}", "a".repeat(2100))}),
            "url: ",
        ),
        (json!({"url": "https://u:p@hooks.example.com/"}), "url: "),
        (
            json!({"url": DEAD_RECEIVER, "event_types": ["tenant.connected", "tenant.exploded"]}),
            "'tenant.exploded'",
        ),
        (
            json!({"url": DEAD_RECEIVER, "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": DEAD_RECEIVER, "description": "x".repeat(501)}),
            "description",
        ),
    ];
    for (body, named) in &cases {
        let refused = send(&app, Method::POST, create, &key, Some(body.clone())).await;
        let detail = assert_problem(refused, 422).await;
        assert!(detail.contains(named), "{body}: {detail}");
    }
    // A PATCH with one bad field changes nothing, not even the good ones.
    for body in [
        json!({"description": "changed", "url": "ftp://x.example/"}),
        json!({"description": "changed", "state": "disabled"}),
        json!({"description": "changed", "event_types": ["nope"]}),
    ] {
        let refused = send(&app, Method::PATCH, &one, &key, Some(body.clone())).await;
        assert_problem(refused, 422).await;
    }
    let after = endpoint_row(&app, &id).await;
    assert_eq!(
        (
            &after.description,
            &after.url,
            &after.state,
            &after.updated_at
        ),
        (
            &before.description,
            &before.url,
            &before.state,
            &before.updated_at
        )
    );
    assert_eq!(
        app.count_rows("webhook_endpoint").await,
        1,
        "nothing else created"
    );

    // Unknown ids and cursors.
    let unknown = "/api/v1/webhook-endpoints/ep_00000000000000000000000000000000";
    for (method, path) in [
        (Method::GET, unknown.to_owned()),
        (Method::DELETE, unknown.to_owned()),
        (Method::POST, format!("{unknown}/rotate-secret")),
        (Method::GET, format!("{unknown}/deliveries")),
        (
            Method::POST,
            "/api/v1/webhook-deliveries/dlv_nope/resend".to_owned(),
        ),
    ] {
        assert_problem(send(&app, method, &path, &key, None).await, 404).await;
    }
    let patch_unknown = send(&app, Method::PATCH, unknown, &key, Some(json!({}))).await;
    assert_problem(patch_unknown, 404).await;
    for query in ["cursor=nope", "limit=0", "status=lost", "colour=blue"] {
        let bad = send(
            &app,
            Method::GET,
            &format!("{one}/deliveries?{query}"),
            &key,
            None,
        )
        .await;
        assert_problem(bad, 400).await;
    }
    let wrong_method = send(&app, Method::PUT, &one, &key, None).await;
    assert_problem(wrong_method, 405).await;
}

#[tokio::test]
async fn private_and_loopback_urls_are_refused_on_their_resolved_addresses() {
    // Arrange: the address guard on, as in production.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_WEBHOOK_ALLOW_PRIVATE", "false")).await;
    let key = api_key(&app, &[Scope::WebhooksManage]).await;
    use reqwest::Method;

    for (bad, kind) in [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://localhost:8080/hook", "loopback"),
        ("http://10.0.0.7/hook", "private"),
        ("http://[::ffff:192.168.0.1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
    ] {
        // Act
        let refused = send(
            &app,
            Method::POST,
            "/api/v1/webhook-endpoints",
            &key,
            Some(json!({ "url": bad })),
        )
        .await;

        // Assert
        let detail = assert_problem(refused, 422).await;
        assert!(detail.starts_with("url: "), "{detail}");
        assert!(detail.contains(kind), "{bad}: {detail}");
        assert!(
            detail.contains("CONSENTRY_WEBHOOK_ALLOW_PRIVATE"),
            "{detail}"
        );
    }
    assert_eq!(app.count_rows("webhook_endpoint").await, 0);
    // A public address literal is accepted (nothing is sent to it).
    let public = send(
        &app,
        Method::POST,
        "/api/v1/webhook-endpoints",
        &key,
        Some(json!({ "url": "https://8.8.8.8/hook" })),
    )
    .await;
    let id = json(public, 201).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let moved = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/webhook-endpoints/{id}"),
        &key,
        Some(json!({ "url": "http://localhost:9/hook" })),
    )
    .await;
    assert!(assert_problem(moved, 422).await.contains("loopback"));
    assert_eq!(endpoint_row(&app, &id).await.url, "https://8.8.8.8/hook");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_endpoint_without_its_secret() {
    // Arrange
    let app = spawn_app().await;
    let key = api_key(&app, &[Scope::WebhooksManage]).await;
    let other_key = api_key(&app, &[Scope::WebhooksManage]).await;
    let post = |key: &str, idempotency: &str, body: Value| {
        reqwest::Client::new()
            .post(url(&app, "/api/v1/webhook-endpoints"))
            .bearer_auth(key)
            .header("idempotency-key", idempotency)
            .json(&body)
            .send()
    };
    let body = json!({"url": DEAD_RECEIVER, "event_types": ["tenant.connected"]});

    // Act: two at once, then a retry, the key for another request, another API key.
    let (a, b) = tokio::join!(
        post(&key, "k-1", body.clone()),
        post(&key, "k-1", body.clone())
    );
    let (a, b) = (a.expect("POST"), b.expect("POST"));
    let statuses = {
        let mut s = [a.status().as_u16(), b.status().as_u16()];
        s.sort_unstable();
        s
    };
    let (first, replay) = if a.status() == 201 { (a, b) } else { (b, a) };
    let first = json(first, 201).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay = json(replay, 200).await;
    let retry = post(&key, "k-1", body.clone()).await.expect("POST");
    let retry_replayed = retry.headers().get("idempotent-replayed").cloned();
    let retry = json(retry, 200).await;
    let different = post(&key, "k-1", json!({"url": DEAD_RECEIVER}))
        .await
        .expect("POST");
    let elsewhere = post(&other_key, "k-1", body.clone()).await.expect("POST");
    let too_long = post(&key, &"k".repeat(256), body.clone())
        .await
        .expect("POST");

    // Assert
    assert_eq!(statuses, [200, 201]);
    assert!(first["secret"].is_string());
    assert_endpoint_shape(&replay, false);
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(retry["id"], first["id"]);
    assert_eq!(
        retry_replayed.as_ref().map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert!(
        assert_problem(different, 422)
            .await
            .contains("used for a different request")
    );
    assert_eq!(elsewhere.status(), 201, "keys are scoped to their API key");
    assert_problem(too_long, 400).await;
    assert_eq!(app.count_rows("webhook_endpoint").await, 2);
    let stored = format!(
        "{:?}",
        sqlx::query_as::<_, (String, String, String, String)>(
            "select idempotency_key, operation, request_hash, resource_id from api_idempotency_key"
        )
        .fetch_all(&app.db().await)
        .await
        .expect("rows")
    );
    assert!(!stored.contains(&first["secret"].as_str().expect("secret")[6..]));

    // Act: the endpoint is deleted, then the key replayed.
    let id = first["id"].as_str().expect("id");
    let deleted = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/webhook-endpoints/{id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    let after_delete = post(&key, "k-1", body).await.expect("POST");

    // Assert
    assert!(assert_problem(after_delete, 409).await.contains("deleted"));
}

#[tokio::test]
async fn deliveries_page_by_cursor_and_resend_makes_a_failed_one_pending() {
    // Arrange: an endpoint, then three events (a tenant connects, an alert is raised and
    // cleared).
    let app = spawn_app().await;
    let key = api_key(&app, &[Scope::WebhooksManage]).await;
    use reqwest::Method;
    let created = json(
        send(
            &app,
            Method::POST,
            "/api/v1/webhook-endpoints",
            &key,
            Some(json!({ "url": DEAD_RECEIVER })),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().expect("id");
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    raise_and_clear_alert(&app).await;
    let log = format!("/api/v1/webhook-endpoints/{id}/deliveries");

    // Act
    let first = json(
        send(&app, Method::GET, &format!("{log}?limit=2"), &key, None).await,
        200,
    )
    .await;
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = json(
        send(
            &app,
            Method::GET,
            &format!("{log}?limit=2&cursor={cursor}"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;

    // Assert: newest first, all three once, the tenant's one pending without any worker.
    let types: Vec<&str> = first["data"]
        .as_array()
        .expect("data")
        .iter()
        .chain(second["data"].as_array().expect("data"))
        .map(|d| d["event_type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "app.credential_alert",
            "app.credential_alert",
            "tenant.connected"
        ]
    );
    assert_eq!(second["next_cursor"], Value::Null);
    let connected = &second["data"][0];
    assert_eq!(connected["tenant_id"], contoso.as_str());
    assert_eq!(connected["endpoint_id"], id);
    assert!(
        connected["event_id"]
            .as_str()
            .expect("event")
            .starts_with("evt_")
    );
    for field in [
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_duration_ms",
        "last_error",
        "created_at",
        "updated_at",
    ] {
        assert!(connected.get(field).is_some(), "{field}: {connected}");
    }
    let delivery = connected["id"].as_str().expect("id").to_owned();
    let pending = json(
        send(
            &app,
            Method::GET,
            &format!("{log}?status=pending"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert!(!pending["data"].as_array().expect("data").is_empty());

    // Arrange: the endpoint paused (so no delivery worker takes the delivery meanwhile)
    // and the delivery given up.
    let paused = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/webhook-endpoints/{id}"),
        &key,
        Some(json!({ "state": "paused" })),
    )
    .await;
    assert_eq!(paused.status(), 200);
    give_up(&app, &delivery).await;
    let db = app.db().await;
    let failed = json(
        send(
            &app,
            Method::GET,
            &format!("{log}?status=failed"),
            &key,
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(failed["data"][0]["id"], delivery.as_str());

    // Act
    let resent = send(
        &app,
        Method::POST,
        &format!("/api/v1/webhook-deliveries/{delivery}/resend"),
        &key,
        None,
    )
    .await;

    // Assert
    let resent = json(resent, 202).await;
    assert_eq!(resent["id"], delivery.as_str());
    assert_eq!(resent["status"], "pending");
    assert!(resent["next_attempt_at"].is_string());
    let step: i64 = sqlx::query_scalar("select schedule_step from webhook_delivery where id = $1")
        .bind(&delivery)
        .fetch_one(&db)
        .await
        .expect("step");
    assert_eq!(step, 0, "the retry schedule starts again");
}

async fn raise_and_clear_alert(app: &TestApp) {
    let raised = app
        .store
        .set_app_alert(
            Some(RaisedAlert {
                code: "AADSTS7000215",
                headline: "Microsoft rejects the client secret",
                message: "Renew it in the app registration.",
            }),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("raise");
    let cleared = app
        .store
        .set_app_alert(None, time::OffsetDateTime::now_utc())
        .await
        .expect("clear");
    assert!(raised && cleared);
}

#[tokio::test]
async fn the_event_feed_pages_oldest_first_and_filters_by_type_and_tenant() {
    // Arrange: three events, no endpoint at all (the feed does not need one).
    let app = spawn_app().await;
    let reader = api_key(&app, &[Scope::TenantsRead]).await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    raise_and_clear_alert(&app).await;
    let feed = |query: &str| {
        let path = format!("/api/v1/events{query}");
        let (app, reader) = (&app, &reader);
        async move { api_get(app, &path, Some(reader)).await }
    };

    // Act
    let first = json(feed("?limit=2").await, 200).await;
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
    let rest = json(feed(&format!("?limit=2&cursor={cursor}")).await, 200).await;
    let end = rest["next_cursor"].as_str().expect("cursor").to_owned();
    let nothing_new = json(feed(&format!("?cursor={end}")).await, 200).await;
    let of_type = json(feed("?type=tenant.connected").await, 200).await;
    let of_tenant = json(feed(&format!("?tenant_id={contoso}")).await, 200).await;

    // Assert
    let types: Vec<&str> = first["data"]
        .as_array()
        .expect("data")
        .iter()
        .chain(rest["data"].as_array().expect("data"))
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "tenant.connected",
            "app.credential_alert",
            "app.credential_alert"
        ]
    );
    assert_eq!(first["has_more"], true);
    assert_eq!(rest["has_more"], false);
    let event = &first["data"][0];
    let mut keys: Vec<&str> = event
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["data", "id", "timestamp", "type"],
        "the webhook body"
    );
    assert_eq!(event["data"]["tenant"]["id"], contoso.as_str());
    assert_eq!(rest["data"][0]["data"]["state"], "cleared");
    assert_eq!(nothing_new["data"], json!([]));
    assert_eq!(
        nothing_new["next_cursor"],
        end.as_str(),
        "keep polling from here"
    );
    assert_eq!(of_type["data"].as_array().expect("data").len(), 1);
    assert_eq!(of_tenant["data"].as_array().expect("data").len(), 1);
    assert_eq!(of_tenant["data"][0]["type"], "tenant.connected");
    for bad in [
        "?type=tenant.exploded",
        "?cursor=evt_nope",
        "?tenant_id=contoso",
        "?limit=500",
        "?after=x",
    ] {
        assert_problem(feed(bad).await, 400).await;
    }
    assert_problem(api_get(&app, "/api/v1/events", None).await, 401).await;
}

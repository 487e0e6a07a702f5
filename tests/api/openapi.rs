//! `GET /api/openapi.json`: every route of `/api/v1` the server serves is in the document
//! (and nothing else), each route's documented scope is the one it requires, and every
//! body a route answers, success or problem, matches the schema the document gives for
//! its status, as the reference JSON Schema implementation (Python `jsonschema`, Draft
//! 2020-12) judges; the document itself passes the OpenAPI 3.1 meta-schema check.
//!
//! A new route fails `the_document_lists_exactly_the_routes_served` until it is annotated
//! and in `ApiDoc`'s `paths(...)`, and `every_route_answers_as_its_document_says` until it
//! has cases here for its success and its problems.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::api_keys::{api_get, create_on_dashboard, guid, insert_tenant, url};
use crate::app_helpers::{Browser, TestApp, spawn_app, ts};
use crate::python::run_python;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    // No key: the document describes the API and reveals nothing.
    let response = api_get(app, "/api/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("a JSON document")
}

/// (method, path) of every operation in the document, e.g. `("get", "/api/v1/tenants")`.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_owned(), path.clone()));
            }
        }
    }
    found
}

/// The scopes the document says an operation needs.
fn scopes(document: &Value, method: &str, path: &str) -> Vec<String> {
    let security = &document["paths"][path][method]["security"];
    let requirement = security
        .as_array()
        .and_then(|s| s.first())
        .unwrap_or_else(|| panic!("{method} {path} names no security requirement"));
    requirement[consentry::web::api::SECURITY_SCHEME]
        .as_array()
        .unwrap_or_else(|| panic!("{method} {path}: not the API key scheme: {security}"))
        .iter()
        .map(|s| s.as_str().expect("a scope").to_owned())
        .collect()
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let document = document(&app).await;
    let served: BTreeSet<(String, String)> = consentry::web::api::routes()
        .iter()
        .map(|r| (r.method.as_str().to_lowercase(), r.path.clone()))
        .collect();
    let mut answers = Vec::new();
    for (method, path) in &served {
        // Without a key every route answers 401; an unserved one would be a 404 or 405.
        let concrete = path.replace("{id}", &guid(1));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = reqwest::Client::new()
            .request(method.clone(), url(&app, &concrete))
            .send()
            .await
            .expect("request");
        answers.push((method, concrete, response.status().as_u16()));
    }

    // Assert
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        document["openapi"]
    );
    assert_eq!(operations(&document), served);
    assert!(served.len() >= 6, "{served:?}");
    for (method, path, status) in answers {
        assert_eq!(status, 401, "{method} {path}");
    }
    let scheme = &document["components"]["securitySchemes"][consentry::web::api::SECURITY_SCHEME];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
}

/// What one request got, as `validate_openapi.py` takes it.
struct Recorder<'a> {
    app: &'a TestApp,
    operator: &'a Browser,
    document: &'a Value,
    /// API keys by the scopes they carry.
    keys: BTreeMap<Vec<String>, String>,
    cases: Vec<Value>,
}

/// Whose key a case sends.
enum Key {
    /// Exactly the scopes the document names for the route.
    Documented,
    /// Every scope but those.
    Others,
    None,
}

impl Recorder<'_> {
    async fn key(&mut self, scopes: Vec<String>) -> String {
        if let Some(key) = self.keys.get(&scopes) {
            return key.clone();
        }
        let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let name = format!("key {}", self.keys.len());
        let (key, _) = create_on_dashboard(self.operator, &name, &refs).await;
        self.keys.insert(scopes, key.clone());
        key
    }

    /// Sends `method template` (with `{id}` = `tenant`) and `query`, asserts `expected`,
    /// and records the answer.
    async fn case(
        &mut self,
        method: &str,
        template: &str,
        tenant: &str,
        query: &str,
        key: Key,
        expected: u16,
    ) {
        self.case_with_body(method, template, tenant, query, None, key, expected)
            .await;
    }

    /// [`Recorder::case`] with a JSON request body.
    #[allow(clippy::too_many_arguments)]
    async fn case_with_body(
        &mut self,
        method: &str,
        template: &str,
        tenant: &str,
        query: &str,
        body: Option<&Value>,
        key: Key,
        expected: u16,
    ) {
        let documented = scopes(self.document, method, template);
        let key = match key {
            Key::Documented => Some(self.key(documented).await),
            Key::Others => {
                let others = consentry::domain::api_key::Scope::ALL
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .filter(|s| !documented.contains(s))
                    .collect();
                Some(self.key(others).await)
            }
            Key::None => None,
        };
        let path = template.replace("{id}", tenant);
        let target = format!("{}{}", url(self.app, &path), query);
        let method_ =
            reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut request = reqwest::Client::new().request(method_, target);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        // 204 No Content has no body to check, only its status.
        let body: Value = if status == 204 {
            Value::Null
        } else {
            response.json().await.expect("a JSON body")
        };
        assert_eq!(status, expected, "{method} {path}{query}: {body}");
        self.cases.push(json!({
            "path": template,
            "method": method,
            "status": status,
            "content_type": content_type,
            "body": body,
        }));
    }
}

/// The body of the last answer recorded.
fn last_body<'a>(r: &'a Recorder<'_>) -> &'a Value {
    &r.cases.last().expect("a case")["body"]
}

/// Runs tests/python/validate_openapi.py on `document` and `cases`.
async fn validate(document: &Value, cases: &[Value]) -> Value {
    let dir = std::env::temp_dir();
    let stem = format!("consentry-openapi-{}", uuid::Uuid::new_v4());
    let document_file: PathBuf = dir.join(format!("{stem}-document.json"));
    let cases_file: PathBuf = dir.join(format!("{stem}-cases.json"));
    std::fs::write(&document_file, document.to_string()).expect("write the document");
    std::fs::write(&cases_file, Value::from(cases.to_vec()).to_string()).expect("write the cases");
    let args: [OsString; 2] = [document_file.clone().into(), cases_file.clone().into()];
    let report = run_python("validate_openapi.py", &args).await;
    let _ = std::fs::remove_file(document_file);
    let _ = std::fs::remove_file(cases_file);
    report
}

#[tokio::test]
async fn every_route_answers_as_its_document_says() {
    // Arrange: contoso connected, a revoked tenant, and no tenant at guid(9).
    let app = spawn_app().await;
    let operator = app.operator().await;
    let document = document(&app).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let revoked = guid(7);
    let at = ts(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    insert_tenant(&app, &revoked, "revoked", &at, "[\"User.Read.All\"]").await;
    let unknown = guid(9);
    let mut r = Recorder {
        app: &app,
        operator: &operator,
        document: &document,
        keys: BTreeMap::new(),
        cases: Vec::new(),
    };

    // Act: each route's success and its problems.
    let list = "/api/v1/tenants";
    r.case("get", list, "", "", Key::Documented, 200).await;
    r.case(
        "get",
        list,
        "",
        "?search=contoso&updated_since=2026-01-01T00:00:00Z",
        Key::Documented,
        200,
    )
    .await;
    r.case("get", list, "", "?limit=0", Key::Documented, 400)
        .await;
    r.case(
        "get",
        list,
        "",
        "?updated_since=yesterday",
        Key::Documented,
        400,
    )
    .await;
    r.case("get", list, "", "", Key::None, 401).await;
    r.case("get", list, "", "", Key::Others, 403).await;

    let show = "/api/v1/tenants/{id}";
    r.case("get", show, &contoso, "", Key::Documented, 200)
        .await;
    r.case("get", show, &revoked, "", Key::Documented, 200)
        .await;
    r.case("get", show, &unknown, "", Key::Documented, 404)
        .await;
    r.case("get", show, &contoso, "", Key::None, 401).await;
    r.case("get", show, &contoso, "", Key::Others, 403).await;

    let events = "/api/v1/tenants/{id}/events";
    r.case("get", events, &contoso, "?limit=2", Key::Documented, 200)
        .await;
    r.case(
        "get",
        events,
        &contoso,
        "?cursor=nope",
        Key::Documented,
        400,
    )
    .await;
    r.case("get", events, &unknown, "", Key::Documented, 404)
        .await;
    r.case("get", events, &contoso, "", Key::None, 401).await;
    r.case("get", events, &contoso, "", Key::Others, 403).await;

    let token = "/api/v1/tenants/{id}/token";
    r.case("post", token, &contoso, "", Key::Documented, 200)
        .await;
    r.case("post", token, &revoked, "", Key::Documented, 409)
        .await;
    r.case("post", token, &unknown, "", Key::Documented, 404)
        .await;
    r.case("post", token, &contoso, "", Key::None, 401).await;
    r.case("post", token, &contoso, "", Key::Others, 403).await;

    let users = "/api/v1/tenants/{id}/users";
    r.case(
        "get",
        users,
        &contoso,
        "?limit=5&fields=id,displayName",
        Key::Documented,
        200,
    )
    .await;
    r.case("get", users, &contoso, "?limit=0", Key::Documented, 400)
        .await;
    r.case("get", users, &revoked, "", Key::Documented, 409)
        .await;
    r.case("get", users, &unknown, "", Key::Documented, 404)
        .await;
    r.case("get", users, &contoso, "", Key::None, 401).await;
    r.case("get", users, &contoso, "", Key::Others, 403).await;
    let (status, body) = app
        .emulator
        .control(
            reqwest::Method::PUT,
            "/faults",
            Some(json!({"throttle_next": 1, "retry_after_seconds": 120, "endpoints": ["graph"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    r.case("get", users, &contoso, "", Key::Documented, 503)
        .await;

    // Webhook endpoints: one created, an alert raised so that it has a delivery.
    let endpoints = "/api/v1/webhook-endpoints";
    let new = json!({"url": "http://127.0.0.1:9/hook", "description": "CRM"});
    r.case_with_body("post", endpoints, "", "", Some(&new), Key::Documented, 201)
        .await;
    let endpoint = last_body(&r)["id"].as_str().expect("an id").to_owned();
    let ftp = json!({"url": "ftp://hooks.example.com/"});
    r.case_with_body("post", endpoints, "", "", Some(&ftp), Key::Documented, 422)
        .await;
    let unknown_field = json!({"url": "http://127.0.0.1:9/hook", "secret": "whsec_x"});
    r.case_with_body(
        "post",
        endpoints,
        "",
        "",
        Some(&unknown_field),
        Key::Documented,
        400,
    )
    .await;
    let oversized = json!({"url": "http://127.0.0.1:9/hook", "description": "x".repeat(10_000)});
    r.case_with_body(
        "post",
        endpoints,
        "",
        "",
        Some(&oversized),
        Key::Documented,
        413,
    )
    .await;
    r.case_with_body("post", endpoints, "", "", Some(&new), Key::None, 401)
        .await;
    r.case_with_body("post", endpoints, "", "", Some(&new), Key::Others, 403)
        .await;
    r.case("get", endpoints, "", "", Key::Documented, 200).await;
    r.case("get", endpoints, "", "", Key::None, 401).await;
    r.case("get", endpoints, "", "", Key::Others, 403).await;
    let raised = app
        .store
        .set_app_alert(
            Some(consentry::store::RaisedAlert {
                code: "AADSTS7000215",
                headline: "consentry's own credential is failing.",
                message: "Invalid client secret provided.",
            }),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("an alert");
    assert!(raised);

    let no_endpoint = "ep_00000000000000000000000000000000";
    let one = "/api/v1/webhook-endpoints/{id}";
    r.case("get", one, &endpoint, "", Key::Documented, 200)
        .await;
    r.case("get", one, no_endpoint, "", Key::Documented, 404)
        .await;
    r.case("get", one, &endpoint, "", Key::None, 401).await;
    r.case("get", one, &endpoint, "", Key::Others, 403).await;
    let change = json!({"description": "CRM sync", "event_types": ["tenant.connected"]});
    r.case_with_body(
        "patch",
        one,
        &endpoint,
        "",
        Some(&change),
        Key::Documented,
        200,
    )
    .await;
    let back = json!({"event_types": null});
    r.case_with_body(
        "patch",
        one,
        &endpoint,
        "",
        Some(&back),
        Key::Documented,
        200,
    )
    .await;
    let bad_state = json!({"state": "disabled"});
    r.case_with_body(
        "patch",
        one,
        &endpoint,
        "",
        Some(&bad_state),
        Key::Documented,
        422,
    )
    .await;
    r.case_with_body(
        "patch",
        one,
        &endpoint,
        "",
        Some(&unknown_field),
        Key::Documented,
        400,
    )
    .await;
    r.case_with_body(
        "patch",
        one,
        no_endpoint,
        "",
        Some(&change),
        Key::Documented,
        404,
    )
    .await;
    r.case_with_body("patch", one, &endpoint, "", Some(&change), Key::None, 401)
        .await;
    r.case_with_body("patch", one, &endpoint, "", Some(&change), Key::Others, 403)
        .await;

    let rotate = "/api/v1/webhook-endpoints/{id}/rotate-secret";
    r.case("post", rotate, &endpoint, "", Key::Documented, 200)
        .await;
    r.case("post", rotate, no_endpoint, "", Key::Documented, 404)
        .await;
    r.case("post", rotate, &endpoint, "", Key::None, 401).await;
    r.case("post", rotate, &endpoint, "", Key::Others, 403)
        .await;

    let deliveries = "/api/v1/webhook-endpoints/{id}/deliveries";
    r.case(
        "get",
        deliveries,
        &endpoint,
        "?limit=1",
        Key::Documented,
        200,
    )
    .await;
    let delivery = last_body(&r)["data"][0]["id"]
        .as_str()
        .expect("a delivery")
        .to_owned();
    r.case(
        "get",
        deliveries,
        &endpoint,
        "?cursor=nope",
        Key::Documented,
        400,
    )
    .await;
    r.case("get", deliveries, no_endpoint, "", Key::Documented, 404)
        .await;
    r.case("get", deliveries, &endpoint, "", Key::None, 401)
        .await;
    r.case("get", deliveries, &endpoint, "", Key::Others, 403)
        .await;

    let resend = "/api/v1/webhook-deliveries/{id}/resend";
    r.case("post", resend, &delivery, "", Key::Documented, 202)
        .await;
    r.case("post", resend, "dlv_nope", "", Key::Documented, 404)
        .await;
    r.case("post", resend, &delivery, "", Key::None, 401).await;
    r.case("post", resend, &delivery, "", Key::Others, 403)
        .await;

    let feed = "/api/v1/events";
    r.case("get", feed, "", "?limit=2", Key::Documented, 200)
        .await;
    r.case(
        "get",
        feed,
        "",
        "?type=tenant.exploded",
        Key::Documented,
        400,
    )
    .await;
    r.case("get", feed, "", "", Key::None, 401).await;
    r.case("get", feed, "", "", Key::Others, 403).await;

    r.case("delete", one, no_endpoint, "", Key::Documented, 404)
        .await;
    r.case("delete", one, &endpoint, "", Key::None, 401).await;
    r.case("delete", one, &endpoint, "", Key::Others, 403).await;
    r.case("delete", one, &endpoint, "", Key::Documented, 204)
        .await;

    // Last: two checks on request are allowed per tenant, the third is a 429.
    let verify = "/api/v1/tenants/{id}/verify";
    r.case("post", verify, &unknown, "", Key::Documented, 404)
        .await;
    r.case("post", verify, &contoso, "", Key::None, 401).await;
    r.case("post", verify, &contoso, "", Key::Others, 403).await;
    r.case("post", verify, &contoso, "", Key::Documented, 202)
        .await;
    r.case("post", verify, &contoso, "", Key::Documented, 202)
        .await;
    r.case("post", verify, &contoso, "", Key::Documented, 429)
        .await;

    let cases = std::mem::take(&mut r.cases);
    let report = validate(&document, &cases).await;

    // Assert: a valid document; each body as documented; each route tried for its
    // success, a missing key, a missing scope and a problem of its own.
    assert_eq!(report["document_errors"], json!([]), "{report}");
    assert_eq!(report["mismatches"], json!([]), "{report}");
    assert_eq!(report["checked"], cases.len(), "{report}");
    for (method, path) in operations(&document) {
        let statuses: BTreeSet<u64> = cases
            .iter()
            .filter(|c| c["method"] == method.as_str() && c["path"] == path.as_str())
            .filter_map(|c| c["status"].as_u64())
            .collect();
        let responses = document["paths"][&path][&method]["responses"]
            .as_object()
            .expect("responses");
        let own_problems: Vec<u64> = [400, 404, 409]
            .into_iter()
            .filter(|s| responses.contains_key(&s.to_string()))
            .collect();
        assert!(
            statuses.iter().any(|s| (200..300).contains(s))
                && statuses.contains(&401)
                && statuses.contains(&403)
                && (own_problems.is_empty() || own_problems.iter().any(|s| statuses.contains(s))),
            "{method} {path}: add cases for its success and problems (has {statuses:?})"
        );
    }
}

#[tokio::test]
async fn the_check_reports_a_missing_or_undocumented_field() {
    // Arrange: real answers, then spoilt as a drifting handler would spoil them.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let document = document(&app).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let mut r = Recorder {
        app: &app,
        operator: &operator,
        document: &document,
        keys: BTreeMap::new(),
        cases: Vec::new(),
    };
    let show = "/api/v1/tenants/{id}";
    r.case("get", show, &contoso, "", Key::Documented, 200)
        .await;
    r.case("get", show, &guid(9), "", Key::Documented, 404)
        .await;
    let mut cases = std::mem::take(&mut r.cases);
    cases[0]["body"]["claims"][0]
        .as_object_mut()
        .expect("a claim")
        .remove("confirming");
    cases[0]["body"]["access_token"] = json!("leaked");
    cases[1]["body"]
        .as_object_mut()
        .expect("a problem")
        .remove("request_id");
    let mut unlisted = cases[1].clone();
    unlisted["status"] = json!(418);

    // Act
    cases.push(unlisted);
    let report = validate(&document, &cases).await;

    // Assert
    let mismatches: Vec<&str> = report["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .map(|m| m.as_str().expect("text"))
        .collect();
    assert_eq!(mismatches.len(), 4, "{report}");
    assert!(
        mismatches
            .iter()
            .any(|m| m.contains("'confirming' is a required property")),
        "{report}"
    );
    assert!(
        mismatches.iter().any(|m| m.contains("access_token")),
        "{report}"
    );
    assert!(
        mismatches
            .iter()
            .any(|m| m.contains("'request_id' is a required property")),
        "{report}"
    );
    assert!(
        mismatches
            .iter()
            .any(|m| m.contains("418") && m.contains("no response")),
        "{report}"
    );
}

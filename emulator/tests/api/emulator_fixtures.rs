//! Fixtures: `--fixture` at start, `GET /_emulator/fixture`, `POST /_emulator/reset`, and
//! several app registrations in one emulator.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{GRAPH_DEFAULT, TestEmulator, claims, spawn_emulator, spawn_emulator_with};

const CONSENTRY_APP: &str = "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90";
const REPORTING_APP: &str = "0f5d3c1a-8e2b-4c7d-9a6f-1b2c3d4e5f60";
const CONTOSO: &str = "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58";
const FABRIKAM: &str = "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6";
const TAILSPIN: &str = "5d8f1a6c-b3e7-4290-a4c1-8e2f7b6d9a03";

fn example_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/emulator-fixture.toml")
}

/// `text` in a new temporary file named `*.{extension}`.
fn fixture_file(text: &str, extension: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "consentry-fixture-{}.{extension}",
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&path, text).expect("the fixture is written");
    path
}

async fn spawn_with_fixture(path: PathBuf) -> TestEmulator {
    spawn_emulator_with(|c| c.fixture = Some(path)).await
}

/// A client-credentials request for any app.
async fn token_for(
    emulator: &TestEmulator,
    tenant: &str,
    client_id: &str,
    secret: &str,
) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .append_pair("scope", GRAPH_DEFAULT)
        .finish();
    let response = emulator.token_raw(tenant, "v2", body).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("token JSON"))
}

/// An identity-platform error with this status, `error` and AADSTS code.
fn refused(status: u16, body: &Value, expected: u16, error: &str, code: u64) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
}

async fn export(emulator: &TestEmulator, query: &str) -> (u16, String, String) {
    let response = emulator
        .http
        .get(emulator.url(&format!("/_emulator/fixture{query}")))
        .send()
        .await
        .expect("the export answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.expect("a body"))
}

async fn export_json(emulator: &TestEmulator) -> Value {
    let (status, _, body) = export(emulator, "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Tenant ids of an exported fixture, in order.
fn tenant_ids(fixture: &Value) -> Vec<String> {
    fixture["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// An exported fixture without what a reset makes anew (times and service principal ids
/// the fixture did not declare).
fn without_fresh_values(mut fixture: Value) -> Value {
    for tenant in fixture["tenants"].as_array_mut().unwrap() {
        tenant.as_object_mut().unwrap().remove("created_at");
        for consent in tenant["consents"].as_array_mut().into_iter().flatten() {
            let consent = consent.as_object_mut().unwrap();
            consent.remove("consented_at");
            consent.remove("service_principal_id");
        }
    }
    fixture
}

#[tokio::test]
async fn the_readmes_example_fixture_loads_with_its_apps_tenants_and_consents() {
    let emulator = spawn_with_fixture(example_fixture()).await;

    let (status, tenants) = emulator.control(Method::GET, "/tenants", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [CONTOSO, FABRIKAM, TAILSPIN],
        "the fixture's only, in order"
    );
    let (_, app) = emulator.control(Method::GET, "/app", None).await;
    assert_eq!(app["client_id"], CONSENTRY_APP);
    assert_eq!(app["other_apps"], json!([REPORTING_APP]));

    // Both apps get tokens where they were consented, with their own permissions.
    let (status, body) = token_for(
        &emulator,
        CONTOSO,
        CONSENTRY_APP,
        "consentry-emulator-secret",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = token_for(&emulator, CONTOSO, REPORTING_APP, "reporting-secret-1").await;
    assert_eq!(status, 200, "{body}");
    let token = claims(body["access_token"].as_str().unwrap());
    assert_eq!(token["appid"], REPORTING_APP);
    assert_eq!(token["app_displayname"], "Northwind Reporting");
    assert_eq!(token["roles"], json!(["Directory.Read.All"]));
    // The secret declared as a hash works as well as the one in clear.
    let (status, _) = token_for(&emulator, CONTOSO, REPORTING_APP, "reporting-secret-2").await;
    assert_eq!(status, 200);
    let (status, body) = token_for(&emulator, FABRIKAM, REPORTING_APP, "reporting-secret-2").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        claims(body["access_token"].as_str().unwrap())
            .get("roles")
            .is_none(),
        "roles = [] leaves the roles claim out"
    );

    // Where an app was not consented, or with another app's secret, Microsoft's errors.
    let (status, body) = token_for(
        &emulator,
        FABRIKAM,
        CONSENTRY_APP,
        "consentry-emulator-secret",
    )
    .await;
    refused(status, &body, 400, "unauthorized_client", 700016);
    let (status, body) = token_for(&emulator, TAILSPIN, REPORTING_APP, "reporting-secret-1").await;
    refused(status, &body, 400, "unauthorized_client", 700016);
    let (status, body) = token_for(
        &emulator,
        CONTOSO,
        REPORTING_APP,
        "consentry-emulator-secret",
    )
    .await;
    refused(status, &body, 401, "invalid_client", 7000215);

    // The certificate and the app role are registered as declared.
    let fixture = export_json(&emulator).await;
    let reporting = &fixture["apps"][1];
    assert_eq!(reporting["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(reporting["app_roles"][0]["value"], "Reports.Read");
}

#[tokio::test]
async fn another_apps_consent_page_names_that_app_and_consents_for_it_only() {
    let emulator = spawn_with_fixture(example_fixture()).await;
    let redirect = "https://reporting.example.com/auth/callback";
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", REPORTING_APP)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "s1")
        .finish();

    let page = emulator.consent_page(TAILSPIN, &query).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Northwind Reporting"), "{html}");
    assert!(html.contains("Directory.Read.All"), "{html}");
    // The primary app's redirect URI is not the reporting app's.
    let wrong = query.replace(
        &form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>(),
        "http%3A%2F%2Flocalhost%3A8080%2Fconsent%2Fcallback",
    );
    let page = emulator.consent_page(TAILSPIN, &wrong).await;
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("AADSTS50011"));

    let back = emulator
        .decide(
            &emulator.url(&format!("/{TAILSPIN}/adminconsent?{query}")),
            "accept",
            None,
        )
        .await;

    assert!(back.starts_with(redirect), "{back}");
    assert!(back.contains(&format!("tenant={TAILSPIN}")), "{back}");
    let tenant = emulator.tenant(TAILSPIN).await;
    assert_eq!(tenant["consented"], false, "not the primary app");
    assert_eq!(tenant["consents"][0]["client_id"], REPORTING_APP);
    let (status, _) = token_for(&emulator, TAILSPIN, REPORTING_APP, "reporting-secret-1").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_control_api_consents_and_revokes_for_the_app_it_is_told() {
    let emulator = spawn_with_fixture(example_fixture()).await;

    let (status, body) = emulator
        .control(
            Method::POST,
            &format!("/tenants/{TAILSPIN}/consent?client_id={REPORTING_APP}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consents"][0]["roles"], json!(["Directory.Read.All"]));
    let (status, body) = emulator
        .control(
            Method::PUT,
            &format!("/tenants/{TAILSPIN}/roles?client_id={REPORTING_APP}"),
            Some(json!(["User.Read.All"])),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consents"][0]["roles"], json!(["User.Read.All"]));
    let (status, body) = emulator
        .control(
            Method::DELETE,
            &format!("/tenants/{CONTOSO}/consent?client_id={REPORTING_APP}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["consented"], true, "the primary app's consent stays");
    let (status, body) = token_for(&emulator, CONTOSO, REPORTING_APP, "reporting-secret-1").await;
    refused(status, &body, 400, "unauthorized_client", 700016);

    let stranger = uuid::Uuid::new_v4();
    let (status, body) = emulator
        .control(
            Method::POST,
            &format!("/tenants/{TAILSPIN}/consent?client_id={stranger}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = emulator
        .control(
            Method::POST,
            &format!("/tenants/{TAILSPIN}/consent?client_id=nope"),
            None,
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn export_reset_and_import_round_trip() {
    let original = std::fs::read_to_string(example_fixture()).unwrap();
    let emulator = spawn_with_fixture(example_fixture()).await;
    let at_start = export_json(&emulator).await;

    // Arrange: change the world after start.
    emulator.consent(TAILSPIN).await;
    let (status, _) = emulator
        .control(
            Method::POST,
            "/tenants",
            Some(json!({"display_name": "Adatum", "domain": "adatum", "consented": true})),
        )
        .await;
    assert_eq!(status, 201);
    emulator.revoke(CONTOSO).await;
    let changed = export_json(&emulator).await;
    assert_eq!(tenant_ids(&changed).len(), 4);

    // Act: reset, and start new emulators from the exports (JSON and TOML).
    let (status, body) = emulator.control(Method::POST, "/reset", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"apps": 2, "tenants": 3, "users": 3}));
    let after_reset = export_json(&emulator).await;
    let imported = spawn_with_fixture(fixture_file(
        &serde_json::to_string_pretty(&changed).unwrap(),
        "json",
    ))
    .await;
    let (status, content_type, toml_text) = export(&emulator, "?format=toml").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/toml"),
        "{content_type}"
    );
    let from_toml = spawn_with_fixture(fixture_file(&toml_text, "toml")).await;

    // Assert: the reset is the fixture again; an import is exactly what was exported.
    assert_eq!(
        without_fresh_values(after_reset.clone()),
        without_fresh_values(at_start.clone())
    );
    assert_eq!(export_json(&imported).await, changed);
    assert_eq!(export_json(&from_toml).await, after_reset);
    // The export carries no secret, only hashes, which the import accepts.
    let exported_text = changed.to_string() + &toml_text;
    for secret in ["consentry-emulator-secret", "reporting-secret-1"] {
        assert!(
            original.contains(secret),
            "the fixture declares {secret} in clear"
        );
        assert!(!exported_text.contains(secret), "{secret} leaked");
    }
    assert!(changed["apps"][0].get("secrets").is_none());
    assert_eq!(
        changed["apps"][0]["secret_sha256"][0]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    let (status, body) = token_for(&imported, CONTOSO, REPORTING_APP, "reporting-secret-1").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = token_for(
        &imported,
        TAILSPIN,
        CONSENTRY_APP,
        "consentry-emulator-secret",
    )
    .await;
    assert_eq!(status, 200, "the consent made after start was exported");
}

#[tokio::test]
async fn reset_without_a_fixture_goes_back_to_the_built_in_defaults_and_clears_the_modes() {
    let emulator = spawn_emulator().await;
    let at_start = export_json(&emulator).await;
    emulator.consent(&emulator.contoso()).await;
    let (status, _) = emulator
        .control(Method::PUT, "/faults", Some(json!({"fail_next": 5})))
        .await;
    assert_eq!(status, 200);
    let (status, _) = emulator
        .control(
            Method::POST,
            "/hostile",
            Some(json!({"mode": "expired", "count": 5})),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body) = emulator.control(Method::POST, "/reset", None).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(
        without_fresh_values(export_json(&emulator).await),
        without_fresh_values(at_start)
    );
    assert_eq!(
        emulator.tenant(&emulator.contoso()).await["consented"],
        false
    );
    let (_, faults) = emulator.control(Method::GET, "/faults", None).await;
    assert_eq!(faults["global"], Value::Null);
    let (_, hostile) = emulator.control(Method::GET, "/hostile", None).await;
    assert_eq!(hostile, json!({"tokens": null, "throttle": null}));
    assert_eq!(emulator.requests().await["total"], 0);
    let token = emulator.contoso_token().await;
    assert!(claims(&token)["exp"].as_i64().is_some());
}

#[tokio::test]
async fn the_export_speaks_toml_when_accept_asks_and_refuses_unknown_formats() {
    let emulator = spawn_emulator().await;

    let response = emulator
        .http
        .get(emulator.url("/_emulator/fixture"))
        .header("accept", "application/toml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("[[apps]]") && text.contains("[[tenants]]"),
        "{text}"
    );
    let (status, _, body) = export(&emulator, "?format=yaml").await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = export(&emulator, "?format=json&secrets=1").await;
    assert_eq!(status, 400, "{body}");
}

/// A valid fixture with `edit` applied, as TOML.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut fixture = json!({
        "apps": [{
            "client_id": REPORTING_APP,
            "display_name": "Reporting",
            "secrets": ["a-secret-never-shown"],
            "redirect_uris": ["https://reporting.example.com/cb"],
            "permissions": ["User.Read.All"],
        }],
        "tenants": [{
            "id": CONTOSO,
            "display_name": "Contoso",
            "domain": "contoso.onmicrosoft.com",
            "consents": [{"client_id": REPORTING_APP}],
        }],
    });
    edit(&mut fixture);
    serde_json::to_string(&fixture).unwrap()
}

/// The error `Emulator::build` gives for `text` in a `*.{extension}` file.
fn start_error(text: &str, extension: &str) -> String {
    let config = consentry_emulator::EmulatorConfig {
        port: 0,
        workers: Some(1),
        fixture: Some(fixture_file(text, extension)),
        ..Default::default()
    };
    match consentry_emulator::Emulator::build(config) {
        Ok(_) => panic!("the emulator started with {text}"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test]
async fn bad_fixtures_fail_at_start_with_a_message_naming_the_field() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            edited(|f| f["apps"][0]["client_id"] = json!("not-a-guid")),
            "json",
            "apps[0].client_id",
        ),
        (
            edited(|f| f["apps"][0]["redirect_uris"][0] = json!("http://reporting.example.com/cb")),
            "json",
            "apps[0].redirect_uris[0]",
        ),
        (
            edited(|f| f["apps"][0]["permissions"][0] = json!("read everything")),
            "json",
            "apps[0].permissions[0]",
        ),
        (
            edited(|f| f["apps"][0]["certificates"] = json!(["not a certificate"])),
            "json",
            "apps[0].certificates[0]",
        ),
        (
            edited(|f| f["apps"][0]["secret_sha256"] = json!(["abc"])),
            "json",
            "apps[0].secret_sha256[0]",
        ),
        (
            edited(|f| f["tenants"][0]["domain"] = json!("contoso.com")),
            "json",
            "tenants[0].domain",
        ),
        (
            edited(|f| f["tenants"][0]["consents"][0]["client_id"] = json!(CONSENTRY_APP)),
            "json",
            "tenants[0].consents[0].client_id",
        ),
        (
            edited(|f| {
                f["tenants"][0]["users"] =
                    json!([{"display_name": "Ada", "user_principal_name": "ada@fabrikam.com"}])
            }),
            "json",
            "tenants[0].users[0].user_principal_name",
        ),
        (
            edited(|f| f["tenants"][0]["users"] = json!([{"name": "Ada"}])),
            "json",
            "unknown field `name`",
        ),
        (
            edited(|f| {
                let copy = f["tenants"][0].clone();
                f["tenants"].as_array_mut().unwrap().push(copy);
            }),
            "json",
            "tenants[1].id",
        ),
        (
            edited(|f| f["tenants"][0]["user_count"] = json!(100_001)),
            "json",
            "tenants[0].user_count",
        ),
        (
            edited(|f| f["apps"] = json!([])),
            "json",
            "apps: at least one",
        ),
        (
            edited(|f| f["apps"][0]["secretz"] = json!(["x"])),
            "json",
            "unknown field `secretz`",
        ),
        (
            "[[apps]]\nclient_id = \"x\"\ndisplay_nme = \"y\"\n".to_owned(),
            "toml",
            "display_nme",
        ),
        (edited(|_| {}), "yaml", ".toml or .json"),
    ];
    for (text, extension, expected) in cases {
        let message = start_error(&text, extension);
        assert!(message.contains(expected), "{expected}: {message}");
        assert!(message.contains("--fixture"), "{message}");
        assert!(!message.contains("a-secret-never-shown"), "{message}");
    }
    let missing = consentry_emulator::Emulator::build(consentry_emulator::EmulatorConfig {
        port: 0,
        fixture: Some(std::env::temp_dir().join("no-such-fixture.toml")),
        ..Default::default()
    });
    assert!(format!("{:#}", missing.err().unwrap()).contains("no-such-fixture.toml"));
}

#[test]
fn the_cli_refuses_a_bad_fixture_and_a_fixture_beside_app_flags() {
    let bad = fixture_file(
        &edited(|f| f["tenants"][0]["country"] = json!("Switzerland")),
        "json",
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry-emulator"))
        .args(["--port", "0", "--fixture"])
        .arg(&bad)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("tenants[0].country"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consentry-emulator"))
        .args(["--port", "0", "--client-id", CONSENTRY_APP, "--fixture"])
        .arg(example_fixture())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--fixture"), "{stderr}");
}

#[tokio::test]
async fn sign_in_users_are_declared_exported_and_restored_by_reset() {
    let emulator = spawn_with_fixture(example_fixture()).await;
    let users_of = |tenant: &'static str, query: &'static str| {
        let emulator = &emulator;
        async move {
            let (status, users) = emulator
                .control(
                    Method::GET,
                    &format!("/tenants/{tenant}/users{query}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{users}");
            users
        }
    };

    let fixture = export_json(&emulator).await;
    let reporting_users =
        users_of(CONTOSO, "?client_id=0f5d3c1a-8e2b-4c7d-9a6f-1b2c3d4e5f60").await;
    let primary_users = users_of(CONTOSO, "").await;
    let megan = primary_users[1]["id"].as_str().unwrap().to_owned();
    let (deleted, _) = emulator
        .control(
            Method::DELETE,
            &format!("/tenants/{CONTOSO}/users/{megan}"),
            None,
        )
        .await;
    let (status, reset) = emulator.control(Method::POST, "/reset", None).await;
    let after_reset = users_of(CONTOSO, "").await;

    let contoso = &fixture["tenants"][0];
    assert_eq!(
        contoso["users"][0]["user_principal_name"],
        "admin@contoso.onmicrosoft.com"
    );
    assert_eq!(
        contoso["users"][0]["id"],
        "1b6e4f2a-7c3d-4e8f-9a0b-2c4d6e8f0a13"
    );
    assert_eq!(contoso["users"][0]["admin"], true);
    assert_eq!(
        contoso["users"][1]["app_roles"],
        json!([{"client_id": REPORTING_APP, "value": "Reports.Read"}])
    );
    assert_eq!(fixture["tenants"][2]["user_consent"], "none");
    assert!(
        fixture["tenants"][1].get("users").is_none(),
        "Fabrikam has none"
    );
    assert_eq!(reporting_users[1]["roles"], json!(["Reports.Read"]));
    assert_eq!(
        primary_users[1]["roles"],
        json!([]),
        "none of the primary app's"
    );
    assert_eq!((deleted, status), (204, 200));
    assert_eq!(reset["users"], 3);
    assert_eq!(after_reset, primary_users, "the same users, ids and all");
}

#[tokio::test]
async fn the_default_seeds_users_are_in_the_export_and_a_users_bad_field_is_named() {
    let emulator = spawn_emulator().await;

    let fixture = export_json(&emulator).await;
    let bad_role = start_error(
        &std::fs::read_to_string(example_fixture())
            .unwrap()
            .replace("value = \"Reports.Read\" }", "value = \"Nope\" }"),
        "toml",
    );
    let unknown = start_error(
        &std::fs::read_to_string(example_fixture())
            .unwrap()
            .replace("admin = true", "admin = true\npassword = \"x\""),
        "toml",
    );

    let names: Vec<&str> = fixture["tenants"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_principal_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["adele.vance@contoso.com", "admin@contoso.onmicrosoft.com"]
    );
    assert!(
        bad_role.contains("tenants[0].users[1].app_roles"),
        "{bad_role}"
    );
    assert!(unknown.contains("password"), "{unknown}");
}

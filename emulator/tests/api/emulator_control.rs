//! The control API under `/_emulator/`, and the discovery documents and keys MSAL reads.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    FABRIKAM, TestEmulator, WOODGROVE, assert_sts_error, claims, is_guid, spawn_emulator,
};

async fn create(emulator: &TestEmulator, body: Value) -> (u16, Value) {
    emulator.control(Method::POST, "/tenants", Some(body)).await
}

async fn tenant_count(emulator: &TestEmulator) -> usize {
    let (status, tenants) = emulator.control(Method::GET, "/tenants", None).await;
    assert_eq!(status, 200);
    tenants.as_array().unwrap().len()
}

/// Sends `body` as given, with a JSON content type.
async fn control_raw(
    emulator: &TestEmulator,
    method: Method,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let response = emulator
        .http
        .request(method, emulator.url(&format!("/_emulator{path}")))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_control_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "a JSON error: {body}"
    );
}

async fn get_json(emulator: &TestEmulator, path: &str) -> (u16, Value) {
    let response = emulator.http.get(emulator.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn tenants_lists_the_seeded_tenants_not_consented() {
    let emulator = spawn_emulator().await;

    let (status, body) = emulator.control(Method::GET, "/tenants", None).await;

    assert_eq!(status, 200);
    let tenants = body.as_array().unwrap();
    assert!(tenants.len() >= 3, "{body}");
    for t in tenants {
        assert!(is_guid(&t["id"]), "{t}");
        assert!(t["domain"].as_str().unwrap().ends_with(".onmicrosoft.com"));
        assert!(!t["display_name"].as_str().unwrap().is_empty());
        assert_eq!(t["consented"], false, "{t}");
        assert_eq!(t["roles"], json!([]), "{t}");
    }
    let contoso = tenants
        .iter()
        .find(|t| t["id"] == emulator.contoso())
        .expect("Contoso is seeded");
    assert_eq!(contoso["domain"], "contoso.onmicrosoft.com");
    assert_eq!(contoso["display_name"], "Contoso Ltd");
    assert_eq!(contoso["user_count"], 36);
    let woodgrove = tenants.iter().find(|t| t["id"] == WOODGROVE).unwrap();
    assert_eq!(woodgrove["user_count"], 130);
    assert!(tenants.iter().any(|t| t["id"] == FABRIKAM));
}

#[tokio::test]
async fn tenant_by_id_is_404_when_unknown_and_400_when_not_a_guid() {
    let emulator = spawn_emulator().await;

    let (unknown_status, unknown) = emulator
        .control(
            Method::GET,
            &format!("/tenants/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    let (bad_status, bad) = emulator
        .control(Method::GET, "/tenants/contoso.onmicrosoft.com", None)
        .await;

    assert_control_error(unknown_status, &unknown, 404);
    assert_control_error(bad_status, &bad, 400);
}

#[tokio::test]
async fn created_tenant_gets_an_onmicrosoft_domain_and_no_consent() {
    let emulator = spawn_emulator().await;

    let (status, body) = create(&emulator, json!({"display_name": "Acme", "domain": "acme"})).await;

    assert_eq!(status, 201, "{body}");
    let created = body.as_array().unwrap();
    assert_eq!(created.len(), 1);
    let acme = &created[0];
    assert!(is_guid(&acme["id"]));
    assert_eq!(acme["display_name"], "Acme");
    assert_eq!(acme["domain"], "acme.onmicrosoft.com");
    assert_eq!(acme["consented"], false);
    let id = acme["id"].as_str().unwrap();
    assert_eq!(emulator.tenant(id).await["domain"], "acme.onmicrosoft.com");
}

#[tokio::test]
async fn created_tenant_answers_700016_until_consented() {
    let emulator = spawn_emulator().await;
    let (_, body) = create(&emulator, json!({"display_name": "Acme", "domain": "acme"})).await;
    let id = body[0]["id"].as_str().unwrap().to_owned();

    let before = emulator.token_v2("acme.onmicrosoft.com", &[]).await;
    let consented = emulator.consent(&id).await;
    let token = emulator.access_token("acme.onmicrosoft.com").await;

    assert_sts_error(before, 400, "unauthorized_client", 700016).await;
    assert_eq!(consented["consented"], true);
    assert_eq!(claims(&token)["tid"], id);
}

#[tokio::test]
async fn created_tenant_with_id_users_and_custom_domain_is_served_by_graph() {
    let emulator = spawn_emulator().await;
    let id = uuid::Uuid::new_v4().to_string();

    let (status, body) = create(
        &emulator,
        json!({
            "id": id,
            "display_name": "Acme Corp",
            "domain": "acmecorp.onmicrosoft.com",
            "verified_domains": ["acme.example"],
            "users": 7,
            "consented": true,
        }),
    )
    .await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0]["id"], id);
    assert_eq!(body[0]["consented"], true);
    let token = emulator.access_token("acme.example").await;
    let users: Value = emulator
        .graph("/v1.0/users", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["value"].as_array().unwrap().len(), 7);
    let org: Value = emulator
        .graph("/v1.0/organization", Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["value"][0]["displayName"], "Acme Corp");
}

#[tokio::test]
async fn two_thousand_consented_tenants_are_created_at_once() {
    let emulator = spawn_emulator().await;
    let before = tenant_count(&emulator).await;

    let (status, body) = create(&emulator, json!({"count": 2000, "consented": true})).await;

    assert_eq!(status, 201);
    let created = body.as_array().unwrap();
    assert_eq!(created.len(), 2000);
    let ids: HashSet<&str> = created.iter().map(|t| t["id"].as_str().unwrap()).collect();
    let domains: HashSet<&str> = created
        .iter()
        .map(|t| t["domain"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2000);
    assert_eq!(domains.len(), 2000);
    assert!(created.iter().all(|t| t["consented"] == true));
    assert_eq!(tenant_count(&emulator).await, before + 2000);
    let last = created.last().unwrap();
    let token = emulator
        .access_token(last["domain"].as_str().unwrap())
        .await;
    assert_eq!(claims(&token)["tid"], last["id"]);
}

#[tokio::test]
async fn count_out_of_range_is_400_and_creates_nothing() {
    let emulator = spawn_emulator().await;
    let before = tenant_count(&emulator).await;

    for count in [json!(0), json!(100_001), json!(-1), json!("5")] {
        let (status, body) = create(&emulator, json!({ "count": count })).await;

        assert_control_error(status, &body, 400);
    }
    assert_eq!(tenant_count(&emulator).await, before);
}

#[tokio::test]
async fn too_many_users_is_400() {
    let emulator = spawn_emulator().await;

    let (status, body) = create(&emulator, json!({"domain": "big", "users": 100_001})).await;

    assert_control_error(status, &body, 400);
}

#[tokio::test]
async fn count_above_one_with_named_fields_is_400() {
    let emulator = spawn_emulator().await;
    let before = tenant_count(&emulator).await;

    for body in [
        json!({"count": 2, "domain": "acme"}),
        json!({"count": 2, "display_name": "Acme"}),
        json!({"count": 2, "id": uuid::Uuid::new_v4()}),
        json!({"count": 2, "verified_domains": ["acme.example"]}),
    ] {
        let (status, response) = create(&emulator, body).await;

        assert_control_error(status, &response, 400);
    }
    assert_eq!(tenant_count(&emulator).await, before);
}

#[tokio::test]
async fn duplicate_domain_is_409() {
    let emulator = spawn_emulator().await;
    let (status, _) = create(&emulator, json!({"domain": "acme"})).await;
    assert_eq!(status, 201);

    for body in [
        json!({"domain": "acme"}),
        json!({"domain": "ACME.onmicrosoft.com"}),
        json!({"domain": "contoso"}),
        json!({"domain": "fresh", "verified_domains": ["contoso.com"]}),
    ] {
        let (status, response) = create(&emulator, body).await;

        assert_control_error(status, &response, 409);
    }
}

#[tokio::test]
async fn duplicate_id_is_409() {
    let emulator = spawn_emulator().await;

    let (status, body) = create(
        &emulator,
        json!({"id": emulator.contoso(), "domain": "other"}),
    )
    .await;

    assert_control_error(status, &body, 409);
    assert_eq!(
        emulator.tenant(&emulator.contoso()).await["display_name"],
        "Contoso Ltd"
    );
}

#[tokio::test]
async fn invalid_domains_are_400() {
    let emulator = spawn_emulator().await;

    for body in [
        json!({"domain": "acme.com"}),
        json!({"domain": "not a domain"}),
        json!({"domain": "-acme"}),
        json!({"domain": "acme", "verified_domains": ["not a domain"]}),
    ] {
        let (status, response) = create(&emulator, body.clone()).await;

        assert_control_error(status, &response, 400);
    }
}

#[tokio::test]
async fn unknown_field_or_malformed_json_is_400() {
    let emulator = spawn_emulator().await;
    let before = tenant_count(&emulator).await;

    let (unknown_status, unknown) = create(&emulator, json!({"name": "Acme"})).await;
    let (malformed_status, malformed) =
        control_raw(&emulator, Method::POST, "/tenants", "{\"display_name\": ").await;
    let (array_status, array) = control_raw(&emulator, Method::POST, "/tenants", "[]").await;

    assert_control_error(unknown_status, &unknown, 400);
    assert_control_error(malformed_status, &malformed, 400);
    assert_control_error(array_status, &array, 400);
    assert_eq!(tenant_count(&emulator).await, before);
}

#[tokio::test]
async fn bad_role_name_is_400_and_creates_nothing() {
    let emulator = spawn_emulator().await;
    let before = tenant_count(&emulator).await;

    for roles in [
        json!(["User.Read.All", "nope"]),
        json!(["<script>.x"]),
        json!(["a..b"]),
    ] {
        let (status, body) = create(&emulator, json!({"domain": "acme", "roles": roles})).await;

        assert_control_error(status, &body, 400);
    }
    assert_eq!(tenant_count(&emulator).await, before);
}

#[tokio::test]
async fn roles_on_create_consent_with_exactly_those_roles() {
    let emulator = spawn_emulator().await;

    let (status, body) = create(&emulator, json!({"domain": "acme", "roles": ["Mail.Read"]})).await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0]["consented"], true);
    assert_eq!(body[0]["roles"], json!(["Mail.Read"]));
    let token = emulator.access_token("acme.onmicrosoft.com").await;
    assert_eq!(claims(&token)["roles"], json!(["Mail.Read"]));
}

#[tokio::test]
async fn consent_grants_the_apps_permissions_and_revoke_removes_them() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();

    let granted = emulator.consent(&contoso).await;
    let (status, revoked) = emulator
        .control(Method::DELETE, &format!("/tenants/{contoso}/consent"), None)
        .await;

    assert_eq!(granted["consented"], true);
    assert_eq!(
        granted["roles"],
        json!(["Organization.Read.All", "User.Read.All"])
    );
    assert!(is_guid(&granted["service_principal_id"]));
    assert_eq!(status, 200);
    assert_eq!(revoked["consented"], false);
    assert_eq!(revoked["roles"], json!([]));
}

#[tokio::test]
async fn consent_on_unknown_tenant_is_404_and_on_a_non_guid_400() {
    let emulator = spawn_emulator().await;
    let unknown = uuid::Uuid::new_v4();

    let (post_unknown, a) = emulator
        .control(Method::POST, &format!("/tenants/{unknown}/consent"), None)
        .await;
    let (delete_unknown, b) = emulator
        .control(Method::DELETE, &format!("/tenants/{unknown}/consent"), None)
        .await;
    let (post_bad, c) = emulator
        .control(Method::POST, "/tenants/contoso/consent", None)
        .await;
    let (delete_bad, d) = emulator
        .control(Method::DELETE, "/tenants/contoso/consent", None)
        .await;

    assert_control_error(post_unknown, &a, 404);
    assert_control_error(delete_unknown, &b, 404);
    assert_control_error(post_bad, &c, 400);
    assert_control_error(delete_bad, &d, 400);
}

#[tokio::test]
async fn roles_on_a_tenant_that_never_consented_is_409() {
    let emulator = spawn_emulator().await;

    let (status, body) = emulator
        .control(
            Method::PUT,
            &format!("/tenants/{}/roles", emulator.contoso()),
            Some(json!(["User.Read.All"])),
        )
        .await;

    assert_control_error(status, &body, 409);
    assert_eq!(
        emulator.tenant(&emulator.contoso()).await["consented"],
        false
    );
}

#[tokio::test]
async fn roles_must_be_an_array_of_permission_names() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let path = format!("/tenants/{contoso}/roles");

    let (object_status, object) = emulator
        .control(Method::PUT, &path, Some(json!({"roles": ["Mail.Read"]})))
        .await;
    let (string_status, string) = emulator
        .control(Method::PUT, &path, Some(json!("Mail.Read")))
        .await;
    let (bad_name_status, bad_name) = emulator
        .control(Method::PUT, &path, Some(json!(["Mail.Read", "bad name"])))
        .await;
    let (unknown_status, unknown) = emulator
        .control(
            Method::PUT,
            &format!("/tenants/{}/roles", uuid::Uuid::new_v4()),
            Some(json!(["Mail.Read"])),
        )
        .await;

    assert_control_error(object_status, &object, 400);
    assert_control_error(string_status, &string, 400);
    assert_control_error(bad_name_status, &bad_name, 400);
    assert_control_error(unknown_status, &unknown, 404);
    assert_eq!(
        emulator.tenant(&contoso).await["roles"],
        json!(["Organization.Read.All", "User.Read.All"])
    );
}

#[tokio::test]
async fn deleted_tenant_is_gone_and_frees_its_domains() {
    let emulator = spawn_emulator().await;
    let path = format!("/tenants/{FABRIKAM}");

    let (status, _) = emulator.control(Method::DELETE, &path, None).await;

    assert_eq!(status, 204);
    let (get_status, _) = emulator.control(Method::GET, &path, None).await;
    assert_eq!(get_status, 404);
    let (again, body) = emulator.control(Method::DELETE, &path, None).await;
    assert_control_error(again, &body, 404);
    let (recreated, body) = create(
        &emulator,
        json!({"domain": "fabrikam", "verified_domains": ["fabrikam.com"]}),
    )
    .await;
    assert_eq!(recreated, 201, "{body}");
}

#[tokio::test]
async fn requests_are_counted_per_endpoint_and_per_tenant() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;

    let mut token = String::new();
    for _ in 0..3 {
        token = emulator.access_token(&contoso).await;
    }
    let response = emulator.graph("/v1.0/organization", Some(&token)).await;
    assert_eq!(response.status(), 200);
    let stats = emulator.requests().await;

    assert_eq!(stats["total"], 4, "{stats}");
    assert_eq!(stats["endpoints"]["token_v2"], 3, "{stats}");
    assert_eq!(stats["endpoints"]["graph_organization"], 1, "{stats}");
    assert_eq!(stats["tenants"][&contoso]["token_v2"], 3, "{stats}");
    assert_eq!(
        stats["tenants"][&contoso]["graph_organization"], 1,
        "{stats}"
    );
    assert_eq!(stats["tenants"].as_object().unwrap().len(), 1, "{stats}");
}

#[tokio::test]
async fn requests_by_domain_are_counted_under_the_tenant_guid() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    emulator.access_token("contoso.com").await;
    emulator.access_token("contoso.onmicrosoft.com").await;
    let stats = emulator.requests().await;

    assert_eq!(
        stats["tenants"][&emulator.contoso()]["token_v2"],
        2,
        "{stats}"
    );
}

#[tokio::test]
async fn requests_for_unknown_tenants_are_keyed_by_the_segment_sent() {
    let emulator = spawn_emulator().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    emulator.token_v2(&unknown, &[]).await;
    emulator.token_v2("nobody.onmicrosoft.com", &[]).await;
    emulator.token_v2("nobody.onmicrosoft.com", &[]).await;
    let stats = emulator.requests().await;

    assert_eq!(stats["tenants"][&unknown]["token_v2"], 1, "{stats}");
    assert_eq!(
        stats["tenants"]["nobody.onmicrosoft.com"]["token_v2"], 2,
        "{stats}"
    );
    assert_eq!(stats["endpoints"]["token_v2"], 3, "{stats}");
}

#[tokio::test]
async fn consent_page_and_decision_are_counted() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    emulator.consent_page(&emulator.contoso(), &query).await;
    emulator
        .consent_decision(
            &emulator.contoso(),
            &[("request", &query), ("decision", "accept")],
        )
        .await;
    let stats = emulator.requests().await;

    assert_eq!(stats["endpoints"]["admin_consent"], 1, "{stats}");
    assert_eq!(stats["endpoints"]["admin_consent_decision"], 1, "{stats}");
    assert_eq!(
        stats["tenants"][&emulator.contoso()]["admin_consent"],
        1,
        "{stats}"
    );
}

#[tokio::test]
async fn unauthenticated_graph_call_is_counted_once_without_a_tenant() {
    let emulator = spawn_emulator().await;

    emulator.graph("/v1.0/users", None).await;
    let stats = emulator.requests().await;

    assert_eq!(stats["total"], 1, "{stats}");
    assert_eq!(stats["endpoints"]["graph_users"], 1, "{stats}");
    assert_eq!(stats["tenants"], json!({}), "{stats}");
}

#[tokio::test]
async fn graph_call_with_a_deleted_tenants_token_is_counted_once() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    emulator
        .control(
            Method::DELETE,
            &format!("/tenants/{}", emulator.contoso()),
            None,
        )
        .await;
    emulator.control(Method::DELETE, "/requests", None).await;

    let response = emulator.graph("/v1.0/organization", Some(&token)).await;
    let stats = emulator.requests().await;

    assert_eq!(response.status(), 401);
    assert_eq!(stats["total"], 1, "{stats}");
    assert_eq!(stats["endpoints"]["graph_organization"], 1, "{stats}");
}

#[tokio::test]
async fn deleting_requests_resets_the_counts() {
    let emulator = spawn_emulator().await;
    emulator.token_v2(&emulator.contoso(), &[]).await;
    assert_eq!(emulator.requests().await["total"], 1);

    let (status, _) = emulator.control(Method::DELETE, "/requests", None).await;

    assert_eq!(status, 204);
    let stats = emulator.requests().await;
    assert_eq!(stats["total"], 0, "{stats}");
    assert_eq!(stats["endpoints"], json!({}), "{stats}");
    assert_eq!(stats["tenants"], json!({}), "{stats}");
}

#[tokio::test]
async fn clock_moves_forward_by_the_seconds_given() {
    let emulator = spawn_emulator().await;

    let (status, body) = emulator
        .control(Method::POST, "/clock", Some(json!({"advance_seconds": 60})))
        .await;
    let (_, again) = emulator
        .control(Method::POST, "/clock", Some(json!({"advance_seconds": 30})))
        .await;
    let (_, now) = emulator.control(Method::GET, "/clock", None).await;

    assert_eq!(status, 200);
    assert_eq!(body["offset_seconds"], 60);
    assert_eq!(again["offset_seconds"], 90);
    assert_eq!(now["offset_seconds"], 90);
    assert!(now["now"].as_str().is_some_and(|n| n.ends_with('Z')));
}

#[tokio::test]
async fn clock_refuses_negative_huge_and_malformed_steps() {
    let emulator = spawn_emulator().await;

    for body in [
        json!({"advance_seconds": -60}),
        json!({"advance_seconds": 315_360_001}),
        json!({"advance_seconds": 5_000_000_000_u64}),
        json!({"advance_seconds": 1.5}),
        json!({"advance_seconds": "60"}),
        json!({"seconds": 60}),
        json!({}),
    ] {
        let (status, response) = emulator.control(Method::POST, "/clock", Some(body)).await;

        assert_control_error(status, &response, 400);
    }
    let (_, now) = emulator.control(Method::GET, "/clock", None).await;
    assert_eq!(now["offset_seconds"], 0);
}

#[tokio::test]
async fn tokens_are_stamped_with_the_emulators_clock() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let before = claims(&emulator.access_token(&emulator.contoso()).await);
    emulator.advance_clock(86_400).await;

    let after = claims(&emulator.access_token(&emulator.contoso()).await);

    assert!(after["iat"].as_i64().unwrap() >= before["iat"].as_i64().unwrap() + 86_400);
}

#[tokio::test]
async fn v2_discovery_points_at_the_tenants_endpoints() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let base = &emulator.base;

    let (status, doc) = get_json(
        &emulator,
        &format!("/{contoso}/v2.0/.well-known/openid-configuration"),
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(
        doc["token_endpoint"],
        format!("{base}/{contoso}/oauth2/v2.0/token")
    );
    assert_eq!(
        doc["jwks_uri"],
        format!("{base}/{contoso}/discovery/v2.0/keys")
    );
    assert_eq!(doc["issuer"], format!("{base}/{contoso}/v2.0"));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{base}/{contoso}/oauth2/v2.0/authorize")
    );
}

#[tokio::test]
async fn discovery_by_domain_resolves_to_the_guid() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();

    let (status, doc) = get_json(
        &emulator,
        "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration",
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/{contoso}/oauth2/v2.0/token", emulator.base)
    );
    assert_eq!(doc["issuer"], format!("{}/{contoso}/v2.0", emulator.base));
}

#[tokio::test]
async fn discovery_for_organizations_has_the_tenantid_placeholder() {
    let emulator = spawn_emulator().await;

    for alias in ["organizations", "common"] {
        let (status, doc) = get_json(
            &emulator,
            &format!("/{alias}/v2.0/.well-known/openid-configuration"),
        )
        .await;

        assert_eq!(status, 200);
        assert_eq!(
            doc["issuer"],
            format!("{}/{{tenantid}}/v2.0", emulator.base)
        );
        assert_eq!(
            doc["token_endpoint"],
            format!("{}/{alias}/oauth2/v2.0/token", emulator.base)
        );
    }
}

#[tokio::test]
async fn discovery_for_an_unknown_tenant_is_invalid_tenant_90002() {
    let emulator = spawn_emulator().await;
    let unknown = uuid::Uuid::new_v4();

    let v2 = emulator
        .http
        .get(emulator.url(&format!("/{unknown}/v2.0/.well-known/openid-configuration")))
        .send()
        .await
        .unwrap();
    let v1 = emulator
        .http
        .get(emulator.url("/nobody.onmicrosoft.com/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    let keys = emulator
        .http
        .get(emulator.url(&format!("/{unknown}/discovery/v2.0/keys")))
        .send()
        .await
        .unwrap();

    assert_sts_error(v2, 400, "invalid_tenant", 90002).await;
    assert_sts_error(v1, 400, "invalid_tenant", 90002).await;
    assert_sts_error(keys, 400, "invalid_tenant", 90002).await;
}

#[tokio::test]
async fn discovery_for_a_malformed_tenant_is_900023() {
    let emulator = spawn_emulator().await;

    let response = emulator
        .http
        .get(emulator.url("/not_a_tenant!/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();

    assert_sts_error(response, 400, "invalid_tenant", 900023).await;
}

#[tokio::test]
async fn v1_discovery_points_at_the_v1_token_endpoint() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();

    let (status, doc) = get_json(
        &emulator,
        &format!("/{contoso}/.well-known/openid-configuration"),
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/{contoso}/oauth2/token", emulator.base)
    );
    assert!(
        doc["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/oauth2/token")
    );
    assert_eq!(doc["issuer"], format!("https://sts.windows.net/{contoso}/"));
}

#[tokio::test]
async fn discovered_token_endpoint_issues_tokens() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let (_, doc) = get_json(
        &emulator,
        "/contoso.com/v2.0/.well-known/openid-configuration",
    )
    .await;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &emulator.client_id)
        .append_pair("client_secret", &emulator.client_secret)
        .append_pair("scope", crate::helpers::GRAPH_DEFAULT)
        .finish();

    let response = emulator
        .http
        .post(doc["token_endpoint"].as_str().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
}

/// The decoded JSON header of a JWT.
fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// Checks `token`'s RS256 signature against an RSA key given as JWK `n` and `e`.
fn verifies(token: &str, key: &Value) -> bool {
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .is_ok()
}

#[tokio::test]
async fn jwks_publishes_an_rsa_key_with_its_certificate() {
    let emulator = spawn_emulator().await;

    let (status, jwks) = get_json(
        &emulator,
        &format!("/{}/discovery/v2.0/keys", emulator.contoso()),
    )
    .await;

    assert_eq!(status, 200);
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["e"], "AQAB");
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 256, "an RSA-2048 modulus");
    let kid = key["kid"].as_str().unwrap();
    let der = STANDARD
        .decode(key["x5c"][0].as_str().expect("an x5c certificate"))
        .unwrap();
    let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
    assert_eq!(kid, URL_SAFE_NO_PAD.encode(thumbprint), "kid is the x5t");
    assert_eq!(key["x5t"], kid);
}

#[tokio::test]
async fn token_kid_matches_the_jwks_and_its_signature_verifies() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let (_, jwks) = get_json(
        &emulator,
        &format!("/{}/discovery/v2.0/keys", emulator.contoso()),
    )
    .await;

    let header = jwt_header(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is in the JWKS");
    assert!(verifies(&token, key), "the RS256 signature verifies");
    let (head, rest) = token.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_payload = URL_SAFE_NO_PAD.encode(json!({"tid": FABRIKAM}).to_string());
    assert!(!verifies(
        &format!("{head}.{forged_payload}.{signature}"),
        key
    ));
}

#[tokio::test]
async fn v1_keys_and_v2_keys_are_the_same_key() {
    let emulator = spawn_emulator().await;

    let (_, v2) = get_json(&emulator, "/organizations/discovery/v2.0/keys").await;
    let (v1_status, v1) = get_json(&emulator, "/common/discovery/keys").await;

    assert_eq!(v1_status, 200);
    assert_eq!(v1["keys"][0]["kid"], v2["keys"][0]["kid"]);
    assert_eq!(v1["keys"][0]["n"], v2["keys"][0]["n"]);
}

#[tokio::test]
async fn each_emulator_has_its_own_key() {
    let first = spawn_emulator().await;
    let second = spawn_emulator().await;
    let token = second.contoso_token().await;

    let (_, jwks) = get_json(&first, "/common/discovery/v2.0/keys").await;

    assert_ne!(jwks["keys"][0]["kid"], jwt_header(&token)["kid"]);
    assert!(!verifies(&token, &jwks["keys"][0]));
}

#[tokio::test]
async fn unknown_control_path_is_404_json() {
    let emulator = spawn_emulator().await;

    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::POST, "/tenants/x/y/z"),
        (Method::GET, "/clock/rewind"),
    ] {
        let (status, body) = emulator.control(method, path, None).await;

        assert_control_error(status, &body, 404);
    }
}

#[tokio::test]
async fn control_index_and_app_describe_the_emulator() {
    let emulator = spawn_emulator().await;

    let (index_status, index) = emulator.control(Method::GET, "/", None).await;
    let (app_status, app) = emulator.control(Method::GET, "/app", None).await;

    assert_eq!(index_status, 200);
    assert!(
        index["endpoints"]
            .as_object()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(app_status, 200);
    assert_eq!(app["client_id"], emulator.client_id);
    assert_eq!(
        app["permissions"],
        json!(["User.Read.All", "Organization.Read.All"])
    );
    assert!(
        app["redirect_uris"]
            .as_array()
            .unwrap()
            .contains(&json!(crate::helpers::REDIRECT_URI))
    );
}

#[tokio::test]
async fn default_emulator_speaks_plain_http_without_a_ca() {
    let emulator = spawn_emulator().await;

    let (status, _) = emulator.control(Method::GET, "/app", None).await;

    assert_eq!(status, 200);
    assert!(
        emulator.base.starts_with("http://127.0.0.1:"),
        "{}",
        emulator.base
    );
    assert!(emulator.ca_pem.is_none());
}

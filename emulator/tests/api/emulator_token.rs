//! The client-credentials token endpoints, v2 and v1: every success and error shape.

use serde_json::Value;

use crate::helpers::{
    GRAPH_DEFAULT, assert_sts_error, claims, is_guid, spawn_emulator, spawn_emulator_with,
};

/// A v1 request body: `resource` instead of `scope`.
fn v1_body(client_id: &str, secret: &str, resource: Option<&str>) -> String {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret);
    if let Some(resource) = resource {
        body.append_pair("resource", resource);
    }
    body.finish()
}

fn v2_body(client_id: &str, secret: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .append_pair("scope", GRAPH_DEFAULT)
        .finish()
}

#[tokio::test]
async fn v2_token_by_guid_is_a_bearer_token_for_an_hour() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("no-store"))
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], serde_json::json!(3599));
    assert!(
        body["expires_in"].is_u64(),
        "a number, not a string: {body}"
    );
    assert_eq!(body["ext_expires_in"], serde_json::json!(3599));
    assert!(body.get("refresh_in").is_none(), "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
}

#[tokio::test]
async fn v2_token_claims_name_the_tenant_the_app_and_both_default_roles() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;

    let token = emulator.access_token(&contoso).await;

    let c = claims(&token);
    assert_eq!(c["tid"], contoso);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{contoso}/"));
    assert_eq!(c["appid"], emulator.client_id);
    assert_eq!(c["idtyp"], "app");
    let mut roles: Vec<&str> = c["roles"]
        .as_array()
        .expect("a roles array")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["Organization.Read.All", "User.Read.All"]);
    let (iat, nbf, exp) = (
        c["iat"].as_i64().unwrap(),
        c["nbf"].as_i64().unwrap(),
        c["exp"].as_i64().unwrap(),
    );
    assert_eq!(nbf, iat);
    // iat is backdated five minutes for clock skew; exp is an hour (3599 s) from now.
    assert_eq!(exp - iat, 3599 + 300);
}

#[tokio::test]
async fn v2_token_by_domain_is_issued_for_the_tenant_guid() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let by_initial = emulator.access_token("contoso.onmicrosoft.com").await;
    let by_custom = emulator.access_token("contoso.com").await;
    let by_upper_case = emulator.access_token("Contoso.OnMicrosoft.com").await;

    for token in [by_initial, by_custom, by_upper_case] {
        let c = claims(&token);
        assert_eq!(c["tid"], emulator.contoso());
        assert_eq!(
            c["iss"],
            format!("https://sts.windows.net/{}/", emulator.contoso())
        );
    }
}

#[tokio::test]
async fn v2_token_accepts_openid_scopes_beside_the_default_scope() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(
            &emulator.contoso(),
            &[(
                "scope",
                "openid https://graph.microsoft.com/.default profile",
            )],
        )
        .await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn long_lived_tokens_carry_refresh_in_of_half_the_lifetime() {
    let emulator = spawn_emulator_with(|cfg| cfg.token_lifetime_secs = 7200).await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], serde_json::json!(7200));
    assert_eq!(body["refresh_in"], serde_json::json!(3600));
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        7200 + 300
    );
}

#[tokio::test]
async fn tokens_just_under_two_hours_have_no_refresh_in() {
    let emulator = spawn_emulator_with(|cfg| cfg.token_lifetime_secs = 7199).await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator.token_v2(&emulator.contoso(), &[]).await;

    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], serde_json::json!(7199));
    assert!(body.get("refresh_in").is_none(), "{body}");
}

#[tokio::test]
async fn v1_token_answers_numbers_as_strings_and_echoes_the_resource() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let body = v1_body(
        &emulator.client_id,
        &emulator.client_secret,
        Some("https://graph.microsoft.com"),
    );

    let response = emulator.token_raw(&emulator.contoso(), "v1", body).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["ext_expires_in"], "3599");
    assert_eq!(body["resource"], "https://graph.microsoft.com");
    let expires_on: i64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let not_before: i64 = body["not_before"].as_str().unwrap().parse().unwrap();
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(expires_on, c["exp"].as_i64().unwrap());
    assert_eq!(not_before, c["nbf"].as_i64().unwrap());
    assert_eq!(c["tid"], emulator.contoso());
    assert_eq!(c["aud"], "https://graph.microsoft.com");
}

#[tokio::test]
async fn v1_token_for_graphs_app_id_has_that_audience() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let graph_app_id = "00000003-0000-0000-c000-000000000000";
    let body = v1_body(
        &emulator.client_id,
        &emulator.client_secret,
        Some(graph_app_id),
    );

    let response = emulator.token_raw(&emulator.contoso(), "v1", body).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["resource"], graph_app_id);
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        graph_app_id
    );
}

#[tokio::test]
async fn token_has_no_roles_claim_after_the_roles_are_removed() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator.set_roles(&emulator.contoso(), &[]).await;

    let token = emulator.access_token(&emulator.contoso()).await;

    let c = claims(&token);
    assert!(c.get("roles").is_none(), "roles must be absent: {c}");
    assert_eq!(c["tid"], emulator.contoso());
}

#[tokio::test]
async fn token_carries_exactly_the_roles_set_through_the_control_api() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_roles(&emulator.contoso(), &["Mail.Read"])
        .await;

    let token = emulator.access_token(&emulator.contoso()).await;

    assert_eq!(claims(&token)["roles"], serde_json::json!(["Mail.Read"]));
}

#[tokio::test]
async fn unknown_tenant_is_aadsts90002() {
    let emulator = spawn_emulator().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let by_guid = emulator.token_v2(&unknown, &[]).await;
    let by_domain = emulator.token_v2("nobody.onmicrosoft.com", &[]).await;

    assert_sts_error(by_guid, 400, "invalid_request", 90002).await;
    assert_sts_error(by_domain, 400, "invalid_request", 90002).await;
}

#[tokio::test]
async fn malformed_tenant_is_aadsts900023() {
    let emulator = spawn_emulator().await;

    for segment in ["not_a_tenant!", "nodot", "-bad.example.com"] {
        let response = emulator.token_v2(segment, &[]).await;

        assert_sts_error(response, 400, "invalid_request", 900023).await;
    }
}

#[tokio::test]
async fn common_and_organizations_are_aadsts50059() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    for alias in ["common", "organizations", "Organizations"] {
        let response = emulator.token_v2(alias, &[]).await;

        assert_sts_error(response, 400, "invalid_request", 50059).await;
    }
}

#[tokio::test]
async fn never_consented_tenant_is_aadsts700016() {
    let emulator = spawn_emulator().await;

    let response = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_sts_error(response, 400, "unauthorized_client", 700016).await;
}

#[tokio::test]
async fn revoked_consent_is_aadsts700016() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    emulator.access_token(&contoso).await;
    let (status, _) = emulator
        .control(
            reqwest::Method::DELETE,
            &format!("/tenants/{contoso}/consent"),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let response = emulator.token_v2(&contoso, &[]).await;

    assert_sts_error(response, 400, "unauthorized_client", 700016).await;
}

#[tokio::test]
async fn unknown_client_id_is_aadsts700016() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let stranger = uuid::Uuid::new_v4().to_string();

    let response = emulator
        .token_v2(&emulator.contoso(), &[("client_id", &stranger)])
        .await;

    assert_sts_error(response, 400, "unauthorized_client", 700016).await;
}

#[tokio::test]
async fn malformed_client_id_is_aadsts700038() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(&emulator.contoso(), &[("client_id", "my-app")])
        .await;

    assert_sts_error(response, 400, "invalid_request", 700038).await;
}

#[tokio::test]
async fn wrong_secret_is_401_aadsts7000215() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let almost = format!("{}x", emulator.client_secret);

    for secret in ["wrong", almost.as_str()] {
        let response = emulator
            .token_v2(&emulator.contoso(), &[("client_secret", secret)])
            .await;

        assert_sts_error(response, 401, "invalid_client", 7000215).await;
    }
}

#[tokio::test]
async fn missing_secret_is_401_aadsts7000218() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &emulator.client_id)
        .append_pair("client_secret", "")
        .append_pair("scope", GRAPH_DEFAULT)
        .finish();

    let absent = emulator
        .token_v2(&emulator.contoso(), &[("client_secret", "")])
        .await;
    let empty = emulator.token_raw(&emulator.contoso(), "v2", body).await;

    assert_sts_error(absent, 401, "invalid_client", 7000218).await;
    assert_sts_error(empty, 401, "invalid_client", 7000218).await;
}

#[tokio::test]
async fn secret_and_assertion_together_are_refused() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(
            &emulator.contoso(),
            &[
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "eyJhbGciOiJQUzI1NiJ9.e30.c2ln"),
            ],
        )
        .await;

    assert_sts_error(response, 400, "invalid_request", 9002313).await;
}

#[tokio::test]
async fn client_assertion_is_401_aadsts700027() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(
            &emulator.contoso(),
            &[
                ("client_secret", ""),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", "eyJhbGciOiJQUzI1NiJ9.e30.c2ln"),
            ],
        )
        .await;

    assert_sts_error(response, 401, "invalid_client", 700027).await;
}

#[tokio::test]
async fn client_assertion_without_its_type_is_aadsts900144() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(
            &emulator.contoso(),
            &[
                ("client_secret", ""),
                ("client_assertion", "eyJhbGciOiJQUzI1NiJ9.e30.c2ln"),
            ],
        )
        .await;

    assert_sts_error(response, 400, "invalid_request", 900144).await;
}

#[tokio::test]
async fn delegated_or_named_scopes_are_aadsts70011() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    for scope in [
        "User.Read",
        "https://graph.microsoft.com/User.Read.All",
        "openid",
        "   ",
    ] {
        let response = emulator
            .token_v2(&emulator.contoso(), &[("scope", scope)])
            .await;

        assert_sts_error(response, 400, "invalid_scope", 70011).await;
    }
}

#[tokio::test]
async fn default_scope_of_an_unknown_resource_is_aadsts500011() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(
            &emulator.contoso(),
            &[("scope", "https://example.com/.default")],
        )
        .await;

    assert_sts_error(response, 400, "invalid_resource", 500011).await;
}

#[tokio::test]
async fn two_resources_are_aadsts700022() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator
        .token_v2(
            &emulator.contoso(),
            &[(
                "scope",
                "https://graph.microsoft.com/.default https://management.azure.com/.default",
            )],
        )
        .await;

    assert_sts_error(response, 400, "invalid_scope", 700022).await;
}

#[tokio::test]
async fn missing_required_parameter_is_aadsts900144() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    for name in ["grant_type", "client_id", "scope"] {
        let response = emulator.token_v2(&emulator.contoso(), &[(name, "")]).await;

        let body = assert_sts_error(response, 400, "invalid_request", 900144).await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(&format!("'{name}'")),
            "{body}"
        );
    }
}

#[tokio::test]
async fn v1_without_resource_is_aadsts900144() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let body = v1_body(&emulator.client_id, &emulator.client_secret, None);

    let response = emulator.token_raw(&emulator.contoso(), "v1", body).await;

    assert_sts_error(response, 400, "invalid_request", 900144).await;
}

#[tokio::test]
async fn v1_unknown_resource_is_aadsts500011() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let body = v1_body(
        &emulator.client_id,
        &emulator.client_secret,
        Some("https://management.azure.com"),
    );

    let response = emulator.token_raw(&emulator.contoso(), "v1", body).await;

    assert_sts_error(response, 400, "invalid_resource", 500011).await;
}

#[tokio::test]
async fn v1_errors_have_the_same_shape() {
    let emulator = spawn_emulator().await;
    let body = v1_body(
        &emulator.client_id,
        &emulator.client_secret,
        Some("https://graph.microsoft.com"),
    );

    let response = emulator.token_raw(&emulator.contoso(), "v1", body).await;

    assert_sts_error(response, 400, "unauthorized_client", 700016).await;
}

#[tokio::test]
async fn unsupported_grant_type_is_aadsts70003() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    // authorization_code and refresh_token are sign-in grants now (emulator_oidc).
    for grant in ["password", "device_code", "CLIENT_CREDENTIALS"] {
        let response = emulator
            .token_v2(&emulator.contoso(), &[("grant_type", grant)])
            .await;

        assert_sts_error(response, 400, "unsupported_grant_type", 70003).await;
    }
}

#[tokio::test]
async fn repeated_parameter_is_aadsts9000411() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let body = format!(
        "{}&client_id={}",
        v2_body(&emulator.client_id, &emulator.client_secret),
        emulator.client_id
    );

    let response = emulator.token_raw(&emulator.contoso(), "v2", body).await;

    assert_sts_error(response, 400, "invalid_request", 9000411).await;
}

#[tokio::test]
async fn json_body_is_read_as_missing_parameters() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let json = serde_json::json!({
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "scope": GRAPH_DEFAULT,
    });

    let response = emulator
        .http
        .post(emulator.url(&format!("/{}/oauth2/v2.0/token", emulator.contoso())))
        .json(&json)
        .send()
        .await
        .unwrap();

    assert_sts_error(response, 400, "invalid_request", 900144).await;
}

#[tokio::test]
async fn body_of_exactly_64_kib_is_accepted() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let mut body = v2_body(&emulator.client_id, &emulator.client_secret);
    body.push_str("&padding=");
    body.push_str(&"a".repeat(64 * 1024 - body.len()));
    assert_eq!(body.len(), 64 * 1024);

    let response = emulator.token_raw(&emulator.contoso(), "v2", body).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn body_over_64_kib_is_aadsts50091() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let mut body = v2_body(&emulator.client_id, &emulator.client_secret);
    body.push_str("&padding=");
    body.push_str(&"a".repeat(64 * 1024 + 1 - body.len()));

    let response = emulator.token_raw(&emulator.contoso(), "v2", body).await;

    assert_sts_error(response, 400, "invalid_request", 50091).await;
}

#[tokio::test]
async fn much_larger_body_is_still_a_clean_aadsts50091() {
    let emulator = spawn_emulator().await;
    let body = format!("padding={}", "a".repeat(4 * 1024 * 1024));

    let response = emulator.token_raw(&emulator.contoso(), "v2", body).await;

    assert_sts_error(response, 400, "invalid_request", 50091).await;
}

#[tokio::test]
async fn invalid_utf8_in_a_value_is_aadsts9002313() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret=abc%FF&scope={}",
        emulator.client_id,
        crate::helpers::encode_bytes(GRAPH_DEFAULT.as_bytes())
    );

    let response = emulator.token_raw(&emulator.contoso(), "v2", body).await;

    assert_sts_error(response, 400, "invalid_request", 9002313).await;
}

#[tokio::test]
async fn get_on_a_token_endpoint_is_aadsts900561() {
    let emulator = spawn_emulator().await;

    for path in ["oauth2/v2.0/token", "oauth2/token"] {
        let response = emulator
            .http
            .get(emulator.url(&format!("/{}/{path}", emulator.contoso())))
            .send()
            .await
            .unwrap();

        assert_sts_error(response, 400, "invalid_request", 900561).await;
    }
}

#[tokio::test]
async fn client_request_id_is_echoed_as_correlation_id() {
    let emulator = spawn_emulator().await;
    let correlation = uuid::Uuid::new_v4().to_string();

    let response = emulator
        .http
        .post(emulator.url(&format!("/{}/oauth2/v2.0/token", emulator.contoso())))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("client-request-id", &correlation)
        .body(v2_body(&emulator.client_id, &emulator.client_secret))
        .send()
        .await
        .unwrap();

    let body = assert_sts_error(response, 400, "unauthorized_client", 700016).await;
    assert_eq!(body["correlation_id"], correlation);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&format!("Correlation ID: {correlation}"))
    );
    assert_ne!(body["trace_id"], correlation);
}

#[tokio::test]
async fn every_error_gets_its_own_trace_id() {
    let emulator = spawn_emulator().await;

    let first = emulator.token_v2(&emulator.contoso(), &[]).await;
    let second = emulator.token_v2(&emulator.contoso(), &[]).await;

    let first = assert_sts_error(first, 400, "unauthorized_client", 700016).await;
    let second = assert_sts_error(second, 400, "unauthorized_client", 700016).await;
    assert!(is_guid(&first["trace_id"]));
    assert_ne!(first["trace_id"], second["trace_id"]);
    assert_ne!(first["correlation_id"], second["correlation_id"]);
}

#[tokio::test]
async fn garbage_never_gets_a_5xx() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let contoso = emulator.contoso();
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"&&&".to_vec(),
        b"=".to_vec(),
        b"==&=&==".to_vec(),
        b"%".to_vec(),
        b"%zz=%z".to_vec(),
        b"grant_type=%".to_vec(),
        b"%FF=1".to_vec(),
        b"grant_type=client_credentials&client_id=%00".to_vec(),
        b"grant_type=client_credentials&client_id=%FF%FE".to_vec(),
        vec![0xff, 0xfe, 0x00, b'=', 0x80],
        format!("{}=1", "n".repeat(60_000)).into_bytes(),
        format!("scope={}", "+".repeat(60_000)).into_bytes(),
        b"grant_type=client_credentials&client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&client_secret=consentry-emulator-secret&scope=%2F.default".to_vec(),
        b"grant_type=client_credentials&client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&client_secret=consentry-emulator-secret&scope=.default".to_vec(),
        b"grant_type=client_credentials&client_id={6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90}&client_secret=x&scope=x".to_vec(),
    ];
    let paths = [
        format!("/{contoso}/oauth2/v2.0/token"),
        format!("/{contoso}/oauth2/token"),
        "/%FF/oauth2/v2.0/token".to_owned(),
        "/%00/oauth2/token".to_owned(),
        "/..%2F..%2F/oauth2/v2.0/token".to_owned(),
        format!("/{}/oauth2/v2.0/token", "a.".repeat(200)),
        "/consumers/oauth2/v2.0/token".to_owned(),
        format!("/{contoso}/adminconsent"),
        "/organizations/adminconsent?%".to_owned(),
        "/%FF/adminconsent?client_id=%FF".to_owned(),
        "/common/v2.0/.well-known/openid-configuration".to_owned(),
        "/%FF/.well-known/openid-configuration".to_owned(),
        "/x/discovery/v2.0/keys".to_owned(),
        "/v1.0/users?$top=%FF".to_owned(),
        "/v1.0/users?$select=%FF,,".to_owned(),
        "/v1.0/users/$count".to_owned(),
        "/v1.0/".to_owned(),
        "/v1.0".to_owned(),
        "/_emulator/tenants/%FF".to_owned(),
        "/_emulator/tenants/%FF/roles".to_owned(),
        "/_emulator/clock".to_owned(),
        "/".to_owned(),
        "/a/b/c/d/e/f".to_owned(),
    ];
    let content_types = [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
    ];

    let mut statuses = Vec::new();
    for path in &paths {
        for method in [
            reqwest::Method::GET,
            reqwest::Method::POST,
            reqwest::Method::PUT,
        ] {
            for body in &bodies {
                for content_type in content_types {
                    let response = emulator
                        .http
                        .request(method.clone(), emulator.url(path))
                        .header("content-type", content_type)
                        .header("authorization", "Bearer x.y.z")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                    statuses.push((method.clone(), path.clone(), response.status().as_u16()));
                }
            }
        }
    }

    let failures: Vec<_> = statuses.iter().filter(|(_, _, s)| *s >= 500).collect();
    assert!(failures.is_empty(), "5xx answers: {failures:?}");
}

#[tokio::test]
async fn options_preflight_on_token_endpoints_is_allowed() {
    let emulator = crate::helpers::spawn_emulator().await;

    let v2 = emulator
        .http
        .request(
            reqwest::Method::OPTIONS,
            emulator.url("/organizations/oauth2/v2.0/token"),
        )
        .send()
        .await
        .expect("answer");
    let v1 = emulator
        .http
        .request(
            reqwest::Method::OPTIONS,
            emulator.url("/organizations/oauth2/token"),
        )
        .send()
        .await
        .expect("answer");

    assert_eq!(v2.status(), 200);
    assert_eq!(v1.status(), 200);
    assert_eq!(v2.headers()["allow"], "POST, OPTIONS");
}

#[tokio::test]
async fn error_uri_points_at_a_page_the_emulator_serves() {
    let emulator = crate::helpers::spawn_emulator().await;
    let error: serde_json::Value = emulator
        .token_v2("organizations", &[])
        .await
        .json()
        .await
        .expect("JSON");
    let uri = error["error_uri"].as_str().expect("error_uri").to_owned();

    let page = emulator.http.get(&uri).send().await.expect("answer");

    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("text").contains("AADSTS50059"));
}

/// The Graph resource of each cloud (ENTRA.md, Hosts).
const CLOUD_GRAPHS: [&str; 4] = [
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
];

#[tokio::test]
async fn v2_tokens_for_each_clouds_graph_have_that_audience_and_work_on_graph() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let mut audiences = Vec::new();
    for graph in CLOUD_GRAPHS {
        let scope = format!("{graph}/.default");
        let response = emulator
            .token_v2(&emulator.contoso(), &[("scope", &scope)])
            .await;
        assert_eq!(response.status(), 200, "{graph}");
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let organization = emulator.graph("/v1.0/organization", Some(token)).await;
        audiences.push((claims(token)["aud"].clone(), organization.status().as_u16()));
    }

    let expected: Vec<(Value, u16)> = CLOUD_GRAPHS
        .iter()
        .map(|g| (Value::from(*g), 200))
        .collect();
    assert_eq!(audiences, expected);
}

#[tokio::test]
async fn v1_tokens_for_each_clouds_graph_echo_the_resource_and_work_on_graph() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let mut answers = Vec::new();
    for graph in CLOUD_GRAPHS {
        let body = v1_body(&emulator.client_id, &emulator.client_secret, Some(graph));
        let response = emulator.token_raw(&emulator.contoso(), "v1", body).await;
        assert_eq!(response.status(), 200, "{graph}");
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let users = emulator.graph("/v1.0/users?$top=1", Some(token)).await;
        answers.push((
            body["resource"].clone(),
            claims(token)["aud"].clone(),
            users.status().as_u16(),
        ));
    }

    let expected: Vec<(Value, Value, u16)> = CLOUD_GRAPHS
        .iter()
        .map(|g| (Value::from(*g), Value::from(*g), 200))
        .collect();
    assert_eq!(answers, expected);
}

#[tokio::test]
async fn other_clouds_resources_are_still_unknown_resources() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    let management = emulator
        .token_v2(
            &emulator.contoso(),
            &[("scope", "https://management.usgovcloudapi.net/.default")],
        )
        .await;
    let old_graph = v1_body(
        &emulator.client_id,
        &emulator.client_secret,
        Some("https://graph.chinacloudapi.cn"),
    );
    let old_graph = emulator
        .token_raw(&emulator.contoso(), "v1", old_graph)
        .await;

    assert_sts_error(management, 400, "invalid_resource", 500011).await;
    assert_sts_error(old_graph, 400, "invalid_resource", 500011).await;
}

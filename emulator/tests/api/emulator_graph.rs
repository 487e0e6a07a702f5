//! Microsoft Graph: `/v1.0/organization`, `/v1.0/users` (paging, `$select`, `$count`) and
//! `/v1.0/users/$count`, with Graph's authentication and authorisation errors.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::helpers::{
    FABRIKAM, TestEmulator, WOODGROVE, assert_graph_error, spawn_emulator, spawn_emulator_with,
};

async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// A token for `tenant`, consenting it first.
async fn token_for(emulator: &TestEmulator, tenant: &str) -> String {
    emulator.consent(tenant).await;
    emulator.access_token(tenant).await
}

fn ids(page: &Value) -> Vec<String> {
    page["value"]
        .as_array()
        .expect("a value array")
        .iter()
        .map(|u| u["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Follows `@odata.nextLink` verbatim from `first`; returns every page.
async fn all_pages(emulator: &TestEmulator, first: &str, token: &str) -> Vec<Value> {
    let mut pages = vec![json_ok(emulator.graph(first, Some(token)).await).await];
    while let Some(next) = pages.last().unwrap()["@odata.nextLink"].as_str() {
        let response = emulator
            .http
            .get(next)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        pages.push(json_ok(response).await);
        assert!(pages.len() < 100, "paging does not end");
    }
    pages
}

async fn get_with_header(
    emulator: &TestEmulator,
    path: &str,
    token: &str,
    header: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = emulator.http.get(emulator.url(path)).bearer_auth(token);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn organization_describes_the_tokens_tenant() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let response = emulator.graph("/v1.0/organization", Some(&token)).await;

    let body = json_ok(response).await;
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#organization", emulator.base)
    );
    let orgs = body["value"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    let org = &orgs[0];
    assert_eq!(org["id"], emulator.contoso());
    assert_eq!(org["displayName"], "Contoso Ltd");
    let domains = org["verifiedDomains"].as_array().unwrap();
    assert_eq!(domains.len(), 2, "{org}");
    let initial = domains
        .iter()
        .find(|d| d["name"] == "contoso.onmicrosoft.com")
        .expect("the initial domain");
    assert_eq!(initial["isInitial"], true);
    assert_eq!(initial["isDefault"], false);
    let custom = domains
        .iter()
        .find(|d| d["name"] == "contoso.com")
        .expect("the custom domain");
    assert_eq!(custom["isInitial"], false);
    assert_eq!(custom["isDefault"], true);
}

#[tokio::test]
async fn organization_without_custom_domain_has_the_initial_one_as_default() {
    let emulator = spawn_emulator().await;
    let tailspin = "5d8f1a6c-b3e7-4290-a4c1-8e2f7b6d9a03";
    let token = token_for(&emulator, tailspin).await;

    let response = emulator.graph("/v1.0/organization", Some(&token)).await;

    let body = json_ok(response).await;
    let org = &body["value"][0];
    assert_eq!(org["id"], tailspin);
    assert_eq!(
        org["verifiedDomains"],
        serde_json::json!([{
            "capabilities": "Email, OfficeCommunicationsOnline",
            "isDefault": true,
            "isInitial": true,
            "name": "tailspintoys.onmicrosoft.com",
            "type": "Managed",
        }])
    );
}

#[tokio::test]
async fn each_tenants_token_sees_its_own_organization() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso_token().await;
    let fabrikam = token_for(&emulator, FABRIKAM).await;

    let seen_by_contoso = json_ok(emulator.graph("/v1.0/organization", Some(&contoso)).await).await;
    let seen_by_fabrikam =
        json_ok(emulator.graph("/v1.0/organization", Some(&fabrikam)).await).await;

    assert_eq!(seen_by_contoso["value"][0]["id"], emulator.contoso());
    assert_eq!(seen_by_fabrikam["value"][0]["id"], FABRIKAM);
    assert_eq!(
        seen_by_fabrikam["value"][0]["displayName"],
        "Fabrikam, Inc."
    );
}

#[tokio::test]
async fn organization_select_keeps_only_the_selected_property() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let response = emulator
        .graph("/v1.0/organization?$select=displayName", Some(&token))
        .await;

    let body = json_ok(response).await;
    assert_eq!(
        body["value"][0],
        serde_json::json!({"displayName": "Contoso Ltd"})
    );
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#organization(displayName)", emulator.base)
    );
}

#[tokio::test]
async fn select_without_its_dollar_works_too() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let response = emulator
        .graph("/v1.0/organization?select=id", Some(&token))
        .await;

    let body = json_ok(response).await;
    assert_eq!(
        body["value"][0],
        serde_json::json!({"id": emulator.contoso()})
    );
}

#[tokio::test]
async fn users_default_page_is_100_and_the_next_link_gives_the_rest() {
    let emulator = spawn_emulator().await;
    let token = token_for(&emulator, WOODGROVE).await;

    let first = json_ok(emulator.graph("/v1.0/users", Some(&token)).await).await;
    let next = first["@odata.nextLink"]
        .as_str()
        .expect("a nextLink on a full page")
        .to_owned();
    let second = json_ok(
        emulator
            .http
            .get(&next)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(ids(&first).len(), 100);
    assert!(
        next.starts_with(&format!("{}/v1.0/users?", emulator.base)),
        "{next}"
    );
    assert_eq!(ids(&second).len(), 30);
    assert!(second.get("@odata.nextLink").is_none(), "{second}");
    let distinct: HashSet<String> = ids(&first).into_iter().chain(ids(&second)).collect();
    assert_eq!(distinct.len(), 130);
}

#[tokio::test]
async fn users_have_graphs_default_properties() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let body = json_ok(emulator.graph("/v1.0/users?$top=1", Some(&token)).await).await;

    let user = body["value"][0].as_object().unwrap();
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "businessPhones",
            "displayName",
            "givenName",
            "id",
            "jobTitle",
            "mail",
            "mobilePhone",
            "officeLocation",
            "preferredLanguage",
            "surname",
            "userPrincipalName",
        ]
    );
    assert!(
        user["userPrincipalName"]
            .as_str()
            .unwrap()
            .ends_with("@contoso.onmicrosoft.com")
    );
    assert!(user["mail"].as_str().unwrap().ends_with("@contoso.com"));
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#users", emulator.base)
    );
}

#[tokio::test]
async fn paging_with_top_collects_every_user_exactly_once() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let pages = all_pages(&emulator, "/v1.0/users?$top=5", &token).await;

    assert!(pages.len() >= 3, "{} pages", pages.len());
    assert!(pages.iter().all(|p| ids(p).len() <= 5));
    let all: Vec<String> = pages.iter().flat_map(ids).collect();
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 36);
    assert_eq!(distinct.len(), 36);
}

#[tokio::test]
async fn paging_is_deterministic() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let once: Vec<String> = all_pages(&emulator, "/v1.0/users?$top=7", &token)
        .await
        .iter()
        .flat_map(ids)
        .collect();
    let everything = json_ok(emulator.graph("/v1.0/users", Some(&token)).await).await;

    assert_eq!(once, ids(&everything));
}

#[tokio::test]
async fn top_999_returns_all_130_users_in_one_page() {
    let emulator = spawn_emulator().await;
    let token = token_for(&emulator, WOODGROVE).await;

    let body = json_ok(emulator.graph("/v1.0/users?$top=999", Some(&token)).await).await;

    assert_eq!(ids(&body).len(), 130);
    assert!(body.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn select_returns_only_the_selected_user_properties_on_every_page() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let pages = all_pages(
        &emulator,
        "/v1.0/users?$select=displayName,mail&$top=20",
        &token,
    )
    .await;

    assert_eq!(pages.len(), 2);
    for page in &pages {
        assert_eq!(
            page["@odata.context"],
            format!("{}/v1.0/$metadata#users(displayName,mail)", emulator.base)
        );
        for user in page["value"].as_array().unwrap() {
            let mut keys: Vec<&str> = user
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["displayName", "mail"]);
        }
    }
    let total: usize = pages
        .iter()
        .map(|p| p["value"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 36);
}

#[tokio::test]
async fn bad_page_size_is_request_unsupported_query() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    for top in ["0", "1000", "abc", "-1", ""] {
        let response = emulator
            .graph(&format!("/v1.0/users?$top={top}"), Some(&token))
            .await;

        assert_graph_error(response, 400, "Request_UnsupportedQuery").await;
    }
}

#[tokio::test]
async fn unknown_select_property_is_400() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let users = emulator
        .graph("/v1.0/users?$select=displayName,shoeSize", Some(&token))
        .await;
    let organization = emulator
        .graph("/v1.0/organization?$select=mail", Some(&token))
        .await;

    assert_graph_error(users, 400, "Request_BadRequest").await;
    assert_graph_error(organization, 400, "Request_BadRequest").await;
}

#[tokio::test]
async fn unsupported_query_options_are_400() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    for query in [
        "$filter=startswith(displayName,'A')",
        "filter=accountEnabled%20eq%20true",
        "$orderby=displayName",
        "$search=%22displayName:a%22",
        "$expand=manager",
        "$skip=5",
    ] {
        let response = emulator
            .graph(&format!("/v1.0/users?{query}"), Some(&token))
            .await;

        assert_graph_error(response, 400, "Request_BadRequest").await;
    }
}

#[tokio::test]
async fn repeated_query_option_is_400() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    for query in ["$top=5&$top=6", "$top=5&top=5", "$select=id&select=mail"] {
        let response = emulator
            .graph(&format!("/v1.0/users?{query}"), Some(&token))
            .await;

        assert_graph_error(response, 400, "Request_BadRequest").await;
    }
}

#[tokio::test]
async fn tampered_skiptoken_is_400() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    let first = json_ok(emulator.graph("/v1.0/users?$top=5", Some(&token)).await).await;
    let next = first["@odata.nextLink"].as_str().unwrap();
    let genuine = next.split("$skiptoken=").nth(1).unwrap();
    let contoso_simple = uuid::Uuid::parse_str(&emulator.contoso())
        .unwrap()
        .simple()
        .to_string();
    let beyond_the_end = URL_SAFE_NO_PAD.encode(format!("users:{contoso_simple}:37"));
    let other_entity = URL_SAFE_NO_PAD.encode(format!("groups:{contoso_simple}:5"));
    let negative = URL_SAFE_NO_PAD.encode(format!("users:{contoso_simple}:-5"));

    for skiptoken in [
        format!("{genuine}x"),
        format!("x{genuine}"),
        "not-a-token!".to_owned(),
        beyond_the_end,
        other_entity,
        negative,
    ] {
        let response = emulator
            .graph(&format!("/v1.0/users?$skiptoken={skiptoken}"), Some(&token))
            .await;

        assert_graph_error(response, 400, "Request_BadRequest").await;
    }
}

#[tokio::test]
async fn skiptoken_from_another_tenant_is_400() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso_token().await;
    let woodgrove = token_for(&emulator, WOODGROVE).await;
    let woodgrove_page =
        json_ok(emulator.graph("/v1.0/users?$top=5", Some(&woodgrove)).await).await;
    let woodgrove_next = woodgrove_page["@odata.nextLink"].as_str().unwrap();

    let response = emulator
        .http
        .get(woodgrove_next)
        .bearer_auth(&contoso)
        .send()
        .await
        .unwrap();

    assert_graph_error(response, 400, "Request_BadRequest").await;
}

#[tokio::test]
async fn count_with_eventual_consistency_gives_odata_count() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let response = get_with_header(
        &emulator,
        "/v1.0/users?$count=true&$top=5",
        &token,
        Some(("ConsistencyLevel", "eventual")),
    )
    .await;

    let body = json_ok(response).await;
    assert_eq!(body["@odata.count"], 36);
    assert_eq!(ids(&body).len(), 5);
}

#[tokio::test]
async fn count_without_consistency_level_is_400() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let response = emulator
        .graph("/v1.0/users?$count=true", Some(&token))
        .await;

    assert_graph_error(response, 400, "Request_BadRequest").await;
}

#[tokio::test]
async fn users_count_is_a_plain_number_with_eventual_consistency() {
    let emulator = spawn_emulator().await;
    let token = token_for(&emulator, WOODGROVE).await;

    let response = get_with_header(
        &emulator,
        "/v1.0/users/$count",
        &token,
        Some(("ConsistencyLevel", "eventual")),
    )
    .await;

    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
    );
    assert_eq!(response.text().await.unwrap(), "130");
}

#[tokio::test]
async fn users_count_without_consistency_level_is_400() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let response = get_with_header(&emulator, "/v1.0/users/$count", &token, None).await;

    assert_graph_error(response, 400, "Request_BadRequest").await;
}

/// Asserts Graph's 401 with its `WWW-Authenticate` challenge.
async fn assert_unauthenticated(response: reqwest::Response) -> Value {
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = assert_graph_error(response, 401, "InvalidAuthenticationToken").await;
    assert!(
        challenge
            .as_deref()
            .is_some_and(|c| c.starts_with("Bearer")),
        "WWW-Authenticate: {challenge:?}"
    );
    body
}

#[tokio::test]
async fn no_authorization_header_is_401() {
    let emulator = spawn_emulator().await;

    for path in ["/v1.0/organization", "/v1.0/users", "/v1.0/users/$count"] {
        let response = emulator.graph(path, None).await;

        assert_unauthenticated(response).await;
    }
}

#[tokio::test]
async fn empty_bearer_token_is_401() {
    let emulator = spawn_emulator().await;

    for value in ["Bearer ", "Bearer", "bearer    "] {
        let response = emulator
            .http
            .get(emulator.url("/v1.0/organization"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();

        assert_unauthenticated(response).await;
    }
}

#[tokio::test]
async fn garbage_token_is_401() {
    let emulator = spawn_emulator().await;

    for value in [
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer a.b.c.d",
        "Bearer eyJ0eXAiOiJKV1QifQ.eyJ0aWQiOiJ4In0.",
        "Basic dXNlcjpwYXNz",
        "garbage",
    ] {
        let response = emulator
            .http
            .get(emulator.url("/v1.0/organization"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();

        assert_unauthenticated(response).await;
    }
}

#[tokio::test]
async fn token_with_a_swapped_payload_is_401() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["tid"] = FABRIKAM.into();
    payload["roles"] = serde_json::json!(["Directory.ReadWrite.All"]);
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    let forged = parts.join(".");

    let response = emulator.graph("/v1.0/organization", Some(&forged)).await;

    assert_unauthenticated(response).await;
}

#[tokio::test]
async fn token_from_another_emulator_is_401() {
    let emulator = spawn_emulator().await;
    let other = spawn_emulator().await;
    let foreign = other.contoso_token().await;
    emulator.consent(&emulator.contoso()).await;

    let response = emulator.graph("/v1.0/organization", Some(&foreign)).await;

    assert_unauthenticated(response).await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    emulator.advance_clock(7200).await;

    let response = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_unauthenticated(response).await;
}

#[tokio::test]
async fn token_is_still_accepted_just_after_expiry_within_clock_skew() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    emulator.advance_clock(3600).await;

    let response = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_fresh_token_works_after_the_clock_moved() {
    let emulator = spawn_emulator().await;
    let old = emulator.contoso_token().await;
    emulator.advance_clock(7200).await;

    let fresh = emulator.access_token(&emulator.contoso()).await;
    let response = emulator.graph("/v1.0/organization", Some(&fresh)).await;

    assert_eq!(response.status(), 200);
    assert!(claims_exp(&fresh) >= claims_exp(&old) + 7200);
}

fn claims_exp(token: &str) -> i64 {
    crate::helpers::claims(token)["exp"].as_i64().unwrap()
}

#[tokio::test]
async fn unauthenticated_error_echoes_client_request_id() {
    let emulator = spawn_emulator().await;
    let client_request_id = uuid::Uuid::new_v4().to_string();

    let response = emulator
        .http
        .get(emulator.url("/v1.0/users"))
        .header("client-request-id", &client_request_id)
        .send()
        .await
        .unwrap();

    let request_id = response
        .headers()
        .get("request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = assert_unauthenticated(response).await;
    assert_eq!(
        body["error"]["innerError"]["client-request-id"],
        client_request_id
    );
    assert_eq!(
        Some(body["error"]["innerError"]["request-id"].as_str().unwrap()),
        request_id.as_deref()
    );
}

#[tokio::test]
async fn organization_role_alone_reads_the_organization_but_not_users() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_roles(&emulator.contoso(), &["Organization.Read.All"])
        .await;
    let token = emulator.access_token(&emulator.contoso()).await;

    let organization = emulator.graph("/v1.0/organization", Some(&token)).await;
    let users = emulator.graph("/v1.0/users", Some(&token)).await;
    let count = get_with_header(
        &emulator,
        "/v1.0/users/$count",
        &token,
        Some(("ConsistencyLevel", "eventual")),
    )
    .await;

    assert_eq!(organization.status(), 200);
    assert_graph_error(users, 403, "Authorization_RequestDenied").await;
    assert_graph_error(count, 403, "Authorization_RequestDenied").await;
}

#[tokio::test]
async fn token_without_roles_is_403_everywhere() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator.set_roles(&emulator.contoso(), &[]).await;
    let token = emulator.access_token(&emulator.contoso()).await;

    let organization = emulator.graph("/v1.0/organization", Some(&token)).await;
    let users = emulator.graph("/v1.0/users", Some(&token)).await;

    let body = assert_graph_error(organization, 403, "Authorization_RequestDenied").await;
    assert_graph_error(users, 403, "Authorization_RequestDenied").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Insufficient privileges")
    );
}

#[tokio::test]
async fn directory_read_all_reads_both() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    emulator
        .set_roles(&emulator.contoso(), &["Directory.Read.All"])
        .await;
    let token = emulator.access_token(&emulator.contoso()).await;

    let organization = emulator.graph("/v1.0/organization", Some(&token)).await;
    let users = emulator.graph("/v1.0/users", Some(&token)).await;

    assert_eq!(organization.status(), 200);
    assert_eq!(users.status(), 200);
}

#[tokio::test]
async fn revoking_consent_does_not_invalidate_an_issued_token() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    let (status, _) = emulator
        .control(
            reqwest::Method::DELETE,
            &format!("/tenants/{}/consent", emulator.contoso()),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let organization = emulator.graph("/v1.0/organization", Some(&token)).await;
    let users = emulator.graph("/v1.0/users", Some(&token)).await;
    let new_token = emulator.token_v2(&emulator.contoso(), &[]).await;

    assert_eq!(organization.status(), 200);
    assert_eq!(users.status(), 200);
    assert_eq!(new_token.status(), 400);
}

#[tokio::test]
async fn revoked_tenants_token_still_expires() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    emulator
        .control(
            reqwest::Method::DELETE,
            &format!("/tenants/{}/consent", emulator.contoso()),
            None,
        )
        .await;
    emulator.advance_clock(7200).await;

    let response = emulator.graph("/v1.0/organization", Some(&token)).await;

    assert_unauthenticated(response).await;
}

#[tokio::test]
async fn deleted_tenants_token_is_401_and_its_token_endpoint_is_90002() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;
    let (status, _) = emulator
        .control(
            reqwest::Method::DELETE,
            &format!("/tenants/{}", emulator.contoso()),
            None,
        )
        .await;
    assert_eq!(status, 204);

    let graph = emulator.graph("/v1.0/organization", Some(&token)).await;
    let token_endpoint = emulator.token_v2(&emulator.contoso(), &[]).await;
    let by_domain = emulator.token_v2("contoso.onmicrosoft.com", &[]).await;

    assert_unauthenticated(graph).await;
    crate::helpers::assert_sts_error(token_endpoint, 400, "invalid_request", 90002).await;
    crate::helpers::assert_sts_error(by_domain, 400, "invalid_request", 90002).await;
}

#[tokio::test]
async fn unknown_graph_path_is_400_bad_request() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    for path in ["/v1.0/groups", "/v1.0/me", "/v1.0/applications?$top=1"] {
        let response = emulator.graph(path, Some(&token)).await;

        assert_graph_error(response, 400, "BadRequest").await;
    }
}

#[tokio::test]
async fn writing_to_graph_is_405() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    for (method, path) in [
        (reqwest::Method::POST, "/v1.0/users"),
        (reqwest::Method::DELETE, "/v1.0/users"),
        (reqwest::Method::PATCH, "/v1.0/organization"),
        (reqwest::Method::POST, "/v1.0/users/$count"),
    ] {
        let response = emulator
            .http
            .request(method, emulator.url(path))
            .bearer_auth(&token)
            .json(&serde_json::json!({"displayName": "x"}))
            .send()
            .await
            .unwrap();

        assert_graph_error(response, 405, "Request_BadRequest").await;
    }
}

#[tokio::test]
async fn generated_tenant_users_page_to_the_configured_count() {
    let emulator = spawn_emulator_with(|cfg| {
        cfg.generate_tenants = 1;
        cfg.users_per_generated_tenant = 3;
    })
    .await;
    let (_, tenants) = emulator
        .control(reqwest::Method::GET, "/tenants", None)
        .await;
    let generated = tenants.as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = token_for(&emulator, &generated).await;

    let body = json_ok(emulator.graph("/v1.0/users", Some(&token)).await).await;

    assert_eq!(ids(&body).len(), 3);
    assert!(body.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn unknown_segment_under_users_names_that_segment() {
    let emulator = crate::helpers::spawn_emulator().await;

    let body: serde_json::Value = emulator
        .graph("/v1.0/users/abc/def", None)
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(body["error"]["code"], "BadRequest");
    assert_eq!(
        body["error"]["message"],
        "Resource not found for the segment 'abc'."
    );
}

//! OpenID Connect sign-in against the emulator, over HTTP: the authorize endpoint and its
//! pages driven as a browser drives them, the code and refresh-token grants, every refusal,
//! and MSAL for Python's auth-code flow.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::helpers::{
    FABRIKAM, REDIRECT_URI, TestEmulator, assert_sts_error, claims, hidden_field, html_unescape,
    is_guid, location_params, param, spawn_emulator, spawn_emulator_with,
};

const CONTOSO_ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO_MEMBER: &str = "adele.vance@contoso.com";
const FABRIKAM_ADMIN: &str = "admin@fabrikam.onmicrosoft.com";
/// RFC 7636, appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const OIDC: &str = "openid profile email offline_access";

/// A browser: keeps cookies, follows no redirects (the test reads each one).
fn browser(emulator: &TestEmulator) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none());
    if let Some(ca) = &emulator.ca_pem {
        let pem = std::fs::read(ca).expect("ca.pem");
        builder = builder.tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")]);
    }
    builder.build().expect("a browser")
}

/// An authorize query for the emulated app, with `overrides` replacing (or, with an empty
/// value, removing) fields.
fn query(emulator: &TestEmulator, overrides: &[(&str, &str)]) -> String {
    let mut fields: Vec<(&str, String)> = vec![
        ("client_id", emulator.client_id.clone()),
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("scope", OIDC.into()),
        ("state", "st-123".into()),
        ("nonce", "n-456".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ];
    for (name, value) in overrides {
        fields.retain(|(n, _)| n != name);
        if !value.is_empty() {
            fields.push((name, (*value).to_owned()));
        }
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(n, v)| (*n, v.as_str())))
        .finish()
}

async fn authorize(
    emulator: &TestEmulator,
    browser: &reqwest::Client,
    tenant: &str,
    query: &str,
) -> reqwest::Response {
    browser
        .get(emulator.url(&format!("/{tenant}/oauth2/v2.0/authorize?{query}")))
        .send()
        .await
        .expect("the authorize endpoint answers")
}

async fn post(
    emulator: &TestEmulator,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().copied())
        .finish();
    browser
        .post(emulator.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the form answers")
}

/// The flow id a page's form carries.
fn flow_of(html: &str) -> String {
    hidden_field(html, "flow").expect("the page carries its flow")
}

/// Picks `username` on the sign-in page `html` (for `segment`).
async fn pick(
    emulator: &TestEmulator,
    browser: &reqwest::Client,
    segment: &str,
    html: &str,
    username: &str,
) -> reqwest::Response {
    let flow = flow_of(html);
    post(
        emulator,
        browser,
        &format!("/{segment}/login"),
        &[("flow", &flow), ("username", username)],
    )
    .await
}

/// Signs `username` in through the pages, accepting consent when asked (for everyone
/// with `for_everyone`), and returns the redirect's parameters.
async fn sign_in_with(
    emulator: &TestEmulator,
    browser: &reqwest::Client,
    segment: &str,
    query: &str,
    username: &str,
    for_everyone: bool,
) -> Vec<(String, String)> {
    let page = authorize(emulator, browser, segment, query).await;
    assert_eq!(page.status(), 200, "the sign-in page shows");
    let html = page.text().await.expect("html");
    let mut response = pick(emulator, browser, segment, &html, username).await;
    if response.status() == 200 {
        let html = response.text().await.expect("html");
        assert!(html.contains("Permissions requested"), "{html}");
        let flow = flow_of(&html);
        let mut fields = vec![("flow", flow.as_str()), ("decision", "accept")];
        if for_everyone {
            fields.push(("for_everyone", "on"));
        }
        response = post(emulator, browser, &format!("/{segment}/consent"), &fields).await;
    }
    assert_eq!(response.status(), 302, "back to the app");
    let (location, params) = location_params(&response);
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    params
}

async fn sign_in(
    emulator: &TestEmulator,
    browser: &reqwest::Client,
    segment: &str,
    username: &str,
) -> String {
    let params = sign_in_with(
        emulator,
        browser,
        segment,
        &query(emulator, &[]),
        username,
        false,
    )
    .await;
    assert_eq!(param(&params, "state"), Some("st-123"));
    param(&params, "code").expect("a code").to_owned()
}

/// Redeems `code` with the app's secret; `overrides` replace (or, empty, remove) fields.
async fn redeem(
    emulator: &TestEmulator,
    segment: &str,
    code: &str,
    overrides: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields: Vec<(&str, String)> = vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", emulator.client_id.clone()),
        ("client_secret", emulator.client_secret.clone()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("code_verifier", VERIFIER.into()),
    ];
    for (name, value) in overrides {
        fields.retain(|(n, _)| n != name);
        if !value.is_empty() {
            fields.push((name, (*value).to_owned()));
        }
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields.iter().map(|(n, v)| (*n, v.as_str())))
        .finish();
    emulator.token_raw(segment, "v2", body).await
}

async fn tokens(emulator: &TestEmulator, segment: &str, code: &str) -> Value {
    let response = redeem(emulator, segment, code, &[]).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{body}");
    body
}

async fn refresh(emulator: &TestEmulator, segment: &str, token: &str) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("client_id", &emulator.client_id)
        .append_pair("client_secret", &emulator.client_secret)
        .append_pair("refresh_token", token)
        .finish();
    emulator.token_raw(segment, "v2", body).await
}

/// Verifies an RS256 JWT against the emulator's published keys and returns its claims.
async fn verified(emulator: &TestEmulator, tenant: &str, jwt: &str) -> Value {
    let jwks: Value = emulator
        .http
        .get(emulator.url(&format!("/{tenant}/discovery/v2.0/keys")))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("JSON");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().expect("header"))
            .expect("base64url"),
    )
    .expect("JSON header");
    assert_eq!(header["alg"], "RS256");
    let key = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the token's kid is published");
    let decode = |field: &str| {
        URL_SAFE_NO_PAD
            .decode(key[field].as_str().expect(field))
            .expect("b64")
    };
    let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
    ring::signature::RsaPublicKeyComponents {
        n: decode("n"),
        e: decode("e"),
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signed.as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).expect("b64"),
    )
    .expect("the signature verifies against the JWKS");
    claims(jwt)
}

async fn user_of(emulator: &TestEmulator, tenant: &str, name: &str) -> Value {
    let (status, body) = emulator
        .control(
            reqwest::Method::GET,
            &format!("/tenants/{tenant}/users/{name}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn an_administrator_signs_in_consents_and_gets_verified_tokens() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();

    let code = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;
    let body = tokens(&emulator, &contoso, &code).await;

    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "openid profile email");
    assert!(body["expires_in"].as_u64().unwrap_or(0) > 3000, "{body}");
    assert!(body["refresh_token"].as_str().is_some_and(|t| t.len() > 30));
    let id = verified(
        &emulator,
        &contoso,
        body["id_token"].as_str().expect("id_token"),
    )
    .await;
    let admin = user_of(&emulator, &contoso, CONTOSO_ADMIN).await;
    assert_eq!(id["iss"], format!("{}/{contoso}/v2.0", emulator.base));
    assert_eq!(id["aud"], emulator.client_id);
    assert_eq!(id["tid"], contoso);
    assert_eq!(id["oid"], admin["id"]);
    assert_eq!(id["preferred_username"], CONTOSO_ADMIN);
    assert_eq!(id["email"], CONTOSO_ADMIN);
    assert_eq!(id["name"], "Contoso Ltd Administrator");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["ver"], "2.0");
    assert!(id.get("roles").is_none(), "no app role assigned: {id}");
    let (iat, exp) = (id["iat"].as_i64().unwrap(), id["exp"].as_i64().unwrap());
    assert!(exp > iat && id["nbf"] == id["iat"], "{id}");
    let sub = id["sub"].as_str().expect("sub");
    assert_eq!(sub.len(), 43);
    assert_ne!(
        sub,
        admin["id"].as_str().unwrap(),
        "sub is pairwise, not the oid"
    );
    let access = verified(&emulator, &contoso, body["access_token"].as_str().unwrap()).await;
    assert_eq!(access["scp"], "openid profile email");
    assert_eq!(access["idtyp"], "user");
    assert_eq!(access["upn"], CONTOSO_ADMIN);
    assert_eq!(access["appid"], emulator.client_id);
    let discovery: Value = emulator
        .http
        .get(emulator.url(&format!("/{contoso}/v2.0/.well-known/openid-configuration")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], id["iss"]);
}

#[tokio::test]
async fn a_second_sign_in_needs_no_consent_and_refresh_tokens_work_and_rotate() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let first = tokens(
        &emulator,
        &contoso,
        &sign_in(&emulator, &browser, &contoso, CONTOSO_MEMBER).await,
    )
    .await;

    let page = authorize(&emulator, &browser, &contoso, &query(&emulator, &[])).await;
    let html = page.text().await.unwrap();
    let direct = pick(&emulator, &browser, &contoso, &html, CONTOSO_MEMBER).await;
    let old = first["refresh_token"].as_str().unwrap();
    let refreshed = refresh(&emulator, &contoso, old).await;
    let refreshed: Value = refreshed.json().await.unwrap();
    let again = refresh(
        &emulator,
        &contoso,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;

    assert_eq!(
        direct.status(),
        302,
        "consent was given once, not asked again"
    );
    let new = refreshed["refresh_token"]
        .as_str()
        .expect("a new refresh token");
    assert_ne!(new, old);
    let id = claims(refreshed["id_token"].as_str().expect("an ID token"));
    assert_eq!(id["preferred_username"], CONTOSO_MEMBER);
    assert!(id.get("nonce").is_none(), "{id}");
    assert_eq!(again.status(), 200);
    let member = user_of(&emulator, &contoso, CONTOSO_MEMBER).await;
    assert_eq!(
        member["consented_scopes"],
        json!(["email", "offline_access", "openid", "profile"])
    );
}

#[tokio::test]
async fn a_code_is_single_use_and_its_replay_revokes_the_refresh_token() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let code = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;
    let first = tokens(&emulator, &contoso, &code).await;

    let replay = redeem(&emulator, &contoso, &code, &[]).await;
    let after = refresh(
        &emulator,
        &contoso,
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    let unknown = redeem(&emulator, &contoso, "not-a-code", &[]).await;

    assert_sts_error(replay, 400, "invalid_grant", 54005).await;
    assert_sts_error(after, 400, "invalid_grant", 9002313).await;
    assert_sts_error(unknown, 400, "invalid_grant", 9002313).await;
}

#[tokio::test]
async fn pkce_binds_the_code_to_its_verifier_and_a_failed_try_burns_it() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let wrong_code = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;
    let missing_code = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;

    let wrong = redeem(
        &emulator,
        &contoso,
        &wrong_code,
        &[("code_verifier", "x".repeat(43).as_str())],
    )
    .await;
    let missing = redeem(&emulator, &contoso, &missing_code, &[("code_verifier", "")]).await;
    let retried = redeem(&emulator, &contoso, &wrong_code, &[]).await;

    assert_sts_error(wrong, 400, "invalid_grant", 501481).await;
    assert_sts_error(missing, 400, "invalid_grant", 50148).await;
    assert_sts_error(retried, 400, "invalid_grant", 54005).await;
}

#[tokio::test]
async fn a_plain_challenge_works_and_a_verifier_without_challenge_is_refused() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let plain = "p".repeat(50);
    let q = query(
        &emulator,
        &[
            ("code_challenge", &plain),
            ("code_challenge_method", "plain"),
        ],
    );
    let plain_code = sign_in_with(&emulator, &browser, &contoso, &q, CONTOSO_ADMIN, false).await;
    let q = query(
        &emulator,
        &[("code_challenge", ""), ("code_challenge_method", "")],
    );
    let bare_code = sign_in_with(&emulator, &browser, &contoso, &q, CONTOSO_ADMIN, false).await;

    let ok = redeem(
        &emulator,
        &contoso,
        param(&plain_code, "code").unwrap(),
        &[("code_verifier", &plain)],
    )
    .await;
    let refused = redeem(&emulator, &contoso, param(&bare_code, "code").unwrap(), &[]).await;

    assert_eq!(ok.status(), 200);
    assert_sts_error(refused, 400, "invalid_grant", 501481).await;
}

#[tokio::test]
async fn the_code_is_bound_to_its_redirect_uri_client_tenant_and_lifetime() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await);
    }

    let other_uri = "http://127.0.0.1:8080/consent/callback";
    let wrong_uri = redeem(
        &emulator,
        &contoso,
        &codes[0],
        &[("redirect_uri", other_uri)],
    )
    .await;
    let other_client = redeem(
        &emulator,
        &contoso,
        &codes[1],
        &[("client_id", &uuid::Uuid::new_v4().to_string())],
    )
    .await;
    let wrong_secret = redeem(
        &emulator,
        &contoso,
        &codes[1],
        &[("client_secret", "guess")],
    )
    .await;
    let other_tenant = redeem(&emulator, FABRIKAM, &codes[2], &[]).await;
    let at_organizations = redeem(&emulator, "organizations", &codes[3], &[]).await;
    emulator.advance_clock(601).await;
    let expired = redeem(&emulator, &contoso, &codes[4], &[]).await;
    let still_fresh_after_refusals = redeem(&emulator, &contoso, &codes[1], &[]).await;

    assert_sts_error(wrong_uri, 400, "invalid_grant", 50011).await;
    assert_sts_error(other_client, 400, "unauthorized_client", 700016).await;
    assert_sts_error(wrong_secret, 401, "invalid_client", 7000215).await;
    assert_sts_error(other_tenant, 400, "invalid_grant", 700005).await;
    assert_sts_error(at_organizations, 400, "invalid_grant", 700005).await;
    assert_sts_error(expired, 400, "invalid_grant", 70008).await;
    // Refused before the code was looked at, the code stayed usable, until it expired.
    assert_sts_error(still_fresh_after_refusals, 400, "invalid_grant", 70008).await;
}

#[tokio::test]
async fn untrusted_clients_and_redirect_uris_stay_on_the_error_page() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let cases = [
        (
            contoso.clone(),
            query(
                &emulator,
                &[("client_id", &uuid::Uuid::new_v4().to_string())],
            ),
            "AADSTS700016",
        ),
        (
            contoso.clone(),
            query(&emulator, &[("client_id", "<b>not-a-guid</b>")]),
            "AADSTS700038",
        ),
        (
            contoso.clone(),
            query(&emulator, &[("client_id", "")]),
            "AADSTS900144",
        ),
        (
            contoso.clone(),
            query(&emulator, &[("redirect_uri", "https://evil.example/cb")]),
            "AADSTS50011",
        ),
        (
            contoso.clone(),
            query(&emulator, &[("redirect_uri", "")]),
            "AADSTS900971",
        ),
        (
            "nowhere.example.com".to_owned(),
            query(&emulator, &[]),
            "AADSTS90002",
        ),
        (
            "not a tenant".replace(' ', "%20"),
            query(&emulator, &[]),
            "AADSTS900023",
        ),
        (
            contoso.clone(),
            format!("{}&state=again", query(&emulator, &[])),
            "AADSTS9000411",
        ),
    ];

    for (tenant, q, code) in cases {
        let response = authorize(&emulator, &browser, &tenant, &q).await;

        assert_eq!(response.status(), 400, "{code}");
        assert!(
            response.headers().get("location").is_none(),
            "{code} never redirects"
        );
        let html = response.text().await.unwrap();
        assert!(html.contains(code), "{code}: {html}");
        assert!(!html.contains("<b>"), "markup is not reflected");
    }
}

/// Fields to override, the `error` and the AADSTS code expected.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, u32);

#[tokio::test]
async fn bad_requests_from_a_trusted_client_go_back_to_it() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let cases: [Case<'_>; 8] = [
        (
            &[("response_type", "token")],
            "unsupported_response_type",
            700051,
        ),
        (
            &[("response_type", "id_token")],
            "unsupported_response_type",
            700054,
        ),
        (&[("response_type", "")], "invalid_request", 900144),
        (&[("scope", "")], "invalid_request", 900144),
        (
            &[("scope", "openid api://someone-else/read")],
            "invalid_resource",
            500011,
        ),
        (
            &[("code_challenge_method", "S512")],
            "invalid_request",
            50149,
        ),
        (&[("code_challenge", "short")], "invalid_request", 501491),
        (&[("prompt", "whenever")], "invalid_request", 90023),
    ];

    for (overrides, error, code) in cases {
        let response = authorize(&emulator, &browser, &contoso, &query(&emulator, overrides)).await;

        assert_eq!(response.status(), 302, "{error} {code}");
        let (location, params) = location_params(&response);
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        assert_eq!(param(&params, "error"), Some(error), "{location}");
        let description = param(&params, "error_description").unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}:")),
            "{description}"
        );
        assert!(description.contains("\r\nTrace ID: "), "{description:?}");
        assert!(
            param(&params, "error_uri")
                .is_some_and(|u| u.ends_with(&format!("/error?code={code}")))
        );
        assert_eq!(param(&params, "state"), Some("st-123"));
        assert!(param(&params, "code").is_none());
    }
}

#[tokio::test]
async fn prompt_none_answers_from_the_session_or_says_what_is_missing() {
    let emulator = spawn_emulator().await;
    let fresh = browser(&emulator);
    let signed_in = browser(&emulator);
    let contoso = emulator.contoso();
    sign_in(&emulator, &signed_in, &contoso, CONTOSO_MEMBER).await;

    let silent = query(&emulator, &[("prompt", "none")]);
    let no_session = authorize(&emulator, &fresh, &contoso, &silent).await;
    let with_session = authorize(&emulator, &signed_in, &contoso, &silent).await;
    let other_tenant = authorize(&emulator, &signed_in, FABRIKAM, &silent).await;
    let more_scopes = query(
        &emulator,
        &[("prompt", "none"), ("scope", "openid Mail.Read")],
    );
    let needs_consent = authorize(&emulator, &signed_in, &contoso, &more_scopes).await;

    let (_, params) = location_params(&no_session);
    assert_eq!(param(&params, "error"), Some("login_required"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS50058:")
    );
    assert_eq!(param(&params, "state"), Some("st-123"));
    let (_, params) = location_params(&with_session);
    let code = param(&params, "code").expect("a code without any page");
    let body = tokens(&emulator, &contoso, code).await;
    assert_eq!(
        claims(body["id_token"].as_str().unwrap())["preferred_username"],
        CONTOSO_MEMBER
    );
    let (_, params) = location_params(&other_tenant);
    assert_eq!(param(&params, "error"), Some("login_required"));
    let (_, params) = location_params(&needs_consent);
    assert_eq!(param(&params, "error"), Some("interaction_required"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS65001:")
    );
}

#[tokio::test]
async fn a_member_needs_an_administrator_for_more_than_low_impact_permissions() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let mail = query(
        &emulator,
        &[(
            "scope",
            "openid profile https://graph.microsoft.com/Mail.Read",
        )],
    );

    let page = authorize(&emulator, &browser, &contoso, &mail)
        .await
        .text()
        .await
        .unwrap();
    let approval = pick(&emulator, &browser, &contoso, &page, CONTOSO_MEMBER).await;
    let html = approval.text().await.unwrap();
    let flow = flow_of(&html);
    let forged = post(
        &emulator,
        &browser,
        &format!("/{contoso}/consent"),
        &[
            ("flow", &flow),
            ("decision", "accept"),
            ("for_everyone", "on"),
        ],
    )
    .await;
    let page = authorize(&emulator, &browser, &contoso, &mail)
        .await
        .text()
        .await
        .unwrap();
    let html2 = pick(&emulator, &browser, &contoso, &page, CONTOSO_MEMBER)
        .await
        .text()
        .await
        .unwrap();
    let returned = post(
        &emulator,
        &browser,
        &format!("/{contoso}/consent"),
        &[("flow", &flow_of(&html2)), ("decision", "return")],
    )
    .await;

    assert!(
        html.contains("Need admin approval") && html.contains("AADSTS90094"),
        "{html}"
    );
    for response in [forged, returned] {
        let (_, params) = location_params(&response);
        assert_eq!(param(&params, "error"), Some("access_denied"));
        assert!(
            param(&params, "error_description")
                .unwrap()
                .starts_with("AADSTS90094:")
        );
        assert_eq!(param(&params, "state"), Some("st-123"));
    }
    let grants = emulator
        .control(
            reqwest::Method::GET,
            &format!("/tenants/{contoso}/grants"),
            None,
        )
        .await
        .1;
    assert_eq!(grants["grants"], json!({}), "nothing was granted");
}

#[tokio::test]
async fn an_administrator_consents_for_everyone_and_a_cancel_goes_back_as_declined() {
    let emulator = spawn_emulator().await;
    let admin = browser(&emulator);
    let member = browser(&emulator);
    let contoso = emulator.contoso();
    let mail = query(&emulator, &[("scope", "openid profile Mail.Read")]);

    let page = authorize(&emulator, &member, &contoso, &mail)
        .await
        .text()
        .await
        .unwrap();
    let consent = pick(&emulator, &member, &contoso, &page, CONTOSO_ADMIN)
        .await
        .text()
        .await
        .unwrap();
    let cancelled = post(
        &emulator,
        &member,
        &format!("/{contoso}/consent"),
        &[("flow", &flow_of(&consent)), ("decision", "cancel")],
    )
    .await;
    let granted = sign_in_with(&emulator, &admin, &contoso, &mail, CONTOSO_ADMIN, true).await;
    let page = authorize(&emulator, &member, &contoso, &mail)
        .await
        .text()
        .await
        .unwrap();
    let direct = pick(&emulator, &member, &contoso, &page, CONTOSO_MEMBER).await;

    assert!(
        consent.contains("Consent on behalf of"),
        "administrators are offered it"
    );
    let (_, params) = location_params(&cancelled);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert!(
        param(&params, "error_description")
            .unwrap()
            .starts_with("AADSTS65004:")
    );
    assert!(param(&granted, "code").is_some());
    assert_eq!(direct.status(), 302, "the member needs no consent any more");
    let (_, params) = location_params(&direct);
    let body = tokens(&emulator, &contoso, param(&params, "code").unwrap()).await;
    assert_eq!(
        body["scope"],
        "openid profile https://graph.microsoft.com/Mail.Read"
    );
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["scp"],
        "openid profile Mail.Read"
    );
}

#[tokio::test]
async fn forged_and_stale_forms_are_refused_without_a_redirect() {
    let emulator = spawn_emulator().await;
    let victim = browser(&emulator);
    let attacker = browser(&emulator);
    let contoso = emulator.contoso();
    let page = authorize(&emulator, &victim, &contoso, &query(&emulator, &[]))
        .await
        .text()
        .await
        .unwrap();
    let flow = flow_of(&page);

    let other_browser = pick(&emulator, &attacker, &contoso, &page, CONTOSO_ADMIN).await;
    let no_cookie = post(
        &emulator,
        &emulator.http,
        &format!("/{contoso}/login"),
        &[("flow", &flow), ("username", CONTOSO_ADMIN)],
    )
    .await;
    let other_segment = pick(&emulator, &victim, FABRIKAM, &page, FABRIKAM_ADMIN).await;
    let made_up = post(
        &emulator,
        &victim,
        &format!("/{contoso}/login"),
        &[("flow", "made-up"), ("username", CONTOSO_ADMIN)],
    )
    .await;
    let consent_first = post(
        &emulator,
        &victim,
        &format!("/{contoso}/consent"),
        &[("flow", &flow), ("decision", "accept")],
    )
    .await;
    let foreign_user = pick(&emulator, &victim, &contoso, &page, FABRIKAM_ADMIN).await;
    let foreign_status = foreign_user.status();
    let foreign_html = foreign_user.text().await.unwrap();
    let real = pick(&emulator, &victim, &contoso, &page, CONTOSO_ADMIN).await;
    let consent_page = real.text().await.unwrap();
    let accepted = post(
        &emulator,
        &victim,
        &format!("/{contoso}/consent"),
        &[("flow", &flow), ("decision", "accept")],
    )
    .await;
    let replayed = post(
        &emulator,
        &victim,
        &format!("/{contoso}/consent"),
        &[("flow", &flow), ("decision", "accept")],
    )
    .await;
    let repicked = pick(&emulator, &victim, &contoso, &consent_page, CONTOSO_ADMIN).await;

    for response in [
        other_browser,
        no_cookie,
        other_segment,
        made_up,
        consent_first,
        replayed,
        repicked,
    ] {
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("AADSTS50089"));
    }
    assert_eq!(
        foreign_status, 400,
        "a user of another tenant is refused on the page"
    );
    assert!(foreign_html.contains("AADSTS50034"), "{foreign_html}");
    assert_eq!(accepted.status(), 302);
}

#[tokio::test]
async fn an_expired_sign_in_page_is_refused() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let page = authorize(&emulator, &browser, &contoso, &query(&emulator, &[]))
        .await
        .text()
        .await
        .unwrap();

    emulator.advance_clock(16 * 60).await;
    let late = pick(&emulator, &browser, &contoso, &page, CONTOSO_ADMIN).await;

    assert_eq!(late.status(), 400);
    assert!(late.text().await.unwrap().contains("AADSTS50089"));
}

#[tokio::test]
async fn markup_in_parameters_is_never_reflected_and_pages_run_no_script() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let evil = "\"><script>alert(1)</script>";
    let q = query(
        &emulator,
        &[("login_hint", evil), ("state", evil), ("nonce", evil)],
    );

    let response = authorize(&emulator, &browser, &contoso, &q).await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    let refused = pick(&emulator, &browser, &contoso, &html, evil)
        .await
        .text()
        .await
        .unwrap();

    assert!(!html.contains("<script"), "{html}");
    assert!(!refused.contains("<script"), "{refused}");
    assert!(
        html_unescape(&html).contains(evil),
        "the hint is shown, escaped"
    );
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' http://localhost:8080"),
        "{csp}"
    );
}

#[tokio::test]
async fn organizations_lists_every_tenants_users_and_issues_for_the_chosen_one() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);

    let page = authorize(&emulator, &browser, "organizations", &query(&emulator, &[]))
        .await
        .text()
        .await
        .unwrap();
    let hinted = authorize(
        &emulator,
        &browser,
        "organizations",
        &query(&emulator, &[("domain_hint", "fabrikam.com")]),
    )
    .await
    .text()
    .await
    .unwrap();
    let code = sign_in(&emulator, &browser, "organizations", FABRIKAM_ADMIN).await;
    let body = tokens(&emulator, "organizations", &code).await;
    let discovery: Value = emulator
        .http
        .get(emulator.url("/organizations/v2.0/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert!(
        page.contains(CONTOSO_ADMIN) && page.contains(FABRIKAM_ADMIN),
        "{page}"
    );
    assert!(
        hinted.contains(FABRIKAM_ADMIN) && !hinted.contains(CONTOSO_ADMIN),
        "{hinted}"
    );
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["tid"], FABRIKAM);
    assert_eq!(id["iss"], format!("{}/{FABRIKAM}/v2.0", emulator.base));
    assert_eq!(
        discovery["issuer"],
        format!("{}/{{tenantid}}/v2.0", emulator.base)
    );
    assert_eq!(
        discovery["authorization_endpoint"],
        format!("{}/organizations/oauth2/v2.0/authorize", emulator.base)
    );
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    assert!(
        discovery["response_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("code"))
    );
}

#[tokio::test]
async fn users_and_app_roles_come_from_the_control_api_into_the_id_token() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let control = |m, p: String, b| {
        let emulator = &emulator;
        async move { emulator.control(m, &p, b).await }
    };
    use reqwest::Method;

    let (declared, role) = control(
        Method::POST,
        "/app/roles".into(),
        Some(json!({"value": "Consentry.Operator"})),
    )
    .await;
    let (created, user) = control(
        Method::POST,
        format!("/tenants/{contoso}/users"),
        Some(json!({"display_name": "Megan Bowen", "user_principal_name": "megan.bowen@contoso.com", "roles": ["Consentry.Operator"]})),
    )
    .await;
    let (bad_domain, _) = control(
        Method::POST,
        format!("/tenants/{contoso}/users"),
        Some(json!({"display_name": "X", "user_principal_name": "x@fabrikam.com"})),
    )
    .await;
    let (unknown_role, _) = control(
        Method::PUT,
        format!("/tenants/{contoso}/users/megan.bowen@contoso.com/roles"),
        Some(json!(["Nope"])),
    )
    .await;
    let (_, listed) = control(Method::GET, format!("/tenants/{contoso}/users"), None).await;
    let code = sign_in(&emulator, &browser, &contoso, "megan.bowen@contoso.com").await;
    let body = tokens(&emulator, &contoso, &code).await;
    let (deleted, _) = control(
        Method::DELETE,
        format!("/tenants/{contoso}/users/{}", user["id"].as_str().unwrap()),
        None,
    )
    .await;
    let after_delete = refresh(&emulator, &contoso, body["refresh_token"].as_str().unwrap()).await;

    assert_eq!(
        (declared, created, bad_domain, unknown_role, deleted),
        (201, 201, 400, 404, 204)
    );
    assert!(is_guid(&role["id"]));
    assert_eq!(user["roles"], json!(["Consentry.Operator"]));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_principal_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [CONTOSO_MEMBER, CONTOSO_ADMIN, "megan.bowen@contoso.com"]
    );
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["roles"], json!(["Consentry.Operator"]));
    assert_eq!(id["oid"], user["id"]);
    assert_sts_error(after_delete, 400, "invalid_grant", 50173).await;
}

#[tokio::test]
async fn revoking_consent_ends_refresh_and_a_stricter_policy_asks_an_administrator() {
    let emulator = spawn_emulator_with(|_| {}).await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    // Admin consent grants the app's static delegated permissions: no consent page.
    let code = sign_in(&emulator, &browser, &contoso, CONTOSO_MEMBER).await;
    let body = tokens(&emulator, &contoso, &code).await;

    emulator.revoke(&contoso).await;
    let revoked = refresh(&emulator, &contoso, body["refresh_token"].as_str().unwrap()).await;
    let (status, _) = emulator
        .control(
            reqwest::Method::PUT,
            &format!("/tenants/{contoso}/user-consent"),
            Some(json!({"policy": "none"})),
        )
        .await;
    let page = authorize(&emulator, &browser, &contoso, &query(&emulator, &[]))
        .await
        .text()
        .await
        .unwrap();
    let approval = pick(&emulator, &browser, &contoso, &page, CONTOSO_MEMBER)
        .await
        .text()
        .await
        .unwrap();

    assert_sts_error(revoked, 400, "invalid_grant", 65001).await;
    assert_eq!(status, 200);
    assert!(approval.contains("AADSTS90094"), "{approval}");
}

#[tokio::test]
async fn form_post_answers_with_a_script_free_form_to_the_app() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let q = query(&emulator, &[("response_mode", "form_post")]);
    let page = authorize(&emulator, &browser, &contoso, &q)
        .await
        .text()
        .await
        .unwrap();
    let consent = pick(&emulator, &browser, &contoso, &page, CONTOSO_ADMIN)
        .await
        .text()
        .await
        .unwrap();

    let answer = post(
        &emulator,
        &browser,
        &format!("/{contoso}/consent"),
        &[("flow", &flow_of(&consent)), ("decision", "accept")],
    )
    .await;

    assert_eq!(answer.status(), 200);
    let csp = answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = answer.text().await.unwrap();
    assert!(
        html.contains(&format!("action=\"{REDIRECT_URI}\"")),
        "{html}"
    );
    assert_eq!(hidden_field(&html, "state").as_deref(), Some("st-123"));
    let code = hidden_field(&html, "code").expect("the code is a form field");
    assert!(!html.contains("<script"));
    assert!(csp.contains("form-action 'self' http://localhost:8080"));
    assert_eq!(redeem(&emulator, &contoso, &code, &[]).await.status(), 200);
}

async fn spawn_https() -> TestEmulator {
    let dir = std::env::temp_dir().join(format!("consentry-test-tls-{}", uuid::Uuid::new_v4()));
    spawn_emulator_with(|c| {
        c.https = true;
        c.tls_dir = Some(dir);
    })
    .await
}

/// MSAL for Python's `initiate_auth_code_flow` builds the authorize URL; the test follows
/// the pages as a browser would; `acquire_token_by_auth_code_flow` redeems the code and
/// checks state and nonce itself.
#[tokio::test]
async fn msal_python_signs_a_user_in_with_the_auth_code_flow() {
    let emulator = spawn_https().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let authority = format!("{}/{contoso}", emulator.base);
    let ca = emulator.ca_pem.clone().expect("https");
    let args = |mode: &str, extra: &[String]| {
        let mut args: Vec<std::ffi::OsString> = vec![
            mode.into(),
            authority.clone().into(),
            emulator.client_id.clone().into(),
            emulator.client_secret.clone().into(),
            ca.clone().into(),
            REDIRECT_URI.into(),
        ];
        args.extend(extra.iter().map(Into::into));
        args
    };

    let flow = crate::python::run_python("msal_auth_code.py", &args("initiate", &[])).await;
    let auth_uri = flow["auth_uri"].as_str().expect("an auth_uri").to_owned();
    let page = browser
        .get(&auth_uri)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent = pick(&emulator, &browser, &contoso, &page, CONTOSO_MEMBER)
        .await
        .text()
        .await
        .unwrap();
    let back = post(
        &emulator,
        &browser,
        &format!("/{contoso}/consent"),
        &[("flow", &flow_of(&consent)), ("decision", "accept")],
    )
    .await;
    let (_, params) = location_params(&back);
    let response: serde_json::Map<String, Value> = params
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let result = crate::python::run_python(
        "msal_auth_code.py",
        &args(
            "complete",
            &[flow.to_string(), Value::Object(response).to_string()],
        ),
    )
    .await;

    assert!(
        auth_uri.starts_with(&format!("{authority}/oauth2/v2.0/authorize?")),
        "{auth_uri}"
    );
    assert!(
        auth_uri.contains("code_challenge_method=S256"),
        "{auth_uri}"
    );
    let token = &result["token"];
    assert!(token["access_token"].is_string(), "{result}");
    assert_eq!(
        token["id_token_claims"]["preferred_username"], CONTOSO_MEMBER,
        "{result}"
    );
    assert_eq!(token["id_token_claims"]["tid"], contoso);
    assert_eq!(
        result["accounts"][0]["username"], CONTOSO_MEMBER,
        "{result}"
    );
    assert_eq!(
        result["silent_has_token"], true,
        "MSAL refreshes from its cache: {result}"
    );
}

/// The JWT's header, decoded.
fn jwt_header(jwt: &str) -> Value {
    let part = jwt.split('.').next().expect("a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// The published keys' ids, the current key first.
async fn published_kids(emulator: &TestEmulator, tenant: &str) -> Vec<String> {
    let jwks: Value = emulator
        .http
        .get(emulator.url(&format!("/{tenant}/discovery/v2.0/keys")))
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[tokio::test]
async fn each_hostile_mode_for_id_tokens_makes_the_code_flows_id_token_wrong_and_nothing_else() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let right_issuer = format!("{}/{contoso}/v2.0", emulator.base);
    let modes = [
        "wrong_issuer",
        "wrong_audience",
        "wrong_tenant",
        "expired",
        "not_yet_valid",
        "unknown_kid",
        "bad_signature",
        "alg_none",
    ];
    for mode in modes {
        let (status, set) = emulator
            .control(
                reqwest::Method::POST,
                "/hostile",
                Some(json!({"mode": mode, "tokens": ["id_token"]})),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {set}");

        let code = sign_in(&emulator, &browser(&emulator), &contoso, CONTOSO_ADMIN).await;
        let body = tokens(&emulator, &contoso, &code).await;
        let id_token = body["id_token"].as_str().expect("id_token");
        let c = claims(id_token);
        let kids = published_kids(&emulator, &contoso).await;
        let kid = jwt_header(id_token)["kid"].as_str().map(str::to_owned);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();

        match mode {
            "wrong_issuer" => assert_ne!(c["iss"], right_issuer.as_str(), "{c}"),
            "wrong_audience" => assert_ne!(c["aud"], emulator.client_id.as_str(), "{c}"),
            "wrong_tenant" => {
                assert_ne!(c["tid"], contoso.as_str(), "{c}");
                assert_eq!(c["iss"], right_issuer.as_str(), "iss and tid disagree");
            }
            "expired" => assert!(c["exp"].as_i64().unwrap() < now - 300, "{c}"),
            "not_yet_valid" => assert!(c["nbf"].as_i64().unwrap() > now + 300, "{c}"),
            "unknown_kid" => assert!(!kids.contains(&kid.unwrap()), "no published key"),
            // Its signature failing is checked on its own, below.
            "bad_signature" => {
                assert!(kids.contains(&kid.unwrap()), "a published kid");
                assert_eq!(c["iss"], right_issuer.as_str(), "the claims are right");
            }
            "alg_none" => {
                assert_eq!(jwt_header(id_token)["alg"], "none");
                assert!(id_token.ends_with('.'), "an empty signature");
            }
            _ => unreachable!(),
        }
        // The delegated access token of the same answer is not touched.
        let access = verified(&emulator, &contoso, body["access_token"].as_str().unwrap()).await;
        assert_eq!(access["tid"], contoso.as_str(), "{mode}");
        // And the next ID token is right again.
        let code = sign_in(&emulator, &browser(&emulator), &contoso, CONTOSO_ADMIN).await;
        let next = tokens(&emulator, &contoso, &code).await;
        let id = verified(&emulator, &contoso, next["id_token"].as_str().unwrap()).await;
        assert_eq!(
            (id["iss"].as_str(), id["aud"].as_str(), id["tid"].as_str()),
            (
                Some(right_issuer.as_str()),
                Some(emulator.client_id.as_str()),
                Some(contoso.as_str())
            ),
            "{mode}"
        );
    }
}

#[tokio::test]
async fn a_bad_signature_on_an_id_token_fails_verification_against_the_jwks() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator
        .control(
            reqwest::Method::POST,
            "/hostile",
            Some(json!({"mode": "bad_signature", "tokens": ["id_token"]})),
        )
        .await;

    let code = sign_in(&emulator, &browser(&emulator), &contoso, CONTOSO_ADMIN).await;
    let body = tokens(&emulator, &contoso, &code).await;
    let id_token = body["id_token"].as_str().unwrap().to_owned();
    let emulator = std::sync::Arc::new(emulator);
    let verifying = {
        let emulator = emulator.clone();
        tokio::spawn(async move { verified(&emulator, &contoso, &id_token).await })
    };

    assert!(
        verifying.await.is_err(),
        "the signature must not verify against the published key"
    );
}

#[tokio::test]
async fn after_key_rotation_id_tokens_are_signed_by_the_new_key() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let code = sign_in(&emulator, &browser(&emulator), &contoso, CONTOSO_ADMIN).await;
    let before = tokens(&emulator, &contoso, &code).await;
    let old_kid = jwt_header(before["id_token"].as_str().unwrap())["kid"].clone();

    let (status, _) = emulator
        .control(reqwest::Method::POST, "/keys/rotate", None)
        .await;
    let code = sign_in(&emulator, &browser(&emulator), &contoso, CONTOSO_ADMIN).await;
    let after = tokens(&emulator, &contoso, &code).await;
    let kids = published_kids(&emulator, &contoso).await;

    assert_eq!(status, 201);
    let id_token = after["id_token"].as_str().unwrap();
    let new_kid = jwt_header(id_token)["kid"].clone();
    assert_ne!(new_kid, old_kid);
    assert_eq!(new_kid, kids[0].as_str(), "the current key signs");
    assert!(
        kids.contains(&old_kid.as_str().unwrap().to_owned()),
        "the old key stays"
    );
    verified(&emulator, &contoso, id_token).await;
    verified(&emulator, &contoso, after["access_token"].as_str().unwrap()).await;
    // The old ID token still verifies against the JWKS (its key is still published).
    verified(&emulator, &contoso, before["id_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn reset_forgets_codes_refresh_tokens_grants_and_sessions() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let code = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;
    let body = tokens(&emulator, &contoso, &code).await;
    let unused = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;

    let (status, _) = emulator
        .control(reqwest::Method::POST, "/reset", None)
        .await;
    let refreshed = refresh(&emulator, &contoso, body["refresh_token"].as_str().unwrap()).await;
    let redeemed = redeem(&emulator, &contoso, &unused, &[]).await;
    let (_, grants) = emulator
        .control(
            reqwest::Method::GET,
            &format!("/tenants/{contoso}/grants"),
            None,
        )
        .await;
    let silent = authorize(
        &emulator,
        &browser,
        &contoso,
        &query(&emulator, &[("prompt", "none")]),
    )
    .await;

    assert_eq!(status, 200);
    assert_sts_error(refreshed, 400, "invalid_grant", 9002313).await;
    assert_sts_error(redeemed, 400, "invalid_grant", 9002313).await;
    assert_eq!(grants["grants"], json!({}));
    let (_, params) = location_params(&silent);
    assert_eq!(
        param(&params, "error"),
        Some("login_required"),
        "no session left"
    );
}

#[tokio::test]
async fn the_audit_records_the_sign_in_routes_with_the_reasons_of_refusals() {
    let emulator = spawn_emulator().await;
    let browser = browser(&emulator);
    let contoso = emulator.contoso();
    let code = sign_in(&emulator, &browser, &contoso, CONTOSO_ADMIN).await;
    tokens(&emulator, &contoso, &code).await;
    redeem(&emulator, &contoso, &code, &[]).await;
    let unregistered = query(
        &emulator,
        &[("redirect_uri", "https://attacker.example/cb?secret=s3cr3t")],
    );
    authorize(&emulator, &browser, &contoso, &unregistered).await;
    post(
        &emulator,
        &browser,
        &format!("/{contoso}/login"),
        &[("flow", "forged")],
    )
    .await;

    let (status, audit) = emulator
        .control(reqwest::Method::GET, "/audit?limit=1000", None)
        .await;

    assert_eq!(status, 200);
    let requests = audit["requests"].as_array().expect("requests");
    let find = |path: &str, code: Option<&str>| {
        requests
            .iter()
            .find(|r| r["path"] == path && r["refusal"]["code"].as_str() == code)
    };
    let authorize_path = format!("/{contoso}/oauth2/v2.0/authorize");
    let token_path = format!("/{contoso}/oauth2/v2.0/token");
    let login_path = format!("/{contoso}/login");
    let signed_in = find(&login_path, None).expect("the sign-in form is recorded");
    assert_eq!(signed_in["client_id"], emulator.client_id.as_str());
    assert!(find(&token_path, None).is_some(), "the code grant");
    let replay = find(&token_path, Some("AADSTS54005")).expect("the replayed code");
    assert_eq!(
        replay["refusal"]["reason"],
        "authorization code already redeemed"
    );
    assert_eq!(replay["client_id"], emulator.client_id.as_str());
    let bad_redirect = find(&authorize_path, Some("AADSTS50011")).expect("the bad redirect");
    assert_eq!(bad_redirect["client_id"], emulator.client_id.as_str());
    assert!(
        find(&login_path, Some("AADSTS50089")).is_some(),
        "the forged form"
    );
    assert!(!audit.to_string().contains("s3cr3t"), "no query is kept");
}

//! The admin-consent page (`GET /{tenant}/adminconsent`) and its form (`POST`), driven the
//! way a browser drives them; redirects are not followed, so each `Location` is inspected.

use std::io::{Read, Write};

use serde_json::Value;

use crate::helpers::{
    FABRIKAM, REDIRECT_URI, TestEmulator, encode_bytes, hidden_field, html_unescape,
    location_params, param, raw_query_param, spawn_emulator, spawn_emulator_with,
};

/// A consent link's query with `state` given as raw bytes.
fn query_with_state_bytes(emulator: &TestEmulator, state: &[u8]) -> String {
    format!(
        "client_id={}&redirect_uri={}&state={}",
        emulator.client_id,
        encode_bytes(REDIRECT_URI.as_bytes()),
        encode_bytes(state)
    )
}

/// The page's HTML after checking it is a 200 HTML page.
async fn page_html(response: reqwest::Response) -> String {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(response.headers().get("location").is_none());
    let html = response.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    html
}

/// The attribute `action` of the page's form.
fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form action") + "action=\"".len();
    let end = html[start..].find('"').unwrap() + start;
    html_unescape(&html[start..end])
}

/// Submits the consent form the way a browser does: to the form's action, with the hidden
/// `request` field, the organisation picked (if any), then the button pressed.
async fn submit(
    emulator: &TestEmulator,
    html: &str,
    decision: &str,
    tenant: Option<&str>,
) -> reqwest::Response {
    let request = hidden_field(html, "request").expect("the hidden request field");
    let mut fields = vec![("request", request.as_str())];
    if let Some(tenant) = tenant {
        fields.push(("tenant", tenant));
    }
    fields.push(("decision", decision));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    emulator
        .http
        .post(emulator.url(&form_action(html)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// GETs the consent page for `tenant` with `raw_query`, checks the form carries the query
/// unchanged, and submits `decision`.
async fn consent_flow(
    emulator: &TestEmulator,
    tenant: &str,
    raw_query: &str,
    decision: &str,
    choice: Option<&str>,
) -> reqwest::Response {
    let html = page_html(emulator.consent_page(tenant, raw_query).await).await;
    assert_eq!(
        hidden_field(&html, "request").as_deref(),
        Some(raw_query),
        "the form must carry the original query"
    );
    submit(emulator, &html, decision, choice).await
}

/// A Microsoft error page: 400, HTML, the AADSTS code, and never a redirect.
async fn assert_error_page(response: reqwest::Response, code: u32) -> String {
    let status = response.status();
    let location = response.headers().get("location").cloned();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let html = response.text().await.unwrap();
    assert_eq!(status, 400, "{html}");
    assert!(
        location.is_none(),
        "an error page never redirects: {location:?}"
    );
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains(&format!("AADSTS{code}:")), "{html}");
    html
}

async fn is_consented(emulator: &TestEmulator, tenant: &str) -> bool {
    emulator.tenant(tenant).await["consented"]
        .as_bool()
        .expect("consented is a boolean")
}

fn roles(tenant: &Value) -> Vec<String> {
    let mut roles: Vec<String> = tenant["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    roles.sort_unstable();
    roles
}

#[tokio::test]
async fn consent_page_lists_the_permissions_and_names_the_tenant() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s1"));

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    let html = page_html(response).await;
    let text = html_unescape(&html);
    for expected in [
        "User.Read.All",
        "Read all users' full profiles",
        "Organization.Read.All",
        "Read organization information",
        "Contoso Ltd",
        &emulator.contoso(),
        &emulator.client_id,
    ] {
        assert!(text.contains(expected), "the page lacks {expected:?}");
    }
    assert!(html.contains(r#"name="decision" value="accept""#));
    assert!(html.contains(r#"name="decision" value="cancel""#));
    assert!(html.contains(">Accept<") && html.contains(">Cancel<"));
    assert!(!html.contains("<select"), "a known tenant needs no picker");
}

#[tokio::test]
async fn consent_page_by_domain_names_the_tenant() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s1"));

    let response = emulator
        .consent_page("contoso.onmicrosoft.com", &query)
        .await;

    let text = html_unescape(&page_html(response).await);
    assert!(text.contains("Contoso Ltd"));
    assert!(text.contains(&emulator.contoso()));
    assert!(text.contains("Read all users' full profiles"));
}

#[tokio::test]
async fn organizations_and_common_let_the_admin_pick_the_tenant() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s1"));

    for alias in ["organizations", "common"] {
        let response = emulator.consent_page(alias, &query).await;

        let html = page_html(response).await;
        assert!(html.contains("<select"), "{alias}: no picker");
        assert!(html.contains(r#"name="tenant""#));
        let text = html_unescape(&html);
        for (id, name) in [
            (emulator.contoso(), "Contoso Ltd"),
            (FABRIKAM.to_owned(), "Fabrikam, Inc."),
            (crate::helpers::WOODGROVE.to_owned(), "Woodgrove Bank"),
        ] {
            assert!(
                html.contains(&format!(r#"<option value="{id}">"#)),
                "{alias}: {id}"
            );
            assert!(text.contains(name), "{alias}: {name}");
        }
    }
}

#[tokio::test]
async fn accept_redirects_with_admin_consent_tenant_and_state() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("opaque-123"));

    let response = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;

    assert_eq!(response.status(), 302);
    let (location, params) = location_params(&response);
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?")),
        "{location}"
    );
    assert_eq!(param(&params, "admin_consent"), Some("True"));
    assert_eq!(param(&params, "tenant"), Some(emulator.contoso().as_str()));
    assert_eq!(param(&params, "state"), Some("opaque-123"));
    assert_eq!(param(&params, "error"), None);
    assert_eq!(params.len(), 3, "{location}");
}

#[tokio::test]
async fn accept_consents_the_tenant_with_both_roles_and_tokens_follow() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));
    assert!(!is_consented(&emulator, &emulator.contoso()).await);

    let response = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;

    assert_eq!(response.status(), 302);
    let tenant = emulator.tenant(&emulator.contoso()).await;
    assert_eq!(tenant["consented"], true);
    assert_eq!(roles(&tenant), ["Organization.Read.All", "User.Read.All"]);
    let token = emulator.access_token(&emulator.contoso()).await;
    assert_eq!(crate::helpers::claims(&token)["tid"], emulator.contoso());
}

#[tokio::test]
async fn accept_by_domain_redirects_with_the_tenant_guid() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    let response = consent_flow(&emulator, "contoso.com", &query, "accept", None).await;

    assert_eq!(response.status(), 302);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "tenant"), Some(emulator.contoso().as_str()));
    assert!(is_consented(&emulator, &emulator.contoso()).await);
}

#[tokio::test]
async fn state_round_trips_byte_for_byte() {
    let emulator = spawn_emulator().await;
    let awkward: Vec<Vec<u8>> = vec![
        b"with spaces  and  more".to_vec(),
        b"a&b=c&state=evil".to_vec(),
        b"1+1=2".to_vec(),
        b"100%".to_vec(),
        b"%41%FF literal escapes".to_vec(),
        "h\u{e9}llo \u{2713} \u{65e5}\u{672c} \u{1f600}"
            .as_bytes()
            .to_vec(),
        vec![0xff],
        vec![b'a', 0xff, 0xfe, b'z', 0x00, 0x7f],
        b"?#/;:@[]{}|\\^`'\"<>".to_vec(),
        b"eyJhbGciOiJIUzI1NiJ9.eyJub25jZSI6IjEifQ.sig-_~".to_vec(),
        vec![b'x'; 4000],
    ];

    for state in &awkward {
        let query = query_with_state_bytes(&emulator, state);

        let response = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;

        assert_eq!(response.status(), 302, "state {state:?}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(
            raw_query_param(&location, "state").as_deref(),
            Some(state.as_slice()),
            "{location}"
        );
    }
}

#[tokio::test]
async fn state_round_trips_on_cancel_too() {
    let emulator = spawn_emulator().await;
    let state = [b'&', b'=', 0xff, b'+', b' ', b'%'];
    let query = query_with_state_bytes(&emulator, &state);

    let response = consent_flow(&emulator, &emulator.contoso(), &query, "cancel", None).await;

    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        raw_query_param(&location, "state").as_deref(),
        Some(&state[..])
    );
}

#[tokio::test]
async fn accept_via_organizations_consents_the_chosen_tenant() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("pick"));

    let response = consent_flow(&emulator, "organizations", &query, "accept", Some(FABRIKAM)).await;

    assert_eq!(response.status(), 302);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "tenant"), Some(FABRIKAM));
    assert_eq!(param(&params, "state"), Some("pick"));
    assert!(is_consented(&emulator, FABRIKAM).await);
    assert!(!is_consented(&emulator, &emulator.contoso()).await);
}

#[tokio::test]
async fn accept_via_common_takes_a_domain_as_the_choice() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(None);

    let response = consent_flow(&emulator, "common", &query, "accept", Some("fabrikam.com")).await;

    assert_eq!(response.status(), 302);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "tenant"), Some(FABRIKAM));
    assert!(is_consented(&emulator, FABRIKAM).await);
}

#[tokio::test]
async fn cancel_redirects_with_access_denied_and_consents_nothing() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("declined-state"));

    let response = consent_flow(&emulator, &emulator.contoso(), &query, "cancel", None).await;

    assert_eq!(response.status(), 302);
    let (location, params) = location_params(&response);
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?")),
        "{location}"
    );
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert!(
        param(&params, "error_description").is_some_and(|d| d.starts_with("AADSTS65004:")),
        "{location}"
    );
    assert_eq!(param(&params, "admin_consent"), Some("True"));
    assert_eq!(param(&params, "state"), Some("declined-state"));
    assert_eq!(param(&params, "tenant"), None);
    assert!(!is_consented(&emulator, &emulator.contoso()).await);
    crate::helpers::assert_sts_error(
        emulator.token_v2(&emulator.contoso(), &[]).await,
        400,
        "unauthorized_client",
        700016,
    )
    .await;
}

#[tokio::test]
async fn cancel_via_organizations_needs_no_tenant_choice() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    let response = consent_flow(&emulator, "organizations", &query, "cancel", None).await;

    assert_eq!(response.status(), 302);
    let (_, params) = location_params(&response);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "tenant"), None);
}

#[tokio::test]
async fn no_state_means_no_state_in_the_redirect() {
    let emulator = spawn_emulator().await;
    let without = emulator.consent_query(None);
    let empty = format!("{without}&state=");

    for query in [without, empty] {
        let accepted = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;
        let cancelled = consent_flow(&emulator, &emulator.contoso(), &query, "cancel", None).await;

        for response in [accepted, cancelled] {
            assert_eq!(response.status(), 302);
            let (location, params) = location_params(&response);
            assert_eq!(param(&params, "state"), None, "{location}");
            assert_eq!(param(&params, "admin_consent"), Some("True"));
        }
    }
}

#[tokio::test]
async fn second_registered_redirect_uri_is_used_as_given() {
    let emulator = spawn_emulator().await;
    let other = "http://127.0.0.1:8080/consent/callback";
    let query = format!(
        "client_id={}&redirect_uri={}&state=x",
        emulator.client_id,
        encode_bytes(other.as_bytes())
    );

    let response = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;

    assert_eq!(response.status(), 302);
    let (location, _) = location_params(&response);
    assert!(location.starts_with(&format!("{other}?")), "{location}");
}

#[tokio::test]
async fn redirect_uri_with_a_query_keeps_it() {
    let registered = "https://app.example.com/consent/callback?from=entra";
    let emulator = spawn_emulator_with(|cfg| cfg.redirect_uris = vec![registered.to_owned()]).await;
    let query = format!(
        "client_id={}&redirect_uri={}&state=x",
        emulator.client_id,
        encode_bytes(registered.as_bytes())
    );

    let response = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;

    assert_eq!(response.status(), 302);
    let (location, params) = location_params(&response);
    assert!(
        location.starts_with(&format!("{registered}&")),
        "{location}"
    );
    assert_eq!(param(&params, "from"), Some("entra"));
    assert_eq!(param(&params, "tenant"), Some(emulator.contoso().as_str()));
}

#[tokio::test]
async fn accepting_twice_keeps_roles_and_still_redirects() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("again"));
    let first = consent_flow(&emulator, &emulator.contoso(), &query, "accept", None).await;
    assert_eq!(first.status(), 302);
    emulator
        .set_roles(&emulator.contoso(), &["Mail.Read"])
        .await;
    let page = page_html(emulator.consent_page(&emulator.contoso(), &query).await).await;
    assert!(page.contains("already connected"), "{page}");

    let second = submit(&emulator, &page, "accept", None).await;

    assert_eq!(second.status(), 302);
    let (_, params) = location_params(&second);
    assert_eq!(param(&params, "tenant"), Some(emulator.contoso().as_str()));
    assert_eq!(param(&params, "state"), Some("again"));
    let tenant = emulator.tenant(&emulator.contoso()).await;
    assert_eq!(
        roles(&tenant),
        ["Mail.Read", "Organization.Read.All", "User.Read.All"]
    );
}

#[tokio::test]
async fn unknown_client_id_is_an_error_page_700016() {
    let emulator = spawn_emulator().await;
    let query = format!(
        "client_id={}&redirect_uri={}&state=s",
        uuid::Uuid::new_v4(),
        encode_bytes(REDIRECT_URI.as_bytes())
    );

    for tenant in [emulator.contoso(), "organizations".to_owned()] {
        let response = emulator.consent_page(&tenant, &query).await;

        assert_error_page(response, 700016).await;
    }
}

#[tokio::test]
async fn malformed_client_id_is_an_error_page_700038() {
    let emulator = spawn_emulator().await;
    let query = format!(
        "client_id=my-app&redirect_uri={}",
        encode_bytes(REDIRECT_URI.as_bytes())
    );

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    assert_error_page(response, 700038).await;
}

#[tokio::test]
async fn missing_client_id_is_an_error_page_900144() {
    let emulator = spawn_emulator().await;
    let query = format!(
        "redirect_uri={}&state=s",
        encode_bytes(REDIRECT_URI.as_bytes())
    );

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    assert_error_page(response, 900144).await;
}

#[tokio::test]
async fn unregistered_redirect_uri_is_an_error_page_50011() {
    let emulator = spawn_emulator().await;

    for redirect_uri in [
        "https://evil.example.com/consent/callback",
        "http://localhost:8080/consent/callback/",
        "http://localhost:8081/consent/callback",
        "https://localhost:8080/consent/callback",
        "http://localhost:8080/consent/callback?x=1",
        "http://localhost:8080/consent/Callback",
    ] {
        let query = format!(
            "client_id={}&redirect_uri={}&state=s",
            emulator.client_id,
            encode_bytes(redirect_uri.as_bytes())
        );

        let response = emulator.consent_page(&emulator.contoso(), &query).await;

        assert_error_page(response, 50011).await;
    }
}

#[tokio::test]
async fn missing_redirect_uri_is_an_error_page_900144() {
    let emulator = spawn_emulator().await;
    let query = format!("client_id={}&state=s", emulator.client_id);

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    assert_error_page(response, 900144).await;
}

#[tokio::test]
async fn unknown_tenant_is_an_error_page_90002() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    for tenant in [
        uuid::Uuid::new_v4().to_string(),
        "nobody.onmicrosoft.com".to_owned(),
        "consumers".to_owned(),
    ] {
        let response = emulator.consent_page(&tenant, &query).await;

        assert_error_page(response, 90002).await;
    }
}

#[tokio::test]
async fn malformed_tenant_is_an_error_page_900023() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    let response = emulator.consent_page("not_a_tenant!", &query).await;

    assert_error_page(response, 900023).await;
}

#[tokio::test]
async fn repeated_parameter_is_an_error_page_9000411() {
    let emulator = spawn_emulator().await;
    let base = emulator.consent_query(Some("one"));

    for query in [
        format!("{base}&state=two"),
        format!("{base}&client_id={}", emulator.client_id),
    ] {
        let response = emulator.consent_page(&emulator.contoso(), &query).await;

        assert_error_page(response, 9000411).await;
    }
}

#[tokio::test]
async fn query_over_8_kib_is_an_error_page_90015() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some(&"s".repeat(8 * 1024)));

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    assert_error_page(response, 90015).await;
}

#[tokio::test]
async fn forged_request_with_an_unregistered_redirect_uri_is_never_redirected() {
    let emulator = spawn_emulator().await;
    let forged = format!(
        "client_id={}&redirect_uri={}&state=s",
        emulator.client_id,
        encode_bytes(b"https://evil.example.com/steal")
    );

    let response = emulator
        .consent_decision(
            &emulator.contoso(),
            &[("request", &forged), ("decision", "accept")],
        )
        .await;

    assert_error_page(response, 50011).await;
    assert!(!is_consented(&emulator, &emulator.contoso()).await);
}

#[tokio::test]
async fn forged_cancel_with_an_unregistered_redirect_uri_is_never_redirected() {
    let emulator = spawn_emulator().await;
    let forged = format!(
        "client_id={}&redirect_uri={}",
        emulator.client_id,
        encode_bytes(b"https://evil.example.com/steal")
    );

    let response = emulator
        .consent_decision(
            "organizations",
            &[("request", &forged), ("decision", "cancel")],
        )
        .await;

    assert_error_page(response, 50011).await;
}

#[tokio::test]
async fn post_without_the_request_field_is_an_error_page() {
    let emulator = spawn_emulator().await;

    let response = emulator
        .consent_decision(&emulator.contoso(), &[("decision", "accept")])
        .await;

    assert_error_page(response, 900144).await;
    assert!(!is_consented(&emulator, &emulator.contoso()).await);
}

#[tokio::test]
async fn missing_or_unknown_decision_is_400() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    let missing = emulator
        .consent_decision(&emulator.contoso(), &[("request", &query)])
        .await;
    let unknown = emulator
        .consent_decision(
            &emulator.contoso(),
            &[("request", &query), ("decision", "maybe")],
        )
        .await;
    let upper = emulator
        .consent_decision(
            &emulator.contoso(),
            &[("request", &query), ("decision", "ACCEPT")],
        )
        .await;

    assert_error_page(missing, 900144).await;
    assert_error_page(unknown, 9002313).await;
    assert_error_page(upper, 9002313).await;
    assert!(!is_consented(&emulator, &emulator.contoso()).await);
}

#[tokio::test]
async fn organizations_accept_with_an_unknown_tenant_choice_is_400() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));
    let html = page_html(emulator.consent_page("organizations", &query).await).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    let by_guid = submit(&emulator, &html, "accept", Some(&unknown)).await;
    let by_domain = submit(&emulator, &html, "accept", Some("nobody.example.com")).await;
    let garbage = submit(&emulator, &html, "accept", Some("not a tenant")).await;
    let alias = submit(&emulator, &html, "accept", Some("organizations")).await;

    assert_error_page(by_guid, 90002).await;
    assert_error_page(by_domain, 90002).await;
    assert_error_page(garbage, 90002).await;
    assert_error_page(alias, 90002).await;
}

#[tokio::test]
async fn organizations_accept_without_a_tenant_choice_is_400() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));
    let html = page_html(emulator.consent_page("organizations", &query).await).await;

    let response = submit(&emulator, &html, "accept", None).await;

    assert_error_page(response, 900144).await;
}

#[tokio::test]
async fn repeated_form_field_is_an_error_page_9000411() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));

    let response = emulator
        .consent_decision(
            &emulator.contoso(),
            &[
                ("request", &query),
                ("decision", "cancel"),
                ("decision", "accept"),
            ],
        )
        .await;

    assert_error_page(response, 9000411).await;
    assert!(!is_consented(&emulator, &emulator.contoso()).await);
}

/// Sends a GET whose request target is written byte for byte (reqwest would escape it).
async fn raw_get(base: &str, target: &str) -> String {
    let authority = base.trim_start_matches("http://").to_owned();
    let target = target.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&authority).unwrap();
        write!(
            stream,
            "GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn raw_markup_in_the_query_is_never_reflected() {
    let emulator = spawn_emulator().await;
    let prefix = format!(
        "/{}/adminconsent?client_id={}&redirect_uri={}",
        emulator.contoso(),
        emulator.client_id,
        encode_bytes(REDIRECT_URI.as_bytes())
    );
    let angle_brackets = format!("{prefix}&state=\"><script>alert(1)</script>");
    let quotes = format!("{prefix}&state=x'onmouseover='alert(1)'`{{|}}");

    let refused = raw_get(&emulator.base, &angle_brackets).await;
    let shown = raw_get(&emulator.base, &quotes).await;

    assert!(!refused.contains("<script>"), "{refused}");
    assert!(refused.starts_with("HTTP/1.1 4"), "{refused}");
    assert!(shown.starts_with("HTTP/1.1 200"), "{shown}");
    let (_, html) = shown.split_once("\r\n\r\n").unwrap();
    assert!(!html.contains("x'onmouseover"), "{html}");
    let query = quotes.split_once('?').unwrap().1;
    assert_eq!(hidden_field(html, "request").as_deref(), Some(query));
}

#[tokio::test]
async fn percent_encoded_markup_in_state_is_not_reflected() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("\"><script>alert(1)</script>"));

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    let html = page_html(response).await;
    assert!(!html.contains("<script>"));
}

#[tokio::test]
async fn tenant_and_app_names_with_markup_are_escaped() {
    let emulator = spawn_emulator_with(|cfg| cfg.app_name = "<b>app</b>".to_owned()).await;
    let (status, created) = emulator
        .control(
            reqwest::Method::POST,
            "/tenants",
            Some(serde_json::json!({
                "display_name": "\"><script>alert(1)</script>",
                "domain": "markup",
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let query = emulator.consent_query(Some("s"));

    let for_tenant = page_html(emulator.consent_page(&id, &query).await).await;
    let picker = page_html(emulator.consent_page("organizations", &query).await).await;

    for html in [&for_tenant, &picker] {
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>app</b>"), "{html}");
        assert!(html_unescape(html).contains("\"><script>alert(1)</script>"));
    }
}

#[tokio::test]
async fn error_page_escapes_what_it_echoes() {
    let emulator = spawn_emulator().await;
    let query = format!(
        "client_id={}&redirect_uri={}",
        emulator.client_id,
        encode_bytes(b"https://x.example.com/\"><script>alert(1)</script>")
    );

    let response = emulator.consent_page(&emulator.contoso(), &query).await;

    let html = assert_error_page(response, 50011).await;
    assert!(!html.contains("<script>"), "{html}");
}

/// The `<option value="...">` ids of the organisation picker, in page order.
fn picker_options(html: &str) -> Vec<String> {
    html.split(r#"<option value=""#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').expect("a closing quote")].to_owned())
        .collect()
}

#[tokio::test]
async fn the_picker_lists_every_tenant_up_to_200_and_none_from_201() {
    let emulator = spawn_emulator().await;
    let query = emulator.consent_query(Some("s"));
    let (_, seeded) = emulator
        .control(reqwest::Method::GET, "/tenants", None)
        .await;
    let seeded = seeded.as_array().expect("an array").len();
    let (status, created) = emulator
        .control(
            reqwest::Method::POST,
            "/tenants",
            Some(serde_json::json!({"count": 200 - seeded, "users": 1})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (_, all) = emulator
        .control(reqwest::Method::GET, "/tenants", None)
        .await;
    let ids: Vec<String> = all
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids.len(), 200);

    for alias in ["organizations", "common"] {
        let html = page_html(emulator.consent_page(alias, &query).await).await;
        assert!(html.contains("<select"), "{alias}: a picker at 200");
        assert_eq!(
            picker_options(&html),
            ids,
            "{alias}: every tenant, in creation order"
        );
    }

    let (status, _) = emulator
        .control(
            reqwest::Method::POST,
            "/tenants",
            Some(serde_json::json!({})),
        )
        .await;
    assert_eq!(status, 201);
    for alias in ["organizations", "common"] {
        let html = page_html(emulator.consent_page(alias, &query).await).await;
        assert!(!html.contains("<select"), "{alias}: no picker at 201");
        assert!(picker_options(&html).is_empty(), "{alias}");
        assert!(
            html.contains(r#"<input id="tenant" name="tenant""#),
            "{alias}: a text field instead"
        );
        // The text field works as the picker did.
        let response = submit(&emulator, &html, "accept", Some(&ids[199])).await;
        assert_eq!(response.status(), 302);
    }
    assert_eq!(emulator.tenant(&ids[199]).await["consented"], true);
}

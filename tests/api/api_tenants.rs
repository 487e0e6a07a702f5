//! One tenant through the JSON API: `GET /api/v1/tenants/{id}` with its claims, its events
//! by cursor, `POST .../verify` and `POST .../token`; and the list's `search` and
//! `updated_since`.

use serde_json::Value;

use crate::api_keys::{api_get, assert_problem, create_on_dashboard, guid, insert_tenant, url};
use crate::app_helpers::{TestApp, spawn_app, ts};
use crate::helpers::claims;

async fn api_post(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(url(app, path))
        .bearer_auth(key)
        .send()
        .await
        .expect("POST")
}

async fn json(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(actual, status, "{body}");
    body
}

#[tokio::test]
async fn a_tenant_is_the_list_entry_plus_its_claims_and_unknown_ids_get_404() {
    // Arrange: contoso onboarded, then a second sign-up naming it after verification.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let stranger = app.browser();
    let to_microsoft = stranger
        .signup(&[
            ("organisation_name", "Not Contoso"),
            ("contact_email", "someone@example.com"),
        ])
        .await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    assert_eq!(stranger.get(&callback).await.status(), 303);
    // The callback forced an early check: let it finish, so that it cannot change the
    // tenant between the two reads below.
    app.poll("the forced check", 15, || async {
        let now = ts(time::OffsetDateTime::now_utc());
        app.tenant(&contoso).await.filter(|t| {
            t.next_verify_at
                .as_deref()
                .is_some_and(|at| at > now.as_str())
        })
    })
    .await;
    insert_tenant(
        &app,
        &guid(3),
        "pending",
        &ts(time::OffsetDateTime::now_utc()),
        "[]",
    )
    .await;

    // Act
    let list = json(api_get(&app, "/api/v1/tenants", Some(&key)).await, 200).await;
    let one = json(
        api_get(&app, &format!("/api/v1/tenants/{contoso}"), Some(&key)).await,
        200,
    )
    .await;
    let unclaimed = json(
        api_get(&app, &format!("/api/v1/tenants/{}", guid(3)), Some(&key)).await,
        200,
    )
    .await;
    let unknown = api_get(&app, &format!("/api/v1/tenants/{}", guid(9)), Some(&key)).await;
    let not_a_guid = api_get(&app, "/api/v1/tenants/contoso", Some(&key)).await;

    // Assert: the list's fields, unchanged, and the claims newest first.
    let mut without_claims = one.clone();
    let claims_of = without_claims
        .as_object_mut()
        .expect("an object")
        .remove("claims")
        .expect("claims");
    assert_eq!(without_claims, list["data"][0], "{one}");
    let claims_of = claims_of.as_array().expect("an array").clone();
    assert_eq!(claims_of.len(), 2, "{one}");
    assert_eq!(claims_of[0]["organisation_name"], "Not Contoso");
    assert_eq!(claims_of[0]["contact_email"], "someone@example.com");
    assert_eq!(claims_of[0]["confirming"], false, "after verification");
    assert_eq!(claims_of[1]["confirming"], true, "the onboarding's own");
    for claim in &claims_of {
        assert!(claim["signed_up_at"].is_string() && claim["called_back_at"].is_string());
        assert!(claim.get("client_addr").is_none());
    }
    assert_eq!(unclaimed["claims"], serde_json::json!([]));
    assert_eq!(unclaimed["status"], "pending");
    assert!(assert_problem(unknown, 404).await.contains("no tenant"));
    assert!(assert_problem(not_a_guid, 404).await.contains("no tenant"));
    let under_scoped = create_on_dashboard(&operator, "tokens", &["tokens:issue"])
        .await
        .0;
    let refused = api_get(
        &app,
        &format!("/api/v1/tenants/{contoso}"),
        Some(&under_scoped),
    )
    .await;
    assert_problem(refused, 403).await;
}

#[tokio::test]
async fn events_page_newest_first_by_cursor() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let mut expected = app.tenant_event_kinds(&contoso).await;
    expected.reverse();
    assert!(expected.len() >= 3, "{expected:?}");

    // Act: pages of two.
    let mut seen = Vec::new();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => format!("/api/v1/tenants/{contoso}/events?limit=2"),
            Some(c) => format!("/api/v1/tenants/{contoso}/events?limit=2&cursor={c}"),
        };
        let page = json(api_get(&app, &path, Some(&key)).await, 200).await;
        for event in page["data"].as_array().expect("data") {
            seen.push(event["kind"].as_str().expect("kind").to_owned());
            ids.push(event["id"].as_str().expect("id").to_owned());
            assert!(event["detail"].is_string() && event["created_at"].is_string());
        }
        if cursor.is_none() {
            // An event written while the client pages is newer than every later page.
            let event = consentry::store::NewEvent {
                tenant_id: consentry::domain::TenantId::parse(&contoso),
                kind: consentry::store::EventKind::VerifyRequested,
                detail: "meanwhile".to_owned(),
                request_id: None,
            };
            app.store
                .record_event(&event, time::OffsetDateTime::now_utc())
                .await
                .expect("event");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    // Assert: every event once, none of them the one written meanwhile.
    assert_eq!(seen, expected);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(ids, sorted, "newest (largest UUIDv7) first");
    for (query, says) in [
        ("cursor=nonsense", "cursor"),
        ("cursor=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90", "cursor"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("since=yesterday", "since"),
    ] {
        let response = api_get(
            &app,
            &format!("/api/v1/tenants/{contoso}/events?{query}"),
            Some(&key),
        )
        .await;
        let detail = assert_problem(response, 400).await;
        assert!(detail.contains(says), "{query}: {detail}");
    }
    let unknown = api_get(
        &app,
        &format!("/api/v1/tenants/{}/events", guid(9)),
        Some(&key),
    )
    .await;
    assert_problem(unknown, 404).await;
}

#[tokio::test]
async fn verify_runs_the_dashboard_check_and_names_the_key() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "sync", &["tenants:read"]).await;
    let (tokens_only, _) = create_on_dashboard(&operator, "tokens", &["tokens:issue"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    app.emulator.revoke(&contoso).await;

    // Act
    let under_scoped = api_post(
        &app,
        &format!("/api/v1/tenants/{contoso}/verify"),
        &tokens_only,
    )
    .await;
    let accepted = api_post(&app, &format!("/api/v1/tenants/{contoso}/verify"), &key).await;
    let no_cache = accepted.headers().get("cache-control").cloned();
    let answer = json(accepted, 202).await;
    let after = app
        .poll("the requested verification", 30, || async {
            app.tenant(&contoso).await.filter(|t| t.status != "active")
        })
        .await;

    // Assert
    assert_problem(under_scoped, 403).await;
    assert_eq!(answer["id"], contoso.as_str());
    assert!(answer["status"].is_string() && answer["granted_roles"].is_array());
    assert_eq!(
        no_cache.as_ref().and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert_eq!(after.status, "revoked");
    let id = consentry::domain::TenantId::parse(&contoso).expect("guid");
    let events = app.store.events_for(id, 100).await.expect("events");
    let requested = events
        .iter()
        .find(|e| e.kind == "verify_requested")
        .expect("a verify_requested event");
    assert!(requested.detail.contains("sync"), "{}", requested.detail);
    assert!(
        requested.detail.contains(&key[..17]),
        "{}",
        requested.detail
    );
    assert!(!requested.detail.contains(&key[17..]), "never the key");
    let unknown = api_post(&app, &format!("/api/v1/tenants/{}/verify", guid(9)), &key).await;
    assert_problem(unknown, 404).await;
}

#[tokio::test]
async fn a_token_for_an_active_tenant_is_an_event_and_stored_nowhere() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "mailer", &["tokens:issue"]).await;
    let (reader, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let path = format!("/api/v1/tenants/{contoso}/token");

    // Act
    let first = api_post(&app, &path, &key).await;
    let cache_control = first.headers().get("cache-control").cloned();
    let first = json(first, 200).await;
    let second = json(api_post(&app, &path, &key).await, 200).await;
    let under_scoped = api_post(&app, &path, &reader).await;
    let unknown = api_post(&app, &format!("/api/v1/tenants/{}/token", guid(9)), &key).await;

    // Assert
    assert_eq!(
        cache_control.as_ref().and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let token = first["access_token"].as_str().expect("a token").to_owned();
    assert_eq!(claims(&token)["tid"], contoso.as_str());
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["tenant_id"], contoso.as_str());
    assert_eq!(first["missing_permissions"], serde_json::json!([]));
    let expires_at = first["expires_at"].as_str().expect("expires_at");
    let expires_at =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
    assert!(expires_at > time::OffsetDateTime::now_utc());
    assert_eq!(
        second["access_token"],
        token.as_str(),
        "served from the cache"
    );
    let detail = assert_problem(under_scoped, 403).await;
    assert!(detail.contains("tokens:issue"), "{detail}");
    assert_problem(unknown, 404).await;

    let db = app.db().await;
    let issued: Vec<String> = sqlx::query_scalar(
        "select detail from tenant_event where kind = 'token_issued' and tenant_id = $1",
    )
    .bind(&contoso)
    .fetch_all(&db)
    .await
    .expect("events");
    let details: Vec<String> = sqlx::query_scalar("select detail from tenant_event")
        .fetch_all(&db)
        .await
        .expect("events");
    db.close().await;
    assert_eq!(issued.len(), 2, "one event per token handed out");
    assert!(
        issued[0].contains("mailer") && issued[0].contains(&key[..17]),
        "{issued:?}"
    );
    assert!(!issued[0].contains(&key[17..]), "never the key");
    assert!(
        details.iter().all(|d| !d.contains(&token)),
        "the token is stored nowhere"
    );
}

#[tokio::test]
async fn no_token_for_a_revoked_tenant_but_a_409_that_says_why() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "both", &["tenants:read", "tokens:issue"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    app.emulator.revoke(&contoso).await;
    let verify = api_post(&app, &format!("/api/v1/tenants/{contoso}/verify"), &key).await;
    assert_eq!(verify.status(), 202);
    app.poll("the tenant to be revoked", 30, || async {
        app.tenant(&contoso).await.filter(|t| t.status == "revoked")
    })
    .await;
    insert_tenant(
        &app,
        &guid(4),
        "pending",
        &ts(time::OffsetDateTime::now_utc()),
        "[]",
    )
    .await;

    // Act
    let revoked = api_post(&app, &format!("/api/v1/tenants/{contoso}/token"), &key).await;
    let pending = api_post(&app, &format!("/api/v1/tenants/{}/token", guid(4)), &key).await;

    // Assert
    let detail = assert_problem(revoked, 409).await;
    assert!(
        detail.contains("revoked") && detail.contains("AADSTS700016"),
        "{detail}"
    );
    let detail = assert_problem(pending, 409).await;
    assert!(detail.contains("not verified yet"), "{detail}");
    for (n, status, says) in [
        (5, "gone", "no longer knows"),
        (6, "failed", "never confirmed"),
        (7, "failing", "failing"),
    ] {
        let at = ts(time::OffsetDateTime::now_utc());
        insert_tenant(&app, &guid(n), status, &at, "[]").await;
        let refused = api_post(&app, &format!("/api/v1/tenants/{}/token", guid(n)), &key).await;
        let detail = assert_problem(refused, 409).await;
        assert!(detail.contains(says), "{status}: {detail}");
    }
    assert!(
        !app.tenant_event_kinds(&contoso)
            .await
            .contains(&"token_issued".to_owned())
    );
}

#[tokio::test]
async fn requested_checks_are_spaced_per_tenant() {
    // Arrange: a read-only key, perhaps leaked, asks again and again.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "sync", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    let path = format!("/api/v1/tenants/{contoso}/verify");

    // Act
    let first = api_post(&app, &path, &key).await.status().as_u16();
    let second = api_post(&app, &path, &key).await.status().as_u16();
    let third = api_post(&app, &path, &key).await;

    // Assert: a burst of two, then one a minute, each a check of Microsoft spared.
    assert_eq!((first, second), (202, 202));
    let wait: u64 = third
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    assert_problem(third, 429).await;
    let other = api_post(&app, &format!("/api/v1/tenants/{}/verify", guid(9)), &key).await;
    assert_problem(other, 404).await;
}

async fn users_page(app: &TestApp, key: &str, tenant: &str, query: &str) -> reqwest::Response {
    api_get(
        app,
        &format!("/api/v1/tenants/{tenant}/users?{query}"),
        Some(key),
    )
    .await
}

#[tokio::test]
async fn users_page_through_graph_by_cursor_with_the_fields_chosen() {
    // Arrange: contoso has 36 users in the emulator.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "directory", &["tenants:read"]).await;
    let (tokens_only, _) = create_on_dashboard(&operator, "tokens", &["tokens:issue"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");

    // Act: pages of ten, only two fields.
    let mut pages = 0;
    let mut ids = Vec::new();
    let mut query = "limit=10&fields=id,displayName".to_owned();
    loop {
        let page = json(users_page(&app, &key, &contoso, &query).await, 200).await;
        pages += 1;
        let users = page["data"].as_array().expect("data");
        assert!(users.len() <= 10, "{page}");
        for user in users {
            let mut keys: Vec<&str> = user
                .as_object()
                .expect("a user")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(keys, ["displayName", "id"], "{user}");
            ids.push(user["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => query = format!("cursor={next}"),
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }
    let all = json(users_page(&app, &key, &contoso, "").await, 200).await;

    // Assert: four pages, every user once, and without fields Graph's default properties.
    assert_eq!(pages, 4);
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 36);
    assert_eq!(unique.len(), 36, "no duplicates");
    let everyone = all["data"].as_array().expect("data");
    assert_eq!(everyone.len(), 36);
    assert_eq!(all["next_cursor"], Value::Null);
    assert!(everyone.iter().all(|u| u["userPrincipalName"].is_string()
        && unique.contains(&u["id"].as_str().expect("id").to_owned())));
    let requests = app.emulator.requests().await;
    assert_eq!(
        requests["tenants"][contoso.as_str()]["graph_users"],
        5,
        "one Graph page per API page: {requests}"
    );
    let refused = users_page(&app, &tokens_only, &contoso, "").await;
    let detail = assert_problem(refused, 403).await;
    assert!(detail.contains("tenants:read"), "{detail}");
}

#[tokio::test]
async fn a_users_cursor_never_leads_anywhere_but_graph_users() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "directory", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let first = json(users_page(&app, &key, &contoso, "limit=5").await, 200).await;
    let next = first["next_cursor"].as_str().expect("a next page");
    let text = String::from_utf8(
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, next)
            .expect("base64url"),
    )
    .expect("utf-8");
    let (for_tenant, link) = text.split_once('\n').expect("tenant and link");
    assert_eq!(for_tenant, contoso);
    let (_, rest) = link.split_once("/v1.0/users").expect("a users link");
    let before = app.emulator.requests().await;

    // Act and assert: each a 400 problem, and Graph asked nothing.
    let encode =
        |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    for (query, says) in [
        (
            format!(
                "cursor={}",
                encode(&format!("{contoso}\nhttps://evil.example/v1.0/users{rest}"))
            ),
            "cursor",
        ),
        (
            format!(
                "cursor={}",
                encode(&text.replace("/v1.0/users", "/v1.0/organization"))
            ),
            "cursor",
        ),
        (format!("cursor={}", encode(link)), "cursor"),
        ("cursor=nonsense".to_owned(), "cursor"),
        (format!("cursor={next}&limit=5"), "cursor"),
        ("limit=0".to_owned(), "limit"),
        ("limit=1000".to_owned(), "limit"),
        ("fields=id,password".to_owned(), "fields"),
        ("top=5".to_owned(), "top"),
    ] {
        let response = users_page(&app, &key, &contoso, &query).await;
        let detail = assert_problem(response, 400).await;
        assert!(detail.contains(says), "{query}: {detail}");
    }
    // Another tenant's cursor.
    let at = ts(time::OffsetDateTime::now_utc());
    insert_tenant(&app, &guid(3), "active", &at, "[]").await;
    let elsewhere = users_page(&app, &key, &guid(3), &format!("cursor={next}")).await;
    assert!(assert_problem(elsewhere, 400).await.contains("cursor"));
    assert_eq!(app.emulator.requests().await["tenants"], before["tenants"]);
    let unknown = users_page(&app, &key, &guid(9), "").await;
    assert_problem(unknown, 404).await;
}

#[tokio::test]
async fn users_need_a_connected_tenant_that_granted_user_read_all() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "directory", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");

    // Act: throttled beyond what is waited in place; then revoked.
    let (status, body) = app
        .emulator
        .control(
            reqwest::Method::PUT,
            "/faults",
            Some(serde_json::json!({"throttle_next": 1, "retry_after_seconds": 120, "endpoints": ["graph"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let throttled = users_page(&app, &key, &contoso, "").await;
    let retry_after = throttled.headers().get("retry-after").cloned();
    app.emulator.revoke(&contoso).await;
    let verify = api_post(&app, &format!("/api/v1/tenants/{contoso}/verify"), &key).await;
    assert_eq!(verify.status(), 202);
    app.poll("the tenant to be revoked", 30, || async {
        app.tenant(&contoso).await.filter(|t| t.status == "revoked")
    })
    .await;
    let revoked = users_page(&app, &key, &contoso, "").await;

    // Assert
    assert_eq!(
        retry_after.as_ref().and_then(|v| v.to_str().ok()),
        Some("120")
    );
    assert_problem(throttled, 503).await;
    let detail = assert_problem(revoked, 409).await;
    assert!(detail.contains("revoked"), "{detail}");
}

#[tokio::test]
async fn users_of_a_tenant_without_user_read_all_are_a_409_naming_it() {
    // Arrange: the administrator withdrew User.Read.All after consenting.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "directory", &["tenants:read"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    app.emulator
        .set_roles(&contoso, &["Organization.Read.All"])
        .await;
    let verify = api_post(&app, &format!("/api/v1/tenants/{contoso}/verify"), &key).await;
    assert_eq!(verify.status(), 202);
    app.poll("the tenant to miss a permission", 30, || async {
        app.tenant(&contoso)
            .await
            .filter(|t| t.status == "missing_permissions")
    })
    .await;

    // Act
    let refused = users_page(&app, &key, &contoso, "").await;

    // Assert
    let detail = assert_problem(refused, 409).await;
    assert!(detail.contains("User.Read.All"), "{detail}");
}

/// The ids of one page of `GET /api/v1/tenants?{query}`, and its `next_cursor`.
async fn listed(app: &TestApp, key: &str, query: &str) -> (Vec<String>, Option<String>) {
    let page = json(
        api_get(app, &format!("/api/v1/tenants?{query}"), Some(key)).await,
        200,
    )
    .await;
    let ids = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    (ids, page["next_cursor"].as_str().map(str::to_owned))
}

/// Gives a tenant written by `insert_tenant` what a successful check would have read.
async fn name_tenant(app: &TestApp, id: &str, name: &str, domains: &[&str]) {
    let db = app.db().await;
    sqlx::query("update tenant set display_name = $1, verified_domains = $2 where id = $3")
        .bind(name)
        .bind(serde_json::to_string(domains).expect("json"))
        .bind(id)
        .execute(&db)
        .await
        .expect("update tenant");
    db.close().await;
}

#[tokio::test]
async fn the_list_searches_ids_names_and_domains_as_the_dashboard_does() {
    // Arrange: three tenants with names and domains, consenting a minute apart.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;
    let base = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    for (n, name, domains) in [
        (1, "Contoso Ltd", vec!["contoso.example"]),
        (
            2,
            "Fabrikam",
            vec!["fabrikam.example", "contoso-partners.example"],
        ),
        (3, "Northwind 100% Traders", vec!["northwind.example"]),
    ] {
        let at = ts(base + time::Duration::minutes(n.into()));
        insert_tenant(&app, &guid(n), "active", &at, "[]").await;
        name_tenant(&app, &guid(n), name, &domains).await;
    }

    // Act
    let by_name = listed(&app, &key, "search=FABRIKAM").await.0;
    let by_name_or_domain = listed(&app, &key, "search=contoso").await.0;
    let by_id = listed(&app, &key, &format!("search={}", &guid(3)[24..]))
        .await
        .0;
    let wildcard = listed(&app, &key, "search=%25").await.0;
    let underscore = listed(&app, &key, "search=_").await.0;
    let nothing = listed(&app, &key, "search=adatum").await.0;
    let blank = listed(&app, &key, "search=").await.0;
    let (first, cursor) = listed(&app, &key, "search=contoso&limit=1").await;
    let cursor = cursor.expect("a second page");
    let (second, last) = listed(
        &app,
        &key,
        &format!("search=contoso&limit=1&cursor={cursor}"),
    )
    .await;

    // Assert: case ignored; `%` and `_` are plain characters, not wildcards.
    assert_eq!(by_name, vec![guid(2)]);
    assert_eq!(by_name_or_domain, vec![guid(1), guid(2)]);
    assert_eq!(by_id, vec![guid(3)]);
    assert_eq!(wildcard, vec![guid(3)]);
    assert_eq!(underscore, Vec::<String>::new());
    assert_eq!(nothing, Vec::<String>::new());
    assert_eq!(
        blank,
        vec![guid(1), guid(2), guid(3)],
        "an empty search is no search"
    );
    assert_eq!((first, second, last), (vec![guid(1)], vec![guid(2)], None));
}

#[tokio::test]
async fn updated_since_lists_tenants_changed_at_or_after_it() {
    // Arrange: three tenants last changed a minute apart (`insert_tenant` writes
    // `updated_at` = `consented_at`).
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "sync", &["tenants:read"]).await;
    let base = time::macros::datetime!(2026-11-30 10:00:00.250 UTC);
    let at = |n: i64| base + time::Duration::minutes(n);
    for n in 0..3u32 {
        insert_tenant(&app, &guid(n + 1), "active", &ts(at(n.into())), "[]").await;
    }
    let encode = |t: &str| t.replace('+', "%2B");

    // Act
    let exactly = listed(&app, &key, &format!("updated_since={}", ts(at(1))))
        .await
        .0;
    let in_paris = listed(
        &app,
        &key,
        &encode("updated_since=2026-11-30T11:01:00.250+01:00"),
    )
    .await
    .0;
    let just_after = listed(&app, &key, "updated_since=2026-11-30T10:01:00.2505Z")
        .await
        .0;
    let later = listed(&app, &key, &format!("updated_since={}", ts(at(5))))
        .await
        .0;
    let (first, cursor) = listed(&app, &key, &format!("updated_since={}&limit=1", ts(at(1)))).await;
    let cursor = cursor.expect("a second page");
    let (second, last) = listed(
        &app,
        &key,
        &format!("updated_since={}&limit=1&cursor={cursor}", ts(at(1))),
    )
    .await;
    let one = json(
        api_get(&app, &format!("/api/v1/tenants/{}", guid(2)), Some(&key)).await,
        200,
    )
    .await;

    // Assert: at or after, to the millisecond; the watermark is in every tenant.
    assert_eq!(exactly, vec![guid(2), guid(3)]);
    assert_eq!(in_paris, vec![guid(2), guid(3)], "any offset");
    assert_eq!(just_after, vec![guid(3)], "half a millisecond later");
    assert_eq!(later, Vec::<String>::new());
    assert_eq!((first, second, last), (vec![guid(2)], vec![guid(3)], None));
    assert_eq!(one["updated_at"], ts(at(1)).as_str());
}

#[tokio::test]
async fn a_bad_updated_since_is_a_400_naming_it() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "sync", &["tenants:read"]).await;

    for bad in [
        "yesterday",
        "2026-11-30",
        "2026-11-30T10:00:00",
        "2026-13-01T00:00:00Z",
        "",
    ] {
        let response = api_get(
            &app,
            &format!("/api/v1/tenants?updated_since={bad}"),
            Some(&key),
        )
        .await;
        let detail = assert_problem(response, 400).await;
        assert!(detail.contains("updated_since"), "{bad}: {detail}");
    }
}

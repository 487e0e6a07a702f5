//! `POST /signup`: its CSRF defence, rate limit, input checks, and what happens when the
//! database cannot take the write.

use crate::app_helpers::{assert_error_page, random_token, set_cookie, spawn_app};

#[tokio::test]
async fn signup_needs_the_forms_csrf_token() {
    let app = spawn_app().await;
    let browser = app.browser();
    let token = browser.csrf_of("/").await;
    let cookieless = app.browser();

    let refused = vec![
        browser.post_form("/signup", &[]).await,
        browser
            .post_form("/signup", &[("organisation_name", "Contoso")])
            .await,
        browser.post_form("/signup", &[("csrf", "")]).await,
        browser
            .post_form("/signup", &[("csrf", &random_token())])
            .await,
        cookieless.post_form("/signup", &[("csrf", &token)]).await,
    ];

    for response in refused {
        assert!(set_cookie(&response, "consentry_binding").is_none());
        assert!(response.headers().get("location").is_none());
        let (_, html) = assert_error_page(response, 403).await;
        assert!(html.contains("did not come from this site"), "{html}");
    }
    assert_eq!(app.count_rows("consent_request").await, 0);
    assert_eq!(
        browser
            .post_form("/signup", &[("csrf", &token)])
            .await
            .status(),
        303,
        "the right token works"
    );
    assert_eq!(app.count_rows("consent_request").await, 1);
}

#[tokio::test]
async fn rapid_signups_from_one_client_are_limited_to_a_burst_of_five() {
    let app = spawn_app().await;
    let browser = app.browser();
    let csrf = browser.csrf_of("/").await;

    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..8 {
        let response = browser.post_form("/signup", &[("csrf", &csrf)]).await;
        statuses.push(response.status().as_u16());
        last = Some(response);
    }

    assert_eq!(statuses, [303, 303, 303, 303, 303, 429, 429, 429]);
    let last = last.expect("a response");
    assert!(last.headers().get("retry-after").is_some());
    let (_, html) = assert_error_page(last, 429).await;
    assert!(html.contains("Too many requests"), "{html}");
    assert_eq!(app.count_rows("consent_request").await, 5);
    // The limit is per client address: a fresh cookie jar from 127.0.0.1 does not get
    // around it.
    let other = app.browser();
    let other_csrf = other.csrf_of("/").await;
    assert_eq!(
        other
            .post_form("/signup", &[("csrf", &other_csrf)])
            .await
            .status(),
        429
    );
    assert_eq!(app.count_rows("consent_request").await, 5);
}

#[tokio::test]
async fn bad_signup_input_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let browser = app.browser();
    let csrf = browser.csrf_of("/").await;
    let long_name = "x".repeat(201);

    let invalid = [
        ("contact_email", "not-an-email"),
        ("tenant_domain", "../x"),
        ("organisation_name", long_name.as_str()),
        ("organisation_name", "Contoso\u{7}Ltd"),
    ];
    for (field, value) in invalid {
        let response = browser
            .post_form("/signup", &[("csrf", &csrf), (field, value)])
            .await;
        assert!(set_cookie(&response, "consentry_binding").is_none());
        let (_, html) = assert_error_page(response, 400).await;
        assert!(!html.contains(value), "the input is not echoed: {html}");
    }
    let repeated = [
        format!("csrf={csrf}&organisation_name=A&organisation_name=B"),
        format!("csrf={csrf}&csrf={csrf}"),
        format!("csrf={csrf}&tenant_domain=contoso.com&tenant_domain=fabrikam.com"),
    ];
    for body in repeated {
        let response = browser.post_raw("/signup", body.clone()).await;
        assert_error_page(response, 400).await;
    }

    assert_eq!(app.count_rows("consent_request").await, 0);
    assert_eq!(app.count_rows("tenant").await, 0);
    // A 200-character name is fine: the limit is exact.
    let exact = "y".repeat(200);
    let ok = browser
        .post_form("/signup", &[("csrf", &csrf), ("organisation_name", &exact)])
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(app.count_rows("consent_request").await, 1);
}

#[tokio::test]
async fn a_locked_database_gets_a_503_that_loses_nothing() {
    let app = spawn_app().await;
    let browser = app.browser();
    let db = app.db().await;
    let mut lock = db.acquire().await.expect("a connection");
    // SQLite: the file's write lock; PostgreSQL: the sign-ups' table, whole.
    let statement = if crate::app_helpers::on_postgres() {
        "begin; lock table consent_request in access exclusive mode"
    } else {
        "begin exclusive"
    };
    sqlx::raw_sql(statement)
        .execute(&mut *lock)
        .await
        .expect("the write lock");

    // Waits out the app's 5 s busy timeout (PostgreSQL's lock timeout).
    let refused = browser.signup_response(&[]).await;
    let retry_after = refused
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let binding = set_cookie(&refused, "consentry_binding");
    let (_, html) = assert_error_page(refused, 503).await;
    sqlx::query("rollback")
        .execute(&mut *lock)
        .await
        .expect("released");
    drop(lock);
    db.close().await;

    assert!(
        retry_after.is_some_and(|s| s.parse::<u64>().is_ok()),
        "Retry-After in seconds"
    );
    assert!(binding.is_none(), "no half-made sign-up");
    assert!(html.contains("Nothing was lost"), "{html}");
    assert_eq!(app.count_rows("consent_request").await, 0);
    let again = browser.signup_response(&[]).await;
    assert_eq!(again.status(), 303, "works once the database is free");
    assert_eq!(app.count_rows("consent_request").await, 1);
}

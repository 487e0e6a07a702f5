//! The operator sign-in under a flood: attempts are counted before their password is hashed
//! (so concurrency buys an attacker nothing), the 429 says the real wait, and the right
//! password is never charged.

use std::time::Instant;

use futures_util::future::join_all;

use crate::app_helpers::{
    Browser, OPERATOR, OPERATOR_PASSWORD, assert_error_page, set_cookie, spawn_app,
};

async fn post_login(
    browser: &Browser,
    csrf: &str,
    name: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post_form(
            "/admin/login",
            &[("csrf", csrf), ("name", name), ("password", password)],
        )
        .await
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("whole seconds")
}

#[tokio::test]
async fn sixty_concurrent_wrong_passwords_from_one_address_are_evaluated_at_most_five_times() {
    let app = spawn_app().await;
    let attacker = app.browser();
    let csrf = attacker.csrf_of("/admin/login").await;
    // Half guess the operator's password, half spread over names (one address either way).
    let names: Vec<String> = (0..60)
        .map(|i| {
            if i % 2 == 0 {
                OPERATOR.to_owned()
            } else {
                format!("guess-{i}")
            }
        })
        .collect();
    let started = Instant::now();

    let answers = join_all(names.iter().enumerate().map(|(i, name)| {
        let (attacker, csrf) = (&attacker, &csrf);
        async move { post_login(attacker, csrf, name, &format!("wrong password {i}")).await }
    }))
    .await;
    let right = post_login(&attacker, &csrf, OPERATOR, OPERATOR_PASSWORD).await;
    let elapsed = started.elapsed().as_secs_f64();

    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!((1..=5).contains(&evaluated), "{statuses:?}");
    assert_eq!(evaluated + refused, 60, "{statuses:?}");
    for response in answers.iter().filter(|r| r.status() == 429) {
        assert!(retry_after(response) >= 1);
    }
    // The budget is spent: even the right password waits, and is told for how long. The
    // five failures emptied the bucket after `started`, and one try refills in 60 s.
    let wait = retry_after(&right);
    assert!(set_cookie(&right, "consentry_session").is_none());
    assert!(wait <= 60, "{wait}");
    assert!(
        wait as f64 >= 60.0 - elapsed,
        "Retry-After {wait} s, but the next try is allowed 60 s after the first failure, {elapsed:.1} s ago"
    );
    let (_, html) = assert_error_page(right, 429).await;
    assert!(
        html.contains(&format!("Try again in {wait} seconds.")),
        "{html}"
    );
    assert_eq!(attacker.get("/admin").await.status(), 303, "not signed in");
}

#[tokio::test]
async fn the_right_password_is_not_counted_as_a_failed_attempt() {
    let app = spawn_app().await;
    let browser = app.browser();
    let csrf = browser.csrf_of("/admin/login").await;
    for attempt in 0..4 {
        let failed = post_login(&browser, &csrf, OPERATOR, "a wrong password").await;
        assert_eq!(failed.status(), 401, "failure {}", attempt + 1);
    }

    // Four of five failures are spent; three good sign-ins in a row cost nothing.
    for login in 0..3 {
        let ok = post_login(&browser, &csrf, OPERATOR, OPERATOR_PASSWORD).await;
        assert_eq!(ok.status(), 303, "good sign-in {}", login + 1);
    }
    let fifth_failure = post_login(&browser, &csrf, OPERATOR, "a wrong password").await;
    let then = post_login(&browser, &csrf, OPERATOR, OPERATOR_PASSWORD).await;

    assert_eq!(
        fifth_failure.status(),
        401,
        "the fifth failure is still allowed"
    );
    assert_eq!(then.status(), 429, "after five failures, a wait");
}

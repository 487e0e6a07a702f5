//! Several instances on one database, behind one public URL: any instance serves any step
//! of every flow. A sign-up, a callback, a session, its CSRF token, a sign-in with
//! Microsoft and the limits kept in the database are the database's, whichever instance
//! wrote them; the rate limits kept in memory are each instance's own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use consentry::store::{Role, SESSION_TTL};

use crate::api_keys::{assert_problem, create_on_dashboard};
use crate::app_helpers::{
    Browser, OPERATOR, OPERATOR_PASSWORD, TestApp, assert_error_page, callback_url, failed_logins,
    hidden, random_token, spawn_app, spawn_app_with,
};
use crate::callback::{assert_refused, refused_count};
use crate::operators::{add_operator, sign_in_as};

const CONTOSO_ADMIN: &str = "admin@contoso.onmicrosoft.com";
const CONTOSO_MEMBER: &str = "adele.vance@contoso.com";

/// The path and query of `url`, to send to whichever instance: Microsoft sends browsers back
/// to the public URL, which the proxy may hand to any instance.
fn path_of(url: &str) -> String {
    let url = url::Url::parse(url).expect("absolute");
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// A loopback address of this module's own (any of 127.0.0.0/8 reaches the instances), so
/// its rate limits start full whatever other tests spend.
fn address(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 7, last))
}

async fn text(browser: &Browser, path: &str) -> String {
    let page = browser.get(path).await;
    assert_eq!(page.status(), 200, "{path}");
    page.text().await.expect("html")
}

/// The session's CSRF token, from a page `browser`'s instance renders.
async fn session_csrf(browser: &Browser) -> String {
    hidden(&text(browser, "/admin/account").await, "csrf")
}

/// How long a session ended elsewhere may still be honoured here, with a margin for a busy
/// machine: an instance trusts a session it has read for `SESSION_TTL`.
fn session_ttl_and_margin() -> u64 {
    SESSION_TTL.as_secs() + 2
}

/// Polls until `browser` is sent to the sign-in page by `/admin`; panics after `secs`.
async fn until_signed_out(app: &TestApp, browser: &Browser, secs: u64) {
    app.poll("the session refused", secs, || async {
        let page = browser.get("/admin").await;
        (page.status() == 303).then(|| {
            assert_eq!(page.headers()["location"], "/admin/login");
        })
    })
    .await;
}

async fn api_post(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn a_sign_up_started_on_one_instance_is_completed_on_another() {
    // Arrange
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let browser = a.browser();
    let contoso = a.emulator.contoso();

    // Act: the sign-up on A; Microsoft's redirect, through the proxy, reaches B.
    let to_microsoft = browser.signup(&[]).await;
    let callback = b
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    assert!(
        callback.starts_with(&a.base),
        "the public URL's: {callback}"
    );
    let back = browser.on(&b).get(&path_of(&callback)).await;

    // Assert: B took the state A stored, recorded the tenant and had it verified.
    assert_eq!(back.status(), 303, "{}", back.text().await.unwrap());
    let tenant = b.wait_for_outcome(&contoso, 15).await;
    assert_eq!(tenant.status, "active");
    assert!(tenant.verified_at.is_some());
    assert_eq!(
        a.count_rows("consent_request where consumed_at is not null")
            .await,
        1
    );
    assert_eq!(
        a.tenant_event_kinds(&contoso).await,
        [
            "consent_recorded",
            "verification_succeeded",
            "status_changed"
        ]
    );
    // The browser's status page says so on either instance.
    for app in [&a, &b] {
        let status = text(&browser.on(app), "/consent/status").await;
        assert!(status.contains("Contoso Ltd is connected"), "{status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_one_states_callbacks_sent_to_two_instances_at_once_exactly_one_proceeds() {
    // Arrange: one consent; its callback URL, sent four times to each instance at once
    // (a double click, a reload, a replay).
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let browser = a.browser();
    let contoso = a.emulator.contoso();
    let callback = path_of(&a.consent(&browser, &contoso).await);
    const EACH: usize = 4;

    // Act
    let sends = (0..2 * EACH).map(|i| {
        let here = browser.on(if i % 2 == 0 { &a } else { &b });
        let callback = callback.clone();
        tokio::spawn(async move { (i % 2, here.get(&callback).await) })
    });
    let mut answers = Vec::new();
    for send in sends {
        answers.push(send.await.expect("the task ends"));
    }

    // Assert: one 303; every other one the error page that says it was already used.
    let (accepted, refused): (Vec<_>, Vec<_>) =
        answers.into_iter().partition(|(_, r)| r.status() == 303);
    assert_eq!(accepted.len(), 1, "exactly one proceeds");
    let refused_on_b = refused.iter().filter(|(i, _)| *i == 1).count() as u64;
    for (_, response) in refused {
        let (_, html) = assert_error_page(response, 400).await;
        assert!(html.contains("already used"), "{html}");
    }
    assert_eq!(a.tenant_count().await, 1);
    let kinds = a.event_kinds().await;
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(count("consent_recorded"), 1, "{kinds:?}");
    // The first refusal is an event; the rest are counted where they were refused.
    assert_eq!(count("callback_rejected"), 1, "{kinds:?}");
    let replays_event = a
        .events()
        .await
        .into_iter()
        .find(|e| e.kind == "callback_rejected")
        .expect("the first refusal");
    assert!(
        replays_event.detail.contains("replayed_state"),
        "{replays_event:?}"
    );
    let (on_a, on_b) = (
        refused_count(&a, "replayed_state").await,
        refused_count(&b, "replayed_state").await,
    );
    assert_eq!(on_a + on_b, 2 * EACH as u64 - 2, "({on_a}, {on_b})");
    assert!(on_b == refused_on_b || on_b + 1 == refused_on_b, "{on_b}");
}

#[tokio::test]
async fn an_operator_session_made_on_one_instance_works_on_another() {
    // Arrange: Contoso connected; the operator signs in on A and opens a page there.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let contoso = a.emulator.contoso();
    assert_eq!(a.onboard(&a.browser(), &contoso).await.status, "active");
    let on_a = a.operator().await;
    let csrf = session_csrf(&on_a).await;
    let on_b = on_a.on(&b);

    // Act: B serves the dashboard, and takes the POSTs of A's page with A's token.
    let dashboard = on_b.get("/admin").await;
    let tenant_page = on_b.get(&format!("/admin/tenants/{contoso}")).await;
    let verify = on_b
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    let verify_location = verify.headers().get("location").cloned();
    let forged = on_b
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &random_token())],
        )
        .await;
    let sign_out = on_b.post_form("/admin/logout", &[("csrf", &csrf)]).await;

    // Assert
    assert_eq!(dashboard.status(), 200);
    let html = dashboard.text().await.expect("html");
    assert!(html.contains("Contoso Ltd"), "{html}");
    assert_eq!(tenant_page.status(), 200);
    assert_eq!(verify.status(), 303);
    assert_eq!(
        verify_location.expect("a location"),
        format!("/admin/tenants/{contoso}").as_str(),
        "the check was granted"
    );
    let asked: Vec<_> = a
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == "verify_requested")
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(asked[0].detail.contains(OPERATOR), "{asked:?}");
    assert_error_page(forged, 403).await;
    assert_eq!(sign_out.status(), 303);
    assert_eq!(a.count_rows("operator_session").await, 0, "signed out");
    assert_eq!(on_a.get("/admin").await.status(), 303, "on A too");
}

#[tokio::test]
async fn signing_out_on_one_instance_ends_the_session_on_another() {
    // Arrange: a session made on A, in use on B; a copy of its cookie kept (the browser's
    // own copy goes with the sign-out).
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let on_a = a.operator().await;
    let csrf = session_csrf(&on_a).await;
    assert_eq!(on_a.on(&b).get("/admin").await.status(), 200);
    let session = on_a
        .cookie("consentry_session", "/admin")
        .expect("a session cookie");
    let copy = b.browser();
    copy.plant_cookie("consentry_session", &session, "/admin");
    assert_eq!(copy.get("/admin").await.status(), 200, "the copy works");

    // Act
    let sign_out = on_a.post_form("/admin/logout", &[("csrf", &csrf)]).await;

    // Assert: B refuses the session once its read of it is older than SESSION_TTL, and
    // for good.
    assert_eq!(sign_out.status(), 303);
    assert_eq!(a.count_rows("operator_session").await, 0);
    until_signed_out(&b, &copy, session_ttl_and_margin()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(copy.get("/admin").await.status(), 303, "still refused");
    assert_eq!(
        copy.on(&a).get("/admin").await.status(),
        303,
        "refused on A"
    );
}

#[tokio::test]
async fn an_operator_disabled_on_one_instance_is_signed_out_on_another() {
    // Arrange: Bob signed in on B and using it; the owner on A.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let password = "bob's long password";
    add_operator(&a, "bob", Role::Operator, password).await;
    let bob = b.browser();
    assert_eq!(sign_in_as(&bob, "bob", password).await, 303);
    assert_eq!(bob.get("/admin").await.status(), 200);
    let owner = a.operator().await;
    let csrf = session_csrf(&owner).await;

    // Act
    let disabled = owner
        .post_form("/admin/operators/bob/disable", &[("csrf", &csrf)])
        .await;

    // Assert
    assert_eq!(disabled.status(), 303);
    until_signed_out(&b, &bob, session_ttl_and_margin()).await;
    assert_eq!(
        sign_in_as(&bob, "bob", password).await,
        401,
        "B lets a disabled operator in no more than A"
    );
    assert_eq!(
        a.count_rows("operator_session").await,
        1,
        "the owner's alone"
    );
}

#[tokio::test]
async fn a_sign_up_with_microsoft_started_on_one_instance_returns_to_another() {
    // Arrange
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let browser = a.browser();
    let contoso = a.emulator.contoso();

    // Act: "Sign in with Microsoft" on A; Microsoft's answer reaches B; the consent's
    // callback reaches A again.
    let csrf = browser.csrf_of("/").await;
    let start = browser
        .post_form("/signup/microsoft", &[("csrf", &csrf)])
        .await;
    assert_eq!(start.status(), 303, "off to Microsoft");
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    let answer = a
        .emulator
        .sign_in_through_pages(&browser.http, &authorize, CONTOSO_ADMIN)
        .await;
    assert!(
        answer.starts_with(&format!("{}/signup/signed-in?", a.base)),
        "{answer}"
    );
    let to_consent = browser.on(&b).get(&path_of(&answer)).await;
    let to_consent_status = to_consent.status();
    let adminconsent = to_consent
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let callback = a
        .emulator_decision(&adminconsent, "accept", Some(&contoso))
        .await;
    let recorded = browser.get(&path_of(&callback)).await;

    // Assert: B redeemed the code of A's sign-in (the state, PKCE verifier and nonce all
    // A's) and sent the administrator to their own tenant's consent.
    assert_eq!(to_consent_status, 303);
    assert!(
        adminconsent.contains(&format!("/{contoso}/adminconsent?")),
        "{adminconsent}"
    );
    assert_eq!(recorded.status(), 303);
    assert_eq!(a.wait_for_outcome(&contoso, 15).await.status, "active");
    let status = text(&browser.on(&b), "/consent/status").await;
    assert!(status.contains("Contoso Ltd is connected"), "{status}");
    assert!(
        status.contains("Contoso Ltd Administrator"),
        "the person B verified: {status}"
    );
}

#[tokio::test]
async fn an_operator_sign_in_with_microsoft_started_on_one_instance_returns_to_another() {
    // Arrange: operators sign in with Microsoft in Contoso (both instances' settings).
    let a = spawn_app_with(|raw, _| {
        raw.set(
            "CONSENTRY_OPERATOR_TENANT",
            consentry::emulator::CONTOSO.to_string(),
        );
    })
    .await;
    let b = a.another_instance().await;
    let browser = a.browser();

    // Act: "Sign in with Microsoft" on A's sign-in page; Microsoft's answer reaches B.
    let csrf = browser.csrf_of("/admin/login").await;
    let start = browser
        .post_form("/admin/login/microsoft", &[("csrf", &csrf)])
        .await;
    assert_eq!(start.status(), 303, "off to Microsoft");
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    let answer = a
        .emulator
        .sign_in_through_pages(&browser.http, &authorize, CONTOSO_MEMBER)
        .await;
    assert!(
        answer.starts_with(&format!("{}/admin/signed-in?", a.base)),
        "{answer}"
    );
    let landed = browser.on(&b).get(&path_of(&answer)).await;

    // Assert: a session, B's making, good on both.
    assert_eq!(landed.status(), 200);
    assert!(crate::app_helpers::set_cookie(&landed, "consentry_session").is_some());
    for app in [&a, &b] {
        let dashboard = text(&browser.on(app), "/admin").await;
        assert!(dashboard.contains(CONTOSO_MEMBER), "{dashboard}");
    }
    assert_eq!(
        a.count_rows("operator where role = 'viewer' and microsoft_oid is not null")
            .await,
        1
    );
}

#[tokio::test]
async fn a_stranger_sending_the_victims_callback_to_another_instance_is_refused() {
    // Arrange: the victim consents on A; the attacker, a browser of their own with a sign-up
    // of their own on B, has the victim's callback URL.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let (victim, attacker) = (a.browser(), b.browser());
    let contoso = a.emulator.contoso();
    let callback = path_of(&a.consent(&victim, &contoso).await);
    attacker.signup(&[]).await;

    // Act
    let stolen = attacker.get(&callback).await;
    let own = victim.on(&b).get(&callback).await;

    // Assert: refused on B as on A, burning nothing: the victim's own browser finishes on
    // B, and only the victim sees the tenant.
    let html = assert_refused(&a, stolen, "other_browser").await;
    assert!(html.contains("another browser"), "{html}");
    assert_eq!(own.status(), 303);
    assert_eq!(a.wait_for_outcome(&contoso, 15).await.status, "active");
    let seen = text(&victim.on(&a), "/consent/status").await;
    assert!(seen.contains("Contoso Ltd is connected"), "{seen}");
    for app in [&a, &b] {
        let page = attacker.on(app).get("/consent/status").await;
        let seen = page.text().await.expect("html");
        assert!(!seen.contains("Contoso Ltd"), "{seen}");
    }
    let kinds = a.tenant_event_kinds(&contoso).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "consent_recorded").count(),
        1,
        "{kinds:?}"
    );
}

/// The statuses of `n` sign-ups from `browser`.
async fn sign_ups(browser: &Browser, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(browser.signup_response(&[]).await.status().as_u16());
    }
    statuses
}

/// The statuses of `n` callbacks with states never issued from `browser`.
async fn bogus_callbacks(browser: &Browser, tenant: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        let url = callback_url(&[
            ("admin_consent", "True"),
            ("tenant", tenant),
            ("state", &random_token()),
        ]);
        statuses.push(browser.get(&url).await.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn rate_limits_are_kept_per_instance() {
    // Arrange: one client address for each limit, spent on A first.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let contoso = a.emulator.contoso();
    let guesser = a.browser().on_address(address(1));
    let signer = a.browser().on_address(address(2));
    let caller = a.browser().on_address(address(3));
    let logins_on_a = failed_logins(&guesser, 6).await;
    let sign_ups_on_a = sign_ups(&signer, 6).await;
    let callbacks_on_a = bogus_callbacks(&caller, &contoso, 11).await;

    // Act: the same addresses, on B.
    let logins_on_b = failed_logins(&guesser.on(&b), 6).await;
    let sign_ups_on_b = sign_ups(&signer.on(&b), 6).await;
    let callbacks_on_b = bogus_callbacks(&caller.on(&b), &contoso, 11).await;

    // Assert: each instance allows each address its own burst (5 failed logins, 5
    // sign-ups, 10 callbacks): two instances allow twice as many.
    assert_eq!(logins_on_a, [401, 401, 401, 401, 401, 429]);
    assert_eq!(logins_on_b, [401, 401, 401, 401, 401, 429]);
    assert_eq!(sign_ups_on_a, [303, 303, 303, 303, 303, 429]);
    assert_eq!(sign_ups_on_b, [303, 303, 303, 303, 303, 429]);
    assert_eq!(
        a.count_rows("consent_request where client_addr = '127.0.7.2'")
            .await,
        10
    );
    let mut expected = vec![400; 10];
    expected.push(429);
    assert_eq!(callbacks_on_a, expected);
    assert_eq!(callbacks_on_b, expected);
    // And the right password still gets in on either, from an address that is not failing.
    let operator = a.browser();
    assert_eq!(
        crate::operators::sign_in_as(&operator.on(&b), OPERATOR, OPERATOR_PASSWORD).await,
        303
    );
}

#[tokio::test]
async fn early_checks_of_a_tenant_are_spaced_across_instances() {
    // Arrange: Contoso connected; one key asks for checks of it, on both instances.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let contoso = a.emulator.contoso();
    a.onboard(&a.browser(), &contoso).await;
    let (key, _) = create_on_dashboard(&a.operator().await, "sync", &["tenants:read"]).await;
    let path = format!("/api/v1/tenants/{contoso}/verify");

    // Act: in turn on A, B, A, B.
    let first = api_post(&a, &path, &key).await.status().as_u16();
    let second = api_post(&b, &path, &key).await.status().as_u16();
    let third = api_post(&a, &path, &key).await;
    let fourth = api_post(&b, &path, &key).await;

    // Assert: the tenant's budget is the database's: a burst of two between them.
    assert_eq!((first, second), (202, 202));
    for refused in [third, fourth] {
        assert!(refused.headers().contains_key("retry-after"));
        let detail = assert_problem(refused, 429).await;
        assert!(detail.contains("too often"), "{detail}");
    }
}

#[tokio::test]
async fn one_browser_names_at_most_ten_tenants_a_day_across_instances() {
    // Arrange: a browser roaming over addresses, so that no per-address limit applies.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let attacker = a.browser();

    // Act: eleven sign-ups and callbacks, each naming another tenant, on A and B in turn.
    let mut statuses = Vec::new();
    let mut last = None;
    for i in 0..11u8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let roaming = attacker.on_address(address(20 + i)).on(app);
        let to_microsoft = roaming.signup(&[]).await;
        let state = crate::app_helpers::state_of(&to_microsoft);
        let tenant = uuid::Uuid::new_v4().to_string();
        let answer = roaming
            .get(&callback_url(&[
                ("admin_consent", "True"),
                ("tenant", &tenant),
                ("state", &state),
            ]))
            .await;
        statuses.push(answer.status().as_u16());
        last = Some(answer);
    }

    // Assert: the count is the database's: the eleventh is refused, on A.
    assert_eq!(&statuses[..10], &[303; 10]);
    let (_, page) = assert_error_page(last.expect("the eleventh"), 400).await;
    assert!(page.contains("many organisations"), "{page}");
    assert_eq!(a.count_rows("tenant").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_sent_at_once_from_one_browser_name_at_most_ten_tenants_across_instances() {
    // Arrange: fourteen sign-ups of one browser roaming over addresses, on A and B in turn.
    let a = spawn_app().await;
    let b = a.another_instance().await;
    let attacker = a.browser();
    let mut callbacks = Vec::new();
    for i in 0..14u8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let roaming = attacker.on_address(address(60 + i)).on(app);
        let state = crate::app_helpers::state_of(&roaming.signup(&[]).await);
        let url = callback_url(&[
            ("admin_consent", "True"),
            ("tenant", &uuid::Uuid::new_v4().to_string()),
            ("state", &state),
        ]);
        callbacks.push((roaming, url));
    }

    // Act: every callback at once, half on each instance.
    let statuses = futures_util::future::join_all(
        callbacks
            .iter()
            .map(|(roaming, url)| async move { roaming.get(url).await.status().as_u16() }),
    )
    .await;

    // Assert: the database's count holds against the race: ten tenants, no more.
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        4,
        "{statuses:?}"
    );
    assert_eq!(a.count_rows("tenant").await, 10);
}

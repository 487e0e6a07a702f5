//! A hostile stranger against onboarding: a browser of their own, a victim's public tenant
//! GUID, concurrency and floods. Each test plays the victim and the attacker as two
//! cookie-keeping browsers against the real server and the emulator.

use std::net::{IpAddr, Ipv4Addr};

use consentry::domain::TenantId;
use consentry::store::NewConsentRequest;

use crate::app_helpers::{
    Browser, assert_error_page, callback_url, random_token, section, spawn_app, spawn_app_with,
    state_of, ts,
};
use crate::callback::refused_count;

const FABRIKAM: &str = "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6";

/// The attacker's move: a sign-up of their own (with whatever details they like), then a
/// hand-typed callback naming `tenant` with their own state and binding cookie.
async fn forge_callback(attacker: &Browser, tenant: &str) -> reqwest::Response {
    let state = state_of(
        &attacker
            .signup(&[
                ("organisation_name", "Evil Corp"),
                ("contact_email", "attacker@evil.example"),
            ])
            .await,
    );
    attacker
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", tenant),
            ("state", &state),
        ]))
        .await
}

async fn html(browser: &Browser, path: &str) -> String {
    browser.get(path).await.text().await.expect("html")
}

fn id(tenant: &str) -> TenantId {
    TenantId::parse(tenant).expect("guid")
}

#[tokio::test]
async fn a_strangers_sign_up_never_changes_a_connected_tenant() {
    // Arrange: Contoso connected by its administrator, with no optional details.
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let (victim, attacker) = (app.browser(), app.browser());
    let before = app.onboard(&victim, &contoso).await;
    assert_eq!(before.status, "active");

    // Act: the attacker names Contoso in a callback of their own sign-up.
    let forged = forge_callback(&attacker, &contoso).await;

    // Assert: nothing about Contoso changed; the timeline says only that a callback named it.
    assert_eq!(forged.status(), 303);
    let after = app.tenant(&contoso).await.expect("tenant");
    assert_eq!(after.status, "active");
    assert_eq!(after.display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(after.consent_request_id, before.consent_request_id);
    assert_eq!(after.consented_at, before.consented_at);
    // The callback wrote one neutral event; only the check it forced may follow it.
    let kinds = app.tenant_event_kinds(&contoso).await;
    let named = kinds
        .iter()
        .position(|k| k == "callback_named")
        .unwrap_or_else(|| panic!("a callback_named event: {kinds:?}"));
    assert!(
        kinds[named + 1..]
            .iter()
            .all(|k| k.starts_with("verification_")),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "consent_recorded").count(),
        1,
        "{kinds:?}"
    );
    let events = app
        .store
        .events_for(id(&contoso), 10)
        .await
        .expect("events");
    let named = events
        .iter()
        .find(|e| e.kind == "callback_named")
        .expect("the neutral event");
    assert!(
        !named.detail.contains("administrator consented"),
        "{named:?}"
    );
    // The operator sees the attacker's details only as a claim that proved nothing.
    let operator = app.operator().await;
    let page = html(&operator, &format!("/admin/tenants/{contoso}")).await;
    let facts = section(&page, r#"<dl class="facts">"#, "</dl>");
    assert!(!facts.contains("evil"), "{facts}");
    let claims = section(&page, r#"<table id="claims">"#, "</table>");
    assert!(claims.contains("attacker@evil.example"), "{claims}");
    assert!(
        claims.contains("after verification: proved nothing"),
        "{claims}"
    );
    assert!(claims.contains("confirmed the consent"), "{claims}");
    // And the attacker's browser learns nothing about Contoso.
    let seen = html(&attacker, "/consent/status").await;
    for secret in ["Contoso Ltd", "User.Read.All", "Active", "connected"] {
        assert!(!seen.contains(secret), "{secret} in {seen}");
    }
}

#[tokio::test]
async fn callbacks_force_at_most_one_early_check_a_minute() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let (victim, attacker) = (app.browser(), app.browser());
    app.onboard(&victim, &contoso).await;
    // Revoked tenants are meant to be asked rarely; a stranger must not make them hot.
    app.emulator.revoke(&contoso).await;

    forge_callback(&attacker, &contoso).await;
    let checked = app
        .poll("the forced check", 15, || async {
            app.tenant(&contoso).await.filter(|t| t.status == "revoked")
        })
        .await;
    let next_after_first = checked.next_verify_at.clone();
    let second = forge_callback(&attacker, &contoso).await;

    assert_eq!(second.status(), 303);
    let after = app.tenant(&contoso).await.expect("tenant");
    assert_eq!(
        after.next_verify_at, next_after_first,
        "a second callback within a minute forces no check"
    );
    assert_eq!(after.status, "revoked");
    let kinds = app.tenant_event_kinds(&contoso).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "callback_named").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn a_forged_callback_before_the_real_consent_owns_nothing_and_moves_no_deadline() {
    // A long deadline, so the real administrator arrives within the same window.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_DEADLINE", "5m")).await;
    let (victim, attacker, attacker2) = (app.browser(), app.browser(), app.browser());

    // Act 1: two forged callbacks for Fabrikam, which never consented.
    assert_eq!(forge_callback(&attacker, FABRIKAM).await.status(), 303);
    let first = app.tenant(FABRIKAM).await.expect("recorded as pending");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(forge_callback(&attacker2, FABRIKAM).await.status(), 303);
    let second = app.tenant(FABRIKAM).await.expect("tenant");
    assert_eq!(
        second.consented_at, first.consented_at,
        "a later callback does not extend the deadline"
    );

    // Act 2: Fabrikam's administrator consents for real.
    let to_microsoft = victim
        .signup(&[
            ("organisation_name", "Fabrikam"),
            ("contact_email", "it@fabrikam.example"),
        ])
        .await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(FABRIKAM))
        .await;
    assert_eq!(victim.get(&callback).await.status(), 303);
    let row = app
        .poll("Fabrikam verified", 60, || async {
            app.tenant(FABRIKAM).await.filter(|t| t.status == "active")
        })
        .await;

    // Assert: the name comes from Graph; the administrator's claim confirmed it.
    assert_eq!(row.display_name.as_deref(), Some("Fabrikam, Inc."));
    assert_eq!(row.consented_at, first.consented_at);
    let claims = app.store.claims_for(id(FABRIKAM)).await.expect("claims");
    assert_eq!(claims.len(), 3);
    let confirming = claims
        .iter()
        .find(|c| Some(c.id.as_str()) == row.consent_request_id.as_deref())
        .expect("a confirming claim");
    assert_eq!(
        confirming.contact_email.as_deref(),
        Some("it@fabrikam.example")
    );
    // Neither attacker's browser learns anything about Fabrikam.
    for browser in [&attacker, &attacker2] {
        let seen = html(browser, "/consent/status").await;
        for secret in ["Fabrikam, Inc.", "User.Read.All", "connected", "Active"] {
            assert!(!seen.contains(secret), "{secret} in {seen}");
        }
    }
}

#[tokio::test]
async fn a_forged_callback_during_propagation_does_not_take_over_the_status_page() {
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_DEADLINE", "5m")).await;
    let northwind = "7a95d2e8-1c4b-4f6a-b8d3-e09c5a7f2b14";
    let (victim, attacker) = (app.browser(), app.browser());

    // The administrator consents, but Microsoft has not propagated it yet.
    let to_microsoft = victim.signup(&[]).await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(northwind))
        .await;
    app.emulator.revoke(northwind).await;
    assert_eq!(victim.get(&callback).await.status(), 303);
    // The attacker calls back for the same tenant meanwhile; then consent propagates.
    assert_eq!(forge_callback(&attacker, northwind).await.status(), 303);
    app.emulator.consent(northwind).await;
    let row = app
        .poll("Northwind verified", 60, || async {
            app.tenant(northwind).await.filter(|t| t.status == "active")
        })
        .await;

    // Neither browser can tell whose consent it was, so neither is shown the tenant.
    assert!(row.display_name.is_some());
    let name = row.display_name.clone().unwrap_or_default();
    let seen = html(&attacker, "/consent/status").await;
    for secret in [name.as_str(), "User.Read.All", "is connected"] {
        assert!(!seen.contains(secret), "{secret} in {seen}");
    }
    let victim_seen = html(&victim, "/consent/status").await;
    assert!(!victim_seen.contains(&name), "{victim_seen}");
    // The operator sees that the window was contested.
    let operator = app.operator().await;
    let page = html(&operator, &format!("/admin/tenants/{northwind}")).await;
    assert!(page.contains("contested"), "{page}");
}

#[tokio::test]
async fn the_administrators_browser_alone_sees_the_tenant_even_after_re_consent() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let victim = app.browser();

    app.onboard(&victim, &contoso).await;
    let attacker = app.browser();
    forge_callback(&attacker, &contoso).await;

    // The administrator consents again from the same browser ("Consent again").
    let to_microsoft = victim.signup(&[("tenant_domain", &contoso)]).await;
    let back = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    assert_eq!(victim.get(&back).await.status(), 303);

    let seen = html(&victim, "/consent/status").await;
    assert!(seen.contains("Contoso Ltd is connected"), "{seen}");
    let seen = html(&attacker, "/consent/status").await;
    assert!(!seen.contains("Contoso Ltd"), "{seen}");
}

#[tokio::test]
async fn one_binding_per_browser_across_tabs_invitations_and_callbacks() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let browser = app.browser();

    let (_, invitation) = crate::invitations::create_invitation(
        &app.operator().await,
        &[
            ("organisation_name", "Fabrikam"),
            ("contact_email", "it@fabrikam.example"),
            ("tenant", FABRIKAM),
        ],
    )
    .await;

    // Two tabs sign up, then the browser starts from an invitation for another tenant.
    let tab1 = browser.signup(&[]).await;
    let binding = browser
        .cookie("consentry_binding", "/")
        .expect("a binding on /");
    let tab2 = browser.signup(&[]).await;
    let csrf = browser.csrf_of(&invitation).await;
    let invited = browser.post_form(&invitation, &[("csrf", &csrf)]).await;

    assert_eq!(invited.status(), 303);
    assert_eq!(
        browser.cookie("consentry_binding", "/"),
        Some(binding.clone()),
        "sign-ups and invitations reuse the browser's binding"
    );
    assert_eq!(
        browser.cookie("consentry_binding", "/signup"),
        Some(binding),
        "the binding reaches /signup"
    );
    // Both tabs' flows finish.
    let back1 = app.emulator_decision(&tab1, "accept", Some(&contoso)).await;
    let back2 = app.emulator_decision(&tab2, "accept", Some(&contoso)).await;
    assert_eq!(browser.get(&back1).await.status(), 303);
    assert_eq!(browser.get(&back2).await.status(), 303);
    assert_eq!(app.wait_for_outcome(&contoso, 15).await.status, "active");
}

#[tokio::test]
async fn a_decline_without_our_state_prints_no_free_text() {
    let app = spawn_app().await;
    let (victim, attacker) = (app.browser(), app.browser());
    let lure = "AADSTS65004: Your account is locked; call +1-555-0100 to unlock it.";

    // No state at all, and then the attacker's own state opened in the victim's browser.
    let bare = victim
        .get(&callback_url(&[
            ("error", "access_denied"),
            ("error_description", lure),
        ]))
        .await;
    let attacker_state = state_of(&attacker.signup(&[]).await);
    victim.signup(&[]).await;
    let foreign = victim
        .get(&callback_url(&[
            ("error", "access_denied"),
            ("error_description", lure),
            ("state", &attacker_state),
        ]))
        .await;

    for response in [bare, foreign] {
        assert_eq!(response.status(), 200);
        let page = response.text().await.expect("html");
        assert!(!page.contains("555"), "{page}");
        assert!(!page.contains("locked"), "{page}");
        assert!(
            page.contains("AADSTS65004"),
            "the code alone is shown: {page}"
        );
    }
    assert!(
        app.events().await.is_empty(),
        "unmatched declines write nothing"
    );
    assert_eq!(
        app.count_rows("consent_request where consumed_at is null")
            .await,
        2,
        "the attacker's state was not burnt by the victim's browser"
    );
}

#[tokio::test]
async fn a_flood_of_refused_callbacks_writes_no_row_and_is_rate_limited() {
    let app = spawn_app().await;
    let attacker = app.browser();
    attacker.signup(&[]).await;
    let contoso = app.emulator.contoso();

    let mut statuses = std::collections::BTreeMap::new();
    let mut retry_after = None;
    for _ in 0..60 {
        let response = attacker
            .get(&callback_url(&[
                ("admin_consent", "True"),
                ("tenant", &contoso),
                ("state", &random_token()),
            ]))
            .await;
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
        *statuses.entry(response.status().as_u16()).or_insert(0) += 1;
    }

    assert_eq!(
        statuses.get(&400),
        Some(&10),
        "a burst of ten: {statuses:?}"
    );
    assert_eq!(statuses.get(&429), Some(&50), "then 429: {statuses:?}");
    let wait: u64 = retry_after
        .expect("a Retry-After on the 429")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=6).contains(&wait),
        "the real wait for the next token (one every 6 s): {wait}"
    );
    assert_eq!(app.count_rows("tenant_event").await, 0);
    assert_eq!(app.count_rows("tenant").await, 0);
    assert_eq!(refused_count(&app, "unknown_state").await, 10);
    assert_eq!(refused_count(&app, "rate_limited").await, 50);
}

#[tokio::test]
async fn one_browser_names_at_most_ten_tenants_a_day_whatever_its_address() {
    let app = spawn_app().await;
    let attacker = app.browser();

    // Each sign-up comes from another loopback address, so no per-address limit applies.
    let mut last = None;
    for i in 0..11u8 {
        let roaming = attacker.on_address(IpAddr::V4(Ipv4Addr::new(127, 0, 1, 10 + i)));
        let tenant = uuid::Uuid::new_v4().to_string();
        last = Some(forge_callback(&roaming, &tenant).await);
        if i < 10 {
            assert_eq!(last.as_ref().map(|r| r.status().as_u16()), Some(303));
        }
    }

    let (_, page) = assert_error_page(last.expect("eleventh"), 400).await;
    assert!(page.contains("many organisations"), "{page}");
    assert_eq!(app.count_rows("tenant").await, 10);
}

#[tokio::test]
async fn never_verified_tenants_leave_the_default_list_and_are_purged() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let (victim, attacker) = (app.browser(), app.browser());
    app.onboard(&victim, &contoso).await;
    forge_callback(&attacker, FABRIKAM).await;
    assert_eq!(app.wait_for_outcome(FABRIKAM, 20).await.status, "failed");

    let operator = app.operator().await;
    let page = html(&operator, "/admin").await;
    let list = section(&page, r#"<table id="tenants">"#, "</table>");
    assert!(list.contains(&contoso), "{list}");
    assert!(!list.contains(FABRIKAM), "{list}");
    let page = html(&operator, "/admin?all=1").await;
    let all = section(&page, r#"<table id="tenants">"#, "</table>");
    assert!(all.contains(FABRIKAM), "{all}");

    // A week later, the forged tenant, its events and its claim are gone.
    let report = purge_after(&app, "update tenant set consented_at = $1", 8).await;

    assert_eq!(report.tenants, 1, "{report:?}");
    assert!(app.tenant(FABRIKAM).await.is_none());
    assert!(
        app.tenant(&contoso).await.is_some(),
        "verified tenants stay"
    );
    assert!(app.tenant_event_kinds(FABRIKAM).await.is_empty());
    assert!(
        app.store
            .claims_for(id(FABRIKAM))
            .await
            .expect("claims")
            .is_empty()
    );
    assert_eq!(
        app.store
            .claims_for(id(&contoso))
            .await
            .expect("claims")
            .len(),
        1,
        "the confirming claim is kept"
    );
}

#[tokio::test]
async fn events_of_no_tenant_expire() {
    let app = spawn_app().await;
    let browser = app.browser();
    let state = state_of(&browser.signup(&[]).await);
    // A refusal of a stored request writes an event of no tenant.
    browser
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", "not-a-guid"),
            ("state", &state),
        ]))
        .await;
    assert_eq!(
        app.count_rows("tenant_event where tenant_id is null").await,
        1
    );

    let report = purge_after(&app, "update tenant_event set created_at = $1", 31).await;

    assert_eq!(report.events, 1);
    assert_eq!(app.count_rows("tenant_event").await, 0);
}

/// Runs `aging` (an update setting a timestamp to `$1`) with `days` ago, as if that long had
/// passed, then purges as the verifier does every minute.
async fn purge_after(
    app: &crate::app_helpers::TestApp,
    aging: &str,
    days: i64,
) -> consentry::store::PurgeReport {
    let db = app.db().await;
    let past = ts(time::OffsetDateTime::now_utc() - time::Duration::days(days));
    sqlx::query(aging)
        .bind(past)
        .execute(&db)
        .await
        .expect("age");
    db.close().await;
    app.store
        .purge_stale(time::OffsetDateTime::now_utc())
        .await
        .expect("purge")
}

fn request(addr: &str, net: &str, at: time::OffsetDateTime) -> NewConsentRequest {
    NewConsentRequest {
        state_hash: random_token(),
        binding_hash: random_token(),
        organisation_name: None,
        contact_email: None,
        domain_hint: None,
        client_addr: addr.to_owned(),
        client_net: net.to_owned(),
        created_at: at,
        expires_at: at + time::Duration::minutes(10),
        invitation_id: None,
        signed_in: None,
    }
}

#[tokio::test]
async fn one_address_keeps_ten_pending_sign_ups_and_one_network_a_hundred() {
    let app = spawn_app().await;
    let t0 = time::OffsetDateTime::now_utc();

    for i in 0..15 {
        let at = t0 + time::Duration::milliseconds(i);
        assert!(
            app.store
                .insert_consent_request(&request("203.0.113.7", "203.0.113.7", at))
                .await
                .expect("insert")
        );
    }
    for i in 0..150 {
        let addr = format!("2001:db8:1:{i:x}::");
        let at = t0 + time::Duration::milliseconds(i);
        app.store
            .insert_consent_request(&request(&addr, "2001:db8:1::/48", at))
            .await
            .expect("insert");
    }

    assert_eq!(
        app.count_rows("consent_request where client_addr = '203.0.113.7'")
            .await,
        10,
        "the oldest are superseded"
    );
    assert_eq!(
        app.count_rows("consent_request where client_net = '2001:db8:1::/48'")
            .await,
        100
    );
}

#[tokio::test]
async fn the_pending_cap_holds_under_concurrent_sign_ups() {
    let app = spawn_app().await;
    // Fill to one short of the cap, as a flood from many networks would.
    let db = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    let mut tx = db
        .begin_with(crate::app_helpers::begin_write())
        .await
        .expect("tx");
    for i in 0..consentry::store::MAX_PENDING_REQUESTS - 1 {
        sqlx::query(
            "insert into consent_request (id, state_hash, binding_hash, client_addr, client_net, created_at, expires_at) \
             values ($1, $1, 'b', $2, $2, $3, $4)",
        )
        .bind(format!("flood-{i}"))
        .bind(format!("198.51.{}.{}", i / 256 % 256, i % 256))
        .bind(ts(now))
        .bind(ts(now + time::Duration::minutes(10)))
        .execute(&mut *tx)
        .await
        .expect("insert");
    }
    tx.commit().await.expect("commit");
    db.close().await;

    // Five browsers from five addresses sign up at once: exactly one fits.
    let tasks: Vec<_> = (0..5u8)
        .map(|i| {
            let browser = app
                .browser()
                .on_address(IpAddr::V4(Ipv4Addr::new(127, 0, 2, 10 + i)));
            tokio::spawn(async move { browser.signup_response(&[]).await.status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("task"));
    }
    statuses.sort_unstable();

    assert_eq!(statuses, [303, 503, 503, 503, 503]);
    assert_eq!(
        app.count_rows("consent_request").await,
        consentry::store::MAX_PENDING_REQUESTS
    );
}

#[tokio::test]
async fn a_check_that_started_before_a_callback_cannot_overwrite_it() {
    // Arrange: a forged callback left Fabrikam failed; a check reads it (revision r).
    let app = spawn_app().await;
    let (attacker, admin) = (app.browser(), app.browser());
    forge_callback(&attacker, FABRIKAM).await;
    let read = app.wait_for_outcome(FABRIKAM, 20).await;
    assert_eq!(read.status, "failed");

    // Act: the real administrator's callback opens a new window while that check runs,
    // then the check tries to save "failed, never check again".
    let to_microsoft = admin.signup(&[]).await;
    let back = app
        .emulator_decision(&to_microsoft, "accept", Some(FABRIKAM))
        .await;
    assert_eq!(admin.get(&back).await.status(), 303);
    let stale = consentry::store::CheckOutcome {
        status: consentry::domain::TenantStatus::Failed,
        result: consentry::store::CheckResult::Failed {
            code: "AADSTS700016".into(),
            message: "stale".into(),
        },
        next_at: None,
        event: consentry::store::EventKind::VerificationFailed,
        detail: "stale".into(),
    };
    let saved = app
        .store
        .save_check(
            id(FABRIKAM),
            consentry::domain::TenantStatus::Failed,
            read.revision,
            &stale,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("save");

    // Assert: the stale outcome is dropped and the new window's check proves the consent.
    assert!(!saved, "a check older than the callback does not save");
    let row = app
        .poll("Fabrikam verified", 60, || async {
            app.tenant(FABRIKAM).await.filter(|t| t.status == "active")
        })
        .await;
    assert_eq!(row.display_name.as_deref(), Some("Fabrikam, Inc."));
}

/// SQLite's plan for `sql` (EXPLAIN QUERY PLAN), one line per step.
/// How the database would run `sql`, in SQLite's words (`USING INDEX`, `TEMP B-TREE` for
/// a sort in memory) whichever database the suite runs on: PostgreSQL's plan, with
/// sequential scans priced out (on an empty table it would rightly prefer one), is
/// translated: an index scan is `USING INDEX`, a `Sort` node `TEMP B-TREE`.
async fn plan(app: &crate::app_helpers::TestApp, sql: &str) -> String {
    let db = app.db().await;
    if crate::app_helpers::on_postgres() {
        sqlx::query("set enable_seqscan = off")
            .execute(&db)
            .await
            .expect("set");
        let lines: Vec<String> = sqlx::query_scalar(&format!("explain {sql}"))
            .fetch_all(&db)
            .await
            .expect("plan");
        db.close().await;
        let plan = lines.join("\n");
        let mut words = plan.clone();
        if plan.contains("Index Scan") || plan.contains("Index Only Scan") {
            words.push_str("\nUSING INDEX");
        }
        if lines
            .iter()
            .any(|l| l.trim_start_matches([' ', '-', '>']).starts_with("Sort"))
        {
            words.push_str("\nTEMP B-TREE");
        }
        return words;
    }
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("explain query plan {sql}"))
        .fetch_all(&db)
        .await
        .expect("plan");
    db.close().await;
    rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn what_the_dashboard_and_status_page_ask_uses_an_index_at_any_size() {
    let app = spawn_app().await;

    let by_binding = plan(
        &app,
        "select tenant_id, consumed_at from consent_request where binding_hash = 'b' \
         and consumed_at is not null and tenant_id is not null order by consumed_at desc limit 1",
    )
    .await;
    let claims = plan(
        &app,
        "select id from consent_request where tenant_id = 't' and consumed_at is not null \
         order by consumed_at desc limit 200",
    )
    .await;
    let newest = plan(
        &app,
        "select * from tenant order by consented_at desc limit 500",
    )
    .await;
    let by_status = plan(
        &app,
        "select * from tenant where status = 'active' order by consented_at desc limit 500",
    )
    .await;

    for (what, plan) in [
        ("binding", &by_binding),
        ("claims", &claims),
        ("newest", &newest),
        ("by status", &by_status),
    ] {
        assert!(plan.contains("USING INDEX"), "{what}: {plan}");
        assert!(
            !plan.contains("TEMP B-TREE"),
            "{what} sorts in memory: {plan}"
        );
    }
}

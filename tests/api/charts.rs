//! The overview's charts (`/admin/overview`): tenants by status, consents and revocations
//! per week, failed checks per day. Tenants are moved through the store's own writes at
//! known dates (the triggers count them as they do in production) or through the whole
//! flow against the emulator; the migration's backfill is run on a database of the
//! migrations before it. The counts are read from what the page shows: each bar's
//! `<title>` and the tables beside the charts.

use consentry::domain::{TenantId, TenantStatus};
use consentry::store::{CheckOutcome, CheckResult, EventKind, Role};
use sqlx::SqlitePool;
use time::{Date, Duration, OffsetDateTime, Time};

use crate::app_helpers::{TestApp, spawn_app, spawn_app_with, ts};
use crate::helpers::html_unescape;
use crate::operators::signed_in_as;

/// The text of `html`, its tags dropped.
fn text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    html_unescape(text.trim())
}

/// The rows of the table `id` (`<table id="{id}"`), each the text of its cells.
fn table(html: &str, id: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!(r#"<table id="{id}""#))
        .unwrap_or_else(|| panic!("no table {id} in {html}"));
    let end = start + html[start..].find("</table>").expect("table end");
    let body = &html[start..end];
    let body = &body[body.find("<tbody>").expect("tbody")..];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(open) = ["<td", "<th"].iter().filter_map(|t| rest.find(t)).min() {
                let close = open
                    + ["</td>", "</th>"]
                        .iter()
                        .filter_map(|t| rest[open..].find(t))
                        .min()
                        .expect("cell end");
                let inner = &rest[open..close];
                cells.push(text(&inner[inner.find('>').expect("tag end") + 1..]));
                rest = &rest[close + 5..];
            }
            cells
        })
        .collect()
}

/// The row of `table` whose first cell is `first`.
fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().map(String::as_str) == Some(first))
        .unwrap_or_else(|| panic!("no row {first} in {rows:?}"))
}

/// The SVG of the chart `id`.
fn chart<'a>(html: &'a str, id: &str) -> &'a str {
    crate::app_helpers::section(html, &format!(r#"class="chart" id="{id}""#), "</svg>")
}

fn monday(day: Date) -> Date {
    day - Duration::days(i64::from(day.weekday().number_days_from_monday()))
}

fn at(day: Date, hour: u8, minute: u8, second: u8) -> OffsetDateTime {
    day.with_time(Time::from_hms(hour, minute, second).expect("time"))
        .assume_utc()
}

/// A tenant a callback named at `when`: pending, never verified, not scheduled (so the
/// app's own checks leave it to the test).
async fn named(db: &sqlx::AnyPool, id: &str, when: OffsetDateTime) {
    sqlx::query(
        "insert into tenant (id, status, consented_at, created_at, updated_at) \
         values ($1, 'pending', $2, $2, $2)",
    )
    .bind(id)
    .bind(ts(when))
    .execute(db)
    .await
    .expect("a tenant");
}

/// Saves a check of `id` at `when`, as the verifier does: verified (`failed` false) or
/// failed, leaving the tenant `status`.
async fn check(app: &TestApp, id: &str, status: TenantStatus, failed: bool, when: OffsetDateTime) {
    let tenant = TenantId::parse(id).expect("guid");
    let row = app.store.tenant(tenant).await.expect("store").expect("row");
    let previous = TenantStatus::parse(&row.status).expect("status");
    let (result, event) = if failed {
        (
            CheckResult::Failed {
                code: "AADSTS7000229".into(),
                message: "The service principal is missing.".into(),
            },
            EventKind::CheckFailed,
        )
    } else {
        (
            CheckResult::Verified {
                display_name: Some(format!("Org {}", &id[..4])),
                verified_domains: Vec::new(),
                granted_roles: vec!["User.Read.All".into(), "Organization.Read.All".into()],
                missing_permissions: Vec::new(),
                user_count: None,
            },
            EventKind::VerificationSucceeded,
        )
    };
    let outcome = CheckOutcome {
        status,
        result,
        next_at: None,
        event,
        detail: format!("A check at {}.", ts(when)),
    };
    assert!(
        app.store
            .save_check(tenant, previous, row.revision, &outcome, when)
            .await
            .expect("saved"),
        "nothing else wrote {id}"
    );
}

const A: &str = "a0000000-0000-4000-8000-000000000001";
const B: &str = "b0000000-0000-4000-8000-000000000002";
const C: &str = "c0000000-0000-4000-8000-000000000003";
const D: &str = "d0000000-0000-4000-8000-000000000004";

#[tokio::test]
async fn the_charts_count_consents_revocations_and_failed_checks_on_their_days() {
    // Arrange: three weeks ago (w3) A, B and C were confirmed; A's consent was revoked in
    // the last second of that week's Sunday, B's in the first second of the next week
    // (w2), and B came back two days later. C failed its checks yesterday and three
    // times today; D, never verified, failed its first check today.
    let app = spawn_app().await;
    let db = app.db().await;
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let w3 = monday(today) - Duration::weeks(3);
    let w2 = w3 + Duration::weeks(1);
    // Their callbacks are dated now: the verifier purges tenants never verified a week
    // after their callback, and its purge may run between naming and checking. The
    // charts count what the checks did, on the checks' days.
    for id in [A, B, C] {
        named(&db, id, now).await;
    }
    check(&app, A, TenantStatus::Active, false, at(w3, 9, 1, 0)).await;
    check(&app, B, TenantStatus::Active, false, at(w3, 9, 1, 0)).await;
    check(
        &app,
        C,
        TenantStatus::Active,
        false,
        at(w3 + Duration::days(2), 9, 0, 0),
    )
    .await;
    let sunday = w3 + Duration::days(6);
    check(&app, A, TenantStatus::Revoked, true, at(sunday, 23, 59, 59)).await;
    check(&app, B, TenantStatus::Revoked, true, at(w2, 0, 0, 0)).await;
    check(
        &app,
        B,
        TenantStatus::Active,
        false,
        at(w2 + Duration::days(2), 8, 0, 0),
    )
    .await;
    let yesterday = today.previous_day().expect("yesterday");
    check(
        &app,
        C,
        TenantStatus::Failing,
        true,
        at(yesterday, 12, 0, 0),
    )
    .await;
    for second in 1..=3 {
        check(
            &app,
            C,
            TenantStatus::Failing,
            true,
            at(today, 0, 0, second),
        )
        .await;
    }
    named(&db, D, at(today, 0, 0, 0)).await;
    check(&app, D, TenantStatus::Pending, true, at(today, 0, 0, 4)).await;
    db.close().await;

    // Act
    let page = app.operator().await.get("/admin/overview").await;

    // Assert
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let weekly = chart(&html, "chart-weekly");
    assert!(
        weekly.contains(&format!("<title>Week of {w3}: 3 consents</title>")),
        "{weekly}"
    );
    assert!(
        weekly.contains(&format!("<title>Week of {w3}: 1 revocation</title>")),
        "{weekly}"
    );
    assert!(weekly.contains(&format!("<title>Week of {w2}: 1 consent (1 again)</title>")));
    assert!(weekly.contains(&format!("<title>Week of {w2}: 1 revocation</title>")));
    assert!(
        weekly.contains("4 consents (1 again after a revocation) and 2 revocations in all"),
        "{weekly}"
    );
    let weeks = table(&html, "weekly-data");
    assert_eq!(weeks.len(), 52);
    assert_eq!(row(&weeks, &w3.to_string())[1..], ["3", "0", "1"]);
    assert_eq!(row(&weeks, &w2.to_string())[1..], ["1", "1", "1"]);
    assert_eq!(
        row(&weeks, &monday(today).to_string())[1..],
        ["0", "0", "0"]
    );
    // Newest week first, every Monday of the last 52.
    assert_eq!(weeks[0][0], monday(today).to_string());
    assert_eq!(
        weeks[51][0],
        (monday(today) - Duration::weeks(51)).to_string()
    );

    let failing = chart(&html, "chart-failing");
    assert!(
        failing.contains(&format!(
            "<title>{today}: 1 tenant with a failed check</title>"
        )),
        "C counts once however often it failed, D not at all: {failing}"
    );
    assert!(failing.contains(&format!(
        "<title>{yesterday}: 1 tenant with a failed check</title>"
    )));
    let days = table(&html, "failing-data");
    assert_eq!(days.len(), 14);
    assert_eq!(row(&days, &today.to_string())[1], "1");
    assert_eq!(row(&days, &yesterday.to_string())[1], "1");
    assert_eq!(
        days.iter()
            .map(|d| d[1].parse::<i64>().expect("n"))
            .sum::<i64>(),
        2,
        "{days:?}"
    );

    let statuses = chart(&html, "chart-statuses");
    for title in [
        "Active: 1 tenant (25.0%)",
        "Consent revoked: 1 tenant (25.0%)",
        "Failing: 1 tenant (25.0%)",
        "Verifying: 1 tenant (25.0%)",
    ] {
        assert!(
            statuses.contains(&format!("<title>{title}</title>")),
            "{title}: {statuses}"
        );
    }
    assert!(
        !statuses.contains("<title>Tenant gone"),
        "no bar for nothing"
    );
    let by_status = table(&html, "statuses-data");
    assert_eq!(row(&by_status, "Active")[1..], ["1", "25.0%"]);
    assert_eq!(row(&by_status, "Tenant gone")[1..], ["0", "0.0%"]);
}

#[tokio::test]
async fn a_consent_and_its_revocation_through_the_emulator_show_in_this_week() {
    // Arrange: Contoso onboarded through the whole flow, then its consent revoked at
    // Microsoft and found by "verify now".
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let operator = app.operator().await;
    let before = operator
        .get("/admin/overview")
        .await
        .text()
        .await
        .expect("html");
    app.emulator.revoke(&contoso).await;
    let tenant_page = operator
        .get(&format!("/admin/tenants/{contoso}"))
        .await
        .text()
        .await
        .expect("html");
    let csrf = crate::app_helpers::hidden(&tenant_page, "csrf");
    let verify = operator
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(verify.status(), 303);
    app.poll("the revocation", 15, || async {
        app.tenant(&contoso).await.filter(|t| t.status == "revoked")
    })
    .await;

    // Act
    let after = operator
        .get("/admin/overview")
        .await
        .text()
        .await
        .expect("html");

    // Assert: one consent this week before; one consent and one revocation after, and the
    // check that found the revocation failed today.
    let this_week = monday(OffsetDateTime::now_utc().date()).to_string();
    let today = OffsetDateTime::now_utc().date().to_string();
    assert_eq!(
        row(&table(&before, "weekly-data"), &this_week)[1..],
        ["1", "0", "0"]
    );
    assert_eq!(
        row(&table(&after, "weekly-data"), &this_week)[1..],
        ["1", "0", "1"]
    );
    assert!(
        chart(&after, "chart-weekly")
            .contains(&format!("<title>Week of {this_week}: 1 revocation</title>"))
    );
    assert_eq!(row(&table(&before, "failing-data"), &today)[1], "0");
    assert_eq!(row(&table(&after, "failing-data"), &today)[1], "1");
    assert!(
        chart(&after, "chart-statuses")
            .contains("<title>Consent revoked: 1 tenant (100.0%)</title>")
    );
}

#[tokio::test]
async fn viewers_see_the_overview_and_strangers_do_not() {
    // Arrange
    let app = spawn_app().await;
    let viewer = signed_in_as(&app, "vera", Role::Viewer).await;
    let anonymous = app.browser();

    // Act
    let seen = viewer.get("/admin/overview").await;
    let refused = anonymous.get("/admin/overview").await;

    // Assert: the viewer gets the page, script-free, its charts images with a text
    // alternative; the stranger is sent to sign in and sees no figure.
    assert_eq!(seen.status(), 200);
    let csp = seen
        .headers()
        .get("content-security-policy")
        .expect("a CSP")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let html = seen.text().await.expect("html");
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    for id in ["chart-statuses", "chart-weekly", "chart-failing"] {
        let svg = chart(&html, id);
        assert!(svg.contains(r#"role="img" aria-label=""#), "{id}");
        assert!(svg.contains(&format!(r#"<desc id="{id}-desc">"#)), "{id}");
    }
    assert!(
        html.contains(r#"<a href="/admin/overview">Overview</a>"#),
        "in the nav"
    );
    assert_eq!(refused.status(), 303);
    assert_eq!(
        refused
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok()),
        Some("/admin/login")
    );
    assert!(!refused.text().await.expect("body").contains("chart"));
}

#[tokio::test]
async fn with_nothing_to_count_the_charts_draw_empty_axes_and_say_so() {
    let app = spawn_app().await;

    let html = app
        .operator()
        .await
        .get("/admin/overview")
        .await
        .text()
        .await
        .expect("html");

    assert!(!html.contains("NaN") && !html.contains("inf\""), "{html}");
    assert!(chart(&html, "chart-weekly").contains("No consents or revocations in these 52 weeks"));
    assert!(chart(&html, "chart-failing").contains("No failed checks in these 14 days"));
    assert!(chart(&html, "chart-statuses").contains("No tenants yet."));
    assert!(
        !chart(&html, "chart-weekly").contains("<title>Week of"),
        "no bars"
    );
    assert_eq!(
        row(&table(&html, "statuses-data"), "Active")[1..],
        ["0", "0%"]
    );
}

#[tokio::test]
async fn the_migration_counts_what_happened_before_it() {
    // Arrange: a database as the migrations before the daily counts left it: T1 verified
    // ten days ago; T2 verified twenty days ago, revoked five days ago and back two days
    // ago (as its status_changed events say); T1's checks failing from three days ago to
    // yesterday (one event, repeated); a never-verified tenant failing too. None is due
    // for a check (the app's own would count today).
    let path = std::env::temp_dir().join(format!("consentry-old-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    let now = OffsetDateTime::now_utc();
    let today = now.date();
    let days_ago = |d: i64| at(today - Duration::days(d), 12, 0, 0);
    {
        let options = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .expect("url")
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(options).await.expect("pool");
        let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new("migrations"))
            .await
            .expect("migrations");
        let daily = migrator
            .migrations
            .iter()
            .find(|m| m.description == "daily counts")
            .expect("the daily counts migration")
            .version;
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version < daily)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        migrator.run(&pool).await.expect("the earlier migrations");
        for (id, status, verified) in [
            (A, "active", Some(days_ago(10))),
            (B, "active", Some(days_ago(20))),
            (D, "pending", None),
        ] {
            sqlx::query(
                "insert into tenant (id, status, granted_roles, consented_at, verified_at, created_at, updated_at) \
                 values ($1, $2, '[\"User.Read.All\",\"Organization.Read.All\"]', $3, $4, $3, $3)",
            )
            .bind(id)
            .bind(status)
            .bind(ts(days_ago(30)))
            .bind(verified.map(ts))
            .execute(&pool)
            .await
            .expect("tenant");
        }
        for (tenant, kind, detail, created, last, repeats) in [
            (
                B,
                "status_changed",
                "Status: Active → Consent revoked.",
                5,
                None,
                1,
            ),
            (
                B,
                "status_changed",
                "Status: Consent revoked → Active.",
                2,
                None,
                1,
            ),
            (
                A,
                "check_failed",
                "AADSTS90002: Tenant not found.",
                3,
                Some(1),
                40,
            ),
            (
                D,
                "verification_retrying",
                "AADSTS7000229: missing.",
                1,
                None,
                1,
            ),
            (A, "status_changed", "Status: Active → Failing.", 3, None, 1),
        ] {
            sqlx::query(
                "insert into tenant_event (id, tenant_id, kind, detail, created_at, last_at, repeat_count) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(tenant)
            .bind(kind)
            .bind(detail)
            .bind(ts(days_ago(created)))
            .bind(last.map(|d| ts(days_ago(d))))
            .bind(repeats)
            .execute(&pool)
            .await
            .expect("event");
        }
        pool.close().await;
    }

    // Act: the app starts on it, applying the migration.
    let old = url.clone();
    let app = spawn_app_with(move |raw, _| raw.set("CONSENTRY_DATABASE_URL", old)).await;
    // The test operator, in the database the app runs on.
    let store = consentry::store::Store::connect(&url).await.expect("store");
    let hash = consentry::domain::password::hash_password(crate::app_helpers::OPERATOR_PASSWORD)
        .expect("hash");
    store
        .upsert_operator(crate::app_helpers::OPERATOR, &hash, now)
        .await
        .expect("operator");
    store.close().await;
    let html = app
        .operator()
        .await
        .get("/admin/overview")
        .await
        .text()
        .await
        .expect("html");

    // Assert
    assert!(
        chart(&html, "chart-weekly")
            .contains("3 consents (1 again after a revocation) and 1 revocation in all"),
        "{html}"
    );
    let days = table(&html, "failing-data");
    for ago in 0..14 {
        let day = (today - Duration::days(ago)).to_string();
        let expected = if (1..=3).contains(&ago) { "1" } else { "0" };
        assert_eq!(row(&days, &day)[1], expected, "{ago} days ago: {days:?}");
    }
    drop(app);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn admin_pages_show_times_in_words_beside_them_and_name_tenants() {
    // Arrange: Contoso onboarded, and an operator asked to verify it now.
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    let onboarded = app.onboard(&app.browser(), &contoso).await;
    let name = onboarded.display_name.clone().expect("named by Graph");
    let operator = app.operator().await;
    let tenant_page = operator
        .get(&format!("/admin/tenants/{contoso}"))
        .await
        .text()
        .await
        .expect("html");
    let csrf = crate::app_helpers::hidden(&tenant_page, "csrf");
    let verify = operator
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(verify.status(), 303);

    // Act
    let mut pages = Vec::new();
    for path in [
        format!("/admin/tenants/{contoso}"),
        "/admin/audit".to_owned(),
        "/admin/account".to_owned(),
        "/admin/operators".to_owned(),
    ] {
        let html = operator.get(&path).await.text().await.expect("html");
        pages.push((path, html));
    }

    // Assert: every page shows its times in words, each beside the time itself; the
    // audit trail names the tenant (its id on hover) and links to it.
    for (path, html) in &pages {
        let stamp = crate::app_helpers::section(html, "<time datetime=\"", "</span>");
        assert!(
            stamp.contains("just now</time> <span class=\"small\">")
                || stamp.contains(" ago</time> <span class=\"small\">"),
            "{path}: {stamp}"
        );
        assert!(stamp.contains(" UTC"), "{path}: {stamp}");
    }
    let audit = &pages[1].1;
    let verified = crate::app_helpers::section(audit, "<code>verify_now</code>", "</tr>");
    assert!(
        verified.contains(&format!(
            r#"<a href="/admin/tenants/{contoso}" title="{contoso}">{name}</a>"#
        )),
        "{verified}"
    );
}

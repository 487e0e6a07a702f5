//! Continuous health: every tenant is re-checked on the interval, and each move between
//! statuses is an event. The interval is one second here.

use reqwest::Method;
use serde_json::json;

use crate::app_helpers::{TestApp, spawn_app_with};

async fn spawn() -> TestApp {
    spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_INTERVAL", "1s")).await
}

async fn wait_for_status(app: &TestApp, tenant: &str, status: &str) -> consentry::store::TenantRow {
    app.poll(&format!("{tenant} to become {status}"), 20, || async {
        app.tenant(tenant).await.filter(|t| t.status == status)
    })
    .await
}

#[tokio::test]
async fn roles_removed_then_consent_revoked_then_restored() {
    let app = spawn().await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;

    app.emulator
        .control(
            Method::PUT,
            &format!("/tenants/{contoso}/roles"),
            Some(json!(["User.Read.All"])),
        )
        .await;
    let missing = wait_for_status(&app, &contoso, "missing_permissions").await;
    app.emulator
        .control(Method::DELETE, &format!("/tenants/{contoso}/consent"), None)
        .await;
    let revoked = wait_for_status(&app, &contoso, "revoked").await;
    app.emulator.consent(&contoso).await;
    let restored = wait_for_status(&app, &contoso, "active").await;

    assert_eq!(missing.granted_roles(), ["User.Read.All"]);
    assert_eq!(revoked.last_error_code.as_deref(), Some("AADSTS700016"));
    assert!(revoked.consecutive_failures >= 1);
    assert!(revoked.last_failure_at.is_some());
    assert_eq!(restored.consecutive_failures, 0);
    assert_eq!(
        restored.granted_roles(),
        ["Organization.Read.All", "User.Read.All"]
    );
    let moves: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == "status_changed")
        .map(|e| e.detail)
        .collect();
    assert!(
        moves.contains(&"Status: Active → Missing permissions.".to_owned()),
        "{moves:?}"
    );
    assert!(
        moves.contains(&"Status: Missing permissions → Consent revoked.".to_owned()),
        "{moves:?}"
    );
    assert!(
        moves.contains(&"Status: Consent revoked → Active.".to_owned()),
        "{moves:?}"
    );
}

#[tokio::test]
async fn a_deleted_tenant_is_gone() {
    let app = spawn().await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;

    app.emulator
        .control(Method::DELETE, &format!("/tenants/{contoso}"), None)
        .await;
    let gone = wait_for_status(&app, &contoso, "gone").await;

    assert_eq!(gone.last_error_code.as_deref(), Some("AADSTS90002"));
    assert!(
        gone.next_verify_at.is_some(),
        "gone tenants are still checked, rarely"
    );
}

#[tokio::test]
async fn active_tenants_are_checked_again_on_the_interval() {
    let app = spawn().await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;

    let checked_again = app
        .poll("three successful checks", 20, || async {
            let n = app
                .events()
                .await
                .iter()
                .filter(|e| e.kind == "verification_succeeded")
                .count();
            (n >= 3).then_some(n)
        })
        .await;

    assert!(checked_again >= 3);
    let row = app.tenant(&contoso).await.expect("tenant");
    assert_eq!(row.status, "active");
    assert!(row.next_verify_at.is_some());
    assert_eq!(
        app.emulator.requests().await["tenants"][&contoso]["graph_organization"]
            .as_u64()
            .map(|n| n >= 3),
        Some(true)
    );
}

#[tokio::test]
async fn a_newly_required_permission_makes_active_tenants_need_re_consent() {
    let app = spawn().await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    let mut raw = crate::helpers::settings_for(&app.emulator);
    raw.set("CONSENTRY_DATABASE_URL", app.database_url.as_str());
    raw.set(
        "CONSENTRY_REQUIRED_PERMISSIONS",
        "User.Read.All,Organization.Read.All,Mail.Read",
    );
    let settings = raw.parse().expect("settings");
    let verifier = consentry::web::verifier_for(&settings, app.store.clone()).expect("verifier");

    let drifted = verifier.recheck_drifted().await.expect("drift");
    verifier.run_due().await.expect("checks");

    assert_eq!(drifted, 1);
    let row = app.tenant(&contoso).await.expect("tenant");
    assert_eq!(row.status, "missing_permissions");
    let last = app
        .events()
        .await
        .into_iter()
        .rev()
        .find(|e| e.kind == "missing_permissions")
        .expect("event");
    assert!(last.detail.contains("Mail.Read"), "{}", last.detail);
}

#[tokio::test]
async fn permission_drift_is_found_on_every_page_of_active_tenants() {
    // Arrange: 2,100 active tenants (three pages of the walk); every 700th lacks
    // Organization.Read.All, and one `failing` tenant lacks it too (not active: left).
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_INTERVAL", "1h")).await;
    let db = app.db().await;
    // The app writes too: take the write lock first (waiting for it), rather than read and
    // then find the snapshot stale.
    let mut tx = db
        .begin_with(crate::app_helpers::begin_write())
        .await
        .expect("a transaction");
    let now = crate::app_helpers::ts(time::OffsetDateTime::now_utc());
    let mut lacking = Vec::new();
    for i in 0..2101 {
        let id = uuid::Uuid::new_v4().to_string();
        let short = i % 700 == 0;
        let status = if i == 2100 { "failing" } else { "active" };
        if short && status == "active" {
            lacking.push(id.clone());
        }
        sqlx::query(
            "insert into tenant (id, status, granted_roles, consented_at, verified_at, \
             next_verify_at, created_at, updated_at) values ($1, $2, $3, $4, $4, $5, $4, $4)",
        )
        .bind(&id)
        .bind(status)
        .bind(if short {
            r#"["User.Read.All"]"#
        } else {
            r#"["User.Read.All","Organization.Read.All"]"#
        })
        .bind(&now)
        .bind("2099-01-01T00:00:00.000Z")
        .execute(&mut *tx)
        .await
        .expect("a tenant");
    }
    tx.commit().await.expect("commit");
    let raw = {
        let mut raw = crate::helpers::settings_for(&app.emulator);
        raw.set("CONSENTRY_DATABASE_URL", app.database_url.as_str());
        raw
    };
    let settings = raw.parse().expect("settings");
    let verifier = consentry::web::verifier_for(&settings, app.store.clone()).expect("verifier");

    // Act
    let drifted = verifier.recheck_drifted().await.expect("drift");

    // Assert: the three lacking active tenants, and only they, are due now.
    assert_eq!(drifted, 3);
    let due: Vec<String> =
        sqlx::query_scalar("select id from tenant where next_verify_at < '2099' order by id")
            .fetch_all(&db)
            .await
            .expect("due");
    lacking.sort();
    assert_eq!(due, lacking);
}

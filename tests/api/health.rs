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

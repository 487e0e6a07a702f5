//! The onboarding flow end to end over HTTP: consentry, the emulator, SQLite.

use crate::app_helpers::spawn_app;

#[tokio::test]
async fn happy_path_ends_active_with_name_and_roles_in_the_database() {
    let app = spawn_app().await;
    let browser = app.browser();
    let contoso = app.emulator.contoso();

    let callback = app.consent(&browser, &contoso).await;
    let back = browser.get(&callback).await;
    let row = app.wait_for_outcome(&contoso, 10).await;

    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "/consent/status");
    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(row.display_name.as_deref(), Some("Contoso Ltd"));
    assert_eq!(
        row.granted_roles(),
        ["Organization.Read.All", "User.Read.All"]
    );
    let status = browser
        .get("/consent/status")
        .await
        .text()
        .await
        .expect("html");
    assert!(status.contains("Contoso Ltd is connected"), "{status}");
}

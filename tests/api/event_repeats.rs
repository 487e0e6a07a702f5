//! A tenant failing check after check leaves one event with a count and a time range, not
//! one event a retry: in the store, the API and the dashboard.

use serde_json::Value;

use crate::api_keys::{api_get, create_on_dashboard};
use crate::app_helpers::{callback_url, spawn_app_with, state_of};
use crate::helpers::FABRIKAM;

#[tokio::test]
async fn a_tenant_retried_again_and_again_has_one_retrying_event_with_a_count() {
    // Arrange: a callback for a tenant that never consented is retried every second
    // (the interval caps the backoff) until its deadline, far away.
    let app = spawn_app_with(|raw, _| {
        raw.set("CONSENTRY_VERIFY_DEADLINE", "10m");
        raw.set("CONSENTRY_VERIFY_INTERVAL", "1s");
    })
    .await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "reader", &["tenants:read"]).await;
    let browser = app.browser();
    let to_microsoft = browser.signup(&[]).await;
    let forged = callback_url(&[
        ("admin_consent", "True"),
        ("tenant", FABRIKAM),
        ("state", &state_of(&to_microsoft)),
    ]);
    assert_eq!(browser.get(&forged).await.status(), 303);

    // Act: wait until the tenant has been tried at least four times.
    let id = consentry::domain::TenantId::parse(FABRIKAM).expect("guid");
    app.poll("four failed checks", 30, || async {
        let row = app.store.tenant(id).await.expect("store")?;
        (row.consecutive_failures >= 4).then_some(())
    })
    .await;
    let events = app.store.events_for(id, 100).await.expect("events");
    let api = api_get(
        &app,
        &format!("/api/v1/tenants/{FABRIKAM}/events"),
        Some(&key),
    )
    .await;
    let page = operator.get(&format!("/admin/tenants/{FABRIKAM}")).await;

    // Assert
    let retrying: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "verification_retrying")
        .collect();
    assert_eq!(retrying.len(), 1, "one event for the repeats: {events:?}");
    let event = retrying[0];
    assert!(event.repeat_count >= 3, "{event:?}");
    let last = event.last_at.as_deref().expect("a last time");
    assert!(last > event.created_at.as_str(), "{event:?}");
    assert_eq!(api.status(), 200);
    let body: Value = api.json().await.expect("json");
    let json = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["kind"] == "verification_retrying")
        .expect("the retrying event")
        .clone();
    assert!(json["count"].as_i64().expect("count") >= 3, "{json}");
    assert!(json["last_at"].is_string(), "{json}");
    let once = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["kind"] == "consent_recorded")
        .expect("the consent event")
        .clone();
    assert_eq!(once["count"], 1, "{once}");
    assert!(once["last_at"].is_null(), "{once}");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains(" times, the last at "), "{html}");
}

//! The webhook outbox: every change an event reports writes the event, and one pending
//! delivery per subscribed endpoint, in the change's own transaction.

use consentry::domain::webhook::{EventFilter, EventType};
use consentry::store::{DeliveryFilter, NewEndpoint};
use serde_json::Value;

use crate::app_helpers::{TestApp, spawn_app_with, state_of};

async fn endpoint(app: &TestApp, url: &str, filter: &EventFilter) -> String {
    app.store
        .create_endpoint(
            &NewEndpoint {
                url,
                description: "test",
                filter,
                secret_salt: "salt",
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("endpoint")
        .id
}

async fn outbox(app: &TestApp) -> Vec<Value> {
    app.store
        .webhook_events(None, None, None, 1000)
        .await
        .expect("events")
        .into_iter()
        .map(|e| serde_json::from_str(&e.payload).expect("json"))
        .collect()
}

#[tokio::test]
async fn connecting_revoking_and_declining_are_events_with_a_delivery_per_subscribed_endpoint() {
    // Arrange: one endpoint for everything, one for declined consents only.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_INTERVAL", "1s")).await;
    let all = endpoint(&app, "https://hooks.example/all", &EventFilter::all()).await;
    let declines = endpoint(
        &app,
        "https://hooks.example/declines",
        &EventFilter::only(&[EventType::TenantConsentDeclined]),
    )
    .await;
    let contoso = app.emulator.contoso();

    // Act: connect, revoke, and a declined sign-up.
    let connected = app.onboard(&app.browser(), &contoso).await;
    app.emulator.revoke(&contoso).await;
    app.poll("the revocation", 15, || async {
        app.tenant(&contoso).await.filter(|t| t.status == "revoked")
    })
    .await;
    let browser = app.browser();
    let to_microsoft = browser
        .signup(&[
            ("organisation_name", "Fabrikam"),
            ("contact_email", "it@fabrikam.example"),
        ])
        .await;
    let declined = app.emulator_decision(&to_microsoft, "cancel", None).await;
    assert_eq!(browser.get(&declined).await.status(), 200);
    let events = outbox(&app).await;

    // Assert
    assert_eq!(connected.status, "active");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "tenant.connected",
            "tenant.status_changed",
            "tenant.consent_declined"
        ],
        "{events:#?}"
    );
    let (joined, revoked, refused) = (&events[0], &events[1], &events[2]);
    assert!(joined["id"].as_str().expect("id").starts_with("evt_"));
    assert_eq!(joined["data"]["tenant"]["id"], contoso.as_str());
    assert_eq!(joined["data"]["tenant"]["name"], "Contoso Ltd");
    assert_eq!(joined["data"]["missing_permissions"], serde_json::json!([]));
    assert_eq!(revoked["data"]["from"], "active");
    assert_eq!(revoked["data"]["to"], "revoked");
    assert_eq!(revoked["data"]["reason"], "revoked");
    assert!(
        revoked["data"]["error"]["code"]
            .as_str()
            .is_some_and(|c| c.starts_with("AADSTS")),
        "{revoked}"
    );
    assert_eq!(
        refused["data"]["sign_up"]["claimed"]["organisation_name"],
        "Fabrikam"
    );
    assert_eq!(refused["data"]["error"]["error"], "access_denied");
    let text = serde_json::to_string(&events).expect("json");
    assert!(!text.contains("eyJ"), "no token in any payload: {text}");
    assert!(!state_of(&to_microsoft).is_empty() && !text.contains(&state_of(&to_microsoft)));

    let of = |endpoint: &str| DeliveryFilter {
        endpoint_id: Some(endpoint.to_owned()),
        ..DeliveryFilter::default()
    };
    let to_all = app
        .store
        .deliveries(&of(&all), None, 100)
        .await
        .expect("deliveries");
    let to_declines = app
        .store
        .deliveries(&of(&declines), None, 100)
        .await
        .expect("deliveries");
    assert_eq!(to_all.len(), 3, "{to_all:?}");
    assert!(to_all.iter().all(|d| d.status == "pending"));
    assert_eq!(to_declines.len(), 1, "{to_declines:?}");
    assert_eq!(to_declines[0].event_type, "tenant.consent_declined");
}

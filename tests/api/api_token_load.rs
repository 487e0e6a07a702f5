//! `POST /api/v1/tenants/{id}/token` under concurrency: the `token_issued` events written in
//! groups (one commit for many requests) are each written, once; and API keys, cached for
//! speed, still stop working when revoked elsewhere.

use std::collections::BTreeSet;

use crate::api_keys::{api_get, assert_problem, create_on_dashboard, url};
use crate::app_helpers::{request_id, spawn_app};

/// Requests at once: far more than one commit takes, well under the key's burst of 1,000.
const CONCURRENT: usize = 300;

#[tokio::test]
async fn every_token_handed_out_to_concurrent_requests_is_an_event_of_its_own() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "fan-out", &["tokens:issue"]).await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let path = url(&app, &format!("/api/v1/tenants/{contoso}/token"));
    let http = reqwest::Client::new();

    // Act
    let requests: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            let request = http.post(&path).bearer_auth(&key).send();
            tokio::spawn(async move {
                let answer = request.await.expect("POST");
                (answer.status().as_u16(), request_id(&answer))
            })
        })
        .collect();
    let mut answered = Vec::new();
    for request in requests {
        answered.push(request.await.expect("a request task"));
    }

    // Assert: each answer had its event committed before it was sent.
    assert!(
        answered.iter().all(|(status, _)| *status == 200),
        "{answered:?}"
    );
    let answered: BTreeSet<String> = answered.into_iter().map(|(_, rid)| rid).collect();
    assert_eq!(answered.len(), CONCURRENT, "a request id each");
    let db = app.db().await;
    let written: Vec<String> = sqlx::query_scalar(
        "select request_id from tenant_event where kind = 'token_issued' and tenant_id = $1",
    )
    .bind(&contoso)
    .fetch_all(&db)
    .await
    .expect("events");
    db.close().await;
    assert_eq!(written.len(), CONCURRENT, "one event per token");
    let written: BTreeSet<String> = written.into_iter().collect();
    assert_eq!(written, answered, "each answered request's own event");
}

#[tokio::test]
async fn a_key_revoked_by_another_instance_is_refused_once_its_cached_copy_expires() {
    // Arrange: the key is used, so this instance holds it in its cache.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (key, _) = create_on_dashboard(&operator, "sync", &["tenants:read"]).await;
    assert_eq!(
        api_get(&app, "/api/v1/tenants", Some(&key)).await.status(),
        200
    );
    let keys = app.store.list_api_keys().await.expect("keys");

    // Act: revoked through another `Store` on the same database, as a second instance
    // would; nothing tells this instance.
    let revoked = app
        .store
        .revoke_api_key(&keys[0].id, time::OffsetDateTime::now_utc())
        .await
        .expect("revoke");

    // Assert
    assert!(revoked);
    let refused = app
        .poll("the revoked key to be refused", 30, || async {
            let answer = api_get(&app, "/api/v1/tenants", Some(&key)).await;
            (answer.status() != 200).then_some(answer)
        })
        .await;
    let detail = assert_problem(refused, 401).await;
    assert!(detail.contains("revoked"), "{detail}");
}

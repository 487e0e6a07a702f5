//! consentry's own credential: a certificate works end to end, and when Microsoft stops
//! accepting it, operators get one app-wide alert and no tenant is blamed.

use std::path::PathBuf;

use reqwest::Method;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::json;

use consentry::domain::webhook::EventType;

use crate::app_helpers::{TestApp, spawn_app_with};

/// A fresh RSA-2048 key and a self-signed certificate, written as PEM files.
struct TestCertificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    pem: String,
    /// The private key, PKCS#8 DER, for signing assertions in the test.
    pkcs8: Vec<u8>,
}

impl TestCertificate {
    fn generate(not_after: Option<time::OffsetDateTime>) -> TestCertificate {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("key");
        let pkcs8 = private.to_pkcs8_der().expect("pkcs8");
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "consentry test");
        if let Some(at) = not_after {
            params.not_after = at;
        }
        let cert = params.self_signed(&key).expect("cert");
        let dir = std::env::temp_dir().join(format!("consentry-cred-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(
            &key_path,
            private
                .to_pkcs8_pem(LineEnding::LF)
                .expect("pem")
                .as_bytes(),
        )
        .expect("write");
        TestCertificate {
            cert_path,
            key_path,
            pem: cert.pem(),
            pkcs8: pkcs8.as_bytes().to_vec(),
        }
    }
}

async fn spawn_with_certificate(cert: &std::path::Path, key: &std::path::Path) -> TestApp {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    spawn_app_with(|raw, _| {
        raw.set("CONSENTRY_CLIENT_SECRET", "");
        raw.set("CONSENTRY_CLIENT_CERTIFICATE", cert);
        raw.set("CONSENTRY_CLIENT_CERTIFICATE_KEY", key);
        raw.set("CONSENTRY_VERIFY_INTERVAL", "1s");
    })
    .await
}

async fn register(app: &TestApp, pem: &str) {
    let (status, body) = app
        .emulator
        .control(
            Method::POST,
            "/app/certificates",
            Some(json!({ "pem": pem })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_certificate_credential_onboards_a_tenant() {
    let cert = TestCertificate::generate(None);
    let app = spawn_with_certificate(&cert.cert_path, &cert.key_path).await;
    register(&app, &cert.pem).await;
    let contoso = app.emulator.contoso();

    let row = app.onboard(&app.browser(), &contoso).await;
    let dashboard = app.dashboard().await;

    assert_eq!(row.status, "active", "{row:?}");
    assert!(
        dashboard.contains("App credential: certificate expires"),
        "{dashboard}"
    );
}

#[tokio::test]
async fn a_certificate_microsoft_does_not_know_leaves_the_tenant_pending_with_an_alert() {
    let cert = TestCertificate::generate(None);
    let other = TestCertificate::generate(None);
    let app = spawn_with_certificate(&cert.cert_path, &cert.key_path).await;
    register(&app, &other.pem).await;
    let contoso = app.emulator.contoso();

    let browser = app.browser();
    let callback = app.consent(&browser, &contoso).await;
    browser.get(&callback).await;
    let row = app
        .poll("a refused check", 10, || async {
            app.tenant(&contoso)
                .await
                .filter(|t| t.last_error_code.is_some())
        })
        .await;

    assert_eq!(row.status, "pending");
    assert_eq!(row.last_error_code.as_deref(), Some("AADSTS700027"));
}

#[tokio::test]
async fn when_the_credential_stops_working_active_tenants_stay_active_and_operators_are_alerted() {
    let cert = TestCertificate::generate(None);
    let app = spawn_with_certificate(&cert.cert_path, &cert.key_path).await;
    register(&app, &cert.pem).await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;

    let (status, _) = app
        .emulator
        .control(Method::DELETE, "/app/certificates", None)
        .await;
    let rejected = app
        .poll("the check with the removed certificate", 15, || async {
            app.tenant(&contoso)
                .await
                .filter(|t| t.last_error_code.as_deref() == Some("AADSTS700027"))
        })
        .await;
    let dashboard = app.dashboard().await;

    assert_eq!(status, 204);
    assert_eq!(
        rejected.status, "active",
        "no tenant is blamed for the app's credential"
    );
    assert!(
        app.tenant_event_kinds(&contoso)
            .await
            .contains(&"app_credential_rejected".to_owned())
    );
    let moves: Vec<String> = app
        .events()
        .await
        .into_iter()
        .filter(|e| e.kind == "status_changed")
        .map(|e| e.detail)
        .collect();
    assert_eq!(
        moves,
        ["Status: Verifying → Active."],
        "the only move was onboarding"
    );
    assert!(
        dashboard.contains(r#"id="credential-alert""#),
        "{dashboard}"
    );
    assert!(dashboard.contains("AADSTS700027"), "{dashboard}");
}

/// A workload-identity style assertion signed RS256 by `key` (PKCS#8 DER).
fn federated_assertion(key: &[u8], issuer: &str, subject: &str) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "RS256", "typ": "JWT"})),
        b64(
            json!({"iss": issuer, "sub": subject, "aud": "api://AzureADTokenExchange", "iat": now, "nbf": now, "exp": now + 3600, "jti": uuid::Uuid::new_v4()})
        )
    );
    let pair = ring::signature::RsaKeyPair::from_pkcs8(key).expect("key");
    let mut sig = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    )
}

#[tokio::test]
async fn a_federated_assertion_file_is_read_on_every_request() {
    let issuer_key = TestCertificate::generate(None);
    let (issuer, subject) = (
        "https://kubernetes.example/cluster",
        "system:serviceaccount:consentry:app",
    );
    let file = std::env::temp_dir().join(format!("consentry-assertion-{}", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        federated_assertion(&issuer_key.pkcs8, issuer, subject),
    )
    .expect("write");
    let path = file.display().to_string();
    let app = spawn_app_with(|raw, _| {
        raw.set("CONSENTRY_CLIENT_SECRET", "");
        raw.set("CONSENTRY_CLIENT_ASSERTION_FILE", path);
        raw.set("CONSENTRY_VERIFY_INTERVAL", "1s");
    })
    .await;
    let (status, body) = app
        .emulator
        .control(
            Method::POST,
            "/app/federated",
            Some(json!({"issuer": issuer, "subject": subject, "pem": issuer_key.pem})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let contoso = app.emulator.contoso();

    let row = app.onboard(&app.browser(), &contoso).await;
    // The workload's token is replaced by one for another subject: the next check uses it.
    std::fs::write(
        &file,
        federated_assertion(&issuer_key.pkcs8, issuer, "system:serviceaccount:other:app"),
    )
    .expect("write");
    let refused = app
        .poll("a check with the new assertion", 15, || async {
            app.tenant(&contoso)
                .await
                .filter(|t| t.last_error_code.as_deref() == Some("AADSTS70021"))
        })
        .await;

    assert_eq!(row.status, "active", "{row:?}");
    assert_eq!(
        refused.status, "active",
        "the app's credential, not the tenant"
    );
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn a_certificate_close_to_expiry_is_flagged_on_the_dashboard() {
    let cert = TestCertificate::generate(Some(
        time::OffsetDateTime::now_utc() + time::Duration::days(10),
    ));
    let app = spawn_with_certificate(&cert.cert_path, &cert.key_path).await;

    let dashboard = app.dashboard().await;

    assert!(
        dashboard.contains(r#"<p class="flash error" id="credential">"#),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("(in 9 days)") || dashboard.contains("(in 10 days)"),
        "{dashboard}"
    );
}

#[tokio::test]
async fn the_credential_alert_is_one_event_when_raised_and_one_when_cleared() {
    // Arrange: an active tenant, checked every second.
    let cert = TestCertificate::generate(None);
    let app = spawn_with_certificate(&cert.cert_path, &cert.key_path).await;
    register(&app, &cert.pem).await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    let alerts = || async {
        app.store
            .webhook_events(None, Some(EventType::AppCredentialAlert), None, 100)
            .await
            .expect("events")
            .into_iter()
            .map(|e| serde_json::from_str::<serde_json::Value>(&e.payload).expect("json"))
            .collect::<Vec<_>>()
    };

    // Act: Microsoft forgets the certificate for a few checks, then learns it again.
    app.emulator
        .control(Method::DELETE, "/app/certificates", None)
        .await;
    app.poll("the alert's event", 15, || async {
        (!alerts().await.is_empty()).then_some(())
    })
    .await;
    let id = consentry::domain::TenantId::parse(&contoso).expect("guid");
    // Rejected checks: identical ones in a row are one event with a count.
    let rejected = || async {
        app.store
            .events_for(id, 1000)
            .await
            .expect("events")
            .iter()
            .filter(|e| e.kind == "app_credential_rejected")
            .map(|e| e.repeat_count as usize)
            .sum::<usize>()
    };
    for checks in 2..=3 {
        let now = time::OffsetDateTime::now_utc();
        app.store.schedule_now(&[id], now).await.expect("due");
        app.poll("another rejected check", 15, || async {
            (rejected().await >= checks).then_some(())
        })
        .await;
    }
    register(&app, &cert.pem).await;
    app.store
        .schedule_now(&[id], time::OffsetDateTime::now_utc())
        .await
        .expect("due");
    let events = app
        .poll("the cleared event", 15, || async {
            let events = alerts().await;
            (events.len() >= 2).then_some(events)
        })
        .await;

    // Assert: raised once however many checks failed, then cleared once.
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["raised", "cleared"], "{events:?}");
    assert_eq!(events[0]["type"], "app.credential_alert");
    assert_eq!(events[0]["data"]["code"], "AADSTS700027", "{events:?}");
    assert!(events[1]["data"]["cleared_at"].is_string(), "{events:?}");
    let alert = app.store.app_alert().await.expect("store").expect("row");
    assert!(alert.cleared_at.is_some(), "{alert:?}");
}

#[tokio::test]
async fn an_alert_raised_before_a_restart_is_on_the_next_instances_dashboard() {
    let cert = TestCertificate::generate(None);
    let app = spawn_with_certificate(&cert.cert_path, &cert.key_path).await;
    register(&app, &cert.pem).await;
    let contoso = app.emulator.contoso();
    app.onboard(&app.browser(), &contoso).await;
    app.emulator
        .control(Method::DELETE, "/app/certificates", None)
        .await;
    app.poll("the alert", 15, || async {
        app.store
            .app_alert()
            .await
            .expect("store")
            .filter(|a| a.cleared_at.is_none())
    })
    .await;

    // Another instance on the same database (a restart), before it checks anything.
    let database = app.database_url.clone();
    let restarted = spawn_app_with(|raw, _| raw.set("CONSENTRY_DATABASE_URL", database)).await;
    let dashboard = restarted.dashboard().await;

    assert!(
        dashboard.contains(r#"id="credential-alert""#) && dashboard.contains("AADSTS700027"),
        "{dashboard}"
    );
}

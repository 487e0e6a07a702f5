//! `--https`: a client that trusts the emulator's CA gets tokens over TLS, one that does not
//! is refused, and MSAL for Python (a real client nobody here wrote) works against it.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{claims, spawn_emulator, spawn_emulator_with};
use crate::python::run_python;

async fn spawn_https() -> crate::helpers::TestEmulator {
    let dir = std::env::temp_dir().join(format!("consentry-test-tls-{}", uuid::Uuid::new_v4()));
    spawn_emulator_with(|c| {
        c.https = true;
        c.tls_dir = Some(dir);
    })
    .await
}

#[tokio::test]
async fn https_serves_tokens_to_clients_that_trust_the_written_ca() {
    let emulator = spawn_https().await;
    emulator.consent(&emulator.contoso()).await;

    let discovery: Value = emulator
        .http
        .get(emulator.url(&format!(
            "/{}/v2.0/.well-known/openid-configuration",
            emulator.contoso()
        )))
        .send()
        .await
        .expect("discovery over TLS")
        .json()
        .await
        .expect("JSON");
    let token = emulator.access_token(&emulator.contoso()).await;

    assert!(emulator.base.starts_with("https://127.0.0.1:"));
    let ca = emulator.ca_pem.as_ref().expect("a CA path");
    assert!(
        std::fs::read_to_string(ca)
            .expect("ca.pem")
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(
        discovery["token_endpoint"],
        format!("{}/{}/oauth2/v2.0/token", emulator.base, emulator.contoso())
    );
    assert_eq!(claims(&token)["tid"], emulator.contoso());
}

#[tokio::test]
async fn https_is_refused_by_a_client_that_does_not_trust_the_ca() {
    let emulator = spawn_https().await;
    let other_ca = spawn_https().await.ca_pem.clone().expect("a CA");
    let pem = std::fs::read(other_ca).expect("ca.pem");
    let stranger = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("pem")])
        .build()
        .expect("client");

    let result = stranger
        .get(emulator.url("/_emulator/tenants"))
        .send()
        .await;

    let error = result.expect_err("an untrusted certificate must fail the handshake");
    assert!(error.is_connect(), "{error:?}");
}

#[tokio::test]
async fn plain_http_is_the_default() {
    let emulator = spawn_emulator().await;

    let response = emulator
        .http
        .get(emulator.url("/_emulator/tenants"))
        .send()
        .await
        .expect("http");

    assert!(emulator.base.starts_with("http://"));
    assert!(emulator.ca_pem.is_none());
    assert_eq!(response.status(), 200);
}

/// Runs tests/python/msal_client_credentials.py with `secret` against `emulator`.
async fn run_msal(emulator: &crate::helpers::TestEmulator, tenant: &str, secret: &str) -> Value {
    let ca = emulator.ca_pem.as_ref().expect("https");
    let args = [
        format!("{}/{tenant}", emulator.base).into(),
        emulator.client_id.clone().into(),
        secret.into(),
        ca.into(),
        emulator.base.clone().into(),
    ];
    run_python("msal_client_credentials.py", &args).await
}

#[tokio::test]
async fn msal_python_acquires_a_token_for_client_over_https_and_caches_it() {
    let emulator = spawn_https().await;
    let tenant = emulator.contoso();
    emulator.consent(&tenant).await;

    let result = run_msal(&emulator, &tenant, &emulator.client_secret).await;

    let first = &result["first"];
    assert_eq!(first["token_type"], "Bearer", "{result}");
    assert!(first["expires_in"].as_i64().unwrap_or(0) > 3000, "{result}");
    let token = first["access_token"].as_str().expect("an access token");
    assert_eq!(claims(token)["tid"], tenant);
    assert_eq!(claims(token)["appid"], emulator.client_id);
    assert_eq!(
        result["second_is_same"], true,
        "the second call is served from MSAL's cache"
    );
    assert_eq!(result["graph_status"], 200);
    assert_eq!(result["graph_body"]["value"][0]["id"], tenant);
    let requests = emulator.requests().await;
    assert_eq!(requests["tenants"][&tenant]["token_v2"], 1, "{requests}");
    assert_eq!(requests["tenants"][&tenant]["discovery"], 1, "{requests}");
}

#[tokio::test]
async fn msal_python_reports_the_emulators_error_codes() {
    let emulator = spawn_https().await;
    let tenant = emulator.contoso();
    emulator.consent(&tenant).await;

    let wrong_secret = run_msal(&emulator, &tenant, "not-the-secret").await;
    let fabrikam = "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6";
    let not_consented = run_msal(&emulator, fabrikam, &emulator.client_secret).await;

    assert_eq!(
        wrong_secret["first"]["error"], "invalid_client",
        "{wrong_secret}"
    );
    assert_eq!(wrong_secret["first"]["error_codes"][0], 7000215);
    assert_eq!(
        not_consented["first"]["error"], "unauthorized_client",
        "{not_consented}"
    );
    assert_eq!(not_consented["first"]["error_codes"][0], 700016);
}

/// Runs tests/python/msal_certificate_credential.py for `tenant` with a key and its
/// certificate, both as PEM files.
async fn run_msal_with_certificate(
    emulator: &crate::helpers::TestEmulator,
    tenant: &str,
    key_pem: &Path,
    cert_pem: &Path,
) -> Value {
    let args = [
        format!("{}/{tenant}", emulator.base).into(),
        emulator.client_id.clone().into(),
        key_pem.into(),
        cert_pem.into(),
        emulator.ca_pem.as_ref().expect("https").into(),
    ];
    run_python("msal_certificate_credential.py", &args).await
}

#[tokio::test]
async fn msal_python_authenticates_with_a_certificate_in_both_forms() {
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};
    let emulator = spawn_https().await;
    let tenant = emulator.contoso();
    emulator.consent(&tenant).await;
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("an RSA key");
    let pkcs8 = key.to_pkcs8_der().expect("PKCS#8");
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.as_bytes().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("rcgen takes the key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "consentry MSAL test");
    let cert = params.self_signed(&key_pair).expect("self-signed");
    let dir = std::env::temp_dir().join(format!("consentry-msal-cert-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let (key_path, cert_path) = (dir.join("client.key"), dir.join("client.pem"));
    std::fs::write(
        &key_path,
        key.to_pkcs8_pem(LineEnding::LF).expect("PEM").as_bytes(),
    )
    .expect("writes the key");
    std::fs::write(&cert_path, cert.pem()).expect("writes the certificate");
    let (status, body) = emulator
        .control(
            reqwest::Method::POST,
            "/app/certificates",
            Some(serde_json::json!({ "pem": cert.pem() })),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let result = run_msal_with_certificate(&emulator, &tenant, &key_path, &cert_path).await;
    let _ = std::fs::remove_dir_all(&dir);

    for form in ["thumbprint", "public_certificate"] {
        let token = result[form]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("{form}: {result}"));
        assert_eq!(claims(token)["appidacr"], "2", "{form}");
        assert_eq!(claims(token)["tid"], tenant, "{form}");
    }
}

//! Certificate credentials (client assertions signed with a registered certificate's key)
//! and federated credentials (tokens of a trusted external issuer), ENTRA.md §3.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::Method;
use rsa::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};

use crate::helpers::{TestEmulator, assert_sts_error, claims, spawn_emulator, spawn_emulator_with};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An RSA key and a self-signed certificate for it.
struct TestCertificate {
    pkcs8: Vec<u8>,
    pem: String,
    der: Vec<u8>,
}

impl TestCertificate {
    /// rcgen cannot make RSA keys with ring, so the `rsa` crate makes the key (as the
    /// emulator's own signing key is made) and rcgen certifies it.
    fn generate(valid_from_days: i64, valid_until_days: i64) -> TestCertificate {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("an RSA key");
        let pkcs8 = key.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec();
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_slice().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .expect("rcgen takes the key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "consentry test client");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(valid_from_days);
        params.not_after = now + time::Duration::days(valid_until_days);
        let cert = params.self_signed(&key_pair).expect("self-signed");
        TestCertificate {
            pkcs8,
            pem: cert.pem(),
            der: cert.der().to_vec(),
        }
    }

    fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &self.der,
        ))
    }

    fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &self.der))
    }

    /// A compact JWS over `header` and `claims`, signed PS256 or RS256.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let alg: &dyn ring::signature::RsaEncoding = match header["alg"].as_str() {
            Some("RS256") => &ring::signature::RSA_PKCS1_SHA256,
            _ => &ring::signature::RSA_PSS_SHA256,
        };
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = ring::signature::RsaKeyPair::from_pkcs8(&self.pkcs8).expect("ring loads it");
        let mut signature = vec![0u8; key.public().modulus_len()];
        key.sign(
            alg,
            &ring::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .expect("signs");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Generating RSA keys is slow in a debug build: the tests share two.
fn certificate() -> &'static TestCertificate {
    static CERT: OnceLock<TestCertificate> = OnceLock::new();
    CERT.get_or_init(|| TestCertificate::generate(-1, 365))
}

fn other_certificate() -> &'static TestCertificate {
    static CERT: OnceLock<TestCertificate> = OnceLock::new();
    CERT.get_or_init(|| TestCertificate::generate(-1, 365))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

impl TestEmulator {
    fn token_endpoint(&self, tenant: &str) -> String {
        self.url(&format!("/{tenant}/oauth2/v2.0/token"))
    }

    /// The claims MSAL puts in a certificate assertion for `tenant`'s v2 endpoint.
    fn assertion_claims(&self, tenant: &str) -> Value {
        let now = now();
        json!({
            "aud": self.token_endpoint(tenant),
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
        })
    }

    /// A v2 token request authenticated by `assertion` instead of the secret.
    async fn token_with_assertion(&self, tenant: &str, assertion: &str) -> reqwest::Response {
        self.token_v2(
            tenant,
            &[
                ("client_secret", ""),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ],
        )
        .await
    }

    async fn register_certificate(&self, pem: &str) -> (u16, Value) {
        self.control(
            Method::POST,
            "/app/certificates",
            Some(json!({ "pem": pem })),
        )
        .await
    }
}

fn ps256(cert: &TestCertificate) -> Value {
    json!({"alg": "PS256", "typ": "JWT", "x5t#S256": cert.x5t_s256()})
}

fn rs256(cert: &TestCertificate) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "x5t": cert.x5t()})
}

/// An emulator with Contoso consented and the shared certificate registered.
async fn with_certificate() -> TestEmulator {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let (status, body) = emulator.register_certificate(&certificate().pem).await;
    assert_eq!(status, 201, "{body}");
    emulator
}

async fn description(response: reqwest::Response, status: u16, error: &str, code: u64) -> String {
    let body = assert_sts_error(response, status, error, code).await;
    body["error_description"]
        .as_str()
        .expect("error_description")
        .to_owned()
}

#[tokio::test]
async fn registering_a_certificate_answers_its_thumbprints() {
    let emulator = spawn_emulator().await;
    let cert = certificate();

    let (status, registered) = emulator.register_certificate(&cert.pem).await;
    let (_, listed) = emulator
        .control(Method::GET, "/app/certificates", None)
        .await;
    let (_, app) = emulator.control(Method::GET, "/app", None).await;

    assert_eq!(status, 201, "{registered}");
    assert_eq!(registered["x5t"], cert.x5t());
    assert_eq!(registered["x5t#S256"], cert.x5t_s256());
    assert_eq!(registered["common_name"], "consentry test client");
    let not_after = registered["not_after"].as_str().expect("not_after");
    assert!(
        time::OffsetDateTime::parse(not_after, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|t| t > time::OffsetDateTime::now_utc()),
        "{not_after}"
    );
    assert_eq!(listed, json!([registered]));
    assert_eq!(app["certificates"], json!([registered]));
}

#[tokio::test]
async fn ps256_assertion_naming_x5t_s256_gets_a_token_with_appidacr_2() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let assertion = certificate().sign(&ps256(certificate()), &emulator.assertion_claims(&contoso));

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    let token = claims(body["access_token"].as_str().expect("a token"));
    assert_eq!(token["appidacr"], "2", "{token}");
    assert_eq!(token["tid"], contoso);
    assert_eq!(token["appid"], emulator.client_id);
}

#[tokio::test]
async fn rs256_assertion_naming_x5t_gets_a_token() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let assertion = certificate().sign(&rs256(certificate()), &emulator.assertion_claims(&contoso));

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_secret_still_gets_appidacr_1_beside_a_certificate() {
    let emulator = with_certificate().await;

    let token = emulator.access_token(&emulator.contoso()).await;

    assert_eq!(claims(&token)["appidacr"], "1");
}

#[tokio::test]
async fn v1_endpoint_takes_an_assertion_for_its_own_url() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let mut claims = emulator.assertion_claims(&contoso);
    claims["aud"] = json!(emulator.url(&format!("/{contoso}/oauth2/token")));
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &emulator.client_id)
        .append_pair("client_assertion_type", JWT_BEARER)
        .append_pair(
            "client_assertion",
            &certificate().sign(&ps256(certificate()), &claims),
        )
        .append_pair("resource", "https://graph.microsoft.com")
        .finish();

    let response = emulator.token_raw(&contoso, "v1", body).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn audience_may_name_the_tenant_by_domain_or_any_clouds_authority() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let audiences = [
        emulator.token_endpoint("contoso.onmicrosoft.com"),
        format!("https://login.microsoftonline.com/{contoso}/oauth2/v2.0/token"),
        "https://login.microsoftonline.com/contoso.com/oauth2/token".to_owned(),
        format!("https://login.microsoftonline.us/{contoso}/oauth2/v2.0/token"),
        format!("https://login.chinacloudapi.cn/{contoso}/oauth2/token"),
    ];

    for aud in audiences {
        let mut claims = emulator.assertion_claims(&contoso);
        claims["aud"] = json!(aud);
        let assertion = certificate().sign(&ps256(certificate()), &claims);
        let response = emulator.token_with_assertion(&contoso, &assertion).await;
        assert_eq!(response.status(), 200, "{aud}");
    }
}

#[tokio::test]
async fn unregistered_certificate_is_700027_key_not_found() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let other = other_certificate();
    let assertion = other.sign(&ps256(other), &emulator.assertion_claims(&contoso));

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    let text = description(response, 401, "invalid_client", 700027).await;
    assert!(text.contains("The key was not found."), "{text}");
}

#[tokio::test]
async fn signature_by_another_key_under_a_registered_thumbprint_is_700027() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let assertion =
        other_certificate().sign(&ps256(certificate()), &emulator.assertion_claims(&contoso));

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    let text = description(response, 401, "invalid_client", 700027).await;
    assert!(text.contains("signature"), "{text}");
    assert!(!text.contains("The key was not found."), "{text}");
}

#[tokio::test]
async fn tampered_assertion_is_700027() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let assertion = certificate().sign(&ps256(certificate()), &emulator.assertion_claims(&contoso));
    let (signed, _) = assertion.rsplit_once('.').expect("three parts");
    let (header, _) = signed.split_once('.').expect("three parts");
    let mut forged = emulator.assertion_claims(&contoso);
    forged["sub"] = json!("someone-else");
    let tampered = format!(
        "{header}.{}.{}",
        URL_SAFE_NO_PAD.encode(forged.to_string()),
        assertion.rsplit_once('.').expect("three parts").1
    );

    let response = emulator.token_with_assertion(&contoso, &tampered).await;

    assert_sts_error(response, 401, "invalid_client", 700027).await;
}

#[tokio::test]
async fn rs256_signature_under_a_ps256_header_is_700027() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let rs = certificate().sign(&rs256(certificate()), &emulator.assertion_claims(&contoso));
    let claims_and_signature = rs.split_once('.').expect("three parts").1;
    let relabelled = format!(
        "{}.{claims_and_signature}",
        URL_SAFE_NO_PAD.encode(json!({"alg": "PS256", "x5t": certificate().x5t()}).to_string())
    );

    let response = emulator.token_with_assertion(&contoso, &relabelled).await;

    assert_sts_error(response, 401, "invalid_client", 700027).await;
}

#[tokio::test]
async fn expired_assertion_is_700024() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let mut claims = emulator.assertion_claims(&contoso);
    claims["nbf"] = json!(now() - 1200);
    claims["exp"] = json!(now() - 600);
    let assertion = certificate().sign(&ps256(certificate()), &claims);

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    let text = description(response, 401, "invalid_client", 700024).await;
    assert!(
        text.contains("Client assertion is not within its valid time range."),
        "{text}"
    );
}

#[tokio::test]
async fn assertion_not_yet_valid_is_700024() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let mut claims = emulator.assertion_claims(&contoso);
    claims["nbf"] = json!(now() + 600);
    claims["exp"] = json!(now() + 1200);
    let assertion = certificate().sign(&ps256(certificate()), &claims);

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_sts_error(response, 401, "invalid_client", 700024).await;
}

#[tokio::test]
async fn assertion_a_little_past_expiry_is_within_the_five_minute_skew() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let mut claims = emulator.assertion_claims(&contoso);
    claims["exp"] = json!(now() - 120);
    let assertion = certificate().sign(&ps256(certificate()), &claims);

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn assertion_expires_when_the_emulator_clock_moves_on() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let assertion = certificate().sign(&ps256(certificate()), &emulator.assertion_claims(&contoso));

    emulator.advance_clock(3600).await;
    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_sts_error(response, 401, "invalid_client", 700024).await;
}

#[tokio::test]
async fn another_application_id_as_issuer_and_subject_is_700021() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let other_app = uuid::Uuid::new_v4().to_string();
    let mut claims = emulator.assertion_claims(&contoso);
    claims["iss"] = json!(other_app);
    claims["sub"] = json!(other_app);
    let assertion = certificate().sign(&ps256(certificate()), &claims);

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    let text = description(response, 401, "invalid_client", 700021).await;
    assert!(
        text.contains(
            "Client assertion application identifier doesn't match 'client_id' parameter."
        ),
        "{text}"
    );
}

#[tokio::test]
async fn issuer_differing_from_subject_is_50048() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let mut claims = emulator.assertion_claims(&contoso);
    claims["iss"] = json!(uuid::Uuid::new_v4().to_string());
    let assertion = certificate().sign(&ps256(certificate()), &claims);

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_sts_error(response, 401, "invalid_client", 50048).await;
}

#[tokio::test]
async fn audience_of_another_tenant_or_host_is_700023() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let wrong = [
        emulator.token_endpoint(crate::helpers::FABRIKAM),
        "https://login.example.com/contoso.com/oauth2/v2.0/token".to_owned(),
        emulator.url(&format!("/{contoso}/oauth2/v2.0/authorize")),
        emulator.url(&format!("/{contoso}/v2.0")),
    ];

    for aud in wrong {
        let mut claims = emulator.assertion_claims(&contoso);
        claims["aud"] = json!(aud);
        let assertion = certificate().sign(&ps256(certificate()), &claims);
        let response = emulator.token_with_assertion(&contoso, &assertion).await;
        assert_sts_error(response, 401, "invalid_client", 700023).await;
    }
}

#[tokio::test]
async fn malformed_assertion_or_one_without_jti_is_50027() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let mut no_jti = emulator.assertion_claims(&contoso);
    no_jti.as_object_mut().expect("an object").remove("jti");
    let mut audience_array = emulator.assertion_claims(&contoso);
    audience_array["aud"] = json!([emulator.token_endpoint(&contoso)]);
    let malformed = [
        "not-a-jwt".to_owned(),
        "a.b.c".to_owned(),
        certificate().sign(&ps256(certificate()), &no_jti),
        certificate().sign(&ps256(certificate()), &audience_array),
    ];

    for assertion in malformed {
        let response = emulator.token_with_assertion(&contoso, &assertion).await;
        let text = description(response, 400, "invalid_request", 50027).await;
        assert!(
            text.contains("JWT token is invalid or malformed."),
            "{text}"
        );
    }
}

#[tokio::test]
async fn expired_certificate_is_700027_the_key_used_is_expired() {
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let expired = TestCertificate::generate(-30, -1);
    let (status, body) = emulator.register_certificate(&expired.pem).await;
    assert_eq!(
        status, 201,
        "expired certificates can be registered: {body}"
    );
    let assertion = expired.sign(&ps256(&expired), &emulator.assertion_claims(&contoso));

    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    let text = description(response, 401, "invalid_client", 700027).await;
    assert!(text.contains("The key used is expired."), "{text}");
}

#[tokio::test]
async fn deleting_the_certificates_unregisters_them() {
    let emulator = with_certificate().await;
    let contoso = emulator.contoso();
    let assertion = certificate().sign(&ps256(certificate()), &emulator.assertion_claims(&contoso));

    let (status, _) = emulator
        .control(Method::DELETE, "/app/certificates", None)
        .await;
    let response = emulator.token_with_assertion(&contoso, &assertion).await;
    let (_, listed) = emulator
        .control(Method::GET, "/app/certificates", None)
        .await;

    assert_eq!(status, 204);
    assert_sts_error(response, 401, "invalid_client", 700027).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn registration_refuses_what_is_not_an_rsa_certificate() {
    let emulator = spawn_emulator().await;
    let key_pem = {
        let der = &certificate().pkcs8;
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der)
        )
    };
    let ecdsa = rcgen::generate_simple_self_signed(vec!["client.example".to_owned()])
        .expect("an ECDSA certificate");
    let cases = [
        (json!({"pem": "hello"}), "not a PEM certificate"),
        (json!({"pem": key_pem}), "PRIVATE KEY"),
        (
            json!({"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}),
            "X.509",
        ),
        (json!({"pem": ecdsa.cert.pem()}), "not RSA"),
        (json!({"certificate": "x"}), "unknown field"),
        (json!({}), "missing field"),
    ];

    for (body, reason) in cases {
        let (status, error) = emulator
            .control(Method::POST, "/app/certificates", Some(body.clone()))
            .await;
        assert_eq!(status, 400, "{body} -> {error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains(reason)),
            "{reason}: {error}"
        );
    }
    let (_, listed) = emulator
        .control(Method::GET, "/app/certificates", None)
        .await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn registering_the_same_certificate_twice_is_409() {
    let emulator = spawn_emulator().await;
    emulator.register_certificate(&certificate().pem).await;

    let (status, body) = emulator.register_certificate(&certificate().pem).await;

    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn certificate_files_given_at_start_are_registered() {
    let path = std::env::temp_dir().join(format!("consentry-cert-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&path, &certificate().pem).expect("writes the certificate");
    let emulator = spawn_emulator_with(|c| c.certificates = vec![path.clone()]).await;
    let _ = std::fs::remove_file(&path);
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    let assertion = certificate().sign(&rs256(certificate()), &emulator.assertion_claims(&contoso));

    let (_, app) = emulator.control(Method::GET, "/app", None).await;
    let response = emulator.token_with_assertion(&contoso, &assertion).await;

    assert_eq!(app["certificates"][0]["x5t"], certificate().x5t(), "{app}");
    assert_eq!(response.status(), 200);
}

// Federated credentials (workload identity).

const ISSUER: &str = "https://oidc.example.com/cluster-1";
const SUBJECT: &str = "system:serviceaccount:jobs:consentry";
const EXCHANGE: &str = "api://AzureADTokenExchange";

/// An emulator with Contoso consented and a federated credential trusting the shared
/// (issuer) certificate for ISSUER/SUBJECT.
async fn with_federated() -> TestEmulator {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let (status, body) = emulator
        .control(
            Method::POST,
            "/app/federated",
            Some(json!({"issuer": ISSUER, "subject": SUBJECT, "pem": certificate().pem})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    emulator
}

/// A workload-identity token, as a Kubernetes cluster issues it: RS256, `aud` an array.
fn workload_token(key: &TestCertificate, issuer: &str, subject: &str) -> String {
    let now = now();
    key.sign(
        &json!({"alg": "RS256", "kid": "cluster-key-1"}),
        &json!({
            "iss": issuer,
            "sub": subject,
            "aud": [EXCHANGE],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }),
    )
}

#[tokio::test]
async fn federated_credentials_are_listed_with_their_defaults() {
    let emulator = with_federated().await;

    let (_, listed) = emulator.control(Method::GET, "/app/federated", None).await;
    let (_, app) = emulator.control(Method::GET, "/app", None).await;

    assert_eq!(listed[0]["issuer"], ISSUER, "{listed}");
    assert_eq!(listed[0]["subject"], SUBJECT);
    assert_eq!(listed[0]["audience"], EXCHANGE);
    assert_eq!(
        listed[0]["certificate"]["x5t#S256"],
        certificate().x5t_s256()
    );
    assert_eq!(app["federated"], listed);
}

#[tokio::test]
async fn matching_workload_token_gets_an_app_token() {
    let emulator = with_federated().await;
    let contoso = emulator.contoso();

    let response = emulator
        .token_with_assertion(&contoso, &workload_token(certificate(), ISSUER, SUBJECT))
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    let token = claims(body["access_token"].as_str().expect("a token"));
    assert_eq!(token["appidacr"], "2");
    assert_eq!(token["tid"], contoso);
}

#[tokio::test]
async fn workload_token_of_another_subject_or_issuer_is_70021() {
    let emulator = with_federated().await;
    let contoso = emulator.contoso();

    for (issuer, subject) in [
        (ISSUER, "system:serviceaccount:jobs:other"),
        ("https://oidc.example.com/cluster-2", SUBJECT),
        (&ISSUER.to_uppercase(), SUBJECT),
    ] {
        let response = emulator
            .token_with_assertion(&contoso, &workload_token(certificate(), issuer, subject))
            .await;
        let text = description(response, 400, "invalid_request", 70021).await;
        assert!(
            text.contains("No matching federated identity record found for presented assertion."),
            "{text}"
        );
        assert!(
            text.contains(&format!("Assertion Subject: '{subject}'")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn workload_token_signed_by_another_key_is_refused() {
    let emulator = with_federated().await;
    let contoso = emulator.contoso();

    let response = emulator
        .token_with_assertion(
            &contoso,
            &workload_token(other_certificate(), ISSUER, SUBJECT),
        )
        .await;

    assert_sts_error(response, 401, "invalid_client", 700027).await;
}

#[tokio::test]
async fn expired_workload_token_is_700024() {
    let emulator = with_federated().await;
    let contoso = emulator.contoso();
    let token = workload_token(certificate(), ISSUER, SUBJECT);

    emulator.advance_clock(2 * 3600).await;
    let response = emulator.token_with_assertion(&contoso, &token).await;

    assert_sts_error(response, 401, "invalid_client", 700024).await;
}

#[tokio::test]
async fn federated_registration_validates_its_fields() {
    let emulator = with_federated().await;
    let cases = [
        (
            json!({"issuer": "", "subject": "s", "pem": certificate().pem}),
            400,
        ),
        (json!({"issuer": "i", "subject": "s", "pem": "nope"}), 400),
        (json!({"issuer": "i", "subject": "s"}), 400),
        (
            json!({"issuer": "i", "subject": "s", "pem": certificate().pem, "extra": 1}),
            400,
        ),
        (
            json!({"issuer": ISSUER, "subject": SUBJECT, "pem": other_certificate().pem}),
            409,
        ),
    ];

    for (body, expected) in cases {
        let (status, error) = emulator
            .control(Method::POST, "/app/federated", Some(body.clone()))
            .await;
        assert_eq!(status, expected, "{body} -> {error}");
    }
    let (cleared, _) = emulator
        .control(Method::DELETE, "/app/federated", None)
        .await;
    let (_, listed) = emulator.control(Method::GET, "/app/federated", None).await;
    assert_eq!(cleared, 204);
    assert_eq!(listed, json!([]));
}

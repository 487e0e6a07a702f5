//! Webhook foundations: deliveries to a receiver on this machine (the address guard,
//! redirects, Retry-After), and signatures checked by the Standard Webhooks reference
//! library for Python, the way a customer's receiver would check them.

use std::net::SocketAddr;

use consentry::webhooks::{
    DeliveryClient, DeliveryError, DeliveryOutcome, NonPublic, WebhookSecret, signature,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use url::Url;

use crate::python::run_python;

/// One request as the receiver read it.
#[derive(Debug)]
struct Received {
    /// Request line, e.g. `POST /hook HTTP/1.1`.
    line: String,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A receiver on 127.0.0.1:0 that answers every request with `response` (a raw HTTP/1.1
/// response) and hands over each request it read.
async fn spawn_receiver(response: String) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let line = lines.next().unwrap_or_default().to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body = buf[head_end..head_end + length].to_vec();
                let _ = tx.send(Received {
                    line,
                    headers,
                    body,
                });
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, rx)
}

fn answer(status: &str, extra_headers: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{extra_headers}content-length: 0\r\nconnection: close\r\n\r\n")
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

/// The Standard Webhooks headers for `body`, signed with `secrets`, at the current time
/// (the reference library refuses timestamps more than 5 minutes away).
fn signed(msg_id: &str, body: &[u8], secrets: &[&WebhookSecret]) -> HeaderMap {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut headers = HeaderMap::new();
    for (name, value) in signature::headers(msg_id, now, body, secrets) {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    headers
}

fn body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "tenant.connected",
        "timestamp": "2026-11-30T21:00:00Z",
        "data": {"tenant_id": "0c1d2e3f-0000-4000-8000-000000000001", "note": "caf\u{e9}"}
    }))
    .unwrap()
}

/// Checks a delivery as a receiver holding `secret` would, with the reference library.
async fn verify_with_reference_library(secret: &WebhookSecret, received: &Received) -> Value {
    let args: Vec<std::ffi::OsString> = vec![
        secret.expose_encoded().expose_secret().into(),
        received.header("webhook-id").unwrap().into(),
        received.header("webhook-timestamp").unwrap().into(),
        received.header("webhook-signature").unwrap().into(),
        String::from_utf8(received.body.clone()).unwrap().into(),
    ];
    run_python("verify_webhook.py", &args).await
}

#[tokio::test]
async fn a_delivery_carries_the_signed_body_and_the_reference_library_verifies_it() {
    // Arrange
    let (addr, mut requests) = spawn_receiver(answer("204 No Content", "")).await;
    let secret = WebhookSecret::generate().unwrap();
    let client = DeliveryClient::new(true).unwrap();
    let body = body();

    // Act
    let outcome = client
        .deliver(
            &url(&format!("http://{addr}/hook?source=consentry")),
            signed("msg_01", &body, &[&secret]),
            body.clone(),
        )
        .await
        .unwrap();
    let received = requests.recv().await.unwrap();
    let verified = verify_with_reference_library(&secret, &received).await;
    let mut tampered = received;
    tampered.body = String::from_utf8(body.clone())
        .unwrap()
        .replace("tenant.connected", "tenant.gone")
        .into_bytes();
    let refused = verify_with_reference_library(&secret, &tampered).await;

    // Assert
    assert_eq!(outcome.status, 204);
    assert!(outcome.is_success());
    assert_eq!(outcome.retry_after, None);
    assert_eq!(tampered.line, "POST /hook?source=consentry HTTP/1.1");
    assert_eq!(tampered.header("content-type"), Some("application/json"));
    assert!(
        tampered
            .header("user-agent")
            .unwrap()
            .starts_with("consentry-webhooks/")
    );
    assert_eq!(tampered.header("webhook-id"), Some("msg_01"));
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(
        verified["payload"],
        serde_json::from_slice::<Value>(&body).unwrap()
    );
    assert_eq!(refused["verified"], false, "{refused}");
}

#[tokio::test]
async fn during_a_rotation_a_receiver_with_either_secret_verifies() {
    // Arrange
    let (addr, mut requests) = spawn_receiver(answer("200 OK", "")).await;
    let old = WebhookSecret::generate().unwrap();
    let new = WebhookSecret::generate().unwrap();
    let stranger = WebhookSecret::generate().unwrap();
    let client = DeliveryClient::new(true).unwrap();
    let body = body();

    // Act
    client
        .deliver(
            &url(&format!("http://{addr}/")),
            signed("msg_rotating", &body, &[&old, &new]),
            body,
        )
        .await
        .unwrap();
    let received = requests.recv().await.unwrap();
    let with_new = verify_with_reference_library(&new, &received).await;
    let with_old = verify_with_reference_library(&old, &received).await;
    let with_stranger = verify_with_reference_library(&stranger, &received).await;

    // Assert
    let signatures = received.header("webhook-signature").unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert_eq!(with_new["verified"], true, "{with_new}");
    assert_eq!(with_old["verified"], true, "{with_old}");
    assert_eq!(with_stranger["verified"], false, "{with_stranger}");
}

#[tokio::test]
async fn loopback_receivers_are_refused_unless_private_addresses_are_allowed() {
    // Arrange
    let (addr, mut requests) = spawn_receiver(answer("204 No Content", "")).await;
    let guarded = DeliveryClient::new(false).unwrap();
    let by_address = url(&format!("http://{addr}/hook"));
    // `localhost` is a name: refused on what it resolves to, not on what it says.
    let by_name = url(&format!("http://localhost:{}/hook", addr.port()));
    let mapped = url(&format!("http://[::ffff:127.0.0.1]:{}/hook", addr.port()));

    // Act
    let mut refusals = Vec::new();
    for target in [&by_address, &by_name, &mapped] {
        refusals.push(guarded.deliver(target, HeaderMap::new(), body()).await);
    }

    // Assert
    for refusal in &refusals {
        match refusal {
            Err(DeliveryError::NotPublic { kind, .. }) => assert_eq!(*kind, NonPublic::Loopback),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    let shown = refusals[1].as_ref().unwrap_err().to_string();
    assert!(shown.contains("loopback"), "{shown}");
    assert!(shown.contains("CONSENTRY_WEBHOOK_ALLOW_PRIVATE"), "{shown}");
    assert!(requests.try_recv().is_err(), "nothing reached the receiver");
}

#[tokio::test]
async fn allowed_private_deliveries_reach_a_receiver_by_name_too() {
    // Arrange
    let (addr, mut requests) = spawn_receiver(answer("202 Accepted", "")).await;
    let open = DeliveryClient::new(true).unwrap();

    // Act
    let outcome = open
        .deliver(
            &url(&format!("http://localhost:{}/by-name", addr.port())),
            HeaderMap::new(),
            body(),
        )
        .await
        .unwrap();

    // Assert
    assert_eq!(outcome.status, 202);
    assert_eq!(
        requests.recv().await.unwrap().line,
        "POST /by-name HTTP/1.1"
    );
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    // Arrange
    let (elsewhere, mut followed) = spawn_receiver(answer("200 OK", "")).await;
    let (addr, mut requests) = spawn_receiver(answer(
        "302 Found",
        &format!("location: http://{elsewhere}/stolen\r\n"),
    ))
    .await;
    let open = DeliveryClient::new(true).unwrap();

    // Act
    let outcome = open
        .deliver(&url(&format!("http://{addr}/")), HeaderMap::new(), body())
        .await
        .unwrap();

    // Assert
    assert_eq!(outcome.status, 302);
    assert!(!outcome.is_success());
    assert!(requests.recv().await.is_some());
    assert!(followed.try_recv().is_err(), "the redirect was followed");
}

#[tokio::test]
async fn throttling_and_gone_answers_are_reported() {
    // Arrange
    let (throttling, _r1) =
        spawn_receiver(answer("429 Too Many Requests", "retry-after: 7\r\n")).await;
    let (forever, _r2) = spawn_receiver(answer(
        "503 Service Unavailable",
        "retry-after: 99999999\r\n",
    ))
    .await;
    let (gone, _r3) = spawn_receiver(answer("410 Gone", "")).await;
    let open = DeliveryClient::new(true).unwrap();
    let send = |addr: SocketAddr| {
        let open = open.clone();
        async move {
            open.deliver(&url(&format!("http://{addr}/")), HeaderMap::new(), body())
                .await
                .unwrap()
        }
    };

    // Act
    let throttled: DeliveryOutcome = send(throttling).await;
    let capped = send(forever).await;
    let gone = send(gone).await;

    // Assert
    assert_eq!(throttled.status, 429);
    assert_eq!(
        throttled.retry_after,
        Some(std::time::Duration::from_secs(7))
    );
    assert!(!throttled.is_success());
    assert_eq!(capped.status, 503);
    assert_eq!(
        capped.retry_after,
        Some(consentry::webhooks::client::MAX_RETRY_AFTER)
    );
    assert!(gone.is_gone());
    assert!(!gone.is_success());
}

#[tokio::test]
async fn non_http_urls_and_dead_receivers_fail_without_quoting_url_or_body() {
    // Arrange: a port nobody listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let open = DeliveryClient::new(true).unwrap();
    let secret = WebhookSecret::generate().unwrap();
    let body = br#"{"data":"body-marker"}"#.to_vec();

    // Act
    let scheme = open
        .deliver(&url("ftp://127.0.0.1/hook"), HeaderMap::new(), body.clone())
        .await;
    let file = open
        .deliver(&url("file:///etc/passwd"), HeaderMap::new(), body.clone())
        .await;
    let dead = open
        .deliver(
            &url(&format!("http://{closed}/hook?token=url-marker")),
            signed("msg_dead", &body, &[&secret]),
            body,
        )
        .await;

    // Assert
    assert_eq!(scheme, Err(DeliveryError::UnsupportedScheme("ftp".into())));
    assert_eq!(file, Err(DeliveryError::UnsupportedScheme("file".into())));
    let dead = dead.unwrap_err();
    assert!(matches!(dead, DeliveryError::Connect { .. }), "{dead:?}");
    let shown = format!("{dead} {dead:?}");
    for marker in [
        "body-marker",
        "url-marker",
        secret.expose_encoded().expose_secret(),
    ] {
        assert!(!shown.contains(marker), "{shown}");
    }
}

//! What `consentry serve` writes: at `RUST_LOG=trace`, through the whole flow, no secret,
//! token, password, state or cookie value; and a client's malformed HTTP is not logged as
//! our error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use consentry::emulator::CONTOSO;
use consentry::store::Store;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app_helpers::{hidden, random_token, state_of, ts};
use crate::crash::{ServeConfig, Served, free_port};
use crate::helpers::spawn_emulator_with;

fn browser() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .expect("client");
    (http, jar)
}

/// The value of cookie `name` the jar would send to `url`.
fn cookie(jar: &Jar, url: &str, name: &str) -> Option<String> {
    let header = jar.cookies(&url::Url::parse(url).expect("url"))?;
    header
        .to_str()
        .expect("ascii")
        .split("; ")
        .find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
}

/// `output` without ANSI colour sequences.
fn plain(output: &str) -> String {
    let mut out = String::with_capacity(output.len());
    let mut chars = output.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn poll_until(what: &str, secs: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_at_trace_level_logs_no_secret_token_password_state_or_cookie() {
    whole_flow_logs_no_secret(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_in_json_logs_no_secret_and_every_line_is_a_json_object() {
    let output = whole_flow_logs_no_secret(Some("json")).await;

    let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() > 10, "{output}");
    for line in lines {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        assert!(
            value["timestamp"].is_string() && value["level"].is_string(),
            "{line}"
        );
    }
}

/// The whole flow through `consentry serve` at `RUST_LOG=trace` in log `format` (the
/// default when `None`): asserts no secret is in its output, and returns the output.
async fn whole_flow_logs_no_secret(format: Option<&str>) -> String {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client_secret = format!("emulator-secret-{}", uuid::Uuid::new_v4().simple());
    let emulator = spawn_emulator_with(|c| {
        c.redirect_uris = vec![format!("{base}/consent/callback")];
        c.client_secret = client_secret.clone();
    })
    .await;
    let mut config = ServeConfig::new(port, &emulator);
    config.env.push(("RUST_LOG".into(), "trace".into()));
    if let Some(format) = format {
        config
            .env
            .push(("CONSENTRY_LOG_FORMAT".into(), format.to_owned()));
    }
    let password = format!("operator-password-{}", uuid::Uuid::new_v4().simple());
    let store = Store::connect(&config.database_url).await.expect("store");
    let hash = consentry::domain::password::hash_password(&password).expect("hash");
    store
        .upsert_operator("ops", &hash, time::OffsetDateTime::now_utc())
        .await
        .expect("operator");
    let served = Served::start(&config).await;

    // A customer signs up, consents on Microsoft's (the emulator's) page, comes back.
    let (customer, customer_jar) = browser();
    let landing = customer
        .get(format!("{base}/"))
        .send()
        .await
        .expect("GET /");
    let csrf = hidden(&landing.text().await.expect("html"), "csrf");
    let form_cookie = cookie(&customer_jar, &base, "consentry_form").expect("form cookie");
    let signup = customer
        .post(format!("{base}/signup"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("organisation_name", "Contoso Ltd"),
            ("contact_email", "admin@contoso.example"),
        ])
        .send()
        .await
        .expect("POST /signup");
    assert_eq!(signup.status(), 303);
    let to_microsoft = signup.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let state = state_of(&to_microsoft);
    let binding = cookie(
        &customer_jar,
        &format!("{base}/consent/callback"),
        "consentry_binding",
    )
    .expect("binding cookie");
    let callback = emulator
        .decide(&to_microsoft, "accept", Some(&CONTOSO.to_string()))
        .await;
    let back = customer.get(&callback).send().await.expect("callback");
    assert_eq!(back.status(), 303, "the callback is accepted");
    poll_until("the status page to say connected", 30, async || {
        let page = customer
            .get(format!("{base}/consent/status"))
            .send()
            .await
            .expect("status page");
        page.status() == 200 && page.text().await.expect("html").contains("connected")
    })
    .await;

    // A refused callback: someone else's browser, a state we never issued.
    let (stranger, _) = browser();
    let refused = stranger
        .get(format!(
            "{base}/consent/callback?admin_consent=True&tenant={CONTOSO}&state={}",
            random_token()
        ))
        .send()
        .await
        .expect("refused callback");
    assert_eq!(refused.status(), 400);

    // The operator: a wrong password, then the right one, the dashboard, "verify now".
    let (operator, operator_jar) = browser();
    let page = operator
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .expect("login page");
    let login_csrf = hidden(&page.text().await.expect("html"), "csrf");
    let operator_form_cookie = cookie(&operator_jar, &base, "consentry_form").expect("form cookie");
    let wrong = operator
        .post(format!("{base}/admin/login"))
        .form(&[
            ("csrf", login_csrf.as_str()),
            ("name", "ops"),
            ("password", "not-the-password-at-all"),
        ])
        .send()
        .await
        .expect("wrong password");
    assert_eq!(wrong.status(), 401);
    let right = operator
        .post(format!("{base}/admin/login"))
        .form(&[
            ("csrf", login_csrf.as_str()),
            ("name", "ops"),
            ("password", &password),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(right.status(), 303);
    let session = cookie(&operator_jar, &format!("{base}/admin"), "consentry_session")
        .expect("session cookie");
    let dashboard = operator
        .get(format!("{base}/admin"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(dashboard.status(), 200);
    let session_csrf = hidden(&dashboard.text().await.expect("html"), "csrf");
    let tenant_page = operator
        .get(format!("{base}/admin/tenants/{CONTOSO}"))
        .send()
        .await
        .expect("tenant page");
    assert_eq!(tenant_page.status(), 200);
    let verify = operator
        .post(format!("{base}/admin/tenants/{CONTOSO}/verify"))
        .form(&[("csrf", session_csrf.as_str())])
        .send()
        .await
        .expect("verify now");
    assert_eq!(verify.status(), 303);
    let id = consentry::domain::TenantId::parse(&CONTOSO.to_string()).expect("guid");
    // The check reschedules the tenant a verify interval ahead (it was due now).
    let soon = ts(time::OffsetDateTime::now_utc() + time::Duration::minutes(1));
    poll_until("the check asked for to run", 30, async || {
        let row = store.tenant(id).await.expect("store").expect("the tenant");
        row.next_verify_at.is_some_and(|next| next > soon)
    })
    .await;
    store.close().await;

    let output = plain(&served.finish().await);
    config.remove_database();

    assert!(
        output.contains("TRACE"),
        "RUST_LOG=trace took effect: {output}"
    );
    let secrets = [
        ("the client secret", client_secret.as_str()),
        ("the operator password", password.as_str()),
        ("the state", state.as_str()),
        ("the binding cookie", binding.as_str()),
        ("the session cookie", session.as_str()),
        ("the customer's form cookie", form_cookie.as_str()),
        ("the operator's form cookie", operator_form_cookie.as_str()),
        ("the dashboard's CSRF token", session_csrf.as_str()),
        ("the session key", config.session_key.as_str()),
    ];
    let mut leaks = Vec::new();
    for (what, secret) in secrets {
        assert!(secret.len() >= 16, "{what} is long enough to search for");
        if let Some(at) = output.find(secret) {
            leaks.push(format!("{what}: ...{}...", line_at(&output, at)));
        }
    }
    // Access tokens are JWTs: base64url JSON starts with "eyJ".
    if let Some(at) = output.find("eyJ") {
        leaks.push(format!("an access token: ...{}...", line_at(&output, at)));
    }
    println!(
        "{} lines ({} bytes) of output at RUST_LOG=trace",
        output.lines().count(),
        output.len()
    );
    assert!(leaks.is_empty(), "leaked:\n{}", leaks.join("\n"));
    output
}

/// The line of `output` that holds byte `at`, shortened.
fn line_at(output: &str, at: usize) -> String {
    let start = output[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = output[at..].find('\n').map_or(output.len(), |i| at + i);
    output[start..end].chars().take(400).collect()
}

/// Sends `bytes` on a fresh connection, then reads until the server closes.
async fn send_raw(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    answer
}

/// What actix-http reports for each, before it was demoted: "stream error: request parse
/// error: ..." (bad request line, bad header, bad chunk), "I/O error" (a body cut short).
const GARBAGE: &[&[u8]] = &[
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    b"GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /signup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    b"POST /signup HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
];

#[tokio::test]
async fn malformed_http_from_clients_is_not_logged_as_an_error() {
    let port = free_port();
    let emulator = spawn_emulator_with(|_| {}).await;
    let mut config = ServeConfig::new(port, &emulator);
    // DEBUG, to see that the client's garbage is still logged, one level down.
    config.env.push(("RUST_LOG".into(), "debug".into()));
    let served = Served::start(&config).await;

    for bytes in GARBAGE {
        send_raw(port, bytes).await;
    }
    let health = reqwest::get(format!("{}/health", config.base()))
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    // The server logs a connection's error as the connection ends: wait for the lines.
    poll_until("the malformed requests to be logged", 30, async || {
        // actix-http's own words, which the demoted line keeps.
        plain(&served.output()).matches("stream error: ").count() >= 4
    })
    .await;

    let output = plain(&served.finish().await);
    config.remove_database();
    let errors: Vec<&str> = output.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert!(
        errors.is_empty(),
        "a client's malformed HTTP was logged at ERROR:\n{}",
        errors.join("\n")
    );
    assert!(
        output.contains("DEBUG a client sent what we could not serve"),
        "{output}"
    );
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_request_id() {
    // Arrange
    let port = free_port();
    let emulator = spawn_emulator_with(|_| {}).await;
    let mut config = ServeConfig::new(port, &emulator);
    config.env.push(("RUST_LOG".into(), "debug".into()));
    config
        .env
        .push(("CONSENTRY_LOG_FORMAT".into(), "json".into()));
    let served = Served::start(&config).await;

    // Act: a page that is served, one that is not, and a client's garbage.
    let signup = reqwest::get(format!("{}/", config.base()))
        .await
        .expect("GET /");
    let missing = reqwest::get(format!("{}/no-such-page", config.base()))
        .await
        .expect("GET 404");
    let ids = [
        crate::app_helpers::request_id(&signup),
        crate::app_helpers::request_id(&missing),
    ];
    send_raw(port, GARBAGE[0]).await;
    poll_until(
        "both requests and the garbage to be logged",
        30,
        async || {
            let output = served.output();
            ids.iter().all(|id| output.contains(id.as_str()))
                && output.contains("a client sent what we could not serve")
        },
    )
    .await;
    let output = served.finish().await;
    config.remove_database();

    // Assert: every line parses; the "served" line of each request carries its id.
    let lines: Vec<Value> = output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for (id, status) in [(&ids[0], 200), (&ids[1], 404)] {
        let served = lines
            .iter()
            .find(|l| l["message"] == "served" && l["span"]["request_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no \"served\" line for {id}: {output}"));
        assert_eq!(served["status"], status, "{served}");
        assert_eq!(served["level"], "INFO", "{served}");
    }
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("a client sent what we could not serve"))),
        "{output}"
    );
    assert!(!output.contains("\u{1b}["), "no colour codes: {output}");
}

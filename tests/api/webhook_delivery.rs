//! The delivery worker end to end: events written by real changes reach a receiver on this
//! machine, signed (checked with the Standard Webhooks reference library), retried per the
//! schedule and `Retry-After`, stopped by `410 Gone`, given up on when the schedule is
//! exhausted, sent once by two instances sharing a database, and not lost to `kill -9`.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use consentry::domain::Keyed;
use consentry::domain::webhook::{EndpointState, EventFilter, EventType};
use consentry::store::{DeliveryFilter, DeliveryRow, NewEndpoint, RaisedAlert, Store};
use consentry::webhooks::WebhookSecret;
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::app_helpers::{Browser, TestApp, spawn_app, spawn_app_with};
use crate::crash::{ServeConfig, Served, free_port};
use crate::helpers::spawn_emulator_with;
use crate::python::run_python;

/// The tests' session key (app_helpers.rs): endpoint secrets are derived under it.
const SESSION_KEY: [u8; 32] = [7u8; 32];

/// One request as the receiver read it.
#[derive(Debug, Clone)]
pub struct Received {
    at: Instant,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn id(&self) -> &str {
        self.header("webhook-id")
    }
}

/// A receiver on 127.0.0.1:0 that records every request and answers from a script: the
/// scripted answers in order, then `otherwise`; or, while `hang` is set, not at all.
#[derive(Clone)]
pub struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<String>>>,
    otherwise: Arc<Mutex<String>>,
    hang: Arc<AtomicBool>,
}

pub fn answer(status: &str, extra_headers: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{extra_headers}content-length: 0\r\nconnection: close\r\n\r\n")
}

impl Receiver {
    pub async fn start(otherwise: String) -> Receiver {
        Receiver::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), otherwise)
    }

    fn start_on(listener: TcpListener, otherwise: String) -> Receiver {
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            received: Arc::default(),
            script: Arc::default(),
            otherwise: Arc::new(Mutex::new(otherwise)),
            hang: Arc::default(),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        receiver
    }

    async fn serve(self, mut stream: tokio::net::TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
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
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .skip(1)
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
        let received = Received {
            at: Instant::now(),
            headers,
            body: buf[head_end..head_end + length].to_vec(),
        };
        self.received.lock().unwrap().push(received);
        if self.hang.load(Ordering::SeqCst) {
            // Holds the connection open without a word until the sender gives up or dies.
            std::future::pending::<()>().await;
        }
        let response = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.otherwise.lock().unwrap().clone());
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/consentry?source=test", self.addr)
    }

    fn then(&self, response: String) {
        self.script.lock().unwrap().push_back(response);
    }

    fn answer_otherwise(&self, response: String) {
        *self.otherwise.lock().unwrap() = response;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Polls until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} requests arrived in {secs}s",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub async fn create_endpoint(store: &Store, url: &str, filter: &EventFilter, salt: &str) -> String {
    store
        .create_endpoint(
            &NewEndpoint {
                url,
                description: "delivery test",
                filter,
                secret_salt: salt,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("endpoint")
        .id
}

fn secret(salt: &str) -> WebhookSecret {
    WebhookSecret::derive(&Keyed::new(&SESSION_KEY), salt)
}

/// Raises the app's credential alert: a real change, whose `app.credential_alert` event
/// is written in its transaction.
async fn raise_alert(app: &TestApp) {
    let raised = app
        .store
        .set_app_alert(
            Some(RaisedAlert {
                code: "AADSTS7000215",
                headline: "The client secret is invalid",
                message: "Microsoft refuses the app's client secret.",
            }),
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("alert");
    assert!(raised);
}

async fn clear_alert(app: &TestApp) {
    let cleared = app
        .store
        .set_app_alert(None, time::OffsetDateTime::now_utc())
        .await
        .expect("alert");
    assert!(cleared);
}

async fn deliveries(store: &Store, endpoint: &str) -> Vec<DeliveryRow> {
    store
        .deliveries(
            &DeliveryFilter {
                endpoint_id: Some(endpoint.to_owned()),
                ..DeliveryFilter::default()
            },
            None,
            10_000,
        )
        .await
        .expect("deliveries")
}

/// Polls until the endpoint's only delivery satisfies `done`.
async fn wait_for_delivery(
    app: &TestApp,
    endpoint: &str,
    what: &str,
    done: impl Fn(&DeliveryRow) -> bool,
) -> DeliveryRow {
    app.poll(what, 30, || async {
        deliveries(&app.store, endpoint)
            .await
            .into_iter()
            .find(|d| done(d))
    })
    .await
}

/// Checks a received delivery as a receiver holding `secret` would, with the reference
/// library.
async fn verify(secret: &WebhookSecret, received: &Received) -> Value {
    let args: Vec<std::ffi::OsString> = vec![
        secret.expose_encoded().expose_secret().into(),
        received.id().into(),
        received.header("webhook-timestamp").into(),
        received.header("webhook-signature").into(),
        String::from_utf8(received.body.clone()).unwrap().into(),
    ];
    run_python("verify_webhook.py", &args).await
}

#[tokio::test]
async fn a_tenant_connecting_is_delivered_signed_and_the_reference_library_verifies_it() {
    // Arrange
    let app = spawn_app().await;
    let receiver = Receiver::start(answer("204 No Content", "")).await;
    let endpoint =
        create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt-a").await;

    // Act
    let tenant = app.onboard(&app.browser(), &app.emulator.contoso()).await;
    let received = receiver.wait_for(1, 30).await;
    let delivery =
        wait_for_delivery(&app, &endpoint, "the delivery", |d| d.status == "succeeded").await;
    let verified = verify(&secret("salt-a"), &received[0]).await;
    let stranger = verify(&secret("salt-b"), &received[0]).await;
    let readiness: Value = app
        .browser()
        .get("/readyz")
        .await
        .json()
        .await
        .expect("json");

    // Assert
    assert_eq!(readiness["tasks"]["webhooks"], "running", "{readiness}");
    assert_eq!(tenant.status, "active");
    let events = app
        .store
        .webhook_events(None, None, None, 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event_type, "tenant.connected");
    assert_eq!(received.len(), 1, "one delivery, one request");
    let request = &received[0];
    assert_eq!(request.id(), event.id, "webhook-id is the event's id");
    assert_eq!(
        request.body,
        event.payload.as_bytes(),
        "the stored bytes, exactly"
    );
    let sent_at: i64 = request.header("webhook-timestamp").parse().expect("digits");
    assert!((time::OffsetDateTime::now_utc().unix_timestamp() - sent_at).abs() < 300);
    assert!(request.header("webhook-signature").starts_with("v1,"));
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["payload"]["type"], "tenant.connected");
    assert_eq!(stranger["verified"], false, "{stranger}");
    assert_eq!(delivery.event_id, event.id);
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.last_status_code, Some(204));
    assert_eq!(delivery.last_error, None);
    assert_eq!(delivery.next_attempt_at, None);
}

#[tokio::test]
async fn retry_after_is_waited_at_least_and_the_same_message_is_sent_again() {
    // Arrange: the schedule's first wait (1 s) is shorter than what the receiver asks (3 s).
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_WEBHOOK_RETRY_SCHEDULE", "1s,1s")).await;
    let receiver = Receiver::start(answer("204 No Content", "")).await;
    receiver.then(answer("503 Service Unavailable", "retry-after: 3\r\n"));
    let endpoint = create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt").await;

    // Act
    raise_alert(&app).await;
    let first = receiver.wait_for(1, 30).await;
    let throttled = wait_for_delivery(&app, &endpoint, "the throttled attempt", |d| {
        d.attempts == 1
    })
    .await;
    let both = receiver.wait_for(2, 30).await;
    let delivered =
        wait_for_delivery(&app, &endpoint, "the delivery", |d| d.status == "succeeded").await;

    // Assert
    assert_eq!(throttled.status, "pending");
    assert_eq!(throttled.last_status_code, Some(503));
    assert_eq!(
        throttled.last_error.as_deref(),
        Some("the endpoint answered 503 Service Unavailable (Retry-After: 3s)")
    );
    let gap = both[1].at - first[0].at;
    // A lower bound, not a speed: no earlier than asked (less the store's millisecond
    // rounding of the time it wrote).
    assert!(
        gap >= Duration::from_millis(2_990),
        "retried {gap:?} after a Retry-After of 3 s"
    );
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[0].id(),
        both[1].id(),
        "webhook-id is stable across retries"
    );
    assert_eq!(both[0].body, both[1].body);
    assert_eq!(delivered.attempts, 2);
    assert_eq!(delivered.last_status_code, Some(204));
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_its_deliveries_wait_until_it_is_enabled() {
    // Arrange
    let app = spawn_app().await;
    let receiver = Receiver::start(answer("410 Gone", "")).await;
    let endpoint = create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt").await;

    // Act: an event the receiver answers 410, then another while the endpoint is disabled.
    raise_alert(&app).await;
    receiver.wait_for(1, 30).await;
    let disabled = app
        .poll("the endpoint disabled", 30, || async {
            app.store
                .endpoint(&endpoint)
                .await
                .expect("endpoint")
                .filter(|e| e.state() == EndpointState::Disabled)
        })
        .await;
    clear_alert(&app).await;
    // Several of the worker's polls go by.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let while_disabled = deliveries(&app.store, &endpoint).await;
    let requests_while_disabled = receiver.received().len();

    receiver.answer_otherwise(answer("200 OK", ""));
    app.store
        .set_endpoint_state(
            &endpoint,
            EndpointState::Enabled,
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("enable");
    let after = app
        .poll("both deliveries", 30, || async {
            let all = deliveries(&app.store, &endpoint).await;
            all.iter().all(|d| d.status == "succeeded").then_some(all)
        })
        .await;

    // Assert
    assert!(
        disabled
            .state_reason
            .as_deref()
            .is_some_and(|r| r.contains("410")),
        "{disabled:?}"
    );
    assert_eq!(requests_while_disabled, 1, "nothing sent while disabled");
    assert_eq!(while_disabled.len(), 2);
    assert!(
        while_disabled.iter().all(|d| d.status == "pending"),
        "{while_disabled:?}"
    );
    let gone = while_disabled
        .iter()
        .find(|d| d.attempts == 1)
        .expect("the 410");
    assert_eq!(gone.last_status_code, Some(410));
    let waiting = while_disabled
        .iter()
        .find(|d| d.attempts == 0)
        .expect("the later one");
    assert_eq!(waiting.last_attempt_at, None);
    assert_eq!(after.len(), 2);
    let ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.id().to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(ids[0], gone.event_id, "the 410's delivery is sent again");
}

#[tokio::test]
async fn a_paused_endpoints_deliveries_wait_unattempted_and_go_out_when_it_is_enabled() {
    // Arrange
    let app = spawn_app().await;
    let receiver = Receiver::start(answer("204 No Content", "")).await;
    let endpoint = create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt").await;
    let now = time::OffsetDateTime::now_utc();
    app.store
        .set_endpoint_state(&endpoint, EndpointState::Paused, Some("maintenance"), now)
        .await
        .expect("pause");

    // Act
    raise_alert(&app).await;
    // Several of the worker's polls go by.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let while_paused = deliveries(&app.store, &endpoint).await;
    let requests_while_paused = receiver.received().len();
    app.store
        .set_endpoint_state(
            &endpoint,
            EndpointState::Enabled,
            None,
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("enable");
    let delivered =
        wait_for_delivery(&app, &endpoint, "the delivery", |d| d.status == "succeeded").await;

    // Assert
    assert_eq!(requests_while_paused, 0);
    assert_eq!(while_paused.len(), 1);
    assert_eq!(while_paused[0].status, "pending");
    assert_eq!(while_paused[0].attempts, 0);
    assert_eq!(delivered.attempts, 1);
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn an_exhausted_schedule_leaves_the_delivery_failed() {
    // Arrange: three attempts, a second apart.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_WEBHOOK_RETRY_SCHEDULE", "1s,1s")).await;
    let receiver = Receiver::start(answer("500 Internal Server Error", "")).await;
    let endpoint = create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt").await;

    // Act
    raise_alert(&app).await;
    let failed = wait_for_delivery(&app, &endpoint, "the delivery to fail", |d| {
        d.status == "failed"
    })
    .await;
    // Several polls go by: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = receiver.received();

    // Assert
    assert_eq!(failed.attempts, 3);
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(failed.last_status_code, Some(500));
    assert_eq!(
        failed.last_error.as_deref(),
        Some("the endpoint answered 500 Internal Server Error")
    );
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| r.id() == failed.event_id));
}

#[tokio::test]
async fn during_a_rotation_both_signatures_are_sent_and_each_secret_verifies() {
    // Arrange
    let app = spawn_app().await;
    let receiver = Receiver::start(answer("200 OK", "")).await;
    let endpoint =
        create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt-old").await;
    let now = time::OffsetDateTime::now_utc();
    let rotated = app
        .store
        .rotate_endpoint_secret(&endpoint, "salt-new", now + time::Duration::hours(24), now)
        .await
        .expect("rotate");
    assert!(rotated);

    // Act
    raise_alert(&app).await;
    let received = receiver.wait_for(1, 30).await;
    let with_new = verify(&secret("salt-new"), &received[0]).await;
    let with_old = verify(&secret("salt-old"), &received[0]).await;
    let with_stranger = verify(&secret("salt-other"), &received[0]).await;

    // Assert
    let signatures: Vec<&str> = received[0].header("webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert_eq!(with_new["verified"], true, "{with_new}");
    assert_eq!(with_old["verified"], true, "{with_old}");
    assert_eq!(with_stranger["verified"], false, "{with_stranger}");
}

#[tokio::test]
async fn once_the_overlap_is_over_only_the_new_secret_signs() {
    // Arrange: a rotation whose overlap has ended.
    let app = spawn_app().await;
    let receiver = Receiver::start(answer("200 OK", "")).await;
    let endpoint =
        create_endpoint(&app.store, &receiver.url(), &EventFilter::all(), "salt-old").await;
    let now = time::OffsetDateTime::now_utc();
    app.store
        .rotate_endpoint_secret(&endpoint, "salt-new", now - time::Duration::seconds(1), now)
        .await
        .expect("rotate");

    // Act
    raise_alert(&app).await;
    let received = receiver.wait_for(1, 30).await;
    let with_new = verify(&secret("salt-new"), &received[0]).await;
    let with_old = verify(&secret("salt-old"), &received[0]).await;

    // Assert
    assert_eq!(
        received[0].header("webhook-signature").split(' ').count(),
        1
    );
    assert_eq!(with_new["verified"], true, "{with_new}");
    assert_eq!(with_old["verified"], false, "{with_old}");
}

#[tokio::test]
async fn two_instances_on_one_database_never_send_one_delivery_twice() {
    // Arrange: a second instance on the first one's database file.
    let first = spawn_app().await;
    let second = first.another_instance().await;
    let receiver = Receiver::start(answer("204 No Content", "")).await;
    let endpoint =
        create_endpoint(&first.store, &receiver.url(), &EventFilter::all(), "salt").await;
    const EVENTS: usize = 200;

    // Act: 200 events as fast as the store writes them, both workers claiming meanwhile.
    for i in 0..EVENTS {
        if i % 2 == 0 {
            raise_alert(&first).await;
        } else {
            clear_alert(&first).await;
        }
    }
    let received = receiver.wait_for(EVENTS, 60).await;
    let all = first
        .poll("every delivery recorded", 30, || async {
            let all = deliveries(&first.store, &endpoint).await;
            all.iter().all(|d| d.status == "succeeded").then_some(all)
        })
        .await;
    // A few polls go by: nothing is sent a second time.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_later = receiver.received();

    // Assert
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for request in &received_later {
        *per_id.entry(request.id().to_owned()).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(per_id.len(), EVENTS);
    assert_eq!(received.len(), EVENTS);
    assert_eq!(all.len(), EVENTS);
    assert!(all.iter().all(|d| d.attempts == 1), "one attempt each");
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_survives_kill_9_between_the_change_and_its_success() {
    // Arrange: `consentry serve` as a process, a receiver that takes requests and never
    // answers, and an endpoint for tenants connecting.
    let port = free_port();
    let emulator = spawn_emulator_with(|c| {
        c.redirect_uris = vec![format!("http://127.0.0.1:{port}/consent/callback")];
    })
    .await;
    let mut config = ServeConfig::new(port, &emulator);
    config.env = vec![
        ("CONSENTRY_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()),
        // The attempt in flight at the kill leaves a lease of 2 s + the margin to expire.
        ("CONSENTRY_WEBHOOK_TIMEOUT".into(), "2s".into()),
        ("RUST_LOG".into(), "info".into()),
    ];
    let mut served = Served::start(&config).await;
    let store = Store::connect(&config.database_url).await.expect("store");
    let receiver = Receiver::start(answer("204 No Content", "")).await;
    receiver.hang.store(true, Ordering::SeqCst);
    let endpoint = create_endpoint(
        &store,
        &receiver.url(),
        &EventFilter::only(&[EventType::TenantConnected]),
        "salt",
    )
    .await;

    // Act: a tenant connects; the delivery is on its way (the receiver holds it) when the
    // process is killed.
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = Browser {
        http: reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: config.base(),
        jar,
    };
    let to_microsoft = browser.signup(&[]).await;
    let callback = emulator
        .decide(&to_microsoft, "accept", Some(&emulator.contoso()))
        .await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    receiver.wait_for(1, 60).await;
    served.kill().await;
    let at_kill = deliveries(&store, &endpoint).await;

    receiver.hang.store(false, Ordering::SeqCst);
    let restarted = Served::start(&config).await;
    let delivered = {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = deliveries(&store, &endpoint).await;
            if now.iter().any(|d| d.status == "succeeded") {
                break now;
            }
            assert!(
                Instant::now() < deadline,
                "never delivered after the restart: {now:?}\n{}",
                restarted.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let events = store
        .webhook_events(None, Some(EventType::TenantConnected), None, 10)
        .await
        .expect("events");
    let received = receiver.received();
    store.close().await;
    let output = restarted.finish().await;
    config.remove_database();

    // Assert
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(at_kill.len(), 1, "{at_kill:?}");
    assert_eq!(at_kill[0].status, "pending", "not delivered at the kill");
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].event_id, event.id);
    assert!(
        received.len() >= 2,
        "the held request, then the delivery: {received:?}\n{output}"
    );
    assert!(
        received.iter().all(|r| r.id() == event.id),
        "only the event's id: {received:?}"
    );
    assert!(
        received.iter().all(|r| r.body == event.payload.as_bytes()),
        "the same bytes each time"
    );
}

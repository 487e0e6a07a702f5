//! The cluster: three `consentry serve` processes on one database and one emulator, behind
//! one public URL as a round-robin proxy would put them. Browsers move to the next instance
//! at every step of full onboardings (landing, sign-up, callback, status page), and one
//! instance is killed with `kill -9` midway. Then: every consent acknowledged to a browser is
//! recorded and verified; every tenant's `tenant.connected` webhook arrives (at least once,
//! under one id); and once every tenant is due again, each is checked exactly once by the
//! instances left, counted in the emulator's request log.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consentry::domain::TenantId;
use consentry::domain::webhook::{EventFilter, EventType};
use consentry::store::Store;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use serde_json::Value;
use time::OffsetDateTime;

use crate::app_helpers::{TestDatabase, hidden, poll};
use crate::crash::{ServeConfig, Served, free_port, generated_tenants};
use crate::helpers::{TestEmulator, spawn_emulator_with};
use crate::shared_database::organization_reads_between;
use crate::webhook_delivery::{Receiver, answer, create_endpoint};

const INSTANCES: usize = 3;
const TENANTS: usize = 90;
/// The instance killed midway, and when: once this many callbacks were acknowledged.
const KILLED: usize = 1;
const KILL_AFTER: usize = TENANTS / 3;

/// A browser of its own (cookies, loopback address) that sends each step to the next
/// instance. When an instance does not answer at all (connection refused: it is dead), it
/// tries the next, as a proxy fails over when it cannot connect; a request that reached an
/// instance and got no answer is not retried (the proxy cannot know what it did).
struct Browser {
    http: reqwest::Client,
    bases: Vec<String>,
    next: usize,
}

impl Browser {
    fn new(bases: &[String], first: usize, source: Ipv4Addr) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_provider(Arc::new(Jar::default()))
                .redirect(Policy::none())
                .local_address(IpAddr::V4(source))
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            bases: bases.to_vec(),
            next: first,
        }
    }

    /// `path` on the next instance; which instance answered is returned with the response.
    async fn send(
        &mut self,
        build: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, String> {
        for _ in 0..self.bases.len() {
            let base = self.bases[self.next % self.bases.len()].clone();
            self.next += 1;
            match build(&self.http, &base).send().await {
                Ok(response) => return Ok(response),
                Err(e) if e.is_connect() => continue,
                Err(e) => return Err(format!("no answer from {base}: {e}")),
            }
        }
        Err("no instance accepts connections".into())
    }
}

/// Landing, sign-up, the emulator's consent page, callback and status page, each step on
/// the next instance. `Ok` once the callback was acknowledged (303 to the status page).
async fn onboard(
    mut browser: Browser,
    public: &str,
    emulator: &TestEmulator,
    tenant: &str,
) -> Result<(), String> {
    let landing = browser
        .send(|http, base| http.get(format!("{base}/")))
        .await?;
    if landing.status() != 200 {
        return Err(format!("landing {}", landing.status()));
    }
    let csrf = hidden(&landing.text().await.map_err(|e| e.to_string())?, "csrf");
    let signup = browser
        .send(|http, base| {
            http.post(format!("{base}/signup"))
                .form(&[("csrf", csrf.as_str())])
        })
        .await?;
    if signup.status() != 303 {
        return Err(format!("sign-up {}", signup.status()));
    }
    let to_microsoft = signup.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    // Microsoft sends the browser back to the public URL; the proxy picks an instance.
    let callback = emulator.decide(&to_microsoft, "accept", Some(tenant)).await;
    let path = callback
        .strip_prefix(public)
        .unwrap_or_else(|| panic!("{callback} is on the public URL {public}"))
        .to_owned();
    let back = browser
        .send(|http, base| http.get(format!("{base}{path}")))
        .await?;
    let to_status = back
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.ends_with("/consent/status"));
    if back.status() != 303 || !to_status {
        return Err(format!("callback {}", back.status()));
    }
    // Acknowledged. The status page, on yet another instance, knows this browser.
    if let Ok(status) = browser
        .send(|http, base| http.get(format!("{base}/consent/status")))
        .await
    {
        assert_eq!(status.status(), 200, "the status page on another instance");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_one_killed_midway_lose_nothing_and_check_each_tenant_once() {
    // Arrange: three instances on one database and one public URL (the first's address
    // stands for the proxy's), an emulator with 90 organisations, a webhook receiver.
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    let public = format!("http://127.0.0.1:{}", ports[0]);
    let emulator = spawn_emulator_with(|c| {
        c.redirect_uris = vec![format!("{public}/consent/callback")];
        c.generate_tenants = TENANTS as u32;
        c.users_per_generated_tenant = 1;
    })
    .await;
    let tenants = generated_tenants(&emulator, TENANTS).await;
    // The suite's database: SQLite, or PostgreSQL with CONSENTRY_TEST_DATABASE=postgres.
    let database = TestDatabase::new().await;
    let first = ServeConfig::new(ports[0], &emulator);
    let configs: Vec<ServeConfig> = ports
        .iter()
        .map(|&port| {
            let mut config = ServeConfig::new(port, &emulator);
            config.database_url = database.url.clone();
            config.session_key = first.session_key.clone();
            config.env = [
                ("CONSENTRY_PUBLIC_URL", public.as_str()),
                ("CONSENTRY_VERIFY_INTERVAL", "1h"),
                // A check claimed by the killed instance is taken over 10 s later.
                ("CONSENTRY_VERIFY_LEASE", "10s"),
                ("CONSENTRY_WEBHOOK_ALLOW_PRIVATE", "true"),
                ("CONSENTRY_WEBHOOK_TIMEOUT", "2s"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            config
        })
        .collect();
    // The endpoint exists before any instance starts, as it would in production.
    let store = Store::connect(&database.url).await.expect("store");
    let receiver = Receiver::start(answer("204 No Content", "")).await;
    create_endpoint(
        &store,
        &receiver.url(),
        &EventFilter::only(&[EventType::TenantConnected]),
        "salt",
    )
    .await;
    let mut served = Vec::new();
    for config in &configs {
        served.push(Served::start(config).await);
    }
    let bases: Vec<String> = configs.iter().map(ServeConfig::base).collect();

    // Act: every onboarding at once, each browser starting on a different instance; one
    // instance killed once a third of the callbacks were acknowledged.
    let emulator = Arc::new(emulator);
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let acknowledged_count = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let mut onboardings = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let browser = Browser::new(&bases, i, Ipv4Addr::new(127, 6, 0, (i + 1) as u8));
        let (public, emulator, tenant) = (public.clone(), emulator.clone(), tenant.clone());
        let (acknowledged, acknowledged_count) = (acknowledged.clone(), acknowledged_count.clone());
        let finished = finished.clone();
        onboardings.push(tokio::spawn(async move {
            let ended = onboard(browser, &public, &emulator, &tenant).await;
            if ended.is_ok() {
                acknowledged.lock().expect("lock").push(tenant);
                acknowledged_count.fetch_add(1, Ordering::SeqCst);
            }
            finished.fetch_add(1, Ordering::SeqCst);
            ended
        }));
    }
    while acknowledged_count.load(Ordering::SeqCst) < KILL_AFTER
        && finished.load(Ordering::SeqCst) < TENANTS
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    served[KILLED].kill().await;
    let mut cut = Vec::new();
    for onboarding in onboardings {
        if let Err(why) = onboarding.await.expect("the task ends") {
            cut.push(why);
        }
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    println!(
        "{TENANTS} onboardings, instance {KILLED} killed after {KILL_AFTER} acknowledged: \
         {} acknowledged, cut short: {cut:?}",
        acknowledged.len()
    );

    // Assert: every acknowledged consent is recorded and verified (the killed instance's
    // claimed checks taken over by the others).
    assert!(
        acknowledged.len() >= TENANTS - 10,
        "the live instances took over the rest: {} acknowledged; cut short: {cut:?}",
        acknowledged.len()
    );
    let ids: Vec<TenantId> = acknowledged
        .iter()
        .map(|t| TenantId::parse(t).expect("guid"))
        .collect();
    poll("every acknowledged consent verified", 90, || async {
        for id in &ids {
            let row = store.tenant(*id).await.expect("store")?;
            row.verified_at.as_ref()?;
        }
        Some(())
    })
    .await;

    // ...every tenant.connected delivered, at least once and under one id per tenant
    // (a delivery cut by the kill is sent again by another instance, with its id).
    let received = poll("every tenant.connected delivered", 60, || async {
        let received = receiver.received();
        let tenants: BTreeSet<String> = received
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_slice(&r.body).expect("JSON");
                body["data"]["tenant"]["id"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        acknowledged
            .iter()
            .all(|t| tenants.contains(t))
            .then_some(received)
    })
    .await;
    let mut ids_per_tenant: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &received {
        let body: Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(body["type"], "tenant.connected");
        let tenant = body["data"]["tenant"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        ids_per_tenant
            .entry(tenant)
            .or_default()
            .insert(r.id().to_owned());
    }
    let several: Vec<_> = ids_per_tenant.iter().filter(|(_, i)| i.len() > 1).collect();
    assert!(
        several.is_empty(),
        "one event per tenant, resent only under its id: {several:?}"
    );

    // ...and with every tenant due again (an interval gone by), the two instances left
    // check each exactly once between them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = emulator.requests().await;
    let attempts_before: Vec<i64> = {
        let mut v = Vec::new();
        for id in &ids {
            v.push(
                store
                    .tenant(*id)
                    .await
                    .expect("store")
                    .expect("row")
                    .verify_attempts,
            );
        }
        v
    };
    store
        .schedule_now(&ids, OffsetDateTime::now_utc())
        .await
        .expect("due");
    poll("every tenant checked again", 60, || async {
        for (id, before) in ids.iter().zip(&attempts_before) {
            let row = store.tenant(*id).await.expect("store")?;
            (row.verify_attempts > *before).then_some(())?;
        }
        Some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = emulator.requests().await;
    let reads = organization_reads_between(&before, &after, &acknowledged);
    assert!(
        reads.iter().all(|&n| n == 1),
        "each due tenant checked once by the cluster: {reads:?}"
    );

    store.close().await;
    for s in served {
        s.finish().await;
    }
    drop(database);
}

//! Instances sharing one database share its background work: each due tenant is checked
//! by one of them, once, and a check claimed by an instance that died is taken over once
//! its lease has run out. Counted where it cannot be miscounted: the Graph requests the
//! emulator received for each tenant (a check reads `GET /organization` once).

use std::net::Ipv4Addr;
use std::time::Duration;

use consentry::domain::TenantId;
use consentry::store::Store;
use serde_json::Value;
use time::OffsetDateTime;

use crate::app_helpers::{TestDatabase, poll};
use crate::crash::{Ended, ServeConfig, Served, free_port, generated_tenants, onboard};
use crate::helpers::{TestEmulator, spawn_emulator_with};

const INSTANCES: usize = 3;
const TENANTS: usize = 60;

/// `GET /organization` requests the emulator received for `tenant`.
pub fn organization_reads(requests: &Value, tenant: &str) -> u64 {
    requests["tenants"][tenant]["graph_organization"]
        .as_u64()
        .unwrap_or(0)
}

/// For each of `tenants`, the `GET /organization` requests between two readings of the
/// emulator's request log: the checks made meanwhile.
pub fn organization_reads_between(before: &Value, after: &Value, tenants: &[String]) -> Vec<u64> {
    tenants
        .iter()
        .map(|t| organization_reads(after, t) - organization_reads(before, t))
        .collect()
}

/// `INSTANCES` emulator-facing ports, the emulator, and the tenants it generated.
async fn emulator_for(ports: &[u16], tenants: usize) -> (TestEmulator, Vec<String>) {
    let redirect_uris = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/consent/callback"))
        .collect();
    let emulator = spawn_emulator_with(|c| {
        c.redirect_uris = redirect_uris;
        c.generate_tenants = tenants as u32;
        c.users_per_generated_tenant = 1;
    })
    .await;
    let ids = generated_tenants(&emulator, tenants).await;
    (emulator, ids)
}

/// Instances on one database (the suite's: SQLite or PostgreSQL), each on its own port and
/// public URL, checking nothing again for an hour unless made due.
fn configs(ports: &[u16], emulator: &TestEmulator, database: &TestDatabase) -> Vec<ServeConfig> {
    let first = ServeConfig::new(ports[0], emulator);
    ports
        .iter()
        .map(|&port| {
            let mut config = ServeConfig::new(port, emulator);
            config.database_url = database.url.clone();
            config.session_key = first.session_key.clone();
            config
                .env
                .push(("CONSENTRY_VERIFY_INTERVAL".into(), "1h".into()));
            config
        })
        .collect()
}

/// How many of `tenants` the store holds as verified.
async fn verified(store: &Store, tenants: &[String]) -> usize {
    let mut n = 0;
    for t in tenants {
        let id = TenantId::parse(t).expect("guid");
        if let Some(row) = store.tenant(id).await.expect("store")
            && row.verified_at.is_some()
        {
            n += 1;
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_on_one_database_check_each_due_tenant_once() {
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    let (emulator, tenants) = emulator_for(&ports, TENANTS).await;
    let database = TestDatabase::new().await;
    let configs = configs(&ports, &emulator, &database);
    let mut served = Vec::new();
    for config in &configs {
        served.push(Served::start(config).await);
    }

    // Onboardings spread over the instances; each callback's first check is asked for on
    // the instance that took it, and every instance's first-check lane scans for it too.
    let emulator = std::sync::Arc::new(emulator);
    let mut onboardings = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let base = configs[i % INSTANCES].base();
        let tenant = tenant.clone();
        let emulator = emulator.clone();
        let source = Ipv4Addr::new(127, 4, 0, (i + 1) as u8);
        onboardings.push(tokio::spawn(async move {
            onboard(&base, &emulator, &tenant, source).await
        }));
    }
    for onboarding in onboardings {
        match onboarding
            .await
            .expect("the task ends")
            .expect("no HTTP error")
        {
            Ended::Answered => {}
            Ended::Cut(why) => panic!("an onboarding was cut short: {why}"),
        }
    }
    let store = Store::connect(&configs[0].database_url)
        .await
        .expect("store");
    poll("every tenant verified", 60, || async {
        (verified(&store, &tenants).await == TENANTS).then_some(())
    })
    .await;
    // A second for any instance that would check a tenant again to have done so.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_onboarding = emulator.requests().await;
    let twice: Vec<_> = tenants
        .iter()
        .filter(|t| organization_reads(&after_onboarding, t) != 1)
        .collect();
    assert!(
        twice.is_empty(),
        "each first check is made once by the cluster; these tenants were read {:?} times",
        twice
            .iter()
            .map(|t| organization_reads(&after_onboarding, t))
            .collect::<Vec<_>>()
    );

    // Every tenant due at once, as after an interval: every instance's background loop sees
    // all of them due, and each is checked by one.
    let ids: Vec<TenantId> = tenants
        .iter()
        .map(|t| TenantId::parse(t).expect("guid"))
        .collect();
    let made_due = OffsetDateTime::now_utc();
    store.schedule_now(&ids, made_due).await.expect("due");
    poll("every tenant checked again", 60, || async {
        let mut done = 0;
        for id in &ids {
            let row = store.tenant(*id).await.expect("store").expect("tenant");
            if row.verify_attempts >= 2 {
                done += 1;
            }
        }
        (done == TENANTS).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_interval = emulator.requests().await;
    let reads = organization_reads_between(&after_onboarding, &after_interval, &tenants);
    assert!(
        reads.iter().all(|&n| n == 1),
        "each due tenant is checked once by the cluster, not once per instance: {reads:?}"
    );
    // Which instance checked which tenant is up to them, but the work is shared: the
    // tokens each instance asked for say who checked (one per tenant and instance at most,
    // each instance keeping its own cache).
    let tokens: u64 = tenants
        .iter()
        .map(|t| {
            after_interval["tenants"][t.as_str()]["token_v2"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert!(
        tokens <= (TENANTS * INSTANCES) as u64,
        "token requests stay within one per tenant and instance: {tokens}"
    );

    store.close().await;
    for s in served {
        s.finish().await;
    }
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_claimed_by_an_instance_that_died_is_taken_over_when_its_lease_runs_out() {
    let ports = [free_port()];
    let (emulator, tenants) = emulator_for(&ports, 1).await;
    let database = TestDatabase::new().await;
    let configs = configs(&ports, &emulator, &database);
    let served = Served::start(&configs[0]).await;
    match onboard(
        &configs[0].base(),
        &emulator,
        &tenants[0],
        Ipv4Addr::new(127, 5, 0, 1),
    )
    .await
    .expect("no HTTP error")
    {
        Ended::Answered => {}
        Ended::Cut(why) => panic!("the onboarding was cut short: {why}"),
    }
    let store = Store::connect(&configs[0].database_url)
        .await
        .expect("store");
    let id = TenantId::parse(&tenants[0]).expect("guid");
    poll("the tenant verified", 60, || async {
        let row = store.tenant(id).await.expect("store")?;
        row.verified_at.is_some().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = organization_reads(&emulator.requests().await, &tenants[0]);

    // Another instance made the tenant due and claimed its check, then died: what it left
    // in the database is exactly this.
    let now = OffsetDateTime::now_utc();
    store.schedule_now(&[id], now).await.expect("due");
    let lease_until = now + time::Duration::seconds(3);
    let claimed = store
        .claim_check(id, now, lease_until)
        .await
        .expect("store");
    assert!(claimed.is_some(), "the dead instance's claim");
    assert!(
        store
            .claim_check(id, now, lease_until)
            .await
            .expect("store")
            .is_none(),
        "a claimed check cannot be claimed again while its lease runs"
    );

    // The live instance takes it over, once the lease has run out, and checks it once.
    let checked = poll("the check taken over", 30, || async {
        let row = store.tenant(id).await.expect("store")?;
        (row.verify_attempts >= 2).then_some(row)
    })
    .await;
    let checked_at = consentry::store::parse_ts(&checked.updated_at).expect("a timestamp");
    assert!(
        checked_at >= lease_until,
        "taken over at {checked_at}, before the lease ran out at {lease_until}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        organization_reads(&emulator.requests().await, &tenants[0]) - before,
        1,
        "checked once"
    );

    store.close().await;
    served.finish().await;
    drop(database);
}

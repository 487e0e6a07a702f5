//! Continuous health: the readiness probe, checks that never overwrite a newer write,
//! deadlines for every fault of a never-verified tenant, first checks that never wait
//! behind a batch, and the migration that schedules tenants verified by older versions.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use consentry::domain::TenantId;
use consentry::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app_helpers::{
    Browser, TestApp, callback_url, hidden, spawn_app, spawn_app_with, state_of, ts,
};
use crate::helpers::FABRIKAM;

/// `GET /readyz`: status and JSON body.
async fn readyz(base: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}/readyz"))
        .await
        .expect("readyz");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Waits until `/readyz` says ready (the loops start just after the server), and returns
/// its body.
pub async fn ready(base: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readyz(base).await;
        if status == 200 {
            return body;
        }
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn readyz_names_the_background_tasks_and_the_database_and_health_stays_plain() {
    let app = spawn_app().await;

    let body = ready(&app.base).await;
    let health = reqwest::get(format!("{}/health", app.base))
        .await
        .expect("health");

    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    assert_eq!(body["migrations"], "current", "{body}");
    assert_eq!(body["tasks"]["verifier"], "running", "{body}");
    assert_eq!(body["tasks"]["first_checks"], "running", "{body}");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), "ok");
}

/// An operator's "verify now" through the dashboard form.
async fn verify_now(operator: &Browser, tenant: &str) {
    let page = operator.get(&format!("/admin/tenants/{tenant}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    let form = crate::app_helpers::section(
        &html,
        r#"<form method="post" action="/admin/tenants/"#,
        "</form>",
    );
    let clicked = operator
        .post_form(
            &format!("/admin/tenants/{tenant}/verify"),
            &[("csrf", hidden(form, "csrf").as_str())],
        )
        .await;
    assert_eq!(clicked.status(), 303);
}

async fn token_requests(app: &TestApp, tenant: &str) -> u64 {
    app.emulator.requests().await["tenants"][tenant]["token_v2"]
        .as_u64()
        .unwrap_or(0)
}

async fn tenant_faults(app: &TestApp, tenant: &str, faults: Value) {
    let (status, body) = app
        .emulator
        .control(
            Method::PUT,
            &format!("/tenants/{tenant}/faults"),
            Some(faults),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

/// Signs up, accepts for `tenant` on the emulator's page, revokes the consent at once and
/// follows the callback: the tenant is recorded, but Microsoft has no consent.
async fn callback_without_consent(app: &TestApp, browser: &Browser, tenant: &str) {
    let callback = app.consent(browser, tenant).await;
    let (status, body) = app
        .emulator
        .control(Method::DELETE, &format!("/tenants/{tenant}/consent"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(browser.get(&callback).await.status(), 303);
}

#[tokio::test]
async fn a_check_that_started_before_verify_now_does_not_overwrite_it() {
    // Arrange: Fabrikam's callback came, its consent did not: failed at the deadline.
    let app = spawn_app().await;
    callback_without_consent(&app, &app.browser(), FABRIKAM).await;
    let failed = app
        .poll("the deadline to fail the tenant", 15, || async {
            app.tenant(FABRIKAM).await.filter(|t| t.status == "failed")
        })
        .await;
    assert_eq!(failed.next_verify_at, None);
    // Microsoft answers Fabrikam's token requests 3 s late (deciding on arrival).
    tenant_faults(
        &app,
        FABRIKAM,
        json!({"latency_ms": 3000, "endpoints": ["token"]}),
    )
    .await;
    let operator = app.operator().await;
    let before = token_requests(&app, FABRIKAM).await;

    // Act: a "verify now" starts a check, which Microsoft answers "no consent" (late);
    // meanwhile the administrator consents and the operator asks again.
    verify_now(&operator, FABRIKAM).await;
    app.poll(
        "the first requested check to reach Microsoft",
        10,
        || async { (token_requests(&app, FABRIKAM).await > before).then_some(()) },
    )
    .await;
    app.emulator.consent(FABRIKAM).await;
    verify_now(&operator, FABRIKAM).await;
    let after = app
        .poll("a check after the second verify now", 30, || async {
            app.tenant(FABRIKAM).await.filter(|t| t.status == "active")
        })
        .await;

    // Assert: the late "no consent" did not erase the second request: it was checked again.
    assert_eq!(after.status, "active", "{after:?}");
    assert_eq!(token_requests(&app, FABRIKAM).await, before + 2);
    assert!(after.next_verify_at.is_some());
}

/// A stand-in for a token endpoint that answers every request with `status` and `body`
/// (for AADSTS codes the emulator has no reason to produce), counting requests.
struct CannedTokenEndpoint {
    base: String,
    requests: Arc<AtomicUsize>,
}

async fn canned_token_endpoint(status: u16, body: Value) -> CannedTokenEndpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let body = body.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (counted, body) = (counted.clone(), body.clone());
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // Headers, then as much body as Content-Length says.
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let response = format!(
                    "HTTP/1.1 {status} Refused\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    CannedTokenEndpoint { base, requests }
}

/// Signs up and comes back with a callback for `tenant` carrying the sign-up's state
/// (Microsoft's page is not visited: the stand-in "Microsoft" only has a token endpoint).
async fn callback(app: &TestApp, tenant: &str) {
    let browser = app.browser();
    let to_microsoft = browser.signup(&[]).await;
    let url = callback_url(&[
        ("admin_consent", "True"),
        ("tenant", tenant),
        ("state", &state_of(&to_microsoft)),
    ]);
    assert_eq!(browser.get(&url).await.status(), 303);
}

/// Microsoft's error body for `code`, as its token endpoint sends it.
fn sts_error(error: &str, code: u32, text: &str) -> Value {
    json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0\r\nCorrelation ID: 0\r\nTimestamp: 2026-11-30 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2026-11-30 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    })
}

#[tokio::test]
async fn the_app_disabled_in_one_tenant_fails_that_tenant_and_raises_no_app_wide_alert() {
    let sts = canned_token_endpoint(
        400,
        sts_error(
            "unauthorized_client",
            7000112,
            "Application '6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90'(consentry) is disabled.",
        ),
    )
    .await;
    let app = crate::app_helpers::spawn_app_against(&sts.base).await;

    callback(&app, FABRIKAM).await;
    let row = app.wait_for_outcome(FABRIKAM, 15).await;
    let dashboard = app.dashboard().await;

    assert_eq!(row.status, "failed", "{row:?}");
    assert_eq!(row.last_error_code.as_deref(), Some("AADSTS7000112"));
    assert!(
        !dashboard.contains(r#"id="credential-alert""#),
        "a tenant's choice is not our credential: {dashboard}"
    );
    assert!(
        !app.tenant_event_kinds(FABRIKAM)
            .await
            .contains(&"app_credential_rejected".to_owned())
    );
    assert!(sts.requests.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn an_unknown_code_raises_no_alert_and_fails_a_never_verified_tenant_at_its_deadline() {
    let sts = canned_token_endpoint(
        401,
        sts_error("invalid_client", 9_999_999, "Something new went wrong."),
    )
    .await;
    let app = crate::app_helpers::spawn_app_against(&sts.base).await;

    callback(&app, FABRIKAM).await;
    let row = app.wait_for_outcome(FABRIKAM, 15).await;
    let dashboard = app.dashboard().await;

    assert_eq!(row.status, "failed", "{row:?}");
    assert_eq!(row.last_error_code.as_deref(), Some("AADSTS9999999"));
    assert!(
        row.verify_attempts >= 2,
        "retried until the deadline: {row:?}"
    );
    assert!(
        !dashboard.contains(r#"id="credential-alert""#),
        "{dashboard}"
    );
}

/// Moves a tenant's consent time `ago` into the past (as if that much time had passed
/// since its callback) and makes it due; returns its check count at that point.
async fn age_and_verify(app: &TestApp, tenant: &str, ago: time::Duration) -> i64 {
    let db = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    let attempts: i64 = sqlx::query_scalar(
        "update tenant set consented_at = $1, next_verify_at = $2 where id = $3 returning verify_attempts",
    )
    .bind(ts(now - ago))
    .bind(ts(now))
    .bind(tenant)
    .fetch_one(&db)
    .await
    .expect("update");
    db.close().await;
    attempts
}

/// Waits until the tenant was checked again after `age_and_verify`.
async fn checked_after(app: &TestApp, tenant: &str, attempts: i64) -> consentry::store::TenantRow {
    app.poll("another check", 15, || async {
        app.tenant(tenant)
            .await
            .filter(|t| t.verify_attempts > attempts)
    })
    .await
}

/// Waits until the tenant is `failed` (a check that read the row before it was aged may
/// still land first).
async fn failed_after(app: &TestApp, tenant: &str, attempts: i64) -> consentry::store::TenantRow {
    app.poll("the tenant to fail", 20, || async {
        app.tenant(tenant)
            .await
            .filter(|t| t.verify_attempts > attempts && t.status == "failed")
    })
    .await
}

#[tokio::test]
async fn our_broken_credential_keeps_a_tenant_pending_past_its_deadline_but_not_for_ever() {
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_CLIENT_SECRET", "not-the-secret")).await;
    let browser = app.browser();
    let callback = app.consent(&browser, FABRIKAM).await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    let first = app
        .poll("the first refused check", 15, || async {
            app.tenant(FABRIKAM)
                .await
                .filter(|t| t.last_error_code.is_some())
        })
        .await;

    // An hour after the callback (the deadline is 3 s): still ours to fix.
    let n = age_and_verify(&app, FABRIKAM, time::Duration::hours(1)).await;
    let within = checked_after(&app, FABRIKAM, n).await;
    // A day and an hour: the tenant ends.
    let n = age_and_verify(&app, FABRIKAM, time::Duration::hours(25)).await;
    let beyond = failed_after(&app, FABRIKAM, n).await;

    assert_eq!(first.last_error_code.as_deref(), Some("AADSTS7000215"));
    assert_eq!(within.status, "pending", "{within:?}");
    assert_eq!(beyond.status, "failed", "{beyond:?}");
    assert_eq!(beyond.last_error_code.as_deref(), Some("AADSTS7000215"));
    assert_eq!(beyond.next_verify_at, None);
}

#[tokio::test]
async fn microsoft_unreachable_keeps_a_tenant_pending_for_an_hour_past_its_deadline() {
    let app = spawn_app().await;
    let (status, body) = app
        .emulator
        .control(
            Method::PUT,
            "/faults",
            Some(json!({"error_rate": 1.0, "error_status": 500, "endpoints": ["token"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let browser = app.browser();
    let callback = app.consent(&browser, FABRIKAM).await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    app.poll("the first failed check", 15, || async {
        app.tenant(FABRIKAM)
            .await
            .filter(|t| t.last_error_code.is_some())
    })
    .await;

    let n = age_and_verify(&app, FABRIKAM, time::Duration::minutes(30)).await;
    let within = checked_after(&app, FABRIKAM, n).await;
    let n = age_and_verify(&app, FABRIKAM, time::Duration::hours(2)).await;
    let beyond = failed_after(&app, FABRIKAM, n).await;

    assert_eq!(within.status, "pending", "{within:?}");
    assert_eq!(within.last_error_code.as_deref(), Some("http_500"));
    assert_eq!(beyond.status, "failed", "{beyond:?}");
    assert_eq!(beyond.last_error_code.as_deref(), Some("http_500"));
}

#[tokio::test]
async fn a_fresh_callbacks_first_check_does_not_wait_behind_a_batch() {
    // Arrange: 30 connected tenants due at once, each answered 400 ms late, checked one at
    // a time: a batch of 12 s or more.
    let app = spawn_app_with(|raw, _| raw.set("CONSENTRY_VERIFY_CONCURRENCY", "1")).await;
    let (status, created) = app
        .emulator
        .control(
            Method::POST,
            "/tenants",
            Some(json!({"count": 30, "consented": true, "users": 1})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let held: Vec<String> = created
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    for id in &held {
        tenant_faults(&app, id, json!({"latency_ms": 400, "endpoints": ["token"]})).await;
    }
    let db = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    for id in &held {
        sqlx::query(
            "insert into tenant (id, status, consented_at, verified_at, verify_attempts, next_verify_at, \
             created_at, updated_at) values ($1, 'active', $2, $2, 1, $2, $2, $2)",
        )
        .bind(id)
        .bind(ts(now))
        .execute(&db)
        .await
        .expect("insert");
    }
    db.close().await;
    let checked = |requests: Value| -> usize {
        held.iter()
            .filter(|id| requests["tenants"][id.as_str()]["token_v2"].as_u64() > Some(0))
            .count()
    };
    app.poll("the batch to start", 15, || async {
        (checked(app.emulator.requests().await) > 0).then_some(())
    })
    .await;

    // Act: a customer's administrator consents while the batch runs.
    let contoso = app.emulator.contoso();
    let browser = app.browser();
    let callback = app.consent(&browser, &contoso).await;
    assert_eq!(browser.get(&callback).await.status(), 303);
    let row = app.wait_for_outcome(&contoso, 60).await;
    let batch_done = checked(app.emulator.requests().await);

    // Assert: its first check came before the batch was through.
    assert_eq!(row.status, "active", "{row:?}");
    assert!(
        batch_done < held.len(),
        "the first check waited for all {} tenants of the batch",
        held.len()
    );
}

#[tokio::test]
async fn tenants_verified_before_continuous_health_are_scheduled_by_the_migration() {
    // Arrange: a database as the first three migrations left it, with a tenant verified
    // then (no next check).
    let path = std::env::temp_dir().join(format!("consentry-old-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    {
        let options: sqlx::sqlite::SqliteConnectOptions = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .expect("url")
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.expect("pool");
        let mut migrator = sqlx::migrate::Migrator::new(std::path::Path::new("migrations"))
            .await
            .expect("migrations");
        migrator.migrations = migrator
            .migrations
            .iter()
            .filter(|m| m.version <= 20261121000003)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        migrator
            .run(&pool)
            .await
            .expect("the first three migrations");
        let then = ts(time::OffsetDateTime::now_utc() - time::Duration::days(30));
        sqlx::query(
            "insert into tenant (id, status, consented_at, verified_at, last_token_ok_at, verify_attempts, \
             next_verify_at, created_at, updated_at) values ($1, 'active', $2, $2, $2, 1, null, $2, $2)",
        )
        .bind(crate::helpers::WOODGROVE)
        .bind(&then)
        .execute(&pool)
        .await
        .expect("insert");
        pool.close().await;
    }
    let old = url.clone();
    let _app = spawn_app_with(move |raw, _| raw.set("CONSENTRY_DATABASE_URL", old)).await;
    let store = Store::connect(&url).await.expect("store");
    let woodgrove = TenantId::parse(crate::helpers::WOODGROVE).expect("guid");

    // Act: the app started on it (applying the new migrations).
    let deadline = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let row = store.tenant(woodgrove).await.expect("store").expect("kept");
        if row.verify_attempts > 1 || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert: checked at once (the emulator's Woodgrove has no consent: a confirmed
    // tenant without consent was revoked), and scheduled from then on.
    assert_eq!(row.verify_attempts, 2, "{row:?}");
    assert_eq!(row.status, "revoked", "{row:?}");
    assert!(row.next_verify_at.is_some());
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn check_soon_checks_a_due_tenant_once_however_often_it_is_asked_and_never_one_not_due() {
    // Arrange: a verifier of our own with only its first-check lane running, and two
    // tenants that are not first checks (so only `check_soon` can bring them to it).
    let emulator = crate::helpers::spawn_emulator().await;
    let contoso = emulator.contoso();
    emulator.consent(&contoso).await;
    emulator.consent(FABRIKAM).await;
    let path = std::env::temp_dir().join(format!("consentry-soon-{}.db", uuid::Uuid::new_v4()));
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store");
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("pool");
    let now = time::OffsetDateTime::now_utc();
    for (id, next) in [
        (contoso.as_str(), now - time::Duration::seconds(1)),
        (FABRIKAM, now + time::Duration::hours(1)),
    ] {
        sqlx::query(
            "insert into tenant (id, status, consented_at, verified_at, verify_attempts, next_verify_at, \
             created_at, updated_at) values ($1, 'active', $2, $2, 1, $3, $2, $2)",
        )
        .bind(id)
        .bind(ts(now))
        .bind(ts(next))
        .execute(&db)
        .await
        .expect("insert");
    }
    db.close().await;
    let settings = crate::helpers::settings_for(&emulator)
        .parse()
        .expect("settings");
    let verifier =
        Arc::new(consentry::web::verifier_for(&settings, store.clone()).expect("verifier"));
    let lane = tokio::spawn(verifier.clone().run_first_checks());
    let (contoso_id, fabrikam_id) = (
        TenantId::parse(&contoso).expect("guid"),
        TenantId::parse(FABRIKAM).expect("guid"),
    );

    // Act
    for _ in 0..100 {
        verifier.check_soon(contoso_id);
        verifier.check_soon(fabrikam_id);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let checked = loop {
        let row = store.tenant(contoso_id).await.expect("store").expect("row");
        if row.verify_attempts > 1 || Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Anything else asked would have run by now, beside the one that did.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = emulator.requests().await;
    let fabrikam = store
        .tenant(fabrikam_id)
        .await
        .expect("store")
        .expect("row");
    lane.abort();

    // Assert
    assert_eq!(checked.verify_attempts, 2, "{checked:?}");
    assert_eq!(checked.status, "active");
    assert_eq!(requests["tenants"][&contoso]["token_v2"], 1, "{requests}");
    assert_eq!(fabrikam.verify_attempts, 1, "not due, not checked");
    assert!(
        requests["tenants"][FABRIKAM]["token_v2"].is_null(),
        "{requests}"
    );
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[tokio::test]
async fn readyz_stays_ready_on_a_schema_a_later_version_migrated_and_not_on_an_unknown_older_one() {
    // Arrange: a later version migrated the database further, as `consentry migrate` does
    // at the start of a rolling deploy while this version still serves.
    let app = spawn_app().await;
    ready(&app.base).await;
    let db = app.db().await;
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values (29991231000001, 'from the future', true, $1, 0)",
    )
    .bind(vec![0u8])
    .execute(&db)
    .await
    .expect("insert");

    // Act
    let (newer, newer_body) = readyz(&app.base).await;
    sqlx::query("delete from _sqlx_migrations where version = 29991231000001")
        .execute(&db)
        .await
        .expect("delete");
    // Another build's migration, older than this version's latest: not a later version.
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values (20000101000001, 'another build', true, $1, 0)",
    )
    .bind(vec![0u8])
    .execute(&db)
    .await
    .expect("insert");
    let (foreign, foreign_body) = readyz(&app.base).await;
    sqlx::query("delete from _sqlx_migrations where version = 20000101000001")
        .execute(&db)
        .await
        .expect("delete");
    let (again, again_body) = readyz(&app.base).await;

    // Assert: said in words, with no version or detail for the public.
    assert_eq!(newer, 200, "{newer_body}");
    assert_eq!(newer_body["migrations"], "newer", "{newer_body}");
    assert!(!newer_body.to_string().contains("2999"), "{newer_body}");
    assert_eq!(foreign, 503, "{foreign_body}");
    assert_eq!(foreign_body["migrations"], "not current", "{foreign_body}");
    assert!(!foreign_body.to_string().contains("2000"), "{foreign_body}");
    assert_eq!(again, 200);
    assert_eq!(again_body["migrations"], "current", "{again_body}");
}

#[tokio::test]
async fn readyz_is_503_while_a_migration_is_missing() {
    let app = spawn_app().await;
    ready(&app.base).await;
    let db = app.db().await;
    let last: i64 = sqlx::query_scalar("select max(version) from _sqlx_migrations")
        .fetch_one(&db)
        .await
        .expect("max");
    sqlx::query("update _sqlx_migrations set success = false where version = $1")
        .bind(last)
        .execute(&db)
        .await
        .expect("update");

    let (status, body) = readyz(&app.base).await;

    assert_eq!(status, 503, "{body}");
    assert_eq!(body["migrations"], "not current", "{body}");
}

#[cfg(unix)]
#[tokio::test]
async fn readyz_is_503_when_the_database_file_is_unwritable_or_gone() {
    use std::os::unix::fs::PermissionsExt;
    // A SQLite file's own failures: the same on either suite, so on SQLite.
    let app = crate::app_helpers::spawn_app_on_sqlite().await;
    ready(&app.base).await;
    let path = app
        .database_url
        .strip_prefix("sqlite://")
        .expect("a file URL")
        .to_owned();

    // Act: read-only, writable again, then deleted.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let (unwritable, unwritable_body) = readyz(&app.base).await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (writable, _) = readyz(&app.base).await;
    std::fs::remove_file(&path).expect("remove");
    let (gone, gone_body) = readyz(&app.base).await;

    // Assert: no path in the public answer.
    assert_eq!(unwritable, 503, "{unwritable_body}");
    assert_eq!(unwritable_body["database"], "unavailable");
    assert_eq!(writable, 200);
    assert_eq!(gone, 503, "{gone_body}");
    assert_eq!(gone_body["database"], "unavailable");
    assert!(!gone_body.to_string().contains(".db"), "{gone_body}");
}

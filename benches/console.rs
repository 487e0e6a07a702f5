//! The operator console's tenant list at scale, against `/health`, on one server in one run.
//!
//! `cargo bench --bench console -- --tenants 100000` (the defaults: 100,000 tenants,
//! `--requests 2000` per endpoint, `--concurrency 8`). Starts `consentry demo` in-process on
//! port 0 with a fresh database, seeds `--tenants` tenants with mixed statuses (two thirds
//! active, the rest spread over the other six; a tenth never verified) and a year of
//! events (five per tenant) straight into its SQLite file in batched transactions (the
//! migration's triggers keep the search index and the counts, as they do for the app's
//! own writes), signs in, and measures, in alternating rounds: `/health` (the yardstick),
//! the first list page, a status-filtered page, a searched page, page 200 through the
//! "Next" cursors, a tenant's page (a revoked tenant's), and the overview's charts
//! (`/admin/overview`; the seed moves each tenant from pending to where it is at the
//! times it got there, so the triggers count a year of consents, revocations and failed
//! checks, as they do for the app's own writes), and pages by name each asked for once
//! (`list_every_page`: what the console cache, which reuses a page for a second, cannot
//! serve, so what a page costs the database). Prints each endpoint's rate,
//! p50 and p99 and its ratio to `/health`. Targets for the list pages: p50 under 5 ms and
//! at least 0.3 of `/health`.
//!
//! The figures measured on the 2-core development machine, and why the list pages miss
//! their targets there, are in README.md ("How fast: the console").

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

mod common;

use common::{Run, client};

/// Rounds of each endpoint, alternating.
const ROUNDS: usize = 4;

/// The i-th seeded tenant's id.
fn tenant_id(i: usize) -> String {
    let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        mixed >> 32,
        mixed & 0xffff,
        i
    )
}

const WORDS: [&str; 16] = [
    "Contoso",
    "Fabrikam",
    "Northwind",
    "Adatum",
    "Litware",
    "Tailspin",
    "Wingtip",
    "Proseware",
    "Lucerne",
    "Margie",
    "Alpine",
    "Coho",
    "Fourth",
    "Humongous",
    "Trey",
    "Woodgrove",
];
const KINDS: [&str; 5] = [
    "consent_recorded",
    "verification_succeeded",
    "check_failed",
    "status_changed",
    "verify_requested",
];

/// Seeds `n` tenants and five events each over the last year, in transactions of 2,000
/// tenants; returns the id of a revoked tenant.
async fn seed(database: &str, n: usize) -> String {
    let options: SqliteConnectOptions = database.parse().expect("sqlite url");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            options
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
        .expect("the database");
    let now = time::OffsetDateTime::now_utc();
    let ts = |t: time::OffsetDateTime| consentry::store::ts(t);
    let mut revoked = None;
    let started = Instant::now();
    for batch in (0..n).collect::<Vec<_>>().chunks(2_000) {
        let mut tx = pool
            .begin_with("begin immediate")
            .await
            .expect("a transaction");
        for &i in batch {
            let id = tenant_id(i);
            let status = match i % 12 {
                0 => "failing",
                1 => "revoked",
                2 => "missing_permissions",
                3 => "gone",
                4 => "pending",
                5 => "failed",
                _ => "active",
            };
            let verified = !matches!(status, "pending" | "failed");
            let word = WORDS[i % WORDS.len()];
            let name = format!("{word} {} {}", WORDS[(i / 16) % 16], i);
            let domain = format!("{}{i}.example", word.to_lowercase());
            // Never-verified tenants are recent: the purge removes them after a week.
            let consented = if verified {
                now - time::Duration::seconds((n - i) as i64 * 300)
            } else {
                now - time::Duration::seconds((i % 86_400) as i64)
            };
            let checked = now - time::Duration::seconds((i % 86_400) as i64);
            // Every tenant starts pending, as a callback records it; the updates below take
            // it where it is now, at the times it got there, so that the triggers count the
            // consents, revocations and failed checks the overview charts.
            sqlx::query(
                "insert into tenant (id, status, display_name, verified_domains, granted_roles, \
                 consented_at, verified_at, last_token_ok_at, last_failure_at, last_error_code, \
                 consecutive_failures, created_at, updated_at) \
                 values ($1, 'pending', $2, $3, $4, $5, $6, $7, null, $8, $9, $5, $5)",
            )
            .bind(&id)
            .bind(verified.then_some(&name))
            .bind(if verified {
                format!("[\"{domain}\",\"{}.onmicrosoft.com\"]", word.to_lowercase())
            } else {
                "[]".to_owned()
            })
            .bind(r#"["User.Read.All","Organization.Read.All"]"#)
            .bind(ts(consented))
            .bind(verified.then(|| ts(consented + time::Duration::seconds(5))))
            .bind((status == "active").then(|| ts(checked)))
            .bind((status == "failing").then_some("AADSTS7000215"))
            .bind(i64::from(status == "failing") * 3)
            .execute(&mut *tx)
            .await
            .expect("a tenant");
            let verified_at = consented + time::Duration::seconds(5);
            // Revoked tenants were active first; one in three of them revoked and back.
            let revoked_at = verified_at + (now - verified_at) / 2;
            let mut steps: Vec<(&str, time::OffsetDateTime)> = Vec::new();
            if verified {
                steps.push(("active", verified_at));
            }
            let came_back = status == "active" && i % 36 == 6;
            if status == "revoked" || came_back {
                steps.push(("revoked", revoked_at));
            }
            if came_back {
                steps.push(("active", revoked_at + (now - revoked_at) / 2));
            } else if !matches!(status, "pending" | "active") {
                steps.push((status, checked.max(verified_at)));
            }
            for (to, at) in steps {
                sqlx::query("update tenant set status = $1, updated_at = $2 where id = $3")
                    .bind(to)
                    .bind(ts(at))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .expect("a status");
            }
            // Failed checks: over the last fortnight, then the latest.
            if status != "active" {
                let earlier = checked - time::Duration::days(((i / 12) % 14) as i64 + 1);
                for at in [earlier.max(consented), checked] {
                    sqlx::query("update tenant set last_failure_at = $1 where id = $2")
                        .bind(ts(at))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await
                        .expect("a failure");
                }
            }
            for (e, kind) in KINDS.iter().enumerate() {
                let at =
                    now - time::Duration::seconds(((i * 7 + e * 6_311_520) % 31_536_000) as i64);
                sqlx::query(
                    "insert into tenant_event (id, tenant_id, kind, detail, created_at) \
                     values ($1, $2, $3, $4, $5)",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&id)
                .bind(kind)
                .bind(format!("Seeded event {e} of {name}."))
                .bind(ts(at))
                .execute(&mut *tx)
                .await
                .expect("an event");
            }
            if status == "revoked" && revoked.is_none() {
                revoked = Some(id);
            }
        }
        tx.commit().await.expect("commit");
    }
    sqlx::query("analyze")
        .execute(&pool)
        .await
        .expect("analyze");
    pool.close().await;
    println!(
        "  seeded: {n} tenants and {} events in {:.1} s",
        n * 5,
        started.elapsed().as_secs_f64()
    );
    revoked.expect("a revoked tenant")
}

/// The `href` of the element with `id` (`id="next"`), its `&#38;` unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..at + html[at..].find('>')?];
    let start = tag.find("href=\"")? + 6;
    let end = start + tag[start..].find('"')?;
    Some(tag[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

/// The console's default query, filtered by `status` or searching `q`.
fn console_query(status: Option<&str>, q: Option<&str>) -> consentry::store::ConsoleQuery {
    use consentry::store::{ConsoleQuery, ConsoleSort, StatusFilter};
    let status = status
        .and_then(consentry::domain::TenantStatus::parse)
        .map_or(StatusFilter::Any, StatusFilter::One);
    ConsoleQuery {
        verified_only: status == StatusFilter::Any,
        status,
        search: q.map(str::to_owned),
        sort: ConsoleSort::Consented,
        descending: true,
    }
}

#[tokio::main]
async fn main() {
    let tenants: usize = common::arg("--tenants").unwrap_or(100_000);
    let requests: usize = common::arg("--requests").unwrap_or(2_000);
    let concurrency: usize = common::arg::<usize>("--concurrency").unwrap_or(8).max(1);
    let path = std::env::temp_dir().join(format!("consentry-console-{}.db", uuid::Uuid::new_v4()));
    let database = format!("sqlite://{}", path.display());
    let demo = consentry::demo::Demo::start(consentry::demo::DemoOptions {
        port: 0,
        emulator_port: 0,
        inbox_port: 0,
        database: database.clone(),
    })
    .await
    .expect("the demo starts");
    let base = demo.public_url.clone();
    let password = demo.operator_password.clone();
    tokio::spawn(demo.run_until_stopped());

    println!(
        "console: {tenants} tenants, {requests} requests per endpoint in {ROUNDS} alternating rounds, {concurrency} at a time"
    );
    let revoked = seed(&database, tenants).await;

    // Which index each list page walks, as SQLite plans it on this database.
    let store = consentry::store::Store::connect(&database)
        .await
        .expect("the store");
    for (name, query, cursor) in [
        ("list_first_page", console_query(None, None), false),
        ("list_filtered", console_query(Some("failing"), None), false),
        (
            "list_searched",
            console_query(None, Some("northwind coho")),
            false,
        ),
        ("list_page_200", console_query(None, None), true),
    ] {
        let plan = store.console_plan(&query, cursor).await.expect("a plan");
        println!("  {name}_plan: {}", plan.join(" / "));
        if !cursor {
            let started = Instant::now();
            for _ in 0..20 {
                let rows = store
                    .console_page(&query, None, consentry::store::PageDirection::Forward, 51)
                    .await
                    .expect("a page");
                assert!(!rows.is_empty(), "{name}");
            }
            println!(
                "  {name}_query_ms: {:.2} (the statement alone, one at a time)",
                started.elapsed().as_secs_f64() * 1000.0 / 20.0
            );
        }
    }
    // The overview's statements alone: the counts the triggers keep, no event read.
    let started = Instant::now();
    let today = time::OffsetDateTime::now_utc().date();
    for _ in 0..20 {
        use consentry::store::DailyKind;
        let weeks = store
            .period_counts(
                &[
                    DailyKind::Consent,
                    DailyKind::Reconsent,
                    DailyKind::Revocation,
                ],
                today - time::Duration::weeks(52),
                7,
            )
            .await
            .expect("weekly counts");
        assert!(!weeks.is_empty(), "the seed made consents");
        store
            .period_counts(
                &[DailyKind::FailedCheck],
                today - time::Duration::days(13),
                1,
            )
            .await
            .expect("daily counts");
        store.status_counts().await.expect("status counts");
    }
    println!(
        "  overview_query_ms: {:.2} (the statements alone, one at a time)",
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    );
    store.close().await;

    // Each client signs in: its own session, as operators have.
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = client(None, Some(jar));
        let form = http
            .get(format!("{base}/admin/login"))
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("html");
        let marker = "name=\"csrf\" value=\"";
        let start = form.find(marker).expect("csrf field") + marker.len();
        let csrf = form[start..start + form[start..].find('"').expect("quote")].to_owned();
        let signed_in = http
            .post(format!("{base}/admin/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", consentry::demo::DEMO_OPERATOR),
                ("password", password.as_str()),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(signed_in.status(), 303, "signed in");
        clients.push(http);
    }

    // Page 200 through the cursor: follow "Next" 199 times.
    let walked = Instant::now();
    let mut page = format!("{base}/admin");
    let mut reached = 1;
    for _ in 1..200 {
        let html = clients[0]
            .get(&page)
            .send()
            .await
            .expect("a page")
            .text()
            .await
            .expect("html");
        // Fewer than 200 pages (a smoke run with fewer tenants): the last one.
        let Some(next) = link(&html, "next") else {
            break;
        };
        page = format!("{base}{next}");
        reached += 1;
    }
    println!(
        "  walk_to_page_200_s: {:.2} ({} pages, one at a time{})",
        walked.elapsed().as_secs_f64(),
        reached - 1,
        if reached < 200 {
            format!("; only {reached} pages at this size: list_page_200 is page {reached}")
        } else {
            String::new()
        }
    );

    // Pages by name, each to be asked for once: the console's cache (a page is reused for
    // a second) cannot serve them, so they measure what a page costs the database.
    let mut by_name = vec![format!("{base}/admin?sort=name&dir=asc")];
    while by_name.len() < requests {
        let html = clients[0]
            .get(by_name.last().expect("a page"))
            .send()
            .await
            .expect("a page")
            .text()
            .await
            .expect("html");
        let Some(next) = link(&html, "next") else {
            break;
        };
        by_name.push(format!("{base}{next}"));
    }
    println!(
        "  list_every_page: {} pages by name{}",
        by_name.len(),
        if by_name.len() < requests {
            " (fewer than the requests: some are asked for again, and may come from the cache)"
        } else {
            ", each asked for once"
        }
    );
    let by_name = Arc::new(by_name);
    let turn = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let endpoints = [
        ("health", format!("{base}/health")),
        ("list_first_page", format!("{base}/admin")),
        ("list_filtered", format!("{base}/admin?status=failing")),
        ("list_searched", format!("{base}/admin?q=northwind%20coho")),
        ("list_page_200", page),
        ("tenant_page", format!("{base}/admin/tenants/{revoked}")),
        ("overview_charts", format!("{base}/admin/overview")),
    ];
    for (name, url) in &endpoints {
        let r = clients[0].get(url).send().await.expect("warm");
        assert_eq!(r.status(), 200, "{name}: {url}");
    }
    let mut runs: Vec<Run> = endpoints.iter().map(|_| Run::default()).collect();
    let mut every_page = Run::default();
    for r in 0..ROUNDS {
        let n = requests / ROUNDS + usize::from(r < requests % ROUNDS);
        for ((_, url), run) in endpoints.iter().zip(runs.iter_mut()) {
            let url = url.to_owned();
            run.round(&clients, n, move |http: &reqwest::Client| http.get(&url))
                .await;
        }
        let (pages, turn) = (by_name.clone(), turn.clone());
        every_page
            .round(&clients, n, move |http: &reqwest::Client| {
                let i = turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                http.get(&pages[i % pages.len()])
            })
            .await;
    }
    let mut health_rate = 0.0;
    let names = endpoints.iter().map(|(name, _)| *name);
    for (name, run) in names
        .chain(["list_every_page"])
        .zip(runs.iter_mut().chain([&mut every_page]))
    {
        let (rate, p50) = run.report(name);
        if name == "health" {
            health_rate = rate;
        } else {
            let target = if name.starts_with("list") {
                " (target: p50 under 5 ms, at least 0.3)"
            } else {
                ""
            };
            println!(
                "  {name}_to_health_ratio: {:.2}{target}{}",
                rate / health_rate,
                if p50 >= 5.0 && name.starts_with("list") {
                    " p50 over target"
                } else {
                    ""
                }
            );
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

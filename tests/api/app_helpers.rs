//! consentry wired to an emulator, both on port 0, and "browsers" that keep cookies.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use consentry::config::RawSettings;
use consentry::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig};
use consentry::store::Store;
use consentry::web::Application;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::redirect::Policy;
use sqlx::any::AnyPoolOptions;

use crate::helpers::{TestEmulator, spawn_emulator_with};

pub const OPERATOR: &str = "ops";
pub const OPERATOR_PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub emulator: TestEmulator,
    pub database_url: String,
    /// The store the app uses (same file), for assertions on what was written.
    pub store: Store,
    database: Arc<TestDatabase>,
    /// The settings it runs with, for another instance with the same.
    raw: RawSettings,
}

/// The database of one test: a SQLite file of its own, or, when
/// `CONSENTRY_TEST_DATABASE=postgres`, a PostgreSQL database of its own created on the
/// cluster `CONSENTRY_TEST_POSTGRES_URL` names (`.ci/run` runs the suite both ways).
pub struct TestDatabase {
    pub url: String,
    /// The SQLite file, or the PostgreSQL database's name.
    place: Place,
}

enum Place {
    /// A database the test made otherwise, left to it.
    Borrowed,
    File(std::path::PathBuf),
    Postgres {
        admin: String,
        name: String,
    },
}

/// Creates a database of a fresh name on the cluster of `admin` (a URL whose user may
/// create databases); returns its name and URL.
pub async fn create_postgres_database(admin: &str) -> (String, String) {
    let name = format!("consentry_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(admin)
        .await
        .expect("CONSENTRY_TEST_POSTGRES_URL connects");
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create the test's database");
    let _ = sqlx::Connection::close(conn).await;
    let mut url = url::Url::parse(admin).expect("CONSENTRY_TEST_POSTGRES_URL is a URL");
    url.set_path(&name);
    (name, url.to_string())
}

/// Whether this run of the suite is on PostgreSQL (`CONSENTRY_TEST_DATABASE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("CONSENTRY_TEST_DATABASE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

impl TestDatabase {
    /// The database at `url`, which the test made and will remove itself.
    pub fn borrowed(url: &str) -> TestDatabase {
        TestDatabase {
            url: url.to_owned(),
            place: Place::Borrowed,
        }
    }

    /// A SQLite file, whichever database the suite runs on.
    pub fn sqlite() -> TestDatabase {
        let path = std::env::temp_dir().join(format!("consentry-test-{}.db", uuid::Uuid::new_v4()));
        TestDatabase {
            url: format!("sqlite://{}", path.display()),
            place: Place::File(path),
        }
    }

    /// The suite's database: SQLite, or PostgreSQL with `CONSENTRY_TEST_DATABASE=postgres`.
    pub async fn new() -> TestDatabase {
        if !on_postgres() {
            return TestDatabase::sqlite();
        }
        let admin = std::env::var("CONSENTRY_TEST_POSTGRES_URL").expect(
            "CONSENTRY_TEST_DATABASE=postgres needs CONSENTRY_TEST_POSTGRES_URL: a database \
             of a cluster whose user may create databases",
        );
        let (name, url) = create_postgres_database(&admin).await;
        TestDatabase {
            url,
            place: Place::Postgres { admin, name },
        }
    }
}

impl Drop for TestDatabase {
    /// The test's database goes with the last app on it: its SQLite files (unlinking open
    /// files is fine on Unix), or its PostgreSQL database (dropped by a thread of its own,
    /// the test's runtime being in the middle of dropping).
    fn drop(&mut self) {
        match &self.place {
            Place::Borrowed => {}
            Place::File(file) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    let _ = std::fs::remove_file(path);
                }
            }
            Place::Postgres { admin, name } => {
                let (admin, name) = (admin.clone(), name.clone());
                let dropped = std::thread::spawn(move || {
                    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    runtime.block_on(async {
                        if let Ok(mut conn) =
                            <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await
                        {
                            let _ = sqlx::query(&format!(
                                "drop database if exists {name} with (force)"
                            ))
                            .execute(&mut conn)
                            .await;
                        }
                    });
                });
                let _ = dropped.join();
            }
        }
    }
}

/// consentry + emulator with defaults: v2 tokens, verification deadline 3 s.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// `adjust` may change consentry's raw settings and the emulator's config before start.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut RawSettings, &mut EmulatorConfig)) -> TestApp {
    spawn(adjust, None).await
}

/// As [`spawn_app`], on a SQLite file whichever database the suite runs on: for what only
/// SQLite has (a file to make unwritable, a file to copy from).
pub async fn spawn_app_on_sqlite() -> TestApp {
    spawn_on(|_, _| {}, None, TestDatabase::sqlite()).await
}

/// As [`spawn_app`], on `database`.
pub async fn spawn_app_on(database: TestDatabase) -> TestApp {
    spawn_on(|_, _| {}, None, database).await
}

/// consentry whose Microsoft (authority and Graph) is `microsoft`, a stand-in of the test's
/// own; the emulator still runs beside it, unused by consentry.
pub async fn spawn_app_against(microsoft: &str) -> TestApp {
    spawn(|_, _| {}, Some(microsoft)).await
}

async fn spawn(
    adjust: impl FnOnce(&mut RawSettings, &mut EmulatorConfig),
    microsoft: Option<&str>,
) -> TestApp {
    spawn_on(adjust, microsoft, TestDatabase::new().await).await
}

pub async fn spawn_on(
    adjust: impl FnOnce(&mut RawSettings, &mut EmulatorConfig),
    microsoft: Option<&str>,
    database: TestDatabase,
) -> TestApp {
    // `CONSENTRY_TEST_LOG=1 cargo test ... -- --nocapture` shows the app's logs.
    if std::env::var_os("CONSENTRY_TEST_LOG").is_some() {
        consentry::telemetry::init();
    }
    let (listener, base) = listen();
    let database = Arc::new(database);
    let database_url = database.url.clone();

    let mut raw = RawSettings::default();
    raw.set("CONSENTRY_CLIENT_ID", DEFAULT_CLIENT_ID.to_string());
    raw.set("CONSENTRY_CLIENT_SECRET", DEFAULT_CLIENT_SECRET);
    raw.set("CONSENTRY_PUBLIC_URL", base.as_str());
    raw.set("CONSENTRY_DATABASE_URL", database_url.as_str());
    raw.set(
        "CONSENTRY_SESSION_KEY",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    );
    raw.set("CONSENTRY_VERIFY_DEADLINE", "3s");
    // Webhook receivers in tests listen on 127.0.0.1 (a test of the address guard turns
    // this off again).
    raw.set("CONSENTRY_WEBHOOK_ALLOW_PRIVATE", "true");
    let mut emulator_config = EmulatorConfig {
        redirect_uris: vec![
            format!("{base}/consent/callback"),
            format!("{base}/signup/signed-in"),
            format!("{base}/admin/signed-in"),
        ],
        ..EmulatorConfig::default()
    };
    adjust(&mut raw, &mut emulator_config);

    let emulator = spawn_emulator_with(|c| {
        let (port, workers) = (c.port, c.workers);
        *c = emulator_config;
        c.port = port;
        c.workers = workers;
    })
    .await;
    let microsoft = microsoft.unwrap_or(emulator.base.as_str());
    raw.set("CONSENTRY_AUTHORITY_HOST", microsoft);
    raw.set("CONSENTRY_GRAPH_HOST", microsoft);
    serve(&raw, listener).await;

    let store = Store::connect(&database_url).await.expect("store");
    let hash = consentry::domain::password::hash_password(OPERATOR_PASSWORD).expect("hash");
    store
        .upsert_operator(OPERATOR, &hash, time::OffsetDateTime::now_utc())
        .await
        .expect("operator");
    TestApp {
        base,
        emulator,
        database_url,
        store,
        database,
        raw,
    }
}

/// Starts consentry with `raw` on `listener`, in the background of the test's runtime.
async fn serve(raw: &RawSettings, listener: TcpListener) {
    let settings = raw.parse().expect("test settings parse");
    let app = Application::build(settings, listener)
        .await
        .expect("consentry starts");
    tokio::spawn(app.run_until_stopped());
}

/// A listener on a free port of 127.0.0.1, and its `http://` base URL.
fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    (listener, base)
}

/// A browser: its own cookie jar, redirects not followed (tests follow them by hand).
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    /// The cookie jar, readable so tests can see (and plant) cookies.
    pub jar: Arc<Jar>,
}

impl TestApp {
    /// Another consentry on this one's database, emulator, session key and settings, as
    /// several instances behind one proxy are: the same public URL (so Microsoft sends
    /// browsers back to this one's address, whichever instance started the flow), its own
    /// listener. It leaves the database file to this app.
    pub async fn another_instance(&self) -> TestApp {
        let (listener, base) = listen();
        serve(&self.raw, listener).await;
        TestApp {
            base,
            emulator: self.emulator.clone(),
            database_url: self.database_url.clone(),
            store: self.store.clone(),
            database: Arc::clone(&self.database),
            raw: self.raw.clone(),
        }
    }

    pub fn browser(&self) -> Browser {
        let jar = Arc::new(Jar::default());
        Browser {
            http: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(Policy::none())
                // Inside the server's 5 s keep-alive (see helpers.rs spawn_emulator_with).
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("client"),
            base: self.base.clone(),
            jar,
        }
    }

    /// A browser signed in as the test operator.
    pub async fn operator(&self) -> Browser {
        let browser = self.browser();
        sign_in(&browser).await;
        browser
    }

    /// The dashboard's HTML (`/admin`), as a newly signed-in operator sees it.
    pub async fn dashboard(&self) -> String {
        let page = self.operator().await.get("/admin").await;
        page.text().await.expect("html")
    }

    /// Signs up in `browser`, accepts on the emulator's page for `tenant`, and returns the
    /// callback URL Microsoft redirects to (not yet visited).
    pub async fn consent(&self, browser: &Browser, tenant: &str) -> String {
        let to_microsoft = browser.signup(&[]).await;
        self.emulator_decision(&to_microsoft, "accept", Some(tenant))
            .await
    }

    /// POSTs the emulator's consent form for the admin-consent URL `to_microsoft`.
    pub async fn emulator_decision(
        &self,
        to_microsoft: &str,
        decision: &str,
        tenant: Option<&str>,
    ) -> String {
        self.emulator.decide(to_microsoft, decision, tenant).await
    }

    /// Polls the store until the tenant leaves `pending` (verification runs in the
    /// background); gives up after `secs` seconds.
    pub async fn wait_for_outcome(&self, tenant: &str, secs: u64) -> consentry::store::TenantRow {
        let id = consentry::domain::TenantId::parse(tenant).expect("guid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(row) = self.store.tenant(id).await.expect("store") {
                if row.status != "pending" || std::time::Instant::now() > deadline {
                    return row;
                }
            } else if std::time::Instant::now() > deadline {
                panic!("tenant {tenant} was never recorded");
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Every event kind, oldest first.
    pub async fn event_kinds(&self) -> Vec<String> {
        let mut events = self.store.recent_events(1000).await.expect("events");
        events.reverse();
        events.into_iter().map(|e| e.kind).collect()
    }

    pub async fn tenant_count(&self) -> usize {
        self.store
            .list_tenants(&consentry::store::TenantFilter {
                limit: 10_000,
                ..Default::default()
            })
            .await
            .expect("tenants")
            .len()
    }
}

impl Browser {
    /// The same browser (same client, same cookie jar) talking to `app`, another instance:
    /// cookies are kept per host, not per port, so it carries its cookies there.
    pub fn on(&self, app: &TestApp) -> Browser {
        Browser {
            http: self.http.clone(),
            base: app.base.clone(),
            jar: self.jar.clone(),
        }
    }

    /// The same browser (same cookie jar) on another network: its requests come from the
    /// loopback address `ip` (any of 127.0.0.0/8), as a laptop moving between networks.
    pub fn on_address(&self, ip: std::net::IpAddr) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_provider(self.jar.clone())
                .redirect(Policy::none())
                .local_address(ip)
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("client"),
            base: self.base.clone(),
            jar: self.jar.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST")
    }

    /// Loads the landing page, submits the sign-up form with `fields`, and returns where
    /// consentry redirects (Microsoft's admin-consent URL).
    pub async fn signup(&self, fields: &[(&str, &str)]) -> String {
        let response = self.signup_response(fields).await;
        assert_eq!(response.status(), 303, "sign-up redirects to Microsoft");
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }
}

impl Browser {
    /// Loads the landing page (for its CSRF token and form cookie) and POSTs the sign-up
    /// form with `fields`; returns the response as it came.
    pub async fn signup_response(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf_of("/").await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.post_form("/signup", &form).await
    }

    /// The hidden `csrf` field of the page at `path` (loading it also sets the form cookie).
    pub async fn csrf_of(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status(), 200, "{path}");
        hidden(&page.text().await.expect("html"), "csrf")
    }

    /// POSTs `body` exactly as given (form-urlencoded), so fields can repeat.
    pub async fn post_raw(&self, path: &str, body: String) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// A bodiless request with any method.
    pub async fn request(&self, method: reqwest::Method, path: &str) -> reqwest::Response {
        self.http
            .request(method, self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// The value of cookie `name` this browser would send to `path`.
    pub fn cookie(&self, name: &str, path: &str) -> Option<String> {
        let url = url::Url::parse(&self.url(path)).expect("url");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().expect("ascii cookies").to_owned();
        header.split("; ").find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }

    /// Plants cookie `name=value` (Path `path`) in this browser's jar.
    pub fn plant_cookie(&self, name: &str, value: &str, path: &str) {
        let url = url::Url::parse(&self.url(path)).expect("url");
        self.jar
            .add_cookie_str(&format!("{name}={value}; Path={path}"), &url);
    }
}

impl TestApp {
    /// A connection pool of the test's own on the app's database, for counting rows and
    /// for simulating elapsed time (not a mock: the app reads what it wrote). Its SQL
    /// must be both SQLite's and PostgreSQL's.
    pub async fn db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        sqlx::Executor::execute(&mut *conn, "pragma busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&self.database_url)
            .await
            .expect("the test's own connection")
    }

    /// `select count(*) from {table}`
    pub async fn count_rows(&self, table: &str) -> i64 {
        let db = self.db().await;
        let n = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&db)
            .await
            .expect("count");
        db.close().await;
        n
    }

    /// Makes every unused sign-up's state a minute past its expiry, as if its lifetime
    /// had elapsed (a minute, not years: the purge deletes requests an hour past expiry).
    pub async fn expire_consent_requests(&self) {
        let past = ts(time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
        let db = self.db().await;
        let done =
            sqlx::query("update consent_request set expires_at = $1 where consumed_at is null")
                .bind(past)
                .execute(&db)
                .await
                .expect("update");
        assert!(done.rows_affected() > 0, "no sign-up to expire");
        db.close().await;
    }

    /// Every event, oldest first.
    pub async fn events(&self) -> Vec<consentry::store::EventRow> {
        let mut events = self.store.recent_events(1000).await.expect("events");
        events.reverse();
        events
    }

    /// The event kinds of one tenant, oldest first.
    pub async fn tenant_event_kinds(&self, tenant: &str) -> Vec<String> {
        let id = consentry::domain::TenantId::parse(tenant).expect("guid");
        let mut events = self.store.events_for(id, 1000).await.expect("events");
        events.reverse();
        events.into_iter().map(|e| e.kind).collect()
    }

    pub async fn tenant(&self, tenant: &str) -> Option<consentry::store::TenantRow> {
        let id = consentry::domain::TenantId::parse(tenant).expect("guid");
        self.store.tenant(id).await.expect("store")
    }

    /// [`poll`], for the tests that hold an app.
    pub async fn poll<T, F, Fut>(&self, what: &str, secs: u64, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        poll(what, secs, check).await
    }

    /// Signs up in `browser`, accepts for `tenant`, follows the callback (asserting its
    /// 303) and waits for verification to finish.
    pub async fn onboard(&self, browser: &Browser, tenant: &str) -> consentry::store::TenantRow {
        let callback = self.consent(browser, tenant).await;
        let back = browser.get(&callback).await;
        assert_eq!(back.status(), 303, "the callback is accepted");
        self.wait_for_outcome(tenant, 15).await
    }
}

/// Polls `check` every 100 ms until it gives a value; panics naming `what` after `secs`
/// seconds.
pub async fn poll<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The statuses of `n` failed logins from `browser`.
pub async fn failed_logins(browser: &Browser, n: usize) -> Vec<u16> {
    let csrf = browser.csrf_of("/admin/login").await;
    let mut statuses = Vec::new();
    for i in 0..n {
        let answer = browser
            .post_form(
                "/admin/login",
                &[
                    ("csrf", &csrf),
                    ("name", OPERATOR),
                    ("password", &format!("guess {i}")),
                ],
            )
            .await;
        statuses.push(answer.status().as_u16());
    }
    statuses
}

/// Signs `browser` in as the test operator through the login form.
pub async fn sign_in(browser: &Browser) {
    let page = browser.get("/admin/login").await;
    assert_eq!(page.status(), 200);
    let csrf = hidden(&page.text().await.expect("html"), "csrf");
    let response = browser
        .post_form(
            "/admin/login",
            &[
                ("csrf", csrf.as_str()),
                ("name", OPERATOR),
                ("password", OPERATOR_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "login succeeds");
}

/// The store's timestamp format: `2026-11-21T05:02:03.123Z`.
pub fn ts(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("format")
}

/// The `state` query parameter of an admin-consent URL.
pub fn state_of(to_microsoft: &str) -> String {
    url::Url::parse(to_microsoft)
        .expect("absolute")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("a state")
}

/// A callback URL (path and query) as Microsoft would build it from `pairs`.
pub fn callback_url(pairs: &[(&str, &str)]) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().copied())
        .finish();
    format!("/consent/callback?{query}")
}

/// A fresh value shaped like one of ours (43 base64url characters) that we never issued.
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        [
            uuid::Uuid::new_v4().into_bytes(),
            uuid::Uuid::new_v4().into_bytes(),
        ]
        .concat(),
    )
}

/// The raw `Set-Cookie` header that sets cookie `name`.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// The value a `Set-Cookie` header sets.
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().expect("name=value");
    pair.split_once('=').expect("=").1.to_owned()
}

/// The attributes of a `Set-Cookie` header, lower-cased and trimmed, without the pair.
pub fn cookie_attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

/// The `x-request-id` header.
pub fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("an x-request-id header")
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Asserts `response` is consentry's error page (templates/error.html) with `status`,
/// showing the request id of its `x-request-id` header. Returns (request id, html).
pub async fn assert_error_page(response: reqwest::Response, status: u16) -> (String, String) {
    let actual = response.status().as_u16();
    let rid = request_id(&response);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let html = response.text().await.expect("html");
    assert_eq!(actual, status, "{html}");
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(uuid::Uuid::try_parse(&rid).is_ok(), "{rid}");
    assert!(
        html.contains(&format!("<code id=\"request-id\">{rid}</code>")),
        "the page shows the request id {rid}: {html}"
    );
    assert!(html.contains(&format!("Error {status}")), "{html}");
    (rid, html)
}

/// The part of `html` from `start` to the next `end` (both included); panics if absent.
pub fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"));
    let to = html[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after {start}"))
        + from
        + end.len();
    &html[from..to]
}

/// The value of `<input type="hidden" name="{name}" value="...">` in `html`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden field {name}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// How a test's own transaction that writes begins: on SQLite by taking the write lock at
/// once (rather than reading and then finding its snapshot stale when the app wrote
/// meanwhile); PostgreSQL locks rows as they are written.
pub fn begin_write() -> &'static str {
    if on_postgres() {
        "begin"
    } else {
        "begin immediate"
    }
}

/// Every row of `table` as text, a line a row and a tab after each cell: for asserting that
/// no secret or token was written anywhere, on either database.
pub async fn table_text(db: &sqlx::AnyPool, table: &str) -> String {
    use sqlx::Row;
    let rows = sqlx::query(&format!("select * from {table}"))
        .fetch_all(db)
        .await
        .expect("the table's rows");
    let mut out = String::new();
    for row in rows {
        for i in 0..row.len() {
            let cell = match row.try_get::<Option<String>, _>(i) {
                Ok(text) => text.unwrap_or_default(),
                Err(_) => match row.try_get::<Option<i64>, _>(i) {
                    Ok(n) => n.map(|n| n.to_string()).unwrap_or_default(),
                    Err(_) => row
                        .try_get::<Option<Vec<u8>>, _>(i)
                        .expect("a text, integer or blob column")
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default(),
                },
            };
            out.push_str(&cell);
            out.push('\t');
        }
        out.push('\n');
    }
    out
}

impl TestApp {
    /// What the database holds, to search for what must never be written: the SQLite
    /// files' bytes (main file and write-ahead log, free pages included), or on PostgreSQL
    /// every row of every table of the test's database as text.
    pub async fn database_bytes(&self) -> Vec<u8> {
        if let Some(path) = self.database_url.strip_prefix("sqlite://") {
            let mut bytes = Vec::new();
            for suffix in ["", "-wal"] {
                if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                    bytes.extend(b);
                }
            }
            return bytes;
        }
        let db = self.db().await;
        let tables: Vec<String> = sqlx::query_scalar(
            "select tablename::text from pg_catalog.pg_tables \
             where schemaname = 'public' and tablename not like '\\_%'",
        )
        .fetch_all(&db)
        .await
        .expect("the tables");
        let mut out = String::new();
        for table in tables {
            out.push_str(&table_text(&db, &table).await);
        }
        db.close().await;
        out.into_bytes()
    }
}

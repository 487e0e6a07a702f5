//! consentry wired to an emulator, both on port 0, and "browsers" that keep cookies.

use std::net::TcpListener;

use base64::Engine;
use consentry::config::RawSettings;
use consentry::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig};
use consentry::store::Store;
use consentry::web::Application;
use reqwest::redirect::Policy;

use crate::helpers::{TestEmulator, spawn_emulator_with};

pub const OPERATOR: &str = "ops";
pub const OPERATOR_PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub emulator: TestEmulator,
    pub database_url: String,
    /// The store the app uses (same file), for assertions on what was written.
    pub store: Store,
}

/// consentry + emulator with defaults: v2 tokens, verification deadline 3 s.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_, _| {}).await
}

/// `adjust` may change consentry's raw settings and the emulator's config before start.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut RawSettings, &mut EmulatorConfig)) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    let db_path = std::env::temp_dir().join(format!("consentry-test-{}.db", uuid::Uuid::new_v4()));
    let database_url = format!("sqlite://{}", db_path.display());

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
    let mut emulator_config = EmulatorConfig::default();
    emulator_config.redirect_uris = vec![format!("{base}/consent/callback")];
    adjust(&mut raw, &mut emulator_config);

    let emulator = spawn_emulator_with(|c| {
        let (port, workers) = (c.port, c.workers);
        *c = emulator_config;
        c.port = port;
        c.workers = workers;
    })
    .await;
    raw.set("CONSENTRY_AUTHORITY_HOST", emulator.base.as_str());
    raw.set("CONSENTRY_GRAPH_HOST", emulator.base.as_str());
    let settings = raw.parse().expect("test settings parse");
    let app = Application::build(settings, listener)
        .await
        .expect("consentry starts");
    tokio::spawn(app.run_until_stopped());

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
    }
}

/// A browser: its own cookie jar, redirects not followed (tests follow them by hand).
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: self.base.clone(),
        }
    }

    /// A browser signed in as the test operator.
    pub async fn operator(&self) -> Browser {
        let browser = self.browser();
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
        browser
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
        let url = url::Url::parse(to_microsoft).expect("absolute");
        let action = format!("{}{}", self.emulator.base, url.path());
        let mut form = vec![
            ("request", url.query().unwrap_or_default().to_owned()),
            ("decision", decision.to_owned()),
        ];
        if let Some(t) = tenant {
            form.push(("tenant", t.to_owned()));
        }
        let response = self
            .emulator
            .http
            .post(action)
            .form(&form)
            .send()
            .await
            .expect("emulator answers");
        assert_eq!(response.status(), 302, "the emulator redirects back");
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
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
        let landing = self.get("/").await;
        assert_eq!(landing.status(), 200);
        let csrf = hidden(&landing.text().await.expect("html"), "csrf");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let response = self.post_form("/signup", &form).await;
        assert_eq!(response.status(), 303, "sign-up redirects to Microsoft");
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }
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

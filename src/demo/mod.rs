//! `consentry demo`: consentry and the emulator, wired to each other, on a local SQLite
//! file, with an operator to sign in as. No Azure account, no network.
//!
//! The demo wires the hosts, ids, secrets, public URL, listen address and database itself;
//! the settings of [`FROM_ENVIRONMENT`] it takes from `CONSENTRY_*` variables as `serve`
//! does, so that e.g. `CONSENTRY_VERIFY_INTERVAL=5s consentry demo` shows tenants being
//! re-checked continuously.

use std::net::TcpListener;

use anyhow::Context;
use base64::Engine;

use crate::config::RawSettings;
use crate::domain::api_key::{ApiKeySecret, Scope};
use crate::domain::password::hash_password;
use crate::domain::webhook::EventFilter;
use crate::domain::{Keyed, RandomToken};
use crate::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};
use crate::store::{NewApiKey, NewEndpoint, Store};
use crate::web::Application;
use crate::webhooks::WebhookSecret;

/// The demo's webhook receiver.
pub mod inbox;

pub use inbox::Inbox;

/// The description that marks the demo inbox's endpoint (replaced at every start: the
/// demo's session key, from which endpoint secrets are derived, is new every time).
const INBOX_DESCRIPTION: &str = "consentry demo inbox";
/// The name of the API key the demo prints (a new one every start; older ones revoked).
const DEMO_KEY_NAME: &str = "demo";

/// The settings `consentry demo` honours from the environment (the others it wires).
pub const FROM_ENVIRONMENT: &[&str] = &[
    "CONSENTRY_VERIFY_INTERVAL",
    "CONSENTRY_VERIFY_DEADLINE",
    "CONSENTRY_VERIFY_CONCURRENCY",
    "CONSENTRY_REQUIRED_PERMISSIONS",
    "CONSENTRY_TOKEN_VERSION",
    "CONSENTRY_STATE_LIFETIME",
];

/// Where the operator's password comes from, when not generated.
const PASSWORD_VAR: &str = "CONSENTRY_OPERATOR_PASSWORD";

pub struct DemoOptions {
    pub port: u16,
    pub emulator_port: u16,
    /// The webhook inbox's port.
    pub inbox_port: u16,
    pub database: String,
}

/// Everything the demo started, for the CLI to print and run (and tests to drive).
pub struct Demo {
    pub app: Application,
    pub emulator: Emulator,
    pub public_url: String,
    pub operator_password: String,
    /// Whether the demo made the password up (else it came from
    /// `CONSENTRY_OPERATOR_PASSWORD`, and is not printed).
    pub password_generated: bool,
    pub database: String,
    /// The [`FROM_ENVIRONMENT`] settings that were set, as `KEY=value`.
    pub from_environment: Vec<String>,
    /// Receives the demo's webhook deliveries.
    pub inbox: Inbox,
    /// A key with every scope, shown once in the banner.
    pub api_key: String,
}

/// The operator the demo creates.
pub const DEMO_OPERATOR: &str = "admin";
/// The emulated organisation that stands for the company running consentry: its users
/// sign in to the console with Microsoft (`CONSENTRY_OPERATOR_TENANT`).
pub const OPERATOR_TENANT: uuid::Uuid = crate::emulator::TAILSPIN;
/// Its administrator, registered as an owner: the first sign-in with Microsoft takes it.
pub const MICROSOFT_OWNER: &str = "admin@tailspintoys.onmicrosoft.com";
/// Its member, who becomes a viewer at their first sign-in.
pub const MICROSOFT_VIEWER: &str = "grady.archie@tailspintoys.onmicrosoft.com";

impl Demo {
    pub async fn start(options: DemoOptions) -> anyhow::Result<Demo> {
        let mut raw = RawSettings::default();
        let mut from_environment = Vec::new();
        for var in FROM_ENVIRONMENT {
            if let Ok(value) = std::env::var(var)
                && !value.trim().is_empty()
            {
                from_environment.push(format!("{var}={}", value.trim()));
                raw.set(var, value);
            }
        }
        raw.set("CONSENTRY_CLIENT_ID", DEFAULT_CLIENT_ID.to_string());
        raw.set("CONSENTRY_CLIENT_SECRET", DEFAULT_CLIENT_SECRET);
        raw.set("CONSENTRY_DATABASE_URL", options.database.as_str());
        // The inbox listens on 127.0.0.1, which the address guard refuses otherwise.
        raw.set("CONSENTRY_WEBHOOK_ALLOW_PRIVATE", "true");
        // Both sign-ins with Microsoft: sign-ups may sign in first, and operators may sign
        // in through the emulated organisation that stands for ours, beside the password.
        raw.set("CONSENTRY_SIGNUP_SIGN_IN", "optional");
        raw.set("CONSENTRY_OPERATOR_TENANT", OPERATOR_TENANT.to_string());
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| anyhow::anyhow!("no randomness for the session key"))?;
        raw.set(
            "CONSENTRY_SESSION_KEY",
            base64::engine::general_purpose::STANDARD.encode(key),
        );
        // Parsed once before anything listens: an invalid value stops the demo with a
        // message naming it, and the emulator needs the required permissions.
        let required_permissions = raw.parse()?.required_permissions;

        // consentry's port first: the emulator must know the redirect URI.
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .with_context(|| format!("binding consentry to 127.0.0.1:{} (--port)", options.port))?;
        let public_url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        // The emulated app registration requests what consentry requires, as a real one is
        // set up ("Pointing it at Microsoft Entra ID" in the README).
        let emulator = Emulator::build(EmulatorConfig {
            port: options.emulator_port,
            // The consent callback, and the sign-ins with Microsoft of sign-ups and of
            // operators.
            redirect_uris: vec![
                format!("{public_url}/consent/callback"),
                format!("{public_url}/signup/signed-in"),
                format!("{public_url}/admin/signed-in"),
            ],
            permissions: required_permissions,
            ..EmulatorConfig::default()
        })
        .context("starting the emulator (--emulator-port)")?;
        raw.set("CONSENTRY_AUTHORITY_HOST", emulator.base_url());
        raw.set("CONSENTRY_GRAPH_HOST", emulator.base_url());
        raw.set("CONSENTRY_PUBLIC_URL", public_url.as_str());
        raw.set("CONSENTRY_LISTEN", listener.local_addr()?.to_string());
        let settings = raw.parse()?;

        let (operator_password, password_generated) = match std::env::var(PASSWORD_VAR) {
            Ok(p) if !p.is_empty() => (p, false),
            _ => (RandomToken::generate().expose()[..20].to_owned(), true),
        };
        let store = Store::connect_with(&settings.database_url, &settings.database).await?;
        let hash = hash_password(&operator_password)?;
        let now = time::OffsetDateTime::now_utc();
        store.upsert_operator(DEMO_OPERATOR, &hash, now).await?;
        // Registered without a password; an earlier run's registration (tied to the
        // emulated person by now) stays as it is.
        match store
            .add_operator(MICROSOFT_OWNER, "", crate::store::Role::Owner, now)
            .await
        {
            Ok(_) | Err(crate::store::OperatorChangeError::Exists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        let inbox_listener =
            TcpListener::bind(("127.0.0.1", options.inbox_port)).with_context(|| {
                format!(
                    "binding the webhook inbox to 127.0.0.1:{} (--inbox-port)",
                    options.inbox_port
                )
            })?;
        let secret = demo_endpoint(&store, &key, &inbox_listener, now).await?;
        let api_key = demo_key(&store, now).await?;
        store.close().await;
        let inbox = Inbox::start(inbox_listener, secret, &public_url)
            .context("starting the webhook inbox (--inbox-port)")?;

        let app = Application::build(settings, listener).await?;
        Ok(Demo {
            app,
            emulator,
            public_url,
            operator_password,
            password_generated,
            database: options.database,
            from_environment,
            inbox,
            api_key,
        })
    }

    pub fn banner(&self) -> String {
        let emu = self.emulator.base_url();
        // A password the operator chose is theirs: it is not echoed to the terminal.
        let password = if self.password_generated {
            format!("password: {}", self.operator_password)
        } else {
            format!("password from {PASSWORD_VAR}")
        };
        let settings = if self.from_environment.is_empty() {
            String::new()
        } else {
            format!(
                "\x20 from environment    {}\n",
                self.from_environment.join(" ")
            )
        };
        format!(
            "consentry demo: the admin-consent flow on this machine, against the built-in emulator\n\n\
             \x20 sign-up page        {url}/\n\
             \x20 operator dashboard  {url}/admin   (name: {DEMO_OPERATOR}, {password})\n\
             \x20 Microsoft (emulated) {emu}\n\
             \x20 webhook inbox       {inbox}/   (receives every event, checks signatures)\n\
             \x20 API key             {key}   (every scope; shown once)\n\
             \x20 database            {db}\n\
             {settings}\n\
             Open the sign-up page, click \"Connect your organisation\", choose Contoso Ltd on the\n\
             emulated Microsoft page and Accept. The status page turns Active within seconds; the\n\
             tenant appears on the dashboard, and tenant.connected in the webhook inbox. Or click\n\
             \"Sign in with Microsoft and connect\" and pick admin@contoso.onmicrosoft.com: the\n\
             dashboard then names who connected Contoso, verified by the sign-in.\n\
             \n\
             On the dashboard's sign-in page, \"Sign in with Microsoft\" signs operators in through\n\
             Tailspin Toys, which stands for your own organisation here: pick {owner}\n\
             (registered as an owner) or {viewer} (a new viewer). Revoke the\n\
             consent on the emulator's page ({emu}/_emulator) and tenant.status_changed follows\n\
             at the next check. The API:\n\
             \n\
             \x20 curl -H 'Authorization: Bearer {key}' {url}/api/v1/tenants\n\
             \n\
             Ctrl-C stops every server.\n",
            url = self.public_url,
            db = self.database,
            inbox = self.inbox.url(),
            key = self.api_key,
            owner = MICROSOFT_OWNER,
            viewer = MICROSOFT_VIEWER,
        )
    }

    /// Serves until either server stops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tokio::select! {
            r = self.app.run_until_stopped() => r.context("consentry stopped")?,
            r = self.emulator.run_until_stopped() => r.context("the emulator stopped")?,
            r = self.inbox.run_until_stopped() => r.context("the webhook inbox stopped")?,
        }
        Ok(())
    }
}

/// Replaces the demo inbox's endpoint (every event type) and returns its secret, derived
/// under this run's session key as consentry will derive it.
async fn demo_endpoint(
    store: &Store,
    session_key: &[u8],
    inbox: &TcpListener,
    now: time::OffsetDateTime,
) -> anyhow::Result<WebhookSecret> {
    for endpoint in store.endpoints().await? {
        if endpoint.description == INBOX_DESCRIPTION {
            store.delete_endpoint(&endpoint.id).await?;
        }
    }
    let salt = RandomToken::generate();
    let url = format!("http://{}/hooks", inbox.local_addr()?);
    store
        .create_endpoint(
            &NewEndpoint {
                url: &url,
                description: INBOX_DESCRIPTION,
                filter: &EventFilter::all(),
                secret_salt: salt.expose(),
            },
            now,
        )
        .await?;
    Ok(WebhookSecret::derive(
        &Keyed::new(session_key),
        salt.expose(),
    ))
}

/// A fresh key with every scope; the demo's earlier keys are revoked.
async fn demo_key(store: &Store, now: time::OffsetDateTime) -> anyhow::Result<String> {
    for key in store.list_api_keys().await? {
        if key.name == DEMO_KEY_NAME && key.revoked_at.is_none() {
            store.revoke_api_key(&key.id, now).await?;
        }
    }
    let key = ApiKeySecret::generate();
    store
        .create_api_key(
            &NewApiKey {
                name: DEMO_KEY_NAME,
                prefix: &key.shown_prefix(),
                key_hash: &key.hash(),
                scopes: &Scope::ALL,
            },
            now,
        )
        .await?;
    Ok(key.expose().to_owned())
}

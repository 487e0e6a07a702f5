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
use crate::domain::RandomToken;
use crate::domain::password::hash_password;
use crate::emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig};
use crate::store::Store;
use crate::web::Application;

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
}

/// The operator the demo creates.
pub const DEMO_OPERATOR: &str = "admin";

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
            redirect_uris: vec![format!("{public_url}/consent/callback")],
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
        let store = Store::connect(&options.database).await?;
        let hash = hash_password(&operator_password)?;
        store
            .upsert_operator(DEMO_OPERATOR, &hash, time::OffsetDateTime::now_utc())
            .await?;
        store.close().await;

        let app = Application::build(settings, listener).await?;
        Ok(Demo {
            app,
            emulator,
            public_url,
            operator_password,
            password_generated,
            database: options.database,
            from_environment,
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
             \x20 database            {db}\n\
             {settings}\n\
             Open the sign-up page, click \"Connect your organisation\", choose Contoso Ltd on the\n\
             emulated Microsoft page and Accept. The status page turns Active within seconds; the\n\
             tenant appears on the dashboard. Ctrl-C stops both servers.\n",
            url = self.public_url,
            db = self.database,
        )
    }

    /// Serves until either server stops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tokio::select! {
            r = self.app.run_until_stopped() => r.context("consentry stopped")?,
            r = self.emulator.run_until_stopped() => r.context("the emulator stopped")?,
        }
        Ok(())
    }
}

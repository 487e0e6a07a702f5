//! An emulator of the Microsoft identity platform (admin consent, client-credentials tokens,
//! OpenID Connect sign-in, discovery, keys) and of the Microsoft Graph endpoints consentry
//! uses, for running and testing everything offline: with fixtures, key rotation, hostile
//! token modes and a request audit for negative tests.
//!
//! A crate of its own, which depends on nothing of consentry's: consentry talks to it only
//! over HTTP, exactly as it talks to Microsoft. Other projects run it as the
//! `consentry-emulator` command, or start it in-process in their tests with
//! [`Emulator::start`] (and, with the `client` feature, drive it with [`client::TestEmulator`]).
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod assertion;
mod audit;
mod certificate;
mod claims;
/// The `consentry-emulator` command's flags, shared with `consentry emulator`.
#[cfg(feature = "cli")]
pub mod cli;
/// A running emulator and its control-API client, for tests (feature `client`).
#[cfg(feature = "client")]
pub mod client;
mod clock;
mod config;
mod directory;
mod errors;
mod faults;
mod fixture;
mod hostile;
mod keys;
mod params;
mod permissions;
mod routes;
mod seed;
mod signin;
mod signin_errors;
mod signing;
mod stats;
mod tls;
mod user_claims;
mod users;

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;

pub use config::{
    ConfigError, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS, EmulatorConfig,
};
pub use seed::{CONTOSO, TAILSPIN};

use audit::AuditLog;
use certificate::ClientCertificate;
use clock::Clock;
use directory::{AppRegistration, Directory, SecretHash};
use faults::FaultInjector;
use fixture::{Fixture, Origin};
use hostile::Throttle;
use signing::TokenSigner;
use stats::RequestStats;
use users::Accounts;

/// Shared by every request handler.
struct EmulatorState {
    directory: RwLock<Directory>,
    /// What `POST /_emulator/reset` rebuilds the directory from.
    origin: std::sync::Arc<Origin>,
    signer: TokenSigner,
    clock: Clock,
    stats: RequestStats,
    faults: FaultInjector,
    throttle: Throttle,
    audit: AuditLog,
    token_lifetime_secs: u32,
    /// Who can sign in, and what they consented to.
    accounts: RwLock<Accounts>,
    sign_ins: signin::SignIns,
}

impl EmulatorState {
    fn directory(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        // A handler never panics while holding the lock; if one did, the data is still whole.
        self.directory.read().unwrap_or_else(|p| p.into_inner())
    }

    fn directory_mut(&self) -> std::sync::RwLockWriteGuard<'_, Directory> {
        self.directory.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Taken after the directory's lock when both are needed, never before.
    fn accounts(&self) -> std::sync::RwLockReadGuard<'_, Accounts> {
        self.accounts.read().unwrap_or_else(|p| p.into_inner())
    }

    fn accounts_mut(&self) -> std::sync::RwLockWriteGuard<'_, Accounts> {
        self.accounts.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bound, not yet running emulator: [`Emulator::build`] then
/// [`Emulator::run_until_stopped`], or both at once with [`Emulator::start`].
pub struct Emulator {
    server: Server,
    base_url: String,
    ca_pem_path: Option<PathBuf>,
    state: web::Data<EmulatorState>,
}

impl Emulator {
    /// Validates the configuration, makes keys (and certificates with `https`), seeds the
    /// directory and binds the port. Call inside a tokio runtime; then await
    /// [`Emulator::run_until_stopped`] or spawn it.
    pub fn build(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        config.validate()?;
        let certificates = config
            .certificates
            .iter()
            .map(|path| {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --certificate {}", path.display()))?;
                ClientCertificate::from_pem(&pem)
                    .with_context(|| format!("--certificate {}", path.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let fixture = config.fixture.as_deref().map(Fixture::load).transpose()?;
        let clock = Clock::default();
        let now = clock.now();
        let signer = TokenSigner::generate(now)?;
        let origin = Origin {
            fixture,
            default_app: AppRegistration {
                client_id: config.client_id,
                display_name: config.app_name.clone(),
                secrets: vec![SecretHash::of(&config.client_secret)],
                redirect_uris: config.redirect_uris.clone(),
                required_roles: config.permissions.clone(),
                app_roles: Vec::new(),
                certificates,
                federated: Vec::new(),
            },
            seed: config.seed,
            generate_tenants: config.generate_tenants,
            users_per_generated_tenant: config.users_per_generated_tenant,
        };
        let fixture::World {
            directory,
            accounts,
        } = origin.world(now)?;

        let listener = TcpListener::bind((config.host, config.port))
            .with_context(|| format!("binding the emulator to {}:{}", config.host, config.port))?;
        let addr = listener.local_addr()?;
        let printable_host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let scheme = if config.https { "https" } else { "http" };
        let base_url = format!("{scheme}://{printable_host}:{}", addr.port());

        let state = web::Data::new(EmulatorState {
            directory: RwLock::new(directory),
            origin: std::sync::Arc::new(origin),
            signer,
            clock,
            stats: RequestStats::default(),
            faults: FaultInjector::default(),
            throttle: Throttle::default(),
            audit: AuditLog::default(),
            token_lifetime_secs: config.token_lifetime_secs,
            accounts: RwLock::new(accounts),
            sign_ins: signin::SignIns::default(),
        });
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(middleware::from_fn(routes::log_request))
                .configure(routes::configure)
        });
        if let Some(workers) = config.workers {
            server = server.workers(workers.max(1));
        }
        let (server, ca_pem_path) = if config.https {
            let dir = config.tls_dir.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!("consentry-emulator-{}", std::process::id()))
            });
            let tls = tls::generate(&dir, Some(&addr.ip().to_string()))?;
            (
                server.listen_rustls_0_23(listener, tls.server_config)?,
                Some(tls.ca_pem_path),
            )
        } else {
            (server.listen(listener)?, None)
        };
        Ok(Emulator {
            server: server.run(),
            base_url,
            ca_pem_path,
            state,
        })
    }

    /// `http(s)://host:port`: both the authority host and the Graph host.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CA certificate clients must trust, with `https`.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// Stops the server from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// What `consentry emulator` prints at start: URLs, the app registration, the tenants.
    pub fn banner(&self) -> String {
        use std::fmt::Write;
        let dir = self.state.directory();
        let app = dir.primary_app();
        let base = &self.base_url;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "consentry emulator: Microsoft identity platform and Microsoft Graph, offline\n"
        );
        let _ = writeln!(out, "  authority host   {base}");
        let _ = writeln!(out, "  graph host       {base}");
        let _ = writeln!(out, "  control API      {base}/_emulator/");
        if let Some(ca) = &self.ca_pem_path {
            let _ = writeln!(out, "  trust this CA    {}", ca.display());
        }
        for app in dir.apps() {
            let _ = writeln!(out, "\napp registration '{}'", app.display_name);
            let _ = writeln!(out, "  client id        {}", app.client_id);
            for secret in &app.secrets {
                if *secret == SecretHash::of(DEFAULT_CLIENT_SECRET) {
                    let _ = writeln!(
                        out,
                        "  client secret    {DEFAULT_CLIENT_SECRET}  (the documented default)"
                    );
                } else {
                    let _ = writeln!(out, "  client secret    (as given)");
                }
            }
            for uri in &app.redirect_uris {
                let _ = writeln!(out, "  redirect URI     {uri}");
            }
            let _ = writeln!(out, "  permissions      {}", app.required_roles.join(", "));
            for certificate in &app.certificates {
                let _ = writeln!(
                    out,
                    "  certificate      {}  (x5t#S256 {}, until {})",
                    certificate.thumbprint(),
                    certificate.x5t_s256(),
                    clock::rfc3339_seconds(certificate.not_after)
                );
            }
        }
        let tenants = dir.tenants();
        let _ = writeln!(out, "\n{} tenants", tenants.len());
        for t in tenants.iter().take(10) {
            let consents = match (t.consent(app.client_id).is_some(), t.consents.len()) {
                (_, 0) => "not consented".to_owned(),
                (true, 1) => "consented".to_owned(),
                (_, n) => format!("consented to {n} app(s)"),
            };
            let _ = writeln!(
                out,
                "  {}  {:<36} {:<22} {:>4} users  {consents}",
                t.id, t.initial_domain, t.display_name, t.user_count,
            );
        }
        if tenants.len() > 10 {
            let _ = writeln!(
                out,
                "  ... and {} more (GET {base}/_emulator/tenants)",
                tenants.len() - 10
            );
        }
        if let Some(uri) = app.redirect_uris.first() {
            let _ = writeln!(
                out,
                "\nadmin consent: {base}/organizations/adminconsent?client_id={}&redirect_uri={}&state=try-me",
                app.client_id,
                params::encode_component(uri.as_bytes())
            );
        }
        out
    }

    /// Serves until the server is stopped (through [`Emulator::handle`], or Ctrl-C).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Builds the emulator as [`Emulator::build`] does and serves it on a task of the
    /// current tokio runtime; it answers as soon as this returns. With `port: 0` it takes a
    /// free port, which is how tests (ours and other projects') start one:
    ///
    /// ```no_run
    /// # async fn example() -> anyhow::Result<()> {
    /// use consentry_emulator::{Emulator, EmulatorConfig};
    ///
    /// let emulator = Emulator::start(EmulatorConfig {
    ///     port: 0,
    ///     redirect_uris: vec!["http://localhost:3000/callback".to_owned()],
    ///     ..EmulatorConfig::default()
    /// })
    /// .await?;
    /// // Point the application under test at it, as its authority host and Graph host.
    /// let authority_host = emulator.base_url();
    /// # let _ = authority_host;
    /// emulator.stop().await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// It stops with [`RunningEmulator::stop`], or with the runtime (a `#[tokio::test]`'s
    /// ends with the test).
    pub async fn start(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
        let emulator = Emulator::build(config)?;
        let running = RunningEmulator {
            base_url: emulator.base_url.clone(),
            ca_pem_path: emulator.ca_pem_path.clone(),
            handle: emulator.handle(),
        };
        tokio::spawn(emulator.run_until_stopped());
        Ok(running)
    }
}

/// An emulator serving on a task, from [`Emulator::start`].
#[derive(Clone)]
pub struct RunningEmulator {
    base_url: String,
    ca_pem_path: Option<PathBuf>,
    handle: ServerHandle,
}

impl RunningEmulator {
    /// `http(s)://127.0.0.1:port`: both the authority host (login.microsoftonline.com) and
    /// the Graph host (graph.microsoft.com) of the application under test.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CA certificate clients must trust, with `https`.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// Stops accepting connections and ends the server without waiting for open ones.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

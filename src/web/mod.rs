//! The HTTP service: sign-up, the consent callback, the status page, the operator
//! dashboard and the JSON API, with the middleware every response passes through.

pub mod api;
pub mod charts;
mod cookies;
mod csrf;
mod error;
pub mod format;
mod metrics;
mod middleware;
mod rate_limit;
mod routes;
mod supervisor;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::Keyed;
use crate::entra::EntraClient;
use crate::store::Store;
use crate::tokens::TokenEngine;
use crate::verification::{CheckPolicy, Verifier};
use crate::webhooks::WebhookWorker;

pub use error::WebError;
/// Every dashboard POST route and the least role that may use it (the tests walk it).
pub use routes::ADMIN_POST_ROUTES;
pub use supervisor::{Supervisor, TaskState};

/// The background tasks `serve` runs beside the web server, as the readiness probe names
/// them: the due-tenant loop, the first-check lane, and the webhook delivery worker.
pub const BACKGROUND_TASKS: [&str; 3] = ["verifier", "first_checks", "webhooks"];

/// Tenants whose tokens the engine keeps; beyond it the least recently used are dropped.
/// Measured by `cargo bench --bench verify -- --tenants 100000 --skip-msal`: about 2.7 KB a
/// tenant, 270 MiB for 100,000.
const TOKEN_CACHE_CAPACITY: usize = 100_000;

/// What every handler can reach.
pub struct AppState {
    pub settings: Settings,
    pub store: Store,
    pub entra: Arc<EntraClient>,
    /// Signing people in with Microsoft (discovery, keys, code redemption, ID tokens).
    pub oidc: Arc<crate::entra::oidc::OidcClient>,
    pub verifier: Arc<Verifier>,
    pub graph: crate::graph::GraphClient,
    /// The token engine the verifier and `graph` use, for `POST /api/v1/tenants/{id}/token`.
    pub tokens: Arc<TokenEngine>,
    /// Writes that route's `token_issued` events, many requests' in one commit.
    pub token_events: crate::store::EventWriter,
    /// HMACs of states, bindings and session ids under the session key.
    pub keyed: Keyed,
    pub signup_limit: rate_limit::RateLimiter,
    pub login_limit: rate_limit::RateLimiter,
    /// Callbacks per client: an administrator comes back once or twice.
    pub callback_limit: rate_limit::RateLimiter,
    /// API requests per key.
    pub api_limit: rate_limit::RateLimiter,
    /// Refused callbacks that wrote nothing, by reason.
    pub refused_callbacks: routes::RefusedCallbacks,
    /// Argon2 checks of sign-ins, bounded (19 MiB each).
    pub password_checks: crate::domain::password::PasswordChecks,
    /// The background tasks and how each stands (for `/readyz`).
    pub background: Arc<Supervisor>,
    /// The webhook delivery worker: call `wake()` after making deliveries due (a resend,
    /// an endpoint enabled) so they go out now rather than at the next poll.
    pub webhooks: Arc<WebhookWorker>,
    /// The service's own figures, for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The verifier `serve` runs in the background and `tenants verify` runs once.
pub fn verifier_for(settings: &Settings, store: Store) -> anyhow::Result<Verifier> {
    let entra =
        Arc::new(EntraClient::new(settings).context("building the HTTP client for Microsoft")?);
    let engine = token_engine(entra.clone());
    Ok(verifier_with(settings, store, entra, engine))
}

fn token_engine(entra: Arc<EntraClient>) -> Arc<TokenEngine> {
    Arc::new(TokenEngine::new(
        entra,
        Arc::new(SystemClock),
        TOKEN_CACHE_CAPACITY,
    ))
}

fn verifier_with(
    settings: &Settings,
    store: Store,
    entra: Arc<EntraClient>,
    engine: Arc<TokenEngine>,
) -> Verifier {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = CheckPolicy {
        lease: settings.verify_lease,
        ..CheckPolicy::new(
            settings.verify_deadline,
            settings.verify_interval,
            settings.verify_concurrency,
        )
    };
    Verifier::new(
        store,
        engine,
        entra,
        clock,
        settings.required_permissions.clone(),
        policy,
    )
}

/// The store `serve` runs on: migrated at start, or, with `CONSENTRY_MIGRATE=false`, found
/// to need no migration (another instance or `consentry migrate` applies them).
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    if settings.migrate {
        return Store::connect_with(&settings.database_url, &settings.database).await;
    }
    let store = Store::open(&settings.database_url, &settings.database).await?;
    let checked = store
        .schema_status()
        .await
        .context("reading the database's applied migrations")
        .and_then(|status| match status.require_current() {
            Err(pending @ crate::store::SchemaError::Pending(_)) => {
                Err(anyhow::Error::new(pending)
                    .context("CONSENTRY_MIGRATE=false, so serve applies no migrations itself"))
            }
            other => Ok(other?),
        });
    if let Err(e) = checked {
        store.close().await;
        return Err(e);
    }
    Ok(store)
}

/// A bound, not yet running service.
pub struct Application {
    server: Server,
    /// `GET /metrics` without a token on `CONSENTRY_METRICS_LISTEN`, when set.
    metrics_server: Option<Server>,
    port: u16,
    verifier: Arc<Verifier>,
    webhooks: Arc<WebhookWorker>,
    background: Arc<Supervisor>,
}

impl Application {
    /// Opens the store (applying migrations, unless `CONSENTRY_MIGRATE=false`), binds
    /// `listener` and prepares the server.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<Application> {
        let store = open_store(&settings).await?;
        let metrics = crate::metrics::Metrics::new();
        metrics.start_upkeep();
        let entra = Arc::new(
            EntraClient::new(&settings)
                .context("building the HTTP client for Microsoft")?
                .with_metrics(metrics.clone()),
        );
        // One engine: the background checks and the dashboard's Graph calls share tokens.
        let engine = token_engine(entra.clone());
        let verifier = Arc::new(verifier_with(
            &settings,
            store.clone(),
            entra.clone(),
            engine.clone(),
        ));
        // An alert raised before a restart stays on the dashboard until a check clears it.
        verifier.health.restore(store.app_alert().await?.as_ref());
        let graph = crate::graph::GraphClient::new(entra.clone(), engine.clone());
        let webhooks = Arc::new(
            WebhookWorker::new(store.clone(), &settings)
                .context("building the HTTP client for webhook deliveries")?,
        );
        let port = listener.local_addr()?.port();
        let metrics_listener = match settings.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .with_context(|| format!("binding CONSENTRY_METRICS_LISTEN {address}"))?,
            ),
            None => None,
        };
        let background = Arc::new(Supervisor::new(&BACKGROUND_TASKS));
        let oidc = Arc::new(crate::entra::oidc::OidcClient::new(
            entra.http().clone(),
            settings.authority_host.as_str(),
            settings.client_id,
            settings.credential.clone(),
        ));
        let state = web::Data::new(AppState {
            oidc,
            metrics,
            background: background.clone(),
            webhooks: webhooks.clone(),
            keyed: Keyed::new(settings.session_key.bytes()),
            settings,
            token_events: crate::store::EventWriter::start(&store),
            store,
            entra,
            verifier: verifier.clone(),
            graph,
            tokens: engine,
            // A person signs up a handful of times; 10 a minute per address with a burst
            // of 5 stops floods without getting in anyone's way.
            signup_limit: rate_limit::RateLimiter::new(5, 10.0 / 60.0),
            // Failed logins: 5 at once, then one a minute, per address and per name.
            login_limit: rate_limit::RateLimiter::new(5, 1.0 / 60.0),
            // A burst of 10, then 10 a minute: far above a person's, far below a flood's.
            callback_limit: rate_limit::RateLimiter::new(10, 10.0 / 60.0),
            // Per API key: a burst of 1,000, then 500 a second. Generous: keys belong to the
            // operator's own services; the limit stops one runaway client from taking the
            // whole service, not normal use.
            api_limit: rate_limit::RateLimiter::new(1000, 500.0),
            refused_callbacks: routes::RefusedCallbacks::default(),
            password_checks: crate::domain::password::PasswordChecks::for_sign_ins(),
        });
        let metrics_server = match metrics_listener {
            Some(listener) => {
                let state = state.clone();
                Some(
                    HttpServer::new(move || {
                        App::new()
                            .app_data(state.clone())
                            .configure(metrics::configure_open)
                    })
                    .workers(1)
                    .listen(listener)?
                    .run(),
                )
            }
            None => None,
        };
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::FormConfig::default().limit(16 * 1024))
                .app_data(web::QueryConfig::default())
                .wrap(actix_web::middleware::from_fn(middleware::error_pages))
                .wrap(actix_web::middleware::from_fn(middleware::security_headers))
                .wrap(actix_web::middleware::from_fn(middleware::request_id))
                .wrap(actix_web::middleware::from_fn(middleware::metrics))
                .configure(routes::configure)
                .configure(metrics::configure)
                .configure(api::configure)
        })
        .listen(listener)?
        .run();
        Ok(Application {
            server,
            metrics_server,
            port,
            verifier,
            webhooks,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped, with the check loops and the webhook worker running beside the
    /// server, each under supervision: a loop that panics or returns is logged and restarted, and `/readyz`
    /// says so meanwhile.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let [due, first, deliveries] = BACKGROUND_TASKS;
        let verifier = self.verifier.clone();
        let loops = [
            self.background
                .supervise(due, move || verifier.clone().run_forever()),
            {
                let verifier = self.verifier.clone();
                self.background
                    .supervise(first, move || verifier.clone().run_first_checks())
            },
            {
                let worker = self.webhooks.clone();
                self.background
                    .supervise(deliveries, move || worker.clone().run_forever())
            },
        ];
        let metrics = self.metrics_server.map(|server| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            task.abort();
        }
        for task in loops {
            task.abort();
        }
        result
    }
}

//! The demo's webhook inbox: a receiver of consentry's deliveries, as a customer's product
//! would run one, with a page that shows what arrived.
//!
//! It verifies each delivery as a receiver must (Standard Webhooks: the signature under the
//! endpoint's secret, the timestamp within five minutes), answers 204 to a good one and 400
//! to a bad one, and keeps the last [`KEEP`] deliveries in memory. `GET /` lists them,
//! newest first, and reloads itself every few seconds (a meta refresh: no JavaScript).

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use askama::Template;

use crate::webhooks::{WebhookSecret, verify};

/// Deliveries kept for the page.
const KEEP: usize = 200;

/// One delivery as the inbox received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub event_type: String,
    pub received_at: String,
    /// `None` when the signature verified, else why it did not.
    pub refused: Option<String>,
    /// The body, indented for reading.
    pub body: String,
}

struct InboxState {
    secret: WebhookSecret,
    received: Mutex<VecDeque<Received>>,
    app_url: String,
}

/// A running inbox.
pub struct Inbox {
    server: Server,
    state: Arc<InboxState>,
    url: String,
}

#[derive(Template)]
#[template(path = "demo/inbox.html")]
struct InboxPage<'a> {
    received: Vec<Received>,
    app_url: &'a str,
    hook_url: &'a str,
}

impl Inbox {
    /// Listens on `listener`; deliveries must be signed with `secret`. `app_url` is
    /// consentry's, for the page's stylesheet and links.
    pub fn start(
        listener: TcpListener,
        secret: WebhookSecret,
        app_url: &str,
    ) -> anyhow::Result<Inbox> {
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(InboxState {
            secret,
            received: Mutex::new(VecDeque::new()),
            app_url: app_url.to_owned(),
        });
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(256 * 1024))
                .route("/", web::get().to(page))
                .route("/hooks", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)?
        .run();
        Ok(Inbox { server, state, url })
    }

    /// Where deliveries go: `{url}/hooks`.
    pub fn hook_url(&self) -> String {
        format!("{}/hooks", self.url)
    }

    /// The page.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What arrived so far, newest first.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).iter().cloned().collect()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<InboxState>) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let id = header("webhook-id");
    let now = time::OffsetDateTime::now_utc();
    let refused = verify(
        &id,
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        &body,
        &state.secret,
        now.unix_timestamp(),
    )
    .err()
    .map(|e| e.to_string());
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let event_type = parsed
        .as_ref()
        .and_then(|v| v["type"].as_str())
        .unwrap_or("(not JSON)")
        .to_owned();
    let pretty = parsed
        .as_ref()
        .and_then(|v| serde_json::to_string_pretty(v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(2000).collect());
    let good = refused.is_none();
    {
        let mut received = lock(&state.received);
        received.push_front(Received {
            id,
            event_type,
            received_at: crate::store::ts(now),
            refused,
            body: pretty,
        });
        received.truncate(KEEP);
    }
    if good {
        HttpResponse::NoContent().finish()
    } else {
        HttpResponse::BadRequest().body("signature does not verify")
    }
}

async fn page(state: web::Data<InboxState>) -> actix_web::Result<HttpResponse> {
    let received: Vec<Received> = lock(&state.received).iter().cloned().collect();
    let page = InboxPage {
        received,
        app_url: &state.app_url,
        hook_url: "/hooks",
    };
    let html = page
        .render()
        .map_err(actix_web::error::ErrorInternalServerError)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-store"))
        .body(html))
}

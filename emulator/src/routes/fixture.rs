//! `GET /_emulator/fixture` (the world as a fixture) and `POST /_emulator/reset` (back to
//! the fixture, or to the built-in defaults).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::control::{ControlError, Reply};
use crate::EmulatorState;
use crate::fixture::{Fixture, Format};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/fixture", web::get().to(export))
        .route("/reset", web::post().to(reset));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    /// `json` (the default) or `toml`.
    format: Option<String>,
}

/// JSON, or TOML when `?format=toml` or the `Accept` header asks for `application/toml`.
fn export_format(req: &HttpRequest) -> Result<Format, ControlError> {
    let query = web::Query::<ExportQuery>::from_query(req.query_string())
        .map_err(|e| ControlError::BadRequest(format!("query: {e}")))?;
    match query
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("toml") => Ok(Format::Toml),
        Some("json") => Ok(Format::Json),
        Some(other) => Err(ControlError::BadRequest(format!(
            "format '{other}': expected json or toml"
        ))),
        None => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            Ok(if accept.contains("application/toml") {
                Format::Toml
            } else {
                Format::Json
            })
        }
    }
}

/// Under the directory's lock only the apps and a pointer per tenant are copied; the
/// fixture and its text are made off the worker.
async fn export(req: HttpRequest, state: web::Data<EmulatorState>) -> Reply {
    let format = export_format(&req)?;
    let (apps, tenants, accounts) = {
        let dir = state.directory();
        // The sign-in users are few (bounded per tenant): copied whole.
        let accounts = state.accounts().clone();
        (dir.apps().to_vec(), dir.snapshot(), accounts)
    };
    let body = web::block(move || {
        let fixture = Fixture::export(&apps, tenants, &accounts);
        match format {
            Format::Toml => toml::to_string(&fixture)
                .map(String::into_bytes)
                .map_err(|e| e.to_string()),
            Format::Json => serde_json::to_vec_pretty(&fixture).map_err(|e| e.to_string()),
        }
    })
    .await
    .map_err(|_| ControlError::ShuttingDown)?
    .map_err(|e| ControlError::Conflict(format!("the fixture could not be written: {e}")))?;
    let content_type = match format {
        Format::Toml => "application/toml; charset=utf-8",
        Format::Json => "application/json",
    };
    Ok(HttpResponse::Ok().content_type(content_type).body(body))
}

/// Rebuilds the directory and the sign-in users as the emulator started (off the worker),
/// swaps them in, and clears delegated grants, sign-in flows, codes, refresh tokens and
/// browser sessions, the faults, hostile modes and request counts. The clock (which never
/// goes back), the signing keys and the request audit stay.
async fn reset(state: web::Data<EmulatorState>) -> Reply {
    let now = state.clock.now();
    let origin = state.origin.clone();
    let world = web::block(move || origin.world(now))
        .await
        .map_err(|_| ControlError::ShuttingDown)?
        .map_err(|e| ControlError::Conflict(format!("{e:#}")))?;
    let (apps, tenants, users) = (
        world.directory.apps().len(),
        world.directory.tenant_count(),
        world.accounts.count(),
    );
    let old = {
        let mut dir = state.directory_mut();
        *state.accounts_mut() = world.accounts;
        std::mem::replace(&mut *dir, world.directory)
    };
    state.sign_ins.clear();
    state.faults.clear();
    state.signer.forge().set(None);
    state.throttle.set(None);
    state.stats.reset();
    // Dropping a large directory takes a while: not on the worker.
    let _ = web::block(move || drop(old)).await;
    Ok(HttpResponse::Ok().json(json!({ "apps": apps, "tenants": tenants, "users": users })))
}

//! The control API's negative-testing tools: signing-key rotation (`/_emulator/keys`),
//! hostile modes (`/_emulator/hostile`) and the request audit (`/_emulator/audit`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::control::{ControlError, Reply};
use crate::EmulatorState;
use crate::audit::CAPACITY;
use crate::hostile::{Hostile, HostileRequest};
use crate::signing::SigningKey;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/keys", web::get().to(keys))
        .route("/keys/rotate", web::post().to(rotate))
        .service(
            web::resource("/hostile")
                .route(web::get().to(hostile))
                .route(web::post().to(set_hostile))
                .route(web::delete().to(clear_hostile)),
        )
        .service(
            web::resource("/audit")
                .route(web::get().to(audit))
                .route(web::delete().to(clear_audit)),
        );
}

async fn keys(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(state.signer.keys().view(state.clock.now()))
}

/// A new RSA key takes a tenth of a second and more to make: on the blocking pool.
async fn rotate(state: web::Data<EmulatorState>) -> Reply {
    let key = web::block(SigningKey::generate)
        .await
        .map_err(|_| ControlError::ShuttingDown)?
        .map_err(|_| ControlError::NoKey)?;
    let now = state.clock.now();
    state
        .signer
        .keys()
        .rotate(key, now)
        .map_err(|e| ControlError::Conflict(e.to_string()))?;
    Ok(HttpResponse::Created().json(state.signer.keys().view(now)))
}

fn hostile_view(state: &EmulatorState) -> serde_json::Value {
    json!({
        "tokens": state.signer.forge().view(),
        "throttle": state.throttle.view(state.clock.now()),
    })
}

async fn hostile(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(hostile_view(&state))
}

/// Sets token tampering or throttling; each replaces the one of its kind before it.
async fn set_hostile(body: web::Json<HostileRequest>, state: web::Data<EmulatorState>) -> Reply {
    match Hostile::try_from(body.into_inner())
        .map_err(|e| ControlError::BadRequest(e.to_string()))?
    {
        Hostile::Tamper(rule) => state.signer.forge().set(Some(rule)),
        Hostile::Throttle(rule) => state.throttle.set(Some(rule)),
    }
    Ok(HttpResponse::Ok().json(hostile_view(&state)))
}

async fn clear_hostile(state: web::Data<EmulatorState>) -> HttpResponse {
    state.signer.forge().set(None);
    state.throttle.set(None);
    HttpResponse::NoContent().finish()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit(req: HttpRequest, state: web::Data<EmulatorState>) -> Reply {
    let query = web::Query::<AuditQuery>::from_query(req.query_string())
        .map_err(|e| ControlError::BadRequest(format!("query: {e}")))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=CAPACITY).contains(&limit) {
        return Err(ControlError::BadRequest(format!(
            "limit must be between 1 and {CAPACITY}"
        )));
    }
    Ok(HttpResponse::Ok().json(json!({
        "capacity": CAPACITY,
        "requests": state.audit.last(limit),
    })))
}

async fn clear_audit(state: web::Data<EmulatorState>) -> HttpResponse {
    state.audit.clear();
    HttpResponse::NoContent().finish()
}

//! `GET /metrics`: the Prometheus text exposition (`crate::metrics`).
//!
//! On the main port it asks for `Authorization: Bearer <CONSENTRY_METRICS_TOKEN>`
//! (compared in constant time) and is 404 while no token is configured, so a public
//! deployment shows nothing by default. `CONSENTRY_METRICS_LISTEN` serves it on a
//! separate address without a token instead: that address belongs on a private network.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::AppState;

/// The exposition format's media type (Prometheus text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(behind_token));
}

/// The separate listener's only route.
pub fn configure_open(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(open));
}

async fn behind_token(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(expected) = &state.settings.metrics_token else {
        return HttpResponse::NotFound().finish();
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let allowed = presented.is_some_and(|token| {
        bool::from(token.as_bytes().ct_eq(expected.expose_secret().as_bytes()))
    });
    if !allowed {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .finish();
    }
    open(state).await
}

async fn open(state: web::Data<AppState>) -> HttpResponse {
    let body = state.metrics.render(&state.store).await;
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

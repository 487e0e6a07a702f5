//! Routes: the public onboarding pages and the operator dashboard under `/admin`.

mod admin;
mod callback;
mod invite;
mod ready;
mod signup;
mod status;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::middleware::RequestId;

pub use admin::POST_ROUTES as ADMIN_POST_ROUTES;
pub use callback::RefusedCallbacks;

/// Routes go through `web::resource`, not `cfg.route`: the latter moves the method guard
/// onto the resource, so a wrong method would fall through to a 404 instead of a 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").get(signup::landing))
        .service(web::resource("/signup").post(signup::submit))
        .service(
            web::resource("/invite/{token}")
                .get(invite::show)
                .post(invite::start),
        )
        .service(web::resource("/consent/callback").get(callback::callback))
        .service(web::resource("/consent/status").get(status::status))
        .service(web::resource("/static/consentry.css").get(stylesheet))
        .service(web::resource("/health").get(|| async { HttpResponse::Ok().body("ok") }))
        .service(web::resource("/readyz").get(ready::readyz))
        .service(
            web::scope("/admin")
                .wrap(actix_web::middleware::from_fn(admin::enforce_roles))
                .configure(admin::configure),
        );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../static/consentry.css"))
}

/// The id the request-id middleware gave this request.
fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default()
}

/// The client's address, for rate limits (the peer: consentry does not trust forwarding
/// headers it cannot authenticate), as `rate_limit::client_key` names it.
fn client_addr(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| super::rate_limit::client_key(a.ip()))
        .unwrap_or_else(|| "unknown".into())
}

/// The client's network, for bounds that a single address could dodge: an IPv4 address
/// (an attacker rarely holds many), an IPv6 /48 (one site's allocation: 65,536 /64s).
fn client_network(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| super::rate_limit::client_prefix(a.ip(), 48))
        .unwrap_or_else(|| "unknown".into())
}

/// Renders an askama template as a page of its own (not replaced by the error page).
fn page(
    status: actix_web::http::StatusCode,
    rendered: askama::Result<String>,
) -> Result<HttpResponse, super::WebError> {
    let body = rendered.map_err(|e| super::WebError::Internal(anyhow::Error::new(e)))?;
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    response.extensions_mut().insert(super::middleware::OwnPage);
    Ok(response)
}

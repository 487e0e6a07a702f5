//! The emulator's HTTP surface: one module per Microsoft endpoint family, plus the control API.

mod adminconsent;
mod authorize;
mod code_grant;
mod control;
mod discovery;
mod fixture;
mod graph;
mod hostile;
mod token;
mod users;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use super::errors::StsError;
use super::params::{ParamError, Params};

/// Routes, most specific first: `/_emulator`, `/v1.0` and `/error` before the
/// `/{tenant}/...` family.
///
/// That family is one scope, so its tenant segment is matched once per request and the
/// rest of the path is compared as plain text. Each `/{tenant}/...` route of its own is a
/// regular expression that actix-web tries in turn (regex-lite's backtracking-free
/// matcher, some 30,000 instructions for a discovery path): with the sign-in routes
/// registered ahead of it, discovery ran seven of them and spent two thirds of its time
/// finding its handler.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/_emulator")
            .configure(fixture::configure)
            .configure(hostile::configure)
            .configure(control::configure),
    )
    .service(web::scope("/v1.0").configure(graph::configure))
    .route("/error", web::get().to(adminconsent::error_code))
    .service(web::scope("/{tenant}").configure(tenant_routes))
    .default_service(web::to(not_found));
}

/// What follows `/{tenant}`; an unknown path falls through to the app's `not_found`.
fn tenant_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/oauth2/v2.0/token")
            .route(web::post().to(token::v2))
            .route(web::method(actix_web::http::Method::OPTIONS).to(token::preflight))
            .default_service(web::to(token::wrong_method)),
    )
    .service(
        web::resource("/oauth2/token")
            .route(web::post().to(token::v1))
            .route(web::method(actix_web::http::Method::OPTIONS).to(token::preflight))
            .default_service(web::to(token::wrong_method)),
    )
    .route(
        "/v2.0/.well-known/openid-configuration",
        web::get().to(discovery::v2),
    )
    .route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::v1),
    )
    .route("/discovery/v2.0/keys", web::get().to(discovery::keys))
    .route("/discovery/keys", web::get().to(discovery::keys))
    .service(
        web::resource("/adminconsent")
            .route(web::get().to(adminconsent::show))
            .route(web::post().to(adminconsent::decide)),
    )
    .route(
        "/oauth2/v2.0/authorize",
        web::get().to(authorize::authorize),
    )
    .route("/login", web::post().to(authorize::login))
    .route("/consent", web::post().to(authorize::consent));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({
        "error": "not_found",
        "error_description": format!(
            "The emulator has no endpoint {} {}. See GET /_emulator/ for what it serves.",
            req.method(),
            req.path()
        ),
    }))
}

/// One line per request at debug level: method, path (never the query, which may carry a
/// `state` or a secret), status and time taken; and the request audit's record of it.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let mut response = next.call(req).await?;
    // The answered request is the one asked: its method and path are read from it here.
    tracing::debug!(
        target: "consentry::emulator",
        method = %response.request().method(),
        path = response.request().path(),
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    super::audit::record(&mut response);
    Ok(response)
}

/// `scheme://host` as the client addressed us, so the URLs we hand out (token endpoint,
/// next pages) work through whatever address the client used.
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// Reads a request body of at most `limit` bytes.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ParamError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        // A broken body is as unusable as an oversized one; the client gets a 400 either way.
        let chunk = chunk.map_err(|_| ParamError::TooLong { limit })?;
        if body.len() + chunk.len() > limit {
            return Err(ParamError::TooLong { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A parameter problem in the identity platform's words.
fn sts_param_error(e: ParamError) -> StsError {
    match e {
        ParamError::TooLong { .. } => StsError::too_long(),
        ParamError::Repeated(name) => StsError::repeated_parameter(&name),
        ParamError::NotUtf8(name) => {
            StsError::malformed(&format!("The parameter '{name}' is not valid UTF-8."))
        }
    }
}

/// Parses a form body; anything but `application/x-www-form-urlencoded` reads as empty,
/// which is how Microsoft treats a JSON body (AADSTS900144 on the first required field).
fn form_params(req: &HttpRequest, body: &[u8], limit: usize) -> Result<Params, StsError> {
    let is_form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !is_form {
        return Ok(Params::default());
    }
    Params::parse(body, limit).map_err(sts_param_error)
}

//! Middleware every response passes through: a request id (logged, returned in
//! `x-request-id`, shown on error pages), security headers (HSTS too when the public URL is
//! https), the one error page, and the request metrics.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use askama::Template;
use tracing::Instrument;
use uuid::Uuid;

use super::AppState;
use super::error::ErrorPage;

/// The id of the request being served.
#[derive(Debug, Clone, Copy)]
pub struct RequestId(pub Uuid);

/// Marks a response whose body is a page of its own, not to be replaced by the error page.
#[derive(Debug, Clone, Copy)]
pub struct OwnPage;

pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = Uuid::new_v4();
    req.extensions_mut().insert(RequestId(id));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());
    async move {
        let started = std::time::Instant::now();
        let mut response = next.call(req).await?;
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "served"
        );
        if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            response
                .headers_mut()
                .insert(HeaderName::from_static("x-request-id"), v);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Counts every response by route pattern (never the raw path, which holds tenant ids),
/// method and status, with its latency, in the service's metrics.
pub async fn metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    // Methods outside HTTP's usual set are one label, so no client can add series.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response.request().match_pattern();
        metrics.http_request(
            route.as_deref().unwrap_or("unmatched"),
            method,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    // Sign-up's form redirects to Microsoft, and CSP's form-action covers that redirect.
    let settings = req.app_data::<web::Data<AppState>>().map(|s| &s.settings);
    let authority = settings
        .map(|s| s.authority_host.origin().ascii_serialization())
        .unwrap_or_default();
    // Browsers reach us over https: they must never again try plain http, where a network
    // attacker could strip TLS (RFC 6797). A year, the usual figure; no `preload`, which is
    // a commitment for the whole domain that is its owner's to make.
    let https = settings.is_some_and(|s| s.public_url.scheme() == "https");
    let private = req.path().starts_with("/admin")
        || req.path().starts_with("/consent")
        || req.path().starts_with("/invite")
        || req.path().starts_with("/api");
    let mut response = next.call(req).await?;
    let headers = response.headers_mut();
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {authority}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    Ok(response)
}

/// Set on a request by a signed-in operator (by the `/admin` role check): its error pages
/// keep the admin navigation and lead back to the tenants, not to the customers' sign-up.
#[derive(Debug, Clone)]
pub struct AdminChrome {
    pub operator: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate {
    status: u16,
    title: &'static str,
    message: String,
    request_id: String,
    admin: Option<AdminChrome>,
}

/// Renders every 4xx/5xx response that is not a page of its own (actix's own 404s, 405s
/// and extractor errors included) through `error.html`.
pub async fn error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default();
    let response = next.call(req).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.response().extensions().get::<OwnPage>().is_some()
    {
        return Ok(response.map_into_left_body());
    }
    let page = response.response().extensions().get::<ErrorPage>().cloned();
    let message = match &page {
        Some(p) => p.message.clone(),
        None => default_message(status.as_u16()).to_owned(),
    };
    match page.as_ref().and_then(|p| p.cause.as_deref()) {
        Some(cause) => tracing::error!(%request_id, cause, "request failed"),
        // A documented 503 (busy database, every password check taken) tells the client
        // when to come back; it is load, not a failure of ours.
        None if status == actix_web::http::StatusCode::SERVICE_UNAVAILABLE
            && response.headers().contains_key(header::RETRY_AFTER) =>
        {
            tracing::warn!(%request_id, status = status.as_u16(), "request refused for now")
        }
        None if status.is_server_error() => {
            tracing::error!(%request_id, status = status.as_u16(), "request failed")
        }
        None => {}
    }
    let template = ErrorTemplate {
        status: status.as_u16(),
        title: title(status.as_u16()),
        message,
        request_id,
        admin: response
            .request()
            .extensions()
            .get::<AdminChrome>()
            .cloned(),
    };
    let body = template
        .render()
        .unwrap_or_else(|_| format!("Error {}", status.as_u16()));
    let (req, old) = response.into_parts();
    let mut new = HttpResponse::build(status);
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.append_header((name.clone(), value.clone()));
        }
    }
    let new = new.content_type("text/html; charset=utf-8").body(body);
    Ok(ServiceResponse::new(req, new).map_into_right_body())
}

fn title(status: u16) -> &'static str {
    match status {
        400 => "That request did not make sense",
        401 | 403 => "Not allowed",
        404 => "Not found",
        405 => "Not allowed here",
        413 => "Too large",
        429 => "Slow down",
        503 => "Busy",
        s if s >= 500 => "Something went wrong",
        _ => "That did not work",
    }
}

fn default_message(status: u16) -> &'static str {
    match status {
        404 => "There is nothing here.",
        405 => "This page does not take that kind of request.",
        413 => "What you sent is larger than this page accepts.",
        s if s >= 500 => "Something went wrong on our side.",
        _ => "The request could not be understood. Check the address or go back and try again.",
    }
}

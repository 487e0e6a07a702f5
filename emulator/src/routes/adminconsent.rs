//! `GET /{tenant}/adminconsent` (the consent page) and `POST /{tenant}/adminconsent` (what
//! the page's Accept and Cancel buttons send).
//!
//! As at Microsoft, a request whose client or redirect URI cannot be trusted ends on an error
//! page here and is never redirected (ENTRA.md §1); everything else goes back to the app.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use uuid::Uuid;

use super::{read_body, sts_param_error};
use crate::EmulatorState;
use crate::audit;
use crate::directory::{Directory, Tenant, TenantRef};
use crate::errors::{RequestIds, StsError};
use crate::params::{Params, encode_component};
use crate::permissions;
use crate::stats::{Endpoint, TenantKey};

/// Microsoft refuses long query strings (AADSTS90015); 8 KiB leaves room for any sane state.
const MAX_QUERY: usize = 8 * 1024;
/// The form carries the original query plus two short fields.
const MAX_FORM: usize = 3 * MAX_QUERY;
/// Above this many tenants the organisation picker becomes a text field.
const MAX_LISTED_TENANTS: usize = 200;

/// A consent request whose client and redirect URI were checked.
struct ConsentRequest {
    client_id: Uuid,
    redirect_uri: String,
    /// The exact bytes the app sent, returned the same (ENTRA.md §1).
    state: Option<Vec<u8>>,
}

/// Whose consent: a known tenant, or (for `organizations`/`common`) the admin's choice.
enum Audience<'a> {
    Tenant(&'a Tenant),
    AdminChooses,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    app_name: String,
    client_id: String,
    redirect_host: String,
    permissions: Vec<(String, String)>,
    tenant: Option<TenantChoice>,
    already_consented: bool,
    choices: Vec<TenantChoice>,
    action: String,
    request: String,
}

struct TenantChoice {
    id: String,
    display_name: String,
    domain: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    headline: String,
    request_id: String,
    correlation_id: String,
    timestamp: String,
}

pub async fn show(
    req: HttpRequest,
    segment: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let ids = RequestIds::new(&req, state.clock.now());
    let raw_query = req.query_string();
    let dir = state.directory();
    let tenant_key = dir.stats_key(&segment);
    let query = parse_query(raw_query);
    note_client(&req, &query, &tenant_key);
    state
        .stats
        .record(Endpoint::AdminConsent, Some(&tenant_key));
    let outcome = audience(&dir, &segment).and_then(|aud| {
        let request = consent_request(&dir, &query, &aud)?;
        Ok((aud, request))
    });
    let (aud, request) = match outcome {
        Ok(ok) => ok,
        Err(e) => return error_page(&e, &ids),
    };
    let Some(app) = dir.app(request.client_id) else {
        return error_page(
            &StsError::app_not_found(&request.client_id.to_string(), "the tenant"),
            &ids,
        );
    };
    let choice = |t: &Tenant| TenantChoice {
        id: t.id.to_string(),
        display_name: t.display_name.clone(),
        domain: t.initial_domain.clone(),
    };
    let (tenant, already_consented, choices) = match aud {
        Audience::Tenant(t) => (
            Some(choice(t)),
            t.consent(request.client_id).is_some(),
            Vec::new(),
        ),
        Audience::AdminChooses => {
            // Counted before anything is collected: above the limit the page lists none,
            // and this runs under the lock every token and Graph request takes.
            let listed = if dir.tenant_count() <= MAX_LISTED_TENANTS {
                dir.tenants().into_iter().map(choice).collect()
            } else {
                Vec::new()
            };
            (None, false, listed)
        }
    };
    let page = ConsentPage {
        app_name: app.display_name.clone(),
        client_id: app.client_id.to_string(),
        redirect_host: url::Url::parse(&request.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
        permissions: app
            .required_roles
            .iter()
            .map(|r| (r.clone(), permissions::describe(r)))
            .collect(),
        tenant,
        already_consented,
        choices,
        action: format!("/{}/adminconsent", segment.to_ascii_lowercase()),
        request: raw_query.to_owned(),
    };
    html(actix_web::http::StatusCode::OK, page.render())
}

pub async fn decide(
    req: HttpRequest,
    segment: web::Path<String>,
    body: web::Payload,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let now = state.clock.now();
    let ids = RequestIds::new(&req, now);
    let form = match read_body(body, MAX_FORM)
        .await
        .and_then(|b| Params::parse(&b, MAX_FORM))
    {
        Ok(form) => form,
        Err(e) => return error_page(&sts_param_error(e), &ids),
    };
    let mut dir = state.directory_mut();
    let tenant_key = dir.stats_key(&segment);
    // The original request the form carries, parsed once for the audit and the checks.
    let original = form
        .text("request")
        .map_err(sts_param_error)
        .and_then(|raw| parse_query(raw.unwrap_or_default()));
    note_client(&req, &original, &tenant_key);
    state
        .stats
        .record(Endpoint::AdminConsentDecision, Some(&tenant_key));
    let decided = decision(&dir, &segment, &form, &original);
    let (request, choice) = match decided {
        Ok(ok) => ok,
        Err(e) => return error_page(&e, &ids),
    };
    let location = match choice {
        Decision::Cancel => {
            let declined = StsError::declined();
            let mut params = vec![
                ("error", b"access_denied".to_vec()),
                ("error_description", declined.description(&ids).into_bytes()),
                (
                    "error_uri",
                    format!("{}/error?code={}", super::base_url(&req), declined.code).into_bytes(),
                ),
                ("admin_consent", b"True".to_vec()),
            ];
            params.extend(request.state.map(|s| ("state", s)));
            redirect_to(&request.redirect_uri, &params)
        }
        Decision::Accept(tenant_id) => {
            if let Err(e) = dir.grant_consent(tenant_id, request.client_id, now) {
                return error_page(&StsError::tenant_not_found(&e.to_string()), &ids);
            }
            let mut params = vec![
                ("admin_consent", b"True".to_vec()),
                ("tenant", tenant_id.to_string().into_bytes()),
            ];
            params.extend(request.state.map(|s| ("state", s)));
            redirect_to(&request.redirect_uri, &params)
        }
    };
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

enum Decision {
    Accept(Uuid),
    Cancel,
}

/// Re-checks the original request carried by the form, then reads the admin's choice.
fn decision(
    dir: &Directory,
    segment: &str,
    form: &Params,
    query: &Result<Params, StsError>,
) -> Result<(ConsentRequest, Decision), StsError> {
    let text = |name: &str| form.text(name).map_err(sts_param_error);
    let aud = audience(dir, segment)?;
    let request = consent_request(dir, query, &aud)?;
    match text("decision")? {
        Some("cancel") => Ok((request, Decision::Cancel)),
        Some("accept") => {
            let tenant = match aud {
                Audience::Tenant(t) => t,
                Audience::AdminChooses => {
                    let chosen =
                        text("tenant")?.ok_or_else(|| StsError::missing_parameter("tenant"))?;
                    TenantRef::parse(chosen)
                        .and_then(|r| dir.resolve(&r))
                        .ok_or_else(|| StsError::tenant_not_found(chosen))?
                }
            };
            Ok((request, Decision::Accept(tenant.id)))
        }
        Some(other) => Err(StsError::malformed(&format!("Unknown decision '{other}'."))),
        None => Err(StsError::missing_parameter("decision")),
    }
}

/// Whose administrator is consenting, from the `{tenant}` path segment.
fn audience<'a>(dir: &'a Directory, segment: &str) -> Result<Audience<'a>, StsError> {
    match TenantRef::parse(segment) {
        None => Err(StsError::invalid_tenant(segment)),
        Some(TenantRef::Organizations | TenantRef::Common) => Ok(Audience::AdminChooses),
        Some(TenantRef::Consumers) => Err(StsError::consumers_cannot_consent()),
        Some(r) => dir
            .resolve(&r)
            .map(Audience::Tenant)
            .ok_or_else(|| StsError::tenant_not_found(segment)),
    }
}

/// A consent request's query string, parsed once: for the audit, then for the checks.
fn parse_query(raw_query: &str) -> Result<Params, StsError> {
    Params::parse(raw_query.as_bytes(), MAX_QUERY).map_err(|e| match e {
        crate::params::ParamError::TooLong { .. } => StsError::query_too_long(),
        other => sts_param_error(other),
    })
}

/// Checks `client_id` and `redirect_uri` the way Microsoft does before showing anything
/// (after the tenant: a query error is reported only for a tenant that exists).
fn consent_request(
    dir: &Directory,
    query: &Result<Params, StsError>,
    aud: &Audience<'_>,
) -> Result<ConsentRequest, StsError> {
    let params = query.as_ref().map_err(Clone::clone)?;
    let text = |name: &str| params.text(name).map_err(sts_param_error);
    let client_id = text("client_id")?.ok_or_else(|| StsError::missing_parameter("client_id"))?;
    let client = Uuid::try_parse(client_id).map_err(|_| StsError::invalid_client_id(client_id))?;
    let directory_name = match aud {
        Audience::Tenant(t) => t.display_name.as_str(),
        Audience::AdminChooses => "the tenant",
    };
    let app = dir
        .app(client)
        .ok_or_else(|| StsError::app_not_found(client_id, directory_name))?;
    let redirect_uri =
        text("redirect_uri")?.ok_or_else(|| StsError::missing_parameter("redirect_uri"))?;
    if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(StsError::redirect_uri_mismatch(redirect_uri, client_id));
    }
    let state = params
        .bytes("state")
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec);
    Ok(ConsentRequest {
        client_id: client,
        redirect_uri: redirect_uri.to_owned(),
        state,
    })
}

/// `redirect_uri` with `params` appended to whatever query it already has.
fn redirect_to(redirect_uri: &str, params: &[(&str, Vec<u8>)]) -> String {
    let mut out = redirect_uri.to_owned();
    let mut sep = if redirect_uri.contains('?') { '&' } else { '?' };
    for (name, value) in params {
        out.push(sep);
        out.push_str(name);
        out.push('=');
        out.push_str(&encode_component(value));
        sep = '&';
    }
    out
}

/// `GET /error?code=N`: where every error's `error_uri` points.
pub async fn error_code(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    let ids = RequestIds::new(&req, state.clock.now());
    let code = Params::parse(req.query_string().as_bytes(), MAX_QUERY)
        .ok()
        .and_then(|p| {
            p.text("code")
                .ok()
                .flatten()
                .and_then(|c| c.parse::<u32>().ok())
        });
    let headline = match code {
        Some(code) => format!(
            "AADSTS{code}: the error_description of the response that linked here says what happened. This emulator keeps no further documentation of its codes; see the README's table."
        ),
        None => "No error code was given.".to_owned(),
    };
    let page = ErrorPage {
        headline,
        request_id: ids.trace_id.to_string(),
        correlation_id: ids.correlation_id.to_string(),
        timestamp: crate::clock::rfc3339_seconds(ids.at),
    };
    html(actix_web::http::StatusCode::OK, page.render())
}

fn error_page(e: &StsError, ids: &RequestIds) -> HttpResponse {
    let page = ErrorPage {
        headline: e.headline(),
        request_id: ids.trace_id.to_string(),
        correlation_id: ids.correlation_id.to_string(),
        timestamp: crate::clock::rfc3339_seconds(ids.at),
    };
    let mut response = html(actix_web::http::StatusCode::BAD_REQUEST, page.render());
    response.extensions_mut().insert(e.refusal());
    response
}

/// Notes the `client_id` of a consent request's query, and its tenant, for the audit.
fn note_client(req: &HttpRequest, query: &Result<Params, StsError>, tenant: &TenantKey) {
    let client_id = query
        .as_ref()
        .ok()
        .and_then(|p| p.text("client_id").ok().flatten());
    audit::note(req, client_id, Some(tenant.as_str()));
}

fn html(status: actix_web::http::StatusCode, rendered: askama::Result<String>) -> HttpResponse {
    match rendered {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "rendering an emulator page failed");
            HttpResponse::InternalServerError().body("the emulator could not render this page")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_append_to_existing_queries_and_encode_state() {
        assert_eq!(
            redirect_to("https://a.example/cb", &[("state", b"a b&c=d".to_vec())]),
            "https://a.example/cb?state=a%20b%26c%3Dd"
        );
        assert_eq!(
            redirect_to(
                "https://a.example/cb?x=1",
                &[("admin_consent", b"True".to_vec())]
            ),
            "https://a.example/cb?x=1&admin_consent=True"
        );
    }
}

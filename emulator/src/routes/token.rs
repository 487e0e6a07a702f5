//! `POST /{tenant}/oauth2/v2.0/token` and `POST /{tenant}/oauth2/token` (v1): the
//! client-credentials grant (RFC 6749 §4.4) as Microsoft implements it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{base_url, form_params, read_body, sts_param_error};
use crate::EmulatorState;
use crate::assertion::{self, Expected};
use crate::audit::{self, Refusal};
use crate::claims::{AccessTokenClaims, ClientAuthentication, GRAPH_APP_ID};
use crate::directory::{AppRegistration, Directory, TenantRef};
use crate::errors::{RequestIds, StsError};
use crate::faults::{FaultTarget, Injected, ThrottleBody};
use crate::hostile::ClientKey;
use crate::params::Params;
use crate::signing::TokenKind;
use crate::stats::Endpoint;

/// Bodies are a handful of short fields; a client assertion with its `x5c` chain is the
/// largest legitimate one at a few kilobytes.
const MAX_BODY: usize = 64 * 1024;

/// The assertion type RFC 7523 §2.2 defines for `private_key_jwt`.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Which endpoint: v2 takes `scope` and answers numbers; v1 takes `resource` and answers
/// numbers as strings (seed 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

pub async fn v2(
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Payload,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    token(req, tenant.into_inner(), body, state, Version::V2).await
}

pub async fn v1(
    req: HttpRequest,
    tenant: web::Path<String>,
    body: web::Payload,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    token(req, tenant.into_inner(), body, state, Version::V1).await
}

/// A browser's CORS pre-flight: the endpoint takes POST and OPTIONS, as its error says.
pub async fn preflight() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Allow", "POST, OPTIONS"))
        .finish()
}

/// Microsoft answers a GET (or any non-POST) on the token endpoint with a JSON 400.
pub async fn wrong_method(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    let ids = RequestIds::new(&req, state.clock.now());
    StsError::method_not_allowed(req.method().as_str()).to_json_response(&ids, &base_url(&req))
}

async fn token(
    req: HttpRequest,
    segment: String,
    body: web::Payload,
    state: web::Data<EmulatorState>,
    version: Version,
) -> HttpResponse {
    let now = state.clock.now();
    let ids = RequestIds::new(&req, now);
    let params = match read_body(body, MAX_BODY).await {
        Ok(bytes) => form_params(&req, &bytes, MAX_BODY),
        Err(e) => Err(sts_param_error(e)),
    };
    let client_id = params
        .as_ref()
        .ok()
        .and_then(|p| p.text("client_id").ok().flatten());
    let endpoint = match version {
        Version::V1 => Endpoint::TokenV1,
        Version::V2 => Endpoint::TokenV2,
    };
    let (tenant_key, decision, outcome) = {
        let dir = state.directory();
        let tenant_key = dir.stats_key(&segment);
        audit::note(&req, client_id, Some(tenant_key.as_str()));
        // A hostile throttle answers first, then an injected fault, before any check, as a
        // front door's throttling would.
        let client = || ClientKey::new(FaultTarget::Token, client_id.unwrap_or_default(), &segment);
        if let Some(verdict) = state.throttle.check(FaultTarget::Token, client, now) {
            drop(dir);
            state.stats.record(endpoint, Some(&tenant_key));
            state
                .stats
                .record_fault(endpoint, Some(&tenant_key), verdict.into());
            let error = StsError::transient(
                StatusCode::TOO_MANY_REQUESTS,
                Some(verdict.retry_after_secs()),
            );
            let mut response = error.to_json_response(&ids, &base_url(&req));
            response.extensions_mut().insert(Refusal::new(
                Some(format!("AADSTS{}", error.code)),
                &verdict.reason(),
            ));
            return response;
        }
        let decision = state
            .faults
            .decide(FaultTarget::Token, || dir.tenant_id(&segment));
        let outcome = match decision.and_then(|d| d.fault) {
            Some(fault) => Err(fault_error(fault)),
            None => params.and_then(|p| issue(&state, &dir, &req, &segment, &p, version, now)),
        };
        (tenant_key, decision, outcome)
    };
    state.stats.record(endpoint, Some(&tenant_key));
    if let Some(decision) = decision {
        if let Some(fault) = decision.fault {
            state
                .stats
                .record_fault(endpoint, Some(&tenant_key), fault.kind());
        }
        // An async sleep: the worker serves other requests meanwhile.
        if !decision.delay.is_zero() {
            tokio::time::sleep(decision.delay).await;
        }
    }
    if let Some(Injected::Throttled {
        retry_after_secs,
        body: ThrottleBody::Text,
    }) = decision.and_then(|d| d.fault)
    {
        return HttpResponse::TooManyRequests()
            .content_type("text/plain")
            .insert_header(("Retry-After", retry_after_secs.to_string()))
            .body("Too Many Requests");
    }
    match outcome {
        Ok(mut body) => {
            if let Some(claimed) = decision.and_then(|d| d.expires_in) {
                claim_expires_in(&mut body, claimed, version);
            }
            HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store, no-cache"))
                .insert_header(("Pragma", "no-cache"))
                .insert_header(("x-ms-request-id", ids.trace_id.to_string()))
                .json(body)
        }
        Err(e) => e.to_json_response(&ids, &base_url(&req)),
    }
}

/// The injected `expires_in`: only the two lifetimes the answer states change. The token's
/// own `exp` (and `refresh_in`, and v1's `expires_on`) keep the real lifetime, so nothing
/// in the emulator computes a time from a number that may be absurd.
fn claim_expires_in(body: &mut serde_json::Value, claimed: u64, version: Version) {
    let value = match version {
        Version::V2 => serde_json::json!(claimed),
        Version::V1 => serde_json::json!(claimed.to_string()),
    };
    body["expires_in"] = value.clone();
    body["ext_expires_in"] = value;
}

/// The identity platform's answer to an injected fault (see [`StsError::transient`]).
fn fault_error(fault: Injected) -> StsError {
    match fault {
        Injected::Throttled {
            retry_after_secs, ..
        } => StsError::transient(StatusCode::TOO_MANY_REQUESTS, Some(retry_after_secs)),
        Injected::Failed {
            status,
            retry_after_secs,
        } => StsError::transient(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            retry_after_secs,
        ),
        // Decided for Graph only; a token endpoint that got one would fail safe.
        Injected::Unauthorized => StsError::transient(StatusCode::SERVICE_UNAVAILABLE, None),
    }
}

/// The checks, in the order Microsoft applies them: tenant, grant, client, service
/// principal (consent), credential, then the requested resource.
fn issue(
    state: &EmulatorState,
    dir: &Directory,
    req: &HttpRequest,
    segment: &str,
    params: &Params,
    version: Version,
    now: OffsetDateTime,
) -> Result<serde_json::Value, StsError> {
    // The grants of a signed-in person have their own module; they are v2 only, as the
    // emulator has no v1 authorize endpoint.
    if version == Version::V2
        && matches!(
            params.text("grant_type"),
            Ok(Some("authorization_code" | "refresh_token"))
        )
    {
        return super::code_grant::issue(state, dir, req, segment, params, now);
    }
    let text = |name: &str| params.text(name).map_err(sts_param_error);
    let tenant = match TenantRef::parse(segment) {
        None => return Err(StsError::invalid_tenant(segment)),
        Some(TenantRef::Organizations | TenantRef::Common | TenantRef::Consumers) => {
            return Err(StsError::no_tenant_information());
        }
        Some(r) => dir
            .resolve(&r)
            .ok_or_else(|| StsError::tenant_not_found(segment))?,
    };

    let grant_type =
        text("grant_type")?.ok_or_else(|| StsError::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(StsError::unsupported_grant_type(grant_type));
    }
    let client_id = text("client_id")?.ok_or_else(|| StsError::missing_parameter("client_id"))?;
    let client_uuid =
        Uuid::try_parse(client_id).map_err(|_| StsError::invalid_client_id(client_id))?;
    let app = dir
        .app(client_uuid)
        .ok_or_else(|| StsError::app_not_found(client_id, &tenant.display_name))?;
    let sp = tenant
        .consent(client_uuid)
        .ok_or_else(|| StsError::app_not_found(client_id, &tenant.display_name))?;

    let base = base_url(req);
    let is_token_endpoint = |aud: &str| {
        is_token_endpoint_of(aud, &base, &|named| dir.tenant_id(named) == Some(tenant.id))
    };
    let authentication = authenticate(app, params, client_id, &is_token_endpoint, now)?;

    let (audience, resource) = match version {
        Version::V2 => {
            let scope = text("scope")?.ok_or_else(|| StsError::missing_parameter("scope"))?;
            (
                graph_audience_from_scope(scope, &tenant.display_name)?,
                None,
            )
        }
        Version::V1 => {
            let resource =
                text("resource")?.ok_or_else(|| StsError::missing_parameter("resource"))?;
            (
                graph_audience(resource)
                    .ok_or_else(|| StsError::resource_not_found(resource, &tenant.display_name))?,
                Some(resource),
            )
        }
    };

    let lifetime = state.token_lifetime_secs;
    let claims = AccessTokenClaims::new(app, tenant, sp, audience, authentication, now, lifetime);
    let access_token = state
        .signer
        .sign(TokenKind::AppAccessToken, &claims)
        .map_err(|_| StsError::malformed("The token could not be signed."))?;
    Ok(match version {
        Version::V2 => {
            let mut body = serde_json::json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access_token,
            });
            // Microsoft adds refresh_in to long-lived tokens: half the lifetime (ENTRA.md §3).
            if lifetime >= 7200 {
                body["refresh_in"] = serde_json::json!(lifetime / 2);
            }
            body
        }
        Version::V1 => serde_json::json!({
            "token_type": "Bearer",
            "expires_in": lifetime.to_string(),
            "ext_expires_in": lifetime.to_string(),
            "expires_on": claims.exp.to_string(),
            "not_before": claims.nbf.to_string(),
            "resource": resource.unwrap_or(audience),
            "access_token": access_token,
        }),
    })
}

/// Authenticates the client by its secret or its assertion (RFC 7523 §2.2), whichever it
/// sent; `is_token_endpoint` says whether an assertion's `aud` names this endpoint.
pub(super) fn authenticate(
    app: &AppRegistration,
    params: &Params,
    client_id: &str,
    is_token_endpoint: &dyn Fn(&str) -> bool,
    now: OffsetDateTime,
) -> Result<ClientAuthentication, StsError> {
    let text = |name: &str| params.text(name).map_err(sts_param_error);
    match (text("client_secret")?, text("client_assertion")?) {
        (None, None) => Err(StsError::no_credential()),
        (Some(_), Some(_)) => Err(StsError::malformed(
            "Only one of 'client_secret' and 'client_assertion' may be sent.",
        )),
        (Some(secret), None) => {
            if !app.accepts_secret(secret) {
                return Err(StsError::invalid_secret(client_id));
            }
            Ok(ClientAuthentication::Secret)
        }
        (None, Some(jwt)) => {
            if text("client_assertion_type")? != Some(JWT_BEARER) {
                return Err(StsError::missing_parameter("client_assertion_type"));
            }
            let expected = Expected {
                client_id,
                now,
                is_token_endpoint,
            };
            assertion::verify(jwt, app, &expected)
                .map_err(|e| StsError::client_assertion(&e, client_id))?;
            Ok(ClientAuthentication::Assertion)
        }
    }
}

/// Microsoft's authority hosts (public, US Government, China: ENTRA.md, Hosts), which
/// assertions may name whatever host they call.
const MICROSOFT_AUTHORITIES: &[&str] = &[
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
];

/// Whether a client assertion's `aud` is a token endpoint (v2 or v1) whose tenant segment
/// `accepts` takes: on the host the client called (`base`, `scheme://host[:port]`) or on
/// one of Microsoft's authority hosts.
pub(super) fn is_token_endpoint_of(aud: &str, base: &str, accepts: &dyn Fn(&str) -> bool) -> bool {
    let Ok(url) = url::Url::parse(aud) else {
        return false;
    };
    if url.query().is_some() || url.fragment().is_some() {
        return false;
    }
    let Some(host) = url.host_str() else {
        return false;
    };
    let authority = match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let microsoft =
        url.scheme() == "https" && MICROSOFT_AUTHORITIES.contains(&host) && url.port().is_none();
    if !microsoft && !authority.eq_ignore_ascii_case(base) {
        return false;
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    match segments.as_slice() {
        [named, "oauth2", "v2.0", "token"] | [named, "oauth2", "token"] => accepts(named),
        _ => false,
    }
}

/// The token audience for a Graph resource identifier, `None` for any other resource.
fn graph_audience(resource: &str) -> Option<&'static str> {
    match resource.trim_end_matches('/').to_ascii_lowercase().as_str() {
        "https://graph.microsoft.com" => Some("https://graph.microsoft.com"),
        "https://graph.microsoft.us" => Some("https://graph.microsoft.us"),
        "https://dod-graph.microsoft.us" => Some("https://dod-graph.microsoft.us"),
        "https://microsoftgraph.chinacloudapi.cn" => {
            Some("https://microsoftgraph.chinacloudapi.cn")
        }
        GRAPH_APP_ID => Some(GRAPH_APP_ID),
        _ => None,
    }
}

/// Client credentials take exactly one `{resource}/.default` scope (plus OpenID scopes,
/// which the grant ignores).
fn graph_audience_from_scope(scope: &str, directory: &str) -> Result<&'static str, StsError> {
    const IGNORED: &[&str] = &["openid", "profile", "email", "offline_access"];
    let scopes: Vec<&str> = scope
        .split(' ')
        .filter(|s| !s.is_empty() && !IGNORED.contains(s))
        .collect();
    let [only] = scopes.as_slice() else {
        return Err(
            if scopes.len() > 1 && scopes.iter().all(|s| s.ends_with("/.default")) {
                StsError::several_resources(scope)
            } else {
                StsError::invalid_scope(scope)
            },
        );
    };
    let resource = only
        .strip_suffix("/.default")
        .ok_or_else(|| StsError::invalid_scope(only))?;
    graph_audience(resource).ok_or_else(|| {
        if resource.contains("://") || Uuid::try_parse(resource).is_ok() {
            StsError::resource_not_found(resource, directory)
        } else {
            StsError::invalid_scope(only)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::GRAPH_AUDIENCES;

    #[test]
    fn scopes_name_exactly_one_default_resource() {
        assert_eq!(
            graph_audience_from_scope("https://graph.microsoft.com/.default", "d"),
            Ok("https://graph.microsoft.com")
        );
        assert_eq!(
            graph_audience_from_scope("https://graph.microsoft.com//.default", "d"),
            Ok("https://graph.microsoft.com")
        );
        assert_eq!(
            graph_audience_from_scope("openid https://graph.microsoft.com/.default profile", "d"),
            Ok("https://graph.microsoft.com")
        );
        assert_eq!(
            graph_audience_from_scope(&format!("{GRAPH_APP_ID}/.default"), "d"),
            Ok(GRAPH_APP_ID)
        );
        for cloud in GRAPH_AUDIENCES {
            assert_eq!(
                graph_audience_from_scope(&format!("{cloud}/.default"), "d"),
                Ok(*cloud)
            );
        }
        assert_eq!(
            graph_audience_from_scope("User.Read", "d")
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(
            graph_audience_from_scope("https://graph.microsoft.com/User.Read.All", "d")
                .unwrap_err()
                .code,
            70011
        );
        assert_eq!(
            graph_audience_from_scope("https://example.com/.default", "d")
                .unwrap_err()
                .code,
            500011
        );
        assert_eq!(
            graph_audience_from_scope(
                "https://graph.microsoft.com/.default https://management.azure.com/.default",
                "d"
            )
            .unwrap_err()
            .code,
            700022
        );
        assert_eq!(
            graph_audience_from_scope("   ", "d").unwrap_err().code,
            70011
        );
    }
}

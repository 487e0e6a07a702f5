//! OpenID Connect discovery (v2 and v1) and the JWKS, which MSAL reads before any token
//! request (ENTRA.md §6).

use actix_web::{HttpRequest, HttpResponse, web};

use super::base_url;
use crate::EmulatorState;
use crate::audit;
use crate::directory::TenantRef;
use crate::errors::{RequestIds, StsError};
use crate::stats::{Endpoint, TenantKey};

/// How a discovery document names the tenant: its GUID when the segment names a tenant,
/// the alias itself for `organizations`/`common`/`consumers`.
struct DiscoveryTenant {
    /// The segment endpoints are built with.
    segment: String,
    /// The GUID for the issuer, or Microsoft's literal `{tenantid}` placeholder.
    issuer_tenant: String,
    region: Option<&'static str>,
}

fn discovery_tenant(
    req: &HttpRequest,
    state: &EmulatorState,
    segment: &str,
    endpoint: Endpoint,
) -> Result<DiscoveryTenant, StsError> {
    let dir = state.directory();
    let outcome = match TenantRef::parse(segment) {
        None => Err(StsError::invalid_tenant(segment)),
        Some(TenantRef::Organizations) => Ok(alias("organizations")),
        Some(TenantRef::Common) => Ok(alias("common")),
        Some(TenantRef::Consumers) => Ok(alias("consumers")),
        Some(r) => dir
            .resolve(&r)
            .map(|t| DiscoveryTenant {
                segment: t.id.to_string(),
                issuer_tenant: t.id.to_string(),
                region: Some("WW"),
            })
            .ok_or_else(|| StsError::tenant_not_found(segment)),
    };
    let key = match &outcome {
        Ok(t) => TenantKey::Known(t.segment.clone()),
        Err(_) => TenantKey::Unknown(segment.to_ascii_lowercase()),
    };
    state.stats.record(endpoint, Some(&key));
    audit::note(req, None, Some(key.as_str()));
    outcome
}

fn alias(name: &str) -> DiscoveryTenant {
    DiscoveryTenant {
        segment: name.to_owned(),
        issuer_tenant: "{tenantid}".to_owned(),
        region: None,
    }
}

fn discovery_error(req: &HttpRequest, state: &EmulatorState, e: StsError) -> HttpResponse {
    let ids = RequestIds::new(req, state.clock.now());
    e.on_discovery().to_json_response(&ids, &base_url(req))
}

pub async fn v2(
    req: HttpRequest,
    segment: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let t = match discovery_tenant(&req, &state, &segment, Endpoint::Discovery) {
        Ok(t) => t,
        Err(e) => return discovery_error(&req, &state, e),
    };
    let base = base_url(&req);
    let s = &t.segment;
    HttpResponse::Ok().json(serde_json::json!({
        "token_endpoint": format!("{base}/{s}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{s}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        // Microsoft's document omits it, though its authorize endpoint takes both methods.
        "code_challenge_methods_supported": ["S256", "plain"],
        "issuer": format!("{base}/{}/v2.0", t.issuer_tenant),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{s}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{s}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{s}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email", "oid", "roles"],
        "kerberos_endpoint": format!("{base}/{s}/kerberos"),
        "tenant_region_scope": t.region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

pub async fn v1(
    req: HttpRequest,
    segment: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let t = match discovery_tenant(&req, &state, &segment, Endpoint::Discovery) {
        Ok(t) => t,
        Err(e) => return discovery_error(&req, &state, e),
    };
    let base = base_url(&req);
    let s = &t.segment;
    HttpResponse::Ok().json(serde_json::json!({
        "token_endpoint": format!("{base}/{s}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/common/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": format!("https://sts.windows.net/{}/", t.issuer_tenant),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/{s}/oauth2/authorize"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{s}/oauth2/logout"),
        "tenant_region_scope": t.region,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }))
}

pub async fn keys(
    req: HttpRequest,
    segment: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let t = match discovery_tenant(&req, &state, &segment, Endpoint::Keys) {
        Ok(t) => t,
        Err(e) => return discovery_error(&req, &state, e),
    };
    let issuer = format!("{}/{}/v2.0", base_url(&req), t.issuer_tenant);
    HttpResponse::Ok().json(state.signer.jwks(&issuer, state.clock.now()))
}

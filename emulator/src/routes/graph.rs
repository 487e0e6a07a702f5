//! Microsoft Graph v1.0: `GET /organization`, `GET /users` (with `$top`, `$select`,
//! `$count` and `@odata.nextLink` paging) and `GET /users/$count`, authorised by the
//! emulator's own tokens (ENTRA.md §7).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::base_url;
use crate::EmulatorState;
use crate::audit::{self, Refusal};
use crate::claims::{AccessTokenClaims, GRAPH_AUDIENCES};
use crate::clock::rfc3339_seconds;
use crate::directory::Tenant;
use crate::errors::GraphError;
use crate::faults::{FaultTarget, Injected};
use crate::hostile::ClientKey;
use crate::params::{ParamError, Params, encode_component};
use crate::permissions::{READ_ORGANIZATION, READ_USERS};
use crate::seed::{self, User};
use crate::signing::TokenRejection;
use crate::stats::{Endpoint, TenantKey};

/// Microsoft.IdentityModel's default clock skew, which Graph's token validation applies.
const CLOCK_SKEW_SECS: i64 = 300;
/// Graph's default page size for users, and its maximum `$top`.
const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 999;
const MAX_QUERY: usize = 8 * 1024;

/// The properties `GET /users` returns without `$select`, in Graph's order.
const USER_DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
/// Further user properties `$select` can ask for.
const USER_EXTRA: &[&str] = &["accountEnabled", "userType", "usageLocation", "companyName"];

const ODATA_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/organization")
            .route(web::get().to(organization))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/users")
            .route(web::get().to(users))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/users/$count")
            .route(web::get().to(users_count))
            .default_service(web::to(method_not_allowed)),
    )
    .default_service(web::to(unknown_segment));
}

async fn organization(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    respond(
        &req,
        &state,
        Endpoint::GraphOrganization,
        |claims, tenant| {
            let query = GraphQuery::parse(req.query_string(), &org_properties(), "organization")?;
            if !claims.has_any_role(READ_ORGANIZATION) {
                return Err(GraphError::insufficient_privileges());
            }
            let org = select(organization_json(tenant), &query.select);
            Ok(json_ok(json!({
                "@odata.context": context(&req, "organization", &query.select),
                "value": [org],
            })))
        },
    )
    .await
}

async fn users(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    respond(&req, &state, Endpoint::GraphUsers, |claims, tenant| {
        let all: Vec<&str> = USER_DEFAULT.iter().chain(USER_EXTRA).copied().collect();
        let query = GraphQuery::parse(req.query_string(), &all, "user")?;
        if !claims.has_any_role(READ_USERS) {
            return Err(GraphError::insufficient_privileges());
        }
        if query.count && !eventual_consistency(&req) {
            return Err(GraphError::bad_request(
                "$count requires the ConsistencyLevel: eventual header (an advanced query).",
            ));
        }
        let offset = match &query.skiptoken {
            Some(token) => decode_skiptoken(token, tenant)?,
            None => 0,
        };
        let top = query.top.unwrap_or(DEFAULT_PAGE);
        let end = offset.saturating_add(top).min(tenant.user_count);
        let properties: &[&str] = if query.select.is_empty() {
            USER_DEFAULT
        } else {
            &query.select
        };
        let value: Vec<Value> = (offset..end)
            .map(|i| user_json(&seed::user(tenant, i), tenant, properties))
            .collect();

        let mut body = Map::new();
        body.insert(
            "@odata.context".into(),
            context(&req, "users", &query.select).into(),
        );
        if query.count && offset == 0 {
            body.insert("@odata.count".into(), tenant.user_count.into());
        }
        if end < tenant.user_count {
            body.insert(
                "@odata.nextLink".into(),
                next_link(&req, &query, &encode_skiptoken(tenant, end)).into(),
            );
        }
        body.insert("value".into(), value.into());
        Ok(json_ok(Value::Object(body)))
    })
    .await
}

async fn users_count(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    respond(&req, &state, Endpoint::GraphUsersCount, |claims, tenant| {
        if !claims.has_any_role(READ_USERS) {
            return Err(GraphError::insufficient_privileges());
        }
        if !eventual_consistency(&req) {
            return Err(GraphError::bad_request(
                "$count requires the ConsistencyLevel: eventual header (an advanced query).",
            ));
        }
        Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(tenant.user_count.to_string()))
    })
    .await
}

async fn method_not_allowed(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    GraphError::method_not_allowed().to_response(&req, Uuid::new_v4(), state.clock.now())
}

async fn unknown_segment(req: HttpRequest, state: web::Data<EmulatorState>) -> HttpResponse {
    // The first segment Graph cannot resolve: past the entity sets the emulator knows.
    let segment = req
        .path()
        .trim_start_matches("/v1.0/")
        .split('/')
        .find(|s| !matches!(*s, "users" | "organization"))
        .unwrap_or_default()
        .to_owned();
    GraphError::no_such_segment(&segment).to_response(&req, Uuid::new_v4(), state.clock.now())
}

/// Authenticates the caller, finds its tenant, applies any injected fault, runs `handler`,
/// counts the request and answers in Graph's shapes.
async fn respond(
    req: &HttpRequest,
    state: &EmulatorState,
    endpoint: Endpoint,
    handler: impl FnOnce(&AccessTokenClaims, &Tenant) -> Result<HttpResponse, GraphError>,
) -> HttpResponse {
    let now = state.clock.now();
    let request_id = Uuid::new_v4();
    let claims = authenticate(req, state, now);
    // Each request is counted once: without a tenant when the token is refused, else
    // under the token's tenant (even one deleted since, which then answers 401).
    let tid = claims.as_ref().ok().map(|c| c.tid.as_str());
    // Only the emulator's own signed tokens get here, so `tid` is one of its tenants.
    let key = tid.map(|t| TenantKey::Known(t.to_owned()));
    state.stats.record(endpoint, key.as_ref());
    let appid = claims.as_ref().ok().map(|c| c.appid.as_str());
    audit::note(req, appid, tid);
    // The hostile throttle watches authenticated clients, by app and tenant.
    let verdict = appid.zip(tid).and_then(|(appid, tid)| {
        let client = || ClientKey::new(FaultTarget::Graph, appid, tid);
        state.throttle.check(FaultTarget::Graph, client, now)
    });
    if let Some(verdict) = verdict {
        state
            .stats
            .record_fault(endpoint, key.as_ref(), verdict.into());
        let mut response =
            GraphError::throttled(verdict.retry_after_secs()).to_response(req, request_id, now);
        response.extensions_mut().insert(Refusal::new(
            Some("TooManyRequests".to_owned()),
            &verdict.reason(),
        ));
        return response;
    }
    // Faults are scoped by the token's tenant, so an unauthenticated request sees only the
    // global ones.
    let decision = state.faults.decide(FaultTarget::Graph, || {
        tid.and_then(|t| Uuid::try_parse(t).ok())
    });
    let outcome = match (decision.and_then(|d| d.fault), &claims) {
        (Some(fault), _) => {
            state
                .stats
                .record_fault(endpoint, key.as_ref(), fault.kind());
            Err(fault_error(fault))
        }
        (None, Err(e)) => Err(e.clone()),
        (None, Ok(claims)) => {
            let dir = state.directory();
            Uuid::try_parse(&claims.tid)
                .ok()
                .and_then(|id| dir.tenant(id))
                .ok_or_else(GraphError::unknown_tenant)
                .and_then(|tenant| handler(claims, tenant))
        }
    };
    if let Some(delay) = decision.map(|d| d.delay).filter(|d| !d.is_zero()) {
        // An async sleep: the worker serves other requests meanwhile.
        tokio::time::sleep(delay).await;
    }
    match outcome {
        Ok(mut response) => {
            let headers = response.headers_mut();
            if let Ok(v) = header::HeaderValue::from_str(&request_id.to_string()) {
                headers.insert(header::HeaderName::from_static("request-id"), v.clone());
                let client = req.headers().get("client-request-id").cloned().unwrap_or(v);
                headers.insert(header::HeaderName::from_static("client-request-id"), client);
            }
            headers.insert(
                header::HeaderName::from_static("odata-version"),
                header::HeaderValue::from_static("4.0"),
            );
            response
        }
        Err(e) => e.to_response(req, request_id, now),
    }
}

/// Graph's answer to an injected fault: 429 `TooManyRequests`, or a 5xx.
fn fault_error(fault: Injected) -> GraphError {
    match fault {
        Injected::Throttled {
            retry_after_secs, ..
        } => GraphError::throttled(retry_after_secs),
        Injected::Unauthorized => GraphError::no_longer_accepted(),
        Injected::Failed {
            status,
            retry_after_secs,
        } => GraphError::unavailable(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            retry_after_secs,
        ),
    }
}

/// Validates the bearer token as Graph does: signature, lifetime (with skew) and audience.
fn authenticate(
    req: &HttpRequest,
    state: &EmulatorState,
    now: OffsetDateTime,
) -> Result<AccessTokenClaims, GraphError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(GraphError::empty_token());
    };
    let value = value.to_str().map_err(|_| GraphError::malformed_token())?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        None if value.eq_ignore_ascii_case("bearer") => "",
        _ => return Err(GraphError::malformed_token()),
    };
    if token.is_empty() {
        return Err(GraphError::empty_token());
    }
    let claims: AccessTokenClaims = state.signer.verify(token).map_err(|e| match e {
        TokenRejection::Malformed => GraphError::malformed_token(),
        TokenRejection::BadSignature => GraphError::bad_signature(),
    })?;
    let t = now.unix_timestamp();
    if t > claims.exp + CLOCK_SKEW_SECS {
        return Err(GraphError::expired());
    }
    if t + CLOCK_SKEW_SECS < claims.nbf {
        return Err(GraphError::not_yet_valid());
    }
    if !GRAPH_AUDIENCES.contains(&claims.aud.as_str()) {
        return Err(GraphError::wrong_audience());
    }
    Ok(claims)
}

/// The OData system query options the emulator implements.
#[derive(Debug, Default)]
struct GraphQuery {
    top: Option<u32>,
    select: Vec<&'static str>,
    skiptoken: Option<String>,
    count: bool,
}

impl GraphQuery {
    /// Graph v1.0 takes system query options with or without their `$`; other parameters
    /// are ignored, as Graph ignores them.
    fn parse(
        raw: &str,
        properties: &[&'static str],
        entity: &str,
    ) -> Result<GraphQuery, GraphError> {
        const SUPPORTED: &[&str] = &["top", "select", "skiptoken", "count"];
        const UNSUPPORTED: &[&str] = &[
            "filter", "orderby", "search", "expand", "skip", "format", "apply", "compute",
        ];
        let params = Params::parse(raw.as_bytes(), MAX_QUERY).map_err(|e| match e {
            ParamError::TooLong { .. } => GraphError::bad_request("The query string is too long."),
            ParamError::Repeated(name) => repeated(&name),
            ParamError::NotUtf8(name) => {
                GraphError::bad_request(format!("The query option '{name}' is not valid UTF-8."))
            }
        })?;
        let mut query = GraphQuery::default();
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in params.iter() {
            let bare = name.strip_prefix('$').unwrap_or(name).to_ascii_lowercase();
            if let Some(option) = UNSUPPORTED.iter().find(|o| **o == bare) {
                return Err(GraphError::unsupported_option(&format!("${option}")));
            }
            let Some(option) = SUPPORTED.iter().find(|o| **o == bare) else {
                continue;
            };
            if seen.contains(option) {
                return Err(repeated(&format!("${option}")));
            }
            seen.push(option);
            let value = std::str::from_utf8(value).map_err(|_| {
                GraphError::bad_request(format!("The query option '${option}' is not valid UTF-8."))
            })?;
            match *option {
                "top" => {
                    let top = value
                        .trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|t| (1..=MAX_PAGE).contains(t));
                    query.top = Some(top.ok_or_else(|| GraphError::bad_page_size(value))?);
                }
                "select" => {
                    for wanted in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let found = properties
                            .iter()
                            .find(|p| p.eq_ignore_ascii_case(wanted))
                            .ok_or_else(|| GraphError::unknown_property(wanted, entity))?;
                        if !query.select.contains(found) {
                            query.select.push(found);
                        }
                    }
                }
                "skiptoken" => query.skiptoken = Some(value.to_owned()),
                _ => {
                    query.count = match value {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(GraphError::bad_request(format!(
                                "Invalid value '{value}' for $count: expected true or false."
                            )));
                        }
                    }
                }
            }
        }
        Ok(query)
    }
}

fn repeated(option: &str) -> GraphError {
    GraphError::bad_request(format!(
        "Query option '{option}' was specified more than once, but it must be specified at most once."
    ))
}

fn eventual_consistency(req: &HttpRequest) -> bool {
    req.headers()
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"))
}

fn json_ok(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ODATA_JSON)
        .body(body.to_string())
}

/// `{base}/v1.0/$metadata#users` or, with `$select`, `...#users(displayName,id)`.
fn context(req: &HttpRequest, entity_set: &str, select: &[&str]) -> String {
    let base = base_url(req);
    if select.is_empty() {
        format!("{base}/v1.0/$metadata#{entity_set}")
    } else {
        format!("{base}/v1.0/$metadata#{entity_set}({})", select.join(","))
    }
}

/// The next page: the same options with a `$skiptoken` last, as Graph builds it.
fn next_link(req: &HttpRequest, query: &GraphQuery, skiptoken: &str) -> String {
    let mut link = format!("{}/v1.0/users?", base_url(req));
    if let Some(top) = query.top {
        link.push_str(&format!("$top={top}&"));
    }
    if !query.select.is_empty() {
        link.push_str(&format!(
            "$select={}&",
            encode_component(query.select.join(",").as_bytes())
        ));
    }
    link.push_str("$skiptoken=");
    link.push_str(skiptoken);
    link
}

/// Opaque to clients, as Graph's are; bound to the tenant so a token cannot page another.
fn encode_skiptoken(tenant: &Tenant, offset: u32) -> String {
    URL_SAFE_NO_PAD.encode(format!("users:{}:{offset}", tenant.id.simple()))
}

fn decode_skiptoken(token: &str, tenant: &Tenant) -> Result<u32, GraphError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| GraphError::bad_skiptoken())?;
    let text = String::from_utf8(bytes).map_err(|_| GraphError::bad_skiptoken())?;
    let mut parts = text.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("users"), Some(id), Some(offset), None) if id == tenant.id.simple().to_string() => {
            offset
                .parse::<u32>()
                .ok()
                .filter(|o| *o <= tenant.user_count)
                .ok_or_else(GraphError::bad_skiptoken)
        }
        _ => Err(GraphError::bad_skiptoken()),
    }
}

fn user_json(user: &User, tenant: &Tenant, properties: &[&str]) -> Value {
    let mut out = Map::new();
    for property in properties {
        let value = match *property {
            "businessPhones" => json!(user.business_phones),
            "displayName" => json!(user.display_name),
            "givenName" => json!(user.given_name),
            "jobTitle" => json!(user.job_title),
            "mail" => json!(user.mail),
            "mobilePhone" => json!(user.mobile_phone),
            "officeLocation" => json!(user.office_location),
            "preferredLanguage" => json!(user.preferred_language),
            "surname" => json!(user.surname),
            "userPrincipalName" => json!(user.user_principal_name),
            "id" => json!(user.id),
            "accountEnabled" => json!(true),
            "userType" => json!("Member"),
            "usageLocation" => json!(tenant.country_letter_code),
            "companyName" => json!(tenant.display_name),
            _ => Value::Null,
        };
        out.insert((*property).to_owned(), value);
    }
    Value::Object(out)
}

fn org_properties() -> Vec<&'static str> {
    vec![
        "id",
        "deletedDateTime",
        "businessPhones",
        "city",
        "country",
        "countryLetterCode",
        "createdDateTime",
        "defaultUsageLocation",
        "displayName",
        "marketingNotificationEmails",
        "onPremisesLastSyncDateTime",
        "onPremisesSyncEnabled",
        "postalCode",
        "preferredLanguage",
        "securityComplianceNotificationMails",
        "securityComplianceNotificationPhones",
        "state",
        "street",
        "technicalNotificationMails",
        "tenantType",
        "assignedPlans",
        "privacyProfile",
        "provisionedPlans",
        "verifiedDomains",
    ]
}

fn organization_json(tenant: &Tenant) -> Value {
    let verified: Vec<Value> = tenant
        .domains()
        .map(|name| {
            let initial = name == tenant.initial_domain;
            json!({
                "capabilities": if initial { "Email, OfficeCommunicationsOnline" } else { "Email" },
                "isDefault": name == tenant.default_domain(),
                "isInitial": initial,
                "name": name,
                "type": "Managed",
            })
        })
        .collect();
    json!({
        "id": tenant.id,
        "deletedDateTime": null,
        "businessPhones": ["+1 425 555 0100"],
        "city": tenant.city,
        "country": null,
        "countryLetterCode": tenant.country_letter_code,
        "createdDateTime": rfc3339_seconds(tenant.created_at),
        "defaultUsageLocation": null,
        "displayName": tenant.display_name,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": null,
        "onPremisesSyncEnabled": null,
        "postalCode": "98052",
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": null,
        "street": "1 Example Way",
        "technicalNotificationMails": [format!("admin@{}", tenant.default_domain())],
        "tenantType": "AAD",
        "assignedPlans": [],
        "privacyProfile": null,
        "provisionedPlans": [],
        "verifiedDomains": verified,
    })
}

/// Keeps only the selected properties (all of them when none is selected).
fn select(object: Value, properties: &[&str]) -> Value {
    match object {
        Value::Object(map) if !properties.is_empty() => Value::Object(
            map.into_iter()
                .filter(|(k, _)| properties.contains(&k.as_str()))
                .collect(),
        ),
        other => other,
    }
}

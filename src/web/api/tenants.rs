//! `/api/v1/tenants`: the tenants in pages, one tenant with its claims, its events, a
//! verification on request, an app-only access token for it, and its users from Graph.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::problem::{self, ProblemBody};
use super::{ApiClient, Problem};
use crate::domain::api_key::Scope;
use crate::domain::{TenantId, TenantStatus};
use crate::entra::{EntraClient, GraphError, TokenError};
use crate::store::{
    ClaimRow, EarlyCheck, EventKind, EventRow, NewEvent, TenantCursor, TenantPageFilter, TenantRow,
    parse_ts, ts,
};
use crate::web::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// The query of `GET /api/v1/tenants`. Fields are read as text so that a bad value gets a
/// problem naming the parameter; the document gives their real types.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Tenants per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged.
    cursor: Option<String>,
    /// Only tenants with this status.
    #[param(schema_with = status_filter)]
    status: Option<String>,
    /// Only tenants whose id, organisation name or a verified domain contains this text,
    /// ignoring case (the dashboard's search).
    search: Option<String>,
    /// Only tenants changed at or after this instant (RFC 3339), for sync: pass the
    /// largest `updated_at` seen so far.
    #[param(value_type = Option<String>, format = DateTime)]
    updated_since: Option<String>,
}

/// The schema of a tenant's `status`: one of [`TenantStatus::ALL`].
fn status_schema(description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(TenantStatus::ALL.iter().map(|s| s.as_str())))
        .description(Some(description))
        .build()
}

fn tenant_status() -> Object {
    status_schema("Where the tenant stands, as its last check found.")
}

fn status_filter() -> Object {
    status_schema("Only tenants with this status.")
}

/// A tenant as the API shows it. Timestamps are RFC 3339 UTC.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tenant)]
pub struct TenantJson {
    /// The tenant id (a GUID).
    pub id: String,
    #[schema(schema_with = tenant_status)]
    pub status: String,
    /// The organisation's name, from Graph (never what a sign-up claimed).
    pub display_name: Option<String>,
    pub verified_domains: Vec<String>,
    /// Application permissions granted, as the last successful check read them.
    pub granted_roles: Vec<String>,
    /// Required permissions (the `required_permissions` setting) not granted.
    pub missing_permissions: Vec<String>,
    #[schema(format = DateTime)]
    pub consented_at: String,
    /// The first successful check.
    #[schema(format = DateTime)]
    pub verified_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_success_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_failure_at: Option<String>,
    /// The AADSTS code (or consentry's own) of the last failure, while it lasts.
    pub last_error_code: Option<String>,
    pub consecutive_failures: i64,
    /// When the next check is due; none while checks are stopped.
    #[schema(format = DateTime)]
    pub next_check_at: Option<String>,
    /// The last change of the tenant's record: what `updated_since` compares.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl TenantJson {
    pub fn of(row: &TenantRow, required: &[String]) -> TenantJson {
        TenantJson {
            id: row.id.clone(),
            status: row.status.clone(),
            display_name: row.display_name.clone(),
            verified_domains: row.verified_domains(),
            granted_roles: row.granted_roles(),
            missing_permissions: row.missing_permissions(required),
            consented_at: row.consented_at.clone(),
            verified_at: row.verified_at.clone(),
            last_success_at: row.last_token_ok_at.clone(),
            last_failure_at: row.last_failure_at.clone(),
            last_error_code: row.last_error_code.clone(),
            consecutive_failures: row.consecutive_failures,
            next_check_at: row.next_verify_at.clone(),
            updated_at: row.updated_at.clone(),
        }
    }
}

/// A page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    pub data: Vec<TenantJson>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// Opaque to clients: base64url of `consented_at` and the id of the page's last tenant.
fn encode_cursor(cursor: &TenantCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}\n{}", cursor.consented_at, cursor.id))
}

fn decode_cursor(raw: &str) -> Option<TenantCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (consented_at, id) = text.split_once('\n')?;
    parse_ts(consented_at)?;
    TenantId::parse(id)?;
    Some(TenantCursor {
        consented_at: consented_at.to_owned(),
        id: id.to_owned(),
    })
}

/// List the tenants, a page at a time.
///
/// In the order they consented (then by id), narrowed by `status`, `search` and
/// `updated_since`. Tenants that consent while a client pages sort after every earlier
/// page, so a client walking `next_cursor` sees each tenant once.
#[utoipa::path(
    get,
    path = "/api/v1/tenants",
    operation_id = "list_tenants",
    tag = "tenants",
    params(ListQuery),
    security(("api_key" = ["tenants:read"])),
    responses(
        (status = 200, description = "A page of tenants.", body = TenantPage),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn list(
    client: ApiClient,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TenantsRead)?;
    let query = web::Query::<ListQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(&req, format!("Bad query: {e}.")))?
        .into_inner();
    let limit = parse_limit(&req, query.limit.as_deref())?;
    let status = match query.status.as_deref() {
        None => None,
        Some(raw) => Some(TenantStatus::parse(raw).ok_or_else(|| {
            let known: Vec<&str> = TenantStatus::ALL.iter().map(|s| s.as_str()).collect();
            Problem::bad_request(&req, format!("status must be one of {}.", known.join(", ")))
        })?),
    };
    let after = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(decode_cursor(raw).ok_or_else(|| {
            Problem::bad_request(
                &req,
                "cursor is not one this API gave out: pass next_cursor back unchanged.",
            )
        })?),
    };
    let updated_since = match query.updated_since.as_deref() {
        None => None,
        Some(raw) => Some(parse_since(raw).ok_or_else(|| {
            Problem::bad_request(
                &req,
                "updated_since must be an RFC 3339 date and time, e.g. 2026-11-30T10:00:00Z.",
            )
        })?),
    };
    let filter = TenantPageFilter {
        status,
        search: query.search.filter(|s| !s.trim().is_empty()),
        updated_since,
    };
    // One more than asked, to learn whether another page follows.
    let (rows, more) = super::take_page(
        state
            .store
            .tenants_page(&filter, after.as_ref(), limit + 1)
            .await
            .map_err(|e| Problem::from_store(client.request_id(), e))?,
        limit,
    );
    let next_cursor = more
        .then(|| rows.last().map(|r| encode_cursor(&r.cursor())))
        .flatten();
    let required = &state.settings.required_permissions;
    let page = TenantPage {
        data: rows.iter().map(|r| TenantJson::of(r, required)).collect(),
        next_cursor,
    };
    Ok(HttpResponse::Ok().json(page))
}

/// `updated_since`, rounded up to the millisecond that stored times keep, so that "at or
/// after" holds exactly.
fn parse_since(raw: &str) -> Option<OffsetDateTime> {
    let at = parse_ts(raw)?;
    let below_ms = at.nanosecond() % 1_000_000;
    if below_ms == 0 {
        Some(at)
    } else {
        at.checked_add(time::Duration::nanoseconds(i64::from(1_000_000 - below_ms)))
    }
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
fn parse_limit(req: &HttpRequest, raw: Option<&str>) -> Result<i64, Problem> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Problem::bad_request(
                    req,
                    format!("limit must be a whole number from 1 to {MAX_LIMIT}."),
                )
            }),
    }
}

fn no_such_tenant(req: &HttpRequest) -> Problem {
    Problem::new(
        req,
        StatusCode::NOT_FOUND,
        "There is no tenant with this id.",
    )
}

/// The tenant named by the path, or a 404 problem (also for an id that is not a GUID).
async fn tenant_of(
    req: &HttpRequest,
    client: &ApiClient,
    state: &AppState,
    raw: &str,
) -> Result<(TenantId, TenantRow), Problem> {
    let id = TenantId::parse(raw).ok_or_else(|| no_such_tenant(req))?;
    Ok((id, tenant_row(req, client, state, id).await?))
}

async fn tenant_row(
    req: &HttpRequest,
    client: &ApiClient,
    state: &AppState,
    id: TenantId,
) -> Result<TenantRow, Problem> {
    state
        .store
        .tenant(id)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?
        .ok_or_else(|| no_such_tenant(req))
}

/// What a sign-up said when its callback named the tenant. Claims prove nothing by
/// themselves: `confirming` marks the one Microsoft's first verification followed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Claim)]
pub struct ClaimJson {
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    pub domain_hint: Option<String>,
    #[schema(format = DateTime)]
    pub signed_up_at: String,
    #[schema(format = DateTime)]
    pub called_back_at: String,
    pub confirming: bool,
}

impl ClaimJson {
    fn of(tenant: &TenantRow, claim: ClaimRow) -> ClaimJson {
        ClaimJson {
            confirming: tenant.confirmed_by(&claim),
            organisation_name: claim.organisation_name,
            contact_email: claim.contact_email,
            domain_hint: claim.domain_hint,
            signed_up_at: claim.created_at,
            called_back_at: claim.consumed_at,
        }
    }
}

/// One tenant: the list's fields, and the claims.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDetail {
    #[serde(flatten)]
    pub tenant: TenantJson,
    /// Newest callback first.
    pub claims: Vec<ClaimJson>,
}

/// One tenant, with the sign-ups' claims.
///
/// The list's fields, and `claims`: what sign-ups said when their callback named the
/// tenant, newest first; `confirming` marks the one Microsoft's first verification
/// followed.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}",
    operation_id = "get_tenant",
    tag = "tenants",
    params(TenantPath),
    security(("api_key" = ["tenants:read"])),
    responses(
        (status = 200, description = "The tenant, with the sign-ups' claims.", body = TenantDetail),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn show(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TenantsRead)?;
    let (id, row) = tenant_of(&req, &client, &state, &id).await?;
    let claims = state
        .store
        .claims_for(id)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    let detail = TenantDetail {
        tenant: TenantJson::of(&row, &state.settings.required_permissions),
        claims: claims.into_iter().map(|c| ClaimJson::of(&row, c)).collect(),
    };
    Ok(HttpResponse::Ok().json(detail))
}

/// The tenant in the path: documented here once for every `/tenants/{id}` route (the
/// handlers take it as `web::Path<String>` and answer 404 for anything but a known id).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct TenantPath {
    /// The tenant id (a GUID).
    #[param(format = "uuid")]
    id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged.
    cursor: Option<String>,
}

/// An entry of a tenant's event log.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventJson {
    /// A UUIDv7: ids sort in the order events were written.
    pub id: String,
    /// What happened, e.g. `status_changed` or `token_issued`; new kinds may be added.
    pub kind: String,
    /// Plain words for people; never a secret or a token.
    pub detail: String,
    /// The request that caused it, when one did.
    pub request_id: Option<String>,
    /// When it happened (the first time, for a repeated failure).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// How many times in a row it happened: a failure repeated check after check with the
    /// same kind and detail is one event, from `created_at` to `last_at`.
    #[schema(minimum = 1)]
    pub count: i64,
    /// When a repeated event last happened; null when it happened once.
    #[schema(format = DateTime)]
    pub last_at: Option<String>,
}

impl EventJson {
    fn of(row: EventRow) -> EventJson {
        EventJson {
            id: row.id,
            kind: row.kind,
            detail: row.detail,
            request_id: row.request_id,
            created_at: row.created_at,
            count: row.repeat_count,
            last_at: row.last_at,
        }
    }
}

/// A page of a tenant's events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub data: Vec<EventJson>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    pub next_cursor: Option<String>,
}

/// The tenant's event log, newest first.
///
/// The cursor is the id of the page's last event, so events written while a client
/// pages never shift the older pages.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/events",
    operation_id = "list_tenant_events",
    tag = "tenants",
    params(TenantPath, EventsQuery),
    security(("api_key" = ["tenants:read"])),
    responses(
        (status = 200, description = "A page of the tenant's events, newest first.", body = EventPage),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn events(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TenantsRead)?;
    let query = web::Query::<EventsQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(&req, format!("Bad query: {e}.")))?
        .into_inner();
    let limit = parse_limit(&req, query.limit.as_deref())?;
    let before = match query.cursor.as_deref() {
        None => None,
        Some(raw) => Some(
            uuid::Uuid::parse_str(raw)
                .ok()
                .filter(|u| u.get_version_num() == 7)
                .map(|u| u.hyphenated().to_string())
                .ok_or_else(|| {
                    Problem::bad_request(
                        &req,
                        "cursor is not one this API gave out: pass next_cursor back unchanged.",
                    )
                })?,
        ),
    };
    let (id, _) = tenant_of(&req, &client, &state, &id).await?;
    let (rows, more) = super::take_page(
        state
            .store
            .events_page(id, before.as_deref(), limit + 1)
            .await
            .map_err(|e| Problem::from_store(client.request_id(), e))?,
        limit,
    );
    let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(HttpResponse::Ok().json(EventPage {
        data: rows.into_iter().map(EventJson::of).collect(),
        next_cursor,
    }))
}

/// Check the tenant now.
///
/// What the dashboard's "Verify now" does. It needs
/// only `tenants:read`: a check asks Microsoft again what the tenant's status already
/// says and changes nothing a reader would not see after the next scheduled check; it
/// hands out nothing. Answers 202 with the tenant as it stands; the check runs in the
/// background. Checks asked for ahead of schedule share one allowance per tenant with the
/// dashboard's "Verify now" and consent callbacks: two at once, then one a minute; beyond,
/// 429 with `Retry-After`.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/verify",
    operation_id = "verify_tenant",
    tag = "tenants",
    params(TenantPath),
    security(("api_key" = ["tenants:read"])),
    responses(
        (status = 202, description = "The check is under way; the tenant as it stood when asked.", body = TenantJson),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn verify(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TenantsRead)?;
    let id = TenantId::parse(&id).ok_or_else(|| no_such_tenant(&req))?;
    let detail = format!("{} asked to verify the tenant now.", client.describe());
    let answer = state
        .store
        .request_check(id, OffsetDateTime::now_utc(), detail, client.request_id())
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    match answer {
        EarlyCheck::Granted => {}
        EarlyCheck::NoSuchTenant => return Err(no_such_tenant(&req)),
        EarlyCheck::TooSoon { retry_after } => {
            return Err(Problem::checks_spaced(&req, retry_after));
        }
    }
    // Read before the check can start, so the answer is the tenant as it was asked about.
    let row = tenant_row(&req, &client, &state, id).await?;
    state.verifier.check_soon(id);
    Ok(HttpResponse::Accepted().json(TenantJson::of(&row, &state.settings.required_permissions)))
}

/// An app-only access token for a tenant, for a service to call Graph itself.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AccessToken)]
pub struct TokenJson<'a> {
    /// Send it as `Authorization: Bearer <access_token>` to Microsoft Graph; keep it no
    /// longer than `expires_at`.
    pub access_token: &'a str,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// When Microsoft stops accepting it (RFC 3339 UTC).
    #[schema(format = DateTime)]
    pub expires_at: String,
    pub tenant_id: String,
    /// Required permissions the tenant did not grant: calls that need them will fail.
    pub missing_permissions: Vec<String>,
}

/// Why no token is handed out for a tenant in `status`, or `None` when one is.
fn refusal(row: &TenantRow, status: Option<TenantStatus>) -> Option<String> {
    let code = row
        .last_error_code
        .as_deref()
        .map(|c| format!(" (last error: {c})"))
        .unwrap_or_default();
    match status {
        Some(TenantStatus::Active | TenantStatus::MissingPermissions) => None,
        Some(TenantStatus::Revoked) => Some(format!(
            "The tenant's administrator revoked the consent{code}: they must consent again."
        )),
        Some(TenantStatus::Gone) => Some(format!(
            "Microsoft no longer knows this tenant{code}: it was deleted or blocked."
        )),
        Some(TenantStatus::Pending) => {
            Some("The consent is not verified yet: ask again once the tenant is active.".to_owned())
        }
        Some(TenantStatus::Failed) => Some(format!(
            "Microsoft never confirmed this consent{code}: verification gave up."
        )),
        Some(TenantStatus::Failing) => Some(format!(
            "Checks of this tenant are failing{code}: no token until one succeeds."
        )),
        None => Some(format!(
            "The tenant's status ({}) is not one that allows a token.",
            row.status
        )),
    }
}

/// A token the engine could not get: 503 with `Retry-After` when Microsoft asked to wait,
/// 502 otherwise, naming the code (never the response body).
fn token_failure(req: &HttpRequest, error: &TokenError) -> Problem {
    let detail = format!(
        "Microsoft did not issue a token for this tenant ({}).",
        error.code()
    );
    match error {
        TokenError::Throttled { retry_after, .. } => {
            Problem::new(req, StatusCode::SERVICE_UNAVAILABLE, detail)
                .with_retry_after(retry_after.as_secs().max(1))
        }
        TokenError::Waiting { remaining } => {
            Problem::new(req, StatusCode::SERVICE_UNAVAILABLE, detail)
                .with_retry_after(remaining.as_secs().max(1))
        }
        _ => Problem::new(req, StatusCode::BAD_GATEWAY, detail),
    }
}

/// An app-only access token for the tenant.
///
/// A token from the engine the
/// checks use (cached and single-flight; never stored), for an `active` or
/// `missing_permissions` tenant; a 409 problem saying why for any other. Each token handed
/// out is a `token_issued` event naming the key.
#[utoipa::path(
    post,
    path = "/api/v1/tenants/{id}/token",
    operation_id = "issue_tenant_token",
    tag = "tenants",
    params(TenantPath),
    security(("api_key" = ["tokens:issue"])),
    responses(
        (status = 200, description = "An access token for the tenant (`Cache-Control: no-store`).", body = TokenJson),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 409, description = "The tenant is not `active` or `missing_permissions`: \
            `detail` says why (revoked, gone, pending, failed, or failing with its AADSTS code).",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 502, response = problem::BadGateway),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn token(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TokensIssue)?;
    let id = TenantId::parse(&id).ok_or_else(|| no_such_tenant(&req))?;
    // The row as read at most `store::TENANT_TTL` (1 s) ago: a status change takes that
    // long to be reflected here, where every request would otherwise be a database read.
    let row = state
        .store
        .tenant_recent(id)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?
        .ok_or_else(|| no_such_tenant(&req))?;
    if let Some(why) = refusal(&row, row.status()) {
        return Err(Problem::new(&req, StatusCode::CONFLICT, why));
    }
    let cached = state
        .tokens
        .token(id)
        .await
        .map_err(|e| token_failure(&req, &e))?;
    let event = NewEvent {
        tenant_id: Some(id),
        kind: EventKind::TokenIssued,
        detail: format!("An access token was issued to {}.", client.describe()),
        request_id: Some(client.request_id().to_owned()),
    };
    // No record, no token: answered only once the event is committed (with those of
    // concurrent requests, in one transaction: `store::EventWriter`).
    state
        .token_events
        .record(event, OffsetDateTime::now_utc())
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    let body = TokenJson {
        access_token: EntraClient::bearer(&cached.token),
        token_type: "Bearer",
        expires_at: ts(cached.expires_at),
        tenant_id: id.to_string(),
        missing_permissions: row.missing_permissions(&state.settings.required_permissions),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body))
}

/// Users per page when `limit` is absent (Graph's own default), and Graph's largest `$top`.
const DEFAULT_USERS: u32 = 100;
const MAX_USERS: u32 = 999;

/// The user properties `fields` may name, as Graph spells them.
const USER_FIELDS: &[&str] = &[
    "id",
    "displayName",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "jobTitle",
    "accountEnabled",
    "businessPhones",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "userType",
    "usageLocation",
    "companyName",
];

const USERS_PATH: &str = "/v1.0/users";

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UsersQuery {
    /// Users per page (Graph's `$top`); first request only: a cursor carries it.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 999, default = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged (alone: without `limit` or `fields`).
    cursor: Option<String>,
    /// The user properties to return (Graph's `$select`), comma-separated, e.g.
    /// `id,displayName,mail`; first request only.
    #[param(example = "id,displayName,mail")]
    fields: Option<String>,
}

/// A page of a tenant's users, each as Graph gives it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Graph `user` objects with the properties chosen by `fields` (or Graph's default set).
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

fn bad_cursor(req: &HttpRequest) -> Problem {
    Problem::bad_request(
        req,
        "cursor is not one this API gave out: pass next_cursor back unchanged.",
    )
}

/// Opaque to clients: base64url of the tenant's id and Graph's `@odata.nextLink`.
fn encode_users_cursor(tenant: TenantId, next_link: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{tenant}\n{next_link}"))
}

/// The `@odata.nextLink` a cursor carries, only if the cursor was given out for `tenant`
/// and the link leads to `GET /v1.0/users` on the configured Graph host: a cursor must never
/// send the tenant's token anywhere else.
fn decode_users_cursor(raw: &str, graph_host: &str, tenant: TenantId) -> Option<String> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
    let (for_tenant, link) = text.split_once('\n')?;
    if TenantId::parse(for_tenant)? != tenant {
        return None;
    }
    let link = link.to_owned();
    let parsed = reqwest::Url::parse(&link).ok()?;
    let host = reqwest::Url::parse(graph_host).ok()?;
    let same_origin = parsed.scheme() == host.scheme()
        && parsed.host_str() == host.host_str()
        && parsed.port_or_known_default() == host.port_or_known_default();
    let plain = parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.fragment().is_none()
        && parsed.query().is_some();
    let base = format!("{}{USERS_PATH}?", graph_host.trim_end_matches('/'));
    (same_origin && plain && parsed.path() == USERS_PATH && link.starts_with(&base)).then_some(link)
}

/// `fields`: a comma-separated choice from [`USER_FIELDS`] (any case), as Graph spells them.
fn parse_fields(req: &HttpRequest, raw: &str) -> Result<Vec<&'static str>, Problem> {
    let mut fields: Vec<&'static str> = Vec::new();
    for wanted in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let found = USER_FIELDS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                Problem::bad_request(
                    req,
                    format!(
                        "fields must be a comma-separated choice of {}.",
                        USER_FIELDS.join(", ")
                    ),
                )
            })?;
        if !fields.contains(found) {
            fields.push(found);
        }
    }
    if fields.is_empty() {
        return Err(Problem::bad_request(req, "fields names no field."));
    }
    Ok(fields)
}

/// A Graph call that failed: a permission not granted is 409, throttling 503 with
/// `Retry-After`, anything else 502 naming Graph's code (never the response body).
fn graph_failure(req: &HttpRequest, error: &GraphError, with_cursor: bool) -> Problem {
    match error {
        GraphError::Status { status: 403, .. } => Problem::new(
            req,
            StatusCode::CONFLICT,
            "The tenant has not granted the application permission User.Read.All: its \
             administrator must consent to it.",
        ),
        GraphError::Status { status: 400, .. } if with_cursor => bad_cursor(req),
        GraphError::Throttled { retry_after, .. } => Problem::new(
            req,
            StatusCode::SERVICE_UNAVAILABLE,
            "Microsoft Graph asked to wait before the next request.",
        )
        .with_retry_after(retry_after.as_secs().max(1)),
        GraphError::Status {
            status: status @ (429 | 503),
            ..
        } => Problem::new(
            req,
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Microsoft Graph is busy (HTTP {status})."),
        )
        .with_retry_after(1),
        GraphError::Status { status, code, .. } => Problem::new(
            req,
            StatusCode::BAD_GATEWAY,
            format!("Microsoft Graph did not list the users (HTTP {status}: {code})."),
        ),
        GraphError::Unreachable(_) | GraphError::Malformed(_) => Problem::new(
            req,
            StatusCode::BAD_GATEWAY,
            "Microsoft Graph could not be reached or its answer could not be read.",
        ),
    }
}

/// The tenant's users, from Microsoft Graph.
///
/// Through Graph's `GET /v1.0/users`, `limit` (`$top`) at a time, with the `fields` chosen
/// (`$select`). `next_cursor` wraps Graph's `@odata.nextLink`, which carries the first
/// request's `limit` and `fields`. Only for an `active` or `missing_permissions` tenant.
#[utoipa::path(
    get,
    path = "/api/v1/tenants/{id}/users",
    operation_id = "list_tenant_users",
    tag = "tenants",
    params(TenantPath, UsersQuery),
    security(("api_key" = ["tenants:read"])),
    responses(
        (status = 200, description = "A page of the tenant's users, from Microsoft Graph.", body = UserPage),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 404, response = problem::NotFound),
        (status = 409, description = "The tenant is not `active` or `missing_permissions`, or it \
            did not grant User.Read.All: `detail` says which.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 502, response = problem::BadGateway),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn users(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TenantsRead)?;
    let (id, row) = tenant_of(&req, &client, &state, &id).await?;
    let query = web::Query::<UsersQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(&req, format!("Bad query: {e}.")))?
        .into_inner();
    let graph_host = state.entra.graph_host();
    let url = match query.cursor.as_deref() {
        Some(_) if query.limit.is_some() || query.fields.is_some() => {
            return Err(Problem::bad_request(
                &req,
                "limit and fields go with the first request only: a cursor carries them.",
            ));
        }
        Some(raw) => decode_users_cursor(raw, graph_host, id).ok_or_else(|| bad_cursor(&req))?,
        None => {
            let limit = match query.limit.as_deref() {
                None => DEFAULT_USERS,
                Some(raw) => raw
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_USERS).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(
                            &req,
                            format!("limit must be a whole number from 1 to {MAX_USERS}."),
                        )
                    })?,
            };
            let mut url = format!("{graph_host}{USERS_PATH}?$top={limit}");
            if let Some(raw) = query.fields.as_deref() {
                url.push_str("&$select=");
                url.push_str(&parse_fields(&req, raw)?.join(","));
            }
            url
        }
    };
    if let Some(why) = refusal(&row, row.status()) {
        return Err(Problem::new(&req, StatusCode::CONFLICT, why));
    }
    let mut page = state
        .graph
        .page(id, &url)
        .await
        .map_err(|e| graph_failure(&req, &e, query.cursor.is_some()))?;
    let next_cursor = page
        .get("@odata.nextLink")
        .and_then(serde_json::Value::as_str)
        .map(|link| encode_users_cursor(id, link));
    let data = match page.get_mut("value").map(serde_json::Value::take) {
        Some(serde_json::Value::Array(users)) => users,
        _ => Vec::new(),
    };
    Ok(HttpResponse::Ok().json(UserPage { data, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let cursor = TenantCursor {
            consented_at: "2026-11-30T10:00:00.000Z".to_owned(),
            id: "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90".to_owned(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&cursor)), Some(cursor));
        assert_eq!(decode_cursor("not-a-cursor"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("x\ny")), None);
    }

    #[test]
    fn a_users_cursor_leads_only_to_graph_users() {
        let host = "https://graph.microsoft.com";
        let tenant = TenantId::parse("6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90").expect("guid");
        let other = TenantId::parse("3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58").expect("guid");
        let link = "https://graph.microsoft.com/v1.0/users?$top=5&$skiptoken=abc";
        let cursor = encode_users_cursor(tenant, link);
        assert_eq!(
            decode_users_cursor(&cursor, host, tenant).as_deref(),
            Some(link)
        );
        assert_eq!(decode_users_cursor(&cursor, host, other), None);
        assert_eq!(
            decode_users_cursor(&URL_SAFE_NO_PAD.encode(link), host, tenant),
            None
        );
        for forged in [
            "https://evil.example/v1.0/users?$skiptoken=abc",
            "https://graph.microsoft.com.evil.example/v1.0/users?$skiptoken=abc",
            "https://graph.microsoft.com@evil.example/v1.0/users?$skiptoken=abc",
            "http://graph.microsoft.com/v1.0/users?$skiptoken=abc",
            "https://graph.microsoft.com:8443/v1.0/users?$skiptoken=abc",
            "https://graph.microsoft.com/v1.0/organization?$skiptoken=abc",
            "https://graph.microsoft.com/v1.0/users/../groups?$skiptoken=abc",
            "https://graph.microsoft.com/v1.0/users",
            "not a link",
        ] {
            assert_eq!(
                decode_users_cursor(&encode_users_cursor(tenant, forged), host, tenant),
                None,
                "{forged}"
            );
        }
        assert_eq!(decode_users_cursor("%%%", host, tenant), None);
    }
}

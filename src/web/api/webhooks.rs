//! `/api/v1/webhook-endpoints` and `/api/v1/webhook-deliveries` (scope `webhooks:manage`):
//! endpoints managed by another system, with their delivery logs and resends; and
//! `/api/v1/events` (scope `tenants:read`): the outbox as a feed to poll instead of, or
//! beside, receiving webhooks.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use time::OffsetDateTime;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::problem::{self, ProblemBody};
use super::{ApiClient, Problem};
use crate::domain::TenantId;
use crate::domain::api_key::Scope;
use crate::domain::webhook::{EndpointState, EventFilter, EventType};
use crate::store::{
    CreatedOnce, DeliveryCounts, DeliveryFilter, DeliveryRow, EndpointChange, EndpointRow,
    IdempotencyKey, NewEndpoint, WebhookEventRow,
};
use crate::web::AppState;
use crate::webhooks::endpoints::{
    NewSecret, SECRET_OVERLAP, parse_description, parse_event_types, vet_url,
};

/// Largest JSON body accepted: an endpoint's fields fit in a few hundred bytes (a URL is at
/// most 2,048 characters).
pub const MAX_BODY_BYTES: usize = 8 * 1024;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// Longest `Idempotency-Key` accepted (Stripe's limit; a UUID is 36).
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The header a replayed answer carries.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Deliveries of one endpoint by status.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeliveryCounts)]
pub struct DeliveryCountsJson {
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
}

impl From<DeliveryCounts> for DeliveryCountsJson {
    fn from(c: DeliveryCounts) -> DeliveryCountsJson {
        DeliveryCountsJson {
            pending: c.pending,
            succeeded: c.succeeded,
            failed: c.failed,
        }
    }
}

fn string_enum(values: &[&str], description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .build()
}

fn endpoint_state() -> Object {
    string_enum(
        &["enabled", "paused", "disabled"],
        "`enabled`, `paused` (by an operator or an API client) or `disabled` (the endpoint \
         answered 410 Gone). Deliveries of a paused or disabled endpoint wait, and go out when \
         it is enabled again.",
    )
}

fn delivery_status() -> Object {
    string_enum(
        &["pending", "succeeded", "failed"],
        "`pending` (waiting for its next attempt), `succeeded`, or `failed` (the retry \
         schedule is exhausted; a resend makes it pending again).",
    )
}

fn event_type_names() -> Vec<&'static str> {
    EventType::ALL.iter().map(|t| t.as_str()).collect()
}

/// A webhook endpoint. Never carries its secret nor what the secret is derived from: the
/// secret is in the answer of the create and rotate-secret requests only.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct EndpointJson {
    /// `ep_` followed by 32 hex digits.
    pub id: String,
    pub url: String,
    pub description: String,
    /// The event types delivered; null for every type, including types added later.
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Vec<&'static str>>,
    #[schema(schema_with = endpoint_state)]
    pub state: &'static str,
    /// Why it is paused or disabled, in words.
    pub state_reason: Option<String>,
    /// While a rotation's overlap lasts, when the previous secret stops being valid:
    /// deliveries carry a signature with each secret until then.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
    pub deliveries: DeliveryCountsJson,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl EndpointJson {
    pub fn of(row: &EndpointRow, counts: DeliveryCounts, now: OffsetDateTime) -> EndpointJson {
        let filter = row.filter();
        EndpointJson {
            id: row.id.clone(),
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: (!filter.is_all())
                .then(|| filter.types().iter().map(|t| t.as_str()).collect()),
            state: row.state().as_str(),
            state_reason: row.state_reason.clone(),
            previous_secret_expires_at: row
                .previous_salt_at(now)
                .and(row.previous_secret_expires_at.clone()),
            deliveries: counts.into(),
            created_at: row.created_at.clone(),
            updated_at: row.updated_at.clone(),
        }
    }
}

/// An endpoint with its signing secret: the answer of a create or a rotation, the only
/// times the secret is shown.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpointWithSecret)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointJson,
    /// `whsec_` and base64: give it to the receiver to verify signatures. It is not shown
    /// again; a lost secret is replaced by rotating it.
    pub secret: String,
}

/// Every webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEndpointList)]
pub struct EndpointList {
    /// Oldest first.
    pub data: Vec<EndpointJson>,
}

/// One event sent to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryJson {
    /// `dlv_` and hex: sorted by the event's time.
    pub id: String,
    /// The event's id, which the delivery sends as `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub tenant_id: Option<String>,
    #[schema(schema_with = delivery_status)]
    pub status: String,
    pub attempts: i64,
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_attempt_at: Option<String>,
    /// The endpoint's HTTP status at the last attempt; null when it did not answer.
    pub last_status_code: Option<i64>,
    pub last_duration_ms: Option<i64>,
    /// Why the last attempt failed, in words.
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl DeliveryJson {
    pub fn of(row: DeliveryRow) -> DeliveryJson {
        DeliveryJson {
            id: row.id,
            event_id: row.event_id,
            event_type: row.event_type,
            endpoint_id: row.endpoint_id,
            tenant_id: row.tenant_id,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            last_attempt_at: row.last_attempt_at,
            last_status_code: row.last_status_code,
            last_duration_ms: row.last_duration_ms,
            last_error: row.last_error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A page of an endpoint's deliveries.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookDeliveryPage)]
pub struct DeliveryPage {
    /// Newest first.
    pub data: Vec<DeliveryJson>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    pub next_cursor: Option<String>,
}

/// A new webhook endpoint. No other field is accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewWebhookEndpoint)]
pub struct CreateEndpoint {
    /// `http` or `https`, at most 2,048 characters, without credentials or fragment, leading
    /// to public addresses (unless `CONSENTRY_WEBHOOK_ALLOW_PRIVATE`).
    #[schema(example = "https://hooks.example.com/consentry")]
    pub url: String,
    /// At most 500 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// The event types to deliver (at least one); absent or null for every type,
    /// including types added later.
    #[serde(default)]
    #[schema(inline, value_type = Option<Vec<String>>, example = json!(["tenant.connected"]))]
    pub event_types: Option<Vec<String>>,
}

/// Changes to a webhook endpoint: each field present is changed, the others kept. No other
/// field is accepted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookEndpointChange)]
pub struct UpdateEndpoint {
    /// As when creating an endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// At most 500 characters.
    #[serde(default)]
    pub description: Option<String>,
    /// A list (at least one type), or null for every type; absent keeps the current choice.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    /// `enabled` (also for an endpoint disabled by a 410) or `paused`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "paused")]
    pub state: Option<String>,
}

/// The endpoint in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct EndpointPath {
    /// The endpoint id (`ep_` and 32 hex digits).
    id: String,
}

/// The delivery in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct DeliveryPath {
    /// The delivery id (`dlv_`, 32 hex digits, `_`, 32 hex digits).
    id: String,
}

/// The `Idempotency-Key` header of a create.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
struct CreateHeaders {
    /// 1 to 255 visible ASCII characters (a UUID will do). The same key from the same API
    /// key within 24 hours creates nothing more: the answer is 200 with the endpoint the
    /// first request created, without its secret.
    #[param(rename = "Idempotency-Key")]
    idempotency_key: Option<String>,
}

/// A field that is present, even as null: `Some(None)`; absent stays `None` by default.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Reads a JSON body of at most [`MAX_BODY_BYTES`]: 413 past it, 415 unless it is JSON,
/// 400 for malformed JSON, an unknown field, a missing one or a wrong type.
async fn json_body<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<T, Problem> {
    let too_large = || {
        Problem::new(
            req,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The body is larger than {MAX_BODY_BYTES} bytes."),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let content_type = req.content_type().to_ascii_lowercase();
    if content_type != "application/json" && !content_type.ends_with("+json") {
        return Err(Problem::new(
            req,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send the body as JSON, with Content-Type: application/json.",
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| Problem::bad_request(req, "The body could not be read."))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| {
        let detail = if e.is_data() {
            format!("The JSON does not fit this route: {e}.")
        } else {
            format!("The body is not valid JSON: {e}.")
        };
        Problem::bad_request(req, detail)
    })
}

/// 422: the body is well-formed, but `detail` (which names the field) is wrong.
fn unprocessable(req: &HttpRequest, detail: impl Into<String>) -> Problem {
    Problem::new(req, StatusCode::UNPROCESSABLE_ENTITY, detail)
}

fn no_such_endpoint(req: &HttpRequest) -> Problem {
    Problem::new(
        req,
        StatusCode::NOT_FOUND,
        "There is no webhook endpoint with this id.",
    )
}

async fn endpoint_of(
    req: &HttpRequest,
    client: &ApiClient,
    state: &AppState,
    id: &str,
) -> Result<EndpointRow, Problem> {
    state
        .store
        .endpoint(id)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?
        .ok_or_else(|| no_such_endpoint(req))
}

async fn endpoint_json(
    client: &ApiClient,
    state: &AppState,
    row: &EndpointRow,
) -> Result<EndpointJson, Problem> {
    let counts = state
        .store
        .delivery_counts(&row.id)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    Ok(EndpointJson::of(row, counts, OffsetDateTime::now_utc()))
}

/// The URL, checked as a delivery would check it; a refusal is a 422 naming `url`.
async fn checked_url(req: &HttpRequest, state: &AppState, raw: &str) -> Result<String, Problem> {
    vet_url(raw, state.settings.webhook_allow_private)
        .await
        .map(String::from)
        .map_err(|why| {
            let why = why.to_string();
            let why = why.strip_prefix("url ").unwrap_or(&why);
            unprocessable(req, format!("url: {why}."))
        })
}

fn checked_description(req: &HttpRequest, raw: &str) -> Result<String, Problem> {
    parse_description(raw).map_err(|why| unprocessable(req, format!("{why}.")))
}

fn checked_types(req: &HttpRequest, names: Option<&[String]>) -> Result<EventFilter, Problem> {
    match names {
        None => Ok(EventFilter::all()),
        Some(names) => {
            parse_event_types(names).map_err(|why| unprocessable(req, format!("{why}.")))
        }
    }
}

/// List the webhook endpoints.
///
/// Every endpoint, oldest first, with its deliveries counted by status.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints",
    operation_id = "list_webhook_endpoints",
    tag = "webhooks",
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "Every endpoint.", body = EndpointList),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn list_endpoints(
    client: ApiClient,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let rows = state
        .store
        .endpoints()
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    let mut data = Vec::with_capacity(rows.len());
    for row in &rows {
        data.push(endpoint_json(&client, &state, row).await?);
    }
    Ok(HttpResponse::Ok().json(EndpointList { data }))
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, Problem> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            Problem::bad_request(
                req,
                format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID will do)."
                ),
            )
        })
}

/// What a create request means, hashed: the same key with another meaning is refused.
fn request_hash(url: &str, description: &str, filter: &EventFilter) -> String {
    let meaning = serde_json::json!([url, description, filter.to_column()]).to_string();
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        meaning.as_bytes(),
    ))
}

/// An answer carrying a secret: never cached, anywhere.
fn secret_answer(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// Create a webhook endpoint.
///
/// 201 with the endpoint and its secret, shown this once.
///
/// With an `Idempotency-Key`, the same key from the same API key within 24 hours creates
/// nothing more: it answers 200 with the endpoint the first request created, *without* its
/// secret, and `Idempotent-Replayed: true`. Replaying the secret would make the key a way to
/// read it again for a day, and would need the answer (or the secret) kept somewhere; only
/// the endpoint's id is kept. A client that lost the first answer rotates the secret.
/// The key reused for a different request is a 422; the endpoint since deleted, a 409.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints",
    operation_id = "create_webhook_endpoint",
    tag = "webhooks",
    params(CreateHeaders),
    request_body = CreateEndpoint,
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 201, description = "Created: the endpoint and its `secret`, shown this once \
            (`Cache-Control: no-store`; `Location` is the endpoint's URL).", body = EndpointWithSecret),
        (status = 200, description = "A replay of an `Idempotency-Key` used in the last 24 hours: the \
            endpoint the first request created, without its secret (`Idempotent-Replayed: true`).",
            body = EndpointJson),
        (status = 400, response = problem::BadJsonBody),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::EndpointRefused),
        (status = 409, description = "The endpoint this `Idempotency-Key` created has been deleted since.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn create_endpoint(
    client: ApiClient,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let key = idempotency_key(&req)?;
    let body: CreateEndpoint = json_body(&req, payload).await?;
    let url = checked_url(&req, &state, &body.url).await?;
    let description = checked_description(&req, body.description.as_deref().unwrap_or(""))?;
    let filter = checked_types(&req, body.event_types.as_deref())?;
    let fresh = NewSecret::generate(&state.keyed);
    let new = NewEndpoint {
        url: &url,
        description: &description,
        filter: &filter,
        secret_salt: &fresh.salt,
    };
    let now = OffsetDateTime::now_utc();
    let store_error = |e| Problem::from_store(client.request_id(), e);
    let created = match key.as_deref() {
        None => state
            .store
            .create_endpoint(&new, now)
            .await
            .map_err(store_error)?,
        Some(key) => {
            let hash = request_hash(&url, &description, &filter);
            let once = IdempotencyKey {
                api_key_id: &client.key_id,
                key,
                request_hash: &hash,
            };
            match state
                .store
                .create_endpoint_once(&once, &new, now)
                .await
                .map_err(store_error)?
            {
                CreatedOnce::Created(row) => row,
                CreatedOnce::Replayed {
                    same_request: false,
                    ..
                } => {
                    return Err(unprocessable(
                        &req,
                        "Idempotency-Key was used for a different request in the last 24 hours: use a new key for a new request.",
                    ));
                }
                CreatedOnce::Replayed { endpoint: None, .. } => {
                    return Err(Problem::new(
                        &req,
                        StatusCode::CONFLICT,
                        "The endpoint this Idempotency-Key created has been deleted since.",
                    ));
                }
                CreatedOnce::Replayed {
                    endpoint: Some(row),
                    ..
                } => {
                    let json = endpoint_json(&client, &state, &row).await?;
                    return Ok(HttpResponse::Ok()
                        .insert_header((IDEMPOTENT_REPLAYED, "true"))
                        .insert_header((header::LOCATION, location(&row.id)))
                        .json(json));
                }
            }
        }
    };
    tracing::info!(
        key = %client.describe(),
        endpoint = %created.id,
        request_id = %client.request_id(),
        "webhook endpoint created"
    );
    let body = EndpointWithSecret {
        endpoint: endpoint_json(&client, &state, &created).await?,
        secret: fresh.secret.expose_secret().to_owned(),
    };
    let mut answer = secret_answer(StatusCode::CREATED, &body);
    if let Ok(value) = header::HeaderValue::from_str(&location(&created.id)) {
        answer.headers_mut().insert(header::LOCATION, value);
    }
    Ok(answer)
}

fn location(id: &str) -> String {
    format!("/api/v1/webhook-endpoints/{id}")
}

/// One webhook endpoint.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints/{id}",
    operation_id = "get_webhook_endpoint",
    tag = "webhooks",
    params(EndpointPath),
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The endpoint (never its secret).", body = EndpointJson),
        (status = 404, description = "There is no webhook endpoint with this id.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn show_endpoint(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let row = endpoint_of(&req, &client, &state, &id).await?;
    Ok(HttpResponse::Ok().json(endpoint_json(&client, &state, &row).await?))
}

/// Change a webhook endpoint.
///
/// `url`, `description`, `event_types` and `state` (`enabled` or `paused`; enabling also
/// re-enables an endpoint disabled by a 410). Every field is checked before anything is
/// written.
#[utoipa::path(
    patch,
    path = "/api/v1/webhook-endpoints/{id}",
    operation_id = "update_webhook_endpoint",
    tag = "webhooks",
    params(EndpointPath),
    request_body = UpdateEndpoint,
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The endpoint as changed.", body = EndpointJson),
        (status = 400, response = problem::BadJsonBody),
        (status = 413, response = problem::PayloadTooLarge),
        (status = 415, response = problem::UnsupportedMediaType),
        (status = 422, response = problem::EndpointRefused),
        (status = 404, description = "There is no webhook endpoint with this id.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn update_endpoint(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let row = endpoint_of(&req, &client, &state, &id).await?;
    let body: UpdateEndpoint = json_body(&req, payload).await?;
    let url = match body.url.as_deref() {
        Some(raw) => Some(checked_url(&req, &state, raw).await?),
        None => None,
    };
    let description = body
        .description
        .as_deref()
        .map(|d| checked_description(&req, d))
        .transpose()?;
    let filter = body
        .event_types
        .as_ref()
        .map(|names| checked_types(&req, names.as_deref()))
        .transpose()?;
    let new_state = match body.state.as_deref() {
        None => None,
        Some("enabled") => Some(EndpointState::Enabled),
        Some("paused") => Some(EndpointState::Paused),
        Some(other) => {
            return Err(unprocessable(
                &req,
                format!(
                    "state: '{other}' is not one an endpoint can be set to (enabled or paused)."
                ),
            ));
        }
    };
    let now = OffsetDateTime::now_utc();
    let store_error = |e| Problem::from_store(client.request_id(), e);
    let reason = format!("Paused by {}.", client.describe());
    let change = EndpointChange {
        url: url.as_deref(),
        description: description.as_deref(),
        filter: filter.as_ref(),
        state: new_state.map(|s| (s, Some(reason.as_str()))),
    };
    state
        .store
        .update_endpoint(&row.id, &change, now)
        .await
        .map_err(store_error)?
        .ok_or_else(|| no_such_endpoint(&req))?;
    if new_state == Some(EndpointState::Enabled) {
        wake_delivery_worker(&state);
    }
    tracing::info!(key = %client.describe(), endpoint = %row.id, "webhook endpoint changed");
    let row = endpoint_of(&req, &client, &state, &row.id).await?;
    Ok(HttpResponse::Ok().json(endpoint_json(&client, &state, &row).await?))
}

/// Delete a webhook endpoint.
///
/// The endpoint and its deliveries (pending ones are never sent); the events stay.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook-endpoints/{id}",
    operation_id = "delete_webhook_endpoint",
    tag = "webhooks",
    params(EndpointPath),
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "There is no webhook endpoint with this id.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn delete_endpoint(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let deleted = state
        .store
        .delete_endpoint(&id)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    if !deleted {
        return Err(no_such_endpoint(&req));
    }
    tracing::info!(key = %client.describe(), endpoint = %id, "webhook endpoint deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook endpoint's secret.
///
/// A new secret, shown this once; the previous one stays valid for 24 hours
/// (`previous_secret_expires_at`), during which deliveries carry both signatures.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-endpoints/{id}/rotate-secret",
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    params(EndpointPath),
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The endpoint and its new `secret`, shown this once \
            (`Cache-Control: no-store`).", body = EndpointWithSecret),
        (status = 404, description = "There is no webhook endpoint with this id.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn rotate_secret(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let fresh = NewSecret::generate(&state.keyed);
    let now = OffsetDateTime::now_utc();
    let rotated = state
        .store
        .rotate_endpoint_secret(&id, &fresh.salt, now + SECRET_OVERLAP, now)
        .await
        .map_err(|e| Problem::from_store(client.request_id(), e))?;
    if !rotated {
        return Err(no_such_endpoint(&req));
    }
    tracing::info!(key = %client.describe(), endpoint = %id, "webhook secret rotated");
    let row = endpoint_of(&req, &client, &state, &id).await?;
    let body = EndpointWithSecret {
        endpoint: endpoint_json(&client, &state, &row).await?,
        secret: fresh.secret.expose_secret().to_owned(),
    };
    Ok(secret_answer(StatusCode::OK, &body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveriesQuery {
    /// Deliveries per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged.
    cursor: Option<String>,
    /// Only deliveries with this status.
    #[param(schema_with = delivery_status)]
    status: Option<String>,
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

fn bad_cursor(req: &HttpRequest) -> Problem {
    Problem::bad_request(
        req,
        "cursor is not one this API gave out: pass next_cursor back unchanged.",
    )
}

/// `prefix` followed by hex groups of these lengths joined by `_` (`dlv_<32>_<32>`,
/// `evt_<32>`): the only ids a cursor can be.
fn is_id(raw: &str, prefix: &str, groups: &[usize]) -> bool {
    let Some(rest) = raw.strip_prefix(prefix) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('_').collect();
    parts.len() == groups.len()
        && parts.iter().zip(groups).all(|(part, len)| {
            part.len() == *len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// A delivery id as the dashboard and the API take it in a cursor.
pub fn is_delivery_id(raw: &str) -> bool {
    is_id(raw, "dlv_", &[32, 32])
}

/// List a webhook endpoint's deliveries.
///
/// Newest first, paged by cursor, with an optional `status`.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-endpoints/{id}/deliveries",
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(EndpointPath, DeliveriesQuery),
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "A page of the endpoint's deliveries, newest first.", body = DeliveryPage),
        (status = 400, response = problem::BadRequest),
        (status = 404, description = "There is no webhook endpoint with this id.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn deliveries(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let query = web::Query::<DeliveriesQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(&req, format!("Bad query: {e}.")))?
        .into_inner();
    let limit = parse_limit(&req, query.limit.as_deref())?;
    let status = match query.status.as_deref() {
        None => None,
        Some(s @ ("pending" | "succeeded" | "failed")) => Some(s.to_owned()),
        Some(_) => {
            return Err(Problem::bad_request(
                &req,
                "status must be one of pending, succeeded, failed.",
            ));
        }
    };
    let before = match query.cursor.as_deref() {
        None => None,
        Some(raw) if is_delivery_id(raw) => Some(raw),
        Some(_) => return Err(bad_cursor(&req)),
    };
    let row = endpoint_of(&req, &client, &state, &id).await?;
    let filter = DeliveryFilter {
        endpoint_id: Some(row.id),
        tenant_id: None,
        status,
    };
    let (rows, more) = super::take_page(
        state
            .store
            .deliveries(&filter, before, limit + 1)
            .await
            .map_err(|e| Problem::from_store(client.request_id(), e))?,
        limit,
    );
    let next_cursor = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    Ok(HttpResponse::Ok().json(DeliveryPage {
        data: rows.into_iter().map(DeliveryJson::of).collect(),
        next_cursor,
    }))
}

/// Resend a webhook delivery.
///
/// The delivery is pending again, due now, at the start of the retry schedule, whatever
/// its status.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-deliveries/{id}/resend",
    operation_id = "resend_webhook_delivery",
    tag = "webhooks",
    params(DeliveryPath),
    security(("api_key" = ["webhooks:manage"])),
    responses(
        (status = 202, description = "Queued again: the delivery as it now stands.", body = DeliveryJson),
        (status = 404, description = "There is no webhook delivery with this id.",
            body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn resend(
    client: ApiClient,
    id: web::Path<String>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::WebhooksManage)?;
    let store_error = |e| Problem::from_store(client.request_id(), e);
    let no_such_delivery = || {
        Problem::new(
            &req,
            StatusCode::NOT_FOUND,
            "There is no webhook delivery with this id.",
        )
    };
    if !state
        .store
        .resend_delivery(&id, OffsetDateTime::now_utc())
        .await
        .map_err(store_error)?
    {
        return Err(no_such_delivery());
    }
    wake_delivery_worker(&state);
    tracing::info!(key = %client.describe(), delivery = %id, "webhook delivery resent");
    let row = state
        .store
        .delivery(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(no_such_delivery)?;
    Ok(HttpResponse::Accepted().json(DeliveryJson::of(row)))
}

fn event_type_filter() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(event_type_names()))
        .description(Some("Only events of this type."))
        .build()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// `next_cursor` of a previous page, unchanged: the events after it.
    cursor: Option<String>,
    #[serde(rename = "type")]
    #[param(schema_with = event_type_filter)]
    event_type: Option<String>,
    /// Only this tenant's events (a GUID).
    #[param(format = "uuid")]
    tenant_id: Option<String>,
}

/// An event, exactly the body each webhook delivery of it carries. New types may be added,
/// and new fields in `data`: ignore what you do not know.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = WebhookEvent)]
pub struct WebhookEventJson {
    /// `evt_` and 32 hex digits; also the `webhook-id` header of its deliveries.
    pub id: String,
    /// `tenant.connected`, `tenant.status_changed`, `tenant.consent_declined`,
    /// `app.credential_alert`, or a type added later.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened (RFC 3339 UTC).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// What happened; its shape depends on `type` (the README's event catalogue).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// A page of the event feed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WebhookEventFeed)]
pub struct EventFeed {
    /// Oldest first.
    pub data: Vec<WebhookEventJson>,
    /// Pass as `cursor` to get the events after this page. Given on the last page too
    /// (the cursor passed in, when the page is empty): keep it and poll again later.
    /// Null only while there are no events at all.
    pub next_cursor: Option<String>,
    /// Whether more events follow right now.
    pub has_more: bool,
}

/// The event as delivered: the stored body, which the outbox wrote in this shape.
fn event_json(row: &WebhookEventRow) -> WebhookEventJson {
    serde_json::from_str(&row.payload).unwrap_or_else(|_| WebhookEventJson {
        id: row.id.clone(),
        event_type: row.event_type.clone(),
        timestamp: row.created_at.clone(),
        data: serde_json::Value::Null,
    })
}

/// The event feed: what webhooks deliver, to poll.
///
/// The outbox, oldest first after `cursor`, optionally of one `type` and one `tenant_id`:
/// for a system that polls instead of (or beside) receiving webhooks.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(EventsQuery),
    security(("api_key" = ["tenants:read"])),
    responses(
        (status = 200, description = "A page of events, oldest first.", body = EventFeed),
        (status = 400, response = problem::BadRequest),
        (status = 401, response = problem::Unauthorized),
        (status = 403, response = problem::Forbidden),
        (status = 429, response = problem::TooManyRequests),
        (status = 500, response = problem::InternalServerError),
        (status = 503, response = problem::ServiceUnavailable),
    )
)]
pub async fn events(
    client: ApiClient,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    client.require(Scope::TenantsRead)?;
    let query = web::Query::<EventsQuery>::from_query(req.query_string())
        .map_err(|e| Problem::bad_request(&req, format!("Bad query: {e}.")))?
        .into_inner();
    let limit = parse_limit(&req, query.limit.as_deref())?;
    let after = match query.cursor.as_deref() {
        None => None,
        Some(raw) if is_id(raw, "evt_", &[32]) => Some(raw),
        Some(_) => return Err(bad_cursor(&req)),
    };
    let event_type = match query.event_type.as_deref() {
        None => None,
        Some(raw) => Some(EventType::parse(raw).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            Problem::bad_request(
                &req,
                format!(
                    "type: there is no event type '{raw}' (known: {}).",
                    known.join(", ")
                ),
            )
        })?),
    };
    let tenant = match query.tenant_id.as_deref() {
        None => None,
        Some(raw) => Some(TenantId::parse(raw).ok_or_else(|| {
            Problem::bad_request(&req, "tenant_id must be a tenant id (a GUID).")
        })?),
    };
    let (rows, has_more) = super::take_page(
        state
            .store
            .webhook_events(after, event_type, tenant, limit + 1)
            .await
            .map_err(|e| Problem::from_store(client.request_id(), e))?,
        limit,
    );
    let next_cursor = rows
        .last()
        .map(|r| r.id.clone())
        .or_else(|| after.map(str::to_owned));
    Ok(HttpResponse::Ok().json(EventFeed {
        data: rows.iter().map(event_json).collect(),
        next_cursor,
        has_more,
    }))
}

/// Deliveries became due now (a resend, an endpoint enabled again): the delivery worker
/// looks for them at once rather than at its next poll.
pub(crate) fn wake_delivery_worker(state: &AppState) {
    state.webhooks.wake();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_ids_of_the_right_shape_only() {
        let hex = "0192f3a4b5c67d8e9f00112233445566";
        assert!(is_delivery_id(&format!("dlv_{hex}_{hex}")));
        assert!(!is_delivery_id(&format!("dlv_{hex}")));
        assert!(!is_delivery_id(&format!(
            "dlv_{hex}_{}",
            hex.to_uppercase()
        )));
        assert!(!is_delivery_id(&format!("evt_{hex}_{hex}")));
        assert!(is_id(&format!("evt_{hex}"), "evt_", &[32]));
        assert!(!is_id("evt_' or 1=1 --", "evt_", &[32]));
    }

    #[test]
    fn absent_and_null_event_types_differ_in_a_patch() {
        let absent: UpdateEndpoint = serde_json::from_str("{}").unwrap();
        let null: UpdateEndpoint = serde_json::from_str(r#"{"event_types":null}"#).unwrap();
        let list: UpdateEndpoint =
            serde_json::from_str(r#"{"event_types":["tenant.connected"]}"#).unwrap();

        assert_eq!(absent.event_types, None);
        assert_eq!(null.event_types, Some(None));
        assert_eq!(
            list.event_types,
            Some(Some(vec!["tenant.connected".into()]))
        );
        assert!(serde_json::from_str::<UpdateEndpoint>(r#"{"secret":"x"}"#).is_err());
    }
}

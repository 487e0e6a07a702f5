//! Webhook endpoints on the dashboard: the list and a form to create one (its secret is
//! shown once, on the answer page), an endpoint's page (edit, pause and enable, rotate the
//! secret, delete after a confirmation) with its delivery log, and "resend" on a delivery.

use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use secrecy::ExposeSecret;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use super::tenants::short;
use crate::domain::TenantId;
use crate::domain::webhook::{EndpointState, EventFilter, EventType};
use crate::store::{AuditAction, Outcome};
use crate::store::{
    DeliveryCounts, DeliveryFilter, DeliveryRow, EndpointChange, EndpointRow, NewEndpoint,
};
use crate::web::api::{is_delivery_id, wake_delivery_worker};
use crate::web::format::{Stamp, relative_and_absolute};
use crate::web::routes::page;
use crate::web::{AppState, WebError};
use crate::webhooks::endpoints::{
    NewSecret, SECRET_OVERLAP, parse_description, parse_event_types, vet_url,
};

/// Deliveries per page of a log.
pub const LOG_PAGE: i64 = 50;

/// An endpoint as the dashboard shows it: never its secret.
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub description: String,
    /// Empty for every type.
    pub types: Vec<&'static str>,
    pub state: &'static str,
    pub state_reason: Option<String>,
    pub counts: DeliveryCounts,
    pub created_at: Stamp,
    /// While a rotation's overlap lasts: when the previous secret stops being valid.
    pub previous_secret_until: Option<String>,
}

fn endpoint_view(row: &EndpointRow, counts: DeliveryCounts) -> EndpointView {
    let filter = row.filter();
    let now = OffsetDateTime::now_utc();
    EndpointView {
        id: row.id.clone(),
        url: row.url.clone(),
        description: row.description.clone(),
        types: filter.types().iter().map(|t| t.as_str()).collect(),
        state: row.state().as_str(),
        state_reason: row.state_reason.clone(),
        counts,
        created_at: Stamp::of(&row.created_at, now),
        previous_secret_until: row
            .previous_salt_at(now)
            .and(row.previous_secret_expires_at.as_deref())
            .map(|until| relative_and_absolute(until, now)),
    }
}

/// One delivery in a log.
pub struct DeliveryView {
    pub id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub endpoint_url: String,
    pub tenant_id: Option<String>,
    /// The tenant's name from Graph, when known.
    pub tenant_name: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<Stamp>,
    pub last_attempt_at: Option<Stamp>,
    pub last_status_code: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Stamp,
}

/// The page of deliveries `filter` selects older than `before`, with the tenants' names,
/// and the cursor of the next page.
pub async fn delivery_log(
    state: &AppState,
    filter: &DeliveryFilter,
    before: Option<&str>,
) -> Result<(Vec<DeliveryView>, Option<String>), WebError> {
    let before = before.filter(|b| is_delivery_id(b));
    let mut rows = state.store.deliveries(filter, before, LOG_PAGE + 1).await?;
    let more = rows.len() as i64 > LOG_PAGE;
    rows.truncate(usize::try_from(LOG_PAGE).unwrap_or(0));
    let next = more.then(|| rows.last().map(|r| r.id.clone())).flatten();
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    for tenant in rows.iter().filter_map(|r| r.tenant_id.as_deref()) {
        if names.contains_key(tenant) {
            continue;
        }
        let name = match TenantId::parse(tenant) {
            Some(id) => state
                .store
                .tenant(id)
                .await?
                .and_then(|t| t.name().map(str::to_owned)),
            None => None,
        };
        names.insert(tenant.to_owned(), name);
    }
    let now = OffsetDateTime::now_utc();
    let views = rows
        .into_iter()
        .map(|r: DeliveryRow| DeliveryView {
            tenant_name: r
                .tenant_id
                .as_ref()
                .and_then(|t| names.get(t).cloned().flatten()),
            id: r.id,
            event_type: r.event_type,
            endpoint_id: r.endpoint_id,
            endpoint_url: r.endpoint_url,
            tenant_id: r.tenant_id,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.as_deref().map(|at| Stamp::of(at, now)),
            last_attempt_at: r.last_attempt_at.as_deref().map(|at| Stamp::of(at, now)),
            last_status_code: r.last_status_code,
            last_duration_ms: r.last_duration_ms,
            last_error: r.last_error,
            created_at: Stamp::of(&r.created_at, now),
        })
        .collect();
    Ok((views, next))
}

/// An event type as a checkbox.
pub struct TypeOption {
    pub name: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

fn type_options(chosen: &[&str]) -> Vec<TypeOption> {
    EventType::ALL
        .iter()
        .map(|t| TypeOption {
            name: t.as_str(),
            description: t.description(),
            checked: chosen.contains(&t.as_str()),
        })
        .collect()
}

/// What the create or edit form holds, kept to fill the form again after an error.
pub struct FormValues {
    pub url: String,
    pub description: String,
    pub all_types: bool,
    pub types: Vec<TypeOption>,
}

impl FormValues {
    fn empty() -> FormValues {
        FormValues {
            url: String::new(),
            description: String::new(),
            all_types: true,
            types: type_options(&[]),
        }
    }

    fn of(row: &EndpointRow) -> FormValues {
        let filter = row.filter();
        let chosen: Vec<&str> = filter.types().iter().map(|t| t.as_str()).collect();
        FormValues {
            url: row.url.clone(),
            description: row.description.clone(),
            all_types: filter.is_all(),
            types: type_options(&chosen),
        }
    }
}

/// The create and edit forms' fields: `csrf`, `url`, `description`, `types` (`all` or
/// `chosen`) and one `event_type` per ticked box.
struct EndpointForm {
    fields: Vec<(String, String)>,
}

impl EndpointForm {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn values(&self) -> FormValues {
        let chosen: Vec<&str> = self
            .fields
            .iter()
            .filter(|(k, _)| k == "event_type")
            .map(|(_, v)| v.as_str())
            .collect();
        FormValues {
            url: self.field("url").unwrap_or_default().to_owned(),
            description: self.field("description").unwrap_or_default().to_owned(),
            all_types: self.field("types") != Some("chosen"),
            types: type_options(&chosen),
        }
    }

    /// The URL, description and filter, each checked as the API checks them; the first
    /// problem in words.
    async fn parse(&self, allow_private: bool) -> Result<(String, String, EventFilter), String> {
        let url = vet_url(self.field("url").unwrap_or_default(), allow_private)
            .await
            .map_err(|why| {
                let why = why.to_string();
                format!(
                    "The URL cannot be used: {}.",
                    why.strip_prefix("url ").unwrap_or(&why)
                )
            })?;
        let description = parse_description(self.field("description").unwrap_or_default())
            .map_err(|why| format!("The {why}."))?;
        let filter = if self.field("types") == Some("chosen") {
            let names: Vec<String> = self
                .fields
                .iter()
                .filter(|(k, _)| k == "event_type")
                .map(|(_, v)| v.clone())
                .collect();
            parse_event_types(&names)
                .map_err(|_| "Tick at least one event type, or choose every type.".to_owned())?
        } else {
            EventFilter::all()
        };
        Ok((url.into(), description, filter))
    }
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct ListPage {
    operator: String,
    csrf: String,
    endpoints: Vec<EndpointView>,
    form: FormValues,
    error: Option<String>,
    allow_private: bool,
}

async fn render_list(
    operator: &Operator,
    state: &AppState,
    status: StatusCode,
    form: FormValues,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let rows = state.store.endpoints().await?;
    let mut endpoints = Vec::with_capacity(rows.len());
    for row in &rows {
        endpoints.push(endpoint_view(
            row,
            state.store.delivery_counts(&row.id).await?,
        ));
    }
    let template = ListPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        endpoints,
        form,
        error,
        allow_private: state.settings.webhook_allow_private,
    };
    page(status, template.render())
}

pub async fn list(
    operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    render_list(&operator, &state, StatusCode::OK, FormValues::empty(), None).await
}

/// The page that shows a secret, this once (after a create or a rotation).
#[derive(Template)]
#[template(path = "admin/webhook_secret.html")]
struct SecretPage {
    operator: String,
    csrf: String,
    endpoint: EndpointView,
    secret: String,
    /// A rotation: the previous secret stays valid until then.
    rotated_until: Option<String>,
}

pub async fn create(
    operator: Operator,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = EndpointForm {
        fields: form.into_inner(),
    };
    operator.check_csrf(form.field("csrf"))?;
    let (url, description, filter) = match form.parse(state.settings.webhook_allow_private).await {
        Ok(parsed) => parsed,
        Err(why) => {
            return render_list(
                &operator,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                form.values(),
                Some(why),
            )
            .await;
        }
    };
    let fresh = NewSecret::generate(&state.keyed);
    let row = state
        .store
        .create_endpoint(
            &NewEndpoint {
                url: &url,
                description: &description,
                filter: &filter,
                secret_salt: &fresh.salt,
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    tracing::info!(operator = %operator.name, endpoint = %row.id, "webhook endpoint created");
    operator
        .audit(
            &state,
            AuditAction::WebhookCreate,
            &row.id,
            Outcome::Success,
        )
        .await;
    // The answer page, not a redirect: the secret is shown nowhere else.
    secret_page(&operator, &row, fresh, None)
}

fn secret_page(
    operator: &Operator,
    row: &EndpointRow,
    fresh: NewSecret,
    rotated_until: Option<String>,
) -> Result<HttpResponse, WebError> {
    let template = SecretPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        endpoint: endpoint_view(row, DeliveryCounts::default()),
        secret: fresh.secret.expose_secret().to_owned(),
        rotated_until,
    };
    let mut response = page(StatusCode::OK, template.render())?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
struct EndpointPage {
    operator: String,
    csrf: String,
    endpoint: EndpointView,
    form: FormValues,
    error: Option<String>,
    deliveries: Vec<DeliveryView>,
    /// The cursor of the next (older) page of the log.
    next: Option<String>,
    /// Whether this is a later page of the log.
    paged: bool,
    /// Where a resend comes back to.
    back: &'static str,
    /// The log shows tenants, not endpoints: they are all this one.
    show_endpoint: bool,
    overlap_hours: i64,
}

#[derive(Deserialize)]
pub struct LogQuery {
    before: Option<String>,
}

async fn render_endpoint(
    operator: &Operator,
    state: &AppState,
    row: &EndpointRow,
    before: Option<&str>,
    status: StatusCode,
    form: FormValues,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let filter = DeliveryFilter {
        endpoint_id: Some(row.id.clone()),
        ..DeliveryFilter::default()
    };
    let (deliveries, next) = delivery_log(state, &filter, before).await?;
    let template = EndpointPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        endpoint: endpoint_view(row, state.store.delivery_counts(&row.id).await?),
        form,
        error,
        deliveries,
        next,
        paged: before.is_some(),
        back: "endpoint",
        show_endpoint: false,
        overlap_hours: SECRET_OVERLAP.whole_hours(),
    };
    page(status, template.render())
}

async fn endpoint_row(state: &AppState, id: &str) -> Result<EndpointRow, WebError> {
    state.store.endpoint(id).await?.ok_or(WebError::NotFound)
}

fn to_endpoint(id: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/admin/webhooks/{id}")))
        .finish()
}

pub async fn show(
    operator: Operator,
    id: web::Path<String>,
    query: web::Query<LogQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let row = endpoint_row(&state, &id).await?;
    let form = FormValues::of(&row);
    render_endpoint(
        &operator,
        &state,
        &row,
        query.before.as_deref(),
        StatusCode::OK,
        form,
        None,
    )
    .await
}

/// The edit form: URL, description and event types.
pub async fn update(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = EndpointForm {
        fields: form.into_inner(),
    };
    operator.check_csrf(form.field("csrf"))?;
    let row = endpoint_row(&state, &id).await?;
    let (url, description, filter) = match form.parse(state.settings.webhook_allow_private).await {
        Ok(parsed) => parsed,
        Err(why) => {
            return render_endpoint(
                &operator,
                &state,
                &row,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                form.values(),
                Some(why),
            )
            .await;
        }
    };
    let change = EndpointChange {
        url: Some(&url),
        description: Some(&description),
        filter: Some(&filter),
        state: None,
    };
    state
        .store
        .update_endpoint(&row.id, &change, OffsetDateTime::now_utc())
        .await?
        .ok_or(WebError::NotFound)?;
    tracing::info!(operator = %operator.name, endpoint = %row.id, "webhook endpoint changed");
    operator
        .audit(
            &state,
            AuditAction::WebhookChange,
            &row.id,
            Outcome::Success,
        )
        .await;
    Ok(to_endpoint(&row.id))
}

pub async fn pause(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let reason = format!("Paused by {} on the dashboard.", operator.name);
    set_state(&operator, &state, &id, EndpointState::Paused, &reason).await
}

/// Enables a paused endpoint, or one disabled after it answered 410 Gone: its waiting
/// deliveries are due at once.
pub async fn enable(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    set_state(&operator, &state, &id, EndpointState::Enabled, "").await
}

async fn set_state(
    operator: &Operator,
    state: &AppState,
    id: &str,
    to: EndpointState,
    reason: &str,
) -> Result<HttpResponse, WebError> {
    if !state
        .store
        .set_endpoint_state(id, to, Some(reason), OffsetDateTime::now_utc())
        .await?
    {
        return Err(WebError::NotFound);
    }
    if to == EndpointState::Enabled {
        wake_delivery_worker(state);
    }
    tracing::info!(operator = %operator.name, endpoint = %id, state = to.as_str(), "webhook endpoint state set");
    operator
        .audit(
            state,
            if to == EndpointState::Enabled {
                AuditAction::WebhookEnable
            } else {
                AuditAction::WebhookPause
            },
            id,
            Outcome::Success,
        )
        .await;
    Ok(to_endpoint(id))
}

/// A new secret, shown this once; the previous one stays valid for the overlap.
pub async fn rotate(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let fresh = NewSecret::generate(&state.keyed);
    let now = OffsetDateTime::now_utc();
    let until = now + SECRET_OVERLAP;
    if !state
        .store
        .rotate_endpoint_secret(&id, &fresh.salt, until, now)
        .await?
    {
        return Err(WebError::NotFound);
    }
    tracing::info!(operator = %operator.name, endpoint = %id, "webhook secret rotated");
    operator
        .audit(&state, AuditAction::WebhookRotate, &id, Outcome::Success)
        .await;
    let row = endpoint_row(&state, &id).await?;
    secret_page(
        &operator,
        &row,
        fresh,
        Some(short(&crate::store::ts(until))),
    )
}

#[derive(Template)]
#[template(path = "admin/webhook_delete.html")]
struct DeletePage {
    operator: String,
    csrf: String,
    endpoint: EndpointView,
}

/// The confirmation page of a deletion.
pub async fn confirm_delete(
    operator: Operator,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let row = endpoint_row(&state, &id).await?;
    let template = DeletePage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        endpoint: endpoint_view(&row, state.store.delivery_counts(&row.id).await?),
    };
    page(StatusCode::OK, template.render())
}

pub async fn delete(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    if !state.store.delete_endpoint(&id).await? {
        return Err(WebError::NotFound);
    }
    tracing::info!(operator = %operator.name, endpoint = %id, "webhook endpoint deleted");
    operator
        .audit(&state, AuditAction::WebhookDelete, &id, Outcome::Success)
        .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/webhooks"))
        .finish())
}

#[derive(Deserialize)]
pub struct ResendForm {
    csrf: Option<String>,
    /// `endpoint` or `tenant`: which log to come back to.
    back: Option<String>,
}

/// Queues a delivery again, due now; back to the log it was resent from.
pub async fn resend(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<ResendForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let row = state.store.delivery(&id).await?.ok_or(WebError::NotFound)?;
    if !state
        .store
        .resend_delivery(&row.id, OffsetDateTime::now_utc())
        .await?
    {
        return Err(WebError::NotFound);
    }
    wake_delivery_worker(&state);
    tracing::info!(operator = %operator.name, delivery = %row.id, "webhook delivery resent");
    operator
        .audit(
            &state,
            AuditAction::WebhookResend,
            &row.id,
            Outcome::Success,
        )
        .await;
    let back = match (form.back.as_deref(), row.tenant_id.as_deref()) {
        (Some("tenant"), Some(tenant)) => format!("/admin/tenants/{tenant}#deliveries-log"),
        _ => format!("/admin/webhooks/{}#deliveries-log", row.endpoint_id),
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, back))
        .finish())
}

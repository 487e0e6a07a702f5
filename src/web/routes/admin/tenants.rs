//! The tenant list (status filter and search) and a tenant's page with its event timeline
//! and a "verify now" action.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use crate::domain::{TenantId, TenantStatus};
use crate::store::{AuditAction, Outcome};
use crate::store::{EventRow, TenantFilter, TenantRow};
use crate::web::routes::{page, request_id};
use crate::web::{AppState, WebError};

/// A tenant as the dashboard shows it.
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub status: TenantStatus,
    pub consented_at: String,
    pub granted: Vec<String>,
    pub missing: Vec<String>,
    pub domains: Vec<String>,
    pub last_token: String,
    pub last_ok: Option<String>,
    pub last_error: Option<String>,
    pub last_failure: Option<String>,
    pub consecutive_failures: i64,
    pub next_verify_at: Option<String>,
}

fn view(t: &TenantRow, required: &[String]) -> TenantView {
    let granted = t.granted_roles();
    let missing = t.missing_permissions(required);
    let status = t.status().unwrap_or(TenantStatus::Failed);
    let last_token = match (&t.last_error_code, &t.last_token_ok_at) {
        (Some(code), _) => format!("failed: {code}"),
        (None, Some(at)) => format!("ok at {}", short(at)),
        (None, None) => "none yet".to_owned(),
    };
    TenantView {
        id: t.id.clone(),
        name: t.name().unwrap_or("(not verified)").to_owned(),
        status,
        consented_at: short(&t.consented_at),
        granted,
        missing,
        domains: t.verified_domains(),
        last_token,
        last_ok: t.last_token_ok_at.as_deref().map(short),
        last_error: t.last_error.clone(),
        last_failure: t.last_failure_at.as_deref().map(short),
        consecutive_failures: t.consecutive_failures,
        next_verify_at: t.next_verify_at.as_deref().map(short),
    }
}

/// `2026-11-21T05:02:03.123Z` → `2026-11-21 05:02:03 UTC`
pub(super) fn short(ts: &str) -> String {
    match ts.get(..19) {
        Some(head) => format!("{} UTC", head.replace('T', " ")),
        None => ts.to_owned(),
    }
}

pub struct EventView {
    pub at: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub detail: String,
    pub request_id: Option<String>,
    /// For a failure repeated check after check: "3 times, until …".
    pub repeats: Option<String>,
}

fn event_view(e: &EventRow) -> EventView {
    EventView {
        repeats: e
            .last_at
            .as_deref()
            .filter(|_| e.repeat_count > 1)
            .map(|last| format!("{} times, the last at {}", e.repeat_count, short(last))),
        at: short(&e.created_at),
        kind: e.kind.replace('_', " "),
        tenant_id: e.tenant_id.clone(),
        detail: e.detail.clone(),
        request_id: e.request_id.clone(),
    }
}

/// Warn this long before the app's certificate expires.
const CREDENTIAL_WARNING_DAYS: i64 = 30;

/// The app's credential in words, and whether it needs attention soon.
fn credential_line(state: &AppState) -> (String, bool) {
    let summary = state.entra.credential_summary();
    match summary.expires_at {
        None => (
            format!(
                "{} (Microsoft does not tell its holder when it expires: keep a note)",
                summary.kind
            ),
            false,
        ),
        Some(at) => {
            let days = (at - OffsetDateTime::now_utc()).whole_days();
            let when = short(&crate::store::ts(at));
            if days < 0 {
                (
                    format!(
                        "{} expired on {when}: renew it in the app registration now",
                        summary.kind
                    ),
                    true,
                )
            } else {
                (
                    format!("{} expires {when} (in {days} days)", summary.kind),
                    days <= CREDENTIAL_WARNING_DAYS,
                )
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct ListPage {
    credential: String,
    credential_warning: bool,
    operator: String,
    csrf: String,
    tenants: Vec<TenantView>,
    statuses: Vec<(TenantStatus, bool)>,
    any_status: bool,
    search: String,
    alert: Option<(&'static str, String)>,
    required: Vec<String>,
    events: Vec<EventView>,
    /// Whether tenants never verified are listed too (`?all=1`, or a status filter).
    all: bool,
    /// Refused callbacks that wrote nothing, since start: total and by reason.
    refused_total: u64,
    refused: Vec<(&'static str, u64)>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    all: Option<String>,
}

pub async fn list(
    operator: Operator,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let query = query.into_inner();
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            TenantStatus::parse(raw)
                .ok_or_else(|| WebError::BadRequest(format!("There is no status '{raw}'.")))?,
        ),
    };
    let search = query
        .q
        .map(|q| q.trim().chars().take(200).collect::<String>())
        .filter(|q| !q.is_empty());
    // Tenants never verified (a callback named them; Microsoft never confirmed) stay out
    // of the default list: anyone can create them, and they are purged after a week.
    let all = status.is_some() || query.all.as_deref().is_some_and(|a| !a.is_empty());
    let rows = state
        .store
        .list_tenants(&TenantFilter {
            status,
            search: search.clone(),
            limit: 500,
            verified_only: !all,
        })
        .await?;
    let (refused, refused_total) = state.refused_callbacks.totals();
    let events = state.store.recent_events(20).await?;
    let required = &state.settings.required_permissions;
    let (credential, credential_warning) = credential_line(&state);
    let template = ListPage {
        credential,
        credential_warning,
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        tenants: rows.iter().map(|t| view(t, required)).collect(),
        statuses: TenantStatus::ALL
            .iter()
            .map(|s| (*s, Some(*s) == status))
            .collect(),
        any_status: status.is_none(),
        search: search.unwrap_or_default(),
        alert: state
            .verifier
            .health
            .credential_alert()
            .map(|a| (a.headline, format!("{} (since {})", a.message, a.at))),
        required: required.clone(),
        events: events.iter().map(event_view).collect(),
        all,
        refused_total,
        refused,
    };
    page(StatusCode::OK, template.render())
}

#[derive(Template)]
#[template(path = "admin/tenant.html")]
struct TenantPage {
    /// From Graph, live; or why not.
    users: Result<u64, String>,
    operator: String,
    csrf: String,
    tenant: TenantView,
    events: Vec<EventView>,
    reconsent_link: String,
    alert: Option<(&'static str, String)>,
    claims: Vec<ClaimView>,
    /// The tenant's webhook deliveries, newest first, to every endpoint.
    deliveries: Vec<super::webhooks::DeliveryView>,
    /// The cursor of the next (older) page of deliveries.
    next: Option<String>,
    paged: bool,
    back: &'static str,
    show_endpoint: bool,
}

#[derive(Deserialize)]
pub struct TenantQuery {
    /// Deliveries older than this one (a page of the delivery log).
    deliveries_before: Option<String>,
}

/// What a sign-up said about itself: a claim, never the tenant's record.
pub struct ClaimView {
    pub signed_up_at: String,
    pub called_back_at: String,
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    pub domain_hint: Option<String>,
    pub client_addr: Option<String>,
    /// What the evidence says about it, in words.
    pub evidence: &'static str,
    /// Its callback is the latest before Microsoft first confirmed the consent.
    pub confirming: bool,
}

/// Claims with what Microsoft's answers say of each. The confirming claim is the latest
/// callback before the first successful check; when several callbacks fell in the same
/// verification window (the callback's `tenant` is typed by anyone, and consent takes a
/// while to propagate), the page says the window was contested rather than pretend to know.
fn claim_views(tenant: &TenantRow, claims: Vec<crate::store::ClaimRow>) -> Vec<ClaimView> {
    let window_end = tenant.verified_at.as_deref().unwrap_or("9999");
    let in_window = |at: &str| at >= tenant.consented_at.as_str() && at <= window_end;
    let contested = claims.iter().filter(|c| in_window(&c.consumed_at)).count() > 1;
    claims
        .into_iter()
        .map(|c| {
            let confirming = tenant.confirmed_by(&c);
            let evidence = if confirming && contested {
                "confirmed the consent (contested: other sign-ups named this tenant in the same window)"
            } else if confirming {
                "confirmed the consent: Microsoft first confirmed it after this callback"
            } else if tenant.verified_at.as_deref().is_some_and(|v| v < c.consumed_at.as_str()) {
                "after verification: proved nothing"
            } else if in_window(&c.consumed_at) {
                "in the verification window; not confirmed by Microsoft"
            } else {
                "not confirmed by Microsoft"
            };
            ClaimView {
                evidence,
                confirming,
                signed_up_at: short(&c.created_at),
                called_back_at: short(&c.consumed_at),
                organisation_name: c.organisation_name,
                contact_email: c.contact_email,
                domain_hint: c.domain_hint,
                client_addr: c.client_addr,
            }
        })
        .collect()
}

pub async fn show(
    operator: Operator,
    id: web::Path<String>,
    query: web::Query<TenantQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let id = TenantId::parse(&id).ok_or(WebError::NotFound)?;
    let tenant = state.store.tenant(id).await?.ok_or(WebError::NotFound)?;
    let before = query.deliveries_before.as_deref();
    let (deliveries, next) = super::webhooks::delivery_log(
        &state,
        &crate::store::DeliveryFilter {
            tenant_id: Some(id),
            ..Default::default()
        },
        before,
    )
    .await?;
    let events = state.store.events_for(id, 200).await?;
    let claims = claim_views(&tenant, state.store.claims_for(id).await?);
    let users = match tenant.status() {
        Some(TenantStatus::Active | TenantStatus::MissingPermissions | TenantStatus::Failing) => {
            match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                state.graph.user_count(id),
            )
            .await
            {
                Ok(Ok(n)) => Ok(n),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("Graph did not answer within 5 s".to_owned()),
            }
        }
        _ => Err("not asked: the tenant is not connected".to_owned()),
    };
    let template = TenantPage {
        users,
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        tenant: view(&tenant, &state.settings.required_permissions),
        events: events.iter().map(event_view).collect(),
        // Through consentry, so the new state is bound to the admin's own browser.
        reconsent_link: format!(
            "{}/reconsent/{id}",
            state.settings.public_url.as_str().trim_end_matches('/')
        ),
        alert: state
            .verifier
            .health
            .credential_alert()
            .map(|a| (a.headline, a.message)),
        claims,
        deliveries,
        next,
        paged: before.is_some(),
        back: "tenant",
        show_endpoint: true,
    };
    page(StatusCode::OK, template.render())
}

pub async fn verify_now(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let id = TenantId::parse(&id).ok_or(WebError::NotFound)?;
    let detail = format!("{} asked to verify the tenant now.", operator.name);
    if !state
        .store
        .request_verification(id, OffsetDateTime::now_utc(), detail, &request_id(&req))
        .await?
    {
        return Err(WebError::NotFound);
    }
    state.verifier.check_soon(id);
    operator
        .audit(
            &state,
            AuditAction::VerifyNow,
            &id.to_string(),
            Outcome::Success,
        )
        .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/admin/tenants/{id}"),
        ))
        .finish())
}

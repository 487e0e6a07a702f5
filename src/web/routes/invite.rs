//! `GET /invite/{token}`: an invitation's page, for the organisation an operator named;
//! `POST /invite/{token}`: starts its sign-up, bound to this browser and to the invitation.
//!
//! A link that does not work (never issued, expired, revoked, or used by another browser)
//! gets one page, whichever it is: a stranger guessing tokens learns nothing, and nothing
//! is written. While an invitation waits (created, opened) any browser may use it, since
//! its contact may forward it to the administrator who consents; once a callback of its
//! sign-up consented it, only that browser may: to try again while the check fails, or to
//! see the outcome once verified.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::signup::{SignupContext, describe, start_consent};
use super::{client_addr, page};
use crate::domain::RandomToken;
use crate::domain::invitation::{InvitedTenant, parse_tenant_hint};
use crate::store::{InvitationRow, InvitationStatus};
use crate::web::{AppState, WebError, cookies, csrf};

#[derive(Template)]
#[template(path = "signup/invitation.html")]
struct InvitationPage {
    organisation: String,
    /// The tenant id or domain the operator named, if any.
    tenant: Option<String>,
    permissions: Vec<(String, &'static str)>,
    csrf: String,
    minutes: u64,
    /// This browser's earlier consent was not confirmed: it may try again.
    retry: bool,
}

#[derive(Template)]
#[template(path = "signup/invitation_dead.html")]
struct DeadLink;

/// What a presented link may do for this browser.
enum Link {
    /// Waiting for its customer: show it, start sign-ups.
    Open(Box<InvitationRow>),
    /// Consented by this browser, not confirmed: it may try again.
    Retry(Box<InvitationRow>),
    /// Verified through this browser: its status page has the outcome.
    Done,
    /// Anything else, for anyone.
    Dead,
}

async fn resolve(req: &HttpRequest, state: &AppState, raw: &str) -> Result<Link, WebError> {
    let Some(token) = RandomToken::parse(raw) else {
        return Ok(Link::Dead);
    };
    let Some(invitation) = state
        .store
        .invitation_by_token(&state.keyed.hash("invitation", &token))
        .await?
    else {
        return Ok(Link::Dead);
    };
    let now = OffsetDateTime::now_utc();
    let status = invitation.status(now);
    Ok(match status {
        InvitationStatus::Created | InvitationStatus::Opened => Link::Open(Box::new(invitation)),
        InvitationStatus::Consented | InvitationStatus::Verified => {
            let consenting = state
                .store
                .invitation_consenting_binding(&invitation)
                .await?;
            let mine = consenting.is_some_and(|b| {
                cookies::bindings(req)
                    .iter()
                    .any(|own| state.keyed.hash("binding", own) == b)
            });
            let live = invitation.expires().is_some_and(|at| at > now);
            match (mine, status) {
                (true, InvitationStatus::Verified) => Link::Done,
                (true, _) if live => Link::Retry(Box::new(invitation)),
                _ => Link::Dead,
            }
        }
        InvitationStatus::Expired | InvitationStatus::Revoked => Link::Dead,
    })
}

fn dead() -> Result<HttpResponse, WebError> {
    page(StatusCode::NOT_FOUND, DeadLink.render())
}

fn to_status_page() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/consent/status"))
        .finish()
}

pub async fn show(
    req: HttpRequest,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let (invitation, retry) = match resolve(&req, &state, &token).await? {
        Link::Open(invitation) => {
            state
                .store
                .invitation_opened(&invitation.id, OffsetDateTime::now_utc())
                .await?;
            (invitation, false)
        }
        Link::Retry(invitation) => (invitation, true),
        Link::Done => return Ok(to_status_page()),
        Link::Dead => return dead(),
    };
    let (csrf_token, fresh) = csrf::form_token(&req);
    let template = InvitationPage {
        organisation: invitation.organisation_name.clone(),
        tenant: invitation.invited_tenant().map(|t| t.segment()),
        permissions: state
            .settings
            .required_permissions
            .iter()
            .map(|p| (p.clone(), describe(p)))
            .collect(),
        csrf: csrf_token.clone(),
        minutes: state.settings.state_lifetime.as_secs() / 60,
        retry,
    };
    let mut response = page(StatusCode::OK, template.render())?;
    if fresh {
        let _ = response.add_cookie(&cookies::form(&csrf_token, state.settings.secure_cookies()));
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: Option<String>,
    /// Only when the operator named no organisation.
    #[serde(default)]
    tenant_domain: Option<String>,
}

pub async fn start(
    req: HttpRequest,
    token: web::Path<String>,
    form: web::Form<StartForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    if !csrf::form_ok(&req, form.csrf.as_deref()) {
        return Err(WebError::Csrf);
    }
    state
        .signup_limit
        .acquire(&client_addr(&req))
        .map_err(|retry_after| WebError::TooManyRequests { retry_after })?;
    let invitation = match resolve(&req, &state, &token).await? {
        Link::Open(invitation) | Link::Retry(invitation) => invitation,
        Link::Done => return Ok(to_status_page()),
        Link::Dead => return dead(),
    };
    // The operator's words are the sign-up's claims; the organisation they named is where
    // Microsoft goes (the callback must then name that tenant).
    let tenant_hint = match invitation.invited_tenant() {
        Some(named) => Some(named.segment()),
        None => parse_tenant_hint(form.tenant_domain.as_deref().unwrap_or_default())
            .map_err(|e| WebError::BadRequest(e.to_owned()))?,
    };
    let now = OffsetDateTime::now_utc();
    state.store.invitation_opened(&invitation.id, now).await?;
    let context = SignupContext {
        organisation_name: Some(invitation.organisation_name.clone()),
        contact_email: Some(invitation.contact_email.clone()),
        tenant_hint,
        invitation_id: Some(invitation.id.clone()),
    };
    tracing::info!(
        invitation = %invitation.id,
        named = invitation.invited_tenant().is_some_and(|t| matches!(t, InvitedTenant::Id(_))),
        "sign-up started from an invitation"
    );
    start_consent(&req, &state, context).await
}

//! `GET /consent/status`: this browser's own onboarding, found through its binding cookie
//! (no id in the URL to guess or share). It refreshes itself until the outcome is known.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::page;
use crate::config::SignupSignIn;
use crate::domain::TenantStatus;
use crate::store::{InvitationRow, Onboarding, TenantRow, parse_ts};
use crate::web::{AppState, WebError, cookies, csrf};

#[derive(Template)]
#[template(path = "signup/status.html")]
struct StatusPage {
    status: TenantStatus,
    tenant_id: String,
    name: String,
    granted: Vec<String>,
    missing: Vec<String>,
    error: Option<String>,
    csrf: String,
    /// Who signed in with Microsoft for this browser's sign-up of the tenant.
    connected_by: Option<ConnectedBy>,
    /// Where "Consent again" posts: the sign-in first when sign-ups require it.
    consent_again: &'static str,
}

/// A person a validated ID token named, as the status page shows them.
struct ConnectedBy {
    label: String,
    username: Option<String>,
    at: String,
}

/// The outcome of an onboarding that came through an invitation.
#[derive(Template)]
#[template(path = "signup/invited.html")]
struct InvitedPage {
    /// `checking`, `connected`, `missing`, `not_confirmed` or `other`.
    phase: &'static str,
    status: TenantStatus,
    name: String,
    tenant_id: String,
    /// The tenant was verified before this invitation's consent: a re-consent.
    again: bool,
    granted: Vec<String>,
    missing: Vec<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "signup/recheck.html")]
struct Recheck {
    tenant_id: String,
}

pub async fn status(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let binding_hashes: Vec<String> = cookies::bindings(&req)
        .iter()
        .map(|b| state.keyed.hash("binding", b))
        .collect();
    if binding_hashes.is_empty() {
        return Err(WebError::NotFound);
    }
    let onboarding = state
        .store
        .onboarding_for_binding(&binding_hashes)
        .await?
        .ok_or(WebError::NotFound)?;
    // This browser's callback named a tenant that was verified before it, or that another
    // sign-up named in the same verification window: show nothing about it (the callback's
    // tenant is unauthenticated, so this may be anyone), whatever its state.
    let tenant = match onboarding {
        Onboarding::Owner(tenant) => tenant,
        Onboarding::Bystander { tenant_id } => {
            return page(StatusCode::OK, Recheck { tenant_id }.render());
        }
        Onboarding::Invited { tenant, invitation } => {
            return page(
                StatusCode::OK,
                invited(&state, &tenant, &invitation).render(),
            );
        }
    };
    let status = tenant.status().unwrap_or(TenantStatus::Failed);
    let granted = tenant.granted_roles();
    let missing = tenant.missing_permissions(&state.settings.required_permissions);
    let (csrf_token, fresh) = csrf::form_token(&req);
    let connected_by = state
        .store
        .signed_in_claim(&binding_hashes, &tenant.id)
        .await?
        .map(|(name, username, at)| ConnectedBy {
            label: name
                .clone()
                .or_else(|| username.clone())
                .unwrap_or_else(|| "a member".to_owned()),
            username: username.filter(|u| Some(u) != name.as_ref()),
            at,
        });
    let template = StatusPage {
        connected_by,
        consent_again: if state.settings.signup_sign_in == SignupSignIn::Required {
            "/signup/microsoft"
        } else {
            "/signup"
        },
        status,
        tenant_id: tenant.id.clone(),
        name: tenant.name().unwrap_or("your organisation").to_owned(),
        granted,
        missing,
        error: tenant.last_error.clone(),
        csrf: csrf_token.clone(),
    };
    let mut response = page(StatusCode::OK, template.render())?;
    if fresh {
        let _ = response.add_cookie(&cookies::form(&csrf_token, state.settings.secure_cookies()));
    }
    Ok(response)
}

/// What an invited administrator's browser sees: the invitation says whether its consent
/// was confirmed; the tenant (as the last check left it) says how things stand.
fn invited(state: &AppState, tenant: &TenantRow, invitation: &InvitationRow) -> InvitedPage {
    let status = tenant.status().unwrap_or(TenantStatus::Failed);
    let consented_at = invitation.consented_at.as_deref().unwrap_or_default();
    let again = tenant
        .verified_at
        .as_deref()
        .is_some_and(|verified| verified < consented_at);
    // Whether a check failed since this consent (an older error says nothing about it).
    let failed_since = invitation
        .failed_at
        .as_deref()
        .is_some_and(|at| at >= consented_at);
    let phase = if invitation.status == "verified" {
        match status {
            TenantStatus::Active => "connected",
            TenantStatus::MissingPermissions => "missing",
            _ => "other",
        }
    } else {
        // Consented, waiting for a check to confirm it. A re-consent takes a while to reach
        // Microsoft's token service: the verifier keeps asking until the verification
        // deadline, and so does this page.
        let deadline_passed = parse_ts(consented_at)
            .is_none_or(|at| at + state.settings.verify_deadline < time::OffsetDateTime::now_utc());
        if status == TenantStatus::Failed || (failed_since && deadline_passed) {
            "not_confirmed"
        } else {
            "checking"
        }
    };
    let error = if phase == "checking" && !failed_since {
        None
    } else {
        tenant.last_error.clone()
    };
    InvitedPage {
        phase,
        status,
        name: tenant
            .name()
            .unwrap_or(invitation.organisation_name.as_str())
            .to_owned(),
        tenant_id: tenant.id.clone(),
        again,
        granted: tenant.granted_roles(),
        missing: tenant.missing_permissions(&state.settings.required_permissions),
        error,
    }
}

//! `GET /consent/status`: this browser's own onboarding, found through its binding cookie
//! (no id in the URL to guess or share). It refreshes itself until the outcome is known.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::page;
use crate::domain::TenantStatus;
use crate::store::Onboarding;
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
    };
    let status = tenant.status().unwrap_or(TenantStatus::Failed);
    let granted = tenant.granted_roles();
    let missing = tenant.missing_permissions(&state.settings.required_permissions);
    let (csrf_token, fresh) = csrf::form_token(&req);
    let template = StatusPage {
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

//! `GET /consent/status`: this browser's own onboarding, found through its binding cookie
//! (no id in the URL to guess or share). It refreshes itself until the outcome is known.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::page;
use crate::domain::{RandomToken, TenantStatus};
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
    let Some(binding) = req
        .cookie(cookies::BINDING)
        .and_then(|c| RandomToken::parse(c.value()))
    else {
        return Err(WebError::NotFound);
    };
    let (tenant, owns) = state
        .store
        .onboarding_for_binding(&state.keyed.hash("binding", &binding))
        .await?
        .ok_or(WebError::NotFound)?;
    // This browser's callback named a tenant that another sign-up had already connected:
    // say it is being re-checked, and show nothing about it (the callback's tenant is
    // unauthenticated, so this may be anyone).
    if !owns {
        return page(
            StatusCode::OK,
            Recheck {
                tenant_id: tenant.id.clone(),
            }
            .render(),
        );
    }
    let status = tenant.status().unwrap_or(TenantStatus::Failed);
    let granted = tenant.granted_roles();
    let missing = state
        .settings
        .required_permissions
        .iter()
        .filter(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
        .cloned()
        .collect();
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

//! `GET /`: what the customer grants and a "Connect your organisation" button.
//! `POST /signup`: a new one-time `state`, bound to this browser, then off to Microsoft.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{client_addr, client_network, page};
use crate::domain::RandomToken;
use crate::store::NewConsentRequest;
use crate::web::{AppState, WebError, cookies, csrf};

#[derive(Template)]
#[template(path = "signup/landing.html")]
struct Landing {
    permissions: Vec<(String, &'static str)>,
    /// From `?tenant=`: an operator's re-consent link pre-fills it.
    tenant_hint: String,
    csrf: String,
    minutes: u64,
}

/// What the consent page will ask the customer's administrator to grant, in plain words.
fn describe(permission: &str) -> &'static str {
    match permission {
        "User.Read.All" => "read the profiles of everyone in your organisation",
        "User.ReadBasic.All" => {
            "read the names and email addresses of everyone in your organisation"
        }
        "Organization.Read.All" => "read your organisation's name, domains and settings",
        "Directory.Read.All" => "read your whole directory: users, groups and devices",
        "Group.Read.All" => "read your groups and their members",
        "GroupMember.Read.All" => "read which groups people belong to",
        "AuditLog.Read.All" => "read your sign-in and audit logs",
        "Mail.Read" => "read mail in every mailbox",
        "Calendars.Read" => "read every calendar",
        _ => "an application permission of Microsoft Graph",
    }
}

pub async fn landing(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let (token, fresh) = csrf::form_token(&req);
    let tenant_hint = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "tenant")
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .filter(|v| is_tenant_hint(v))
        .unwrap_or_default();
    let template = Landing {
        tenant_hint,
        permissions: state
            .settings
            .required_permissions
            .iter()
            .map(|p| (p.clone(), describe(p)))
            .collect(),
        csrf: token.clone(),
        minutes: state.settings.state_lifetime.as_secs() / 60,
    };
    let mut response = page(StatusCode::OK, template.render())?;
    if fresh {
        let _ = response.add_cookie(&cookies::form(&token, state.settings.secure_cookies()));
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct SignupForm {
    csrf: Option<String>,
    #[serde(default)]
    organisation_name: Option<String>,
    #[serde(default)]
    contact_email: Option<String>,
    #[serde(default)]
    tenant_domain: Option<String>,
}

/// A sign-up's optional fields, checked.
struct SignupContext {
    organisation_name: Option<String>,
    contact_email: Option<String>,
    /// A tenant GUID or domain, used as the `/{tenant}/adminconsent` segment.
    tenant_hint: Option<String>,
}

fn parse_form(form: SignupForm) -> Result<SignupContext, WebError> {
    let trimmed = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let organisation_name = trimmed(form.organisation_name);
    if organisation_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control))
    {
        return Err(WebError::BadRequest(
            "The organisation name must be at most 200 characters.".into(),
        ));
    }
    let contact_email = trimmed(form.contact_email);
    if let Some(email) = &contact_email {
        let ok = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(WebError::BadRequest(
                "The contact email does not look like an email address.".into(),
            ));
        }
    }
    let tenant_hint = trimmed(form.tenant_domain).map(|h| h.to_ascii_lowercase());
    if tenant_hint.as_deref().is_some_and(|h| !is_tenant_hint(h)) {
        return Err(WebError::BadRequest(
            "The tenant domain must look like contoso.onmicrosoft.com or contoso.com, or be a tenant ID.".into(),
        ));
    }
    Ok(SignupContext {
        organisation_name,
        contact_email,
        tenant_hint,
    })
}

/// A GUID or a DNS name: safe as a URL path segment.
fn is_tenant_hint(hint: &str) -> bool {
    if crate::domain::TenantId::parse(hint).is_some() {
        return true;
    }
    hint.len() <= 253
        && hint.contains('.')
        && hint.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

pub async fn submit(
    req: HttpRequest,
    form: web::Form<SignupForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    if !csrf::form_ok(&req, form.csrf.as_deref()) {
        return Err(WebError::Csrf);
    }
    let client = client_addr(&req);
    state
        .signup_limit
        .acquire(&client)
        .map_err(|retry_after| WebError::TooManyRequests { retry_after })?;
    let context = parse_form(form)?;
    start_consent(&req, &state, context).await
}

/// `GET /reconsent/{tenant}`: the link operators send a customer's administrator when
/// consent is missing or incomplete. It starts a sign-up bound to the admin's own browser
/// and goes straight to that tenant's adminconsent page (a bare adminconsent URL could not
/// carry a state bound to their browser). No form, so no CSRF token: it only starts a flow.
pub async fn reconsent(
    req: HttpRequest,
    tenant: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let tenant = crate::domain::TenantId::parse(&tenant).ok_or(WebError::NotFound)?;
    state
        .signup_limit
        .acquire(&client_addr(&req))
        .map_err(|retry_after| WebError::TooManyRequests { retry_after })?;
    let context = SignupContext {
        organisation_name: None,
        contact_email: None,
        tenant_hint: Some(tenant.to_string()),
    };
    start_consent(&req, &state, context).await
}

/// Stores a new state bound to this browser and sends the browser to Microsoft.
async fn start_consent(
    req: &HttpRequest,
    state: &AppState,
    context: SignupContext,
) -> Result<HttpResponse, WebError> {
    let client = client_addr(req);
    // One binding per browser, kept across sign-ups, re-consents and callbacks: a second
    // tab, Back-and-submit-again or a re-consent link reuses it, so every flow this browser
    // started stays valid (and a cross-site link to /reconsent cannot replace it).
    let binding = cookies::bindings(req)
        .into_iter()
        .next()
        .unwrap_or_else(RandomToken::generate);
    let consent_state = RandomToken::generate();
    let now = OffsetDateTime::now_utc();
    let lifetime = time::Duration::try_from(state.settings.state_lifetime)
        .unwrap_or(time::Duration::minutes(10));
    let stored = state
        .store
        .insert_consent_request(&NewConsentRequest {
            state_hash: state.keyed.hash("state", &consent_state),
            binding_hash: state.keyed.hash("binding", &binding),
            organisation_name: context.organisation_name,
            contact_email: context.contact_email,
            domain_hint: context.tenant_hint.clone(),
            client_addr: client,
            client_net: client_network(req),
            created_at: now,
            expires_at: now + lifetime,
        })
        .await?;
    if !stored {
        tracing::warn!("too many pending sign-ups; refusing new ones until some expire");
        return Err(WebError::Unavailable);
    }
    let location = state.entra.admin_consent_url(
        context.tenant_hint.as_deref(),
        &state.settings.redirect_uri(),
        consent_state.expose(),
    );
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .cookie(cookies::binding(
            binding.expose(),
            state.settings.secure_cookies(),
        ))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(org: &str, email: &str, domain: &str) -> SignupForm {
        SignupForm {
            csrf: None,
            organisation_name: Some(org.into()),
            contact_email: Some(email.into()),
            tenant_domain: Some(domain.into()),
        }
    }

    #[test]
    fn optional_fields_are_checked_and_trimmed() {
        let ok = parse_form(form(
            " Contoso ",
            "it@contoso.com",
            "Contoso.onmicrosoft.com",
        ))
        .unwrap();
        assert_eq!(ok.organisation_name.as_deref(), Some("Contoso"));
        assert_eq!(ok.tenant_hint.as_deref(), Some("contoso.onmicrosoft.com"));
        let empty = parse_form(form("", " ", "")).unwrap();
        assert!(
            empty.organisation_name.is_none()
                && empty.contact_email.is_none()
                && empty.tenant_hint.is_none()
        );
        assert!(parse_form(form("", "not-an-email", "")).is_err());
        assert!(parse_form(form("", "", "../../evil")).is_err());
        assert!(parse_form(form("", "", "contoso")).is_err());
        assert!(parse_form(form(&"x".repeat(201), "", "")).is_err());
        assert!(parse_form(form("", "", "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58")).is_ok());
    }
}

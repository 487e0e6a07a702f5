//! `GET /`: what the customer grants and a "Connect your organisation" button.
//! `POST /signup`: a new one-time `state`, bound to this browser, then off to Microsoft.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{client_addr, client_network, page};
use crate::config::SignupSignIn;
use crate::domain::RandomToken;
use crate::domain::invitation::{parse_contact_email, parse_organisation_name, parse_tenant_hint};
use crate::store::NewConsentRequest;
use crate::web::{AppState, WebError, cookies, csrf};

#[derive(Template)]
#[template(path = "signup/landing.html")]
struct Landing {
    permissions: Vec<(String, &'static str)>,
    csrf: String,
    minutes: u64,
    /// `off`, `optional` or `required` (`CONSENTRY_SIGNUP_SIGN_IN`).
    sign_in: &'static str,
}

/// What the consent page will ask the customer's administrator to grant, in plain words.
pub(super) fn describe(permission: &str) -> &'static str {
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
    let template = Landing {
        permissions: state
            .settings
            .required_permissions
            .iter()
            .map(|p| (p.clone(), describe(p)))
            .collect(),
        csrf: token.clone(),
        minutes: state.settings.state_lifetime.as_secs() / 60,
        sign_in: match state.settings.signup_sign_in {
            SignupSignIn::Off => "off",
            SignupSignIn::Optional => "optional",
            SignupSignIn::Required => "required",
        },
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
pub(super) struct SignupContext {
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    /// A tenant GUID or domain, used as the `/{tenant}/adminconsent` segment.
    pub tenant_hint: Option<String>,
    /// The invitation the sign-up was started from.
    pub invitation_id: Option<String>,
}

fn parse_form(form: SignupForm) -> Result<SignupContext, WebError> {
    let field = |v: Option<String>| v.unwrap_or_default();
    let bad = |e: &str| WebError::BadRequest(e.to_owned());
    Ok(SignupContext {
        organisation_name: parse_organisation_name(&field(form.organisation_name)).map_err(bad)?,
        contact_email: parse_contact_email(&field(form.contact_email)).map_err(bad)?,
        tenant_hint: parse_tenant_hint(&field(form.tenant_domain)).map_err(bad)?,
        invitation_id: None,
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
    if state.settings.signup_sign_in == SignupSignIn::Required {
        return Err(WebError::BadRequest(
            "Connecting an organisation starts with signing in with Microsoft here. Go back to the sign-up page and choose \"Sign in with Microsoft and connect\".".into(),
        ));
    }
    let client = client_addr(&req);
    state
        .signup_limit
        .acquire(&client)
        .map_err(|retry_after| WebError::TooManyRequests { retry_after })?;
    let context = parse_form(form)?;
    start_consent(&req, &state, context).await
}

/// Stores a new state bound to this browser and sends the browser to Microsoft.
pub(super) async fn start_consent(
    req: &HttpRequest,
    state: &AppState,
    context: SignupContext,
) -> Result<HttpResponse, WebError> {
    let client = client_addr(req);
    // One binding per browser, kept across sign-ups, invitations and callbacks: a second
    // tab, Back-and-submit-again or an invitation reuses it, so every flow this browser
    // started stays valid (and a cross-site form post cannot replace it).
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
            invitation_id: context.invitation_id,
            signed_in: None,
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

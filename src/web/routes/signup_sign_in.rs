//! A verified sign-up (`CONSENTRY_SIGNUP_SIGN_IN`): the person signs in with Microsoft
//! first, then goes to their own tenant's admin-consent page.
//!
//! `POST /signup/microsoft` stores a one-time `state` bound to this browser and sends the
//! browser to Microsoft (code flow, PKCE S256, a nonce, `openid profile email` only).
//! `GET /signup/signed-in` takes Microsoft's answer: the state must be this browser's,
//! unused and fresh; the code is redeemed with the app's credential and the PKCE
//! verifier; the ID token must be Microsoft's for the person's own tenant (`oidc.rs`).
//! Then an administrator goes on to `/{their tenant}/adminconsent`, whose callback must
//! name that same tenant; anyone else is told plainly that an administrator has to do it,
//! with an invitation for their tenant to forward.
//!
//! The nonce and the PKCE verifier are derived from the state under the session key, so
//! nothing that could redeem a code is stored.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::callback::{Declined, aadsts_code, clip, explain, is_oauth_error};
use super::{client_addr, client_network, page, request_id};
use crate::config::SignupSignIn;
use crate::domain::RandomToken;
use crate::domain::invitation::{DEFAULT_LIFETIME_DAYS, invitation_token};
use crate::entra::oidc::{AuthorizeRequest, ConsentAuthority, SignedInPerson};
use crate::store::{
    EventKind, NewConsentRequest, NewEvent, NewInvitation, NewSignInRequest, SignInPurpose,
    SignInRejection, SignedInClaim,
};
use crate::web::{AppState, WebError, cookies, csrf};

/// The tenant segment a sign-up's sign-in starts at: any work or school account, whose
/// tenant the ID token then names.
const SEGMENT: &str = "organizations";

/// The nonce of the sign-in whose state is `state`.
pub(super) fn nonce_for(state: &AppState, consent_state: &RandomToken) -> RandomToken {
    state
        .keyed
        .derive_token("oidc-nonce", consent_state.expose())
}

/// The PKCE verifier of the sign-in whose state is `state`: 43 base64url characters, as
/// RFC 7636 §4.1 asks (43 to 128 unreserved characters).
pub(super) fn verifier_for(state: &AppState, consent_state: &RandomToken) -> RandomToken {
    state
        .keyed
        .derive_token("oidc-pkce", consent_state.expose())
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: Option<String>,
}

pub async fn start(
    req: HttpRequest,
    form: web::Form<StartForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if state.settings.signup_sign_in == SignupSignIn::Off {
        return Err(WebError::NotFound);
    }
    if !csrf::form_ok(&req, form.csrf.as_deref()) {
        return Err(WebError::Csrf);
    }
    let client = client_addr(&req);
    state
        .signup_limit
        .acquire(&client)
        .map_err(|retry_after| WebError::TooManyRequests { retry_after })?;
    redirect_to_microsoft(
        &req,
        &state,
        SEGMENT,
        SignInPurpose::Signup,
        &state.settings.signup_sign_in_redirect_uri(),
    )
    .await
}

/// Starts a sign-in with Microsoft at the authority `segment` (a sign-up's or an
/// operator's, `purpose`): stores its one-time state bound to this browser (the binding
/// cookie, planted if missing), and sends the browser to the authorize endpoint with PKCE
/// S256 and a nonce, both derived from the state. The caller has checked the CSRF token and
/// the rate limit.
pub(super) async fn redirect_to_microsoft(
    req: &HttpRequest,
    state: &AppState,
    segment: &str,
    purpose: SignInPurpose,
    redirect_uri: &str,
) -> Result<HttpResponse, WebError> {
    let provider = state.oidc.provider(segment).await.map_err(|e| {
        tracing::warn!(error = %e, ?purpose, "sign-in with Microsoft unavailable");
        WebError::Unavailable
    })?;
    let binding = cookies::bindings(req)
        .into_iter()
        .next()
        .unwrap_or_else(RandomToken::generate);
    let sign_in_state = RandomToken::generate();
    let now = OffsetDateTime::now_utc();
    let lifetime = time::Duration::try_from(state.settings.state_lifetime)
        .unwrap_or(time::Duration::minutes(10));
    let stored = state
        .store
        .insert_sign_in_request(&NewSignInRequest {
            state_hash: &state.keyed.hash("sign-in-state", &sign_in_state),
            binding_hash: &state.keyed.hash("binding", &binding),
            purpose,
            client_addr: &client_addr(req),
            created_at: now,
            expires_at: now + lifetime,
        })
        .await?;
    if !stored {
        tracing::warn!("too many pending sign-ins; refusing new ones until some expire");
        return Err(WebError::Unavailable);
    }
    let location = state.oidc.authorize_url(
        &provider,
        &AuthorizeRequest {
            redirect_uri,
            state: sign_in_state.expose(),
            nonce: nonce_for(state, &sign_in_state).expose(),
            code_verifier: verifier_for(state, &sign_in_state).expose(),
            prompt: Some("select_account"),
        },
    );
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .cookie(cookies::binding(
            binding.expose(),
            state.settings.secure_cookies(),
        ))
        .finish())
}

/// Microsoft's answer to the authorize request, each parameter at most once (the
/// operators' sign-in reads it too).
#[derive(Debug, Default)]
pub(super) struct Answer {
    pub(super) code: Option<String>,
    pub(super) state: Option<String>,
    pub(super) error: Option<String>,
    pub(super) error_description: Option<String>,
}

const MAX_QUERY: usize = 16 * 1024;

pub(super) fn parse_answer(raw: &str) -> Result<Answer, WebError> {
    if raw.len() > MAX_QUERY {
        return Err(WebError::BadRequest(
            "This sign-in response is too long to be Microsoft's.".into(),
        ));
    }
    let mut a = Answer::default();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        let slot = match name.as_ref() {
            "code" => &mut a.code,
            "state" => &mut a.state,
            "error" => &mut a.error,
            "error_description" => &mut a.error_description,
            // session_state, error_uri, client_info...: not ours to read.
            _ => continue,
        };
        if slot.is_some() {
            return Err(WebError::BadRequest(format!(
                "The sign-in response repeats '{name}'."
            )));
        }
        *slot = Some(value.into_owned());
    }
    Ok(a)
}

/// A person who cannot grant consent for their organisation, and the link to forward.
#[derive(Template)]
#[template(path = "signup/not_admin.html")]
struct NotAdmin {
    person: String,
    tenant_id: String,
    link: String,
    days: i64,
}

pub async fn signed_in(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let now = OffsetDateTime::now_utc();
    let rid = request_id(&req);
    if let Err(retry_after) = state.callback_limit.acquire(&client_addr(&req)) {
        state.refused_callbacks.count("sign_in_rate_limited");
        return Err(WebError::TooManyRequests { retry_after });
    }
    if state.settings.signup_sign_in == SignupSignIn::Off {
        return Err(WebError::NotFound);
    }
    let answer = match parse_answer(req.query_string()) {
        Ok(a) => a,
        Err(e) => {
            state.refused_callbacks.count("sign_in_malformed");
            return Err(e);
        }
    };
    let sign_in_state = answer.state.as_deref().and_then(RandomToken::parse);
    let state_hash = sign_in_state
        .as_ref()
        .map(|s| state.keyed.hash("sign-in-state", s));
    let binding_hashes: Vec<String> = cookies::bindings(&req)
        .iter()
        .map(|b| state.keyed.hash("binding", b))
        .collect();

    let (Some(sign_in_state), Some(state_hash)) = (sign_in_state, state_hash) else {
        state.refused_callbacks.count("sign_in_bad_state");
        return Err(WebError::BadRequest(
            "This sign-in response does not carry a state we issued. Start again from the sign-up page.".into(),
        ));
    };
    // The state is spent whatever comes next: an answer is used once.
    if let Err(why) = state
        .store
        .consume_sign_in(&state_hash, &binding_hashes, SignInPurpose::Signup, now)
        .await?
    {
        refuse(
            &state,
            &rid,
            &state_hash,
            why.as_str(),
            &format!("Sign-in refused: {}.", why.as_str()),
            now,
        )
        .await?;
        return Err(WebError::BadRequest(
            match why {
                SignInRejection::UnknownState => {
                    "We did not start this sign-in, or it was altered on the way. Start again from the sign-up page."
                }
                SignInRejection::Expired => {
                    "This sign-in took too long and has expired. Start again from the sign-up page."
                }
                SignInRejection::Replayed => {
                    "This sign-in response was already used. Start again from the sign-up page."
                }
                SignInRejection::OtherBrowser | SignInRejection::OtherPurpose => {
                    "This sign-in was started in another browser. Start again here, in the browser you want to use."
                }
            }
            .into(),
        ));
    }

    if let Some(error) = answer.error.as_deref() {
        let description = answer.error_description.as_deref().unwrap_or_default();
        let headline = description.lines().next().unwrap_or_default().trim();
        let code = aadsts_code(description);
        refuse(
            &state,
            &rid,
            &state_hash,
            "authorize_error",
            &format!(
                "Sign-in with Microsoft did not complete: Microsoft returned {}: {}",
                clip(error, 64),
                clip(headline, 300)
            ),
            now,
        )
        .await?;
        let (title, explanation) = explain(code, error);
        return page(
            StatusCode::OK,
            Declined {
                title,
                explanation,
                microsoft_says: Some(if headline.is_empty() {
                    clip(error, 64)
                } else {
                    clip(headline, 500)
                }),
                code: match code {
                    Some(c) => format!("AADSTS{c}"),
                    None if is_oauth_error(error) => error.to_owned(),
                    None => "unknown".to_owned(),
                },
                invited: false,
            }
            .render(),
        );
    }
    let Some(code) = answer
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        refuse(
            &state,
            &rid,
            &state_hash,
            "no_code",
            "Sign-in refused: Microsoft's answer carried no code.",
            now,
        )
        .await?;
        return Err(WebError::BadRequest(
            "Microsoft's answer carried no sign-in code. Start again from the sign-up page.".into(),
        ));
    };

    let provider = state.oidc.provider(SEGMENT).await.map_err(|e| {
        tracing::warn!(error = %e, "sign-in with Microsoft unavailable");
        WebError::Unavailable
    })?;
    let signed_in = match state
        .oidc
        .redeem(
            &provider,
            code,
            &state.settings.signup_sign_in_redirect_uri(),
            verifier_for(&state, &sign_in_state).expose(),
            nonce_for(&state, &sign_in_state).expose(),
            now,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let reason = e.reason();
            tracing::warn!(reason = %reason, error = %e, "sign-in with Microsoft refused");
            refuse(
                &state,
                &rid,
                &state_hash,
                "sign_in_refused",
                &format!("Sign-in refused: {e} ({reason})."),
                now,
            )
            .await?;
            return Err(WebError::BadRequest(format!(
                "We could not confirm your sign-in with Microsoft ({reason}), so nothing was recorded. Start again from the sign-up page."
            )));
        }
    };

    let person = signed_in.person;
    if signed_in.authority == ConsentAuthority::NotAdministrator {
        return not_admin(&state, &person, &rid, now).await;
    }
    to_admin_consent(&req, &state, person, now).await
}

/// The signed-in administrator goes to their own tenant's admin-consent page, with a new
/// consent state that remembers who they are.
async fn to_admin_consent(
    req: &HttpRequest,
    state: &AppState,
    person: SignedInPerson,
    now: OffsetDateTime,
) -> Result<HttpResponse, WebError> {
    let binding = cookies::bindings(req)
        .into_iter()
        .next()
        .unwrap_or_else(RandomToken::generate);
    let consent_state = RandomToken::generate();
    let lifetime = time::Duration::try_from(state.settings.state_lifetime)
        .unwrap_or(time::Duration::minutes(10));
    let tenant = person.tenant.to_string();
    let stored = state
        .store
        .insert_consent_request(&NewConsentRequest {
            state_hash: state.keyed.hash("state", &consent_state),
            binding_hash: state.keyed.hash("binding", &binding),
            organisation_name: None,
            contact_email: person.email.clone().or_else(|| person.username.clone()),
            domain_hint: Some(tenant.clone()),
            client_addr: client_addr(req),
            client_net: client_network(req),
            created_at: now,
            expires_at: now + lifetime,
            invitation_id: None,
            signed_in: Some(SignedInClaim {
                tenant: person.tenant,
                object_id: person.object_id,
                name: person.name,
                username: person.username,
                at: now,
            }),
        })
        .await?;
    if !stored {
        tracing::warn!("too many pending sign-ups; refusing new ones until some expire");
        return Err(WebError::Unavailable);
    }
    let location = state.entra.admin_consent_url(
        Some(&tenant),
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

/// Invitations a person may have live for their tenant: one, shown again on every sign-in.
async fn not_admin(
    state: &AppState,
    person: &SignedInPerson,
    rid: &str,
    now: OffsetDateTime,
) -> Result<HttpResponse, WebError> {
    let tenant = person.tenant;
    let created_by = format!("signed-in member {}", clip(person.label(), 200));
    let existing = state
        .store
        .live_invitation_from(tenant, &created_by, now)
        .await?;
    let salt = match existing {
        Some(salt) => salt,
        None => {
            let salt = RandomToken::generate();
            let token = invitation_token(&state.keyed, salt.expose());
            let organisation = person
                .username
                .as_deref()
                .and_then(|u| u.rsplit_once('@'))
                .map(|(_, domain)| domain.to_owned())
                .unwrap_or_else(|| format!("tenant {tenant}"));
            let contact = person
                .email
                .clone()
                .or_else(|| person.username.clone())
                .unwrap_or_default();
            state
                .store
                .create_invitation(
                    &NewInvitation {
                        salt: salt.expose(),
                        token_hash: &state.keyed.hash("invitation", &token),
                        organisation_name: &organisation,
                        contact_email: &contact,
                        tenant: Some(&crate::domain::invitation::InvitedTenant::Id(tenant)),
                        expires_at: now + time::Duration::days(DEFAULT_LIFETIME_DAYS),
                        created_by: &created_by,
                    },
                    now,
                )
                .await?;
            state
                .store
                .record_event(
                    &NewEvent {
                        tenant_id: None,
                        kind: EventKind::SignInNotAdministrator,
                        detail: format!(
                            "{} signed in with Microsoft for tenant {tenant} and is not an administrator: an invitation for the tenant was made for them to forward.",
                            clip(person.label(), 200)
                        ),
                        request_id: Some(rid.to_owned()),
                    },
                    now,
                )
                .await?;
            salt.expose().to_owned()
        }
    };
    let token = invitation_token(&state.keyed, &salt);
    let link = format!(
        "{}/invite/{}",
        state.settings.public_url.as_str().trim_end_matches('/'),
        token.expose()
    );
    page(
        StatusCode::OK,
        NotAdmin {
            person: person.label().to_owned(),
            tenant_id: tenant.to_string(),
            link,
            days: DEFAULT_LIFETIME_DAYS,
        }
        .render(),
    )
}

/// A refused answer: its sign-in's first refusal writes an event (an operator may want to
/// know); anything else, and every later one, is only counted.
async fn refuse(
    state: &AppState,
    rid: &str,
    state_hash: &str,
    why: &'static str,
    detail: &str,
    now: OffsetDateTime,
) -> Result<(), WebError> {
    let written = state
        .store
        .refuse_sign_in(
            state_hash,
            &NewEvent {
                tenant_id: None,
                kind: EventKind::SignInRefused,
                detail: detail.to_owned(),
                request_id: Some(rid.to_owned()),
            },
            now,
        )
        .await?;
    if written {
        tracing::warn!(reason = why, "sign-in with Microsoft refused");
    } else {
        state.refused_callbacks.count(why);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_repeat_nothing_and_ignore_the_rest() {
        assert!(parse_answer("code=a&code=b").is_err());
        let a = parse_answer("code=c&state=s&session_state=x&client_info=y").unwrap();
        assert_eq!(a.code.as_deref(), Some("c"));
        assert!(parse_answer(&"a".repeat(MAX_QUERY + 1)).is_err());
    }
}

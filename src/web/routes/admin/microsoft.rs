//! Operators sign in with Microsoft, through our own tenant (`CONSENTRY_OPERATOR_TENANT`).
//!
//! `POST /admin/login/microsoft` stores a one-time `state` bound to this browser and sends
//! the browser to our tenant's authorize endpoint (not `organizations`: nobody else's
//! accounts are offered), with PKCE S256, a nonce and `openid profile email` only.
//! `GET /admin/signed-in` takes Microsoft's answer: the state must be this browser's,
//! unused, fresh and an operator's; the code is redeemed with the app's credential and the
//! PKCE verifier; the ID token is validated as for a sign-up (`oidc.rs`). Then the person
//! must be a user of our tenant (`tid`) holding the role, when one is set; their operator
//! is the one tied to their `tid` and `oid` (`Store::operator_for_microsoft`). Every
//! refusal is a page, an event and a line of the audit trail, and never a session.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::audit;
use super::login::{CsrfForm, open_session, render_refused};
use crate::domain::{RandomToken, TenantId};
use crate::entra::oidc::SignedInPerson;
use crate::store::{
    AuditAction, EventKind, MicrosoftIdentity, MicrosoftOperator, NewAuditEvent, NewEvent, Outcome,
    SignInPurpose, SignInRejection, Tied,
};
use crate::web::routes::callback::{aadsts_code, clip};
use crate::web::routes::signup_sign_in::{
    nonce_for, parse_answer, redirect_to_microsoft, verifier_for,
};
use crate::web::routes::{client_addr, page, request_id};
use crate::web::{AppState, WebError, cookies, csrf};

/// Our tenant, when operators may sign in with Microsoft.
fn operator_tenant(state: &AppState) -> Result<TenantId, WebError> {
    state
        .settings
        .operator_sign_in
        .tenant
        .ok_or(WebError::NotFound)
}

pub async fn start(
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let tenant = operator_tenant(&state)?;
    if !csrf::form_ok(&req, form.csrf.as_deref()) {
        return Err(WebError::Csrf);
    }
    let client = client_addr(&req);
    // Each start stores a row: bounded per address, in a bucket of its own so that
    // sign-ups from an office's address do not lock its operators out.
    state
        .signup_limit
        .acquire(&format!("operator:{client}"))
        .map_err(|retry_after| WebError::TooManyRequests { retry_after })?;
    redirect_to_microsoft(
        &req,
        &state,
        &tenant.to_string(),
        SignInPurpose::Operator,
        &state.settings.operator_sign_in_redirect_uri(),
    )
    .await
}

/// Where a signed-in operator lands. A page rather than a redirect: the session cookie is
/// SameSite=Strict, and a browser may withhold it from a redirect chain that began at
/// Microsoft; the refresh below starts from our own page, so the cookie goes with it.
#[derive(Template)]
#[template(path = "admin/signed_in.html")]
struct SignedIn {
    person: String,
    operator: String,
    role: &'static str,
    created: bool,
}

/// Why a sign-in with Microsoft did not open a session: the status, the page's words, the
/// short reason for the event and the audit trail, and who it was when Microsoft said.
struct Refusal {
    status: StatusCode,
    message: String,
    reason: String,
    person: Option<String>,
}

impl Refusal {
    fn bad(reason: impl Into<String>, message: impl Into<String>) -> Refusal {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            reason: reason.into(),
            person: None,
        }
    }

    fn forbidden(person: &SignedInPerson, reason: &str, message: String) -> Refusal {
        Refusal {
            status: StatusCode::FORBIDDEN,
            message,
            reason: reason.to_owned(),
            person: Some(clip(person.label(), 200)),
        }
    }
}

pub async fn signed_in(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    if let Err(retry_after) = state.callback_limit.acquire(&client_addr(&req)) {
        state
            .refused_callbacks
            .count("operator_sign_in_rate_limited");
        return Err(WebError::TooManyRequests { retry_after });
    }
    let tenant = operator_tenant(&state)?;
    let now = OffsetDateTime::now_utc();
    let answer = match parse_answer(req.query_string()) {
        Ok(a) => a,
        Err(e) => {
            state.refused_callbacks.count("operator_sign_in_malformed");
            return refused_page(&req, &state, StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let Some(sign_in_state) = answer.state.as_deref().and_then(RandomToken::parse) else {
        // Not a state we could have issued: nothing to tie an event to, so only counted.
        state.refused_callbacks.count("operator_sign_in_bad_state");
        return refused_page(
            &req,
            &state,
            StatusCode::BAD_REQUEST,
            "This sign-in response does not carry a state we issued. Sign in again.".into(),
        );
    };
    let state_hash = state.keyed.hash("sign-in-state", &sign_in_state);
    let outcome = admit(
        &req,
        &state,
        tenant,
        &answer,
        &sign_in_state,
        &state_hash,
        now,
    )
    .await?;
    let refusal = match outcome {
        Ok(response) => return Ok(response),
        Err(refusal) => refusal,
    };
    let written = state
        .store
        .refuse_sign_in(
            &state_hash,
            &NewEvent {
                tenant_id: None,
                kind: EventKind::SignInRefused,
                detail: format!(
                    "Operator sign-in with Microsoft refused{}: {}.",
                    refusal
                        .person
                        .as_deref()
                        .map(|p| format!(" for {p}"))
                        .unwrap_or_default(),
                    refusal.reason
                ),
                request_id: Some(request_id(&req)),
            },
            now,
        )
        .await?;
    // The first refusal of a sign-in we issued is written; a replay of it, or a state we
    // never issued, only counts (a URL opened again and again writes nothing).
    if written {
        tracing::warn!(reason = %refusal.reason, "operator sign-in with Microsoft refused");
        let target = match &refusal.person {
            Some(person) => format!("{person} ({})", refusal.reason),
            None => refusal.reason.clone(),
        };
        audit(
            &state,
            NewAuditEvent {
                actor: "unknown",
                address: &client_addr(&req),
                action: AuditAction::SignInMicrosoft,
                target: &target,
                outcome: Outcome::Failure,
            },
        )
        .await;
    } else {
        state.refused_callbacks.count("operator_sign_in_refused");
    }
    refused_page(&req, &state, refusal.status, refusal.message)
}

/// The sign-in page again, saying why; no session cookie is set.
fn refused_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    message: String,
) -> Result<HttpResponse, WebError> {
    render_refused(req, state, status, message)
}

/// Everything between a well-formed answer and a session; `Err` is a refusal to record.
async fn admit(
    req: &HttpRequest,
    state: &AppState,
    tenant: TenantId,
    answer: &crate::web::routes::signup_sign_in::Answer,
    sign_in_state: &RandomToken,
    state_hash: &str,
    now: OffsetDateTime,
) -> Result<Result<HttpResponse, Refusal>, WebError> {
    let binding_hashes: Vec<String> = cookies::bindings(req)
        .iter()
        .map(|b| state.keyed.hash("binding", b))
        .collect();
    // The state is spent whatever comes next: an answer is used once.
    if let Err(why) = state
        .store
        .consume_sign_in(state_hash, &binding_hashes, SignInPurpose::Operator, now)
        .await?
    {
        let message = match why {
            SignInRejection::UnknownState => {
                "We did not start this sign-in, or it was altered on the way. Sign in again."
            }
            SignInRejection::Expired => {
                "This sign-in took too long and has expired. Sign in again."
            }
            SignInRejection::Replayed => "This sign-in response was already used. Sign in again.",
            SignInRejection::OtherBrowser => {
                "This sign-in was started in another browser. Sign in again here, in the browser you want to use."
            }
            SignInRejection::OtherPurpose => {
                "This sign-in was not started on the operators' sign-in page. Sign in again here."
            }
        };
        return Ok(Err(Refusal::bad(why.as_str(), message)));
    }

    if let Some(error) = answer.error.as_deref() {
        let description = answer.error_description.as_deref().unwrap_or_default();
        let headline = clip(description.lines().next().unwrap_or_default().trim(), 300);
        let code = aadsts_code(description)
            .map(|c| format!("AADSTS{c}"))
            .unwrap_or_else(|| clip(error, 64));
        let message = if error == "access_denied" {
            format!("Microsoft did not sign you in: access was denied or you cancelled ({code}).")
        } else {
            format!("Microsoft did not sign you in ({code}): {headline}")
        };
        return Ok(Err(Refusal::bad(
            format!("authorize_error {}", clip(&code, 64)),
            message,
        )));
    }
    let Some(code) = answer
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 4096)
    else {
        return Ok(Err(Refusal::bad(
            "no_code",
            "Microsoft's answer carried no sign-in code. Sign in again.",
        )));
    };

    let provider = state
        .oidc
        .provider(&tenant.to_string())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "operator sign-in with Microsoft unavailable");
            WebError::Unavailable
        })?;
    let signed_in = match state
        .oidc
        .redeem(
            &provider,
            code,
            &state.settings.operator_sign_in_redirect_uri(),
            verifier_for(state, sign_in_state).expose(),
            nonce_for(state, sign_in_state).expose(),
            now,
        )
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let reason = e.reason();
            tracing::warn!(reason = %reason, error = %e, "operator sign-in with Microsoft refused");
            return Ok(Err(Refusal::bad(
                reason.clone(),
                format!(
                    "We could not confirm your sign-in with Microsoft ({reason}). Sign in again."
                ),
            )));
        }
    };
    let person = signed_in.person;

    // Our tenant's authorize endpoint signs in its own users (guests included), and the
    // token says which tenant it is for: a token of any other tenant is not ours to accept,
    // whatever led to it.
    if person.tenant != tenant {
        return Ok(Err(Refusal::forbidden(
            &person,
            "not_operator_tenant",
            format!(
                "{} is not an account of our organisation (tenant {}): only its users may sign in here.",
                clip(person.label(), 200),
                person.tenant
            ),
        )));
    }
    if let Some(role) = &state.settings.operator_sign_in.role
        && !person.roles.iter().any(|r| r == role)
    {
        return Ok(Err(Refusal::forbidden(
            &person,
            "missing_role",
            format!(
                "{} does not hold the app role {role} that operators need. Ask an administrator of our tenant to assign it to you.",
                clip(person.label(), 200)
            ),
        )));
    }
    let tid = person.tenant.to_string();
    let who = MicrosoftIdentity {
        tenant: &tid,
        object_id: &person.object_id,
        username: person.username.as_deref(),
    };
    let (operator, how) = match state.store.operator_for_microsoft(&who, now).await? {
        MicrosoftOperator::Admitted { operator, how } => (operator, how),
        MicrosoftOperator::Disabled(operator) => {
            return Ok(Err(Refusal::forbidden(
                &person,
                "operator_disabled",
                format!(
                    "The operator {} is disabled: ask an owner to enable it.",
                    operator.name
                ),
            )));
        }
        MicrosoftOperator::NameTaken(name) => {
            return Ok(Err(Refusal::forbidden(
                &person,
                "username_tied_to_another_account",
                format!(
                    "The operator {name} belongs to another Microsoft account (the username was given to someone else since). Ask an owner to rename or remove it."
                ),
            )));
        }
    };

    let cookie = open_session(req, state, &operator.id).await?;
    let address = client_addr(req);
    if how == Tied::Created {
        audit(
            state,
            NewAuditEvent {
                actor: &operator.name,
                address: &address,
                action: AuditAction::OperatorAdd,
                target: &format!(
                    "{} (viewer, at their first sign-in with Microsoft)",
                    operator.name
                ),
                outcome: Outcome::Success,
            },
        )
        .await;
    }
    audit(
        state,
        NewAuditEvent {
            actor: &operator.name,
            address: &address,
            action: AuditAction::SignInMicrosoft,
            target: &operator.name,
            outcome: Outcome::Success,
        },
    )
    .await;
    tracing::info!(operator = %operator.name, "operator signed in with Microsoft");
    let mut response = page(
        StatusCode::OK,
        SignedIn {
            person: clip(person.label(), 200),
            operator: operator.name.clone(),
            role: operator.role().as_str(),
            created: how == Tied::Created,
        }
        .render(),
    )?;
    response
        .add_cookie(&cookie)
        .map_err(|e| WebError::Internal(anyhow::Error::new(e)))?;
    Ok(Ok(response))
}

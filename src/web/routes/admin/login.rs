//! Sign-in and sign-out. Failed attempts are rate-limited per address and per (name,
//! address), never per name alone: a limit on the name would let anyone lock its operator
//! out by failing on purpose. A successful sign-in gets a brand-new session (no fixation),
//! whichever way it came (a password here, Microsoft in `microsoft.rs`).

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{Operator, audit};
use crate::domain::RandomToken;
use crate::domain::password::CheckError;
use crate::store::{AuditAction, NewAuditEvent, NewSession, Outcome};
use crate::web::error::retry_after_secs;
use crate::web::routes::{client_addr, page};
use crate::web::{AppState, WebError, cookies, csrf};

/// How long a session lasts.
const SESSION_HOURS: i64 = 12;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    name: String,
    error: Option<String>,
    /// "Sign in with Microsoft" is offered (`CONSENTRY_OPERATOR_TENANT`).
    microsoft: bool,
    /// The password form is shown (`CONSENTRY_OPERATOR_PASSWORDS`).
    passwords: bool,
    /// The request id of a refused sign-in with Microsoft, as its event and log line have it.
    reference: Option<String>,
}

/// The sign-in page, with `error` above the forms.
fn render(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    name: String,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    render_page(req, state, status, name, error, None)
}

/// The sign-in page after a refused sign-in with Microsoft: the error, and the request id
/// its event and log line carry.
pub(super) fn render_refused(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    error: String,
) -> Result<HttpResponse, WebError> {
    let reference = req
        .extensions()
        .get::<crate::web::middleware::RequestId>()
        .map(|r| r.0.to_string());
    render_page(req, state, status, String::new(), Some(error), reference)
}

fn render_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    name: String,
    error: Option<String>,
    reference: Option<String>,
) -> Result<HttpResponse, WebError> {
    let (token, fresh) = csrf::form_token(req);
    let mut response = page(
        status,
        LoginPage {
            csrf: token.clone(),
            name,
            error,
            microsoft: state.settings.operator_sign_in.tenant.is_some(),
            passwords: state.settings.operator_sign_in.passwords,
            reference,
        }
        .render(),
    )?;
    if fresh {
        let _ = response.add_cookie(&cookies::form(&token, state.settings.secure_cookies()));
    }
    Ok(response)
}

pub async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    render(&req, &state, StatusCode::OK, String::new(), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    name: String,
    password: String,
}

/// Longest operator name looked up (`consentry operators add` allows 100 characters); also
/// the most of a name that reaches a rate-limit key or a log line.
const MAX_NAME_CHARS: usize = 100;

pub async fn submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    if !csrf::form_ok(&req, form.csrf.as_deref()) {
        return Err(WebError::Csrf);
    }
    let name = form.name.trim().to_owned();
    // Nothing is checked, so nothing is counted or audited: no password can sign in.
    if !state.settings.operator_sign_in.passwords {
        return render(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            name,
            Some("Passwords are turned off here: sign in with Microsoft.".to_owned()),
        );
    }
    let address = client_addr(&req);
    let by_addr = format!("addr:{address}");
    let by_name_and_addr = format!(
        "name+addr:{}|{address}",
        name.chars()
            .take(MAX_NAME_CHARS)
            .collect::<String>()
            .to_lowercase()
    );
    // The attempt is charged before the password is hashed, in one step for both keys:
    // checking first and charging after the hash let every concurrent attempt through.
    let attempt = match state.login_limit.reserve(&[&by_addr, &by_name_and_addr]) {
        Ok(attempt) => attempt,
        Err(retry_after) => {
            let refused = WebError::TooManyAttempts { retry_after };
            return refuse(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                name,
                &refused,
                retry_after,
            );
        }
    };
    let operator = if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        None
    } else {
        match state.store.operator_by_name(&name).await {
            // A disabled operator's password is still checked (the same time as any other
            // attempt), then refused as a wrong one.
            Ok(operator) => operator,
            Err(e) => {
                // Not an attempt: nothing was checked.
                attempt.refund();
                return Err(e.into());
            }
        }
    };
    // An operator without a password (created by a sign-in with Microsoft) is checked
    // against the decoy hash, taking as long as any other attempt.
    let phc = operator
        .as_ref()
        .filter(|o| o.has_password())
        .map(|o| o.password_hash.clone());
    let verified = match state.password_checks.verify(form.password, phc).await {
        Ok(verified) => verified,
        Err(CheckError::Busy) => {
            attempt.refund();
            tracing::warn!("operator login refused: every password check is busy");
            let retry_after = state.password_checks.wait();
            let refused = WebError::LoginBusy { retry_after };
            return refuse(
                &req,
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                name,
                &refused,
                retry_after,
            );
        }
        Err(e @ CheckError::Failed(_)) => {
            attempt.refund();
            return Err(WebError::Internal(anyhow::Error::new(e)));
        }
    };
    let Some(operator) =
        operator.filter(|o| verified && o.has_password() && o.disabled_at.is_none())
    else {
        tracing::warn!(operator = %for_log(&name), "failed operator login");
        // The name as typed (the audit trail escapes it where it is shown), not `for_log`'s.
        let typed: String = name.chars().take(MAX_NAME_CHARS).collect();
        audit(
            &state,
            NewAuditEvent {
                actor: "unknown",
                address: &address,
                action: AuditAction::SignIn,
                target: &typed,
                outcome: Outcome::Failure,
            },
        )
        .await;
        return render(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            name,
            Some("Wrong name or password.".to_owned()),
        );
    };
    // The right password is not a failed attempt: the operator's own sign-in costs nothing.
    attempt.refund();

    let session = open_session(&req, &state, &operator.id).await?;
    tracing::info!(operator = %operator.name, "operator signed in with a password");
    audit(
        &state,
        NewAuditEvent {
            actor: &operator.name,
            address: &address,
            action: AuditAction::SignIn,
            target: &operator.name,
            outcome: Outcome::Success,
        },
    )
    .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/admin"))
        .cookie(session)
        .finish())
}

/// A brand-new session for `operator_id`, as a cookie to set; whatever session the browser
/// had is ended first (no fixation). Every way of signing in ends here.
pub(super) async fn open_session(
    req: &HttpRequest,
    state: &AppState,
    operator_id: &str,
) -> Result<actix_web::cookie::Cookie<'static>, WebError> {
    if let Some(old) = req
        .cookie(cookies::SESSION)
        .and_then(|c| RandomToken::parse(c.value()))
    {
        state
            .store
            .delete_session(&state.keyed.hash("session", &old))
            .await?;
    }
    let session = RandomToken::generate();
    let now = OffsetDateTime::now_utc();
    let user_agent: String = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    state
        .store
        .create_session(
            &NewSession {
                id_hash: &state.keyed.hash("session", &session),
                operator_id,
                csrf_token: RandomToken::generate().expose(),
                address: &client_addr(req),
                user_agent: &user_agent,
            },
            now,
            now + time::Duration::hours(SESSION_HOURS),
        )
        .await?;
    Ok(cookies::session(
        session.expose(),
        state.settings.secure_cookies(),
    ))
}

/// Most of a User-Agent header kept with a session.
const MAX_USER_AGENT_CHARS: usize = 200;

/// A refused attempt (too many failures, or every password check busy) answered with the
/// sign-in form itself, saying why and for how long, with `Retry-After`: the generic error
/// page would lead away from the form, to the customer sign-up page.
fn refuse(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    name: String,
    refused: &WebError,
    retry_after: std::time::Duration,
) -> Result<HttpResponse, WebError> {
    let mut response = render(req, state, status, name, Some(refused.to_string()))?;
    if let Ok(value) = retry_after_secs(retry_after).to_string().parse() {
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, value);
    }
    Ok(response)
}

/// A name as typed, made safe for one log line: at most [`MAX_NAME_CHARS`] characters, with
/// line breaks, quotes, control and invisible characters escaped as in Rust's `{:?}` (a name
/// with a newline must not be able to write a log line of its own).
fn for_log(name: &str) -> String {
    name.chars()
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .escape_debug()
        .to_string()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

pub async fn logout(
    operator: Operator,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    state.store.delete_session(&operator.session_hash).await?;
    operator
        .audit(
            &state,
            AuditAction::SignOut,
            &operator.name,
            Outcome::Success,
        )
        .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/admin/login"))
        .cookie(cookies::removal(
            cookies::SESSION,
            "/admin",
            state.settings.secure_cookies(),
        ))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_cannot_write_a_log_line_of_its_own() {
        let forged = "ops\n2026-11-30T20:00:00Z  INFO operator signed in operator=admin\r\u{1b}[2J";

        let logged = for_log(forged);

        assert!(!logged.contains(['\n', '\r', '\u{1b}']), "{logged}");
        assert_eq!(
            logged,
            "ops\\n2026-11-30T20:00:00Z  INFO operator signed in operator=admin\\r\\u{1b}[2J"
        );
        assert_eq!(for_log("alice@example.com"), "alice@example.com");
        assert_eq!(for_log(&"x".repeat(10_000)).len(), MAX_NAME_CHARS);
    }
}

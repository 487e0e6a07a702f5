//! Sign-in and sign-out. Failed attempts are rate-limited per address and per name; a
//! successful one gets a brand-new session (no fixation).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use crate::domain::RandomToken;
use crate::domain::password::CheckError;
use crate::web::routes::{client_addr, page};
use crate::web::{AppState, WebError, cookies, csrf};

/// How long a session lasts.
const SESSION_HOURS: i64 = 12;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    name: String,
    error: Option<&'static str>,
}

fn render(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    name: String,
    error: Option<&'static str>,
) -> Result<HttpResponse, WebError> {
    let (token, fresh) = csrf::form_token(req);
    let mut response = page(
        status,
        LoginPage {
            csrf: token.clone(),
            name,
            error,
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
    let by_addr = format!("addr:{}", client_addr(&req));
    let by_name = format!(
        "name:{}",
        name.chars()
            .take(MAX_NAME_CHARS)
            .collect::<String>()
            .to_lowercase()
    );
    // The attempt is charged before the password is hashed, in one step for both keys:
    // checking first and charging after the hash let every concurrent attempt through.
    let attempt = state
        .login_limit
        .reserve(&[&by_addr, &by_name])
        .map_err(|retry_after| WebError::TooManyAttempts { retry_after })?;
    let operator = if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        None
    } else {
        match state.store.operator_by_name(&name).await {
            Ok(operator) => operator,
            Err(e) => {
                // Not an attempt: nothing was checked.
                attempt.refund();
                return Err(e.into());
            }
        }
    };
    let phc = operator.as_ref().map(|o| o.password_hash.clone());
    let verified = match state.password_checks.verify(form.password, phc).await {
        Ok(verified) => verified,
        Err(CheckError::Busy) => {
            attempt.refund();
            tracing::warn!("operator login refused: every password check is busy");
            return Err(WebError::LoginBusy {
                retry_after: state.password_checks.wait(),
            });
        }
        Err(e @ CheckError::Failed(_)) => {
            attempt.refund();
            return Err(WebError::Internal(anyhow::Error::new(e)));
        }
    };
    let Some(operator) = operator.filter(|_| verified) else {
        tracing::warn!(operator = %for_log(&name), "failed operator login");
        return render(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            name,
            Some("Wrong name or password."),
        );
    };
    // The right password is not a failed attempt: the operator's own sign-in costs nothing.
    attempt.refund();

    // A new session at every login: whatever session id the browser had is dropped.
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
    state
        .store
        .create_session(
            &state.keyed.hash("session", &session),
            &operator.id,
            RandomToken::generate().expose(),
            now,
            now + time::Duration::hours(SESSION_HOURS),
        )
        .await?;
    tracing::info!(operator = %operator.name, "operator signed in");
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/admin"))
        .cookie(cookies::session(
            session.expose(),
            state.settings.secure_cookies(),
        ))
        .finish())
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

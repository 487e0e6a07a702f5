//! Sign-in and sign-out. Failed attempts are rate-limited per address and per name; a
//! successful one gets a brand-new session (no fixation).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use crate::domain::RandomToken;
use crate::domain::password::{decoy_hash, verify_password};
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
    let by_name = format!("name:{}", name.to_lowercase());
    if !state.login_limit.allows(&by_addr) || !state.login_limit.allows(&by_name) {
        return Err(WebError::TooManyRequests);
    }
    let operator = if name.is_empty() || name.len() > 100 {
        None
    } else {
        state.store.operator_by_name(&name).await?
    };
    let phc = operator
        .as_ref()
        .map(|o| o.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_owned());
    let password = form.password;
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let verified = web::block(move || verify_password(&password, &phc))
        .await
        .map_err(|e| WebError::Internal(anyhow::Error::new(e)))?;
    let Some(operator) = operator.filter(|_| verified) else {
        state.login_limit.try_acquire(&by_addr);
        state.login_limit.try_acquire(&by_name);
        tracing::warn!(operator = %name.chars().take(100).collect::<String>(), "failed operator login");
        return render(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            name,
            Some("Wrong name or password."),
        );
    };

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

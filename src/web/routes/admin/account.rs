//! `/admin/account`: who is signed in, with which role, and their own sessions (where from,
//! which browser, since when, last seen), each of which they can end.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use crate::store::{AuditAction, Outcome, SessionView};
use crate::web::format::Stamp;
use crate::web::routes::page;
use crate::web::{AppState, WebError, cookies};

/// One of the operator's sessions, as the page shows it.
pub struct SessionLine {
    pub public_id: String,
    pub address: String,
    pub user_agent: String,
    pub created_at: Stamp,
    pub last_seen_at: Stamp,
}

fn session_line(s: SessionView, now: OffsetDateTime) -> SessionLine {
    SessionLine {
        created_at: Stamp::of(&s.created_at, now),
        last_seen_at: Stamp::of(&s.last_seen_at, now),
        public_id: s.public_id,
        address: s.address,
        user_agent: s.user_agent,
    }
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    operator: String,
    csrf: String,
    role: &'static str,
    current: String,
    sessions: Vec<SessionLine>,
}

pub async fn show(
    operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let now = OffsetDateTime::now_utc();
    let sessions = state
        .store
        .sessions_of(&operator.id, now)
        .await?
        .into_iter()
        .map(|s| session_line(s, now))
        .collect();
    let template = AccountPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        role: operator.role.as_str(),
        current: operator.session_public_id.clone(),
        sessions,
    };
    page(StatusCode::OK, template.render())
}

/// Ends one of the operator's own sessions; ending the current one signs out.
pub async fn end_session(
    operator: Operator,
    session: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    if !state.store.end_own_session(&operator.id, &session).await? {
        return Err(WebError::NotFound);
    }
    operator
        .audit(&state, AuditAction::SessionEnd, &session, Outcome::Success)
        .await;
    let mut response = HttpResponse::SeeOther();
    if *session == operator.session_public_id {
        response
            .insert_header((actix_web::http::header::LOCATION, "/admin/login"))
            .cookie(cookies::removal(
                cookies::SESSION,
                "/admin",
                state.settings.secure_cookies(),
            ));
    } else {
        response.insert_header((actix_web::http::header::LOCATION, "/admin/account"));
    }
    Ok(response.finish())
}

//! `/admin`: the operator dashboard. Every route but the login page requires a session;
//! every POST checks the session's CSRF token.

mod api_keys;
mod login;
mod tenants;
mod webhooks;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use time::OffsetDateTime;

use crate::domain::RandomToken;
use crate::web::{AppState, WebError, cookies, csrf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path (see `routes::configure`): wrong methods get 405.
    cfg.service(web::resource(["", "/"]).get(tenants::list))
        .service(web::resource("/login").get(login::form).post(login::submit))
        .service(web::resource("/logout").post(login::logout))
        .service(web::resource("/tenants.csv").get(tenants::export))
        .service(web::resource("/tenants/{id}").get(tenants::show))
        .service(web::resource("/tenants/{id}/events.csv").get(tenants::export_events))
        .service(web::resource("/tenants/{id}/verify").post(tenants::verify_now))
        .service(
            web::resource("/api-keys")
                .get(api_keys::list)
                .post(api_keys::create),
        )
        .service(web::resource("/api-keys/{id}/revoke").post(api_keys::revoke))
        .service(
            web::resource("/webhooks")
                .get(webhooks::list)
                .post(webhooks::create),
        )
        .service(
            web::resource("/webhooks/{id}")
                .get(webhooks::show)
                .post(webhooks::update),
        )
        .service(web::resource("/webhooks/{id}/pause").post(webhooks::pause))
        .service(web::resource("/webhooks/{id}/enable").post(webhooks::enable))
        .service(web::resource("/webhooks/{id}/rotate").post(webhooks::rotate))
        .service(
            web::resource("/webhooks/{id}/delete")
                .get(webhooks::confirm_delete)
                .post(webhooks::delete),
        )
        .service(web::resource("/webhook-deliveries/{id}/resend").post(webhooks::resend));
}

/// A signed-in operator, from the session cookie.
pub struct Operator {
    pub name: String,
    pub csrf: String,
    session_hash: String,
}

impl Operator {
    /// Refuses a POST whose form lacks this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), WebError> {
        if csrf::matches(&self.csrf, presented) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
    }
}

/// Anonymous requests to `/admin` are sent to the login page, whatever their method.
#[derive(Debug, thiserror::Error)]
#[error("sign-in required")]
pub struct LoginRequired;

impl ResponseError for LoginRequired {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((actix_web::http::header::LOCATION, "/admin/login"))
            .finish()
    }
}

impl FromRequest for Operator {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| WebError::Internal(anyhow::anyhow!("application state missing")))?;
            let token = req
                .cookie(cookies::SESSION)
                .and_then(|c| RandomToken::parse(c.value()))
                .ok_or(LoginRequired)?;
            let session_hash = state.keyed.hash("session", &token);
            let row = state
                .store
                .session(&session_hash, OffsetDateTime::now_utc())
                .await
                .map_err(WebError::from)?
                .ok_or(LoginRequired)?;
            Ok(Operator {
                name: row.operator_name,
                csrf: row.csrf_token,
                session_hash,
            })
        })
    }
}

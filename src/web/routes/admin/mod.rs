//! `/admin`: the operator dashboard. Every route but the login page requires a session;
//! every POST checks the session's CSRF token; the session's role is enforced here, in the
//! [`Operator`] extractor, for every route at once (see [`required_role`]).

mod account;
mod api_keys;
mod audit;
mod invitations;
mod login;
mod microsoft;
mod operators;
mod overview;
mod tenants;
mod webhooks;

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;
use time::OffsetDateTime;

use crate::domain::RandomToken;
use crate::store::{AuditAction, NewAuditEvent, Outcome, Role};
use crate::web::routes::client_addr;
use crate::web::{AppState, WebError, cookies, csrf};

pub fn configure(cfg: &mut web::ServiceConfig) {
    // One resource per path (see `routes::configure`): wrong methods get 405.
    cfg.service(web::resource(["", "/"]).get(tenants::list))
        .service(web::resource("/overview").get(overview::show))
        .service(web::resource("/login").get(login::form).post(login::submit))
        .service(web::resource("/login/microsoft").post(microsoft::start))
        .service(web::resource("/signed-in").get(microsoft::signed_in))
        .service(web::resource("/logout").post(login::logout))
        .service(web::resource("/tenants.csv").get(tenants::export))
        .service(web::resource("/tenants/{id}").get(tenants::show))
        .service(web::resource("/tenants/{id}/events.csv").get(tenants::export_events))
        .service(web::resource("/tenants/{id}/verify").post(tenants::verify_now))
        .service(
            web::resource("/invitations")
                .get(invitations::list)
                .post(invitations::create),
        )
        .service(web::resource("/invitations/new").get(invitations::new_form))
        .service(web::resource("/invitations/{id}").get(invitations::show))
        .service(web::resource("/invitations/{id}/revoke").post(invitations::revoke))
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
        .service(web::resource("/webhook-deliveries/{id}/resend").post(webhooks::resend))
        .service(web::resource("/account").get(account::show))
        .service(web::resource("/account/sessions/{session}/end").post(account::end_session))
        .service(web::resource("/audit").get(audit::list))
        .service(web::resource("/audit.csv").get(audit::export))
        .service(
            web::resource("/operators")
                .get(operators::list)
                .post(operators::add),
        )
        .service(web::resource("/operators/{name}/disable").post(operators::disable))
        .service(web::resource("/operators/{name}/enable").post(operators::enable))
        .service(web::resource("/operators/{name}/remove").post(operators::remove))
        .service(web::resource("/operators/{name}/reset").post(operators::reset))
        .service(web::resource("/operators/{name}/role").post(operators::set_role));
}

/// Every admin route that takes a POST (as `configure` registers it, under `/admin`), with
/// the least role that may post to it. A POST route missing here still needs
/// [`Role::Operator`] (a viewer posts nothing but what is listed as theirs); a unit test
/// checks that the list and `configure` name as many POST routes, and the integration tests
/// post to each as a viewer.
pub const POST_ROUTES: &[(&str, Role)] = &[
    ("/admin/login", Role::Viewer),
    ("/admin/login/microsoft", Role::Viewer),
    ("/admin/logout", Role::Viewer),
    ("/admin/account/sessions/{session}/end", Role::Viewer),
    ("/admin/tenants/{id}/verify", Role::Operator),
    ("/admin/invitations", Role::Operator),
    ("/admin/invitations/{id}/revoke", Role::Operator),
    ("/admin/api-keys", Role::Operator),
    ("/admin/api-keys/{id}/revoke", Role::Operator),
    ("/admin/webhooks", Role::Operator),
    ("/admin/webhooks/{id}", Role::Operator),
    ("/admin/webhooks/{id}/pause", Role::Operator),
    ("/admin/webhooks/{id}/enable", Role::Operator),
    ("/admin/webhooks/{id}/rotate", Role::Operator),
    ("/admin/webhooks/{id}/delete", Role::Operator),
    ("/admin/webhook-deliveries/{id}/resend", Role::Operator),
    ("/admin/operators", Role::Owner),
    ("/admin/operators/{name}/disable", Role::Owner),
    ("/admin/operators/{name}/enable", Role::Owner),
    ("/admin/operators/{name}/remove", Role::Owner),
    ("/admin/operators/{name}/reset", Role::Owner),
    ("/admin/operators/{name}/role", Role::Owner),
];

/// Areas whose every page (read or write) needs more than a viewer: managing operators and
/// settings is the owners'; the audit trail names who did what from which address, which
/// is for the people accountable for the service (owners and operators), not for read-only
/// observers of tenants.
const AREAS: &[(&str, Role)] = &[
    ("/admin/operators", Role::Owner),
    ("/admin/settings", Role::Owner),
    ("/admin/audit", Role::Operator),
    // The form hands out nothing, but a viewer could not submit it.
    ("/admin/invitations/new", Role::Operator),
];

/// The least role that may make this request to the route `pattern` (as actix-web matched
/// it, e.g. `/admin/tenants/{id}/verify`).
pub fn required_role(method: &Method, pattern: &str) -> Role {
    let area = AREAS
        .iter()
        .filter(|(prefix, _)| {
            pattern == *prefix
                || pattern.starts_with(&format!("{prefix}/"))
                || pattern.starts_with(&format!("{prefix}."))
        })
        .map(|(_, role)| *role)
        .max()
        .unwrap_or(Role::Viewer);
    let action = if method == Method::GET || method == Method::HEAD {
        Role::Viewer
    } else {
        POST_ROUTES
            .iter()
            .find(|(route, _)| *route == pattern)
            .map(|(_, role)| *role)
            .unwrap_or(Role::Operator)
    };
    area.max(action)
}

/// Appends one line to the audit trail. A write that fails is logged, not shown: the
/// action it records has already happened.
pub async fn audit(state: &AppState, event: NewAuditEvent<'_>) {
    if let Err(e) = state.store.audit(&event, OffsetDateTime::now_utc()).await {
        tracing::error!(error = %e, action = event.action.as_str(), "audit trail write failed");
    }
}

/// A signed-in operator, from the session cookie, allowed by role to make this request.
#[derive(Clone)]
pub struct Operator {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub csrf: String,
    /// The client address the request came from (for the audit trail).
    pub address: String,
    session_hash: String,
    /// The session's id as "Your sessions" shows it.
    session_public_id: String,
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

    /// Appends what this operator did to the audit trail.
    pub async fn audit(
        &self,
        state: &AppState,
        action: AuditAction,
        target: &str,
        outcome: Outcome,
    ) {
        let event = NewAuditEvent {
            actor: &self.name,
            address: &self.address,
            action,
            target,
            outcome,
        };
        audit(state, event).await
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

#[derive(Template)]
#[template(path = "admin/forbidden.html")]
struct ForbiddenPage<'a> {
    operator: &'a str,
    csrf: &'a str,
    role: &'static str,
    needed: &'static str,
}

/// 403: the operator's role may not make this request. The page keeps the admin navigation.
#[derive(Debug, thiserror::Error)]
#[error("the {role} role may not do this")]
pub struct Forbidden {
    operator: String,
    csrf: String,
    role: &'static str,
    needed: &'static str,
}

impl ResponseError for Forbidden {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn error_response(&self) -> HttpResponse {
        let template = ForbiddenPage {
            operator: &self.operator,
            csrf: &self.csrf,
            role: self.role,
            needed: self.needed,
        };
        super::page(StatusCode::FORBIDDEN, template.render()).unwrap_or_else(|e| e.error_response())
    }
}

/// A session is marked as seen at most this often: not a write per page.
const SEEN_EVERY: time::Duration = time::Duration::minutes(1);

impl FromRequest for Operator {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // [`enforce_roles`] resolved and checked it before any extractor ran.
            if let Some(operator) = req.extensions().get::<Operator>() {
                return Ok(operator.clone());
            }
            resolve(&req).await
        })
    }
}

/// The routes that sign an operator in, and so need no session.
const SIGN_IN_PATHS: [&str; 3] = ["/admin/login", "/admin/login/microsoft", "/admin/signed-in"];

/// Runs before the handler's extractors (which actix-web polls together, so a malformed form
/// could otherwise answer 400 before the role was checked): resolves the session and refuses
/// a request its role may not make, for every `/admin` route but the sign-in ones.
pub async fn enforce_roles(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody, BoxBody>>, actix_web::Error> {
    if !SIGN_IN_PATHS.contains(&req.path()) {
        match resolve(req.request()).await {
            Ok(operator) => {
                let chrome = crate::web::middleware::AdminChrome {
                    operator: operator.name.clone(),
                    csrf: operator.csrf.clone(),
                };
                req.extensions_mut().insert(chrome);
                req.extensions_mut().insert(operator);
            }
            Err(e) => return Ok(req.error_response(e).map_into_right_body()),
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// The signed-in operator of `req`, allowed by role to make it (else 303 to the sign-in
/// page, or 403).
async fn resolve(req: &HttpRequest) -> Result<Operator, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| WebError::Internal(anyhow::anyhow!("application state missing")))?;
    let token = req
        .cookie(cookies::SESSION)
        .and_then(|c| RandomToken::parse(c.value()))
        .ok_or(LoginRequired)?;
    let session_hash = state.keyed.hash("session", &token);
    let now = OffsetDateTime::now_utc();
    let row = state
        .store
        .session(&session_hash, now)
        .await
        .map_err(WebError::from)?
        .ok_or(LoginRequired)?;
    let seen_long_ago = row
        .last_seen_at
        .as_deref()
        .and_then(crate::store::parse_ts)
        .is_none_or(|at| now - at >= SEEN_EVERY);
    if seen_long_ago {
        state
            .store
            .touch_session(&session_hash, now)
            .await
            .map_err(WebError::from)?;
    }
    let operator = Operator {
        id: row.operator_id,
        role: Role::parse(&row.role).unwrap_or(Role::Viewer),
        name: row.operator_name,
        csrf: row.csrf_token,
        address: client_addr(req),
        session_hash,
        session_public_id: row.public_id.unwrap_or_default(),
    };
    let needed = required_role(
        req.method(),
        req.match_pattern().as_deref().unwrap_or(req.path()),
    );
    if operator.role < needed {
        let target = format!("{} {}", req.method(), req.path());
        operator
            .audit(&state, AuditAction::Forbidden, &target, Outcome::Denied)
            .await;
        return Err(Forbidden {
            operator: operator.name,
            csrf: operator.csrf,
            role: operator.role.as_str(),
            needed: needed.as_str(),
        }
        .into());
    }
    Ok(operator)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_post_route_has_a_role() {
        // `configure` above is the registry of routes; count its POST handlers.
        let source = include_str!("mod.rs");
        let registered = source
            .split("fn configure")
            .nth(1)
            .and_then(|rest| rest.split("\n}\n").next())
            .unwrap_or_default()
            .matches(".post(")
            .count();

        assert_eq!(
            registered,
            POST_ROUTES.len(),
            "a POST route is missing from POST_ROUTES"
        );
    }

    #[test]
    fn viewers_post_only_what_is_theirs_and_areas_win_over_methods() {
        assert_eq!(
            required_role(&Method::GET, "/admin/tenants/{id}"),
            Role::Viewer
        );
        assert_eq!(
            required_role(&Method::POST, "/admin/tenants/{id}/verify"),
            Role::Operator
        );
        assert_eq!(required_role(&Method::POST, "/admin/logout"), Role::Viewer);
        assert_eq!(
            required_role(&Method::POST, "/admin/anything-new"),
            Role::Operator
        );
        assert_eq!(required_role(&Method::GET, "/admin/operators"), Role::Owner);
        assert_eq!(
            required_role(&Method::POST, "/admin/operators/{name}/new"),
            Role::Owner
        );
        assert_eq!(required_role(&Method::GET, "/admin/audit"), Role::Operator);
        assert_eq!(
            required_role(&Method::GET, "/admin/audit.csv"),
            Role::Operator
        );
        assert_eq!(required_role(&Method::GET, "/admin/auditors"), Role::Viewer);
    }
}

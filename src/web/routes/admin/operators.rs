//! `/admin/operators` (owners only): add operators with a role, disable, enable, remove,
//! change roles and reset passwords. A new or reset password is generated here and shown
//! once, on the answer page; disabling or resetting ends that operator's sessions at once;
//! the last enabled owner can be neither removed, disabled nor demoted.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use crate::domain::password::hash_password;
use crate::store::{
    AuditAction, OperatorChangeError, OperatorRow, Outcome, Role, generate_password,
    valid_operator_name,
};
use crate::web::format::Stamp;
use crate::web::routes::page;
use crate::web::{AppState, WebError};

/// An operator as the list shows them.
pub struct OperatorView {
    pub name: String,
    /// As stored (the role's name).
    pub role: String,
    pub disabled_at: Option<Stamp>,
    pub created_at: Stamp,
}

fn operator_view(row: OperatorRow, now: OffsetDateTime) -> OperatorView {
    OperatorView {
        disabled_at: row.disabled_at.as_deref().map(|at| Stamp::of(at, now)),
        created_at: Stamp::of(&row.created_at, now),
        name: row.name,
        role: row.role,
    }
}

#[derive(Template)]
#[template(path = "admin/operators.html")]
struct OperatorsPage {
    operator: String,
    csrf: String,
    operators: Vec<OperatorView>,
    roles: Vec<&'static str>,
    /// The operator whose password was just set, and that password: shown this once.
    password: Option<(String, String)>,
    error: Option<String>,
}

async fn render(
    operator: &Operator,
    state: &AppState,
    status: StatusCode,
    password: Option<(String, String)>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let template = OperatorsPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        operators: state
            .store
            .list_operators()
            .await?
            .into_iter()
            .map(|o| operator_view(o, OffsetDateTime::now_utc()))
            .collect(),
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        password,
        error,
    };
    page(status, template.render())
}

pub async fn list(
    operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    render(&operator, &state, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct AddForm {
    csrf: Option<String>,
    name: String,
    role: String,
}

/// Argon2 takes 19 MiB and tens of milliseconds: off the request threads.
async fn hash(password: String) -> Result<String, WebError> {
    web::block(move || hash_password(&password))
        .await
        .map_err(|e| WebError::Internal(anyhow::Error::new(e)))?
        .map_err(WebError::Internal)
}

/// What a refused change tells the owner, or the error it becomes.
async fn refused(
    operator: &Operator,
    state: &AppState,
    action: AuditAction,
    target: &str,
    e: OperatorChangeError,
) -> Result<HttpResponse, WebError> {
    operator
        .audit(state, action, target, Outcome::Failure)
        .await;
    match e {
        OperatorChangeError::Store(e) => Err(e.into()),
        OperatorChangeError::NotFound(_) => Err(WebError::NotFound),
        e @ (OperatorChangeError::Exists(_) | OperatorChangeError::LastOwner(_)) => {
            render(
                operator,
                state,
                StatusCode::CONFLICT,
                None,
                Some(e.to_string()),
            )
            .await
        }
    }
}

fn back() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/admin/operators"))
        .finish()
}

pub async fn add(
    operator: Operator,
    form: web::Form<AddForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let name = form.name.trim();
    let Some(role) = Role::parse(&form.role) else {
        return Err(WebError::BadRequest(format!(
            "There is no role '{}'.",
            form.role
        )));
    };
    if !valid_operator_name(name) {
        return render(
            &operator,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Operator names are 1 to 100 letters, digits and . _ @ -".to_owned()),
        )
        .await;
    }
    let password = generate_password();
    let hashed = hash(password.clone()).await?;
    let now = OffsetDateTime::now_utc();
    if let Err(e) = state.store.add_operator(name, &hashed, role, now).await {
        return refused(&operator, &state, AuditAction::OperatorAdd, name, e).await;
    }
    operator
        .audit(
            &state,
            AuditAction::OperatorAdd,
            &format!("{name} ({})", role.as_str()),
            Outcome::Success,
        )
        .await;
    tracing::info!(operator = %operator.name, added = %name, role = role.as_str(), "operator added");
    render(
        &operator,
        &state,
        StatusCode::OK,
        Some((name.to_owned(), password)),
        None,
    )
    .await
}

pub async fn reset(
    operator: Operator,
    name: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let password = generate_password();
    let hashed = hash(password.clone()).await?;
    let now = OffsetDateTime::now_utc();
    if let Err(e) = state
        .store
        .reset_operator_password(&name, &hashed, now)
        .await
    {
        return refused(
            &operator,
            &state,
            AuditAction::OperatorResetPassword,
            &name,
            e,
        )
        .await;
    }
    operator
        .audit(
            &state,
            AuditAction::OperatorResetPassword,
            &name,
            Outcome::Success,
        )
        .await;
    render(
        &operator,
        &state,
        StatusCode::OK,
        Some((name.into_inner(), password)),
        None,
    )
    .await
}

pub async fn disable(
    operator: Operator,
    name: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    if let Err(e) = state
        .store
        .disable_operator(&name, OffsetDateTime::now_utc())
        .await
    {
        return refused(&operator, &state, AuditAction::OperatorDisable, &name, e).await;
    }
    operator
        .audit(
            &state,
            AuditAction::OperatorDisable,
            &name,
            Outcome::Success,
        )
        .await;
    Ok(back())
}

pub async fn enable(
    operator: Operator,
    name: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    if let Err(e) = state
        .store
        .enable_operator(&name, OffsetDateTime::now_utc())
        .await
    {
        return refused(&operator, &state, AuditAction::OperatorEnable, &name, e).await;
    }
    operator
        .audit(&state, AuditAction::OperatorEnable, &name, Outcome::Success)
        .await;
    Ok(back())
}

pub async fn remove(
    operator: Operator,
    name: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    if let Err(e) = state.store.remove_operator(&name).await {
        return refused(&operator, &state, AuditAction::OperatorRemove, &name, e).await;
    }
    operator
        .audit(&state, AuditAction::OperatorRemove, &name, Outcome::Success)
        .await;
    Ok(back())
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf: Option<String>,
    role: String,
}

pub async fn set_role(
    operator: Operator,
    name: web::Path<String>,
    form: web::Form<RoleForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let Some(role) = Role::parse(&form.role) else {
        return Err(WebError::BadRequest(format!(
            "There is no role '{}'.",
            form.role
        )));
    };
    let target = format!("{name} ({})", role.as_str());
    if let Err(e) = state
        .store
        .set_operator_role(&name, role, OffsetDateTime::now_utc())
        .await
    {
        return refused(&operator, &state, AuditAction::OperatorRole, &target, e).await;
    }
    operator
        .audit(&state, AuditAction::OperatorRole, &target, Outcome::Success)
        .await;
    Ok(back())
}

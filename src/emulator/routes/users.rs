//! The control API for sign-in: the app's declared app roles, each tenant's users (who may
//! sign in, administrator or not, with their app roles), the tenant's user-consent policy
//! and the delegated permissions granted. Mounted under `/_emulator` by the control module.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::emulator::EmulatorState;
use crate::emulator::users::{
    Account, AccountError, Accounts, AppRole, NewAccount, UserConsentPolicy,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/app/roles")
            .route(web::get().to(list_roles))
            .route(web::post().to(declare_role)),
    )
    .route("/app/roles/{role}", web::delete().to(remove_role))
    .service(
        web::resource("/tenants/{id}/users")
            .route(web::get().to(list_users))
            .route(web::post().to(add_user)),
    )
    .service(
        web::resource("/tenants/{id}/users/{user}")
            .route(web::get().to(get_user))
            .route(web::delete().to(remove_user)),
    )
    .route(
        "/tenants/{id}/users/{user}/roles",
        web::put().to(assign_roles),
    )
    .route("/tenants/{id}/user-consent", web::put().to(set_policy))
    .service(
        web::resource("/tenants/{id}/grants")
            .route(web::get().to(grants))
            .route(web::delete().to(revoke_grants)),
    );
}

/// `{"error": "..."}` with 400, 404 or 409, as the rest of the control API answers.
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
struct Refused(StatusCode, String);

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        self.0
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.0).json(json!({ "error": self.1 }))
    }
}

type Reply = Result<HttpResponse, Refused>;

fn refuse(status: StatusCode, message: impl std::fmt::Display) -> Refused {
    Refused(status, message.to_string())
}

impl From<AccountError> for Refused {
    fn from(e: AccountError) -> Refused {
        account_error(e)
    }
}

fn account_error(e: AccountError) -> Refused {
    let status = match e {
        AccountError::NoSuchUser(_) | AccountError::NoSuchRole(_) => StatusCode::NOT_FOUND,
        AccountError::UserExists(_)
        | AccountError::NameTaken(_)
        | AccountError::RoleExists(_)
        | AccountError::TooMany(_) => StatusCode::CONFLICT,
        AccountError::InvalidName(_)
        | AccountError::InvalidRole(_)
        | AccountError::InvalidDisplayName => StatusCode::BAD_REQUEST,
    };
    refuse(status, e)
}

fn role_view(r: &AppRole) -> Value {
    json!({ "id": r.id, "value": r.value, "display_name": r.display_name })
}

fn user_view(accounts: &Accounts, u: &Account) -> Value {
    json!({
        "id": u.id,
        "tenant": u.tenant,
        "display_name": u.display_name,
        "user_principal_name": u.user_principal_name,
        "mail": u.mail,
        "admin": u.admin,
        "roles": accounts.role_values(u),
        "consented_scopes": accounts.user_grant(u),
    })
}

/// The tenant of a path, which must exist.
fn tenant(state: &EmulatorState, raw: &str) -> Result<Uuid, Refused> {
    let id = Uuid::try_parse(raw).map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("'{raw}' is not a tenant id (a GUID)"),
        )
    })?;
    if state.directory().tenant(id).is_none() {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            format!("no tenant with id {id}"),
        ));
    }
    Ok(id)
}

/// A user of `tenant` named by id or user principal name.
fn user_id(accounts: &Accounts, tenant: Uuid, raw: &str) -> Result<Uuid, Refused> {
    let found = match Uuid::try_parse(raw) {
        Ok(id) => accounts.user(id),
        Err(_) => accounts.by_name(raw),
    };
    found
        .filter(|u| u.tenant == tenant)
        .map(|u| u.id)
        .ok_or_else(|| account_error(AccountError::NoSuchUser(raw.to_owned())))
}

async fn list_roles(state: web::Data<EmulatorState>) -> HttpResponse {
    let accounts = state.accounts();
    HttpResponse::Ok().json(accounts.app_roles.iter().map(role_view).collect::<Vec<_>>())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    value: String,
    display_name: Option<String>,
    id: Option<Uuid>,
}

async fn declare_role(body: web::Json<NewRole>, state: web::Data<EmulatorState>) -> Reply {
    let body = body.into_inner();
    let mut accounts = state.accounts_mut();
    let role = accounts.declare_role(body.value, body.display_name, body.id)?;
    Ok(HttpResponse::Created().json(role_view(role)))
}

async fn remove_role(role: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    state.accounts_mut().remove_role(&role)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn list_users(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let tenant = tenant(&state, &id)?;
    let accounts = state.accounts();
    let users: Vec<Value> = accounts
        .of_tenant(tenant)
        .into_iter()
        .map(|u| user_view(&accounts, u))
        .collect();
    Ok(HttpResponse::Ok().json(users))
}

/// `POST /_emulator/tenants/{id}/users`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    id: Option<Uuid>,
    display_name: String,
    user_principal_name: String,
    /// The user principal name when absent.
    mail: Option<String>,
    #[serde(default)]
    admin: bool,
    /// App role values (or ids) to assign.
    #[serde(default)]
    roles: Vec<String>,
}

async fn add_user(
    id: web::Path<String>,
    body: web::Json<NewUser>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let tenant_id = tenant(&state, &id)?;
    let body = body.into_inner();
    let dir = state.directory();
    let tenant = dir.tenant(tenant_id).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            format!("no tenant with id {tenant_id}"),
        )
    })?;
    let mut accounts = state.accounts_mut();
    let new = NewAccount {
        id: body.id,
        display_name: body.display_name,
        mail: body.mail.or_else(|| Some(body.user_principal_name.clone())),
        user_principal_name: body.user_principal_name,
        admin: body.admin,
        roles: body.roles,
    };
    let user = accounts.add(tenant, new)?.clone();
    Ok(HttpResponse::Created().json(user_view(&accounts, &user)))
}

async fn get_user(path: web::Path<(String, String)>, state: web::Data<EmulatorState>) -> Reply {
    let (id, user) = path.into_inner();
    let tenant = tenant(&state, &id)?;
    let accounts = state.accounts();
    let found = user_id(&accounts, tenant, &user)?;
    let found = accounts.user(found).ok_or(AccountError::NoSuchUser(user))?;
    Ok(HttpResponse::Ok().json(user_view(&accounts, found)))
}

async fn remove_user(path: web::Path<(String, String)>, state: web::Data<EmulatorState>) -> Reply {
    let (id, user) = path.into_inner();
    let tenant = tenant(&state, &id)?;
    let mut accounts = state.accounts_mut();
    let found = user_id(&accounts, tenant, &user)?;
    accounts.remove(tenant, found)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn assign_roles(
    path: web::Path<(String, String)>,
    roles: web::Json<Vec<String>>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let (id, user) = path.into_inner();
    let tenant = tenant(&state, &id)?;
    let mut accounts = state.accounts_mut();
    let found = user_id(&accounts, tenant, &user)?;
    let user = accounts.assign_roles(tenant, found, &roles)?.clone();
    Ok(HttpResponse::Ok().json(user_view(&accounts, &user)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    policy: UserConsentPolicy,
}

async fn set_policy(
    id: web::Path<String>,
    body: web::Json<Policy>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let tenant = tenant(&state, &id)?;
    state.accounts_mut().set_policy(tenant, body.policy);
    Ok(HttpResponse::Ok().json(json!({ "tenant": tenant, "policy": body.policy })))
}

/// Delegated grants: `all_principals` (an administrator's, for everyone) and one per user.
async fn grants(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let tenant = tenant(&state, &id)?;
    let accounts = state.accounts();
    Ok(HttpResponse::Ok().json(json!({
        "policy": accounts.policy(tenant),
        "grants": accounts.grants_of(tenant),
    })))
}

async fn revoke_grants(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let tenant = tenant(&state, &id)?;
    state.accounts_mut().forget_grants(tenant);
    Ok(HttpResponse::NoContent().finish())
}

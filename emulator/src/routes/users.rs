//! The control API for sign-in: the app roles an app declares, each tenant's users (who may
//! sign in, administrator or not, with their app roles), the tenant's user-consent policy
//! and the delegated permissions granted. Mounted under `/_emulator` by the control module;
//! an app is named by `?client_id=` (the primary app when absent), as on the consent and
//! roles endpoints.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::control::{ControlError, Reply, tenant_id, which_app};
use crate::EmulatorState;
use crate::directory::{AppRegistration, AppRole, Directory, DirectoryError};
use crate::users::{self, Account, AccountError, Accounts, NewAccount, RoleRef, UserConsentPolicy};

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

fn role_view(r: &AppRole) -> Value {
    json!({
        "id": r.id,
        "value": r.value,
        "display_name": r.display_name,
        "description": r.description,
        "allowed_member_types": r.allowed_member_types,
    })
}

/// A user, with the roles and consents that concern `app`.
fn user_view(accounts: &Accounts, u: &Account, app: &AppRegistration) -> Value {
    json!({
        "id": u.id,
        "tenant": u.tenant,
        "display_name": u.display_name,
        "user_principal_name": u.user_principal_name,
        "mail": u.mail,
        "admin": u.admin,
        "roles": users::role_values(u, app),
        "consented_scopes": accounts.user_grant(u, app.client_id),
    })
}

/// The tenant of a path, which must exist.
fn tenant(dir: &Directory, raw: &str) -> Result<Uuid, ControlError> {
    let id = tenant_id(raw)?;
    dir.tenant(id).ok_or(DirectoryError::NoSuchTenant(id))?;
    Ok(id)
}

/// The app `?client_id=` names (the primary app when absent), which must exist.
fn app<'d>(req: &HttpRequest, dir: &'d Directory) -> Result<&'d AppRegistration, ControlError> {
    let id = which_app(req)?.resolve(dir);
    Ok(dir.app(id).ok_or(DirectoryError::NoSuchApp(id))?)
}

/// A user of `tenant` named by id or user principal name.
fn user_id(accounts: &Accounts, tenant: Uuid, raw: &str) -> Result<Uuid, ControlError> {
    let found = match Uuid::try_parse(raw) {
        Ok(id) => accounts.user(id),
        Err(_) => accounts.by_name(raw),
    };
    Ok(found
        .filter(|u| u.tenant == tenant)
        .map(|u| u.id)
        .ok_or_else(|| AccountError::NoSuchUser(raw.to_owned()))?)
}

async fn list_roles(req: HttpRequest, state: web::Data<EmulatorState>) -> Reply {
    let dir = state.directory();
    let app = app(&req, &dir)?;
    Ok(HttpResponse::Ok().json(app.app_roles.iter().map(role_view).collect::<Vec<_>>()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    value: String,
    /// The value when absent.
    display_name: Option<String>,
    id: Option<Uuid>,
    #[serde(default)]
    description: String,
    /// `["User"]` when absent.
    allowed_member_types: Option<Vec<String>>,
}

async fn declare_role(
    req: HttpRequest,
    body: web::Json<NewRole>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let body = body.into_inner();
    let mut dir = state.directory_mut();
    let app = app(&req, &dir)?.client_id;
    let role = AppRole {
        id: body.id.unwrap_or_else(Uuid::new_v4),
        display_name: body.display_name.unwrap_or_else(|| body.value.clone()),
        value: body.value,
        description: body.description,
        allowed_member_types: body
            .allowed_member_types
            .unwrap_or_else(|| vec!["User".to_owned()]),
    };
    let role = dir.declare_role(app, role)?;
    Ok(HttpResponse::Created().json(role_view(role)))
}

async fn remove_role(
    req: HttpRequest,
    role: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let mut dir = state.directory_mut();
    let app = app(&req, &dir)?.client_id;
    let removed = dir.remove_role(app, &role)?;
    state.accounts_mut().unassign_role(app, removed.id);
    Ok(HttpResponse::NoContent().finish())
}

async fn list_users(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    let app = app(&req, &dir)?;
    let accounts = state.accounts();
    let users: Vec<Value> = accounts
        .of_tenant(tenant)
        .into_iter()
        .map(|u| user_view(&accounts, u, app))
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
    /// Values (or ids) of the roles of the app `?client_id=` names to assign.
    #[serde(default)]
    roles: Vec<String>,
}

async fn add_user(
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<NewUser>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let body = body.into_inner();
    let dir = state.directory();
    let tenant_id = tenant(&dir, &id)?;
    let tenant = dir
        .tenant(tenant_id)
        .ok_or(DirectoryError::NoSuchTenant(tenant_id))?;
    let app = app(&req, &dir)?;
    let mut accounts = state.accounts_mut();
    let new = NewAccount {
        id: body.id,
        display_name: body.display_name,
        mail: body.mail.or_else(|| Some(body.user_principal_name.clone())),
        user_principal_name: body.user_principal_name,
        admin: body.admin,
        roles: body
            .roles
            .into_iter()
            .map(|role| RoleRef {
                app: app.client_id,
                role,
            })
            .collect(),
    };
    let user = accounts.add(&dir, tenant, new)?.clone();
    Ok(HttpResponse::Created().json(user_view(&accounts, &user, app)))
}

async fn get_user(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let (id, user) = path.into_inner();
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    let app = app(&req, &dir)?;
    let accounts = state.accounts();
    let found = user_id(&accounts, tenant, &user)?;
    let found = accounts.user(found).ok_or(AccountError::NoSuchUser(user))?;
    Ok(HttpResponse::Ok().json(user_view(&accounts, found, app)))
}

async fn remove_user(path: web::Path<(String, String)>, state: web::Data<EmulatorState>) -> Reply {
    let (id, user) = path.into_inner();
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    let mut accounts = state.accounts_mut();
    let found = user_id(&accounts, tenant, &user)?;
    accounts.remove(tenant, found)?;
    Ok(HttpResponse::NoContent().finish())
}

async fn assign_roles(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    roles: web::Json<Vec<String>>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let (id, user) = path.into_inner();
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    let app = app(&req, &dir)?;
    let mut accounts = state.accounts_mut();
    let found = user_id(&accounts, tenant, &user)?;
    let user = accounts
        .assign_roles(&dir, tenant, found, app.client_id, &roles)?
        .clone();
    Ok(HttpResponse::Ok().json(user_view(&accounts, &user, app)))
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
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    state.accounts_mut().set_policy(tenant, body.policy);
    Ok(HttpResponse::Ok().json(json!({ "tenant": tenant, "policy": body.policy })))
}

/// App `?client_id=`'s delegated grants: `all_principals` (an administrator's, for
/// everyone) and one per user.
async fn grants(req: HttpRequest, id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    let app = app(&req, &dir)?.client_id;
    let accounts = state.accounts();
    Ok(HttpResponse::Ok().json(json!({
        "policy": accounts.policy(tenant),
        "grants": accounts.grants_of(tenant, app),
    })))
}

async fn revoke_grants(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let dir = state.directory();
    let tenant = tenant(&dir, &id)?;
    let app = app(&req, &dir)?.client_id;
    state.accounts_mut().forget_grants(tenant, app);
    Ok(HttpResponse::NoContent().finish())
}

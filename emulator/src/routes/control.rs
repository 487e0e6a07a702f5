//! The control API under `/_emulator/`: what tests and benchmarks use to shape the world
//! (tenants, consent, roles, the clock) and to observe it (request counts).
//!
//! It has no authentication: the emulator is a test tool and listens on loopback by default.

use std::sync::{Arc, RwLock};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::EmulatorState;
use crate::audit::Refusal;
use crate::certificate::ClientCertificate;
use crate::clock::rfc3339_seconds;
use crate::directory::{
    Directory, DirectoryError, FederatedCredential, MAX_CERTIFICATES, MAX_FEDERATED,
    MAX_FEDERATED_FIELD, MAX_USERS, NewTenant, ServicePrincipal, TOKEN_EXCHANGE_AUDIENCE, Tenant,
    is_dns_name,
};
use crate::faults::{FaultRequest, Faults};
use crate::seed;
use crate::users::AccountError;

/// One request may create this many tenants (benchmarks use 10,000 and more).
const MAX_CREATE: u32 = 100_000;
/// Tenants added per hold of the directory's write lock: about a millisecond's work, so
/// that token and Graph requests are served while 100,000 tenants are created.
const INSERT_CHUNK: usize = 1000;
const MAX_CLOCK_STEP: u32 = 10 * 365 * 24 * 3600;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(1 << 20)
            .error_handler(|e, _req| {
                ControlError::BadRequest(format!("invalid JSON body: {e}")).into()
            }),
    )
    .route("/", web::get().to(index))
    .route("/static/emulator.css", web::get().to(stylesheet))
    .route("/app", web::get().to(app))
    .service(
        web::resource("/app/certificates")
            .route(web::get().to(list_certificates))
            .route(web::post().to(add_certificate))
            .route(web::delete().to(clear_certificates)),
    )
    .service(
        web::resource("/app/federated")
            .route(web::get().to(list_federated))
            .route(web::post().to(add_federated))
            .route(web::delete().to(clear_federated)),
    )
    .service(
        web::resource("/faults")
            .route(web::get().to(global_faults))
            .route(web::put().to(set_global_faults))
            .route(web::delete().to(clear_global_faults)),
    )
    .service(
        web::resource("/tenants/{id}/faults")
            .route(web::get().to(tenant_faults))
            .route(web::put().to(set_tenant_faults))
            .route(web::delete().to(clear_tenant_faults)),
    )
    .service(
        web::resource("/tenants")
            .route(web::get().to(list_tenants))
            .route(web::post().to(create_tenants)),
    )
    .service(
        web::resource("/tenants/{id}")
            .route(web::get().to(get_tenant))
            .route(web::delete().to(delete_tenant)),
    )
    .service(
        web::resource("/tenants/{id}/consent")
            .route(web::post().to(grant_consent))
            .route(web::delete().to(revoke_consent)),
    )
    .route("/tenants/{id}/roles", web::put().to(set_roles))
    .service(
        web::resource("/requests")
            .route(web::get().to(requests))
            .route(web::delete().to(reset_requests)),
    )
    .service(
        web::resource("/clock")
            .route(web::get().to(clock))
            .route(web::post().to(advance_clock)),
    )
    .configure(super::users::configure)
    .default_service(web::to(|req: HttpRequest| async move {
        ControlError::NotFound(format!(
            "no control endpoint {} {}",
            req.method(),
            req.path()
        ))
        .error_response()
    }));
}

/// Control-API failures, as `{"error": "..."}`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ControlError {
    /// 400: the request body or path is not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// 404: no such tenant or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// 409: the directory is not in a state that allows this (duplicate id or domain,
    /// roles for a tenant that never consented).
    #[error("{0}")]
    Conflict(String),
    /// 503: the emulator is stopping and its blocking-task pool no longer takes work.
    #[error("the emulator is shutting down")]
    ShuttingDown,
    /// 503: the system's random number generator failed while making a signing key.
    #[error("no new signing key could be made; try again")]
    NoKey,
}

impl ResponseError for ControlError {
    fn status_code(&self) -> StatusCode {
        match self {
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::ShuttingDown | ControlError::NoKey => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response =
            HttpResponse::build(self.status_code()).json(json!({ "error": self.to_string() }));
        response
            .extensions_mut()
            .insert(Refusal::new(None, &self.to_string()));
        response
    }
}

impl From<AccountError> for ControlError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NoSuchUser(_)
            | AccountError::NoSuchApp(_)
            | AccountError::NoSuchRole(_) => ControlError::NotFound(e.to_string()),
            AccountError::UserExists(_) | AccountError::NameTaken(_) | AccountError::TooMany(_) => {
                ControlError::Conflict(e.to_string())
            }
            AccountError::InvalidName(_)
            | AccountError::InvalidDisplayName
            | AccountError::NotForUsers(_) => ControlError::BadRequest(e.to_string()),
        }
    }
}

impl From<DirectoryError> for ControlError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NoSuchTenant(_)
            | DirectoryError::NoSuchApp(_)
            | DirectoryError::NoSuchRole(_) => ControlError::NotFound(e.to_string()),
            DirectoryError::InvalidDomain(_)
            | DirectoryError::InvalidPermission(_)
            | DirectoryError::InvalidRole(_) => ControlError::BadRequest(e.to_string()),
            DirectoryError::TenantExists(_)
            | DirectoryError::DomainTaken(_)
            | DirectoryError::NotConsented(_)
            | DirectoryError::RoleExists(_)
            | DirectoryError::TooManyRoles => ControlError::Conflict(e.to_string()),
        }
    }
}

pub(super) type Reply = Result<HttpResponse, ControlError>;

/// What the control API says about a tenant: `consented`, `roles` and
/// `service_principal_id` are about the primary app, `consents` about every app.
fn tenant_view(t: &Tenant, primary: Uuid) -> Value {
    let consent = t.consent(primary);
    json!({
        "id": t.id,
        "domain": t.initial_domain,
        "display_name": t.display_name,
        "verified_domains": t.domains().collect::<Vec<_>>(),
        "user_count": t.user_count,
        "created_at": rfc3339_seconds(t.created_at),
        "consented": consent.is_some(),
        "roles": consent.map(|c| c.roles.iter().collect::<Vec<_>>()).unwrap_or_default(),
        "consented_at": consent.map(|c| rfc3339_seconds(c.consented_at)),
        "service_principal_id": consent.map(|c| c.object_id),
        "consents": t.consents.iter().map(|c| json!({
            "client_id": c.app_id,
            "roles": c.roles,
            "consented_at": rfc3339_seconds(c.consented_at),
            "service_principal_id": c.object_id,
        })).collect::<Vec<_>>(),
    })
}

/// `?client_id=` on the endpoints about one app (consent, granted roles, app roles, users'
/// role assignments, delegated grants): which app; the primary when absent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WhichApp {
    client_id: Option<Uuid>,
}

impl WhichApp {
    pub(super) fn resolve(&self, dir: &Directory) -> Uuid {
        self.client_id
            .unwrap_or_else(|| dir.primary_app().client_id)
    }
}

pub(super) fn which_app(req: &HttpRequest) -> Result<WhichApp, ControlError> {
    web::Query::<WhichApp>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ControlError::BadRequest(format!("query: {e}")))
}

pub(super) fn tenant_id(raw: &str) -> Result<Uuid, ControlError> {
    Uuid::try_parse(raw)
        .map_err(|_| ControlError::BadRequest(format!("'{raw}' is not a tenant id (a GUID)")))
}

async fn index() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "endpoints": {
            "GET /_emulator/app": "the registered application",
            "GET|POST|DELETE /_emulator/app/certificates": "certificates whose keys sign client assertions: list, register {\"pem\": ...}, remove all",
            "GET|POST|DELETE /_emulator/app/federated": "federated credentials: list, register {\"issuer\", \"subject\", \"audience\", \"pem\"}, remove all",
            "GET|PUT|DELETE /_emulator/faults": "faults injected on the token and Graph endpoints for every tenant",
            "GET|PUT|DELETE /_emulator/tenants/{id}/faults": "one tenant's own faults, which replace the global ones for it",
            "GET /_emulator/tenants": "every tenant",
            "POST /_emulator/tenants": "create one tenant, or {\"count\": N} generated ones",
            "GET|DELETE /_emulator/tenants/{id}": "one tenant; delete it",
            "POST|DELETE /_emulator/tenants/{id}/consent": "grant consent as Accept does; revoke it",
            "PUT /_emulator/tenants/{id}/roles": "replace the granted roles (a JSON array)",
            "GET|DELETE /_emulator/requests": "request counts per endpoint and tenant; reset them",
            "GET|POST /_emulator/clock": "the emulator's clock; {\"advance_seconds\": N} moves it forward",
            "GET|POST /_emulator/app/roles": "app roles the app declares: list, declare {\"value\", \"display_name\"?, \"id\"?}",
            "DELETE /_emulator/app/roles/{value or id}": "remove an app role and its assignments",
            "GET|POST /_emulator/tenants/{id}/users": "who can sign in: list, create {\"display_name\", \"user_principal_name\", \"mail\"?, \"admin\"?, \"roles\"?}",
            "GET|DELETE /_emulator/tenants/{id}/users/{id or name}": "one user; delete it",
            "PUT /_emulator/tenants/{id}/users/{id or name}/roles": "replace the user's app roles (a JSON array of values)",
            "PUT /_emulator/tenants/{id}/user-consent": "what users may consent to: {\"policy\": \"none\" | \"low_impact\" | \"all\"}",
            "GET|DELETE /_emulator/tenants/{id}/grants": "delegated permissions granted by users and administrators; revoke them all",
            "GET /_emulator/fixture": "the apps, tenants and consents as a fixture (JSON; ?format=toml for TOML); secrets as SHA-256 only",
            "POST /_emulator/reset": "back to the fixture (or the built-in defaults): directory, faults, hostile modes and counts",
            "GET /_emulator/keys": "the signing keys: the current one and the retired ones still published",
            "POST /_emulator/keys/rotate": "a new signing key from now on; the old one stays published until its tokens expire",
            "GET|POST|DELETE /_emulator/hostile": "hostile modes: tokens wrong in one way ({\"mode\": \"expired\", \"tokens\": [\"id_token\"], \"count\": 2}) or throttling that counts early retries ({\"mode\": \"throttle\"})",
            "GET|DELETE /_emulator/audit": "the last requests (?limit=N, newest first) with who asked and why refused ones were refused",
        }
    }))
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/emulator.css"))
}

async fn app(state: web::Data<EmulatorState>) -> HttpResponse {
    let dir = state.directory();
    let app = dir.primary_app();
    HttpResponse::Ok().json(json!({
        "client_id": app.client_id,
        "display_name": app.display_name,
        "redirect_uris": app.redirect_uris,
        "permissions": app.required_roles,
        "certificates": app.certificates.iter().map(certificate_view).collect::<Vec<_>>(),
        "federated": app.federated.iter().map(federated_view).collect::<Vec<_>>(),
        "other_apps": dir.apps()[1..].iter().map(|a| a.client_id).collect::<Vec<_>>(),
    }))
}

fn certificate_view(c: &ClientCertificate) -> Value {
    json!({
        "x5t": c.x5t(),
        "x5t#S256": c.x5t_s256(),
        "thumbprint": c.thumbprint(),
        "common_name": c.common_name,
        "not_before": rfc3339_seconds(c.not_before),
        "not_after": rfc3339_seconds(c.not_after),
    })
}

fn federated_view(f: &FederatedCredential) -> Value {
    json!({
        "issuer": f.issuer,
        "subject": f.subject,
        "audience": f.audience,
        "certificate": certificate_view(&f.certificate),
    })
}

fn parse_certificate(pem: &str) -> Result<ClientCertificate, ControlError> {
    ClientCertificate::from_pem(pem).map_err(|e| ControlError::BadRequest(format!("pem: {e}")))
}

async fn list_certificates(state: web::Data<EmulatorState>) -> HttpResponse {
    let dir = state.directory();
    let all: Vec<Value> = dir
        .primary_app()
        .certificates
        .iter()
        .map(certificate_view)
        .collect();
    HttpResponse::Ok().json(all)
}

/// `POST /_emulator/app/certificates`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCertificate {
    /// The certificate only, never its key: `-----BEGIN CERTIFICATE-----...`.
    pem: String,
}

/// Registers a certificate, as uploading one under "Certificates & secrets" does. Expired
/// ones are accepted, so that clients' handling of an expired credential can be tested.
async fn add_certificate(
    body: web::Json<NewCertificate>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let certificate = parse_certificate(&body.pem)?;
    let mut dir = state.directory_mut();
    let certificates = &mut dir.primary_app_mut().certificates;
    if certificates
        .iter()
        .any(|c| c.x5t_s256() == certificate.x5t_s256())
    {
        return Err(ControlError::Conflict(format!(
            "the certificate {} is already registered",
            certificate.thumbprint()
        )));
    }
    if certificates.len() >= MAX_CERTIFICATES {
        return Err(ControlError::Conflict(format!(
            "the app already has {MAX_CERTIFICATES} certificates"
        )));
    }
    let view = certificate_view(&certificate);
    certificates.push(certificate);
    Ok(HttpResponse::Created().json(view))
}

async fn clear_certificates(state: web::Data<EmulatorState>) -> HttpResponse {
    state.directory_mut().primary_app_mut().certificates.clear();
    HttpResponse::NoContent().finish()
}

async fn list_federated(state: web::Data<EmulatorState>) -> HttpResponse {
    let dir = state.directory();
    let all: Vec<Value> = dir
        .primary_app()
        .federated
        .iter()
        .map(federated_view)
        .collect();
    HttpResponse::Ok().json(all)
}

/// `POST /_emulator/app/federated`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFederated {
    issuer: String,
    subject: String,
    audience: Option<String>,
    /// A certificate for the issuer's signing key (Entra reads the issuer's JWKS instead).
    pem: String,
}

async fn add_federated(body: web::Json<NewFederated>, state: web::Data<EmulatorState>) -> Reply {
    let body = body.into_inner();
    let audience = body
        .audience
        .unwrap_or_else(|| TOKEN_EXCHANGE_AUDIENCE.to_owned());
    for (name, value) in [
        ("issuer", &body.issuer),
        ("subject", &body.subject),
        ("audience", &audience),
    ] {
        if value.trim().is_empty() || value.len() > MAX_FEDERATED_FIELD {
            return Err(ControlError::BadRequest(format!(
                "{name} must be 1 to {MAX_FEDERATED_FIELD} characters"
            )));
        }
    }
    let credential = FederatedCredential {
        issuer: body.issuer,
        subject: body.subject,
        audience,
        certificate: parse_certificate(&body.pem)?,
    };
    let mut dir = state.directory_mut();
    let federated = &mut dir.primary_app_mut().federated;
    // The issuer and subject pair must be unique within an app (same Graph page).
    if federated
        .iter()
        .any(|f| f.issuer == credential.issuer && f.subject == credential.subject)
    {
        return Err(ControlError::Conflict(format!(
            "a federated credential for issuer '{}' and subject '{}' already exists",
            credential.issuer, credential.subject
        )));
    }
    if federated.len() >= MAX_FEDERATED {
        return Err(ControlError::Conflict(format!(
            "the app already has {MAX_FEDERATED} federated credentials"
        )));
    }
    let view = federated_view(&credential);
    federated.push(credential);
    Ok(HttpResponse::Created().json(view))
}

async fn clear_federated(state: web::Data<EmulatorState>) -> HttpResponse {
    state.directory_mut().primary_app_mut().federated.clear();
    HttpResponse::NoContent().finish()
}

fn parse_faults(body: web::Json<FaultRequest>) -> Result<Faults, ControlError> {
    Faults::try_from(body.into_inner()).map_err(|e| ControlError::BadRequest(e.to_string()))
}

/// The global faults and every tenant's own.
async fn global_faults(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "global": state.faults.global(),
        "tenants": state.faults.tenants(),
    }))
}

async fn set_global_faults(
    body: web::Json<FaultRequest>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let faults = parse_faults(body)?;
    let view = faults.view();
    state.faults.set_global(Some(faults));
    Ok(HttpResponse::Ok().json(view))
}

/// Clears the global faults; tenants' own faults stay.
async fn clear_global_faults(state: web::Data<EmulatorState>) -> HttpResponse {
    state.faults.set_global(None);
    HttpResponse::NoContent().finish()
}

/// The tenant id of a faults path, for a tenant that exists.
fn faults_tenant(raw: &str, state: &EmulatorState) -> Result<Uuid, ControlError> {
    let id = tenant_id(raw)?;
    state
        .directory()
        .tenant(id)
        .ok_or(DirectoryError::NoSuchTenant(id))?;
    Ok(id)
}

/// `faults` is `null` when the tenant has none of its own (the global ones then apply).
async fn tenant_faults(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let id = faults_tenant(&id, &state)?;
    Ok(HttpResponse::Ok().json(json!({
        "tenant": id,
        "faults": state.faults.tenant(id),
    })))
}

/// Replaces the global faults for this tenant: `{}` exempts it from them.
async fn set_tenant_faults(
    id: web::Path<String>,
    body: web::Json<FaultRequest>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let id = faults_tenant(&id, &state)?;
    let faults = parse_faults(body)?;
    let view = faults.view();
    state.faults.set_tenant(id, Some(faults));
    Ok(HttpResponse::Ok().json(view))
}

async fn clear_tenant_faults(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let id = faults_tenant(&id, &state)?;
    state.faults.set_tenant(id, None);
    Ok(HttpResponse::NoContent().finish())
}

/// Every tenant, in creation order. Under the directory's lock, which every token and Graph
/// request takes, only a pointer per tenant is copied; the sorting and the JSON (most of a
/// second at 100,000 tenants) are done after it is released, off the worker.
async fn list_tenants(state: web::Data<EmulatorState>) -> Reply {
    let primary = state.directory().primary_app().client_id;
    let tenants = snapshot(&state.directory);
    let body = web::block(move || tenant_list(tenants, primary))
        .await
        .map_err(|_| ControlError::ShuttingDown)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

/// The directory's tenants as they are now; the lock is released on return.
fn snapshot(lock: &RwLock<Directory>) -> Vec<Arc<Tenant>> {
    lock.read().unwrap_or_else(|p| p.into_inner()).snapshot()
}

/// The JSON array `GET /_emulator/tenants` answers, from a [`snapshot`].
fn tenant_list(mut tenants: Vec<Arc<Tenant>>, primary: Uuid) -> Vec<u8> {
    tenants.sort_unstable_by_key(|t| t.seq);
    let views: Vec<Value> = tenants.iter().map(|t| tenant_view(t, primary)).collect();
    // A `Value` always serialises.
    serde_json::to_vec(&views).unwrap_or_default()
}

async fn get_tenant(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let id = tenant_id(&id)?;
    let dir = state.directory();
    let t = dir.tenant(id).ok_or(DirectoryError::NoSuchTenant(id))?;
    Ok(HttpResponse::Ok().json(tenant_view(t, dir.primary_app().client_id)))
}

/// `POST /_emulator/tenants`: one tenant described in full, or `count` generated ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTenants {
    count: Option<u32>,
    id: Option<Uuid>,
    display_name: Option<String>,
    /// The `*.onmicrosoft.com` domain, or just its first label.
    domain: Option<String>,
    /// Custom domains besides the initial one.
    verified_domains: Option<Vec<String>>,
    users: Option<u32>,
    /// Consent right away, as if an administrator had clicked Accept.
    consented: Option<bool>,
    /// With `consented`: the roles to grant instead of the app's permissions.
    roles: Option<Vec<String>>,
}

impl CreateTenants {
    fn count(&self) -> Result<u32, ControlError> {
        match self.count.unwrap_or(1) {
            count @ 1..=MAX_CREATE => Ok(count),
            _ => Err(ControlError::BadRequest(format!(
                "count must be between 1 and {MAX_CREATE}"
            ))),
        }
    }

    fn into_new_tenants(self, first_number: u64) -> Result<Vec<NewTenant>, ControlError> {
        let count = self.count()?;
        let users = self.users.unwrap_or(if count == 1 { 25 } else { 5 });
        if users > MAX_USERS {
            return Err(ControlError::BadRequest(format!(
                "users must be at most {MAX_USERS}"
            )));
        }
        if count > 1 {
            if self.id.is_some()
                || self.display_name.is_some()
                || self.domain.is_some()
                || self.verified_domains.is_some()
            {
                return Err(ControlError::BadRequest(
                    "with count above 1, tenants are generated: leave out id, display_name, domain and verified_domains".into(),
                ));
            }
            return Ok((0..u64::from(count))
                .map(|n| seed::generated_tenant(first_number + n, users))
                .collect());
        }
        let mut tenant = seed::generated_tenant(first_number, users);
        if let Some(id) = self.id {
            tenant.id = id;
        }
        if let Some(name) = self.display_name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 256 {
                return Err(ControlError::BadRequest(
                    "display_name must be 1 to 256 characters".into(),
                ));
            }
            tenant.display_name = name.to_owned();
        }
        if let Some(domain) = self.domain {
            let domain = domain.trim().to_ascii_lowercase();
            let domain = if domain.contains('.') {
                domain
            } else {
                format!("{domain}.onmicrosoft.com")
            };
            if !domain.ends_with(".onmicrosoft.com") || !is_dns_name(&domain) {
                return Err(ControlError::BadRequest(format!(
                    "domain '{domain}' must be a *.onmicrosoft.com name; put custom domains in verified_domains"
                )));
            }
            tenant.initial_domain = domain;
        }
        if let Some(custom) = self.verified_domains {
            tenant.custom_domains = custom
                .into_iter()
                .map(|d| d.trim().to_ascii_lowercase())
                .collect();
        }
        Ok(vec![tenant])
    }
}

async fn create_tenants(body: web::Json<CreateTenants>, state: web::Data<EmulatorState>) -> Reply {
    let body = body.into_inner();
    let count = body.count()?;
    if let Some(bad) = body
        .roles
        .iter()
        .flatten()
        .find(|r| !crate::permissions::is_well_formed(r))
    {
        return Err(DirectoryError::InvalidPermission(bad.clone()).into());
    }
    let now = state.clock.now();
    let (first, app) = {
        let mut dir = state.directory_mut();
        let first = dir.reserve_numbers(u64::from(count));
        let app = dir.primary_app();
        (first, (app.client_id, app.required_roles.clone()))
    };
    // Building 100,000 tenants and their JSON takes a while: outside the lock, and off the
    // worker, which keeps serving other requests meanwhile.
    let (tenants, answer) = web::block(move || build_tenants(body, first, app, now))
        .await
        .map_err(|_| ControlError::ShuttingDown)??;
    insert_in_chunks(&state.directory, tenants, tokio::task::yield_now).await?;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(answer))
}

/// The tenants a create request asks for, consented as asked to the primary app (its
/// client id and permissions), and the JSON that answers it.
fn build_tenants(
    body: CreateTenants,
    first: u64,
    (app_id, app_roles): (Uuid, Vec<String>),
    now: time::OffsetDateTime,
) -> Result<(Vec<Tenant>, Vec<u8>), ControlError> {
    let consented = body.consented.unwrap_or(false) || body.roles.is_some();
    let roles = body.roles.clone().unwrap_or(app_roles);
    let tenants: Vec<Tenant> = body
        .into_new_tenants(first)?
        .into_iter()
        .map(|new| {
            let consent =
                consented.then(|| ServicePrincipal::new(app_id, roles.iter().cloned(), now));
            Tenant::new(new, now, consent.into_iter().collect())
        })
        .collect();
    let views: Vec<Value> = tenants.iter().map(|t| tenant_view(t, app_id)).collect();
    let answer = serde_json::to_vec(&views).map_err(|e| ControlError::BadRequest(e.to_string()))?;
    Ok((tenants, answer))
}

/// Adds `tenants` [`INSERT_CHUNK`] at a time, each chunk in one short hold of the lock,
/// awaiting `between` after each (a yield, so that the worker serves other requests).
/// Everything is checked first, so a request that fails creates nothing; should a request
/// in between take one of the ids or domains, the tenants already added are removed again.
async fn insert_in_chunks<F: std::future::Future<Output = ()>>(
    lock: &RwLock<Directory>,
    tenants: Vec<Tenant>,
    mut between: impl FnMut() -> F,
) -> Result<(), DirectoryError> {
    let read = || lock.read().unwrap_or_else(|p| p.into_inner());
    let write = || lock.write().unwrap_or_else(|p| p.into_inner());
    for chunk in tenants.chunks(INSERT_CHUNK) {
        {
            let dir = read();
            chunk.iter().try_for_each(|t| dir.check_new(t))?;
        }
        between().await;
    }
    let mut added = Vec::with_capacity(tenants.len());
    let mut rest = tenants.into_iter().peekable();
    while rest.peek().is_some() {
        let outcome = {
            let mut dir = write();
            rest.by_ref().take(INSERT_CHUNK).try_for_each(|t| {
                let id = dir.insert_tenant(t)?.id;
                added.push(id);
                Ok(())
            })
        };
        if let Err(e) = outcome {
            let mut dir = write();
            for id in added {
                // Any of them may have been deleted since.
                let _ = dir.remove(id);
            }
            return Err(e);
        }
        between().await;
    }
    Ok(())
}

async fn delete_tenant(id: web::Path<String>, state: web::Data<EmulatorState>) -> Reply {
    let id = tenant_id(&id)?;
    state.directory_mut().remove(id)?;
    state.accounts_mut().remove_tenant(id);
    state.faults.set_tenant(id, None);
    Ok(HttpResponse::NoContent().finish())
}

async fn grant_consent(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let id = tenant_id(&id)?;
    let which = which_app(&req)?;
    let now = state.clock.now();
    let mut dir = state.directory_mut();
    let (primary, app) = (dir.primary_app().client_id, which.resolve(&dir));
    Ok(HttpResponse::Ok().json(tenant_view(dir.grant_consent(id, app, now)?, primary)))
}

async fn revoke_consent(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let id = tenant_id(&id)?;
    let which = which_app(&req)?;
    let mut dir = state.directory_mut();
    let (primary, app) = (dir.primary_app().client_id, which.resolve(&dir));
    let view = tenant_view(dir.revoke_consent(id, app)?, primary);
    // Deleting the service principal deletes its delegated grants too.
    state.accounts_mut().forget_grants(id, app);
    Ok(HttpResponse::Ok().json(view))
}

async fn set_roles(
    req: HttpRequest,
    id: web::Path<String>,
    roles: web::Json<Vec<String>>,
    state: web::Data<EmulatorState>,
) -> Reply {
    let id = tenant_id(&id)?;
    let which = which_app(&req)?;
    let mut dir = state.directory_mut();
    let (primary, app) = (dir.primary_app().client_id, which.resolve(&dir));
    Ok(HttpResponse::Ok().json(tenant_view(
        dir.set_roles(id, app, roles.into_inner())?,
        primary,
    )))
}

/// The counts are copied under their mutex, which every request takes to count itself, and
/// converted to JSON after it is released, off the worker.
async fn requests(state: web::Data<EmulatorState>) -> Reply {
    let counts = state.stats.copy();
    let body = web::block(move || counts.to_bytes())
        .await
        .map_err(|_| ControlError::ShuttingDown)?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(body))
}

async fn reset_requests(state: web::Data<EmulatorState>) -> HttpResponse {
    state.stats.reset();
    HttpResponse::NoContent().finish()
}

fn clock_view(state: &EmulatorState) -> Value {
    json!({
        "now": rfc3339_seconds(state.clock.now()),
        "offset_seconds": state.clock.offset_secs(),
    })
}

async fn clock(state: web::Data<EmulatorState>) -> HttpResponse {
    HttpResponse::Ok().json(clock_view(&state))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceClock {
    advance_seconds: u32,
}

async fn advance_clock(body: web::Json<AdvanceClock>, state: web::Data<EmulatorState>) -> Reply {
    if body.advance_seconds > MAX_CLOCK_STEP {
        return Err(ControlError::BadRequest(format!(
            "advance_seconds must be at most {MAX_CLOCK_STEP}"
        )));
    }
    state
        .clock
        .advance(body.advance_seconds)
        .map_err(|e| ControlError::BadRequest(e.to_string()))?;
    Ok(HttpResponse::Ok().json(clock_view(&state)))
}

#[cfg(test)]
mod tests {
    use std::future::ready;

    use super::*;
    use crate::directory::AppRegistration;

    fn directory() -> RwLock<Directory> {
        RwLock::new(Directory::new(AppRegistration {
            client_id: Uuid::new_v4(),
            display_name: "app".into(),
            secrets: vec![],
            redirect_uris: vec![],
            required_roles: vec![],
            app_roles: vec![],
            certificates: vec![],
            federated: vec![],
        }))
    }

    fn generated(numbers: std::ops::Range<u64>) -> Vec<Tenant> {
        let now = time::OffsetDateTime::now_utc();
        numbers
            .map(|n| Tenant::new(seed::generated_tenant(n, 1), now, Vec::new()))
            .collect()
    }

    #[tokio::test]
    async fn the_lock_is_free_between_chunks() {
        let lock = directory();
        let mut pauses = Vec::new();

        insert_in_chunks(&lock, generated(0..2 * INSERT_CHUNK as u64 + 1), || {
            let dir = lock
                .try_write()
                .expect("nobody holds the lock between chunks");
            pauses.push(dir.tenants().len());
            ready(())
        })
        .await
        .unwrap();

        let (n, last) = (INSERT_CHUNK, 2 * INSERT_CHUNK + 1);
        assert_eq!(pauses, [0, 0, 0, n, 2 * n, last], "checked, then added");
        assert_eq!(lock.read().unwrap().tenants().len(), last);
    }

    #[tokio::test]
    async fn a_conflict_found_while_adding_removes_what_was_added() {
        let lock = directory();
        let tenants = generated(0..3 * INSERT_CHUNK as u64);
        let late = tenants[2 * INSERT_CHUNK].initial_domain.clone();
        let intruder = {
            let mut t = seed::generated_tenant(99_999, 1);
            t.initial_domain = late;
            t
        };
        let mut intruder = Some(intruder);
        let mut pauses = 0;

        let outcome = insert_in_chunks(&lock, tenants, || {
            pauses += 1;
            // After the checks and the first chunk, another request takes a later domain.
            if pauses == 4 {
                let mut dir = lock.write().unwrap();
                let t = intruder.take().unwrap();
                dir.insert(t, time::OffsetDateTime::now_utc()).unwrap();
            }
            ready(())
        })
        .await;

        assert!(matches!(outcome, Err(DirectoryError::DomainTaken(_))));
        let dir = lock.read().unwrap();
        assert_eq!(dir.tenants().len(), 1, "only the intruder is left");
    }

    #[test]
    fn the_list_is_built_from_a_copy_after_the_lock_is_released() {
        let lock = directory();
        let now = time::OffsetDateTime::now_utc();
        let mut ids = Vec::new();
        let app = lock.read().unwrap().primary_app().client_id;
        {
            let mut dir = lock.write().unwrap();
            for t in generated(0..300) {
                ids.push(dir.insert_tenant(t).unwrap().id);
            }
            dir.grant_consent(ids[7], app, now).unwrap();
        }
        let expected: Vec<Value> = lock
            .read()
            .unwrap()
            .tenants()
            .into_iter()
            .map(|t| tenant_view(t, app))
            .collect();

        let tenants = snapshot(&lock);
        {
            let mut dir = lock
                .try_write()
                .expect("nobody holds the lock once the copy is taken");
            dir.revoke_consent(ids[7], app).unwrap();
            dir.remove(ids[8]).unwrap();
        }
        let listed: Vec<Value> = serde_json::from_slice(&tenant_list(tenants, app)).unwrap();

        assert_eq!(listed, expected, "as it was at the copy, in creation order");
        assert_eq!(listed[7]["consented"], true);
        assert_eq!(listed[8]["id"], json!(ids[8]));
        assert_eq!(lock.read().unwrap().tenant_count(), 299);
    }

    #[tokio::test]
    async fn a_conflict_found_by_the_checks_adds_nothing() {
        let lock = directory();
        let tenants = generated(0..INSERT_CHUNK as u64 + 1);
        let mut existing = seed::generated_tenant(99_999, 1);
        existing.initial_domain = tenants[INSERT_CHUNK].initial_domain.clone();
        lock.write()
            .unwrap()
            .insert(existing, time::OffsetDateTime::now_utc())
            .unwrap();
        let mut pauses = 0;

        let outcome = insert_in_chunks(&lock, tenants, || {
            pauses += 1;
            ready(())
        })
        .await;

        assert!(matches!(outcome, Err(DirectoryError::DomainTaken(_))));
        assert_eq!(pauses, 1, "the second chunk's check failed");
        assert_eq!(lock.read().unwrap().tenants().len(), 1);
    }
}

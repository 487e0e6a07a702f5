//! API keys on the dashboard: the list, a form to create one (the key is shown once, on
//! the answer page), and revocation.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use crate::domain::api_key::{ApiKeySecret, Scope, parse_key_name};
use crate::store::{ApiKeyRow, NewApiKey};
use crate::store::{AuditAction, Outcome};
use crate::web::format::Stamp;
use crate::web::routes::page;
use crate::web::{AppState, WebError};

pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<&'static str>,
    pub created_at: Stamp,
    pub last_used_at: Option<Stamp>,
    pub revoked_at: Option<Stamp>,
}

fn view(row: &ApiKeyRow, now: OffsetDateTime) -> ApiKeyView {
    ApiKeyView {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: row.prefix.clone(),
        scopes: row.scopes().iter().map(|s| s.as_str()).collect(),
        created_at: Stamp::of(&row.created_at, now),
        last_used_at: row.last_used_at.as_deref().map(|at| Stamp::of(at, now)),
        revoked_at: row.revoked_at.as_deref().map(|at| Stamp::of(at, now)),
    }
}

#[derive(Template)]
#[template(path = "admin/api_keys.html")]
struct KeysPage {
    operator: String,
    csrf: String,
    keys: Vec<ApiKeyView>,
    scopes: Vec<&'static str>,
    /// The key just created: shown this once.
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn render(
    operator: &Operator,
    state: &AppState,
    status: StatusCode,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Result<HttpResponse, WebError> {
    let keys = state.store.list_api_keys().await?;
    let template = KeysPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        keys: keys
            .iter()
            .map(|k| view(k, OffsetDateTime::now_utc()))
            .collect(),
        scopes: Scope::ALL.iter().map(|s| s.as_str()).collect(),
        created,
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

/// `name`, `csrf` and one `scope` per ticked box: a list of pairs, since a form repeats
/// `scope`.
pub async fn create(
    operator: Operator,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let fields = form.into_inner();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    operator.check_csrf(field("csrf"))?;
    let Some(name) = parse_key_name(field("name").unwrap_or_default()) else {
        return render(
            &operator,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Give the key a name of 1 to 100 characters.".to_owned()),
        )
        .await;
    };
    let mut scopes = Vec::new();
    for (_, raw) in fields.iter().filter(|(k, _)| k == "scope") {
        scopes.push(
            Scope::parse(raw)
                .ok_or_else(|| WebError::BadRequest(format!("There is no scope '{raw}'.")))?,
        );
    }
    if scopes.is_empty() {
        return render(
            &operator,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some("Choose at least one scope.".to_owned()),
        )
        .await;
    }
    let key = ApiKeySecret::generate();
    state
        .store
        .create_api_key(
            &NewApiKey {
                name: &name,
                prefix: &key.shown_prefix(),
                key_hash: &key.hash(),
                scopes: &scopes,
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    tracing::info!(operator = %operator.name, key_name = %name, "API key created");
    operator
        .audit(&state, AuditAction::ApiKeyCreate, &name, Outcome::Success)
        .await;
    // The answer page, not a redirect: the key exists nowhere else to be shown again.
    render(
        &operator,
        &state,
        StatusCode::OK,
        Some((name, key.expose().to_owned())),
        None,
    )
    .await
}

pub async fn revoke(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    if state
        .store
        .revoke_api_key(&id, OffsetDateTime::now_utc())
        .await?
    {
        tracing::info!(operator = %operator.name, key_id = %id, "API key revoked");
        operator
            .audit(&state, AuditAction::ApiKeyRevoke, &id, Outcome::Success)
            .await;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, "/admin/api-keys"))
        .finish())
}

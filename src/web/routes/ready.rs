//! `GET /readyz`: whether this instance does all its work, not only answer HTTP (`/health`
//! is liveness only). 200 when every background task runs and the database answers;
//! otherwise 503, saying which task is down or restarting.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::web::AppState;
use crate::web::middleware::OwnPage;

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let tasks = state.background.snapshot();
    let database = match state.store.ping().await {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            "unavailable".to_owned()
        }
    };
    let ready = database == "ok" && tasks.values().all(|t| t.is_running());
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": database,
        "tasks": tasks
            .iter()
            .map(|(name, state)| (name.to_string(), json!(state.describe())))
            .collect::<serde_json::Map<_, _>>(),
    });
    let mut response = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    }
    .insert_header(("Cache-Control", "no-store"))
    .json(body);
    // This 503 is the answer itself, for probes: not replaced by the HTML error page.
    response.extensions_mut().insert(OwnPage);
    response
}

//! `GET /readyz`: whether this instance does all its work, not only answer HTTP (`/health`
//! is liveness only). 200 when every background task runs, the database answers from the
//! file it was opened from (still there, writable) and its migrations are the ones this
//! binary knows (or those and later ones: see below); otherwise 503, saying which part is down. The answer is public, so it
//! names parts and states, never paths, versions or errors (those go to the log).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::store::SchemaError;
use crate::web::AppState;
use crate::web::middleware::OwnPage;

/// A schema this instance runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Exactly the migrations this binary knows.
    Current,
    /// Those and later ones, applied by a later consentry.
    Newer,
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let tasks = state.background.snapshot();
    let database = match state.store.ping().await {
        Ok(()) if state.store.database_file_ok() => true,
        Ok(()) => {
            tracing::warn!("readiness: the database file is gone or not writable");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            false
        }
    };
    // The same check `serve` makes at start and `consentry migrate` before migrating, with
    // one difference: a schema a later consentry migrated further keeps this instance ready.
    // In a rolling deploy `consentry migrate` runs first, while the previous version still
    // serves; its instances failing the probe at once would take every one of them out of
    // the load balancer before the new ones are up. Migrations never drop or rename what
    // the previous version reads, so it keeps working on them; it would refuse to start
    // again on that schema, which is when it is replaced.
    let migrations = match state.store.schema_status().await {
        Ok(status) => match status.require_current() {
            Ok(()) => Some(Schema::Current),
            Err(SchemaError::Newer { .. }) if status.pending.is_empty() => {
                tracing::debug!("readiness: a later consentry migrated the database");
                Some(Schema::Newer)
            }
            Err(why) => {
                tracing::warn!(reason = %why, "readiness: the database's migrations are not current");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the applied migrations cannot be read");
            None
        }
    };
    let ready = database && migrations.is_some() && tasks.values().all(|t| t.is_running());
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "database": if database { "ok" } else { "unavailable" },
        "migrations": match migrations {
            Some(Schema::Current) => "current",
            Some(Schema::Newer) => "newer",
            None => "not current",
        },
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

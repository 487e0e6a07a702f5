//! The tenant event log: appended to, except that a tenant's consecutive identical
//! failures are one row with a count and the time of the last (`record_check_event`).

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, ts};
use crate::domain::TenantId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    ConsentRecorded,
    /// A callback named a tenant that was already verified or being verified: a claim,
    /// which proves nothing by itself.
    CallbackNamed,
    ConsentDeclined,
    CallbackRejected,
    VerificationSucceeded,
    VerificationRetrying,
    VerificationFailed,
    MissingPermissions,
    AppCredentialRejected,
    VerifyRequested,
    StatusChanged,
    CheckFailed,
    /// An API key was handed an access token for the tenant (the event names the key,
    /// never the token).
    TokenIssued,
    /// A sign-in with Microsoft was refused (a bad state, an error from Microsoft, a code
    /// or ID token that did not check out).
    SignInRefused,
    /// A person signed in who cannot grant consent; they were given an invitation to
    /// forward to their administrator.
    SignInNotAdministrator,
}

impl EventKind {
    /// Failures a check may report again and again (every retry of a failing tenant):
    /// consecutive identical ones are one event with a count.
    fn repeats(self) -> bool {
        matches!(
            self,
            EventKind::VerificationRetrying
                | EventKind::VerificationFailed
                | EventKind::CheckFailed
                | EventKind::AppCredentialRejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConsentRecorded => "consent_recorded",
            EventKind::CallbackNamed => "callback_named",
            EventKind::ConsentDeclined => "consent_declined",
            EventKind::CallbackRejected => "callback_rejected",
            EventKind::VerificationSucceeded => "verification_succeeded",
            EventKind::VerificationRetrying => "verification_retrying",
            EventKind::VerificationFailed => "verification_failed",
            EventKind::MissingPermissions => "missing_permissions",
            EventKind::AppCredentialRejected => "app_credential_rejected",
            EventKind::VerifyRequested => "verify_requested",
            EventKind::StatusChanged => "status_changed",
            EventKind::CheckFailed => "check_failed",
            EventKind::TokenIssued => "token_issued",
            EventKind::SignInRefused => "sign_in_refused",
            EventKind::SignInNotAdministrator => "sign_in_not_administrator",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `None` for events that concern no known tenant (a callback with a bad state).
    pub tenant_id: Option<TenantId>,
    pub kind: EventKind,
    /// Plain words for operators; never a secret or a token.
    pub detail: String,
    /// The HTTP request that caused it, matching the logs and error pages.
    pub request_id: Option<String>,
}

/// Every column of [`EventRow`] (of an event aliased `e`) as `json_object` arguments.
pub(super) const EVENT_JSON: &str = "'id', e.id, 'tenant_id', e.tenant_id, 'kind', e.kind, \
    'detail', e.detail, 'request_id', e.request_id, 'created_at', e.created_at, \
    'repeat_count', e.repeat_count, 'last_at', e.last_at";

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct EventRow {
    pub id: String,
    pub tenant_id: Option<String>,
    pub kind: String,
    pub detail: String,
    pub request_id: Option<String>,
    /// When it (first) happened.
    pub created_at: String,
    /// How many times in a row it happened (1 for most events).
    pub repeat_count: i64,
    /// When it last happened, for a repeated event.
    pub last_at: Option<String>,
}

pub(super) async fn insert_event<'e, E>(
    executor: E,
    event: &NewEvent,
    now: OffsetDateTime,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "insert into tenant_event (id, tenant_id, kind, detail, request_id, created_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(event.tenant_id.map(|t| t.to_string()))
    .bind(event.kind.as_str())
    .bind(&event.detail)
    .bind(&event.request_id)
    .bind(ts(now))
    .execute(executor)
    .await?;
    Ok(())
}

/// Writes a check's event: a failure identical (kind and detail) to the tenant's latest
/// event counts one more on that row instead of adding one, so a tenant failing every
/// retry leaves one event with a count and a time range, not one a retry. Anything else
/// in between (a status change, a success, a "verify now") starts a new row.
pub(super) async fn record_check_event(
    conn: &mut sqlx::AnyConnection,
    event: &NewEvent,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if event.kind.repeats()
        && let Some(tenant) = event.tenant_id
    {
        let repeated = sqlx::query(
            "update tenant_event set repeat_count = repeat_count + 1, last_at = $1 \
             where id = (select id from tenant_event where tenant_id = $2 order by id desc limit 1) \
             and kind = $3 and detail = $4",
        )
        .bind(ts(now))
        .bind(tenant.to_string())
        .bind(event.kind.as_str())
        .bind(&event.detail)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if repeated > 0 {
            return Ok(());
        }
    }
    insert_event(&mut *conn, event, now).await
}

impl Store {
    pub async fn record_event(
        &self,
        event: &NewEvent,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let _changed = self.console_change();
        insert_event(&self.pool, event, now).await
    }

    /// A tenant's events, newest first.
    pub async fn events_for(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        Ok(sqlx::query_as(
            "select * from tenant_event where tenant_id = $1 order by id desc limit $2",
        )
        .bind(tenant.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A page of a tenant's events, newest first: those older than the event `before`
    /// when given. Event ids are UUIDv7, so their order is the order they were written.
    pub async fn events_page(
        &self,
        tenant: TenantId,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        Ok(sqlx::query_as(
            "select * from tenant_event where tenant_id = $1 and ($2 is null or id < $2) \
             order by id desc limit $3",
        )
        .bind(tenant.to_string())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every event, newest first (refused callbacks included).
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        Ok(
            sqlx::query_as("select * from tenant_event order by id desc limit $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

//! The store: every SQL statement consentry runs lives under this module.
//!
//! SQL is written portably (`$n` parameters, text timestamps in fixed-width RFC 3339 UTC,
//! text UUIDs, `insert ... on conflict`, `returning`) so a PostgreSQL backend can be added
//! behind the same methods without touching their callers.

mod api_key;
mod audit;
mod cache;
mod consent;
mod daily_count;
mod early_check;
mod event;
mod event_batch;
mod health;
mod idempotency;
mod invitation;
mod operator;
mod sign_in;
mod tenant;
mod webhook;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use time::OffsetDateTime;

pub use api_key::{ApiKeyRow, NewApiKey};
pub use audit::{AuditAction, AuditFilter, AuditRow, NewAuditEvent, Outcome};
pub use cache::{API_KEY_TTL, CONSOLE_TTL, SESSION_TTL, TENANT_TTL};
pub use consent::{
    ClaimRow, ConsentCallback, ConsentOutcome, ConsentRejection, Declined, DeclinedSignUp,
    MAX_PENDING_REQUESTS, NewConsentRequest, Onboarding, PurgeReport, SignedInClaim,
};
pub use daily_count::{DailyCount, DailyKind};
pub use early_check::{
    CheckAsker, EARLY_CHECK_BURST, EARLY_CHECK_SPACING, EarlyCheck, early_check_wait,
    spend_early_check,
};
pub use event::{EventKind, EventRow, NewEvent};
pub use event_batch::EventWriter;
pub use health::HealthFigures;
pub use idempotency::{CreatedOnce, IDEMPOTENCY_WINDOW, IdempotencyKey};
pub use invitation::{InvitationRow, InvitationSignUp, InvitationStatus, NewInvitation};
pub use operator::{
    MicrosoftIdentity, MicrosoftOperator, NewSession, OperatorChangeError, OperatorRow, Role,
    SessionRow, SessionView, Tied, generate_password, valid_operator_name,
};
pub use sign_in::{MAX_PENDING_SIGN_INS, NewSignInRequest, SignInPurpose, SignInRejection};
pub use tenant::{
    ATTENTION, CheckOutcome, CheckResult, ConsoleCursor, ConsoleQuery, ConsoleSort, ConsoleView,
    PageDirection, RenderedView, StatusFilter, TenantCursor, TenantFilter, TenantPageFilter,
    TenantRow,
};
pub use webhook::{
    AppAlertRow, Attempt, AttemptOutcome, ClaimedDelivery, DeliveryCounts, DeliveryFilter,
    DeliveryRow, EndpointChange, EndpointRow, NewEndpoint, OutboxEvent, RaisedAlert,
    WebhookEventRow,
};

/// The database behind consentry.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool<Sqlite>,
    /// Recently read API keys and tenants, for the API's hot path (`cache.rs`).
    caches: Arc<cache::Caches>,
}

/// Why a store call failed, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Locked past the busy timeout, full, or unreachable: nothing was written; the caller
    /// should answer 503 and the client try again.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug, a corrupt file.
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        // SQLite primary result codes: 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN.
        let unavailable = match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
            sqlx::Error::Database(db) => db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14)),
            _ => false,
        };
        if unavailable {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Other(e)
        }
    }
}

impl Store {
    /// Opens (creating if missing) the database and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| {
                format!(
                    "CONSENTRY_DATABASE_URL '{url}' is not a SQLite URL (sqlite://path/to/file.db)"
                )
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Writers queue behind each other instead of failing at once.
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .with_context(|| format!("opening the database {url}"))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("applying database migrations")?;
        Ok(Store {
            pool,
            caches: Arc::new(cache::Caches::new()),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `2026-11-21T05:02:03.123Z`: fixed width, so text order is time order.
pub fn ts(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

pub fn parse_ts(raw: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        let t = time::macros::datetime!(2026-11-21 05:02:03.5 UTC);
        assert_eq!(ts(t), "2026-11-21T05:02:03.500Z");
        assert_eq!(parse_ts(&ts(t)), Some(t));
    }
}

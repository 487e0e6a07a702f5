//! The store: every SQL statement consentry runs lives under this module.
//!
//! SQL is written portably (`$n` parameters, text timestamps in fixed-width RFC 3339 UTC,
//! text UUIDs, `insert ... on conflict`, `returning`) so a PostgreSQL backend can be added
//! behind the same methods without touching their callers.

mod api_key;
mod audit;
mod cache;
mod consent;
mod copy;
mod daily_count;
mod early_check;
mod event;
mod event_batch;
mod health;
mod idempotency;
mod invitation;
mod lease;
mod operator;
mod schema;
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
pub use copy::{CopiedTable, CopyProgress, copy_sqlite_to_postgres};
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
pub use schema::{MigrationName, SchemaError, SchemaStatus, latest_migration};
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

/// How the store's connections are made (`CONSENTRY_DATABASE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a query waits for a connection, free or newly opened, before failing.
    pub connect_timeout: Duration,
    /// How long a statement waits for a lock another connection holds before failing
    /// (SQLite's busy timeout): writers queue behind each other instead of failing at once.
    pub busy_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> DatabaseOptions {
        DatabaseOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// Opens (creating if missing) the database with the default [`DatabaseOptions`] and
    /// applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        Store::connect_with(url, &DatabaseOptions::default()).await
    }

    /// Opens (creating if missing) the database and applies pending migrations, logging
    /// each; refuses a schema this binary must not run on ([`SchemaStatus::refusal`]).
    pub async fn connect_with(url: &str, options: &DatabaseOptions) -> anyhow::Result<Store> {
        let store = Store::open(url, options).await?;
        match store.migrate().await {
            Ok(applied) => {
                for migration in applied {
                    tracing::info!(
                        version = migration.version,
                        description = %migration.description,
                        "applied a database migration"
                    );
                }
                Ok(store)
            }
            Err(e) => {
                store.close().await;
                Err(e.into())
            }
        }
    }

    /// Opens (creating if missing) the database, leaving its schema as it is.
    pub async fn open(url: &str, options: &DatabaseOptions) -> anyhow::Result<Store> {
        let shown = redacted_url(url);
        let not_sqlite = format!(
            "CONSENTRY_DATABASE_URL '{shown}' is not a SQLite URL (sqlite://path/to/file.db)"
        );
        // sqlx would take any other URL for a file name.
        if !url
            .get(..7)
            .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"))
        {
            anyhow::bail!(not_sqlite);
        }
        let connect_options = SqliteConnectOptions::from_str(url)
            .context(not_sqlite)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect_options)
            .await
            .with_context(|| format!("opening the database {shown}"))?;
        Ok(Store {
            pool,
            caches: Arc::new(cache::Caches::new()),
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A database URL fit for messages and logs: its password, if any, replaced by `***`
/// (PostgreSQL URLs carry one; SQLite's never do).
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
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
    fn urls_in_messages_never_show_a_password() {
        assert_eq!(
            redacted_url("postgres://consentry:hunter2@db.internal:5432/consentry"),
            "postgres://consentry:***@db.internal:5432/consentry"
        );
        assert_eq!(
            redacted_url("sqlite://consentry.db"),
            "sqlite://consentry.db"
        );
        assert_eq!(redacted_url("not a url"), "not a url");
    }

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        let t = time::macros::datetime!(2026-11-21 05:02:03.5 UTC);
        assert_eq!(ts(t), "2026-11-21T05:02:03.500Z");
        assert_eq!(parse_ts(&ts(t)), Some(t));
    }
}

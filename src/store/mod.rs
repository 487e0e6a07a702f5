//! The store: every SQL statement consentry runs lives under this module.
//!
//! One store, two databases: SQLite (the default, one file) and PostgreSQL (several
//! instances). Both run through sqlx's `Any` driver, so each method is written once and
//! its callers never know which database is behind it. SQL is written portably (`$n`
//! parameters, text timestamps in fixed-width RFC 3339 UTC, text UUIDs, `bigint` counts,
//! `insert ... on conflict`, `returning`); where the two dialects truly differ (full-text
//! search, JSON functions, two-argument `max`, the catalogue) a statement says both,
//! chosen by [`Dialect`]. `Any` rather than one generic or macro-expanded copy of every
//! method per database: we use no compile-time checked queries, the rows we read are
//! integers and text that `Any` carries losslessly, and one code path is one code path
//! to test. `tests/api` runs whole against either database
//! (`CONSENTRY_TEST_DATABASE=postgres`).

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
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{Any, AnyConnection, ConnectOptions, Connection, Executor, Pool};
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
    pool: Pool<Any>,
    dialect: Dialect,
    /// Recently read API keys and tenants, for the API's hot path (`cache.rs`).
    caches: Arc<cache::Caches>,
}

/// Which database a store (or a connection of its) speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL, if consentry runs on it.
    pub fn of_url(url: &str) -> Option<Dialect> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            _ => None,
        }
    }

    /// The dialect of a connection of the store's pool.
    pub fn of(conn: &AnyConnection) -> Dialect {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        }
    }

    /// `sqlite` on SQLite, `postgres` on PostgreSQL: for the few statements the two
    /// dialects cannot share.
    pub fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// A JSON object of `pairs` (`'key', value, ...`).
    fn json_object(self, pairs: &str) -> String {
        format!("{}({pairs})", self.pick("json_object", "json_build_object"))
    }

    /// A JSON array of `items`.
    fn json_array(self, items: &str) -> String {
        format!("{}({items})", self.pick("json_array", "json_build_array"))
    }

    /// The JSON array, as text, of `item` over the rows of an aggregate, in `order`
    /// (`''` for none); `[]` when there are none.
    fn json_agg(self, item: &str, order: &str) -> String {
        let order = if order.is_empty() {
            String::new()
        } else {
            format!(" order by {order}")
        };
        match self {
            Dialect::Sqlite => format!("json_group_array({item}{order})"),
            Dialect::Postgres => format!("coalesce(json_agg({item}{order}), '[]'::json)::text"),
        }
    }

    /// The text elements of the JSON array bound as parameter `param`, as a one-column
    /// subquery: `id in ({})`.
    fn json_texts(self, param: &str) -> String {
        match self {
            Dialect::Sqlite => format!("select value from json_each({param})"),
            Dialect::Postgres => format!("select json_array_elements_text({param}::json)"),
        }
    }
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
        let unavailable = match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_code(&code)),
            _ => false,
        };
        if unavailable {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Other(e)
        }
    }
}

/// A statement assembled from optional parts, its parameters numbered `$1`, `$2`, ... as
/// they are added (sqlx's `QueryBuilder` writes `?` through `Any`, which PostgreSQL
/// does not take).
pub(crate) struct Statement {
    sql: String,
    params: Vec<Param>,
}

enum Param {
    Text(String),
    Integer(i64),
}

impl Statement {
    pub(crate) fn new(sql: impl Into<String>) -> Statement {
        Statement {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Statement {
        self.sql.push_str(sql);
        self
    }

    /// Appends the next parameter's placeholder, bound to `text`.
    pub(crate) fn text(&mut self, text: impl Into<String>) -> &mut Statement {
        self.params.push(Param::Text(text.into()));
        self.sql.push_str(&format!("${}", self.params.len()));
        self
    }

    /// Appends the next parameter's placeholder, bound to `n`.
    pub(crate) fn integer(&mut self, n: i64) -> &mut Statement {
        self.params.push(Param::Integer(n));
        self.sql.push_str(&format!("${}", self.params.len()));
        self
    }

    pub(crate) fn query_as<'q, O>(
        &'q self,
    ) -> sqlx::query::QueryAs<'q, Any, O, sqlx::any::AnyArguments<'q>>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let mut query = sqlx::query_as(&self.sql);
        for param in &self.params {
            query = match param {
                Param::Text(text) => query.bind(text.as_str()),
                Param::Integer(n) => query.bind(*n),
            };
        }
        query
    }
}

/// Makes the transaction on `conn` the only one at a time that passes this point with
/// `lock` (until it commits or rolls back), for the read-then-write rules that span rows:
/// caps on pending sign-ups and sign-ins, the tenants a browser names in a day. SQLite needs nothing: a transaction
/// whose first statement writes holds the file's only write lock. PostgreSQL takes a
/// transaction-level advisory lock, which ends with the transaction (so it holds behind a
/// pooler in transaction mode, unlike a session's lock).
pub(crate) async fn serialize(conn: &mut AnyConnection, lock: &str) -> Result<(), StoreError> {
    if Dialect::of(conn) == Dialect::Postgres {
        sqlx::query("select pg_advisory_xact_lock(hashtext($1))::text")
            .bind(lock)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Whether a database error code says "not now" rather than "never": the statement did
/// nothing and may succeed when tried again. PostgreSQL's codes are five-character
/// SQLSTATEs; SQLite's are numbers below 10000 (extended result codes).
fn unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        return unavailable_sqlstate(code);
    }
    // SQLite's primary result codes: 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN.
    code.parse::<i32>()
        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13 | 14))
}

/// SQLSTATEs of a server that is away, full, shutting down, or of a statement that lost a
/// race or ran out of time: 08 connection exceptions, 53 insufficient resources (disk
/// full, too many connections), 57P01-57P03 shutdown and start-up, 57014 statement
/// timeout, 40001 serialization failure, 40P01 deadlock, 55P03 lock not available,
/// 25006 a read-only standby.
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "57014" | "40001" | "40P01" | "55P03" | "25006")
}

/// How the store's connections are made (`CONSENTRY_DATABASE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseOptions {
    /// Connections in the pool.
    pub max_connections: u32,
    /// How long a query waits for a connection, free or newly opened, before failing.
    pub connect_timeout: Duration,
    /// How long a statement waits for a lock another connection holds before failing
    /// (SQLite's busy timeout, PostgreSQL's `lock_timeout`): writers queue behind each
    /// other instead of failing at once.
    pub busy_timeout: Duration,
    /// How long one statement may run before the database cancels it (PostgreSQL's
    /// `statement_timeout`; SQLite has no such setting, its statements are bounded by
    /// the busy timeout).
    pub statement_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> DatabaseOptions {
        DatabaseOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(10),
            busy_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
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

    /// Opens (creating a SQLite file if missing) the database, leaving its schema as it is.
    pub async fn open(url: &str, options: &DatabaseOptions) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let shown = redacted_url(url);
        // sqlx would take any other URL for a SQLite file name.
        let Some(dialect) = Dialect::of_url(url) else {
            anyhow::bail!(
                "CONSENTRY_DATABASE_URL '{shown}' is neither a SQLite URL \
                 (sqlite://path/to/file.db) nor a PostgreSQL one \
                 (postgres://user:password@host:port/database)"
            );
        };
        if dialect == Dialect::Sqlite {
            // The file is created, and set to write-ahead logging (which the file keeps),
            // by one connection of its own: `Any` passes only the URL to SQLite.
            SqliteConnectOptions::from_str(url)
                .with_context(|| format!("CONSENTRY_DATABASE_URL '{shown}' is not a SQLite URL"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .connect()
                .await
                .with_context(|| format!("opening the database {shown}"))?
                .close()
                .await
                .with_context(|| format!("opening the database {shown}"))?;
        }
        let busy_ms = options.busy_timeout.as_millis();
        let statement_ms = options.statement_timeout.as_millis();
        // What every connection runs first.
        let settings: Arc<str> = match dialect {
            Dialect::Sqlite => format!(
                "pragma foreign_keys = on; pragma synchronous = normal; \
                 pragma busy_timeout = {busy_ms}"
            ),
            Dialect::Postgres => format!(
                "set lock_timeout = {busy_ms}; set statement_timeout = {statement_ms}; \
                 set client_min_messages = warning"
            ),
        }
        .into();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.connect_timeout)
            .after_connect(move |conn, _meta| {
                let settings = Arc::clone(&settings);
                Box::pin(async move {
                    conn.execute(&*settings).await?;
                    Ok(())
                })
            })
            .connect(url)
            .await
            .with_context(|| format!("opening the database {shown}"))?;
        Ok(Store {
            pool,
            dialect,
            caches: Arc::new(cache::Caches::new()),
        })
    }

    /// Which database this store runs on.
    pub fn dialect(&self) -> Dialect {
        self.dialect
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
    fn errors_that_pass_are_told_from_errors_that_stay() {
        // SQLite: SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT (517), SQLITE_FULL; not a constraint.
        assert!(unavailable_code("5") && unavailable_code("517") && unavailable_code("13"));
        assert!(!unavailable_code("2067") && !unavailable_code("19"));
        // PostgreSQL: connection lost, too many connections, shutting down, timeout.
        for code in ["08006", "53300", "57P01", "57014", "40001", "55P03"] {
            assert!(unavailable_code(code), "{code}");
        }
        // Unique violation, syntax error: a bug or a conflict, not an outage.
        assert!(!unavailable_code("23505") && !unavailable_code("42601"));
        assert_eq!(
            Dialect::of_url("postgresql://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::of_url("SQLITE://x.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("mysql://h/db"), None);
    }

    #[test]
    fn timestamps_are_fixed_width_and_round_trip() {
        let t = time::macros::datetime!(2026-11-21 05:02:03.5 UTC);
        assert_eq!(ts(t), "2026-11-21T05:02:03.500Z");
        assert_eq!(parse_ts(&ts(t)), Some(t));
    }
}

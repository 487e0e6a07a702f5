//! Tenants and the outcome of verifying them.

use std::sync::Arc;

use time::OffsetDateTime;

use super::consent::ClaimRow;
use super::event::{EVENT_JSON, EventKind, NewEvent, insert_event, record_check_event};
use super::invitation;
use super::webhook::{OutboxEvent, insert_outbox, status_changed, tenant_json};
use super::{Dialect, Store, StoreError, ts};
use crate::domain::webhook::EventType;
use crate::domain::{TenantId, TenantStatus};
use serde_json::{Value, json};

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct TenantRow {
    pub id: String,
    pub status: String,
    pub display_name: Option<String>,
    /// JSON array of domain names.
    pub verified_domains: String,
    /// JSON array of application permissions.
    pub granted_roles: String,
    pub consent_request_id: Option<String>,
    pub consented_at: String,
    pub verified_at: Option<String>,
    pub last_token_ok_at: Option<String>,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    pub verify_attempts: i64,
    pub next_verify_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_failure_at: Option<String>,
    pub consecutive_failures: i64,
    /// Bumped by every write a running check must respect (migration
    /// 20261130000002_check_revision.sql states the rule); `save_check` applies only
    /// while it is what the check read.
    #[sqlx(default)]
    #[serde(default)]
    pub revision: i64,
    /// Users as the last check that could count them read it, and when (migration
    /// 20261201000004_user_count.sql).
    #[sqlx(default)]
    #[serde(default)]
    pub user_count: Option<i64>,
    #[sqlx(default)]
    #[serde(default)]
    pub user_count_at: Option<String>,
    /// When the tenant's budget of early checks is whole again, and when the early check
    /// still to save its outcome was asked for (migration 20261201000006_early_checks.sql).
    #[sqlx(default)]
    #[serde(default)]
    pub early_checks_full_at: Option<String>,
    #[sqlx(default)]
    #[serde(default)]
    pub check_requested_at: Option<String>,
}

/// Every column of [`TenantRow`] as `json_object` arguments: a page of the console comes
/// back as one row (one JSON array) rather than a row a tenant.
const TENANT_JSON: &str = "'id', id, 'status', status, 'display_name', display_name, \
    'verified_domains', verified_domains, 'granted_roles', granted_roles, \
    'consent_request_id', consent_request_id, 'consented_at', consented_at, \
    'verified_at', verified_at, 'last_token_ok_at', last_token_ok_at, \
    'last_error_code', last_error_code, 'last_error', last_error, \
    'verify_attempts', verify_attempts, 'next_verify_at', next_verify_at, \
    'created_at', created_at, 'updated_at', updated_at, 'last_failure_at', last_failure_at, \
    'consecutive_failures', consecutive_failures, 'revision', revision, \
    'user_count', user_count, 'user_count_at', user_count_at, \
    'early_checks_full_at', early_checks_full_at, 'check_requested_at', check_requested_at";

impl TenantRow {
    pub fn tenant_id(&self) -> Option<TenantId> {
        TenantId::parse(&self.id)
    }

    pub fn status(&self) -> Option<TenantStatus> {
        TenantStatus::parse(&self.status)
    }

    pub fn granted_roles(&self) -> Vec<String> {
        serde_json::from_str(&self.granted_roles).unwrap_or_default()
    }

    pub fn verified_domains(&self) -> Vec<String> {
        serde_json::from_str(&self.verified_domains).unwrap_or_default()
    }

    /// The organisation's name, from Graph only: what a sign-up said is a claim (see
    /// [`Store::claims_for`]), never the tenant's name.
    pub fn name(&self) -> Option<&str> {
        self.display_name.as_deref()
    }

    /// Whether `claim` confirmed the consent: the sign-up whose callback Microsoft's first
    /// successful verification followed. Any other claim proves nothing by itself. The
    /// dashboard and the API both ask this.
    pub fn confirmed_by(&self, claim: &ClaimRow) -> bool {
        self.verified_at.is_some() && self.consent_request_id.as_deref() == Some(claim.id.as_str())
    }

    /// The `required` permissions not granted (compared ignoring case, as Entra does).
    pub fn missing_permissions(&self, required: &[String]) -> Vec<String> {
        let granted = self.granted_roles();
        required
            .iter()
            .filter(|r| !granted.iter().any(|g| g.eq_ignore_ascii_case(r)))
            .cloned()
            .collect()
    }

    /// Where a page that ends with this tenant continues.
    pub fn cursor(&self) -> TenantCursor {
        TenantCursor {
            consented_at: self.consented_at.clone(),
            id: self.id.clone(),
        }
    }
}

/// The dashboard's list filter.
#[derive(Debug, Default, Clone)]
pub struct TenantFilter {
    pub status: Option<TenantStatus>,
    /// Matched against id, name and domains.
    pub search: Option<String>,
    /// Only tenants verified at least once: what the dashboard lists by default, so that
    /// forged callbacks (never verified, purged after a week) do not bury real tenants.
    pub verified_only: bool,
    pub limit: i64,
}

/// The API's list filter; each condition applies only when set.
#[derive(Debug, Default, Clone)]
pub struct TenantPageFilter {
    pub status: Option<TenantStatus>,
    /// Matched as the dashboard's search is: against id, name and domains.
    pub search: Option<String>,
    /// Only tenants whose `updated_at` is at or after this instant (for sync).
    pub updated_since: Option<OffsetDateTime>,
}

/// The search both lists share: `param` (a `like` pattern from [`search_pattern`], or
/// null for no search) against the id, the organisation's name and its verified domains,
/// ignoring case.
fn search_condition(param: &str) -> String {
    format!(
        "({param} is null or lower(id) like {param} escape '\\' \
         or lower(coalesce(display_name, '')) like {param} escape '\\' \
         or lower(verified_domains) like {param} escape '\\')"
    )
}

/// `search` as a case-folded `like` pattern matching it anywhere, its wildcards escaped.
fn search_pattern(search: &str) -> String {
    let escaped = search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
}

/// A position in the tenants ordered by (consented_at, id): a unique key, so a page
/// continues after exactly the tenant it ended with, whatever was added meanwhile (new
/// consents sort last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCursor {
    pub consented_at: String,
    pub id: String,
}

/// What one check of a tenant found, and what follows from it.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub status: TenantStatus,
    /// The facts a successful check read, or the error of a failed one.
    pub result: CheckResult,
    /// The next check; `None` stops checking (until an operator asks).
    pub next_at: Option<OffsetDateTime>,
    pub event: EventKind,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub enum CheckResult {
    Verified {
        /// `None` when Graph refused to name the organisation (the token lacks the role).
        display_name: Option<String>,
        verified_domains: Vec<String>,
        granted_roles: Vec<String>,
        /// Required permissions that are not granted (empty when the tenant is active).
        missing_permissions: Vec<String>,
        /// The tenant's users, when the check could count them (`None` keeps the last count).
        user_count: Option<u64>,
    },
    Failed {
        code: String,
        message: String,
    },
}

impl Store {
    pub async fn tenant(&self, id: TenantId) -> Result<Option<TenantRow>, StoreError> {
        Ok(sqlx::query_as("select * from tenant where id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn list_tenants(&self, filter: &TenantFilter) -> Result<Vec<TenantRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select * from tenant where ($1 is null or status = $1) and {} \
             and ($4 = 0 or verified_at is not null) order by consented_at desc limit $3",
            search_condition("$2")
        ))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.search.as_deref().map(search_pattern))
        .bind(if filter.limit > 0 { filter.limit } else { 500 })
        .bind(i64::from(filter.verified_only))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Up to `limit` tenants after `after` in (consented_at, id) order that match `filter`:
    /// the API's pages. The filter only narrows the walk, so a cursor continues the same
    /// order whatever the filter; a tenant written while a client pages with
    /// `updated_since` still matches it (its `updated_at` only grows).
    pub async fn tenants_page(
        &self,
        filter: &TenantPageFilter,
        after: Option<&TenantCursor>,
        limit: i64,
    ) -> Result<Vec<TenantRow>, StoreError> {
        // Spelled out rather than a row-value comparison so that both SQLite and
        // PostgreSQL walk the (consented_at, id) index.
        Ok(sqlx::query_as(&format!(
            "select * from tenant where ($1 is null or status = $1) and {} \
             and ($3 is null or updated_at >= $3) \
             and ($4 is null or consented_at > $4 or (consented_at = $4 and id > $5)) \
             order by consented_at, id limit $6",
            search_condition("$2")
        ))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.search.as_deref().map(search_pattern))
        // Stored timestamps are fixed-width UTC (`ts`), so text order is time order.
        .bind(filter.updated_since.map(ts))
        .bind(after.map(|c| c.consented_at.as_str()))
        .bind(after.map(|c| c.id.as_str()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Tenants whose verification is due, oldest due first.
    pub async fn tenants_due(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<TenantRow>, StoreError> {
        Ok(sqlx::query_as(
            "select * from tenant where next_verify_at is not null and next_verify_at <= $1 \
             order by next_verify_at limit $2",
        )
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims a due tenant for one check, across every instance on this database: if its
    /// check is due at `now`, moves `next_verify_at` on to `lease_until` and answers the
    /// tenant as it stands; otherwise (not due, or claimed already by another lane or
    /// instance) answers `None`. One conditional `update`, so of lanes racing for a tenant
    /// exactly one gets it, on SQLite (one writer) as on a database with row locks.
    ///
    /// The lease is the schedule itself, with no column of its own: the check's outcome
    /// replaces it (`save_check`), and a check whose instance died leaves the tenant due
    /// again when the lease runs out, for any instance to take over. The revision is left
    /// alone, so the claimed check can still save; a write meanwhile (a callback, "verify
    /// now") bumps it and makes the tenant due at once, as it would without the claim.
    pub async fn claim_check(
        &self,
        id: TenantId,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<TenantRow>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "update tenant set next_verify_at = $1 \
             where id = $2 and next_verify_at is not null and next_verify_at <= $3",
        )
        .bind(ts(lease_until))
        .bind(id.to_string())
        .bind(ts(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        let row = sqlx::query_as("select * from tenant where id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Tenants due for their first check since a callback or a "verify now"
    /// (`verify_attempts = 0`), most recently due first: the verifier serves them ahead of
    /// the due batch.
    pub async fn first_checks_due(
        &self,
        now: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<TenantRow>, StoreError> {
        Ok(sqlx::query_as(
            "select * from tenant where verify_attempts = 0 and next_verify_at is not null \
             and next_verify_at <= $1 order by next_verify_at desc limit $2",
        )
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether the database answers (for the readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Makes these tenants due now (e.g. after the required permissions changed), bumping
    /// their revision so that no check already running undoes it.
    pub async fn schedule_now(
        &self,
        ids: &[TenantId],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let _changed = self.console_change();
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query(
                "update tenant set next_verify_at = $1, updated_at = $1, revision = revision + 1 where id = $2",
            )
            .bind(ts(now))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Stores a check's outcome, its event and, when the status moved from `previous` (as
    /// the checker read it), a `status_changed` event, in one transaction; but only if the
    /// tenant's `revision` is still `revision`, the one the check read. Otherwise a
    /// callback, a "verify now" or another check wrote in between: the outcome is dropped
    /// (`Ok(false)`), and the tenant keeps the schedule that write gave it.
    pub async fn save_check(
        &self,
        id: TenantId,
        previous: TenantStatus,
        revision: i64,
        outcome: &CheckOutcome,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let _changed = self.console_change();
        let now_s = ts(now);
        let mut tx = self.pool.begin().await?;
        // The write comes first, so SQLite takes the write lock before reading.
        let next = outcome.next_at.map(ts);
        let touched = sqlx::query(
            "update tenant set status = $1, next_verify_at = $2, verify_attempts = verify_attempts + 1, \
             check_requested_at = null, updated_at = $3, revision = revision + 1 \
             where id = $4 and revision = $5",
        )
        .bind(outcome.status.as_str())
        .bind(&next)
        .bind(&now_s)
        .bind(id.to_string())
        .bind(revision)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if touched == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // Read under the write lock just taken, before this check sets it.
        // A number, not a bool: SQLite answers comparisons with integers.
        let first_verification = sqlx::query_scalar::<_, i64>(
            "select case when verified_at is null then 1 else 0 end from tenant where id = $1",
        )
        .bind(id.to_string())
        .fetch_one(&mut *tx)
        .await?
            == 1;
        match &outcome.result {
            CheckResult::Verified {
                display_name,
                verified_domains,
                granted_roles,
                user_count,
                ..
            } => {
                sqlx::query(
                    "update tenant set display_name = coalesce($1, display_name), verified_domains = $2, granted_roles = $3, \
                     verified_at = coalesce(verified_at, $4), last_token_ok_at = $4, last_error_code = null, last_error = null, \
                     consecutive_failures = 0, user_count = coalesce($6, user_count), \
                     user_count_at = case when $6 is null then user_count_at else $4 end where id = $5",
                )
                .bind(display_name)
                .bind(serde_json::to_string(verified_domains).unwrap_or_else(|_| "[]".into()))
                .bind(serde_json::to_string(granted_roles).unwrap_or_else(|_| "[]".into()))
                .bind(&now_s)
                .bind(id.to_string())
                .bind(user_count.and_then(|n| i64::try_from(n).ok()))
                .execute(&mut *tx)
                .await?;
            }
            CheckResult::Failed { code, message } => {
                sqlx::query(
                    "update tenant set last_error_code = $1, last_error = $2, last_failure_at = $3, \
                     consecutive_failures = consecutive_failures + 1 where id = $4",
                )
                .bind(code)
                .bind(message)
                .bind(&now_s)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
        }
        // Invitations waiting on this tenant's check move on with it, in this transaction.
        match &outcome.result {
            CheckResult::Verified {
                verified_domains, ..
            } => invitation::after_check(&mut tx, id, Some(verified_domains), None, now).await?,
            CheckResult::Failed { code, message } => {
                let why = format!("{code}: {message}");
                invitation::after_check(&mut tx, id, None, Some(&why), now).await?
            }
        }
        record_check_event(
            &mut tx,
            &NewEvent {
                tenant_id: Some(id),
                kind: outcome.event,
                detail: outcome.detail.clone(),
                request_id: None,
            },
            now,
        )
        .await?;
        if previous != outcome.status {
            let detail = format!("Status: {} → {}.", previous.label(), outcome.status.label());
            insert_event(
                &mut *tx,
                &NewEvent {
                    tenant_id: Some(id),
                    kind: EventKind::StatusChanged,
                    detail,
                    request_id: None,
                },
                now,
            )
            .await?;
        }
        if let Some(webhook) =
            check_webhook(&mut tx, id, previous, outcome, first_verification).await?
        {
            insert_outbox(&mut tx, &webhook, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The webhook event a saved check makes, if any: `tenant.connected` for a tenant's first
/// verification, `tenant.status_changed` for any other change of status.
async fn check_webhook(
    conn: &mut sqlx::AnyConnection,
    id: TenantId,
    previous: TenantStatus,
    outcome: &CheckOutcome,
    first_verification: bool,
) -> Result<Option<OutboxEvent>, StoreError> {
    let verified = matches!(outcome.result, CheckResult::Verified { .. });
    let connected = verified && first_verification;
    if !connected && previous == outcome.status {
        return Ok(None);
    }
    let row: TenantRow = sqlx::query_as("select * from tenant where id = $1")
        .bind(id.to_string())
        .fetch_one(&mut *conn)
        .await?;
    let missing = match &outcome.result {
        CheckResult::Verified {
            missing_permissions,
            ..
        } => missing_permissions.clone(),
        CheckResult::Failed { .. } => Vec::new(),
    };
    let error = match &outcome.result {
        CheckResult::Failed { code, message } => json!({ "code": code, "message": message }),
        CheckResult::Verified { .. } => Value::Null,
    };
    if !connected {
        return Ok(Some(status_changed(
            &row,
            previous,
            outcome.status,
            error,
            &missing,
        )));
    }
    Ok(Some(OutboxEvent {
        event_type: EventType::TenantConnected,
        tenant_id: Some(id),
        data: json!({
            "tenant": tenant_json(&row),
            "missing_permissions": missing,
            "consented_at": row.consented_at,
            "verified_at": row.verified_at,
        }),
    }))
}

/// The console list's order: each a unique key, the column then the id (the indexes of
/// migrations 20261201000001_console_list.sql and 20261201000007_console_severity.sql, whose
/// expressions these repeat exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsoleSort {
    /// By consent time.
    #[default]
    Consented,
    /// By organisation name, ignoring case (tenants without a name first).
    Name,
    /// By status, by severity: what needs attention first (`TenantStatus::severity`).
    Status,
    /// By the last check, successful or not (tenants never checked first).
    Checked,
}

impl ConsoleSort {
    pub const ALL: [ConsoleSort; 4] = [
        ConsoleSort::Consented,
        ConsoleSort::Name,
        ConsoleSort::Status,
        ConsoleSort::Checked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleSort::Consented => "consented",
            ConsoleSort::Name => "name",
            ConsoleSort::Status => "status",
            ConsoleSort::Checked => "checked",
        }
    }

    pub fn parse(raw: &str) -> Option<ConsoleSort> {
        ConsoleSort::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The sort column's SQL, exactly as the migration's indexes spell it.
    fn key_sql(self, dialect: Dialect) -> &'static str {
        match self {
            ConsoleSort::Consented => "consented_at",
            ConsoleSort::Name => "lower(coalesce(display_name, ''))",
            // A virtual column (migration 20261201000007_console_severity.sql).
            ConsoleSort::Status => "severity",
            ConsoleSort::Checked => dialect.pick(
                "max(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, ''))",
                "greatest(coalesce(last_token_ok_at, ''), coalesce(last_failure_at, ''))",
            ),
        }
    }

    /// `row`'s value of the sort column, as [`ConsoleSort::key_sql`] computes it.
    pub fn key_of(self, row: &TenantRow) -> String {
        match self {
            ConsoleSort::Consented => row.consented_at.clone(),
            // SQLite's `lower` folds ASCII letters only: so must the cursor's key.
            ConsoleSort::Name => row
                .display_name
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase(),
            ConsoleSort::Status => row.status().map_or(7, TenantStatus::severity).to_string(),
            ConsoleSort::Checked => {
                let ok = row.last_token_ok_at.as_deref().unwrap_or("");
                let failed = row.last_failure_at.as_deref().unwrap_or("");
                ok.max(failed).to_owned()
            }
        }
    }
}

/// The statuses of the "needs attention" view (the migration's partial indexes name
/// the same four).
pub const ATTENTION: [TenantStatus; 4] = [
    TenantStatus::Failing,
    TenantStatus::Revoked,
    TenantStatus::MissingPermissions,
    TenantStatus::Gone,
];
const ATTENTION_SQL: &str = "status in ('failing', 'revoked', 'missing_permissions', 'gone')";
/// The same four as severities (`TenantStatus::severity` ranks them first): the status
/// sort's "needs attention" view is then one range of the severity index, in order.
const ATTENTION_SEVERITY_SQL: &str = "severity <= 3";

/// Which tenants the console lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    #[default]
    Any,
    One(TenantStatus),
    /// Failing, revoked, missing permissions or gone.
    Attention,
}

/// The console list's query: filter, search and order.
#[derive(Debug, Clone, Default)]
pub struct ConsoleQuery {
    pub status: StatusFilter,
    /// Words (or word beginnings) of the name or a verified domain; or the beginning of a
    /// tenant id.
    pub search: Option<String>,
    /// Only tenants verified at least once (forged callbacks never are).
    pub verified_only: bool,
    pub sort: ConsoleSort,
    pub descending: bool,
}

/// A position in the console's order: the sort key and the id of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleCursor {
    pub key: String,
    pub id: String,
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDirection {
    /// The rows after the cursor, in the list's order.
    Forward,
    /// The rows before it (a "previous" page), returned in the list's order too.
    Backward,
}

/// `search` as a full-text query over the name and domains: its words, the last one also
/// as a prefix, as one phrase ("contoso.com" finds the domain, "conto" finds Contoso).
/// `None` when it has no word (punctuation only). SQLite's FTS5 syntax, or PostgreSQL's
/// `tsquery` (`contoso <-> com:*`; words are letters and digits only, nothing to quote).
fn fts_query(search: &str, dialect: Dialect) -> Option<String> {
    let words: Vec<String> = search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    if words.is_empty() {
        return None;
    }
    Some(match dialect {
        Dialect::Sqlite => format!("{{name domains}} : \"{}\"*", words.join(" ")),
        // The phrase within the name (weight A) or within the domains (B).
        Dialect::Postgres => {
            let last = words.len() - 1;
            let phrase = |weight: &str| {
                let terms: Vec<String> = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let prefix = if i == last { "*" } else { "" };
                        format!("{w}:{prefix}{weight}")
                    })
                    .collect();
                terms.join(" <-> ")
            };
            format!("({}) | ({})", phrase("A"), phrase("B"))
        }
    })
}

/// `search` as the beginning of a tenant id (hexadecimal digits and dashes), lower-cased;
/// `None` when it cannot be one.
fn id_prefix(search: &str) -> Option<String> {
    let lower = search.to_ascii_lowercase();
    (!lower.is_empty() && lower.chars().all(|c| c.is_ascii_hexdigit() || c == '-')).then_some(lower)
}

/// The console list's statement and its parameters ($1 status, $2 id prefix, $3 FTS
/// query; $4 and $5 the cursor's key and id; $6 the limit); `None` when the search can
/// match nothing.
#[allow(clippy::type_complexity)]
fn console_sql(
    dialect: Dialect,
    query: &ConsoleQuery,
    cursor: bool,
    direction: PageDirection,
) -> Option<(String, Option<&'static str>, Option<String>, Option<String>)> {
    let key = query.sort.key_sql(dialect);
    // Walking backward is walking the reversed order forward, then turning the page.
    let descending = query.descending != (direction == PageDirection::Backward);
    let (cmp, order) = if descending {
        ("<", "desc")
    } else {
        (">", "asc")
    };
    let mut conditions = vec!["1 = 1".to_owned()];
    match query.status {
        StatusFilter::Any => {}
        StatusFilter::One(_) => conditions.push("status = $1".to_owned()),
        StatusFilter::Attention if query.sort == ConsoleSort::Status => {
            conditions.push(ATTENTION_SEVERITY_SQL.to_owned())
        }
        StatusFilter::Attention => conditions.push(ATTENTION_SQL.to_owned()),
    }
    if query.verified_only {
        conditions.push("verified_at is not null".to_owned());
    }
    let search = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let (fts, prefix) = match search {
        Some(s) => {
            let (fts, prefix) = (fts_query(s, dialect), id_prefix(s));
            let mut any = Vec::new();
            if prefix.is_some() {
                // The primary key's index, as a range.
                any.push("(id >= $2 and id < $2 || '~')");
            }
            if fts.is_some() {
                any.push(dialect.pick(
                    "id in (select tenant_id from tenant_search where tenant_search match $3)",
                    "id in (select tenant_id from tenant_search \
                     where document @@ to_tsquery('simple', public.unaccent($3)))",
                ));
            }
            if any.is_empty() {
                return None;
            }
            conditions.push(format!("({})", any.join(" or ")));
            (fts, prefix)
        }
        None => (None, None),
    };
    if cursor {
        // A range on the key the index can seek to, then the tie-break on the id.
        // The cursor's key is text; severity is a number, which PostgreSQL will not
        // compare with text (SQLite converts it by the column's affinity).
        let at = if dialect == Dialect::Postgres && query.sort == ConsoleSort::Status {
            "cast($4 as bigint)"
        } else {
            "$4"
        };
        conditions.push(format!(
            "{key} {cmp}= {at} and ({key} {cmp} {at} or id {cmp} $5)"
        ));
    }
    let sql = format!(
        "select * from tenant where {} order by {key} {order}, id {order} limit $6",
        conditions.join(" and ")
    );
    let status = match query.status {
        StatusFilter::One(s) => Some(s.as_str()),
        _ => None,
    };
    Some((sql, status, prefix, fts))
}

/// The console's page as one JSON array of tenants (`json_object` of every column), in
/// the list's order; `'[]'` when the search can match nothing. A select-list expression
/// whose parameters [`bind_page`] binds.
fn page_json_sql(
    dialect: Dialect,
    query: &ConsoleQuery,
    cursor: bool,
    direction: PageDirection,
) -> String {
    let Some((sql, ..)) = console_sql(dialect, query, cursor, direction) else {
        return "'[]'".to_owned();
    };
    let descending = query.descending != (direction == PageDirection::Backward);
    let order = if descending { "desc" } else { "asc" };
    let key = query.sort.key_sql(dialect);
    format!(
        "(select {} from ({sql}) as page)",
        dialect.json_agg(
            &dialect.json_object(TENANT_JSON),
            &format!("{key} {order}, id {order}")
        )
    )
}

/// Binds [`console_sql`]'s parameters ($1 to $6) for a page of `query` from `from`.
fn bind_page<'q, O>(
    dialect: Dialect,
    statement: sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    query: &ConsoleQuery,
    from: Option<&'q ConsoleCursor>,
    limit: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    let (status, prefix, fts) =
        match console_sql(dialect, query, from.is_some(), PageDirection::Forward) {
            Some((_, status, prefix, fts)) => (status, prefix, fts),
            None => (None, None, None),
        };
    statement
        .bind(status)
        .bind(prefix)
        .bind(fts)
        .bind(from.map(|c| c.key.as_str()))
        .bind(from.map(|c| c.id.as_str()))
        .bind(limit)
}

/// The tenants of a page's JSON array, in the list's order.
fn page_rows(json: &str, direction: PageDirection) -> Result<Vec<TenantRow>, StoreError> {
    let mut rows: Vec<TenantRow> = parse_json(json)?;
    if direction == PageDirection::Backward {
        rows.reverse();
    }
    Ok(rows)
}

/// A JSON value SQLite built: failing to read it is a bug, not bad input.
fn parse_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Other(sqlx::Error::Decode(Box::new(e))))
}

/// Every status with its count (0 when it has no row), and how many tenants were
/// verified at least once, from `tenant_status_count`'s rows.
fn status_counts_of(rows: Vec<(String, i64, i64)>) -> (Vec<(TenantStatus, i64)>, i64) {
    let per_status = TenantStatus::ALL
        .iter()
        .map(|s| {
            let n = rows
                .iter()
                .find(|(name, _, _)| name == s.as_str())
                .map_or(0, |(_, n, _)| *n);
            (*s, n)
        })
        .collect();
    (per_status, rows.iter().map(|(_, _, v)| v).sum())
}

/// What the console's list page shows ([`Store::console_view`]).
#[derive(Debug, Clone)]
pub struct ConsoleView {
    pub rows: Vec<TenantRow>,
    /// Every status with its count.
    pub counts: Vec<(TenantStatus, i64)>,
    /// Tenants verified at least once.
    pub verified: i64,
    /// The newest events, each with its tenant's name where known.
    pub recent: Vec<(super::EventRow, Option<String>)>,
    /// What the web layer rendered of this view, kept with it so that it lives exactly as
    /// long as the view does in the cache (a second at most, less when anything changes):
    /// a page asked for again within that time is not rendered again.
    pub rendered: std::sync::OnceLock<Arc<RenderedView>>,
}

/// HTML rendered from a [`ConsoleView`] for one page (its address), in the parts the page
/// puts together.
#[derive(Debug)]
pub struct RenderedView {
    pub page: String,
    pub parts: Vec<String>,
}

impl Store {
    /// How SQLite runs a page of `query` (`EXPLAIN QUERY PLAN`), a line a step: for the
    /// benchmark, to show which index each list page walks.
    pub async fn console_plan(
        &self,
        query: &ConsoleQuery,
        cursor: bool,
    ) -> Result<Vec<String>, StoreError> {
        let Some((sql, status, prefix, fts)) =
            console_sql(self.dialect, query, cursor, PageDirection::Forward)
        else {
            return Ok(Vec::new());
        };
        if self.dialect == Dialect::Postgres {
            return Ok(sqlx::query_scalar(&format!("explain {sql}"))
                .bind(status)
                .bind(prefix)
                .bind(fts)
                .bind(cursor.then_some(""))
                .bind(cursor.then_some(""))
                .bind(51_i64)
                .fetch_all(&self.pool)
                .await?);
        }
        let rows: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("explain query plan {sql}"))
                .bind(status)
                .bind(prefix)
                .bind(fts)
                .bind(cursor.then_some(""))
                .bind(cursor.then_some(""))
                .bind(51)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|r| r.3).collect())
    }
}

impl Store {
    /// One page of the console's list: up to `limit` tenants from `from` (none: the start)
    /// in `query`'s order, going `direction`. Each sort walks its index from the cursor
    /// (no OFFSET), so page 200 costs what page 1 does.
    pub async fn console_page(
        &self,
        query: &ConsoleQuery,
        from: Option<&ConsoleCursor>,
        direction: PageDirection,
        limit: i64,
    ) -> Result<Vec<TenantRow>, StoreError> {
        let sql = format!(
            "select {}",
            page_json_sql(self.dialect, query, from.is_some(), direction)
        );
        let (page,): (String,) = bind_page(self.dialect, sqlx::query_as(&sql), query, from, limit)
            .fetch_one(&self.pool)
            .await?;
        page_rows(&page, direction)
    }

    /// What the console's list page shows, in one statement: a page as
    /// [`Store::console_page`] reads it, the tenants per status and how many were verified
    /// (the counts the migration's triggers keep), and the `recent` newest events with
    /// their tenants' names. Each part comes back as one JSON value, so the page costs one
    /// round trip to the database and one row, whatever its length (a row a tenant costs
    /// a hand-over between threads each, and the statements beside the page were most of
    /// its time; README, "How fast: the console"). The same page asked for again within
    /// [`super::cache::CONSOLE_TTL`] is the one read then, unless tenants or events changed
    /// through this process since.
    pub async fn console_view(
        &self,
        query: &ConsoleQuery,
        from: Option<&ConsoleCursor>,
        direction: PageDirection,
        limit: i64,
        recent: i64,
    ) -> Result<Arc<ConsoleView>, StoreError> {
        // Debug of each part is unambiguous (strings come quoted and escaped).
        let key = format!("{query:?}|{from:?}|{direction:?}|{limit}|{recent}");
        if let Some(view) = self.caches.console.get(&key) {
            return Ok(view);
        }
        // One read of a page at a time: those asking meanwhile get what it read.
        let _flight = self.caches.console_reads.enter(&key).await;
        if let Some(view) = self.caches.console.get(&key) {
            return Ok(view);
        }
        let start = self.caches.console.read_start();
        let view = Arc::new(
            self.console_view_uncached(query, from, direction, limit, recent)
                .await?,
        );
        self.caches.console.insert(key, view.clone(), start);
        Ok(view)
    }

    async fn console_view_uncached(
        &self,
        query: &ConsoleQuery,
        from: Option<&ConsoleCursor>,
        direction: PageDirection,
        limit: i64,
        recent: i64,
    ) -> Result<ConsoleView, StoreError> {
        let dialect = self.dialect;
        let sql = format!(
            "select {}, \
             (select {} from tenant_status_count), \
             (select {} \
              from (select * from tenant_event order by id desc limit $7) e \
              left join tenant t on t.id = e.tenant_id)",
            page_json_sql(dialect, query, from.is_some(), direction),
            dialect.json_agg(&dialect.json_array("status, n, verified"), ""),
            dialect.json_agg(
                &dialect.json_object(&format!("{EVENT_JSON}, 'tenant_name', t.display_name")),
                "e.id desc"
            ),
        );
        let (page, counts, events): (String, String, String) =
            bind_page(dialect, sqlx::query_as(&sql), query, from, limit)
                .bind(recent)
                .fetch_one(&self.pool)
                .await?;
        let (counts, verified) = status_counts_of(parse_json(&counts)?);
        #[derive(serde::Deserialize)]
        struct Named {
            #[serde(flatten)]
            event: super::EventRow,
            tenant_name: Option<String>,
        }
        let recent: Vec<Named> = parse_json(&events)?;
        Ok(ConsoleView {
            rows: page_rows(&page, direction)?,
            counts,
            verified,
            recent: recent
                .into_iter()
                .map(|n| (n.event, n.tenant_name))
                .collect(),
            rendered: std::sync::OnceLock::new(),
        })
    }

    /// Tenants per status (every tenant, verified or not), from the counts the
    /// migration's triggers keep.
    pub async fn status_counts(&self) -> Result<Vec<(TenantStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as("select status, n, verified from tenant_status_count")
                .fetch_all(&self.pool)
                .await?;
        Ok(status_counts_of(rows).0)
    }

    /// The organisation names of these tenants, where known (for naming tenants in
    /// event lists).
    pub async fn tenant_names(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        let sql = format!(
            "select id, display_name from tenant where display_name is not null and id in ({})",
            self.dialect.json_texts("$1")
        );
        let rows: Vec<(String, String)> =
            sqlx::query_as(&sql).bind(ids).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }
}

#[cfg(test)]
mod console_tests {
    use super::*;

    #[test]
    fn needing_attention_is_exactly_the_first_four_severities() {
        for status in TenantStatus::ALL {
            assert_eq!(
                ATTENTION.contains(&status),
                status.severity() <= 3,
                "{status}: {ATTENTION_SEVERITY_SQL}"
            );
            assert_eq!(
                ATTENTION.contains(&status),
                ATTENTION_SQL.contains(&format!("'{}'", status.as_str())),
                "{status}: {ATTENTION_SQL}"
            );
        }
    }

    #[test]
    fn searches_become_phrase_prefix_queries_over_name_and_domains() {
        assert_eq!(
            fts_query("Contoso.com", Dialect::Sqlite).as_deref(),
            Some("{name domains} : \"contoso com\"*")
        );
        assert_eq!(fts_query(" %_\" ", Dialect::Sqlite).as_deref(), None);
        assert_eq!(
            fts_query("Contoso.com", Dialect::Postgres).as_deref(),
            Some("(contoso:A <-> com:*A) | (contoso:B <-> com:*B)")
        );
        assert_eq!(id_prefix("C6E1B9D4-8a2f").as_deref(), Some("c6e1b9d4-8a2f"));
        assert_eq!(id_prefix("contoso"), None);
    }
}

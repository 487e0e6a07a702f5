//! Tenants and the outcome of verifying them.

use time::OffsetDateTime;

use super::consent::ClaimRow;
use super::event::{EventKind, NewEvent, insert_event, record_check_event};
use super::webhook::{OutboxEvent, insert_outbox, tenant_json};
use super::{Store, StoreError, ts};
use crate::domain::webhook::{EventType, status_change_reason};
use crate::domain::{TenantId, TenantStatus};
use serde_json::{Value, json};

#[derive(Debug, Clone, sqlx::FromRow)]
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
    pub revision: i64,
}

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

    /// An operator's "verify now": due at once; the status stays until the check says
    /// otherwise. Bumps the revision, so a check already running cannot overwrite it.
    pub async fn request_verification(
        &self,
        id: TenantId,
        now: OffsetDateTime,
        detail: String,
        request_id: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "update tenant set verify_attempts = 0, next_verify_at = $1, updated_at = $1, \
             revision = revision + 1 where id = $2",
        )
        .bind(ts(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let event = NewEvent {
            tenant_id: Some(id),
            kind: EventKind::VerifyRequested,
            detail,
            request_id: Some(request_id.to_owned()),
        };
        insert_event(&mut *tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes these tenants due now (e.g. after the required permissions changed), bumping
    /// their revision so that no check already running undoes it.
    pub async fn schedule_now(
        &self,
        ids: &[TenantId],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
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
        let now_s = ts(now);
        let mut tx = self.pool.begin().await?;
        // The write comes first, so SQLite takes the write lock before reading.
        let next = outcome.next_at.map(ts);
        let touched = sqlx::query(
            "update tenant set status = $1, next_verify_at = $2, verify_attempts = verify_attempts + 1, \
             updated_at = $3, revision = revision + 1 where id = $4 and revision = $5",
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
        let first_verification: bool =
            sqlx::query_scalar("select verified_at is null from tenant where id = $1")
                .bind(id.to_string())
                .fetch_one(&mut *tx)
                .await?;
        match &outcome.result {
            CheckResult::Verified {
                display_name,
                verified_domains,
                granted_roles,
                ..
            } => {
                sqlx::query(
                    "update tenant set display_name = coalesce($1, display_name), verified_domains = $2, granted_roles = $3, \
                     verified_at = coalesce(verified_at, $4), last_token_ok_at = $4, last_error_code = null, last_error = null, \
                     consecutive_failures = 0 where id = $5",
                )
                .bind(display_name)
                .bind(serde_json::to_string(verified_domains).unwrap_or_else(|_| "[]".into()))
                .bind(serde_json::to_string(granted_roles).unwrap_or_else(|_| "[]".into()))
                .bind(&now_s)
                .bind(id.to_string())
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
    conn: &mut sqlx::SqliteConnection,
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
    let (event_type, data) = if connected {
        (
            EventType::TenantConnected,
            json!({
                "tenant": tenant_json(&row),
                "missing_permissions": missing,
                "consented_at": row.consented_at,
                "verified_at": row.verified_at,
            }),
        )
    } else {
        (
            EventType::TenantStatusChanged,
            json!({
                "tenant": tenant_json(&row),
                "from": previous.as_str(),
                "to": outcome.status.as_str(),
                "reason": status_change_reason(previous, outcome.status),
                "error": error,
                "missing_permissions": missing,
            }),
        )
    };
    Ok(Some(OutboxEvent {
        event_type,
        tenant_id: Some(id),
        data,
    }))
}

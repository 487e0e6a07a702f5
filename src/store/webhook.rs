//! Webhooks: the event outbox, endpoints, deliveries and their leases, and the app-wide
//! alert whose changes are events (migration 20261130000004_webhooks.sql states the rules).

use serde_json::{Value, json};
use sqlx::AnyConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::tenant::TenantRow;
use super::{Store, StoreError, ts};
use crate::domain::webhook::{EndpointState, EventFilter, EventType, status_change_reason};
use crate::domain::{TenantId, TenantStatus};

/// An event to write into the outbox, in the transaction of the change it reports.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub event_type: EventType,
    pub tenant_id: Option<TenantId>,
    /// The event's `data`; never a token or a secret.
    pub data: Value,
}

/// Writes `event` and one pending delivery per endpoint subscribed to its type, on the
/// caller's connection (inside the caller's transaction: THE OUTBOX RULE). Returns the
/// event's id.
pub(super) async fn insert_outbox(
    conn: &mut AnyConnection,
    event: &OutboxEvent,
    now: OffsetDateTime,
) -> Result<String, StoreError> {
    let id = format!("evt_{}", Uuid::now_v7().simple());
    let now_s = ts(now);
    // The exact body every delivery sends. Standard Webhooks' shape (`type`, `timestamp`,
    // `data`), with the id repeated for receivers that log bodies without headers.
    let payload = json!({
        "id": id,
        "type": event.event_type.as_str(),
        "timestamp": now_s,
        "data": event.data,
    })
    .to_string();
    let tenant = event.tenant_id.map(|t| t.to_string());
    sqlx::query(
        "insert into webhook_event (id, type, tenant_id, payload, created_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(event.event_type.as_str())
    .bind(&tenant)
    .bind(&payload)
    .bind(&now_s)
    .execute(&mut *conn)
    .await?;
    // Delivery ids are the event's UUIDv7 suffix and the endpoint's: unique per pair, and
    // sorted by time like the event.
    sqlx::query(
        "insert into webhook_delivery (id, event_id, endpoint_id, tenant_id, status, next_attempt_at, created_at, updated_at) \
         select 'dlv_' || substr($1, 5) || '_' || substr(e.id, 4), $1, e.id, $2, 'pending', $3, $3, $3 \
         from webhook_endpoint e \
         where e.event_types = '' or (' ' || e.event_types || ' ') like ('% ' || $4 || ' %')",
    )
    .bind(&id)
    .bind(&tenant)
    .bind(&now_s)
    .bind(event.event_type.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Inserts an endpoint on the caller's connection (so that `create_endpoint_once` can
/// record its idempotency key in the same transaction).
pub(super) async fn insert_endpoint(
    conn: &mut AnyConnection,
    endpoint: &NewEndpoint<'_>,
    now: OffsetDateTime,
) -> Result<EndpointRow, StoreError> {
    let id = format!("ep_{}", Uuid::now_v7().simple());
    Ok(sqlx::query_as(
        "insert into webhook_endpoint (id, url, description, event_types, state, secret_salt, created_at, updated_at) \
         values ($1, $2, $3, $4, 'enabled', $5, $6, $6) returning *",
    )
    .bind(&id)
    .bind(endpoint.url)
    .bind(endpoint.description)
    .bind(endpoint.filter.to_column())
    .bind(endpoint.secret_salt)
    .bind(ts(now))
    .fetch_one(&mut *conn)
    .await?)
}

/// Sets an endpoint's state on `conn`; enabling makes its waiting deliveries due at once.
/// The endpoint as it now is, `None` when there is no such endpoint.
async fn apply_state(
    conn: &mut AnyConnection,
    id: &str,
    state: EndpointState,
    reason: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<EndpointRow>, StoreError> {
    let now_s = ts(now);
    let row: Option<EndpointRow> = sqlx::query_as(
        "update webhook_endpoint set state = $1, state_reason = $2, updated_at = $3 where id = $4 returning *",
    )
    .bind(state.as_str())
    .bind(if state == EndpointState::Enabled { None } else { reason })
    .bind(&now_s)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if row.is_some() && state == EndpointState::Enabled {
        sqlx::query(
            "update webhook_delivery set next_attempt_at = $1, updated_at = $1 \
             where endpoint_id = $2 and status = 'pending' and next_attempt_at > $1",
        )
        .bind(&now_s)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(row)
}

/// A rotated-out secret's salt while its overlap (`until`) lasts.
fn overlapping_salt<'a>(
    salt: Option<&'a str>,
    until: Option<&str>,
    now: OffsetDateTime,
) -> Option<&'a str> {
    salt.filter(|_| until.is_some_and(|until| until > ts(now).as_str()))
}

/// `tenant.status_changed` for `row`, which moved `from` → `to`: the reason, the failure
/// (`error`: code and message, or null) and the permissions still missing.
pub(super) fn status_changed(
    row: &TenantRow,
    from: TenantStatus,
    to: TenantStatus,
    error: Value,
    missing: &[String],
) -> OutboxEvent {
    OutboxEvent {
        event_type: EventType::TenantStatusChanged,
        tenant_id: row.tenant_id(),
        data: json!({
            "tenant": tenant_json(row),
            "from": from.as_str(),
            "to": to.as_str(),
            "reason": status_change_reason(from, to),
            "error": error,
            "missing_permissions": missing,
        }),
    }
}

/// How a tenant appears in event payloads: what Graph said of it, never a claim.
pub(super) fn tenant_json(row: &TenantRow) -> Value {
    json!({
        "id": row.id,
        "name": row.display_name,
        "domains": row.verified_domains(),
        "status": row.status,
        "granted_permissions": row.granted_roles(),
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    /// `ep_` + a UUIDv7 in hex.
    pub id: String,
    pub url: String,
    pub description: String,
    /// Space-separated event types; empty for every type.
    pub event_types: String,
    pub state: String,
    /// Why it is paused or disabled, in words.
    pub state_reason: Option<String>,
    /// The secret is HMAC(session key, salt): see `webhooks::EndpointSecrets`.
    pub secret_salt: String,
    pub previous_secret_salt: Option<String>,
    pub previous_secret_expires_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl EndpointRow {
    pub fn filter(&self) -> EventFilter {
        EventFilter::from_column(&self.event_types)
    }

    pub fn state(&self) -> EndpointState {
        EndpointState::parse(&self.state).unwrap_or(EndpointState::Paused)
    }

    /// The previous secret's salt while its overlap lasts.
    pub fn previous_salt_at(&self, now: OffsetDateTime) -> Option<&str> {
        overlapping_salt(
            self.previous_secret_salt.as_deref(),
            self.previous_secret_expires_at.as_deref(),
            now,
        )
    }
}

/// An endpoint to create.
#[derive(Debug, Clone)]
pub struct NewEndpoint<'a> {
    pub url: &'a str,
    pub description: &'a str,
    pub filter: &'a EventFilter,
    /// A fresh random salt (`RandomToken`): the secret is derived from it.
    pub secret_salt: &'a str,
}

/// What an update changes; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange<'a> {
    pub url: Option<&'a str>,
    pub description: Option<&'a str>,
    pub filter: Option<&'a EventFilter>,
    /// A new state, with why in words (kept for paused and disabled).
    pub state: Option<(EndpointState, Option<&'a str>)>,
}

/// A due delivery a worker holds the lease of.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// The exact body to send.
    pub payload: String,
    pub endpoint_id: String,
    pub url: String,
    pub secret_salt: String,
    pub previous_secret_salt: Option<String>,
    pub previous_secret_expires_at: Option<String>,
    /// Attempts since it was last (re)queued: the position in the retry schedule.
    pub schedule_step: i64,
    pub attempts: i64,
    pub lease_token: String,
}

impl ClaimedDelivery {
    /// The previous secret's salt while its overlap lasts.
    pub fn previous_salt_at(&self, now: OffsetDateTime) -> Option<&str> {
        overlapping_salt(
            self.previous_secret_salt.as_deref(),
            self.previous_secret_expires_at.as_deref(),
            now,
        )
    }
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: OffsetDateTime,
    /// The endpoint's HTTP status; `None` when it did not answer.
    pub status_code: Option<u16>,
    pub duration_ms: i64,
    /// Why it failed, in words (never the response body, the URL or the secret).
    pub error: Option<String>,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; try again then.
    RetryAt(OffsetDateTime),
    /// Failed, and the retry schedule is exhausted.
    GaveUp,
    /// The endpoint answered `410 Gone`: it is disabled, and this delivery waits (pending)
    /// with the others until an operator enables it again.
    EndpointGone,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub endpoint_url: String,
    pub tenant_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    pub last_status_code: Option<i64>,
    pub last_duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub endpoint_id: Option<String>,
    pub tenant_id: Option<TenantId>,
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
}

/// Deliveries of one endpoint by status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookEventRow {
    pub id: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub tenant_id: Option<String>,
    pub payload: String,
    pub created_at: String,
}

/// The app-wide credential alert as last raised (and perhaps cleared).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AppAlertRow {
    pub kind: String,
    pub code: String,
    pub headline: String,
    pub message: String,
    pub raised_at: String,
    pub cleared_at: Option<String>,
}

/// The alert a check found: raised with these words, or cleared.
#[derive(Debug, Clone)]
pub struct RaisedAlert<'a> {
    pub code: &'a str,
    pub headline: &'a str,
    pub message: &'a str,
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, ev.type as event_type, d.endpoint_id, e.url as endpoint_url, \
     d.tenant_id, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status_code, \
     d.last_duration_ms, d.last_error, d.created_at, d.updated_at";

impl Store {
    pub async fn create_endpoint(
        &self,
        endpoint: &NewEndpoint<'_>,
        now: OffsetDateTime,
    ) -> Result<EndpointRow, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_endpoint(&mut conn, endpoint, now).await
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<EndpointRow>, StoreError> {
        Ok(
            sqlx::query_as("select * from webhook_endpoint where id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Every endpoint, oldest first (a product has a handful).
    pub async fn endpoints(&self) -> Result<Vec<EndpointRow>, StoreError> {
        Ok(
            sqlx::query_as("select * from webhook_endpoint order by created_at, id limit 1000")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Changes an endpoint's URL, description or event types; `None` when there is no such
    /// endpoint. Deliveries already queued keep going to it (at its new URL).
    pub async fn update_endpoint(
        &self,
        id: &str,
        change: &EndpointChange<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<EndpointRow>, StoreError> {
        // One transaction: a change of fields and state is all made or not at all.
        let mut tx = self.pool.begin().await?;
        let found: Option<EndpointRow> = sqlx::query_as(
            "update webhook_endpoint set url = coalesce($1, url), description = coalesce($2, description), \
             event_types = coalesce($3, event_types), updated_at = $4 where id = $5 returning *",
        )
        .bind(change.url)
        .bind(change.description)
        .bind(change.filter.map(EventFilter::to_column))
        .bind(ts(now))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut row) = found else {
            tx.rollback().await?;
            return Ok(None);
        };
        if let Some((state, reason)) = change.state {
            row = apply_state(&mut tx, id, state, reason, now)
                .await?
                .unwrap_or(row);
        }
        tx.commit().await?;
        Ok(Some(row))
    }

    /// Enables, pauses or disables an endpoint; `reason` says why in words (kept for
    /// paused and disabled). Returns whether the endpoint exists. Enabling makes its waiting
    /// deliveries due at once.
    pub async fn set_endpoint_state(
        &self,
        id: &str,
        state: EndpointState,
        reason: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = apply_state(&mut tx, id, state, reason, now)
            .await?
            .is_some();
        tx.commit().await?;
        Ok(found)
    }

    /// Starts signing with the secret of `new_salt`; the current secret stays valid (both
    /// signatures are sent) until `overlap_until`. Returns whether the endpoint exists.
    pub async fn rotate_endpoint_secret(
        &self,
        id: &str,
        new_salt: &str,
        overlap_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "update webhook_endpoint set previous_secret_salt = secret_salt, previous_secret_expires_at = $1, \
             secret_salt = $2, updated_at = $3 where id = $4",
        )
        .bind(ts(overlap_until))
        .bind(new_salt)
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    /// Deletes an endpoint and its deliveries (the events stay).
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("delete from webhook_endpoint where id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Takes the lease of up to `limit` due deliveries of enabled endpoints for `lease`, so
    /// that no other worker (of this instance or another on the same database) attempts them
    /// meanwhile; a lease whose holder died expires and the delivery is due again.
    pub async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let now_s = ts(now);
        let until = ts(now + lease);
        let token = Uuid::new_v4().to_string();
        let mut tx = self.pool.begin().await?;
        // The update comes first, so SQLite takes the write lock before it reads: two
        // workers cannot claim the same row. PostgreSQL locks the rows it picks, skipping
        // those another worker is claiming; and the lease is tested again on the row being
        // updated, which PostgreSQL re-reads if another transaction changed it meanwhile.
        let sql = format!(
            "update webhook_delivery set lease_until = $1, lease_token = $2 where id in ( \
               select d.id from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id \
               where d.status = 'pending' and d.next_attempt_at <= $3 and e.state = 'enabled' \
                 and (d.lease_until is null or d.lease_until <= $3) \
               order by d.next_attempt_at limit $4{}) \
             and status = 'pending' and (lease_until is null or lease_until <= $3)",
            self.dialect.pick("", " for update of d skip locked")
        );
        sqlx::query(&sql)
            .bind(&until)
            .bind(&token)
            .bind(&now_s)
            .bind(limit)
            .execute(&mut *tx)
            .await?;
        let claimed = sqlx::query_as(
            "select d.id, d.event_id, ev.type as event_type, ev.payload, d.endpoint_id, e.url, e.secret_salt, \
             e.previous_secret_salt, e.previous_secret_expires_at, d.schedule_step, d.attempts, d.lease_token \
             from webhook_delivery d join webhook_event ev on ev.id = d.event_id \
             join webhook_endpoint e on e.id = d.endpoint_id \
             where d.lease_token = $1 order by d.next_attempt_at",
        )
        .bind(&token)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Records an attempt of a delivery this worker holds the lease of. Returns `false`
    /// (nothing written) when the lease was lost: it expired and another worker took the
    /// delivery, or an operator resent it meanwhile.
    pub async fn record_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
    ) -> Result<bool, StoreError> {
        let at = ts(attempt.at);
        let (status, next) = match outcome {
            AttemptOutcome::Delivered => ("succeeded", None),
            AttemptOutcome::RetryAt(when) => ("pending", Some(ts(*when))),
            AttemptOutcome::GaveUp => ("failed", None),
            AttemptOutcome::EndpointGone => ("pending", Some(at.clone())),
        };
        let mut tx = self.pool.begin().await?;
        let recorded = sqlx::query(
            "update webhook_delivery set status = $1, next_attempt_at = $2, attempts = attempts + 1, \
             schedule_step = schedule_step + 1, lease_until = null, lease_token = null, last_attempt_at = $3, \
             last_status_code = $4, last_duration_ms = $5, last_error = $6, updated_at = $3 \
             where id = $7 and lease_token = $8",
        )
        .bind(status)
        .bind(next)
        .bind(&at)
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.duration_ms)
        .bind(&attempt.error)
        .bind(&delivery.id)
        .bind(&delivery.lease_token)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if recorded && *outcome == AttemptOutcome::EndpointGone {
            sqlx::query(
                "update webhook_endpoint set state = 'disabled', state_reason = $1, updated_at = $2 \
                 where id = $3 and state = 'enabled'",
            )
            .bind("The endpoint answered 410 Gone: deliveries wait until it is enabled again.")
            .bind(&at)
            .bind(&delivery.endpoint_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Queues a delivery again, due now, at the start of the retry schedule (whatever its
    /// status; a worker holding it loses its lease). Returns whether it exists.
    pub async fn resend_delivery(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        Ok(sqlx::query(
            "update webhook_delivery set status = 'pending', schedule_step = 0, next_attempt_at = $1, \
             lease_until = null, lease_token = null, updated_at = $1 where id = $2",
        )
        .bind(ts(now))
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select {DELIVERY_COLUMNS} from webhook_delivery d join webhook_event ev on ev.id = d.event_id \
             join webhook_endpoint e on e.id = d.endpoint_id where d.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Deliveries newest first, those older than the delivery `before` when given (ids sort
    /// by the event's time).
    pub async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select {DELIVERY_COLUMNS} from webhook_delivery d join webhook_event ev on ev.id = d.event_id \
             join webhook_endpoint e on e.id = d.endpoint_id \
             where ($1 is null or d.endpoint_id = $1) and ($2 is null or d.tenant_id = $2) \
               and ($3 is null or d.status = $3) and ($4 is null or d.id < $4) \
             order by d.id desc limit $5"
        ))
        .bind(&filter.endpoint_id)
        .bind(filter.tenant_id.map(|t| t.to_string()))
        .bind(&filter.status)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn delivery_counts(&self, endpoint_id: &str) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select status, count(*) from webhook_delivery where endpoint_id = $1 group by status",
        )
        .bind(endpoint_id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = DeliveryCounts::default();
        for (status, n) in rows {
            match status.as_str() {
                "pending" => counts.pending = n,
                "succeeded" => counts.succeeded = n,
                "failed" => counts.failed = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// When the next pending delivery of an enabled endpoint is due (the worker sleeps
    /// until then, or until woken).
    pub async fn next_delivery_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let next: Option<String> = sqlx::query_scalar(
            "select min(d.next_attempt_at) from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id \
             where d.status = 'pending' and e.state = 'enabled'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.as_deref().and_then(super::parse_ts))
    }

    pub async fn webhook_event(&self, id: &str) -> Result<Option<WebhookEventRow>, StoreError> {
        Ok(sqlx::query_as("select * from webhook_event where id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Events oldest first, after the event `after` when given, optionally of one type or
    /// one tenant: a feed a system can poll instead of (or beside) receiving webhooks.
    pub async fn webhook_events(
        &self,
        after: Option<&str>,
        event_type: Option<EventType>,
        tenant: Option<TenantId>,
        limit: i64,
    ) -> Result<Vec<WebhookEventRow>, StoreError> {
        Ok(sqlx::query_as(
            "select * from webhook_event where ($1 is null or id > $1) and ($2 is null or type = $2) \
             and ($3 is null or tenant_id = $3) order by id limit $4",
        )
        .bind(after)
        .bind(event_type.map(EventType::as_str))
        .bind(tenant.map(|t| t.to_string()))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes events older than `before` that no delivery is still pending for (their
    /// deliveries go with them).
    pub async fn purge_webhook_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "delete from webhook_event where created_at < $1 and not exists \
             (select 1 from webhook_delivery d where d.event_id = webhook_event.id and d.status = 'pending')",
        )
        .bind(ts(before))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The credential alert as last raised, if ever.
    pub async fn app_alert(&self) -> Result<Option<AppAlertRow>, StoreError> {
        Ok(
            sqlx::query_as("select * from app_alert where kind = 'credential'")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Raises (`Some`) or clears (`None`) the credential alert. Only a change writes: raising
    /// a raised alert or clearing a clear one does nothing. A change writes its
    /// `app.credential_alert` event in the same transaction. Returns whether it changed.
    pub async fn set_app_alert(
        &self,
        alert: Option<RaisedAlert<'_>>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now_s = ts(now);
        let mut tx = self.pool.begin().await?;
        let changed: Option<AppAlertRow> = match &alert {
            Some(a) => {
                sqlx::query_as(
                    "insert into app_alert (kind, code, headline, message, raised_at) values ('credential', $1, $2, $3, $4) \
                     on conflict (kind) do update set code = excluded.code, headline = excluded.headline, \
                     message = excluded.message, raised_at = excluded.raised_at, cleared_at = null \
                     where app_alert.cleared_at is not null returning *",
                )
                .bind(a.code)
                .bind(a.headline)
                .bind(a.message)
                .bind(&now_s)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as(
                    "update app_alert set cleared_at = $1 where kind = 'credential' and cleared_at is null returning *",
                )
                .bind(&now_s)
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(row) = changed else {
            tx.rollback().await?;
            return Ok(false);
        };
        let data = json!({
            "state": if alert.is_some() { "raised" } else { "cleared" },
            "code": row.code,
            "headline": row.headline,
            "message": row.message,
            "raised_at": row.raised_at,
            "cleared_at": row.cleared_at,
        });
        insert_outbox(
            &mut tx,
            &OutboxEvent {
                event_type: EventType::AppCredentialAlert,
                tenant_id: None,
                data,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

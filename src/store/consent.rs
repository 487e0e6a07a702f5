//! Pending admin-consent requests and the atomic step that turns a callback into a tenant.

use time::OffsetDateTime;
use uuid::Uuid;

use super::tenant::TenantRow;
use super::{Store, StoreError, ts};
use crate::domain::TenantId;

/// Pending sign-ups beyond this many (unexpired) are refused: with the per-client rate
/// limit, this bounds what a flood from many addresses can write.
pub const MAX_PENDING_REQUESTS: i64 = 10_000;

/// A sign-up about to be sent to Microsoft.
#[derive(Debug)]
pub struct NewConsentRequest {
    pub state_hash: String,
    pub binding_hash: String,
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    pub domain_hint: Option<String>,
    pub client_addr: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Why a callback's state was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentRejection {
    /// No such state (never issued, altered on the way, or purged long ago).
    UnknownState,
    Expired,
    /// Already used by an earlier callback.
    Replayed,
    /// Issued to another browser (the binding cookie does not match).
    OtherBrowser,
}

impl ConsentRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentRejection::UnknownState => "unknown_state",
            ConsentRejection::Expired => "expired_state",
            ConsentRejection::Replayed => "replayed_state",
            ConsentRejection::OtherBrowser => "other_browser",
        }
    }
}

#[derive(Debug)]
pub enum ConsentOutcome {
    /// The state was consumed and the tenant recorded as pending, in one transaction.
    Recorded {
        tenant: Box<TenantRow>,
        consent_request_id: String,
    },
    Rejected(ConsentRejection),
}

impl Store {
    /// Stores a sign-up, unless too many are pending (`Ok(false)`).
    pub async fn insert_consent_request(&self, r: &NewConsentRequest) -> Result<bool, StoreError> {
        let now = ts(r.created_at);
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from consent_request where consumed_at is null and expires_at > $1",
        )
        .bind(&now)
        .fetch_one(&self.pool)
        .await?;
        if pending >= MAX_PENDING_REQUESTS {
            return Ok(false);
        }
        sqlx::query(
            "insert into consent_request (id, state_hash, binding_hash, organisation_name, contact_email, \
             domain_hint, client_addr, created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(&r.state_hash)
        .bind(&r.binding_hash)
        .bind(&r.organisation_name)
        .bind(&r.contact_email)
        .bind(&r.domain_hint)
        .bind(&r.client_addr)
        .bind(&now)
        .bind(ts(r.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// Deletes unused requests an hour after they expired (a late callback until then is
    /// told "expired" rather than "unknown") and used ones after a day (replays are told
    /// "already used" until then). Returns how many rows went.
    pub async fn purge_consent_requests(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "delete from consent_request where (consumed_at is null and expires_at < $1) or consumed_at < $2",
        )
        .bind(ts(now - time::Duration::hours(1)))
        .bind(ts(now - time::Duration::days(1)))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Consumes the state and records the tenant as `pending`, atomically: of any number
    /// of concurrent callbacks with one state, exactly one gets `Recorded`. The state must
    /// exist, be unexpired, unused and bound to this browser; otherwise nothing is written.
    pub async fn complete_consent(
        &self,
        state_hash: &str,
        binding_hash: &str,
        tenant: TenantId,
        now: OffsetDateTime,
        request_id: &str,
    ) -> Result<ConsentOutcome, StoreError> {
        let now_s = ts(now);
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so SQLite takes the write lock here and concurrent
        // callbacks queue behind it (busy timeout) instead of racing.
        let consumed: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "update consent_request set consumed_at = $1, tenant_id = $4 \
             where state_hash = $2 and binding_hash = $3 and consumed_at is null and expires_at > $1 \
             returning id, organisation_name, contact_email",
        )
        .bind(&now_s)
        .bind(state_hash)
        .bind(binding_hash)
        .bind(tenant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((consent_request_id, organisation_name, contact_email)) = consumed else {
            tx.rollback().await?;
            return Ok(ConsentOutcome::Rejected(
                self.why_rejected(state_hash, binding_hash, &now_s).await?,
            ));
        };
        // The callback's tenant is unauthenticated (ENTRA.md §2). A tenant never verified
        // is (re)set to pending for this request; a verified one is only re-checked: its
        // status, consent time, details and owning request stay, so a forged callback naming
        // it changes nothing anyone sees. First-recorded contact details always win.
        let tenant_row: TenantRow = sqlx::query_as(
            "insert into tenant (id, status, organisation_name, contact_email, consent_request_id, consented_at, \
             verify_attempts, next_verify_at, created_at, updated_at) \
             values ($1, 'pending', $2, $3, $4, $5, 0, $5, $5, $5) \
             on conflict (id) do update set \
             status = case when tenant.verified_at is null then 'pending' else tenant.status end, \
             organisation_name = coalesce(tenant.organisation_name, excluded.organisation_name), \
             contact_email = coalesce(tenant.contact_email, excluded.contact_email), \
             consent_request_id = case when tenant.verified_at is null then excluded.consent_request_id \
             else tenant.consent_request_id end, \
             consented_at = case when tenant.verified_at is null then excluded.consented_at else tenant.consented_at end, \
             last_error_code = case when tenant.verified_at is null then null else tenant.last_error_code end, \
             last_error = case when tenant.verified_at is null then null else tenant.last_error end, \
             verify_attempts = 0, next_verify_at = excluded.next_verify_at, updated_at = excluded.updated_at \
             returning *",
        )
        .bind(tenant.to_string())
        .bind(&organisation_name)
        .bind(&contact_email)
        .bind(&consent_request_id)
        .bind(&now_s)
        .fetch_one(&mut *tx)
        .await?;
        super::event::insert_event(
            &mut *tx,
            &super::NewEvent {
                tenant_id: Some(tenant),
                kind: super::EventKind::ConsentRecorded,
                detail: "An administrator consented on Microsoft's page; verifying the consent."
                    .to_owned(),
                request_id: Some(request_id.to_owned()),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(ConsentOutcome::Recorded {
            tenant: Box::new(tenant_row),
            consent_request_id,
        })
    }

    /// A declined or failed consent: consumes the state when it matches this browser (so
    /// it cannot be used again) and records the event, atomically. Returns whether the
    /// state matched.
    pub async fn decline_consent(
        &self,
        state_hash: Option<&str>,
        binding_hash: Option<&str>,
        event: &super::NewEvent,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now_s = ts(now);
        let mut tx = self.pool.begin().await?;
        let matched = match (state_hash, binding_hash) {
            (Some(state), Some(binding)) => sqlx::query(
                "update consent_request set consumed_at = $1 \
                 where state_hash = $2 and binding_hash = $3 and consumed_at is null and expires_at > $1",
            )
            .bind(&now_s)
            .bind(state)
            .bind(binding)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0,
            _ => false,
        };
        super::event::insert_event(&mut *tx, event, now).await?;
        tx.commit().await?;
        Ok(matched)
    }

    /// Why no pending request matched.
    async fn why_rejected(
        &self,
        state_hash: &str,
        binding_hash: &str,
        now: &str,
    ) -> Result<ConsentRejection, StoreError> {
        let row: Option<(String, Option<String>, String)> =
            sqlx::query_as("select binding_hash, consumed_at, expires_at from consent_request where state_hash = $1")
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            None => ConsentRejection::UnknownState,
            Some((_, Some(_), _)) => ConsentRejection::Replayed,
            Some((binding, None, _)) if binding != binding_hash => ConsentRejection::OtherBrowser,
            Some((_, None, expires)) if expires.as_str() <= now => ConsentRejection::Expired,
            // It matched a moment ago but another callback consumed it in between.
            Some(_) => ConsentRejection::Replayed,
        })
    }

    /// The tenant this browser onboarded most recently, found through its binding cookie,
    /// and whether this browser's request is the one that recorded it (only then may the
    /// status page show the tenant's details).
    pub async fn onboarding_for_binding(
        &self,
        binding_hash: &str,
    ) -> Result<Option<(TenantRow, bool)>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "select id, tenant_id from consent_request \
             where binding_hash = $1 and consumed_at is not null and tenant_id is not null \
             order by consumed_at desc limit 1",
        )
        .bind(binding_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((request_id, tenant_id)) = row else {
            return Ok(None);
        };
        let tenant: Option<TenantRow> = sqlx::query_as("select * from tenant where id = $1")
            .bind(&tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(tenant.map(|t| {
            let owns = t.consent_request_id.as_deref() == Some(request_id.as_str());
            (t, owns)
        }))
    }
}

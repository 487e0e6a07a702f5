//! Invitations: links operators send named customers, and how each moves from created to
//! verified (migration 20261201000005_invitations.sql).
//!
//! The callback and the checks move invitations in their own transactions (consent.rs and
//! tenant.rs call the `pub(super)` functions here); this module never trusts a callback's
//! tenant more than they do: an invitation is *verified* only by a successful check of the
//! tenant it named, or of a tenant its own sign-up confirmed.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError, parse_ts, ts};
use crate::domain::TenantId;
use crate::domain::invitation::InvitedTenant;

/// Where an invitation stands. `Expired` is not stored: an invitation still created or
/// opened is expired once its `expires_at` has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Created,
    Opened,
    Consented,
    Verified,
    Expired,
    Revoked,
}

impl InvitationStatus {
    pub const ALL: [InvitationStatus; 6] = [
        InvitationStatus::Created,
        InvitationStatus::Opened,
        InvitationStatus::Consented,
        InvitationStatus::Verified,
        InvitationStatus::Expired,
        InvitationStatus::Revoked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Created => "created",
            InvitationStatus::Opened => "opened",
            InvitationStatus::Consented => "consented",
            InvitationStatus::Verified => "verified",
            InvitationStatus::Expired => "expired",
            InvitationStatus::Revoked => "revoked",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            InvitationStatus::Created => "Not opened yet",
            InvitationStatus::Opened => "Opened",
            InvitationStatus::Consented => "Consented, checking",
            InvitationStatus::Verified => "Verified",
            InvitationStatus::Expired => "Expired",
            InvitationStatus::Revoked => "Revoked",
        }
    }

    pub fn parse(raw: &str) -> Option<InvitationStatus> {
        InvitationStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
    }

    /// Whether an operator may still revoke it (a verified invitation is done).
    pub fn revocable(self) -> bool {
        matches!(
            self,
            InvitationStatus::Created | InvitationStatus::Opened | InvitationStatus::Consented
        )
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: String,
    /// What the link's token is derived from (`domain::invitation::invitation_token`).
    pub salt: String,
    pub organisation_name: String,
    pub contact_email: String,
    pub tenant_id: Option<String>,
    pub domain: Option<String>,
    /// As stored; [`InvitationRow::status`] says whether it expired.
    pub status: String,
    pub expires_at: String,
    pub created_by: String,
    pub created_at: String,
    pub opened_at: Option<String>,
    pub consented_at: Option<String>,
    pub verified_at: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub consent_request_id: Option<String>,
    pub callback_tenant_id: Option<String>,
    pub connected_tenant_id: Option<String>,
    pub failure: Option<String>,
    pub failed_at: Option<String>,
}

impl InvitationRow {
    /// Where it stands at `now`.
    pub fn status(&self, now: OffsetDateTime) -> InvitationStatus {
        let stored = InvitationStatus::parse(&self.status).unwrap_or(InvitationStatus::Revoked);
        let waiting = matches!(stored, InvitationStatus::Created | InvitationStatus::Opened);
        if waiting && self.expires_at.as_str() <= ts(now).as_str() {
            InvitationStatus::Expired
        } else {
            stored
        }
    }

    /// The organisation the operator named, if any.
    pub fn invited_tenant(&self) -> Option<InvitedTenant> {
        match (&self.tenant_id, &self.domain) {
            (Some(id), _) => TenantId::parse(id).map(InvitedTenant::Id),
            (None, Some(domain)) => Some(InvitedTenant::Domain(domain.clone())),
            (None, None) => None,
        }
    }

    pub fn expires(&self) -> Option<OffsetDateTime> {
        parse_ts(&self.expires_at)
    }
}

/// A new invitation, as the dashboard checked it.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    pub salt: &'a str,
    pub token_hash: &'a str,
    pub organisation_name: &'a str,
    pub contact_email: &'a str,
    pub tenant: Option<&'a InvitedTenant>,
    pub expires_at: OffsetDateTime,
    pub created_by: &'a str,
}

/// A sign-up started from an invitation, and how it ended.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationSignUp {
    pub created_at: String,
    pub consumed_at: Option<String>,
    pub tenant_id: Option<String>,
    pub client_addr: Option<String>,
    /// 1 when its callback was refused.
    pub refusals: i64,
}

/// Columns every read selects (never `token_hash`: it leaves the database for nothing).
const COLUMNS: &str = "id, salt, organisation_name, contact_email, tenant_id, domain, status, \
    expires_at, created_by, created_at, opened_at, consented_at, verified_at, revoked_at, \
    revoked_by, consent_request_id, callback_tenant_id, connected_tenant_id, failure, failed_at";

impl Store {
    /// Stores a new invitation; returns its id.
    pub async fn create_invitation(
        &self,
        new: &NewInvitation<'_>,
        now: OffsetDateTime,
    ) -> Result<String, StoreError> {
        let id = Uuid::now_v7().to_string();
        let (tenant_id, domain) = match new.tenant {
            Some(InvitedTenant::Id(t)) => (Some(t.to_string()), None),
            Some(InvitedTenant::Domain(d)) => (None, Some(d.clone())),
            None => (None, None),
        };
        sqlx::query(
            "insert into invitation (id, salt, token_hash, organisation_name, contact_email, tenant_id, \
             domain, status, expires_at, created_by, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, 'created', $8, $9, $10, $10)",
        )
        .bind(&id)
        .bind(new.salt)
        .bind(new.token_hash)
        .bind(new.organisation_name)
        .bind(new.contact_email)
        .bind(tenant_id)
        .bind(domain)
        .bind(ts(new.expires_at))
        .bind(new.created_by)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn invitation(&self, id: &str) -> Result<Option<InvitationRow>, StoreError> {
        Ok(
            sqlx::query_as(&format!("select {COLUMNS} from invitation where id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The invitation whose link's token hashes to `token_hash`, whatever its status.
    pub async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<InvitationRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select {COLUMNS} from invitation where token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The link was opened: `created` becomes `opened` (later openings change nothing).
    pub async fn invitation_opened(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "update invitation set status = 'opened', opened_at = $2, updated_at = $2 \
             where id = $1 and status = 'created' and expires_at > $2",
        )
        .bind(id)
        .bind(ts(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes an invitation not yet verified (expired ones too: nothing changes for the
    /// link, but the list says an operator withdrew it). Returns whether it was revoked.
    pub async fn revoke_invitation(
        &self,
        id: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "update invitation set status = 'revoked', revoked_at = $2, revoked_by = $3, updated_at = $2 \
             where id = $1 and status in ('created', 'opened', 'consented')",
        )
        .bind(id)
        .bind(ts(now))
        .bind(by)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Up to `limit` invitations, newest first, in `status` (all when `None`), older than
    /// the invitation `before` (a page's last id; ids are UUIDv7, so id order is time order).
    pub async fn invitations_page(
        &self,
        status: Option<InvitationStatus>,
        before: Option<&str>,
        limit: i64,
        now: OffsetDateTime,
    ) -> Result<Vec<InvitationRow>, StoreError> {
        let now = ts(now);
        let mut query =
            super::Statement::new(format!("select {COLUMNS} from invitation where 1 = 1"));
        match status {
            Some(s @ (InvitationStatus::Created | InvitationStatus::Opened)) => {
                query
                    .push(" and status = ")
                    .text(s.as_str())
                    .push(" and expires_at > ")
                    .text(now);
            }
            Some(InvitationStatus::Expired) => {
                query
                    .push(" and status in ('created', 'opened') and expires_at <= ")
                    .text(now);
            }
            Some(other) => {
                query.push(" and status = ").text(other.as_str());
            }
            None => {}
        }
        if let Some(before) = before {
            query.push(" and id < ").text(before);
        }
        query.push(" order by id desc limit ").integer(limit);
        Ok(query.query_as().fetch_all(&self.pool).await?)
    }

    /// How many invitations are in each status at `now` (every status listed).
    pub async fn invitation_counts(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<(InvitationStatus, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select case when status in ('created', 'opened') and expires_at <= $1 then 'expired' \
             else status end as effective, count(*) from invitation group by effective",
        )
        .bind(ts(now))
        .fetch_all(&self.pool)
        .await?;
        Ok(InvitationStatus::ALL
            .into_iter()
            .map(|s| {
                let n = rows
                    .iter()
                    .find(|(name, _)| name == s.as_str())
                    .map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect())
    }

    /// The salt of a live invitation (created or opened, unexpired) for `tenant` made by
    /// `created_by`: a person who signs in again is shown the link they already have.
    pub async fn live_invitation_from(
        &self,
        tenant: TenantId,
        created_by: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "select salt from invitation where tenant_id = $1 and created_by = $2 \
             and status in ('created', 'opened') and expires_at > $3 order by id desc limit 1",
        )
        .bind(tenant.to_string())
        .bind(created_by)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The invitations that named `tenant` or connected it, newest first.
    pub async fn invitations_for_tenant(
        &self,
        tenant: TenantId,
        limit: i64,
    ) -> Result<Vec<InvitationRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "select {COLUMNS} from invitation where id in ( \
                 select id from invitation where tenant_id = $1 \
                 union select id from invitation where connected_tenant_id = $1) \
             order by id desc limit $2"
        ))
        .bind(tenant.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The sign-ups started from an invitation, newest first.
    pub async fn invitation_sign_ups(
        &self,
        id: &str,
        limit: i64,
    ) -> Result<Vec<InvitationSignUp>, StoreError> {
        Ok(sqlx::query_as(
            "select created_at, consumed_at, tenant_id, client_addr, refusals from consent_request \
             where invitation_id = $1 order by created_at desc limit $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The binding (hash) of the browser whose callback consented the invitation.
    pub async fn invitation_consenting_binding(
        &self,
        invitation: &InvitationRow,
    ) -> Result<Option<String>, StoreError> {
        let Some(request) = &invitation.consent_request_id else {
            return Ok(None);
        };
        Ok(
            sqlx::query_scalar("select binding_hash from consent_request where id = $1")
                .bind(request)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// When an invitation naming `tenant` was consented, if one still waits for a check to
    /// confirm it: the verifier gives a re-consent time to reach Microsoft's token service.
    pub async fn awaiting_invitation(
        &self,
        tenant: TenantId,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let at: Option<Option<String>> = sqlx::query_scalar(
            "select max(consented_at) from invitation \
             where callback_tenant_id = $1 and status = 'consented'",
        )
        .bind(tenant.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(at.flatten().as_deref().and_then(parse_ts))
    }
}

/// An invitation a callback is about to use: what the callback must match.
#[derive(Debug)]
pub(super) struct CallbackInvitation {
    pub status: String,
    pub tenant_id: Option<String>,
}

pub(super) async fn for_callback(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<Option<CallbackInvitation>, StoreError> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("select status, tenant_id from invitation where id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(status, tenant_id)| CallbackInvitation { status, tenant_id }))
}

/// A callback of one of its sign-ups was accepted: the invitation is consented (again, if
/// its browser tried once more after a failed check).
pub(super) async fn consented(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    request_id: &str,
    tenant: TenantId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "update invitation set status = 'consented', consented_at = $2, consent_request_id = $3, \
         callback_tenant_id = $4, failure = null, failed_at = null, updated_at = $2 \
         where id = $1 and status in ('created', 'opened', 'consented')",
    )
    .bind(id)
    .bind(ts(now))
    .bind(request_id)
    .bind(tenant.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Notes what went wrong with one of its sign-ups (the status stays: the customer may try
/// again while the link lives).
pub(super) async fn failed(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    failure: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query(
        "update invitation set failure = $2, failed_at = $3, updated_at = $3 \
         where id = $1 and status <> 'revoked'",
    )
    .bind(id)
    .bind(failure.chars().take(500).collect::<String>())
    .bind(ts(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A check of `tenant` was saved: consented invitations whose callback named it move on.
/// A success verifies those that named this tenant (by id, or by one of the `domains` the
/// check just read from Graph) and those whose own sign-up is the claim confirming the
/// tenant; any other is left consented with a note (its callback named a tenant that
/// somebody else's consent confirmed: it proves nothing). A failure is noted on each.
pub(super) async fn after_check(
    conn: &mut sqlx::AnyConnection,
    tenant: TenantId,
    success: Option<&[String]>,
    failure: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let tenant_s = tenant.to_string();
    // (id, tenant id named, domain named, the sign-up that consented it)
    type Waiting = (String, Option<String>, Option<String>, Option<String>);
    let waiting: Vec<Waiting> = sqlx::query_as(
        "select id, tenant_id, domain, consent_request_id from invitation \
         where callback_tenant_id = $1 and status = 'consented'",
    )
    .bind(&tenant_s)
    .fetch_all(&mut *conn)
    .await?;
    if waiting.is_empty() {
        return Ok(());
    }
    let confirming: Option<String> =
        sqlx::query_scalar("select consent_request_id from tenant where id = $1")
            .bind(&tenant_s)
            .fetch_optional(&mut *conn)
            .await?
            .flatten();
    for (id, named_id, named_domain, request) in waiting {
        match success {
            Some(domains) => {
                let named = named_id.as_deref() == Some(tenant_s.as_str())
                    || named_domain
                        .as_deref()
                        .is_some_and(|d| domains.iter().any(|v| v.eq_ignore_ascii_case(d)));
                let confirmed_by_it = request.is_some() && request == confirming;
                if named || confirmed_by_it {
                    sqlx::query(
                        "update invitation set status = 'verified', verified_at = $2, \
                         connected_tenant_id = $3, failure = null, failed_at = null, updated_at = $2 \
                         where id = $1",
                    )
                    .bind(&id)
                    .bind(ts(now))
                    .bind(&tenant_s)
                    .execute(&mut *conn)
                    .await?;
                } else {
                    failed(
                        conn,
                        &id,
                        &format!(
                            "Its callback named tenant {tenant_s}, which another sign-up's consent confirmed: it proves nothing about this invitation."
                        ),
                        now,
                    )
                    .await?;
                }
            }
            None => {
                let why = failure.unwrap_or("the check failed");
                failed(
                    conn,
                    &id,
                    &format!("Microsoft did not confirm the consent: {why}"),
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

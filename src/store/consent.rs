//! Pending admin-consent requests, the atomic step that turns a callback into a tenant to
//! verify, and the claims (what a sign-up said) kept with each request.
//!
//! The callback's `tenant` is typed by anyone (ENTRA.md §2). So a callback never writes
//! over what a tenant is: a sign-up's organisation name, contact email and domain stay with
//! its request as a *claim*; the tenant's name and domains come from Graph only. A callback
//! for a tenant that was already verified writes one neutral event and at most one early
//! check a minute (`early_check.rs`); for a tenant never verified it joins the current verification window
//! without extending its deadline.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use serde_json::json;

use super::early_check::{CheckAsker, EarlyCheck, take_early_check};
use super::event::{EventKind, NewEvent, insert_event};
use super::invitation::{self, InvitationRow};
use super::tenant::TenantRow;
use super::webhook::{OutboxEvent, insert_outbox, status_changed};
use super::{Store, StoreError, ts};
use crate::domain::webhook::EventType;
use crate::domain::{TenantId, TenantStatus};

/// How Microsoft's page answered a sign-up it declined (`tenant.consent_declined`).
#[derive(Debug, Clone)]
pub struct Declined<'a> {
    /// The OAuth `error` (`access_denied`, `consent_required`).
    pub error: &'a str,
    /// `AADSTS65004` when the description names one.
    pub code: Option<String>,
    /// Microsoft's own first line of `error_description`.
    pub description: &'a str,
}

/// A declined sign-up whose state this browser was issued.
#[derive(Debug, Clone, Copy)]
pub struct DeclinedSignUp {
    /// It was started from an invitation (whose link starts it again).
    pub from_invitation: bool,
}

/// A failed tenant that a new callback put back to pending: `tenant.status_changed`.
async fn reopened_webhook(
    conn: &mut sqlx::AnyConnection,
    cb: &ConsentCallback<'_>,
) -> Result<(), StoreError> {
    let row: TenantRow = sqlx::query_as("select * from tenant where id = $1")
        .bind(cb.tenant.to_string())
        .fetch_one(&mut *conn)
        .await?;
    let event = status_changed(
        &row,
        TenantStatus::Failed,
        TenantStatus::Pending,
        serde_json::Value::Null,
        &[],
    );
    insert_outbox(conn, &event, cb.now).await?;
    Ok(())
}

/// Unexpired pending sign-ups, in all. With the caps per address and per network below, an
/// attacker needs 1,000 networks at once to reach it; beyond it sign-ups answer 503.
pub const MAX_PENDING_REQUESTS: i64 = 100_000;
/// Pending sign-ups one address (IPv4 address, IPv6 /64) keeps; a newer one supersedes the
/// oldest. A person needs one or two; a flood from one address only churns its own.
pub const MAX_PENDING_PER_ADDRESS: i64 = 10;
/// Pending sign-ups one network (IPv4 address, IPv6 /48) keeps: a /48 holds 65,536 /64s.
pub const MAX_PENDING_PER_NETWORK: i64 = 100;
/// Distinct tenants one browser may name in callbacks within a day: a consultant connecting
/// several customers fits; naming victims in bulk does not.
pub const MAX_TENANTS_PER_BROWSER: i64 = 10;
/// Distinct tenants one address may name in callbacks within a day (an office shares one).
pub const MAX_TENANTS_PER_ADDRESS: i64 = 30;
/// Claims that did not confirm their tenant are kept this long (the confirming one is kept
/// as long as the tenant).
pub const CLAIM_RETENTION: Duration = Duration::days(90);
/// A tenant never verified is deleted this long after its verification window opened, with
/// its events and claims: forged callbacks leave nothing behind for good.
pub const UNVERIFIED_TENANT_RETENTION: Duration = Duration::days(7);
/// Events that name no tenant (refused callbacks of stored requests) are kept this long.
pub const ORPHAN_EVENT_RETENTION: Duration = Duration::days(30);

/// A sign-up about to be sent to Microsoft.
#[derive(Debug)]
pub struct NewConsentRequest {
    pub state_hash: String,
    pub binding_hash: String,
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    pub domain_hint: Option<String>,
    /// The client's address key (IPv4 address, IPv6 /64).
    pub client_addr: String,
    /// The client's network key (IPv4 address, IPv6 /48).
    pub client_net: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The invitation it was started from, if any.
    pub invitation_id: Option<String>,
    /// Who signed in with Microsoft before it (a validated ID token's claims).
    pub signed_in: Option<SignedInClaim>,
}

/// The person a validated ID token named, kept with the sign-up it started (never the
/// token).
#[derive(Debug, Clone)]
pub struct SignedInClaim {
    pub tenant: TenantId,
    pub object_id: String,
    pub name: Option<String>,
    pub username: Option<String>,
    pub at: OffsetDateTime,
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
    /// This browser or address named too many distinct tenants today.
    TooManyTenants,
    /// The sign-up came from an invitation for one tenant and the callback named another.
    NotInvitedTenant,
    /// The person signed in with Microsoft as a member of one tenant and the callback
    /// named another.
    NotSignedInTenant,
}

impl ConsentRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentRejection::UnknownState => "unknown_state",
            ConsentRejection::Expired => "expired_state",
            ConsentRejection::Replayed => "replayed_state",
            ConsentRejection::OtherBrowser => "other_browser",
            ConsentRejection::TooManyTenants => "too_many_tenants",
            ConsentRejection::NotInvitedTenant => "not_invited_tenant",
            ConsentRejection::NotSignedInTenant => "not_signed_in_tenant",
        }
    }
}

/// A callback whose state and browser binding are to be checked.
#[derive(Debug)]
pub struct ConsentCallback<'a> {
    pub state_hash: &'a str,
    /// Every binding cookie the browser sent (an older one may still be around).
    pub binding_hashes: &'a [String],
    pub tenant: TenantId,
    pub now: OffsetDateTime,
    pub request_id: &'a str,
}

#[derive(Debug)]
pub enum ConsentOutcome {
    /// The state was consumed and the callback recorded as a claim on the tenant, in one
    /// transaction.
    Recorded {
        tenant: TenantId,
        /// The tenant is due for a check now (the verifier should look at once).
        check_now: bool,
    },
    Rejected(ConsentRejection),
}

/// What this browser's latest callback may see of its tenant.
#[derive(Debug)]
pub enum Onboarding {
    /// Its claim (this one or an earlier one of the same browser) is the one that confirms
    /// the tenant, uncontested: show progress.
    Owner(Box<TenantRow>),
    /// Another browser's claim confirms the tenant (it was verified before this callback,
    /// say), or another browser named it in the same verification window: show nothing.
    Bystander { tenant_id: String },
    /// Its callback consented an invitation that named this tenant (or was verified with
    /// it): the browser holds the secret the operator sent, so it sees the outcome.
    Invited {
        tenant: Box<TenantRow>,
        invitation: Box<InvitationRow>,
    },
}

/// One claim: what a sign-up said, and what its callback named.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimRow {
    pub id: String,
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    pub domain_hint: Option<String>,
    pub client_addr: Option<String>,
    /// When the sign-up started.
    pub created_at: String,
    /// When its callback arrived.
    pub consumed_at: String,
    /// Who signed in with Microsoft for it: a validated ID token named them, a member of
    /// this tenant (the callback had to name the same one).
    pub signed_in_name: Option<String>,
    pub signed_in_username: Option<String>,
    pub signed_in_at: Option<String>,
}

/// What a purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    pub consent_requests: u64,
    pub tenants: u64,
    pub events: u64,
}

impl PurgeReport {
    pub fn total(&self) -> u64 {
        self.consent_requests + self.tenants + self.events
    }
}

impl Store {
    /// Stores a sign-up, unless too many are pending (`Ok(false)`). Beyond the caps per
    /// address and per network, the oldest pending request of that client is superseded.
    /// The cap and the insert are one transaction whose first statement writes, so SQLite
    /// serialises concurrent sign-ups on it.
    pub async fn insert_consent_request(&self, r: &NewConsentRequest) -> Result<bool, StoreError> {
        let now = ts(r.created_at);
        let mut tx = self.pool.begin().await?;
        super::serialize(&mut tx, "consent_request.cap").await?;
        for (column, key, keep) in [
            ("client_addr", &r.client_addr, MAX_PENDING_PER_ADDRESS),
            ("client_net", &r.client_net, MAX_PENDING_PER_NETWORK),
        ] {
            sqlx::query(&format!(
                "delete from consent_request where id in (select id from consent_request \
                 where {column} = $1 and consumed_at is null and expires_at > $2 \
                 order by created_at desc limit 1000000 offset $3)"
            ))
            .bind(key)
            .bind(&now)
            .bind(keep - 1)
            .execute(&mut *tx)
            .await?;
        }
        let inserted = sqlx::query(
            "insert into consent_request (id, state_hash, binding_hash, organisation_name, contact_email, \
             domain_hint, client_addr, client_net, created_at, expires_at, invitation_id, \
             signed_in_tenant, signed_in_oid, signed_in_name, signed_in_username, signed_in_at) \
             select $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $13, $14, $15, $16, $17 \
             where (select count(*) from consent_request where consumed_at is null and expires_at > $9) < $11",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(&r.state_hash)
        .bind(&r.binding_hash)
        .bind(&r.organisation_name)
        .bind(&r.contact_email)
        .bind(&r.domain_hint)
        .bind(&r.client_addr)
        .bind(&r.client_net)
        .bind(&now)
        .bind(ts(r.expires_at))
        .bind(MAX_PENDING_REQUESTS)
        .bind(&r.invitation_id)
        .bind(r.signed_in.as_ref().map(|p| p.tenant.to_string()))
        .bind(r.signed_in.as_ref().map(|p| p.object_id.clone()))
        .bind(r.signed_in.as_ref().and_then(|p| p.name.clone()))
        .bind(r.signed_in.as_ref().and_then(|p| p.username.clone()))
        .bind(r.signed_in.as_ref().map(|p| ts(p.at)))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Removes what has outlived its use: unused requests an hour after they expired (a
    /// late callback until then is told "expired" rather than "unknown"), used ones that
    /// named no tenant after a day (replays are told "already used" until then), claims
    /// after [`CLAIM_RETENTION`] unless they confirmed their tenant, tenants never verified
    /// after [`UNVERIFIED_TENANT_RETENTION`] (with their events and claims), and events of
    /// no tenant after [`ORPHAN_EVENT_RETENTION`].
    pub async fn purge_stale(&self, now: OffsetDateTime) -> Result<PurgeReport, StoreError> {
        let _changed = self.console_change();
        let mut report = PurgeReport::default();
        let mut tx = self.pool.begin().await?;
        let unverified = ts(now - UNVERIFIED_TENANT_RETENTION);
        // A tenant never verified goes with its events and claims (the tenant last).
        for (table, column, count) in [
            ("tenant_event", "tenant_id", &mut report.events),
            ("consent_request", "tenant_id", &mut report.consent_requests),
            ("tenant", "id", &mut report.tenants),
        ] {
            *count += sqlx::query(&format!(
                "delete from {table} where {column} in \
                 (select id from tenant where verified_at is null and consented_at < $1)"
            ))
            .bind(&unverified)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        report.consent_requests += sqlx::query(
            "delete from consent_request where (consumed_at is null and expires_at < $1) \
             or (consumed_at < $2 and tenant_id is null) \
             or (consumed_at < $3 and tenant_id is not null and id not in \
                 (select consent_request_id from tenant where consent_request_id is not null))",
        )
        .bind(ts(now - Duration::hours(1)))
        .bind(ts(now - Duration::days(1)))
        .bind(ts(now - CLAIM_RETENTION))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        report.consent_requests += Store::purge_sign_ins(&mut tx, now).await?;
        report.events +=
            sqlx::query("delete from tenant_event where tenant_id is null and created_at < $1")
                .bind(ts(now - ORPHAN_EVENT_RETENTION))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(report)
    }

    /// Consumes the state and records the callback as a claim on its tenant, atomically: of
    /// any number of concurrent callbacks with one state, exactly one gets `Recorded`. The
    /// state must exist, be unexpired, unused and bound to this browser; otherwise nothing
    /// is written.
    pub async fn complete_consent(
        &self,
        cb: &ConsentCallback<'_>,
    ) -> Result<ConsentOutcome, StoreError> {
        let _changed = self.console_change();
        let now = ts(cb.now);
        let tenant = cb.tenant.to_string();
        let mut tx = self.pool.begin().await?;
        // The first statement writes, so SQLite takes the write lock here and concurrent
        // callbacks queue behind it (busy timeout) instead of racing.
        type Consumed = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let consumed: Option<Consumed> = sqlx::query_as(
            "update consent_request set consumed_at = $1, tenant_id = $3 \
             where state_hash = $2 and consumed_at is null and expires_at > $1 \
             returning id, binding_hash, client_addr, invitation_id, signed_in_tenant",
        )
        .bind(&now)
        .bind(cb.state_hash)
        .bind(&tenant)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((request_id, binding_hash, client_addr, invitation_id, signed_in_tenant)) =
            consumed
        else {
            tx.rollback().await?;
            return Ok(ConsentOutcome::Rejected(
                self.why_rejected(cb.state_hash, cb.binding_hashes, &now)
                    .await?,
            ));
        };
        if !cb.binding_hashes.contains(&binding_hash) {
            tx.rollback().await?;
            return Ok(ConsentOutcome::Rejected(ConsentRejection::OtherBrowser));
        }
        if let Some(signed_in) = signed_in_tenant.as_deref()
            && signed_in != tenant
        {
            // Microsoft sends the administrator of tenant T back from T's adminconsent page
            // with T: another tenant here was typed. The state is spent; no tenant is
            // touched.
            refuse_callback(
                &mut tx,
                &request_id,
                cb,
                format!(
                    "Callback refused: the person signed in with Microsoft as a member of tenant {signed_in}, and the callback named tenant {tenant}."
                ),
            )
            .await?;
            if let Some(id) = &invitation_id {
                invitation::failed(
                    &mut tx,
                    id,
                    &format!(
                        "A callback named tenant {tenant}, not the signed-in person's: refused."
                    ),
                    cb.now,
                )
                .await?;
            }
            tx.commit().await?;
            return Ok(ConsentOutcome::Rejected(
                ConsentRejection::NotSignedInTenant,
            ));
        }

        // A sign-up started from an invitation still in force (a revoked one, or one
        // another of its sign-ups already verified, leaves this an ordinary sign-up).
        let invitation = match &invitation_id {
            Some(id) => invitation::for_callback(&mut tx, id)
                .await?
                .filter(|i| i.status != "revoked" && i.status != "verified")
                .map(|i| (id.clone(), i)),
            None => None,
        };
        if let Some((id, invited)) = &invitation
            && let Some(named) = invited.tenant_id.as_deref()
            && named != tenant
        {
            // Microsoft answers an adminconsent page for tenant T with T: another tenant
            // here was typed by someone. The state is spent; no tenant is touched, and the
            // invitation stays as it was for its administrator.
            refuse_callback(
                &mut tx,
                &request_id,
                cb,
                format!(
                    "Callback refused: the sign-up came from an invitation for tenant {named}, and the callback named tenant {tenant}."
                ),
            )
            .await?;
            invitation::failed(
                &mut tx,
                id,
                &format!("A callback named tenant {tenant}, not the invited tenant: refused."),
                cb.now,
            )
            .await?;
            tx.commit().await?;
            return Ok(ConsentOutcome::Rejected(ConsentRejection::NotInvitedTenant));
        }
        let invited = invitation.is_some();

        // A bound on the distinct tenants one browser or address names a day (this one
        // included, since the request above now names it).
        // Counted one callback at a time per browser and per address (always in this
        // order, so two callbacks never wait on each other's second lock): on PostgreSQL
        // concurrent callbacks would not see each other's names (see `serialize`).
        super::serialize(&mut tx, &format!("callback.browser:{binding_hash}")).await?;
        if let Some(address) = &client_addr {
            super::serialize(&mut tx, &format!("callback.address:{address}")).await?;
        }
        let since = ts(cb.now - Duration::days(1));
        let mut named = [0i64; 2];
        for (count, (column, key)) in named.iter_mut().zip([
            ("binding_hash", Some(&binding_hash)),
            ("client_addr", client_addr.as_ref()),
        ]) {
            if let Some(key) = key {
                *count = sqlx::query_scalar(&format!(
                    "select count(distinct tenant_id) from consent_request \
                     where {column} = $1 and consumed_at > $2 and tenant_id is not null"
                ))
                .bind(key)
                .bind(&since)
                .fetch_one(&mut *tx)
                .await?;
            }
        }
        let [per_browser, per_address] = named;
        if per_browser > MAX_TENANTS_PER_BROWSER || per_address > MAX_TENANTS_PER_ADDRESS {
            // The state is spent (this answer is final), but no tenant is touched.
            refuse_callback(
                &mut tx,
                &request_id,
                cb,
                format!(
                    "Callback refused: this browser or address already named {} organisations today; it named tenant {tenant}.",
                    per_browser.max(per_address) - 1
                ),
            )
            .await?;
            tx.commit().await?;
            return Ok(ConsentOutcome::Rejected(ConsentRejection::TooManyTenants));
        }

        let inserted = sqlx::query(
            "insert into tenant (id, status, consent_request_id, consented_at, verify_attempts, \
             next_verify_at, created_at, updated_at) \
             values ($1, 'pending', $2, $3, 0, $3, $3, $3) on conflict (id) do nothing",
        )
        .bind(&tenant)
        .bind(&request_id)
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;

        let (kind, detail, check_now) = if inserted {
            (
                EventKind::ConsentRecorded,
                "A consent callback named this tenant; verifying the consent with Microsoft."
                    .to_owned(),
                true,
            )
        } else {
            let (status, verified_at): (String, Option<String>) =
                sqlx::query_as("select status, verified_at from tenant where id = $1")
                    .bind(&tenant)
                    .fetch_one(&mut *tx)
                    .await?;
            if verified_at.is_some() && invited {
                // An invitation's callback is checked at once, whatever the tenant's allowance
                // of early checks: one per invitation (its consent happens once), and its
                // administrator is waiting for the answer.
                if take_early_check(&mut tx, &tenant, cb.now, CheckAsker::Holder).await?
                    != EarlyCheck::Granted
                {
                    request_check_now(&mut tx, &tenant, &now).await?;
                }
                (
                    EventKind::CallbackNamed,
                    "A consent callback through an invitation named this tenant (a re-consent); checking it now. Nothing about the tenant changes until a check succeeds.".to_owned(),
                    true,
                )
            } else if verified_at.is_some() {
                // Verified before this callback: nothing about it changes. An early check
                // if the tenant's budget is whole (an administrator may have just
                // re-consented); at most one a minute, whoever sends callbacks.
                let forced = take_early_check(&mut tx, &tenant, cb.now, CheckAsker::Callback)
                    .await?
                    == EarlyCheck::Granted;
                (
                    EventKind::CallbackNamed,
                    "A consent callback named this tenant. It proves nothing by itself; the tenant was already verified, so nothing about it changed.".to_owned(),
                    forced,
                )
            } else if status == "failed" {
                // Its last verification window closed without a consent: a new callback
                // opens a new one (an administrator trying again).
                sqlx::query(
                    "update tenant set status = 'pending', consent_request_id = $2, consented_at = $3, \
                     verify_attempts = 0, consecutive_failures = 0, last_error_code = null, last_error = null, \
                     next_verify_at = $3, early_checks_full_at = null, check_requested_at = $3, updated_at = $3, \
                     revision = revision + 1 \
                     where id = $1",
                )
                .bind(&tenant)
                .bind(&request_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                reopened_webhook(&mut tx, cb).await?;
                (
                    EventKind::ConsentRecorded,
                    "A consent callback named this tenant again; verifying the consent with Microsoft.".to_owned(),
                    true,
                )
            } else {
                // Still being verified: this claim joins the window, whose deadline stays.
                // The confirming claim is the latest before the check that succeeds.
                // The revision moves (migration 20261130000002): a check that started before
                // this callback does not save its outcome, so the confirming claim is always
                // the latest one before the check that succeeds.
                sqlx::query(
                    "update tenant set consent_request_id = $2, updated_at = $3, revision = revision + 1 where id = $1",
                )
                    .bind(&tenant)
                    .bind(&request_id)
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
                let forced = take_early_check(&mut tx, &tenant, cb.now, CheckAsker::Callback)
                    .await?
                    == EarlyCheck::Granted;
                (
                    EventKind::CallbackNamed,
                    "Another consent callback named this tenant while it was being verified; the verification deadline is unchanged.".to_owned(),
                    forced,
                )
            }
        };
        insert_event(
            &mut *tx,
            &NewEvent {
                tenant_id: Some(cb.tenant),
                kind,
                detail,
                request_id: Some(cb.request_id.to_owned()),
            },
            cb.now,
        )
        .await?;
        if let Some((id, _)) = &invitation {
            invitation::consented(&mut tx, id, &request_id, cb.tenant, cb.now).await?;
        }
        tx.commit().await?;
        Ok(ConsentOutcome::Recorded {
            tenant: cb.tenant,
            check_now,
        })
    }

    /// A declined or failed consent: consumes the state when it matches this browser (so
    /// it cannot be used again) and then records the event, atomically. Without a match
    /// nothing is written (anyone can type a declined callback) and `None` is returned.
    pub async fn decline_consent(
        &self,
        state_hash: &str,
        binding_hashes: &[String],
        event: &NewEvent,
        declined: &Declined<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<DeclinedSignUp>, StoreError> {
        let _changed = self.console_change();
        let now_s = ts(now);
        let mut tx = self.pool.begin().await?;
        type Consumed = (
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            Option<String>,
        );
        let consumed: Option<Consumed> = sqlx::query_as(
            "update consent_request set consumed_at = $1 \
             where state_hash = $2 and consumed_at is null and expires_at > $1 \
             returning id, binding_hash, organisation_name, contact_email, domain_hint, created_at, \
             invitation_id",
        )
        .bind(&now_s)
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((
            request_id,
            _,
            organisation_name,
            contact_email,
            domain_hint,
            started_at,
            invitation_id,
        )) = consumed.filter(|r| binding_hashes.contains(&r.1))
        else {
            tx.rollback().await?;
            return Ok(None);
        };
        // The operator follows a declined sign-up up with what it said about itself; a
        // sign-up from an invitation that named a tenant is on that tenant's timeline.
        let mut event = event.clone();
        event.detail.push_str(&claimed_words(
            organisation_name.as_deref(),
            contact_email.as_deref(),
            domain_hint.as_deref(),
        ));
        if let Some(id) = &invitation_id {
            let named = invitation::for_callback(&mut tx, id)
                .await?
                .and_then(|i| i.tenant_id);
            if let Some(named) = named {
                // Only a tenant we know: an event of no row would outlive every purge.
                let known: Option<String> =
                    sqlx::query_scalar("select id from tenant where id = $1")
                        .bind(&named)
                        .fetch_optional(&mut *tx)
                        .await?;
                event.tenant_id = known.as_deref().and_then(TenantId::parse);
            }
            let code = declined.code.as_deref().unwrap_or(declined.error);
            invitation::failed(
                &mut tx,
                id,
                &format!(
                    "Declined on Microsoft's page ({code}): {}",
                    declined.description
                ),
                now,
            )
            .await?;
        }
        insert_event(&mut *tx, &event, now).await?;
        // The sign-up's own words are claims (typed by whoever started it), so the event
        // says so; the customer's product may follow the sign-up up.
        let data = json!({
            "sign_up": {
                "id": request_id,
                "started_at": started_at,
                "claimed": {
                    "organisation_name": organisation_name,
                    "contact_email": contact_email,
                    "domain": domain_hint,
                },
            },
            "error": {
                "error": declined.error,
                "code": declined.code,
                "description": declined.description,
            },
        });
        insert_outbox(
            &mut tx,
            &OutboxEvent {
                event_type: EventType::TenantConsentDeclined,
                tenant_id: None,
                data,
            },
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(DeclinedSignUp {
            from_invitation: invitation_id.is_some(),
        }))
    }

    /// A refused callback whose state is one we stored: the first refusal of that request
    /// writes `event`, later ones only count. Returns whether the event was written. A
    /// state we never stored writes nothing, so a flood of forged callbacks costs no row.
    pub async fn refuse_callback(
        &self,
        state_hash: &str,
        event: &NewEvent,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let _changed = self.console_change();
        let mut tx = self.pool.begin().await?;
        // Only the first refusal writes (later ones match no row): a replayed URL costs no
        // page either.
        type Refused = (
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
        );
        let first: Option<Refused> = sqlx::query_as(
            "update consent_request set refusals = 1 where state_hash = $1 and refusals = 0 \
             returning organisation_name, contact_email, domain_hint, invitation_id",
        )
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((organisation_name, contact_email, domain_hint, invitation_id)) = first else {
            tx.rollback().await?;
            return Ok(false);
        };
        if let Some(id) = &invitation_id {
            invitation::failed(&mut tx, id, &event.detail, now).await?;
        }
        let mut event = event.clone();
        event.detail.push_str(&claimed_words(
            organisation_name.as_deref(),
            contact_email.as_deref(),
            domain_hint.as_deref(),
        ));
        insert_event(&mut *tx, &event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Why no pending request matched.
    async fn why_rejected(
        &self,
        state_hash: &str,
        binding_hashes: &[String],
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
            Some((binding, None, _)) if !binding_hashes.contains(&binding) => {
                ConsentRejection::OtherBrowser
            }
            Some((_, None, expires)) if expires.as_str() <= now => ConsentRejection::Expired,
            // It matched a moment ago but another callback consumed it in between.
            Some(_) => ConsentRejection::Replayed,
        })
    }

    /// The tenant this browser's latest callback named, and what the browser may see of
    /// it: only the browser whose claim confirms the tenant, uncontested by another browser
    /// in the same verification window, sees it. A tenant confirmed by another browser's
    /// claim (verified before this callback, say) shows nothing: the `tenant` parameter
    /// could be anyone's.
    pub async fn onboarding_for_binding(
        &self,
        binding_hashes: &[String],
    ) -> Result<Option<Onboarding>, StoreError> {
        type Latest = (String, String, String, Option<String>, Option<String>);
        let mut latest: Option<Latest> = None;
        for binding in binding_hashes {
            let row: Option<Latest> = sqlx::query_as(
                "select tenant_id, consumed_at, id, invitation_id, signed_in_tenant from consent_request \
                 where binding_hash = $1 and consumed_at is not null and tenant_id is not null \
                 order by consumed_at desc limit 1",
            )
            .bind(binding)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row
                && latest.as_ref().is_none_or(|l| row.1 > l.1)
            {
                latest = Some(row);
            }
        }
        let Some((tenant_id, _, request_id, invitation_id, signed_in_tenant)) = latest else {
            return Ok(None);
        };
        let tenant: Option<TenantRow> = sqlx::query_as("select * from tenant where id = $1")
            .bind(&tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(tenant) = tenant else {
            return Ok(None);
        };
        // A callback that consented an invitation sees the tenant the operator named in it,
        // or the one verified through it: the invitation's secret is its authority.
        if let Some(id) = invitation_id
            && let Some(invitation) = self.invitation(&id).await?
            && matches!(invitation.status.as_str(), "consented" | "verified")
            && invitation.consent_request_id.as_deref() == Some(request_id.as_str())
            && (invitation.tenant_id.as_deref() == Some(tenant_id.as_str())
                || invitation.connected_tenant_id.as_deref() == Some(tenant_id.as_str()))
        {
            return Ok(Some(Onboarding::Invited {
                tenant: Box::new(tenant),
                invitation: Box::new(invitation),
            }));
        }
        // A person Microsoft signed in as a member of the tenant sees it, whoever confirmed
        // it: the callback had to name their own tenant.
        if signed_in_tenant.as_deref() == Some(tenant_id.as_str()) {
            return Ok(Some(Onboarding::Owner(Box::new(tenant))));
        }
        // The browser owns the tenant when the claim that confirms it is one of its own
        // (so an administrator's own re-consent still shows them their tenant) and no other
        // browser named the tenant in the same verification window.
        let confirming_binding: Option<String> = match &tenant.consent_request_id {
            Some(id) => {
                sqlx::query_scalar("select binding_hash from consent_request where id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => None,
        };
        let window_end = tenant
            .verified_at
            .clone()
            .unwrap_or_else(|| "9999".to_owned());
        let browsers_in_window: i64 = sqlx::query_scalar(
            "select count(distinct binding_hash) from consent_request where tenant_id = $1 \
             and consumed_at >= $2 and consumed_at <= $3",
        )
        .bind(&tenant_id)
        .bind(&tenant.consented_at)
        .bind(&window_end)
        .fetch_one(&self.pool)
        .await?;
        let owns = confirming_binding.is_some_and(|b| binding_hashes.contains(&b))
            && browsers_in_window <= 1;
        Ok(Some(if owns {
            Onboarding::Owner(Box::new(tenant))
        } else {
            Onboarding::Bystander { tenant_id }
        }))
    }

    /// Who signed in with Microsoft for the latest sign-up of this browser that named
    /// `tenant` as their own: (name, username, when).
    pub async fn signed_in_claim(
        &self,
        binding_hashes: &[String],
        tenant: &str,
    ) -> Result<Option<(Option<String>, Option<String>, String)>, StoreError> {
        let mut latest: Option<(Option<String>, Option<String>, String)> = None;
        for binding in binding_hashes {
            let row: Option<(Option<String>, Option<String>, String)> = sqlx::query_as(
                "select signed_in_name, signed_in_username, signed_in_at from consent_request \
                 where binding_hash = $1 and tenant_id = $2 and signed_in_tenant = $2 \
                 and consumed_at is not null order by consumed_at desc limit 1",
            )
            .bind(binding)
            .bind(tenant)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row
                && latest.as_ref().is_none_or(|l| row.2 > l.2)
            {
                latest = Some(row);
            }
        }
        Ok(latest)
    }

    /// Every claim that named `tenant`, newest first, and the id of the one that
    /// confirms it (the latest callback before its first successful verification).
    pub async fn claims_for(&self, tenant: TenantId) -> Result<Vec<ClaimRow>, StoreError> {
        Ok(sqlx::query_as(
            "select id, organisation_name, contact_email, domain_hint, client_addr, created_at, consumed_at, \
             signed_in_name, signed_in_username, signed_in_at \
             from consent_request where tenant_id = $1 and consumed_at is not null \
             order by consumed_at desc limit 200",
        )
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?)
    }
}

/// What a sign-up said about itself, for an event's detail (empty when it said nothing):
/// claims, so worded as such.
fn claimed_words(
    organisation_name: Option<&str>,
    contact_email: Option<&str>,
    domain: Option<&str>,
) -> String {
    let said: Vec<String> = [
        organisation_name.map(|n| format!("organisation \"{n}\"")),
        contact_email.map(|e| format!("contact {e}")),
        domain.map(|d| format!("domain {d}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if said.is_empty() {
        String::new()
    } else {
        format!(" The sign-up said: {}.", said.join(", "))
    }
}

/// Spends the sign-up's state on a callback refused for good, touching no tenant, and
/// says why in the log of events.
async fn refuse_callback(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    request_id: &str,
    cb: &ConsentCallback<'_>,
    detail: String,
) -> Result<(), StoreError> {
    sqlx::query("update consent_request set tenant_id = null, refusals = 1 where id = $1")
        .bind(request_id)
        .execute(&mut **tx)
        .await?;
    insert_event(
        &mut **tx,
        &NewEvent {
            tenant_id: None,
            kind: EventKind::CallbackRejected,
            detail,
            request_id: Some(cb.request_id.to_owned()),
        },
        cb.now,
    )
    .await?;
    Ok(())
}

/// Makes the tenant due now, outside its allowance of early checks (an invitation's
/// callback: one per invitation).
async fn request_check_now(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    now: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "update tenant set next_verify_at = $2, check_requested_at = $2, updated_at = $2, \
         revision = revision + 1 where id = $1",
    )
    .bind(tenant)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

//! Sign-ins with Microsoft waiting for their answer: stored by the HMACs of their `state`
//! and of the browser's binding only, consumed exactly once by the browser that started
//! them.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::event::{NewEvent, insert_event};
use super::{Store, StoreError, ts};

/// Pending sign-ins in all; beyond it new ones answer 503 until some expire.
pub const MAX_PENDING_SIGN_INS: i64 = 100_000;
/// Pending sign-ins one address keeps; a newer one supersedes the oldest.
pub const MAX_PENDING_SIGN_INS_PER_ADDRESS: i64 = 10;

/// What a sign-in is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInPurpose {
    /// A sign-up's person signs in before their tenant's admin consent.
    Signup,
    /// An operator signs in to the console through our own tenant.
    Operator,
}

impl SignInPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInPurpose::Signup => "signup",
            SignInPurpose::Operator => "operator",
        }
    }
}

/// A sign-in about to be sent to Microsoft.
#[derive(Debug)]
pub struct NewSignInRequest<'a> {
    pub state_hash: &'a str,
    pub binding_hash: &'a str,
    pub purpose: SignInPurpose,
    pub client_addr: &'a str,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Why an answer's state was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRejection {
    /// Never issued (or altered, or purged long ago).
    UnknownState,
    Expired,
    /// Already answered once.
    Replayed,
    /// Issued to another browser.
    OtherBrowser,
    /// Issued for another purpose (an operator's sign-in answering at the sign-up's URI).
    OtherPurpose,
}

impl SignInRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            SignInRejection::UnknownState => "unknown_state",
            SignInRejection::Expired => "expired_state",
            SignInRejection::Replayed => "replayed_state",
            SignInRejection::OtherBrowser => "other_browser",
            SignInRejection::OtherPurpose => "other_purpose",
        }
    }
}

impl Store {
    /// Stores a sign-in, unless too many are pending (`Ok(false)`).
    pub async fn insert_sign_in_request(
        &self,
        r: &NewSignInRequest<'_>,
    ) -> Result<bool, StoreError> {
        let now = ts(r.created_at);
        let mut tx = self.pool.begin().await?;
        super::serialize(&mut tx, "sign_in_request.cap").await?;
        sqlx::query(
            "delete from sign_in_request where id in (select id from sign_in_request \
             where client_addr = $1 and consumed_at is null and expires_at > $2 \
             order by created_at desc limit 1000000 offset $3)",
        )
        .bind(r.client_addr)
        .bind(&now)
        .bind(MAX_PENDING_SIGN_INS_PER_ADDRESS - 1)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "insert into sign_in_request (id, state_hash, binding_hash, purpose, client_addr, \
             created_at, expires_at) select $1, $2, $3, $4, $5, $6, $7 \
             where (select count(*) from sign_in_request where consumed_at is null and expires_at > $6) < $8",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(r.state_hash)
        .bind(r.binding_hash)
        .bind(r.purpose.as_str())
        .bind(r.client_addr)
        .bind(&now)
        .bind(ts(r.expires_at))
        .bind(MAX_PENDING_SIGN_INS)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(inserted == 1)
    }

    /// Consumes the sign-in whose state hashes to `state_hash`, if it is unexpired, unused,
    /// for `purpose` and bound to one of `binding_hashes`: of concurrent answers with one
    /// state, exactly one gets `Ok`. Otherwise nothing changes and the reason comes back.
    pub async fn consume_sign_in(
        &self,
        state_hash: &str,
        binding_hashes: &[String],
        purpose: SignInPurpose,
        now: OffsetDateTime,
    ) -> Result<Result<(), SignInRejection>, StoreError> {
        let now = ts(now);
        let mut tx = self.pool.begin().await?;
        let consumed: Option<(String, String)> = sqlx::query_as(
            "update sign_in_request set consumed_at = $1 \
             where state_hash = $2 and consumed_at is null and expires_at > $1 \
             returning binding_hash, purpose",
        )
        .bind(&now)
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        match consumed {
            Some((binding, stored)) if binding_hashes.contains(&binding) => {
                if stored != purpose.as_str() {
                    tx.rollback().await?;
                    return Ok(Err(SignInRejection::OtherPurpose));
                }
                tx.commit().await?;
                Ok(Ok(()))
            }
            Some(_) => {
                tx.rollback().await?;
                Ok(Err(SignInRejection::OtherBrowser))
            }
            None => {
                tx.rollback().await?;
                let row: Option<(Option<String>, String)> = sqlx::query_as(
                    "select consumed_at, expires_at from sign_in_request where state_hash = $1",
                )
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(Err(match row {
                    None => SignInRejection::UnknownState,
                    Some((Some(_), _)) => SignInRejection::Replayed,
                    Some((None, expires)) if expires <= now => SignInRejection::Expired,
                    Some(_) => SignInRejection::Replayed,
                }))
            }
        }
    }

    /// A refused answer whose state is one we stored: its first refusal writes `event`,
    /// later ones nothing (`false`), so a replayed URL costs no row. A state we never
    /// stored writes nothing either.
    pub async fn refuse_sign_in(
        &self,
        state_hash: &str,
        event: &NewEvent,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let first = sqlx::query(
            "update sign_in_request set refusals = 1 where state_hash = $1 and refusals = 0",
        )
        .bind(state_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !first {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_event(&mut *tx, event, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes sign-ins an hour after they expired unused, and a day after they were used.
    pub(super) async fn purge_sign_ins(
        conn: &mut sqlx::AnyConnection,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "delete from sign_in_request where (consumed_at is null and expires_at < $1) \
             or consumed_at < $2",
        )
        .bind(ts(now - Duration::hours(1)))
        .bind(ts(now - Duration::days(1)))
        .execute(conn)
        .await?
        .rows_affected())
    }
}

//! Early checks: a check of a tenant asked for ahead of its schedule, by a consent callback,
//! an API client (`POST /api/v1/tenants/{id}/verify`) or an operator ("Verify now"). Each
//! costs a token request to Microsoft, and a callback can be sent by anyone naming any
//! tenant, so all three draw on one budget per tenant, kept in the database (several
//! instances share it; migration 20261201000006_early_checks.sql):
//!
//! - the budget refills at one check per [`EARLY_CHECK_SPACING`];
//! - whoever holds credentials (an operator, an API key) may take up to [`EARLY_CHECK_BURST`]
//!   at once: "verify now", then again once the customer says they consented;
//! - a callback takes one only when the budget is whole: a stranger's callbacks force at
//!   most one check a minute, and leave an operator at least one.
//!
//! It is the generic cell rate algorithm: the tenant keeps the instant its budget is whole
//! again (`early_checks_full_at`); each check moves it a spacing later; a caller may go
//! ahead while that instant is at most its slack away.

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};

use super::event::{EventKind, NewEvent, insert_event};
use super::{Store, StoreError, parse_ts, ts};
use crate::domain::TenantId;

/// The budget refills at one early check per tenant this often.
pub const EARLY_CHECK_SPACING: Duration = Duration::minutes(1);
/// Early checks an operator or API key may ask for at once.
pub const EARLY_CHECK_BURST: i32 = 2;

/// Who asks for an early check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckAsker {
    /// A consent callback: its `tenant` is typed by anyone (ENTRA.md §2).
    Callback,
    /// An operator or an API key.
    Holder,
}

impl CheckAsker {
    /// How far ahead of now the budget's "whole again" instant may be for this asker.
    fn slack(self) -> Duration {
        match self {
            CheckAsker::Callback => Duration::ZERO,
            CheckAsker::Holder => EARLY_CHECK_SPACING * (EARLY_CHECK_BURST - 1),
        }
    }
}

/// What came of asking for an early check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyCheck {
    /// The tenant is due now; the verifier checks it next.
    Granted,
    /// Not now: the budget allows the next one after this long.
    TooSoon {
        retry_after: StdDuration,
    },
    NoSuchTenant,
}

/// The budget's rule: given when the tenant's budget is whole again (`None`: it is), the
/// new such instant if `asker` may have a check now, or how long until it may.
pub fn spend_early_check(
    full_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
    asker: CheckAsker,
) -> Result<OffsetDateTime, StdDuration> {
    let full_at = full_at.map_or(now, |at| at.max(now));
    let ahead = full_at - now;
    if ahead > asker.slack() {
        Err(StdDuration::try_from(ahead - asker.slack()).unwrap_or(StdDuration::ZERO))
    } else {
        Ok(full_at + EARLY_CHECK_SPACING)
    }
}

/// How long until an operator may ask for another early check of a tenant whose budget is
/// whole again at `full_at` (`None`: now).
pub fn early_check_wait(full_at: Option<&str>, now: OffsetDateTime) -> Option<StdDuration> {
    spend_early_check(full_at.and_then(parse_ts), now, CheckAsker::Holder).err()
}

/// Takes one early check of `tenant` from its budget and, if there was one, makes the
/// tenant due now in the first-check lane (`verify_attempts = 0`), notes when it was asked
/// (`check_requested_at`) and bumps the revision, so that a check already running drops its
/// outcome and a new one follows. Runs inside the caller's transaction, which should hold
/// the write lock (its first statement a write, or `begin immediate`); if another writer
/// spent the budget in between, the answer is [`EarlyCheck::TooSoon`].
pub(super) async fn take_early_check(
    conn: &mut sqlx::AnyConnection,
    tenant: &str,
    now: OffsetDateTime,
    asker: CheckAsker,
) -> Result<EarlyCheck, StoreError> {
    // PostgreSQL locks the row (SQLite's transaction already holds the file's write lock).
    let full_at: Option<Option<String>> = sqlx::query_scalar(super::Dialect::of(conn).pick(
        "select early_checks_full_at from tenant where id = $1",
        "select early_checks_full_at from tenant where id = $1 for update",
    ))
    .bind(tenant)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(full_at) = full_at else {
        return Ok(EarlyCheck::NoSuchTenant);
    };
    let next = match spend_early_check(full_at.as_deref().and_then(parse_ts), now, asker) {
        Ok(next) => next,
        Err(retry_after) => return Ok(EarlyCheck::TooSoon { retry_after }),
    };
    let now = ts(now);
    let taken = sqlx::query(
        "update tenant set early_checks_full_at = $2, check_requested_at = $3, next_verify_at = $3, \
         verify_attempts = 0, updated_at = $3, revision = revision + 1 \
         where id = $1 and early_checks_full_at is not distinct from $4",
    )
    .bind(tenant)
    .bind(ts(next))
    .bind(&now)
    .bind(&full_at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(if taken == 1 {
        EarlyCheck::Granted
    } else {
        EarlyCheck::TooSoon {
            retry_after: StdDuration::try_from(EARLY_CHECK_SPACING)
                .unwrap_or(StdDuration::from_secs(60)),
        }
    })
}

impl Store {
    /// An operator's "verify now" or an API client's request: an early check of the tenant,
    /// if its budget allows, recorded as a `verify_requested` event saying who asked
    /// (`detail`). The status stays until the check says otherwise.
    pub async fn request_check(
        &self,
        id: TenantId,
        now: OffsetDateTime,
        detail: String,
        request_id: &str,
    ) -> Result<EarlyCheck, StoreError> {
        let _changed = self.console_change();
        // The budget is read and spent under the write lock: two instances asking at once
        // cannot both spend its last check.
        let mut tx = self
            .pool
            .begin_with(self.dialect.pick("begin immediate", "begin"))
            .await?;
        let answer = take_early_check(&mut tx, &id.to_string(), now, CheckAsker::Holder).await?;
        if answer != EarlyCheck::Granted {
            tx.rollback().await?;
            return Ok(answer);
        }
        let event = NewEvent {
            tenant_id: Some(id),
            kind: EventKind::VerifyRequested,
            detail,
            request_id: Some(request_id.to_owned()),
        };
        insert_event(&mut *tx, &event, now).await?;
        tx.commit().await?;
        Ok(EarlyCheck::Granted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

    fn secs(n: i64) -> Duration {
        Duration::seconds(n)
    }

    #[test]
    fn holders_get_a_burst_of_two_then_one_a_minute() {
        let first = spend_early_check(None, T0, CheckAsker::Holder).expect("first");
        let second = spend_early_check(Some(first), T0 + secs(1), CheckAsker::Holder)
            .expect("second, at once");
        let third = spend_early_check(Some(second), T0 + secs(2), CheckAsker::Holder);

        assert_eq!(first, T0 + secs(60));
        assert_eq!(second, T0 + secs(120));
        assert_eq!(third, Err(StdDuration::from_secs(58)));
        assert_eq!(
            spend_early_check(Some(second), T0 + secs(60), CheckAsker::Holder),
            Ok(T0 + secs(180)),
            "one more a minute later"
        );
    }

    #[test]
    fn a_callback_needs_the_whole_budget_and_leaves_a_holder_one() {
        let forged = spend_early_check(None, T0, CheckAsker::Callback).expect("first callback");
        let again = spend_early_check(Some(forged), T0 + secs(30), CheckAsker::Callback);
        let operator = spend_early_check(Some(forged), T0 + secs(30), CheckAsker::Holder);

        assert_eq!(again, Err(StdDuration::from_secs(30)));
        assert_eq!(operator, Ok(T0 + secs(120)));
        assert_eq!(
            spend_early_check(Some(T0 + secs(120)), T0 + secs(31), CheckAsker::Callback),
            Err(StdDuration::from_secs(89)),
            "and the operator's burst keeps callbacks off longer"
        );
    }

    #[test]
    fn a_budget_whole_long_ago_counts_from_now() {
        let long_ago = T0 - Duration::days(3);

        assert_eq!(
            spend_early_check(Some(long_ago), T0, CheckAsker::Callback),
            Ok(T0 + secs(60))
        );
        assert_eq!(
            early_check_wait(Some(&ts(T0 + secs(90))), T0),
            Some(StdDuration::from_secs(30))
        );
        assert_eq!(early_check_wait(Some(&ts(T0 + secs(60))), T0), None);
        assert_eq!(early_check_wait(Some("not a time"), T0), None);
    }
}

//! What happened to tenants, counted per day (migration 20261201000005): kept by triggers
//! on the tenant table, read by the console's charts without touching the event log.

use time::Date;

use super::{Store, StoreError};

/// What a daily count counts (the migration says exactly when each is counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DailyKind {
    /// A tenant confirmed for the first time.
    Consent,
    /// A revoked or gone tenant confirmed again.
    Reconsent,
    /// A tenant whose consent was revoked.
    Revocation,
    /// A tenant, verified once, with at least one failed check that day.
    FailedCheck,
}

impl DailyKind {
    pub const ALL: [DailyKind; 4] = [
        DailyKind::Consent,
        DailyKind::Reconsent,
        DailyKind::Revocation,
        DailyKind::FailedCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DailyKind::Consent => "consent",
            DailyKind::Reconsent => "reconsent",
            DailyKind::Revocation => "revocation",
            DailyKind::FailedCheck => "failed_check",
        }
    }

    fn parse(raw: &str) -> Option<DailyKind> {
        DailyKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// One kind's count on one (UTC) day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCount {
    pub kind: DailyKind,
    pub day: Date,
    pub n: i64,
}

const DAY: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl Store {
    /// Every kind's counts from the day `since` on (days with nothing have no row): a seek
    /// in the table's primary key a kind, a few hundred rows for a year.
    pub async fn daily_counts(&self, since: Date) -> Result<Vec<DailyCount>, StoreError> {
        let since = since.format(DAY).unwrap_or_default();
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "select kind, day, n from tenant_daily_count \
             where kind in ('consent', 'reconsent', 'revocation', 'failed_check') and day >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, day, n)| {
                Some(DailyCount {
                    kind: DailyKind::parse(&kind)?,
                    day: Date::parse(&day, DAY).ok()?,
                    n,
                })
            })
            .collect())
    }
}

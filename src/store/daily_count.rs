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

/// One kind's count over a period (of one or more UTC days), dated by its first day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyCount {
    pub kind: DailyKind,
    pub day: Date,
    pub n: i64,
}

const DAY: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl Store {
    /// The counts of `kinds` from the day `since` on, summed over periods of `days` days
    /// (7 for weeks starting on `since`'s weekday): one row a kind and period with anything
    /// in it, dated by the period's first day. A seek in the table's primary key a kind;
    /// the sums are SQLite's, so a year of days comes back as 52 rows a kind.
    pub async fn period_counts(
        &self,
        kinds: &[DailyKind],
        since: Date,
        days: i64,
    ) -> Result<Vec<DailyCount>, StoreError> {
        let first = since.format(DAY).unwrap_or_default();
        let days = days.max(1);
        let kinds = serde_json::to_string(&kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        // The period's number, not its date: julianday() on each row is most of the
        // statement's time, and formatting a date on each row as well doubled it (1.3 ms
        // against 2.3 ms for a year of three kinds, measured in SQLite alone).
        let days_since = self.dialect.pick(
            "cast(julianday(day) - julianday($1) as integer)",
            "(day::date - $1::date)",
        );
        let sql = format!(
            "select kind, {days_since} / $2 as period, cast(sum(n) as bigint) \
             from tenant_daily_count \
             where kind in ({}) and day >= $1 \
             group by kind, period",
            self.dialect.json_texts("$3")
        );
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(&sql)
            .bind(first)
            .bind(days)
            .bind(kinds)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, period, n)| {
                Some(DailyCount {
                    kind: DailyKind::parse(&kind)?,
                    day: since.checked_add(time::Duration::days(period.checked_mul(days)?))?,
                    n,
                })
            })
            .collect())
    }
}

//! `/admin/overview`: the console at a glance, in three charts drawn on the server
//! (`web::charts`): tenants by status, consents and revocations per week over the last 52
//! weeks, and tenants with failed checks on each of the last 14 days; each with its
//! figures in a table. A page of its own rather than atop the tenant list, which stays
//! lean (its target is 5 ms at the median with 100,000 tenants); it reads the counts the
//! triggers keep (`tenant_status_count`, `tenant_daily_count`), never the event log.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use time::{Date, Duration, Month, OffsetDateTime};

use super::Operator;
use crate::store::{DailyCount, DailyKind};
use crate::web::charts::{self, Alt, Bar, Column, Series, Svg, thousands};
use crate::web::routes::page;
use crate::web::{AppState, WebError};

/// Weeks of the consents chart, the current one included.
pub const WEEKS: usize = 52;
/// Days of the failed checks chart, today included.
pub const DAYS: usize = 14;

/// A status's row of the table beside its chart.
pub struct StatusRow {
    pub label: &'static str,
    pub class: &'static str,
    pub n: String,
    pub share: String,
}

/// A week of the consents chart, as its table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeekRow {
    /// Its Monday (UTC).
    pub start: Date,
    /// First consents and consents again, together.
    pub consents: i64,
    /// Of which consents again (after a revocation, or a tenant's return).
    pub again: i64,
    pub revocations: i64,
}

/// A day of the failed checks chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    pub day: Date,
    pub failing: i64,
}

#[derive(Template)]
#[template(path = "admin/overview.html")]
struct OverviewPage<'a> {
    operator: &'a str,
    csrf: &'a str,
    /// [`OverviewContent`], rendered.
    content: &'a str,
}

/// The charts and their tables: the same for every operator.
#[derive(Template)]
#[template(path = "admin/_overview_content.html")]
struct OverviewContent {
    statuses_chart: Svg,
    statuses: Vec<StatusRow>,
    total: String,
    weekly_chart: Svg,
    weeks: Vec<WeekRow>,
    daily_chart: Svg,
    days: Vec<DayRow>,
}

/// The Monday that starts `day`'s week.
pub fn week_start(day: Date) -> Date {
    day - Duration::days(i64::from(day.weekday().number_days_from_monday()))
}

/// The `weeks` weeks from the one starting `first`, with the consents and revocations
/// counted on their days; days outside them are left out.
pub fn weekly(counts: &[DailyCount], first: Date, weeks: usize) -> Vec<WeekRow> {
    let mut rows: Vec<WeekRow> = (0..weeks)
        .map(|w| WeekRow {
            start: first + Duration::weeks(w as i64),
            consents: 0,
            again: 0,
            revocations: 0,
        })
        .collect();
    for count in counts {
        let offset = (count.day - first).whole_days();
        if offset < 0 {
            continue;
        }
        let Some(row) = rows.get_mut((offset / 7) as usize) else {
            continue;
        };
        match count.kind {
            DailyKind::Consent => row.consents += count.n,
            DailyKind::Reconsent => {
                row.consents += count.n;
                row.again += count.n;
            }
            DailyKind::Revocation => row.revocations += count.n,
            DailyKind::FailedCheck => {}
        }
    }
    rows
}

/// The `days` days from `first`, with the tenants that had a failed check on each.
pub fn daily(counts: &[DailyCount], first: Date, days: usize) -> Vec<DayRow> {
    let mut rows: Vec<DayRow> = (0..days)
        .map(|d| DayRow {
            day: first + Duration::days(d as i64),
            failing: 0,
        })
        .collect();
    for count in counts.iter().filter(|c| c.kind == DailyKind::FailedCheck) {
        if let Some(row) = rows.iter_mut().find(|r| r.day == count.day) {
            row.failing += count.n;
        }
    }
    rows
}

fn month(m: Month) -> &'static str {
    match m {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    }
}

/// "1 consent", "3 consents".
fn counted(n: i64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

fn statuses_chart(counts: &[(crate::domain::TenantStatus, i64)]) -> (Svg, Vec<StatusRow>, i64) {
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let share = |n: i64| {
        if total == 0 {
            "0%".to_owned()
        } else {
            format!("{:.1}%", n as f64 * 100.0 / total as f64)
        }
    };
    let bars: Vec<Bar> = counts
        .iter()
        .map(|(s, n)| Bar {
            label: s.label().to_owned(),
            value: *n,
            class: format!("status-{}", s.as_str()),
            title: format!(
                "{}: {} ({})",
                s.label(),
                counted(*n, "tenant", "tenants"),
                share(*n)
            ),
        })
        .collect();
    let desc = if total == 0 {
        "No tenants yet.".to_owned()
    } else {
        format!(
            "{}: {}.",
            counted(total, "tenant", "tenants"),
            counts
                .iter()
                .map(|(s, n)| format!("{} {}", thousands(*n), s.label().to_lowercase()))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let svg = charts::horizontal_bars(
        &Alt {
            id: "chart-statuses",
            title: "Tenants by status",
            desc: &desc,
        },
        &bars,
    );
    let rows = counts
        .iter()
        .map(|(s, n)| StatusRow {
            label: s.label(),
            class: s.as_str(),
            n: thousands(*n),
            share: share(*n),
        })
        .collect();
    (svg, rows, total)
}

fn weekly_chart(weeks: &[WeekRow]) -> Svg {
    let consents: i64 = weeks.iter().map(|w| w.consents).sum();
    let again: i64 = weeks.iter().map(|w| w.again).sum();
    let revocations: i64 = weeks.iter().map(|w| w.revocations).sum();
    let (first, last) = (weeks.first(), weeks.last());
    let span = match (first, last) {
        (Some(f), Some(l)) => format!(
            "the {} weeks from the week of {} to the week of {} (weeks start on Monday, UTC)",
            weeks.len(),
            f.start,
            l.start
        ),
        _ => "no weeks".to_owned(),
    };
    let busiest = weeks
        .iter()
        .filter(|w| w.consents > 0)
        .max_by_key(|w| (w.consents, w.start))
        .map(|w| {
            format!(
                " The most consents in a week: {}, the week of {}.",
                thousands(w.consents),
                w.start
            )
        })
        .unwrap_or_default();
    let desc = format!(
        "Consents and revocations in each of {span}: {} ({} again after a revocation) and {} in all.{busiest}",
        counted(consents, "consent", "consents"),
        thousands(again),
        counted(revocations, "revocation", "revocations"),
    );
    let columns: Vec<Column> = weeks
        .iter()
        .map(|w| {
            let again = if w.again > 0 {
                format!(" ({} again)", thousands(w.again))
            } else {
                String::new()
            };
            Column {
                label: format!("{} {}", w.start.day(), month(w.start.month())),
                context: Some(w.start.year().to_string()),
                values: vec![w.consents, w.revocations],
                titles: vec![
                    format!(
                        "Week of {}: {}{again}",
                        w.start,
                        counted(w.consents, "consent", "consents")
                    ),
                    format!(
                        "Week of {}: {}",
                        w.start,
                        counted(w.revocations, "revocation", "revocations")
                    ),
                ],
            }
        })
        .collect();
    charts::columns(
        &Alt {
            id: "chart-weekly",
            title: "Consents and revocations per week",
            desc: &desc,
        },
        &[
            Series {
                name: "Consents".into(),
                class: "series-consents",
            },
            Series {
                name: "Revocations".into(),
                class: "series-revocations",
            },
        ],
        &columns,
        "No consents or revocations in these 52 weeks",
    )
}

fn daily_chart(days: &[DayRow]) -> Svg {
    let worst = days
        .iter()
        .filter(|d| d.failing > 0)
        .max_by_key(|d| (d.failing, d.day))
        .map(|d| {
            format!(
                " The most: {} on {}.",
                counted(d.failing, "tenant", "tenants"),
                d.day
            )
        })
        .unwrap_or_else(|| " None had a failed check.".to_owned());
    let today = days
        .last()
        .map(|d| format!(" Today so far: {}.", thousands(d.failing)))
        .unwrap_or_default();
    let desc = format!(
        "Tenants, verified at least once, with a failed check on each of the last {} days (UTC), each counted once a day however often its checks were retried.{worst}{today}",
        days.len()
    );
    let columns: Vec<Column> = days
        .iter()
        .map(|d| Column {
            label: d.day.day().to_string(),
            context: Some(month(d.day.month()).to_owned()),
            values: vec![d.failing],
            titles: vec![format!(
                "{}: {} with a failed check",
                d.day,
                counted(d.failing, "tenant", "tenants")
            )],
        })
        .collect();
    charts::columns(
        &Alt {
            id: "chart-failing",
            title: "Tenants with failed checks per day",
            desc: &desc,
        },
        &[Series {
            name: "Tenants with a failed check".into(),
            class: "series-failing",
        }],
        &columns,
        "No failed checks in these 14 days",
    )
}

/// `GET /admin/overview`: for every operator, viewers included.
pub async fn show(
    operator: Operator,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    // Kept like a list page (a second, forgotten at any change made here): operators
    // reloading it cost one set of statements and one drawing a second.
    let content = state
        .store
        .console_rendered("overview", || content(&state))
        .await?;
    let template = OverviewPage {
        operator: &operator.name,
        csrf: &operator.csrf,
        content: &content,
    };
    page(StatusCode::OK, template.render())
}

/// The charts as of now, drawn.
async fn content(state: &AppState) -> Result<String, WebError> {
    let today = OffsetDateTime::now_utc().date();
    let first_week = week_start(today) - Duration::weeks(WEEKS as i64 - 1);
    let first_day = today - Duration::days(DAYS as i64 - 1);
    let per_week = state
        .store
        .period_counts(
            &[
                DailyKind::Consent,
                DailyKind::Reconsent,
                DailyKind::Revocation,
            ],
            first_week,
            7,
        )
        .await?;
    let per_day = state
        .store
        .period_counts(&[DailyKind::FailedCheck], first_day, 1)
        .await?;
    let statuses = state.store.status_counts().await?;
    let (statuses_chart, statuses, total) = statuses_chart(&statuses);
    let weeks = weekly(&per_week, first_week, WEEKS);
    let days = daily(&per_day, first_day, DAYS);
    OverviewContent {
        statuses_chart,
        statuses,
        total: thousands(total),
        weekly_chart: weekly_chart(&weeks),
        weeks,
        daily_chart: daily_chart(&days),
        days,
    }
    .render()
    .map_err(|e| WebError::Internal(anyhow::Error::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn count(kind: DailyKind, day: Date, n: i64) -> DailyCount {
        DailyCount { kind, day, n }
    }

    #[test]
    fn weeks_start_on_monday() {
        assert_eq!(week_start(date!(2026 - 11 - 30)), date!(2026 - 11 - 30)); // a Monday
        assert_eq!(week_start(date!(2026 - 12 - 06)), date!(2026 - 11 - 30)); // its Sunday
        assert_eq!(week_start(date!(2026 - 01 - 01)), date!(2025 - 12 - 29)); // across a year
    }

    #[test]
    fn days_fall_into_their_week_and_days_outside_are_left_out() {
        let first = date!(2026 - 11 - 02);
        let counts = [
            count(DailyKind::Consent, date!(2026 - 11 - 02), 3),
            count(DailyKind::Consent, date!(2026 - 11 - 08), 1), // Sunday: same week
            count(DailyKind::Reconsent, date!(2026 - 11 - 09), 2),
            count(DailyKind::Revocation, date!(2026 - 11 - 15), 4),
            count(DailyKind::FailedCheck, date!(2026 - 11 - 15), 9),
            count(DailyKind::Consent, date!(2026 - 11 - 01), 50), // before
            count(DailyKind::Revocation, date!(2026 - 11 - 16), 50), // after
        ];
        let weeks = weekly(&counts, first, 2);
        assert_eq!(
            weeks,
            vec![
                WeekRow {
                    start: date!(2026 - 11 - 02),
                    consents: 4,
                    again: 0,
                    revocations: 0
                },
                WeekRow {
                    start: date!(2026 - 11 - 09),
                    consents: 2,
                    again: 2,
                    revocations: 4
                },
            ]
        );
        let days = daily(&counts, date!(2026 - 11 - 14), 2);
        assert_eq!(days[0].failing, 0);
        assert_eq!(days[1].failing, 9);
        assert!(weekly(&[], first, 0).is_empty());
    }

    #[test]
    fn the_charts_of_nothing_say_so_and_draw() {
        let first = date!(2026 - 11 - 02);
        let weeks = weekly(&[], first, WEEKS);
        let svg = weekly_chart(&weeks);
        assert!(svg.as_str().contains("No consents or revocations"));
        assert!(
            svg.as_str()
                .contains("0 consents (0 again after a revocation) and 0 revocations")
        );
        let days = daily(&[], first, DAYS);
        assert!(
            daily_chart(&days)
                .as_str()
                .contains("None had a failed check.")
        );
        let (svg, rows, total) = statuses_chart(&[]);
        assert_eq!(total, 0);
        assert!(rows.is_empty());
        assert!(svg.as_str().contains("No tenants yet."));
        assert!(!svg.as_str().contains("NaN"));
    }
}

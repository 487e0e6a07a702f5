//! Small formatting helpers for the console: relative times beside absolute ones, and CSV
//! cells that are safe to open in a spreadsheet.

use time::OffsetDateTime;

/// How long before `now` the instant `then` was, in words: "just now", "3 min ago",
/// "5 h ago", "2 days ago"; "in 4 min" for an instant still ahead.
pub fn relative(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (now - then).whole_seconds();
    let (ahead, seconds) = (seconds < 0, seconds.unsigned_abs());
    let words = if seconds < 60 {
        return if ahead {
            "in under a minute"
        } else {
            "just now"
        }
        .to_owned();
    } else if seconds < 3_600 {
        format!("{} min", seconds / 60)
    } else if seconds < 86_400 {
        format!("{} h", seconds / 3_600)
    } else if seconds < 2 * 86_400 {
        "1 day".to_owned()
    } else if seconds < 60 * 86_400 {
        format!("{} days", seconds / 86_400)
    } else if seconds < 730 * 86_400 {
        format!("{} months", seconds / (30 * 86_400))
    } else {
        format!("{} years", seconds / (365 * 86_400))
    };
    if ahead {
        format!("in {words}")
    } else {
        format!("{words} ago")
    }
}

/// [`relative`] for a stored timestamp (`store::ts`); empty when it does not parse.
pub fn relative_ts(stored: &str, now: OffsetDateTime) -> String {
    crate::store::parse_ts(stored)
        .map(|then| relative(then, now))
        .unwrap_or_default()
}

/// An instant as the console shows it: how long ago (or how soon) in words, with the date
/// and time beside it, as HTML: `<time datetime="…" title="…">3 min ago</time> <span
/// class="small">2026-12-01 11:57:00 UTC</span>`. Built from a parsed instant, or from
/// escaped text, so askama puts it in a page as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp(String);

impl Stamp {
    pub fn new(then: OffsetDateTime, now: OffsetDateTime) -> Stamp {
        let utc = then.to_offset(time::UtcOffset::UTC);
        let absolute = absolute(utc);
        Stamp(format!(
            r#"<time datetime="{}" title="{absolute}">{}</time> <span class="small">{absolute}</span>"#,
            crate::store::ts(utc),
            relative(utc, now),
        ))
    }

    /// A stored timestamp (`store::ts`); one that does not parse is shown as it is.
    pub fn of(stored: &str, now: OffsetDateTime) -> Stamp {
        match crate::store::parse_ts(stored) {
            Some(then) => Stamp::new(then, now),
            None => Stamp(
                askama::filters::escape(stored, askama::filters::Html)
                    .map(|e| e.to_string())
                    .unwrap_or_default(),
            ),
        }
    }
}

impl std::fmt::Display for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Built from a parsed instant or escaped text only (see [`Stamp::of`]).
impl askama::filters::HtmlSafe for Stamp {}

/// `2026-12-01 11:57:00 UTC`
pub fn absolute(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// A stored timestamp in words and figures, as plain text: `3 min ago (2026-12-01 11:57:00
/// UTC)`; as it is when it does not parse.
pub fn relative_and_absolute(stored: &str, now: OffsetDateTime) -> String {
    match crate::store::parse_ts(stored) {
        Some(then) => format!("{} ({})", relative(then, now), absolute(then)),
        None => stored.to_owned(),
    }
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break, quotes
/// doubled. A cell a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return) gets a leading apostrophe first: organisation names come
/// from Graph, but claims and details come from strangers.
pub fn csv_cell(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// A CSV record: the cells, comma-separated, ending with CRLF.
pub fn csv_row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;
    use time::macros::datetime;

    #[test]
    fn relative_times_read_like_people_say_them() {
        let now = datetime!(2026-12-01 12:00:00 UTC);
        let ago = |d: Duration| relative(now - d, now);
        assert_eq!(ago(Duration::seconds(0)), "just now");
        assert_eq!(ago(Duration::seconds(59)), "just now");
        assert_eq!(ago(Duration::seconds(60)), "1 min ago");
        assert_eq!(
            ago(Duration::minutes(3) + Duration::seconds(20)),
            "3 min ago"
        );
        assert_eq!(ago(Duration::minutes(59)), "59 min ago");
        assert_eq!(ago(Duration::hours(5)), "5 h ago");
        assert_eq!(ago(Duration::hours(30)), "1 day ago");
        assert_eq!(ago(Duration::days(12)), "12 days ago");
        assert_eq!(ago(Duration::days(200)), "6 months ago");
        assert_eq!(ago(Duration::days(800)), "2 years ago");
        assert_eq!(ago(Duration::minutes(-4)), "in 4 min");
        assert_eq!(ago(Duration::seconds(-5)), "in under a minute");
        assert_eq!(relative_ts("2026-12-01T11:57:00.000Z", now), "3 min ago");
        assert_eq!(relative_ts("yesterday", now), "");
    }

    #[test]
    fn stamps_show_the_time_in_words_beside_the_time_itself() {
        let now = datetime!(2026-12-01 12:00:00 UTC);
        assert_eq!(
            Stamp::of("2026-12-01T11:57:00.000Z", now).to_string(),
            r#"<time datetime="2026-12-01T11:57:00.000Z" title="2026-12-01 11:57:00 UTC">3 min ago</time> <span class="small">2026-12-01 11:57:00 UTC</span>"#
        );
        assert!(
            Stamp::of("2026-12-01T12:04:00.000Z", now)
                .to_string()
                .contains(">in 4 min</time>")
        );
        assert_eq!(
            Stamp::of("<b>soon</b>", now).to_string(),
            "&#60;b&#62;soon&#60;/b&#62;"
        );
        assert_eq!(
            relative_and_absolute("2026-12-01T10:00:00.000Z", now),
            "2 h ago (2026-12-01 10:00:00 UTC)"
        );
        assert_eq!(relative_and_absolute("never", now), "never");
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("Contoso"), "Contoso");
        assert_eq!(csv_cell("Contoso, Ltd"), "\"Contoso, Ltd\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_row(&["a", "b,c", "=1"]), "a,\"b,c\",'=1\r\n");
    }
}

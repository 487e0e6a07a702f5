//! Small formatting helpers for the console: relative times beside absolute ones, ids that
//! wrap at their separators, and CSV cells that are safe to open in a spreadsheet.

use std::fmt;

use time::OffsetDateTime;

/// How long before `now` the instant `then` was, in words: "just now", "3 min ago",
/// "5 h ago", "2 days ago"; "in 4 min" for an instant still ahead.
pub fn relative(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let seconds = (now - then).whole_seconds();
    let (ahead, seconds) = (seconds < 0, seconds.unsigned_abs());
    // Rounded to the nearest unit, not down: an invitation made a moment ago for 7 days
    // expires "in 7 days", not "in 6 days".
    let round = |unit: u64, most: u64| ((seconds + unit / 2) / unit).min(most);
    let words = if seconds < 60 {
        return if ahead {
            "in under a minute"
        } else {
            "just now"
        }
        .to_owned();
    } else if seconds < 3_600 {
        format!("{} min", round(60, 59))
    } else if seconds < 86_400 {
        format!("{} h", round(3_600, 23))
    } else if seconds < 36 * 3_600 {
        "1 day".to_owned()
    } else if seconds < 60 * 86_400 {
        format!("{} days", round(86_400, 59))
    } else if seconds < 730 * 86_400 {
        format!("{} months", round(30 * 86_400, 24))
    } else {
        format!("{} years", round(365 * 86_400, u64::MAX))
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

/// [`relative_ts`] to the second under a minute ("3 s ago"): for a check just made.
pub fn seconds_ago_ts(stored: &str, now: OffsetDateTime) -> String {
    match crate::store::parse_ts(stored) {
        Some(then) if (0..60).contains(&(now - then).whole_seconds()) => {
            format!("{} s ago", (now - then).whole_seconds())
        }
        Some(then) => relative(then, now),
        None => String::new(),
    }
}

/// Text that may wrap after its separators: HTML-escaped, with `<wbr>` after each `-`, `.`,
/// `_`, `/`, `:` and `@`, so that a tenant id wraps between its groups and a permission
/// between its words (`User.<wbr>Read.<wbr>All`), never in the middle of one; copied, it is
/// the value unchanged. In a template: `{{ wbr(t.id) }}` (the type is marked HTML-safe
/// because it escapes what it writes).
pub struct Breakable<S>(pub S);

/// [`Breakable`] of `text`.
pub fn wbr<S: AsRef<str>>(text: S) -> Breakable<S> {
    Breakable(text)
}

impl<S: AsRef<str>> fmt::Display for Breakable<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.as_ref().chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&#34;")?,
                '\'' => f.write_str("&#39;")?,
                '-' | '.' | '_' | '/' | ':' | '@' => write!(f, "{c}<wbr>")?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

impl<S: AsRef<str>> askama::filters::HtmlSafe for Breakable<S> {}

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
        assert_eq!(ago(Duration::days(200)), "7 months ago", "6.7 months");
        assert_eq!(
            ago(Duration::seconds(5) - Duration::days(7)),
            "in 7 days",
            "an invitation made a moment ago, for 7 days"
        );
        assert_eq!(ago(Duration::minutes(90)), "2 h ago");
        assert_eq!(ago(Duration::days(800)), "2 years ago");
        assert_eq!(ago(Duration::minutes(-4)), "in 4 min");
        assert_eq!(ago(Duration::seconds(-5)), "in under a minute");
        assert_eq!(relative_ts("2026-12-01T11:57:00.000Z", now), "3 min ago");
        assert_eq!(relative_ts("yesterday", now), "");
    }

    #[test]
    fn a_check_just_made_is_timed_to_the_second() {
        let now = datetime!(2026-12-01 12:00:00 UTC);

        assert_eq!(seconds_ago_ts("2026-12-01T11:59:57.400Z", now), "2 s ago");
        assert_eq!(seconds_ago_ts("2026-12-01T12:00:00.000Z", now), "0 s ago");
        assert_eq!(seconds_ago_ts("2026-12-01T11:57:00.000Z", now), "3 min ago");
        assert_eq!(seconds_ago_ts("soon", now), "");
    }

    #[test]
    fn ids_and_permissions_wrap_at_their_separators_and_stay_escaped() {
        assert_eq!(
            wbr("3f2c8a71-5d94-4e0b").to_string(),
            "3f2c8a71-<wbr>5d94-<wbr>4e0b"
        );
        assert_eq!(wbr("User.Read.All").to_string(), "User.<wbr>Read.<wbr>All");
        assert_eq!(
            wbr(String::from("<b a=\"1\">&'")).to_string(),
            "&lt;b a=&#34;1&#34;&gt;&amp;&#39;"
        );
        assert_eq!(wbr("").to_string(), "");
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

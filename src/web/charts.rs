//! Charts for the operator console, drawn on the server as inline SVG.
//!
//! No script and no `style` attribute (the CSP allows neither): shapes carry their
//! geometry as presentation attributes and their colours as classes (`consentry.css`,
//! the "Charts" block). Every chart is an image with a text alternative (`role="img"`, an
//! `aria-label`, a `<title>` and a `<desc>` stating the figures in words), every bar has a
//! `<title>` with its exact value (a tooltip on hover), and the page puts the same figures
//! in a table beside it.

use std::fmt::{self, Write};

/// SVG markup built here, every text in it escaped: put in a page as it is.
#[derive(Debug, Clone)]
pub struct Svg(String);

impl Svg {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Svg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Built from escaped text only (see [`escape`]): askama need not escape it again.
impl askama::filters::HtmlSafe for Svg {}

/// What a chart says to someone who cannot see it.
#[derive(Debug, Clone, Copy)]
pub struct Alt<'a> {
    /// Unique in the page: the `<title>` and `<desc>` ids derive from it.
    pub id: &'a str,
    /// A few words: the chart's name.
    pub title: &'a str,
    /// The figures in a sentence or two.
    pub desc: &'a str,
}

/// Text for SVG (XML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole number with thousands separators: `100000` → `100,000`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A coordinate: one decimal at most, never `NaN` or infinite (0 instead: a bar of
/// nothing rather than a page the browser cannot draw).
fn px(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_owned();
    }
    let rounded = (v * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

/// A linear scale from 0 to `top`, with gridlines every `step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    pub top: i64,
    pub step: i64,
}

/// Gridlines above 0 at most.
const MAX_STEPS: i64 = 5;

impl Scale {
    /// A scale for values up to `max` whose gridlines fall on round numbers: steps of 1, 2
    /// or 5 times a power of ten, at most [`MAX_STEPS`] of them, the top the first at or
    /// above `max`. Nothing to show (`max` ≤ 0) still gets an axis from 0 to 1, so no
    /// length is ever divided by zero.
    pub fn nice(max: i64) -> Scale {
        if max <= 0 {
            return Scale { top: 1, step: 1 };
        }
        let mut power: i64 = 1;
        loop {
            for factor in [1, 2, 5] {
                let step = factor * power;
                let steps = max / step + i64::from(max % step != 0);
                if steps <= MAX_STEPS {
                    return Scale {
                        top: steps * step,
                        step,
                    };
                }
            }
            power = power.saturating_mul(10);
        }
    }

    /// A scale whose top is `max` itself (bars side by side with their values written
    /// beside them need no gridlines); 1 when there is nothing.
    pub fn exact(max: i64) -> Scale {
        let top = max.max(1);
        Scale { top, step: top }
    }

    /// The gridlines' values: 0, `step`, …, `top`.
    pub fn ticks(&self) -> Vec<i64> {
        let step = self.step.max(1);
        (0..=self.top / step).map(|i| i * step).collect()
    }

    /// How much of `length` pixels `value` takes: 0 for nothing, at least one pixel for
    /// anything (a 1 beside 10,000 still shows), never more than `length`.
    pub fn length(&self, value: i64, length: f64) -> f64 {
        if value <= 0 {
            return 0.0;
        }
        let share = value as f64 / self.top.max(1) as f64;
        (share * length).clamp(1.0_f64.min(length), length)
    }
}

/// Font size of the charts' text, in SVG units.
const FONT: f64 = 12.0;
/// The width of a character, as a share of the font size: an estimate for a sans-serif
/// font's digits and lower-case letters, used to keep labels from overlapping.
const CHAR_WIDTH: f64 = 0.6;

fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * FONT * CHAR_WIDTH
}

fn open(out: &mut String, alt: &Alt<'_>, width: f64, height: f64) {
    let id = escape(alt.id);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-size="{FONT}" role="img" aria-label="{title}" aria-describedby="{id}-desc"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#,
        w = px(width),
        h = px(height),
        title = escape(alt.title),
        desc = escape(alt.desc),
    );
}

/// A bar of a horizontal bar chart.
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: i64,
    /// Its colour: a class of the stylesheet (`status-active`).
    pub class: String,
    /// Its tooltip: the exact value in words.
    pub title: String,
}

/// The horizontal bar chart's width.
pub const BARS_WIDTH: f64 = 640.0;
const BAR_LABELS: f64 = 170.0;
const BAR_VALUES: f64 = 70.0;
const BAR_ROW: f64 = 28.0;
const BAR_HEIGHT: f64 = 18.0;
const BAR_PAD: f64 = 6.0;

/// One row a bar: its label on the left, the bar, its value after it. Bars of nothing
/// are not drawn, but keep their row, label and "0".
pub fn horizontal_bars(alt: &Alt<'_>, bars: &[Bar]) -> Svg {
    let height = BAR_PAD * 2.0 + BAR_ROW * bars.len().max(1) as f64;
    let mut out = String::new();
    open(&mut out, alt, BARS_WIDTH, height);
    let scale = Scale::exact(bars.iter().map(|b| b.value).max().unwrap_or(0));
    let room = BARS_WIDTH - BAR_LABELS - BAR_VALUES;
    for (i, bar) in bars.iter().enumerate() {
        let top = BAR_PAD + BAR_ROW * i as f64;
        let middle = top + BAR_ROW / 2.0;
        let length = scale.length(bar.value, room);
        let _ = write!(
            out,
            r#"<g class="chart-row"><text x="{lx}" y="{ty}" text-anchor="end" dominant-baseline="central" class="chart-label">{label}</text>"#,
            lx = px(BAR_LABELS - 10.0),
            ty = px(middle),
            label = escape(&bar.label),
        );
        if length > 0.0 {
            let _ = write!(
                out,
                r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" class="chart-bar {class}"><title>{title}</title></rect>"#,
                x = px(BAR_LABELS),
                y = px(middle - BAR_HEIGHT / 2.0),
                w = px(length),
                h = px(BAR_HEIGHT),
                class = escape(&bar.class),
                title = escape(&bar.title),
            );
        }
        let _ = write!(
            out,
            r#"<text x="{vx}" y="{ty}" dominant-baseline="central" class="chart-value">{value}</text></g>"#,
            vx = px(BAR_LABELS + length + 6.0),
            ty = px(middle),
            value = thousands(bar.value),
        );
    }
    out.push_str("</svg>");
    Svg(out)
}

/// A series of a column chart: its name (in the legend) and colour.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub class: &'static str,
}

/// A column of a column chart (a week, a day): one bar a series.
#[derive(Debug, Clone)]
pub struct Column {
    /// Under the column, where there is room: "2 Mar".
    pub label: String,
    /// A line under the label, shown where it changes from the last one shown: the year.
    pub context: Option<String>,
    /// One a series, in the order of the series.
    pub values: Vec<i64>,
    /// Each bar's tooltip, in the same order.
    pub titles: Vec<String>,
}

/// The column chart's size and margins.
pub const COLUMNS_WIDTH: f64 = 720.0;
const COLUMNS_HEIGHT: f64 = 250.0;
const PLOT_LEFT: f64 = 52.0;
const PLOT_RIGHT: f64 = 28.0;
const PLOT_TOP: f64 = 34.0;
const PLOT_BOTTOM: f64 = 46.0;

/// Space between two labels under the axis, in SVG units.
const LABEL_GAP: f64 = 8.0;

/// Where the columns' labels go: every `k`-th column, counted back from the last (the
/// latest week or day always has its label), `k` the least that keeps labels of
/// `widest` from overlapping when columns are `column_width` apart.
pub fn labelled_columns(count: usize, column_width: f64, widest: f64) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let every = if column_width > 0.0 {
        ((widest + LABEL_GAP) / column_width).ceil().max(1.0) as usize
    } else {
        count
    };
    let mut shown: Vec<usize> = (0..count).rev().step_by(every).collect();
    shown.reverse();
    shown
}

/// Columns of bars, one bar a series, over a value axis with round gridlines, each column
/// named under it where there is room, a legend above. When every value is 0 the axes stay
/// and `empty` is written across them.
pub fn columns(alt: &Alt<'_>, series: &[Series], columns: &[Column], empty: &str) -> Svg {
    let (width, height) = (COLUMNS_WIDTH, COLUMNS_HEIGHT);
    let plot_width = width - PLOT_LEFT - PLOT_RIGHT;
    let plot_height = height - PLOT_TOP - PLOT_BOTTOM;
    let bottom = PLOT_TOP + plot_height;
    let mut out = String::new();
    open(&mut out, alt, width, height);

    // The legend, above the plot.
    let mut x = PLOT_LEFT;
    for s in series {
        let _ = write!(
            out,
            r#"<rect x="{x}" y="8" width="12" height="12" class="chart-bar {class}"/><text x="{tx}" y="14" dominant-baseline="central" class="chart-legend">{name}</text>"#,
            x = px(x),
            tx = px(x + 17.0),
            class = s.class,
            name = escape(&s.name),
        );
        x += 17.0 + text_width(&s.name) + 20.0;
    }

    let max = columns
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .max()
        .unwrap_or(0);
    let scale = Scale::nice(max);
    for tick in scale.ticks() {
        let y = bottom - scale.length(tick, plot_height);
        let class = if tick == 0 {
            "chart-axis"
        } else {
            "chart-grid"
        };
        let _ = write!(
            out,
            r#"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" class="{class}"/><text x="{tx}" y="{y}" text-anchor="end" dominant-baseline="central" class="chart-tick">{label}</text>"#,
            x1 = px(PLOT_LEFT),
            x2 = px(PLOT_LEFT + plot_width),
            y = px(y),
            tx = px(PLOT_LEFT - 6.0),
            label = thousands(tick),
        );
    }

    let column_width = plot_width / columns.len().max(1) as f64;
    let per_series = series.len().max(1) as f64;
    let bar_width = column_width * 0.8 / per_series;
    for (i, column) in columns.iter().enumerate() {
        let left = PLOT_LEFT + column_width * i as f64 + column_width * 0.1;
        for (j, value) in column.values.iter().enumerate().take(series.len()) {
            let length = scale.length(*value, plot_height);
            if length <= 0.0 {
                continue;
            }
            let title = column.titles.get(j).map(String::as_str).unwrap_or("");
            let _ = write!(
                out,
                r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" class="chart-bar {class}"><title>{title}</title></rect>"#,
                x = px(left + bar_width * j as f64),
                y = px(bottom - length),
                w = px(bar_width),
                h = px(length),
                class = series[j].class,
                title = escape(title),
            );
        }
    }

    let widest = columns
        .iter()
        .map(|c| text_width(&c.label))
        .fold(0.0, f64::max);
    let mut context_shown: Option<&str> = None;
    for i in labelled_columns(columns.len(), column_width, widest) {
        let column = &columns[i];
        let x = PLOT_LEFT + column_width * (i as f64 + 0.5);
        let _ = write!(
            out,
            r#"<text x="{x}" y="{y}" text-anchor="middle" class="chart-tick">{label}</text>"#,
            x = px(x),
            y = px(bottom + 18.0),
            label = escape(&column.label),
        );
        if let Some(context) = column.context.as_deref()
            && context_shown != Some(context)
        {
            let _ = write!(
                out,
                r#"<text x="{x}" y="{y}" text-anchor="middle" class="chart-tick chart-context">{context}</text>"#,
                x = px(x),
                y = px(bottom + 34.0),
                context = escape(context),
            );
            context_shown = Some(context);
        }
    }

    if max <= 0 {
        let _ = write!(
            out,
            r#"<text x="{x}" y="{y}" text-anchor="middle" dominant-baseline="central" class="chart-empty">{empty}</text>"#,
            x = px(PLOT_LEFT + plot_width / 2.0),
            y = px(PLOT_TOP + plot_height / 2.0),
            empty = escape(empty),
        );
    }
    out.push_str("</svg>");
    Svg(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALT: Alt<'static> = Alt {
        id: "test",
        title: "Test chart",
        desc: "Figures in words.",
    };

    /// Every number-valued attribute of `svg` named `name`.
    fn attribute(svg: &str, name: &str) -> Vec<f64> {
        svg.split(&format!(" {name}=\""))
            .skip(1)
            .map(|rest| {
                let value = &rest[..rest.find('"').expect("closing quote")];
                value
                    .parse::<f64>()
                    .unwrap_or_else(|_| panic!("{name}=\"{value}\" is not a number"))
            })
            .collect()
    }

    /// Asserts that every coordinate of `svg` is a finite number inside its viewBox.
    fn assert_drawable(svg: &str, width: f64, height: f64) {
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        for name in ["x", "x1", "x2", "width"] {
            for v in attribute(svg, name) {
                assert!((0.0..=width).contains(&v), "{name}={v} in {svg}");
            }
        }
        for name in ["y", "y1", "y2", "height"] {
            for v in attribute(svg, name) {
                assert!((0.0..=height).contains(&v), "{name}={v} in {svg}");
            }
        }
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.ends_with("</svg>"));
        for element in ["text", "title", "g"] {
            assert_eq!(
                svg.matches(&format!("<{element}>")).count()
                    + svg.matches(&format!("<{element} ")).count(),
                svg.matches(&format!("</{element}>")).count(),
                "every {element} closed: {svg}"
            );
        }
    }

    fn week(label: &str, year: &str, values: &[i64]) -> Column {
        Column {
            label: label.to_owned(),
            context: Some(year.to_owned()),
            values: values.to_vec(),
            titles: values.iter().map(|v| format!("{label}: {v}")).collect(),
        }
    }

    fn two_series() -> Vec<Series> {
        vec![
            Series {
                name: "Consents".into(),
                class: "series-consents",
            },
            Series {
                name: "Revocations".into(),
                class: "series-revocations",
            },
        ]
    }

    #[test]
    fn nice_scales_end_on_a_round_step_at_or_above_the_largest_value() {
        for (max, top, step) in [
            (0, 1, 1),
            (-3, 1, 1),
            (1, 1, 1),
            (4, 4, 1),
            (5, 5, 1),
            (6, 6, 2),
            (7, 8, 2),
            (12, 15, 5),
            (100, 100, 20),
            (101, 150, 50),
            (99_999, 100_000, 20_000),
        ] {
            assert_eq!(Scale::nice(max), Scale { top, step }, "max {max}");
        }
        for max in [1, 3, 9, 17, 250, 1_234, 52_000, i64::MAX / 100] {
            let scale = Scale::nice(max);
            let ticks = scale.ticks();
            assert!(scale.top >= max, "{max}: {scale:?}");
            assert_eq!(ticks.first(), Some(&0));
            assert_eq!(ticks.last(), Some(&scale.top));
            assert!(ticks.len() as i64 <= MAX_STEPS + 1, "{max}: {ticks:?}");
            let mantissa = scale.step / 10_i64.pow(scale.step.ilog10());
            assert!([1, 2, 5].contains(&mantissa), "{max}: {scale:?}");
        }
    }

    #[test]
    fn lengths_are_proportional_visible_when_positive_and_never_beyond_the_axis() {
        let scale = Scale::nice(100);
        assert_eq!(scale.length(0, 200.0), 0.0);
        assert_eq!(scale.length(-5, 200.0), 0.0);
        assert_eq!(scale.length(50, 200.0), 100.0);
        assert_eq!(scale.length(100, 200.0), 200.0);
        assert_eq!(scale.length(1_000, 200.0), 200.0, "clamped");
        let wide = Scale::nice(10_000);
        assert_eq!(wide.length(1, 200.0), 1.0, "one pixel at least");
        assert_eq!(Scale::exact(0).length(0, 200.0), 0.0);
        assert_eq!(Scale::exact(7).length(7, 200.0), 200.0);
        assert_eq!(Scale::nice(0).length(0, 0.0), 0.0, "no room, no NaN");
    }

    #[test]
    fn numbers_read_with_thousands_separators_and_coordinates_stay_finite() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(px(12.0), "12");
        assert_eq!(px(12.345), "12.3");
        assert_eq!(px(f64::NAN), "0");
        assert_eq!(px(f64::INFINITY), "0");
    }

    #[test]
    fn labels_under_columns_never_overlap_and_the_latest_column_is_labelled() {
        let plot = COLUMNS_WIDTH - PLOT_LEFT - PLOT_RIGHT;
        for (count, label) in [(52, "30 Nov"), (14, "30 Nov"), (7, "2026-11-30"), (1, "x")] {
            let width = plot / count as f64;
            let shown = labelled_columns(count, width, text_width(label));
            assert_eq!(shown.last(), Some(&(count - 1)), "{count}");
            for pair in shown.windows(2) {
                let apart = (pair[1] - pair[0]) as f64 * width;
                assert!(apart >= text_width(label) + LABEL_GAP, "{count}: {pair:?}");
            }
            // Inside the chart: the first label does not start left of it, the last does
            // not end right of it.
            let centre = |i: usize| PLOT_LEFT + width * (i as f64 + 0.5);
            let half = text_width(label) / 2.0;
            assert!(centre(shown[0]) - half >= 0.0, "{count}");
            assert!(centre(count - 1) + half <= COLUMNS_WIDTH, "{count}");
        }
        // Fourteen days, named by their day of the month (the month is the context line):
        // room for every one.
        assert_eq!(
            labelled_columns(14, plot / 14.0, text_width("30")).len(),
            14
        );
        assert!(labelled_columns(0, 10.0, 40.0).is_empty());
    }

    #[test]
    fn a_column_chart_draws_a_bar_with_its_exact_value_for_each_nonzero_value() {
        let weeks = vec![
            week("24 Nov", "2025", &[3, 0]),
            week("1 Dec", "2025", &[0, 0]),
            week("8 Dec", "2025", &[12, 2]),
            week("5 Jan", "2026", &[1, 1]),
        ];
        let svg = columns(&ALT, &two_series(), &weeks, "Nothing yet");
        let svg = svg.as_str();
        assert_drawable(svg, COLUMNS_WIDTH, COLUMNS_HEIGHT);
        // Five non-zero values, five bars (and two legend swatches).
        assert_eq!(svg.matches("<rect").count(), 5 + 2);
        assert!(svg.contains("<title>8 Dec: 12</title>"));
        assert!(svg.contains("<title>5 Jan: 1</title>"));
        assert!(!svg.contains("Nothing yet"));
        // Gridlines 0 to 15 in fives, and the tallest bar reaches 12/15 of the plot.
        for tick in [">0<", ">5<", ">10<", ">15<"] {
            assert!(svg.contains(tick), "{tick}");
        }
        let plot = COLUMNS_HEIGHT - PLOT_TOP - PLOT_BOTTOM;
        assert!(svg.contains(&format!(r#"height="{}""#, px(plot * 12.0 / 15.0))));
        // The year under the first label and where it changes, not under every label.
        assert_eq!(svg.matches(">2025<").count(), 1);
        assert_eq!(svg.matches(">2026<").count(), 1);
        // The text alternative.
        assert!(svg.contains(r#"role="img" aria-label="Test chart""#));
        assert!(svg.contains(r#"<title id="test-title">Test chart</title>"#));
        assert!(svg.contains(r#"<desc id="test-desc">Figures in words.</desc>"#));
    }

    #[test]
    fn an_empty_column_chart_keeps_its_axes_and_says_so() {
        let zeros: Vec<Column> = (0..52).map(|_| week("1 Dec", "2025", &[0, 0])).collect();
        for data in [zeros, Vec::new()] {
            let svg = columns(&ALT, &two_series(), &data, "No consents yet");
            let svg = svg.as_str();
            assert_drawable(svg, COLUMNS_WIDTH, COLUMNS_HEIGHT);
            assert!(svg.contains(">No consents yet<"), "{svg}");
            assert_eq!(svg.matches("<rect").count(), 2, "the legend only");
            assert!(svg.contains(r#"class="chart-axis""#));
        }
    }

    #[test]
    fn horizontal_bars_scale_to_the_largest_and_keep_a_row_for_nothing() {
        let bars = vec![
            Bar {
                label: "Active".into(),
                value: 66_667,
                class: "status-active".into(),
                title: "Active: 66,667 tenants".into(),
            },
            Bar {
                label: "Failing".into(),
                value: 0,
                class: "status-failing".into(),
                title: "Failing: 0 tenants".into(),
            },
            Bar {
                label: "Revoked".into(),
                value: 1,
                class: "status-revoked".into(),
                title: "Revoked: 1 tenant".into(),
            },
        ];
        let svg = horizontal_bars(&ALT, &bars);
        let svg = svg.as_str();
        assert_drawable(svg, BARS_WIDTH, 200.0);
        assert_eq!(svg.matches("<rect").count(), 2, "no bar for nothing");
        let widths = attribute(svg, "width");
        assert!(
            widths.contains(&(BARS_WIDTH - BAR_LABELS - BAR_VALUES)),
            "full"
        );
        assert!(widths.contains(&1.0), "one pixel for 1 beside 66,667");
        assert!(svg.contains(">66,667<") && svg.contains(">0<") && svg.contains(">1<"));
        assert!(svg.contains("<title>Active: 66,667 tenants</title>"));
        assert!(svg.contains(r#"class="chart-bar status-active""#));

        let empty = horizontal_bars(&ALT, &[]);
        assert_drawable(empty.as_str(), BARS_WIDTH, 200.0);
        let nothing = vec![Bar {
            value: 0,
            ..bars[0].clone()
        }];
        let svg = horizontal_bars(&ALT, &nothing);
        assert_drawable(svg.as_str(), BARS_WIDTH, 200.0);
        assert!(!svg.as_str().contains("<rect"));
    }

    #[test]
    fn every_text_is_escaped() {
        let hostile = Alt {
            id: "x\"y",
            title: "<script>alert(1)</script>",
            desc: "a & b",
        };
        let bars = vec![Bar {
            label: "<b>".into(),
            value: 1,
            class: "status-x\" onclick=\"y".into(),
            title: "</title><script>".into(),
        }];
        let svg = horizontal_bars(&hostile, &bars);
        let svg = svg.as_str();
        assert!(!svg.contains("<script") && !svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("\" onclick"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.contains("a &amp; b"));
        let column = Column {
            label: "<i>".into(),
            context: Some("<u>".into()),
            values: vec![1],
            titles: vec!["<em>".into()],
        };
        let series = vec![Series {
            name: "<s>".into(),
            class: "series-consents",
        }];
        let svg = columns(&hostile, &series, &[column], "<p>");
        for tag in ["<i>", "<u>", "<em>", "<s>", "<p>"] {
            assert!(!svg.as_str().contains(tag), "{tag}");
        }
    }
}

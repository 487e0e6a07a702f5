//! The tenant list (counts per status, filters, search, sorting, keyset paging, CSV
//! export) and a tenant's page with its event timeline and a "verify now" action.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::StreamExt;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use crate::domain::{TenantId, TenantStatus};
use crate::store::{
    ATTENTION, AuditAction, ConsoleCursor, ConsoleQuery, ConsoleSort, ConsoleView, EarlyCheck,
    EventRow, Outcome, PageDirection, RenderedView, StatusFilter, TenantRow, early_check_wait,
};
use crate::web::format::{Stamp, csv_row, relative_ts, seconds_ago_ts};
use crate::web::routes::{page, request_id};
use crate::web::{AppState, WebError};

/// A tenant as the dashboard shows it.
pub struct TenantView {
    pub id: String,
    pub name: String,
    pub status: TenantStatus,
    pub consented_at: Stamp,
    pub granted: Vec<String>,
    pub missing: Vec<String>,
    pub domains: Vec<String>,
    pub last_token: String,
    pub last_ok: Option<Stamp>,
    pub last_error: Option<String>,
    pub last_failure: Option<Stamp>,
    pub consecutive_failures: i64,
    pub next_verify_at: Option<Stamp>,
}

fn view(t: &TenantRow, required: &[String], now: OffsetDateTime) -> TenantView {
    let granted = t.granted_roles();
    let missing = t.missing_permissions(required);
    let status = t.status().unwrap_or(TenantStatus::Failed);
    let last_token = match (&t.last_error_code, &t.last_token_ok_at) {
        (Some(code), _) => format!("failed: {code}"),
        (None, Some(at)) => format!("ok at {}", short(at)),
        (None, None) => "none yet".to_owned(),
    };
    TenantView {
        id: t.id.clone(),
        name: t.name().unwrap_or("(not verified)").to_owned(),
        status,
        consented_at: Stamp::of(&t.consented_at, now),
        granted,
        missing,
        domains: t.verified_domains(),
        last_token,
        last_ok: t.last_token_ok_at.as_deref().map(|at| Stamp::of(at, now)),
        last_error: t.last_error.clone(),
        last_failure: t.last_failure_at.as_deref().map(|at| Stamp::of(at, now)),
        consecutive_failures: t.consecutive_failures,
        next_verify_at: t.next_verify_at.as_deref().map(|at| Stamp::of(at, now)),
    }
}

/// `2026-11-21T05:02:03.123Z` → `2026-11-21 05:02:03 UTC`
pub(super) fn short(ts: &str) -> String {
    match ts.get(..19) {
        Some(head) => format!("{} UTC", head.replace('T', " ")),
        None => ts.to_owned(),
    }
}

pub struct EventView {
    pub at: Stamp,
    pub kind: String,
    pub detail: String,
    pub request_id: Option<String>,
    /// For a failure repeated check after check: "3 times, until …".
    pub repeats: Option<String>,
}

fn event_view(e: &EventRow, now: OffsetDateTime) -> EventView {
    EventView {
        repeats: e
            .last_at
            .as_deref()
            .filter(|_| e.repeat_count > 1)
            .map(|last| {
                format!(
                    "{} times, the last at {} ({})",
                    e.repeat_count,
                    short(last),
                    relative_ts(last, now)
                )
            }),
        at: Stamp::of(&e.created_at, now),
        kind: e.kind.replace('_', " "),
        detail: e.detail.clone(),
        request_id: e.request_id.clone(),
    }
}

/// Warn this long before the app's certificate expires.
const CREDENTIAL_WARNING_DAYS: i64 = 30;

/// The app's credential in words, and whether it needs attention soon.
fn credential_line(state: &AppState) -> (String, bool) {
    let summary = state.entra.credential_summary();
    match summary.expires_at {
        None => (
            format!(
                "{} (Microsoft does not tell its holder when it expires: keep a note)",
                summary.kind
            ),
            false,
        ),
        Some(at) => {
            let days = (at - OffsetDateTime::now_utc()).whole_days();
            let when = short(&crate::store::ts(at));
            if days < 0 {
                (
                    format!(
                        "{} expired on {when}: renew it in the app registration now",
                        summary.kind
                    ),
                    true,
                )
            } else {
                (
                    format!("{} expires {when} (in {days} days)", summary.kind),
                    days <= CREDENTIAL_WARNING_DAYS,
                )
            }
        }
    }
}

/// Tenants a list page shows.
const PAGE_SIZE: i64 = 50;
/// Events in "Recent activity".
const RECENT: i64 = 20;
/// Tenants a CSV export reads at a time.
const EXPORT_BATCH: i64 = 500;

/// A row of the list.
pub struct ListRow {
    pub id: String,
    pub name: String,
    /// Whether Graph named it (otherwise `name` says why not).
    pub named: bool,
    /// Whether Microsoft ever confirmed the consent.
    pub verified: bool,
    pub status: TenantStatus,
    pub consented_at: String,
    pub consented_ago: String,
    pub checked_at: Option<String>,
    pub checked_ago: String,
    pub granted: Vec<String>,
    pub missing: Vec<String>,
    pub last_token: String,
}

fn list_row(t: &TenantRow, required: &[String], now: OffsetDateTime) -> ListRow {
    let v = view(t, required, now);
    let checked = ConsoleSort::Checked.key_of(t);
    ListRow {
        named: t.name().is_some(),
        verified: t.verified_at.is_some(),
        consented_ago: relative_ts(&t.consented_at, now),
        checked_ago: relative_ts(&checked, now),
        checked_at: (!checked.is_empty()).then(|| short(&checked)),
        id: v.id,
        name: v.name,
        status: v.status,
        consented_at: short(&t.consented_at),
        granted: v.granted,
        missing: v.missing,
        last_token: v.last_token,
    }
}

/// An event of "Recent activity", with its tenant's name where known.
pub struct ActivityView {
    pub at: String,
    pub ago: String,
    pub kind: String,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub detail: String,
}

/// A count atop the list: a link that filters by it.
pub struct CountLink {
    pub label: &'static str,
    pub class: &'static str,
    pub n: i64,
    pub href: String,
    pub current: bool,
}

/// A sortable column heading.
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    /// "▲" or "▼" when the list is sorted by it.
    pub arrow: &'static str,
}

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct ListPage<'a> {
    credential: String,
    credential_warning: bool,
    operator: &'a str,
    csrf: &'a str,
    statuses: Vec<(TenantStatus, bool)>,
    any_status: bool,
    attention: bool,
    search: &'a str,
    alert: Option<(&'static str, String)>,
    required: &'a [String],
    /// Whether tenants never verified are listed too (`?all=1`, or a status filter).
    all: bool,
    /// Refused callbacks that wrote nothing, since start: total and by reason.
    refused_total: u64,
    refused: Vec<(&'static str, u64)>,
    /// [`CountsPart`] and [`TablePart`], rendered.
    counts_html: &'a str,
    table_html: &'a str,
    sort: &'static str,
    dir: &'static str,
    export: String,
}

/// The counts atop the list, each a link that filters by it.
#[derive(Template)]
#[template(path = "admin/_tenants_counts.html")]
struct CountsPart {
    counts: Vec<CountLink>,
    /// Tenants never verified that the list leaves out, and the link that includes them.
    unverified: Option<(i64, String)>,
}

/// The table of a page, its pager and the recent activity.
#[derive(Template)]
#[template(path = "admin/_tenants_table.html")]
struct TablePart<'a> {
    /// Where customers' administrators start: shown while there is no tenant yet.
    signup_url: &'a str,
    tenants: Vec<ListRow>,
    any_status: bool,
    search: &'a str,
    headings: Vec<SortLink>,
    previous: Option<String>,
    next: Option<String>,
    events: Vec<ActivityView>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    all: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    /// The page after this cursor ("Next").
    after: Option<String>,
    /// The page before this cursor ("Previous").
    before: Option<String>,
}

/// A list query, parsed: what the list shows and where a page starts.
struct Listing {
    query: ConsoleQuery,
    /// The `status` parameter as given (a status, `attention` or empty).
    status_param: String,
    search: String,
    all: bool,
    from: Option<(ConsoleCursor, PageDirection)>,
}

fn parse_listing(query: ListQuery) -> Result<Listing, WebError> {
    let status_param = query.status.unwrap_or_default();
    let status = match status_param.as_str() {
        "" => StatusFilter::Any,
        "attention" => StatusFilter::Attention,
        raw => StatusFilter::One(
            TenantStatus::parse(raw)
                .ok_or_else(|| WebError::BadRequest(format!("There is no status '{raw}'.")))?,
        ),
    };
    let search = query
        .q
        .map(|q| q.trim().chars().take(200).collect::<String>())
        .unwrap_or_default();
    let sort = match query.sort.as_deref().filter(|s| !s.is_empty()) {
        None => ConsoleSort::Consented,
        Some(raw) => ConsoleSort::parse(raw)
            .ok_or_else(|| WebError::BadRequest(format!("There is no sort '{raw}'.")))?,
    };
    // Newest consents first by default; names and statuses A to Z.
    let descending = match query.dir.as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => matches!(sort, ConsoleSort::Consented | ConsoleSort::Checked),
    };
    // Tenants never verified (a callback named them; Microsoft never confirmed) stay out
    // of the default list: anyone can create them, and they are purged after a week.
    let all = status != StatusFilter::Any || query.all.as_deref().is_some_and(|a| !a.is_empty());
    let from = match (query.after.as_deref(), query.before.as_deref()) {
        (Some(c), _) if !c.is_empty() => Some((decode_cursor(sort, c)?, PageDirection::Forward)),
        (_, Some(c)) if !c.is_empty() => Some((decode_cursor(sort, c)?, PageDirection::Backward)),
        _ => None,
    };
    Ok(Listing {
        query: ConsoleQuery {
            status,
            search: (!search.is_empty()).then(|| search.clone()),
            verified_only: !all,
            sort,
            descending,
        },
        status_param,
        search,
        all,
        from,
    })
}

/// Opaque to operators: base64url of the sort, its key and the tenant id.
fn encode_cursor(sort: ConsoleSort, row: &TenantRow) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}\n{}\n{}",
        sort.as_str(),
        sort.key_of(row),
        row.id
    ))
}

fn decode_cursor(sort: ConsoleSort, raw: &str) -> Result<ConsoleCursor, WebError> {
    let refused = || WebError::BadRequest("That page link is not one this list gave out.".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| refused())?;
    let text = String::from_utf8(bytes).map_err(|_| refused())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(s), Some(key), Some(id)) if s == sort.as_str() => Ok(ConsoleCursor {
            key: key.to_owned(),
            id: id.to_owned(),
        }),
        _ => Err(refused()),
    }
}

/// A query string of the list with these parameters (empty ones left out).
fn href(path: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(name, value);
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

impl Listing {
    /// The parameters that say what is listed (not where the page starts).
    fn params(&self) -> Vec<(&'static str, String)> {
        vec![
            ("status", self.status_param.clone()),
            ("q", self.search.clone()),
            (
                "all",
                if self.all && self.status_param.is_empty() {
                    "1"
                } else {
                    ""
                }
                .to_owned(),
            ),
            ("sort", self.query.sort.as_str().to_owned()),
            (
                "dir",
                if self.query.descending { "desc" } else { "asc" }.to_owned(),
            ),
        ]
    }

    fn link(&self, path: &str, extra: &[(&'static str, String)]) -> String {
        let mut params = self.params();
        params.extend_from_slice(extra);
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        href(path, &borrowed)
    }
}

pub async fn list(
    operator: Operator,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let listing = parse_listing(query.into_inner())?;
    let (from, direction) = match &listing.from {
        Some((cursor, direction)) => (Some(cursor), *direction),
        None => (None, PageDirection::Forward),
    };
    let view = state
        .store
        .console_view(&listing.query, from, direction, PAGE_SIZE + 1, RECENT)
        .await?;
    // The page's address (with its cursor) names what the parts below show: a view served
    // again from the console's cache brings back the HTML rendered from it for this page.
    let address = format!("{}|{:?}", listing.link("/admin", &[]), listing.from);
    let rendered = match view.rendered.get() {
        Some(r) if r.page == address => r.clone(),
        _ => {
            let r = Arc::new(RenderedView {
                parts: render_parts(&view, &listing, direction, &state)
                    .map_err(|e| WebError::Internal(anyhow::Error::new(e)))?,
                page: address,
            });
            // The first page rendered from this view keeps its HTML with it; another page
            // of the same view (the same search typed differently) is rendered each time.
            let _ = view.rendered.set(r.clone());
            r
        }
    };
    let status_filter = listing.query.status;
    let (refused, refused_total) = state.refused_callbacks.totals();
    let (credential, credential_warning) = credential_line(&state);
    let template = ListPage {
        credential,
        credential_warning,
        operator: &operator.name,
        csrf: &operator.csrf,
        statuses: TenantStatus::ALL
            .iter()
            .map(|s| (*s, StatusFilter::One(*s) == status_filter))
            .collect(),
        any_status: status_filter == StatusFilter::Any,
        attention: status_filter == StatusFilter::Attention,
        alert: state
            .verifier
            .health
            .credential_alert()
            .map(|a| (a.headline, format!("{} (since {})", a.message, a.at))),
        required: &state.settings.required_permissions,
        all: listing.all,
        refused_total,
        refused,
        counts_html: &rendered.parts[0],
        table_html: &rendered.parts[1],
        sort: listing.query.sort.as_str(),
        dir: if listing.query.descending {
            "desc"
        } else {
            "asc"
        },
        export: listing.link("/admin/tenants.csv", &[]),
        search: &listing.search,
    };
    page(StatusCode::OK, template.render())
}

/// The parts of a list page that come from the view: the counts atop it, and the table with
/// its pager and the recent activity. Relative times ("3 min ago") are as of rendering.
fn render_parts(
    view: &ConsoleView,
    listing: &Listing,
    direction: PageDirection,
    state: &AppState,
) -> Result<Vec<String>, askama::Error> {
    let ConsoleView {
        rows,
        counts,
        verified,
        recent,
        ..
    } = view;
    let verified = *verified;
    let from = listing.from.as_ref().map(|(cursor, _)| cursor);
    // One row more than a page says whether there is more that way.
    let more = rows.len() > PAGE_SIZE as usize;
    let rows = match (more, direction) {
        (false, _) => &rows[..],
        (true, PageDirection::Forward) => &rows[..rows.len() - 1],
        (true, PageDirection::Backward) => &rows[1..],
    };
    let (has_previous, has_next) = match direction {
        PageDirection::Forward => (from.is_some(), more),
        PageDirection::Backward => (more, true),
    };
    let sort = listing.query.sort;
    let previous = has_previous
        .then(|| rows.first())
        .flatten()
        .map(|r| listing.link("/admin", &[("before", encode_cursor(sort, r))]));
    let next = has_next
        .then(|| rows.last())
        .flatten()
        .map(|r| listing.link("/admin", &[("after", encode_cursor(sort, r))]));

    let everyone: i64 = counts.iter().map(|(_, n)| n).sum();
    let now = OffsetDateTime::now_utc();
    let required = &state.settings.required_permissions;
    let status_filter = listing.query.status;
    let count_link = |label, class, n, status: &str, current| {
        let q = listing.search.as_str();
        CountLink {
            label,
            class,
            n,
            href: href("/admin", &[("status", status), ("q", q)]),
            current,
        }
    };
    // "All" counts what it lists: tenants verified at least once, unless those never
    // verified are included (a status filter includes them, so its count is every tenant).
    let mut all_link = count_link(
        "All",
        "all",
        if listing.all { everyone } else { verified },
        "",
        status_filter == StatusFilter::Any,
    );
    if listing.all {
        all_link.href = href("/admin", &[("q", listing.search.as_str()), ("all", "1")]);
    }
    let unverified = (!listing.all && everyone > verified).then(|| {
        (
            everyone - verified,
            href("/admin", &[("q", listing.search.as_str()), ("all", "1")]),
        )
    });
    let mut count_links = vec![all_link];
    count_links.push(count_link(
        "Needs attention",
        "attention",
        counts
            .iter()
            .filter(|(s, _)| ATTENTION.contains(s))
            .map(|(_, n)| n)
            .sum(),
        "attention",
        status_filter == StatusFilter::Attention,
    ));
    for (s, n) in counts {
        count_links.push(count_link(
            s.label(),
            s.as_str(),
            *n,
            s.as_str(),
            status_filter == StatusFilter::One(*s),
        ));
    }
    let headings = [
        ("Organisation", ConsoleSort::Name),
        ("Status", ConsoleSort::Status),
        ("Consented", ConsoleSort::Consented),
        ("Last check", ConsoleSort::Checked),
    ]
    .into_iter()
    .map(|(label, by)| {
        let current = by == sort;
        // The current column turns around; another starts in its natural direction.
        let dir = match (current, listing.query.descending) {
            (true, true) => "asc",
            (true, false) => "desc",
            (false, _) if matches!(by, ConsoleSort::Consented | ConsoleSort::Checked) => "desc",
            (false, _) => "asc",
        };
        let mut params = listing.params();
        params.retain(|(n, _)| *n != "sort" && *n != "dir");
        params.push(("sort", by.as_str().to_owned()));
        params.push(("dir", dir.to_owned()));
        let borrowed: Vec<(&str, &str)> = params.iter().map(|(n, v)| (*n, v.as_str())).collect();
        SortLink {
            label,
            href: href("/admin", &borrowed),
            arrow: match (current, listing.query.descending) {
                (true, true) => "▼",
                (true, false) => "▲",
                (false, _) => "",
            },
        }
    })
    .collect();
    let counts_html = CountsPart {
        counts: count_links,
        unverified,
    }
    .render()?;
    let table_html = TablePart {
        signup_url: state.settings.public_url.as_str(),
        tenants: rows.iter().map(|t| list_row(t, required, now)).collect(),
        any_status: status_filter == StatusFilter::Any,
        search: &listing.search,
        headings,
        previous,
        next,
        events: recent
            .iter()
            .map(|(e, tenant_name)| ActivityView {
                at: short(&e.created_at),
                ago: relative_ts(&e.created_at, now),
                kind: e.kind.replace('_', " "),
                tenant_name: tenant_name.clone(),
                tenant_id: e.tenant_id.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
    }
    .render()?;
    Ok(vec![counts_html, table_html])
}

/// A CSV download: streamed, one batch of rows read at a time.
fn csv_response(
    filename: &str,
    body: impl futures_util::Stream<Item = Result<web::Bytes, WebError>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_TYPE,
            "text/csv; charset=utf-8",
        ))
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .streaming(body)
}

/// `GET /admin/tenants.csv`: the list as it is filtered, searched and sorted, every page
/// of it, read through the cursor a batch at a time (never all of it in memory).
pub async fn export(
    _operator: Operator,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let mut listing = parse_listing(query.into_inner())?;
    // The whole list, whatever page the link was on.
    listing.from = None;
    let query = listing.query;
    let store = state.store.clone();
    let required = state.settings.required_permissions.clone();
    let header = csv_row(&[
        "tenant_id",
        "organisation",
        "status",
        "consented_at",
        "verified_at",
        "last_check_at",
        "granted_permissions",
        "missing_permissions",
        "verified_domains",
        "last_error_code",
        "consecutive_failures",
    ]);
    // (cursor, finished): each step reads one batch after the cursor.
    let batches =
        futures_util::stream::unfold((None::<ConsoleCursor>, false), move |(cursor, done)| {
            let (store, query, required) = (store.clone(), query.clone(), required.clone());
            async move {
                if done {
                    return None;
                }
                let rows = match store
                    .console_page(
                        &query,
                        cursor.as_ref(),
                        PageDirection::Forward,
                        EXPORT_BATCH,
                    )
                    .await
                {
                    Ok(rows) => rows,
                    Err(e) => return Some((Err(WebError::from(e)), (cursor, true))),
                };
                let finished = rows.len() < EXPORT_BATCH as usize;
                let next = rows.last().map(|r| ConsoleCursor {
                    key: query.sort.key_of(r),
                    id: r.id.clone(),
                });
                let mut chunk = String::new();
                for t in &rows {
                    chunk.push_str(&csv_row(&[
                        t.id.as_str(),
                        t.name().unwrap_or(""),
                        t.status.as_str(),
                        t.consented_at.as_str(),
                        t.verified_at.as_deref().unwrap_or(""),
                        ConsoleSort::Checked.key_of(t).as_str(),
                        t.granted_roles().join(" ").as_str(),
                        t.missing_permissions(&required).join(" ").as_str(),
                        t.verified_domains().join(" ").as_str(),
                        t.last_error_code.as_deref().unwrap_or(""),
                        t.consecutive_failures.to_string().as_str(),
                    ]));
                }
                Some((Ok(web::Bytes::from(chunk)), (next, finished)))
            }
        });
    let body =
        futures_util::stream::once(async move { Ok(web::Bytes::from(header)) }).chain(batches);
    Ok(csv_response("tenants.csv", body))
}

/// `GET /admin/tenants/{id}/events.csv`: a tenant's events, newest first, read a batch at
/// a time.
pub async fn export_events(
    _operator: Operator,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let id = TenantId::parse(&id).ok_or(WebError::NotFound)?;
    state.store.tenant(id).await?.ok_or(WebError::NotFound)?;
    let store = state.store.clone();
    let header = csv_row(&["time", "kind", "detail", "request_id"]);
    let batches = futures_util::stream::unfold((None::<String>, false), move |(before, done)| {
        let store = store.clone();
        async move {
            if done {
                return None;
            }
            let rows = match store.events_page(id, before.as_deref(), EXPORT_BATCH).await {
                Ok(rows) => rows,
                Err(e) => return Some((Err(WebError::from(e)), (before, true))),
            };
            let finished = rows.len() < EXPORT_BATCH as usize;
            let next = rows.last().map(|e| e.id.clone());
            let mut chunk = String::new();
            for e in &rows {
                chunk.push_str(&csv_row(&[
                    e.created_at.as_str(),
                    e.kind.as_str(),
                    e.detail.as_str(),
                    e.request_id.as_deref().unwrap_or(""),
                ]));
            }
            Some((Ok(web::Bytes::from(chunk)), (next, finished)))
        }
    });
    let body =
        futures_util::stream::once(async move { Ok(web::Bytes::from(header)) }).chain(batches);
    Ok(csv_response(&format!("tenant-{id}-events.csv"), body))
}

/// Where the tenant's checks stand, from the database alone (several instances share it):
/// an early check asked for and not saved yet is running; otherwise the last check's
/// outcome.
pub enum CheckView {
    Running {
        since: String,
        ago: String,
        /// Running for longer than a check takes, retries included.
        slow: bool,
    },
    Done {
        ago: String,
        at: String,
        /// The last check succeeded (the status says what it found).
        ok: bool,
        status: TenantStatus,
        code: Option<String>,
        error: Option<String>,
    },
    Never,
}

/// A requested check running this long is worth a word: calls to Microsoft time out
/// after 10 s and a check makes at most four (a token, once more on a 401, the
/// organisation, the user count).
const SLOW_CHECK: time::Duration = time::Duration::seconds(45);

fn check_view(t: &TenantRow, now: OffsetDateTime) -> CheckView {
    if let Some(requested) = &t.check_requested_at {
        return CheckView::Running {
            since: short(requested),
            ago: seconds_ago_ts(requested, now),
            slow: crate::store::parse_ts(requested).is_some_and(|at| now - at > SLOW_CHECK),
        };
    }
    let checked = ConsoleSort::Checked.key_of(t);
    if checked.is_empty() {
        return CheckView::Never;
    }
    let ok = t.last_token_ok_at.as_deref() == Some(checked.as_str());
    CheckView::Done {
        ago: seconds_ago_ts(&checked, now),
        at: short(&checked),
        ok,
        status: t.status().unwrap_or(TenantStatus::Failed),
        code: (!ok).then(|| t.last_error_code.clone()).flatten(),
        error: (!ok).then(|| t.last_error.clone()).flatten(),
    }
}

#[derive(Template)]
#[template(path = "admin/tenant.html")]
struct TenantPage {
    /// The check running or the last one's outcome; the page refreshes itself while one runs.
    check: CheckView,
    refresh: bool,
    /// The check's line shows the last error (the facts then leave it out).
    error_in_check: bool,
    /// How long until another "verify now" is allowed, in seconds (none: now).
    verify_wait: Option<u64>,
    /// The last press was refused by the spacing of early checks.
    verify_refused: bool,
    /// From Graph, live; or why not.
    /// The count and when the check that read it ran; or why there is none.
    users: Result<(i64, Stamp), &'static str>,
    operator: String,
    csrf: String,
    tenant: TenantView,
    events: Vec<EventView>,
    /// Invitations that named this tenant or connected it.
    invitations: Vec<super::invitations::InvitationLine>,
    alert: Option<(&'static str, String)>,
    claims: Vec<ClaimView>,
    /// The confirming claim's signed-in person, else the latest signed-in one's: who
    /// connected the tenant, as Microsoft vouched.
    connected_by: Option<usize>,
    /// The tenant's webhook deliveries, newest first, to every endpoint.
    deliveries: Vec<super::webhooks::DeliveryView>,
    /// The cursor of the next (older) page of deliveries.
    next: Option<String>,
    paged: bool,
    back: &'static str,
    show_endpoint: bool,
}

#[derive(Deserialize)]
pub struct TenantQuery {
    /// Deliveries older than this one (a page of the delivery log).
    deliveries_before: Option<String>,
    /// `later`: "verify now" was refused, the tenant's early checks are spaced.
    verify: Option<String>,
}

/// What a sign-up said about itself: a claim, never the tenant's record.
pub struct ClaimView {
    pub signed_up_at: Stamp,
    pub called_back_at: Stamp,
    pub organisation_name: Option<String>,
    pub contact_email: Option<String>,
    pub domain_hint: Option<String>,
    pub client_addr: Option<String>,
    /// What the evidence says about it, in words.
    pub evidence: &'static str,
    /// Its callback is the latest before Microsoft first confirmed the consent.
    pub confirming: bool,
    /// Who signed in with Microsoft for it (a validated ID token of this tenant).
    pub signed_in: Option<SignedInView>,
}

/// A person Microsoft signed in as a member of the tenant before its consent.
pub struct SignedInView {
    pub name: String,
    pub username: Option<String>,
    pub at: Stamp,
}

/// Claims with what Microsoft's answers say of each. The confirming claim is the latest
/// callback before the first successful check; when several callbacks fell in the same
/// verification window (the callback's `tenant` is typed by anyone, and consent takes a
/// while to propagate), the page says the window was contested rather than pretend to know.
fn claim_views(
    tenant: &TenantRow,
    claims: Vec<crate::store::ClaimRow>,
    now: OffsetDateTime,
) -> Vec<ClaimView> {
    let window_end = tenant.verified_at.as_deref().unwrap_or("9999");
    let in_window = |at: &str| at >= tenant.consented_at.as_str() && at <= window_end;
    let contested = claims.iter().filter(|c| in_window(&c.consumed_at)).count() > 1;
    claims
        .into_iter()
        .map(|c| {
            let confirming = tenant.confirmed_by(&c);
            let evidence = if confirming && contested {
                "confirmed the consent (contested: other sign-ups named this tenant in the same window)"
            } else if confirming {
                "confirmed the consent: Microsoft first confirmed it after this callback"
            } else if tenant.verified_at.as_deref().is_some_and(|v| v < c.consumed_at.as_str()) {
                "after verification: proved nothing"
            } else if in_window(&c.consumed_at) {
                "in the verification window; not confirmed by Microsoft"
            } else {
                "not confirmed by Microsoft"
            };
            let signed_in = c.signed_in_at.as_deref().map(|at| SignedInView {
                name: c
                    .signed_in_name
                    .clone()
                    .or_else(|| c.signed_in_username.clone())
                    .unwrap_or_else(|| "a member".into()),
                username: c.signed_in_username.clone(),
                at: Stamp::of(at, now),
            });
            ClaimView {
                signed_in,
                evidence,
                confirming,
                signed_up_at: Stamp::of(&c.created_at, now),
                called_back_at: Stamp::of(&c.consumed_at, now),
                organisation_name: c.organisation_name,
                contact_email: c.contact_email,
                domain_hint: c.domain_hint,
                client_addr: c.client_addr,
            }
        })
        .collect()
}

pub async fn show(
    operator: Operator,
    id: web::Path<String>,
    query: web::Query<TenantQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let id = TenantId::parse(&id).ok_or(WebError::NotFound)?;
    let tenant = state.store.tenant(id).await?.ok_or(WebError::NotFound)?;
    let before = query.deliveries_before.as_deref();
    let (deliveries, next) = super::webhooks::delivery_log(
        &state,
        &crate::store::DeliveryFilter {
            tenant_id: Some(id),
            ..Default::default()
        },
        before,
    )
    .await?;
    let events = state.store.events_for(id, 200).await?;
    let now = OffsetDateTime::now_utc();
    let claims = claim_views(&tenant, state.store.claims_for(id).await?, now);
    let connected_by = claims
        .iter()
        .position(|c| c.confirming && c.signed_in.is_some())
        .or_else(|| claims.iter().position(|c| c.signed_in.is_some()));
    // As the last check counted them: rendering never calls Graph (a failing tenant's page
    // would wait on it).
    let users = match (tenant.user_count, &tenant.user_count_at) {
        (Some(n), Some(at)) => Ok((n, Stamp::of(at, now))),
        _ => Err("not counted yet: checks count them once the tenant granted User.Read.All"),
    };
    let check = check_view(&tenant, now);
    let template = TenantPage {
        refresh: matches!(check, CheckView::Running { .. }),
        error_in_check: matches!(check, CheckView::Done { ok: false, .. }),
        check,
        verify_wait: early_check_wait(tenant.early_checks_full_at.as_deref(), now)
            .map(|wait| wait.as_secs_f64().ceil() as u64),
        verify_refused: query.verify.as_deref() == Some("later"),
        users,
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        tenant: view(&tenant, &state.settings.required_permissions, now),
        events: events.iter().map(|e| event_view(e, now)).collect(),
        invitations: super::invitations::for_tenant(&state, id).await?,
        alert: state
            .verifier
            .health
            .credential_alert()
            .map(|a| (a.headline, a.message)),
        claims,
        connected_by,
        deliveries,
        next,
        paged: before.is_some(),
        back: "tenant",
        show_endpoint: true,
    };
    page(StatusCode::OK, template.render())
}

/// `POST /admin/tenants/{id}/verify`: an early check, if the tenant's budget allows
/// (`store/early_check.rs`: the operator's presses, the API's requests and callbacks share
/// it, so pressing again and again queues no more checks). Back to the tenant's page, which
/// shows the check running, then its outcome; `?verify=later` when the budget said no.
pub async fn verify_now(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let id = TenantId::parse(&id).ok_or(WebError::NotFound)?;
    let detail = format!("{} asked to verify the tenant now.", operator.name);
    let answer = state
        .store
        .request_check(id, OffsetDateTime::now_utc(), detail, &request_id(&req))
        .await?;
    let (outcome, location) = match answer {
        EarlyCheck::NoSuchTenant => return Err(WebError::NotFound),
        EarlyCheck::Granted => {
            state.verifier.check_soon(id);
            (Outcome::Success, format!("/admin/tenants/{id}"))
        }
        EarlyCheck::TooSoon { .. } => (
            Outcome::Failure,
            format!("/admin/tenants/{id}?verify=later"),
        ),
    };
    operator
        .audit(&state, AuditAction::VerifyNow, &id.to_string(), outcome)
        .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish())
}

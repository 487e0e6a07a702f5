//! `/admin/audit`: the audit trail, newest first, filtered by actor, action and date range,
//! paged by cursor; `/admin/audit.csv` exports the same filter as CSV. Owners and operators
//! only (see `AREAS` in the parent module for why).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use crate::store::{AuditAction, AuditFilter, AuditRow};
use crate::web::format::Stamp;
use crate::web::routes::page;
use crate::web::{AppState, WebError};

/// Lines per page.
const PAGE: i64 = 50;

/// Lines read per query while exporting.
const EXPORT_BATCH: i64 = 1_000;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// `YYYY-MM-DD`, the first day shown.
    from: Option<String>,
    /// `YYYY-MM-DD`, the last day shown.
    until: Option<String>,
    /// The cursor: lines older than this id.
    before: Option<i64>,
}

fn non_empty(raw: &Option<String>) -> Option<String> {
    raw.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn day(raw: &Option<String>, what: &str) -> Result<Option<time::Date>, WebError> {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[year]-[month]-[day]");
    non_empty(raw)
        .map(|s| {
            time::Date::parse(&s, FORMAT).map_err(|_| {
                WebError::BadRequest(format!("The {what} date must look like 2026-12-01."))
            })
        })
        .transpose()
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, WebError> {
        let action = non_empty(&self.action);
        if let Some(a) = &action
            && AuditAction::parse(a).is_none()
        {
            return Err(WebError::BadRequest(format!("There is no action '{a}'.")));
        }
        let start = |d: time::Date| format!("{d}T00:00:00.000Z");
        Ok(AuditFilter {
            actor: non_empty(&self.actor),
            action,
            from: day(&self.from, "first")?.map(start),
            until: day(&self.until, "last")?
                .and_then(|d| d.next_day())
                .map(start),
            before: self.before,
        })
    }

    /// The query string of this filter with another cursor.
    fn with_cursor(&self, before: i64) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("until", &self.until),
        ] {
            if let Some(v) = non_empty(value) {
                pairs.append_pair(key, &v);
            }
        }
        pairs.append_pair("before", &before.to_string());
        pairs.finish()
    }

    /// The query string of this filter, for the export link.
    fn without_cursor(&self) -> String {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("until", &self.until),
        ] {
            if let Some(v) = non_empty(value) {
                pairs.append_pair(key, &v);
            }
        }
        pairs.finish()
    }
}

/// A line of the trail as the page shows it: its target named where the name is known
/// (a tenant's organisation, an API key's name, a webhook endpoint's URL), the recorded
/// id kept on hover.
pub struct AuditLine {
    pub at: Stamp,
    pub actor: String,
    pub address: String,
    pub action: String,
    pub target: String,
    /// The recorded target, when `target` names it.
    pub target_id: Option<String>,
    /// Where the target is, while it exists.
    pub target_href: Option<String>,
    pub outcome: String,
}

/// What an action's target is, for naming it.
enum TargetKind {
    Tenant,
    ApiKey,
    Endpoint,
}

fn target_kind(action: &str) -> Option<TargetKind> {
    match AuditAction::parse(action)? {
        AuditAction::VerifyNow => Some(TargetKind::Tenant),
        AuditAction::ApiKeyRevoke => Some(TargetKind::ApiKey),
        AuditAction::WebhookCreate
        | AuditAction::WebhookChange
        | AuditAction::WebhookPause
        | AuditAction::WebhookEnable
        | AuditAction::WebhookRotate
        | AuditAction::WebhookDelete => Some(TargetKind::Endpoint),
        _ => None,
    }
}

/// The page's lines, their targets named: one query a kind of target, for the page's ids
/// only (API keys and endpoints are few; tenants are looked up by id).
async fn audit_lines(state: &AppState, rows: Vec<AuditRow>) -> Result<Vec<AuditLine>, WebError> {
    let now = OffsetDateTime::now_utc();
    let ids = |kind: fn(&TargetKind) -> bool| -> Vec<String> {
        rows.iter()
            .filter(|r| target_kind(&r.action).as_ref().is_some_and(kind))
            .map(|r| r.target.clone())
            .collect()
    };
    let tenant_ids = ids(|k| matches!(k, TargetKind::Tenant));
    let tenants = if tenant_ids.is_empty() {
        HashMap::new()
    } else {
        state.store.tenant_names(&tenant_ids).await?
    };
    let keys: HashMap<String, String> = if ids(|k| matches!(k, TargetKind::ApiKey)).is_empty() {
        HashMap::new()
    } else {
        state
            .store
            .list_api_keys()
            .await?
            .into_iter()
            .map(|k| (k.id, k.name))
            .collect()
    };
    let endpoints: HashMap<String, String> =
        if ids(|k| matches!(k, TargetKind::Endpoint)).is_empty() {
            HashMap::new()
        } else {
            state
                .store
                .endpoints()
                .await?
                .into_iter()
                .map(|e| (e.id, e.url))
                .collect()
        };
    Ok(rows
        .into_iter()
        .map(|r| {
            let named = match target_kind(&r.action) {
                Some(TargetKind::Tenant) => tenants
                    .get(&r.target)
                    .map(|name| (name.clone(), format!("/admin/tenants/{}", r.target))),
                Some(TargetKind::ApiKey) => keys
                    .get(&r.target)
                    .map(|name| (name.clone(), "/admin/api-keys".to_owned())),
                Some(TargetKind::Endpoint) => endpoints
                    .get(&r.target)
                    .map(|url| (url.clone(), format!("/admin/webhooks/{}", r.target))),
                None => None,
            };
            let (target, target_id, target_href) = match named {
                Some((name, href)) => (name, Some(r.target), Some(href)),
                None => (r.target, None, None),
            };
            AuditLine {
                at: Stamp::of(&r.at, now),
                actor: r.actor,
                address: r.address,
                action: r.action,
                target,
                target_id,
                target_href,
                outcome: r.outcome,
            }
        })
        .collect())
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    operator: String,
    csrf: String,
    rows: Vec<AuditLine>,
    actions: Vec<&'static str>,
    actor: String,
    action: String,
    from: String,
    until: String,
    /// The query string of the next (older) page, if there is one.
    next: Option<String>,
    export: String,
}

pub async fn list(
    operator: Operator,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let filter = query.filter()?;
    let mut rows = state.store.audit_events(&filter, PAGE + 1).await?;
    let next = if rows.len() as i64 > PAGE {
        rows.truncate(PAGE as usize);
        rows.last().map(|r| query.with_cursor(r.id))
    } else {
        None
    };
    let template = AuditPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        rows: audit_lines(&state, rows).await?,
        actions: AuditAction::ALL.iter().map(|a| a.as_str()).collect(),
        actor: non_empty(&query.actor).unwrap_or_default(),
        action: non_empty(&query.action).unwrap_or_default(),
        from: non_empty(&query.from).unwrap_or_default(),
        until: non_empty(&query.until).unwrap_or_default(),
        next,
        export: query.without_cursor(),
    };
    page(StatusCode::OK, template.render())
}

/// The whole filtered trail as CSV (RFC 4180), newest first.
pub async fn export(
    _operator: Operator,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let mut filter = query.filter()?;
    let mut csv = String::from("id,time,actor,address,action,target,outcome\r\n");
    loop {
        let rows = state.store.audit_events(&filter, EXPORT_BATCH).await?;
        for r in &rows {
            let cells = [
                r.id.to_string(),
                r.at.clone(),
                r.actor.clone(),
                r.address.clone(),
                r.action.clone(),
                r.target.clone(),
                r.outcome.clone(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == EXPORT_BATCH => filter.before = Some(last.id),
            _ => break,
        }
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"consentry-audit.csv\"",
        ))
        .body(csv))
}

/// One CSV cell: quoted when it holds a comma, a quote or a line break (quotes doubled, RFC
/// 4180), and a cell a spreadsheet would read as a formula (starting with = + - @, a tab or
/// a carriage return) gets a leading apostrophe, so that a name typed at the sign-in form
/// cannot run in the spreadsheet of whoever opens the export.
fn csv_cell(raw: &str) -> String {
    let neutral = if raw.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{raw}")
    } else {
        raw.to_owned()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("ops"), "ops");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
    }
}

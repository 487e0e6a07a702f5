//! `GET /consent/callback`: where Microsoft sends the administrator back (ENTRA.md §2).
//!
//! `error` is checked first. A success must carry a state that exists, is unexpired,
//! unused and bound to this browser; it is consumed atomically with recording the callback
//! as a claim on its tenant. The `tenant` parameter is unauthenticated: it becomes a tenant
//! to verify, never a verified one, and never changes a tenant already verified.
//!
//! Anyone can type this URL, so a refusal costs us nothing durable: callbacks are
//! rate-limited per client, and only a callback whose state we stored writes an event (once
//! per stored request); the rest are counted ([`RefusedCallbacks`]) and logged as a summary.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use super::{client_addr, page, request_id};
use crate::domain::{RandomToken, TenantId};
use crate::store::{ConsentCallback, ConsentOutcome, ConsentRejection, EventKind, NewEvent};
use crate::web::{AppState, WebError, cookies};

/// Microsoft's callback parameters, each at most once.
#[derive(Debug, Default)]
struct CallbackParams {
    error: Option<String>,
    error_description: Option<String>,
    admin_consent: Option<String>,
    tenant: Option<String>,
    state: Option<String>,
}

/// Query strings longer than this are not Microsoft's.
const MAX_QUERY: usize = 16 * 1024;

fn parse_query(raw: &str) -> Result<CallbackParams, WebError> {
    if raw.len() > MAX_QUERY {
        return Err(WebError::BadRequest(
            "This sign-in response is too long to be Microsoft's.".into(),
        ));
    }
    let mut p = CallbackParams::default();
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        let slot = match name.as_ref() {
            "error" => &mut p.error,
            "error_description" => &mut p.error_description,
            "admin_consent" => &mut p.admin_consent,
            "tenant" => &mut p.tenant,
            "state" => &mut p.state,
            // Microsoft adds others (error_uri, error_subcode, session_state); ignore them.
            _ => continue,
        };
        if slot.is_some() {
            return Err(WebError::BadRequest(format!(
                "The sign-in response repeats '{name}'."
            )));
        }
        *slot = Some(value.into_owned());
    }
    Ok(p)
}

#[derive(Template)]
#[template(path = "signup/declined.html")]
pub(super) struct Declined {
    pub(super) title: &'static str,
    pub(super) explanation: &'static str,
    /// Microsoft's own words: only for a callback whose state this browser was issued.
    pub(super) microsoft_says: Option<String>,
    /// The AADSTS code (or OAuth error) alone.
    pub(super) code: String,
    /// The sign-up came from an invitation: its link, not the sign-up page, starts again.
    pub(super) invited: bool,
}

/// What an AADSTS code on the callback means for the administrator.
pub(super) fn explain(code: Option<u32>, error: &str) -> (&'static str, &'static str) {
    match code {
        Some(65004) => (
            "You cancelled",
            "You chose Cancel on Microsoft's page, so nothing was shared with us. You can start again whenever you are ready.",
        ),
        Some(50020) => (
            "That account is not in the organisation",
            "The account you signed in with does not belong to the organisation. Sign in with an administrator account of your own organisation and try again.",
        ),
        Some(90094) | Some(90095) => (
            "An administrator has to approve this",
            "Your organisation lets only certain administrators grant these permissions. Ask a Global or Privileged Role Administrator to connect your organisation, or approve the request they received.",
        ),
        Some(50194) | Some(650052) | Some(650056) | Some(650057) => (
            "Microsoft refused the request",
            "Microsoft could not show the consent page for this app. This is our configuration problem, not yours: contact us and quote the message below.",
        ),
        _ if error == "access_denied" => (
            "Consent was not given",
            "Microsoft says access was denied, so nothing was shared with us. You can start again, or contact us and quote the message below.",
        ),
        _ => (
            "Connecting your organisation did not work",
            "Microsoft returned an error. You can start again, or contact us and quote the message below.",
        ),
    }
}

/// `AADSTS65004: ...` → 65004
pub(super) fn aadsts_code(description: &str) -> Option<u32> {
    let rest = description.trim_start().strip_prefix("AADSTS")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// At most `n` characters of an unauthenticated value, for an event's text.
pub(super) fn clip(value: &str, n: usize) -> String {
    let clipped: String = value.chars().take(n).filter(|c| !c.is_control()).collect();
    if value.chars().count() > n {
        format!("{clipped}…")
    } else {
        clipped
    }
}

/// Refused callbacks that wrote nothing, counted by reason: a figure on the dashboard and
/// a summary line in the log at most once a minute (a flood is one line, not one a request).
#[derive(Debug)]
pub struct RefusedCallbacks {
    inner: Mutex<RefusedInner>,
}

#[derive(Debug)]
struct RefusedInner {
    total: BTreeMap<&'static str, u64>,
    since_summary: BTreeMap<&'static str, u64>,
    last_summary: Instant,
}

impl Default for RefusedCallbacks {
    fn default() -> Self {
        RefusedCallbacks {
            inner: Mutex::new(RefusedInner {
                total: BTreeMap::new(),
                since_summary: BTreeMap::new(),
                last_summary: Instant::now(),
            }),
        }
    }
}

/// How often the log gets a summary of refused callbacks.
const SUMMARY_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl RefusedCallbacks {
    pub fn count(&self, reason: &'static str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.total.entry(reason).or_default() += 1;
        *inner.since_summary.entry(reason).or_default() += 1;
        if inner.last_summary.elapsed() >= SUMMARY_EVERY {
            let counts = std::mem::take(&mut inner.since_summary);
            let refused: u64 = counts.values().sum();
            tracing::warn!(
                refused,
                by_reason = ?counts,
                "consent callbacks refused since the last summary (no row written for them)"
            );
            inner.last_summary = Instant::now();
        } else {
            tracing::debug!(reason, "consent callback refused");
        }
    }

    /// Every reason with its count since start, and the total.
    pub fn totals(&self) -> (Vec<(&'static str, u64)>, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let all: Vec<_> = inner.total.iter().map(|(k, v)| (*k, *v)).collect();
        let sum = all.iter().map(|(_, v)| v).sum();
        (all, sum)
    }
}

pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let now = OffsetDateTime::now_utc();
    let rid = request_id(&req);
    if let Err(retry_after) = state.callback_limit.acquire(&client_addr(&req)) {
        state.refused_callbacks.count("rate_limited");
        return Err(WebError::TooManyRequests { retry_after });
    }
    let params = match parse_query(req.query_string()) {
        Ok(p) => p,
        Err(e) => {
            state.refused_callbacks.count("malformed_query");
            return Err(e);
        }
    };
    let consent_state = params.state.as_deref().and_then(RandomToken::parse);
    let binding_hashes: Vec<String> = cookies::bindings(&req)
        .iter()
        .map(|b| state.keyed.hash("binding", b))
        .collect();
    let state_hash = consent_state.as_ref().map(|s| state.keyed.hash("state", s));

    if let Some(error) = params.error.as_deref() {
        return declined(
            &state,
            &params,
            error,
            state_hash,
            &binding_hashes,
            &rid,
            now,
        )
        .await;
    }

    let tenant_raw = params.tenant.as_deref().unwrap_or_default();
    let failure = match (&params.state, &consent_state, TenantId::parse(tenant_raw)) {
        (None, _, _) => Some((
            "missing_state",
            "This sign-in response has no state, so we cannot tell which sign-up it belongs to. Start again from the sign-up page.",
        )),
        (Some(_), None, _) => Some((
            "malformed_state",
            "This sign-in response does not carry a state we issued. Start again from the sign-up page.",
        )),
        (_, _, None) => Some((
            "bad_tenant",
            "Microsoft's response should name your organisation's tenant ID, and this one does not. Start again from the sign-up page.",
        )),
        _ if !params
            .admin_consent
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            Some((
                "not_consented",
                "This response does not say that an administrator consented. Start again from the sign-up page.",
            ))
        }
        _ if binding_hashes.is_empty() => Some((
            "no_binding",
            "This sign-up was started in another browser (or your browser dropped our cookie). Finish it in the browser where you started, or start again here.",
        )),
        _ => None,
    };
    if let Some((why, message)) = failure {
        refuse(&state, &rid, state_hash.as_deref(), tenant_raw, why, now).await?;
        return Err(WebError::BadRequest(message.into()));
    }
    let (Some(state_hash), Some(tenant)) = (state_hash, TenantId::parse(tenant_raw)) else {
        return Err(WebError::BadRequest(
            "This sign-in response is incomplete.".into(),
        ));
    };

    match state
        .store
        .complete_consent(&ConsentCallback {
            state_hash: &state_hash,
            binding_hashes: &binding_hashes,
            tenant,
            now,
            request_id: &rid,
        })
        .await?
    {
        ConsentOutcome::Recorded {
            tenant, check_now, ..
        } => {
            // Its own lane: a fresh callback's check never waits behind a batch of due
            // tenants (a flood of forged ones, say).
            if check_now {
                state.verifier.check_soon(tenant);
            }
            Ok(HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/consent/status"))
                .finish())
        }
        ConsentOutcome::Rejected(why) => {
            // These two wrote their own event with the refusal.
            if !matches!(
                why,
                ConsentRejection::TooManyTenants
                    | ConsentRejection::NotInvitedTenant
                    | ConsentRejection::NotSignedInTenant
            ) {
                refuse(
                    &state,
                    &rid,
                    Some(&state_hash),
                    tenant_raw,
                    why.as_str(),
                    now,
                )
                .await?;
            } else {
                tracing::warn!(reason = why.as_str(), "consent callback refused");
            }
            Err(WebError::BadRequest(
                match why {
                    ConsentRejection::UnknownState => {
                        "We did not start this sign-up, or it was altered on the way. Start again from the sign-up page."
                    }
                    ConsentRejection::Expired => {
                        "This sign-up took too long and has expired. Start again from the sign-up page; it only takes a minute."
                    }
                    ConsentRejection::Replayed => {
                        "This sign-in response was already used. If you just connected your organisation, check its status on the status page."
                    }
                    ConsentRejection::OtherBrowser => {
                        "This sign-up was started in another browser. Finish it in the browser where you started, or start again here."
                    }
                    ConsentRejection::TooManyTenants => {
                        "This browser has connected many organisations today. If you really manage all of them, contact us and we will help."
                    }
                    ConsentRejection::NotSignedInTenant => {
                        "Microsoft sent you back for another organisation than the one you signed in to, so nothing was recorded. Start again from the sign-up page and approve for your own organisation."
                    }
                    ConsentRejection::NotInvitedTenant => {
                        "Your invitation is for another organisation than the one Microsoft sent you back for. Open the invitation link again and sign in as an administrator of the invited organisation."
                    }
                }
                .into(),
            ))
        }
    }
}

/// `error` on the callback (ENTRA.md §2: checked first). Microsoft's free text is shown
/// only when the state is one we issued to this browser; otherwise anyone could make our
/// origin print any text, so the page is generic and names only the code.
async fn declined(
    state: &AppState,
    params: &CallbackParams,
    error: &str,
    state_hash: Option<String>,
    binding_hashes: &[String],
    rid: &str,
    now: OffsetDateTime,
) -> Result<HttpResponse, WebError> {
    let description = params.error_description.as_deref().unwrap_or_default();
    let headline = description
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let code = aadsts_code(description);
    let event = NewEvent {
        tenant_id: None,
        kind: EventKind::ConsentDeclined,
        detail: format!(
            "Microsoft returned {}: {}",
            clip(error, 64),
            clip(&headline, 300)
        ),
        request_id: Some(rid.to_owned()),
    };
    let declined_sign_up = match state_hash.as_deref() {
        Some(hash) if !binding_hashes.is_empty() => {
            state
                .store
                .decline_consent(
                    hash,
                    binding_hashes,
                    &event,
                    &crate::store::Declined {
                        error: &clip(error, 64),
                        code: code.map(|c| format!("AADSTS{c}")),
                        description: &clip(&headline, 300),
                    },
                    now,
                )
                .await?
        }
        _ => None,
    };
    let matched = declined_sign_up.is_some();
    if !matched {
        state.refused_callbacks.count("declined_unmatched");
    }
    let (title, explanation) = explain(code, error);
    let code_shown = match code {
        Some(c) => format!("AADSTS{c}"),
        None if is_oauth_error(error) => error.to_owned(),
        None => "unknown".to_owned(),
    };
    let microsoft_says = matched.then(|| {
        if headline.is_empty() {
            clip(error, 64)
        } else {
            clip(&headline, 500)
        }
    });
    page(
        StatusCode::OK,
        Declined {
            title,
            explanation,
            microsoft_says,
            code: code_shown,
            invited: declined_sign_up.is_some_and(|d| d.from_invitation),
        }
        .render(),
    )
}

/// An OAuth error code as RFC 6749 §4.1.2.1 spells them (`access_denied`, ...).
pub(super) fn is_oauth_error(error: &str) -> bool {
    !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// A refused callback. With a state we stored, its first refusal writes an event (the
/// operator may want to know that an administrator finished in the wrong browser);
/// anything else is only counted.
async fn refuse(
    state: &AppState,
    rid: &str,
    state_hash: Option<&str>,
    tenant: &str,
    why: &'static str,
    now: OffsetDateTime,
) -> Result<(), WebError> {
    let written = match state_hash {
        Some(hash) => {
            let claimed = Some(tenant)
                .filter(|t| !t.is_empty())
                .map(|t| format!("; it named tenant {}", clip(t, 64)))
                .unwrap_or_default();
            let event = NewEvent {
                tenant_id: None,
                kind: EventKind::CallbackRejected,
                detail: format!("Callback refused: {why}{claimed}."),
                request_id: Some(rid.to_owned()),
            };
            state.store.refuse_callback(hash, &event, now).await?
        }
        None => false,
    };
    if written {
        tracing::warn!(reason = why, "consent callback refused");
    } else {
        state.refused_callbacks.count(why);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_others_ignored() {
        assert!(parse_query("state=a&state=b").is_err());
        let p = parse_query("admin_consent=True&tenant=t&state=s&session_state=x").unwrap();
        assert_eq!(p.tenant.as_deref(), Some("t"));
        assert!(parse_query(&"a".repeat(MAX_QUERY + 1)).is_err());
    }

    #[test]
    fn reads_aadsts_codes() {
        assert_eq!(
            aadsts_code("AADSTS65004: User declined to consent to access the app.\r\nTrace ID: x"),
            Some(65004)
        );
        assert_eq!(aadsts_code("nothing"), None);
    }
}

//! `GET /consent/callback`: where Microsoft sends the administrator back (ENTRA.md §2).
//!
//! `error` is checked first. A success must carry a state that exists, is unexpired,
//! unused and bound to this browser; it is consumed atomically with recording the tenant
//! as `pending`. The `tenant` parameter is unauthenticated: it becomes a tenant to verify,
//! never a verified one. Anything else is a clear 4xx that writes nothing but an event.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::{page, request_id};
use crate::domain::{RandomToken, TenantId};
use crate::store::{ConsentOutcome, ConsentRejection, EventKind, NewEvent};
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
struct Declined {
    title: &'static str,
    explanation: &'static str,
    microsoft_says: String,
}

/// What an AADSTS code on the callback means for the administrator.
fn explain(code: Option<u32>, error: &str) -> (&'static str, &'static str) {
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
fn aadsts_code(description: &str) -> Option<u32> {
    let rest = description.trim_start().strip_prefix("AADSTS")?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// At most `n` characters of an unauthenticated value, for an event's text.
fn clip(value: &str, n: usize) -> String {
    let clipped: String = value.chars().take(n).filter(|c| !c.is_control()).collect();
    if value.chars().count() > n {
        format!("{clipped}…")
    } else {
        clipped
    }
}

pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let now = OffsetDateTime::now_utc();
    let rid = request_id(&req);
    let params = match parse_query(req.query_string()) {
        Ok(p) => p,
        Err(e) => {
            reject(&state, &rid, None, "the query string is malformed", now).await?;
            return Err(e);
        }
    };
    let consent_state = params.state.as_deref().and_then(RandomToken::parse);
    let binding = req
        .cookie(cookies::BINDING)
        .and_then(|c| RandomToken::parse(c.value()));
    let state_hash = consent_state.as_ref().map(|s| state.keyed.hash("state", s));
    let binding_hash = binding.as_ref().map(|b| state.keyed.hash("binding", b));

    if let Some(error) = params.error.as_deref() {
        let description = params.error_description.as_deref().unwrap_or_default();
        let headline = description
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let code = aadsts_code(description);
        let claimed = params
            .tenant
            .as_deref()
            .map(|t| format!(" (it named tenant {})", clip(t, 64)))
            .unwrap_or_default();
        let event = NewEvent {
            tenant_id: None,
            kind: EventKind::ConsentDeclined,
            detail: format!(
                "Microsoft returned {}: {}{claimed}",
                clip(error, 64),
                clip(&headline, 300)
            ),
            request_id: Some(rid.clone()),
        };
        state
            .store
            .decline_consent(state_hash.as_deref(), binding_hash.as_deref(), &event, now)
            .await?;
        let (title, explanation) = explain(code, error);
        let microsoft_says = if headline.is_empty() {
            clip(error, 64)
        } else {
            clip(&headline, 500)
        };
        return page(
            StatusCode::OK,
            Declined {
                title,
                explanation,
                microsoft_says,
            }
            .render(),
        );
    }

    let tenant_raw = params.tenant.as_deref().unwrap_or_default();
    let failure = match (&params.state, &consent_state, TenantId::parse(tenant_raw)) {
        (None, _, _) => Some((
            "the state is missing",
            "This sign-in response has no state, so we cannot tell which sign-up it belongs to. Start again from the sign-up page.",
        )),
        (Some(_), None, _) => Some((
            "the state is malformed",
            "This sign-in response does not carry a state we issued. Start again from the sign-up page.",
        )),
        (_, _, None) => Some((
            "the tenant is missing or not a GUID",
            "Microsoft's response should name your organisation's tenant ID, and this one does not. Start again from the sign-up page.",
        )),
        _ if !params
            .admin_consent
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            Some((
                "admin_consent is not True",
                "This response does not say that an administrator consented. Start again from the sign-up page.",
            ))
        }
        _ if binding_hash.is_none() => Some((
            "no binding cookie",
            "This sign-up was started in another browser (or your browser dropped our cookie). Finish it in the browser where you started, or start again here.",
        )),
        _ => None,
    };
    if let Some((why, message)) = failure {
        reject(&state, &rid, Some(tenant_raw), why, now).await?;
        return Err(WebError::BadRequest(message.into()));
    }
    let (Some(state_hash), Some(binding_hash), Some(tenant)) =
        (state_hash, binding_hash, TenantId::parse(tenant_raw))
    else {
        return Err(WebError::BadRequest(
            "This sign-in response is incomplete.".into(),
        ));
    };

    match state
        .store
        .complete_consent(&state_hash, &binding_hash, tenant, now, &rid)
        .await?
    {
        ConsentOutcome::Recorded { .. } => {
            state.verifier.wake();
            Ok(HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, "/consent/status"))
                .finish())
        }
        ConsentOutcome::Rejected(why) => {
            reject(&state, &rid, Some(tenant_raw), why.as_str(), now).await?;
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
                }
                .into(),
            ))
        }
    }
}

/// Records a refused callback: the only thing such a request writes.
async fn reject(
    state: &AppState,
    rid: &str,
    tenant: Option<&str>,
    why: &str,
    now: OffsetDateTime,
) -> Result<(), WebError> {
    let claimed = tenant
        .filter(|t| !t.is_empty())
        .map(|t| format!("; it named tenant {}", clip(t, 64)))
        .unwrap_or_default();
    let event = NewEvent {
        tenant_id: None,
        kind: EventKind::CallbackRejected,
        detail: format!("Callback refused: {why}{claimed}."),
        request_id: Some(rid.to_owned()),
    };
    state.store.record_event(&event, now).await?;
    tracing::warn!(reason = why, "consent callback refused");
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

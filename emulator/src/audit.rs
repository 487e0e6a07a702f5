//! The request audit (`GET /_emulator/audit`): the last requests the emulator answered,
//! with who asked (client id, tenant) and, for each refused one, why (the AADSTS code or
//! Graph's code, and a short reason).
//!
//! It never holds a secret or a token: the path is kept without its query, a client id only
//! when it is a GUID, and reasons are fixed texts that never quote the request.

use std::collections::VecDeque;
use std::sync::Mutex;

use actix_web::HttpMessage;
use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use actix_web::web;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::EmulatorState;
use super::clock::rfc3339_seconds;

/// Requests kept; older ones are forgotten.
pub const CAPACITY: usize = 1000;
/// What the audit keeps of a path, a tenant segment or a reason.
const MAX_TEXT: usize = 256;

/// Who a request came from, noted by its handler on the request.
#[derive(Debug, Clone, Default)]
pub struct AuditSubject {
    pub client_id: Option<Uuid>,
    pub tenant: Option<String>,
}

/// Why a request was refused, noted on the response by whoever wrote the error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// `AADSTS7000215`, or Graph's code such as `InvalidAuthenticationToken`; none for the
    /// control API's own errors.
    pub code: Option<String>,
    pub reason: String,
}

impl Refusal {
    /// `reason` must not echo the request: callers pass fixed texts.
    pub fn new(code: Option<String>, reason: &str) -> Refusal {
        Refusal {
            code,
            reason: cut(reason).to_owned(),
        }
    }

    /// An identity-platform refusal: its AADSTS code and the fixed reason for that code.
    /// Microsoft's messages quote the request (a client id that is no GUID, a scope, a
    /// redirect URI), and a client may have pasted a secret there: they are not kept.
    pub fn sts(code: u32) -> Refusal {
        Refusal::new(Some(format!("AADSTS{code}")), sts_reason(code))
    }
}

/// A short reason for each AADSTS code the emulator answers.
fn sts_reason(code: u32) -> &'static str {
    match code {
        50011 => "redirect URI not registered on the app, or not the code's",
        50034 => "sign-in: no such user in the tenant",
        50058 => "prompt=none: no one is signed in",
        50089 => "sign-in flow expired, unknown, or from another browser",
        50148 => "code redeemed without its PKCE verifier",
        50149 => "unsupported code_challenge_method",
        50173 => "grant revoked (user deleted or moved)",
        54005 => "authorization code already redeemed",
        65001 => "consent required (not granted, or revoked)",
        70000 => "code or refresh token of another client",
        70005 | 700051 | 700054 => "response type not enabled",
        70007 => "unsupported response_mode",
        70008 => "authorization code expired",
        90023 => "unsupported prompt",
        90094 => "an administrator's approval is needed",
        501481 => "PKCE verifier does not match the challenge",
        501491 => "code_challenge of the wrong size",
        700005 => "code or refresh token of another tenant",
        700082 => "refresh token expired",
        900971 => "no redirect URI",
        50027 => "client assertion is not a well-formed JWT",
        50048 => "client assertion: sub is not iss",
        50059 => "no tenant in the request (organizations or common)",
        50091 | 90015 => "query string too long",
        65004 => "consent declined (Cancel)",
        70003 => "unsupported grant type",
        70011 => "invalid scope",
        70021 => "no federated credential matches the assertion",
        90002 => "tenant not found",
        90033 => "transient error (injected)",
        500011 => "resource not found in the tenant",
        700016 => "app not found in the directory (not consented, or unknown client id)",
        700021 => "client assertion names another client",
        700022 => "several resources in one scope",
        700023 => "client assertion audience is not this token endpoint",
        700024 => "client assertion outside its validity",
        700027 => "client assertion signature invalid (unknown, expired or wrong key)",
        700038 => "client id is not a GUID",
        900023 => "tenant segment is neither a GUID nor a domain",
        900144 => "a required parameter is missing",
        900561 => "wrong HTTP method",
        5002730 => "client assertion algorithm not supported",
        7000215 => "invalid client secret",
        7000218 => "no client credential",
        9000411 => "a parameter is repeated",
        9002313 => "malformed request",
        _ => "refused (see the code)",
    }
}

/// The first [`MAX_TEXT`] characters of `text`: a slice, so that keeping it costs one copy.
fn cut(text: &str) -> &str {
    // No more bytes than the limit is no more characters either: no need to count them.
    if text.len() <= MAX_TEXT {
        return text;
    }
    match text.char_indices().nth(MAX_TEXT) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Notes the client and tenant of a request for the audit. `client_id` is whatever the
/// client sent: kept only if it is a GUID, so a secret pasted there never reaches the audit.
pub fn note(req: &actix_web::HttpRequest, client_id: Option<&str>, tenant: Option<&str>) {
    let subject = AuditSubject {
        client_id: client_id.and_then(|c| Uuid::try_parse(c.trim()).ok()),
        // Lower-casing ASCII keeps every byte where it was, so the cut stays on a boundary.
        tenant: tenant.map(|t| cut(t).to_ascii_lowercase()),
    };
    req.extensions_mut().insert(subject);
}

/// One request as recorded: kept raw, and formatted only when the audit is read, so that
/// recording costs a push of what the request already allocated (its path, its tenant).
#[derive(Debug, Clone, Serialize)]
struct Entry {
    seq: u64,
    #[serde(serialize_with = "as_rfc3339")]
    at: OffsetDateTime,
    #[serde(serialize_with = "as_str")]
    method: Method,
    path: String,
    status: u16,
    client_id: Option<Uuid>,
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<Refusal>,
}

fn as_rfc3339<S: serde::Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339_seconds(*at))
}

fn as_str<S: serde::Serializer>(method: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(method.as_str())
}

#[derive(Debug, Default)]
struct Log {
    entries: VecDeque<Entry>,
    next_seq: u64,
}

/// The last [`CAPACITY`] requests.
#[derive(Debug, Default)]
pub struct AuditLog {
    log: Mutex<Log>,
}

impl AuditLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        // Nothing panics while holding the lock; if something did, the log is still whole.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request of every worker passes here, so the mutex is held for a push and a
    /// pop only (some 150 instructions): the entry is built before it is taken, and the
    /// entry it evicts is freed after it is released.
    fn push(
        &self,
        at: OffsetDateTime,
        method: Method,
        path: String,
        status: u16,
        subject: AuditSubject,
        refusal: Option<Refusal>,
    ) {
        let mut entry = Entry {
            seq: 0,
            at,
            method,
            path,
            status,
            client_id: subject.client_id,
            tenant: subject.tenant,
            refusal,
        };
        let evicted = {
            let mut log = self.lock();
            let evicted = if log.entries.len() == CAPACITY {
                log.entries.pop_front()
            } else {
                None
            };
            entry.seq = log.next_seq;
            log.next_seq += 1;
            log.entries.push_back(entry);
            evicted
        };
        drop(evicted);
    }

    /// The last `limit` requests, newest first: copied under the mutex every request takes
    /// to record itself, and formatted after it is released.
    pub fn last(&self, limit: usize) -> serde_json::Value {
        let entries: Vec<Entry> = self
            .lock()
            .entries
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect();
        serde_json::to_value(entries).unwrap_or_default()
    }

    pub fn clear(&self) {
        self.lock().entries.clear();
    }
}

/// Records an answered request, unless it read or cleared the audit. Called by the one
/// middleware every request passes (`routes::log_request`), with the method and path it
/// already copied; takes the notes its handler left, which nothing reads after it.
pub fn record<B>(response: &mut ServiceResponse<B>, method: Method, mut path: String) {
    if path == "/_emulator/audit" {
        return;
    }
    let refusal = response.response_mut().extensions_mut().remove::<Refusal>();
    let Some(state) = response.request().app_data::<web::Data<EmulatorState>>() else {
        return;
    };
    let subject = response
        .request()
        .extensions_mut()
        .remove::<AuditSubject>()
        .unwrap_or_default();
    let status = response.status().as_u16();
    path.truncate(cut(&path).len());
    state
        .audit
        .push(state.clock.now(), method, path, status, subject, refusal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_platform_reasons_are_fixed_texts_per_code() {
        let r = Refusal::sts(7000215);
        assert_eq!(r.code.as_deref(), Some("AADSTS7000215"));
        assert_eq!(r.reason, "invalid client secret");
        assert_eq!(Refusal::sts(1).reason, "refused (see the code)");
        assert_eq!(Refusal::new(None, &"x".repeat(1000)).reason.len(), MAX_TEXT);
    }

    #[test]
    fn texts_are_cut_at_a_number_of_characters_not_bytes() {
        let long = "é".repeat(MAX_TEXT + 10);
        assert_eq!(cut(&long).chars().count(), MAX_TEXT);
        assert_eq!(cut("/short"), "/short");
        assert_eq!(cut(&long[..2 * MAX_TEXT]), &long[..2 * MAX_TEXT]);
    }

    #[test]
    fn keeps_the_last_requests_newest_first() {
        let log = AuditLog::default();
        let now = OffsetDateTime::now_utc();
        for n in 0..CAPACITY + 5 {
            log.push(
                now,
                Method::GET,
                format!("/{n}"),
                200,
                AuditSubject::default(),
                None,
            );
        }
        let last = log.last(2);
        assert_eq!(last[0]["path"], format!("/{}", CAPACITY + 4));
        assert_eq!(last[1]["seq"], CAPACITY as u64 + 3);
        assert_eq!(log.last(usize::MAX).as_array().unwrap().len(), CAPACITY);
    }
}

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
    pub tenant: Option<NotedTenant>,
}

/// The tenant a request named, in lower case. Nearly always a GUID, kept as one: what the
/// audit holds for a thousand requests then owns no memory of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotedTenant {
    Guid(Uuid),
    /// An alias, a domain, or what a client invented: at most [`MAX_TEXT`] characters.
    Text(String),
}

impl NotedTenant {
    fn new(tenant: &str) -> NotedTenant {
        // Only the hyphenated form is 36 characters long, and it prints back as the
        // lower-cased text it was parsed from.
        match Uuid::try_parse(tenant) {
            Ok(id) if tenant.len() == 36 => NotedTenant::Guid(id),
            // Lower-casing ASCII keeps every byte where it was, so the cut stays on a
            // character boundary.
            _ => NotedTenant::Text(cut(tenant).to_ascii_lowercase()),
        }
    }
}

impl Serialize for NotedTenant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NotedTenant::Guid(id) => {
                s.serialize_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
            }
            NotedTenant::Text(text) => s.serialize_str(text),
        }
    }
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
        tenant: tenant.map(NotedTenant::new),
    };
    req.extensions_mut().insert(subject);
}

/// One request as recorded: kept raw, and formatted only when the audit is read.
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
    tenant: Option<NotedTenant>,
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

    /// Every request of every worker passes here. Once the log is full, an entry takes
    /// the place and the path's buffer of the one it evicts, so recording allocates nothing
    /// that outlives the request: the heap does not fill with a thousand requests' strings
    /// freed in another order than the request's own. The mutex is held for that copy of
    /// at most [`MAX_TEXT`] bytes and a push.
    fn push(
        &self,
        at: OffsetDateTime,
        method: Method,
        path: &str,
        status: u16,
        subject: AuditSubject,
        refusal: Option<Refusal>,
    ) {
        let path = cut(path);
        let mut log = self.lock();
        let seq = log.next_seq;
        log.next_seq += 1;
        let mut entry = Entry {
            seq,
            at,
            method,
            path: String::new(),
            status,
            client_id: subject.client_id,
            tenant: subject.tenant,
            refusal,
        };
        if log.entries.len() == CAPACITY
            && let Some(evicted) = log.entries.pop_front()
        {
            entry.path = evicted.path;
            entry.path.clear();
        }
        entry.path.push_str(path);
        log.entries.push_back(entry);
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
/// middleware every request passes (`routes::log_request`); takes the notes its handler
/// left, which nothing reads after it.
pub fn record<B>(response: &mut ServiceResponse<B>) {
    if response.request().path() == "/_emulator/audit" {
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
    let request = response.request();
    state.audit.push(
        state.clock.now(),
        request.method().clone(),
        request.path(),
        status,
        subject,
        refusal,
    );
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
    fn tenants_are_kept_in_lower_case_as_they_were_named() {
        let guid = "5B0E1D0A-3F2C-4E8A-9C51-2D7F1B6A9E30";
        let simple = "5b0e1d0a3f2c4e8a9c512d7f1b6a9e30";
        for (named, kept) in [
            (guid, guid.to_ascii_lowercase()),
            (simple, simple.to_owned()),
            (
                "Contoso.onmicrosoft.com",
                "contoso.onmicrosoft.com".to_owned(),
            ),
        ] {
            let noted = NotedTenant::new(named);
            assert_eq!(serde_json::to_value(&noted).unwrap(), kept, "{named}");
        }
        assert!(matches!(NotedTenant::new(guid), NotedTenant::Guid(_)));
        let long = NotedTenant::new(&"A".repeat(MAX_TEXT + 1));
        assert_eq!(long, NotedTenant::Text("a".repeat(MAX_TEXT)));
    }

    #[test]
    fn a_full_log_records_each_path_whole_in_place_of_the_oldest() {
        let log = AuditLog::default();
        let now = OffsetDateTime::now_utc();
        let long = format!("/{}", "p".repeat(MAX_TEXT * 2));
        for path in ["/a"; CAPACITY]
            .iter()
            .copied()
            .chain([long.as_str(), "/b"])
        {
            log.push(now, Method::GET, path, 200, AuditSubject::default(), None);
        }
        let last = log.last(2);
        assert_eq!(last[0]["path"], "/b");
        assert_eq!(last[1]["path"], cut(&long));
        assert_eq!(last[1]["path"].as_str().unwrap().len(), MAX_TEXT);
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
                &format!("/{n}"),
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

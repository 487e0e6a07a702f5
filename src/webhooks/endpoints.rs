//! What the dashboard and the API both ask of a webhook endpoint before anything is written:
//! a URL deliveries may go to, a short description, a choice of event types, and a fresh
//! secret shown once.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::client::{DeliveryError, check_url_resolving};
use super::signature::WebhookSecret;
use crate::domain::webhook::{EventFilter, EventType};
use crate::domain::{Keyed, RandomToken};

/// Longest URL accepted: what browsers and most servers take in a request line.
pub const MAX_URL_CHARS: usize = 2048;

/// Longest description, in characters: a label, not a document.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// After a rotation the previous secret stays valid this long: deliveries are signed with
/// both, so receivers can switch to the new one without losing any.
pub const SECRET_OVERLAP: time::Duration = time::Duration::hours(24);

/// How long the address check may wait for the host name to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a URL is not one deliveries may go to. The words are shown to the operator; none
/// quotes the URL (its query may hold the receiver's own token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("url is empty")]
    Empty,
    #[error("url is longer than {MAX_URL_CHARS} characters")]
    TooLong,
    #[error("url is not an absolute URL (such as https://hooks.example.com/consentry)")]
    Malformed,
    #[error(
        "url carries a user name or password: receivers authenticate deliveries by their signature"
    )]
    Credentials,
    #[error("url has a fragment (#...), which is never sent to a server")]
    Fragment,
    /// Scheme, no host, a non-public address, or a name that does not resolve.
    #[error("{0}")]
    Delivery(DeliveryError),
    #[error("url's host name did not resolve within {} s", RESOLVE_TIMEOUT.as_secs())]
    ResolveTimeout,
}

/// Parses and checks an endpoint URL: http(s), no credentials, no fragment, at most
/// [`MAX_URL_CHARS`], and (unless `allow_private`) a host whose every address is public,
/// as the delivery client would judge it now.
pub async fn vet_url(raw: &str, allow_private: bool) -> Result<Url, UrlRefusal> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlRefusal::Empty);
    }
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(UrlRefusal::TooLong);
    }
    let url = Url::parse(raw).map_err(|_| UrlRefusal::Malformed)?;
    if url.as_str().len() > MAX_URL_CHARS {
        return Err(UrlRefusal::TooLong);
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefusal::Delivery(DeliveryError::UnsupportedScheme(
            url.scheme().to_owned(),
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    if url.fragment().is_some() {
        return Err(UrlRefusal::Fragment);
    }
    match tokio::time::timeout(RESOLVE_TIMEOUT, check_url_resolving(&url, allow_private)).await {
        Ok(Ok(())) => Ok(url),
        Ok(Err(e)) => Err(UrlRefusal::Delivery(e)),
        Err(_) => Err(UrlRefusal::ResolveTimeout),
    }
}

/// A description: trimmed, at most [`MAX_DESCRIPTION_CHARS`] characters, no control
/// characters but none at all is fine.
pub fn parse_description(raw: &str) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description is longer than {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("description contains control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// Event type names as given; an unknown one is the error, named.
pub fn parse_event_types(names: &[String]) -> Result<EventFilter, String> {
    if names.is_empty() {
        return Err(
            "event_types names no type: give at least one, or null for every type".to_owned(),
        );
    }
    EventFilter::parse(names.iter().map(String::as_str)).map_err(|unknown| {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        format!(
            "event_types: there is no event type '{unknown}' (known: {})",
            known.join(", ")
        )
    })
}

/// A fresh secret: the random salt the store keeps, and the `whsec_` secret it becomes under
/// the session key, to show once.
pub struct NewSecret {
    pub salt: String,
    pub secret: SecretString,
}

impl NewSecret {
    pub fn generate(keyed: &Keyed) -> NewSecret {
        let salt = RandomToken::generate().expose().to_owned();
        let secret = WebhookSecret::derive(keyed, &salt).expose_encoded();
        NewSecret { salt, secret }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_are_refused_with_a_reason() {
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        type Expect = fn(&UrlRefusal) -> bool;
        let cases: &[(&str, bool, Expect)] = &[
            ("", true, |e| *e == UrlRefusal::Empty),
            ("   ", true, |e| *e == UrlRefusal::Empty),
            (&long, true, |e| *e == UrlRefusal::TooLong),
            ("hooks.example.com/x", true, |e| *e == UrlRefusal::Malformed),
            (
                "ftp://hooks.example.com/x",
                true,
                |e| matches!(e, UrlRefusal::Delivery(DeliveryError::UnsupportedScheme(s)) if s == "ftp"),
            ),
            ("https://user:pw@hooks.example.com/x", true, |e| {
                *e == UrlRefusal::Credentials
            }),
            ("https://hooks.example.com/x#frag", true, |e| {
                *e == UrlRefusal::Fragment
            }),
            ("http://127.0.0.1:9/x", false, |e| {
                matches!(e, UrlRefusal::Delivery(DeliveryError::NotPublic { .. }))
            }),
            ("http://[fe80::1]/x", false, |e| {
                matches!(e, UrlRefusal::Delivery(DeliveryError::NotPublic { .. }))
            }),
            ("http://10.1.2.3/x", false, |e| {
                matches!(e, UrlRefusal::Delivery(DeliveryError::NotPublic { .. }))
            }),
            // A name is judged by what it resolves to.
            ("http://localhost:9/x", false, |e| {
                matches!(e, UrlRefusal::Delivery(DeliveryError::NotPublic { .. }))
            }),
        ];
        for (raw, allow_private, expected) in cases {
            let refused = vet_url(raw, *allow_private).await.expect_err(raw);
            assert!(expected(&refused), "{raw}: {refused:?}");
        }
        assert!(vet_url("http://127.0.0.1:9/x", true).await.is_ok());
        assert!(vet_url("http://localhost:9/x", true).await.is_ok());
        assert!(vet_url("https://8.8.8.8/hook?token=x", false).await.is_ok());
    }

    #[test]
    fn descriptions_and_types_are_checked() {
        assert_eq!(parse_description("  billing  ").as_deref(), Ok("billing"));
        assert!(parse_description(&"x".repeat(MAX_DESCRIPTION_CHARS + 1)).is_err());
        assert!(parse_description("a\nb").is_err());
        assert!(parse_event_types(&[]).is_err());
        let unknown = parse_event_types(&["tenant.connected".into(), "tenant.nope".into()])
            .expect_err("unknown");
        assert!(unknown.contains("'tenant.nope'"), "{unknown}");
        assert_eq!(
            parse_event_types(&["tenant.connected".into()]).map(|f| f.to_column()),
            Ok("tenant.connected".to_owned())
        );
    }

    #[test]
    fn a_new_secret_is_what_its_salt_derives() {
        use secrecy::ExposeSecret;
        let keyed = Keyed::new(&[3; 32]);

        let fresh = NewSecret::generate(&keyed);

        assert!(fresh.secret.expose_secret().starts_with("whsec_"));
        assert_eq!(
            WebhookSecret::derive(&keyed, &fresh.salt)
                .expose_encoded()
                .expose_secret(),
            fresh.secret.expose_secret()
        );
        assert_ne!(NewSecret::generate(&keyed).salt, fresh.salt);
    }
}

//! The outbound client for webhook deliveries, after vaultwarden's `http_client.rs`: one
//! shared client with a timeout per attempt, a User-Agent, redirects off and no proxy, that
//! connects only to addresses it has checked.
//!
//! The guard sits where the addresses are chosen, not in front of them: a name is resolved
//! by `GuardedResolver`, which refuses it if any of its addresses is not public, and the
//! connection is made to exactly the addresses it returned. A name that resolves to a public
//! address when checked and to `127.0.0.1` a second later (DNS rebinding) therefore cannot
//! slip through, because there is no second lookup. A URL whose host is an IP literal is
//! never resolved, so [`DeliveryClient::deliver`] checks that address itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use url::{Host, Url};

/// Standard Webhooks asks for 15 to 30 s per attempt; a receiver that needs longer should
/// queue the work and answer first. The default of `CONSENTRY_WEBHOOK_TIMEOUT`.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// A `Retry-After` longer than the longest step of the retry schedule (10 hours) is read
/// as that step: one receiver's header cannot park a delivery for weeks.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10 * 3600);

/// Why an address is not one deliveries go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonPublic {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 (RFC 1918), fc00::/7 (RFC 4193), and the
    /// deprecated site-local fec0::/10.
    Private,
    /// 169.254.0.0/16 (where cloud metadata services answer), fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedAddressSpace,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (RFC 5737), 2001:db8::/32 (RFC 3849).
    Documentation,
    /// 192.0.0.0/24 (RFC 6890), 198.18.0.0/15 (benchmarking), 240.0.0.0/4 (future use).
    Reserved,
}

impl std::fmt::Display for NonPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NonPublic::Loopback => "loopback",
            NonPublic::Private => "private",
            NonPublic::LinkLocal => "link-local",
            NonPublic::Unspecified => "unspecified",
            NonPublic::Multicast => "multicast",
            NonPublic::Broadcast => "broadcast",
            NonPublic::SharedAddressSpace => "shared (carrier-grade NAT)",
            NonPublic::Documentation => "documentation",
            NonPublic::Reserved => "reserved",
        })
    }
}

/// `None` for an address deliveries may go to, else the kind of address it is. An IPv6
/// address that carries an IPv4 one (mapped `::ffff:a.b.c.d`, the deprecated compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is judged by the IPv4 address it reaches.
pub fn classify(ip: IpAddr) -> Option<NonPublic> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<NonPublic> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => NonPublic::Unspecified,
        (127, _, _) => NonPublic::Loopback,
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => NonPublic::Private,
        (169, 254, _) => NonPublic::LinkLocal,
        (100, 64..=127, _) => NonPublic::SharedAddressSpace,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => NonPublic::Documentation,
        (192, 0, 0) | (198, 18..=19, _) => NonPublic::Reserved,
        (224..=239, _, _) => NonPublic::Multicast,
        _ if ip.is_broadcast() => NonPublic::Broadcast,
        (240..=255, _, _) => NonPublic::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<NonPublic> {
    if ip.is_unspecified() {
        return Some(NonPublic::Unspecified);
    }
    if ip.is_loopback() {
        return Some(NonPublic::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = || {
        let o = ip.octets();
        Ipv4Addr::new(o[12], o[13], o[14], o[15])
    };
    match s {
        // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::a.b.c.d (NAT64, RFC 6052).
        [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => classify_v4(embedded()),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some(NonPublic::Private),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some(NonPublic::LinkLocal),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some(NonPublic::Private),
        [first, ..] if first & 0xff00 == 0xff00 => Some(NonPublic::Multicast),
        [0x2001, 0x0db8, ..] => Some(NonPublic::Documentation),
        _ => None,
    }
}

/// The resolver behind [`DeliveryClient`]: the system's lookup, then every address
/// checked; a name with any non-public address is refused as a whole.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_private: bool,
}

/// A name resolved to an address deliveries may not go to. Found again in the error
/// chain of the failed request.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("resolves to {addr}, a {kind} address")]
struct Refused {
    addr: IpAddr,
    kind: NonPublic,
}

/// The name did not resolve (or resolved to nothing).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the host name did not resolve")]
struct Unresolved;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            match guarded_lookup(&host, allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(DeliveryError::NotPublic { addr, kind }) => Err(Refused { addr, kind }.into()),
                Err(_) => Err(Unresolved.into()),
            }
        })
    }
}

/// The system's lookup of `host`, every address checked unless `allow_private`: a name
/// with any non-public address is refused as a whole. Errors are `NotPublic` or
/// `Unresolved`.
async fn guarded_lookup(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, DeliveryError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| DeliveryError::Unresolved)?
        .collect();
    if addrs.is_empty() {
        return Err(DeliveryError::Unresolved);
    }
    if !allow_private {
        for addr in &addrs {
            if let Some(kind) = classify(addr.ip()) {
                return Err(DeliveryError::NotPublic {
                    addr: addr.ip(),
                    kind,
                });
            }
        }
    }
    Ok(addrs)
}

/// Checks a URL the way a delivery to it would be checked, without sending anything:
/// scheme, host, and every address its host name resolves to now (unless `allow_private`).
/// For refusing an endpoint when it is created or changed; each delivery checks again, on
/// the addresses it connects to, since a name may resolve elsewhere later.
pub async fn check_url_resolving(url: &Url, allow_private: bool) -> Result<(), DeliveryError> {
    check_url_with(url, allow_private)?;
    if let (false, Some(Host::Domain(name))) = (allow_private, url.host()) {
        guarded_lookup(name, allow_private).await?;
    }
    Ok(())
}

/// Scheme, host, and (for an IP literal) the address; a host name is not resolved.
fn check_url_with(url: &Url, allow_private: bool) -> Result<(), DeliveryError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DeliveryError::UnsupportedScheme(url.scheme().to_owned()));
    }
    let literal = match url.host() {
        None => return Err(DeliveryError::NoHost),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(addr) = literal
        && !allow_private
        && let Some(kind) = classify(addr)
    {
        return Err(DeliveryError::NotPublic { addr, kind });
    }
    Ok(())
}

/// What a receiver answered. Only a 2xx is a delivery: a 3xx is a failure (never
/// followed), as are 4xx and 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub status: u16,
    /// `Retry-After` in seconds, capped at [`MAX_RETRY_AFTER`]; HTTP dates are ignored.
    pub retry_after: Option<Duration>,
    /// From sending the request to receiving the response's headers.
    pub elapsed: Duration,
}

impl DeliveryOutcome {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `410 Gone`: the receiver asks for the endpoint to be disabled.
    pub fn is_gone(&self) -> bool {
        self.status == 410
    }
}

/// Why nothing was delivered. Carries neither the body, the signing secret, nor the URL
/// (whose query may hold the receiver's own token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("webhook URLs are http or https, not {0}")]
    UnsupportedScheme(String),
    #[error("the webhook URL has no host")]
    NoHost,
    #[error("the webhook URL is not a URL")]
    InvalidUrl,
    /// The host is, or resolves to, an address that is not public. The address is named
    /// (as vaultwarden names it): it is what the operator needs to see the mistake.
    #[error(
        "the webhook URL leads to {addr}, a {kind} address; deliveries there need CONSENTRY_WEBHOOK_ALLOW_PRIVATE=true"
    )]
    NotPublic { addr: IpAddr, kind: NonPublic },
    #[error("the webhook URL's host name did not resolve")]
    Unresolved,
    #[error("no answer within {}s", elapsed.as_secs())]
    TimedOut { elapsed: Duration },
    #[error("the connection to the receiver failed")]
    Connect { elapsed: Duration },
    #[error("the request to the receiver failed")]
    Transport { elapsed: Duration },
}

/// The one client that sends webhook deliveries.
#[derive(Debug, Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    allow_private: bool,
}

impl DeliveryClient {
    /// `allow_private` lifts the address guard (`CONSENTRY_WEBHOOK_ALLOW_PRIVATE`: the demo
    /// and tests deliver to receivers on this machine).
    pub fn new(allow_private: bool) -> anyhow::Result<DeliveryClient> {
        DeliveryClient::with_timeout(allow_private, ATTEMPT_TIMEOUT)
    }

    /// As [`DeliveryClient::new`], giving each attempt `timeout` (`CONSENTRY_WEBHOOK_TIMEOUT`)
    /// from sending the request to the response's headers.
    pub fn with_timeout(allow_private: bool, timeout: Duration) -> anyhow::Result<DeliveryClient> {
        // As in `EntraClient::new`: reqwest has no default TLS provider; ring is the
        // process's. Idempotent.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            // A proxy would resolve and connect on our behalf, past the guard.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("consentry-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(DeliveryClient {
            http,
            allow_private,
        })
    }

    /// Checks a URL without sending anything: scheme, host, and (for an IP literal) the
    /// address. A host name is only checked when a delivery resolves it.
    pub fn check_url(&self, url: &Url) -> Result<(), DeliveryError> {
        check_url_with(url, self.allow_private)
    }

    /// One attempt: POSTs `body` with `headers` (JSON unless they say otherwise) and
    /// reports the answer. The response body is not read.
    pub async fn deliver(
        &self,
        url: &Url,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<DeliveryOutcome, DeliveryError> {
        self.check_url(url)?;
        let mut headers = headers;
        if !headers.contains_key(CONTENT_TYPE) {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let started = Instant::now();
        let sent = self
            .http
            .post(url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let elapsed = started.elapsed();
        match sent {
            Ok(response) => Ok(DeliveryOutcome {
                status: response.status().as_u16(),
                retry_after: retry_after(response.headers()),
                elapsed,
            }),
            Err(e) => Err(transport_error(&e, elapsed)),
        }
    }
}

/// The refusal or lookup failure our resolver raised, found in the request error's chain;
/// otherwise the kind of transport failure, in words that hold no URL.
fn transport_error(e: &reqwest::Error, elapsed: Duration) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return DeliveryError::NotPublic {
                addr: refused.addr,
                kind: refused.kind,
            };
        }
        if cause.downcast_ref::<Unresolved>().is_some() {
            return DeliveryError::Unresolved;
        }
        source = cause.source();
    }
    if e.is_timeout() {
        DeliveryError::TimedOut { elapsed }
    } else if e.is_connect() {
        DeliveryError::Connect { elapsed }
    } else {
        DeliveryError::Transport { elapsed }
    }
}

/// `Retry-After` in seconds, capped at [`MAX_RETRY_AFTER`] however many digits it has.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = raw.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_each_range_and_its_edges() {
        use NonPublic::*;
        let cases: &[(&str, Option<NonPublic>)] = &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.255.255.255", Some(Unspecified)),
            ("1.0.0.0", None),
            ("9.255.255.255", None),
            ("10.0.0.0", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.64.0.0", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("100.128.0.0", None),
            ("126.255.255.255", None),
            ("127.0.0.0", Some(Loopback)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.255", Some(Loopback)),
            ("128.0.0.0", None),
            ("169.253.255.255", None),
            ("169.254.0.0", Some(LinkLocal)),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.255.255", Some(LinkLocal)),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.0", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("192.0.0.0", Some(Reserved)),
            ("192.0.1.255", None),
            ("192.0.2.0", Some(Documentation)),
            ("192.0.2.255", Some(Documentation)),
            ("192.0.3.0", None),
            ("192.167.255.255", None),
            ("192.168.0.0", Some(Private)),
            ("192.168.255.255", Some(Private)),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.18.0.0", Some(Reserved)),
            ("198.19.255.255", Some(Reserved)),
            ("198.20.0.0", None),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.255", Some(Documentation)),
            ("203.0.114.0", None),
            ("223.255.255.255", None),
            ("224.0.0.0", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("240.0.0.0", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            // ::/96 is the deprecated IPv4-compatible block: ::2 is 0.0.0.2.
            ("::2", Some(Unspecified)),
            ("::1:0:0", None),
            ("2606:4700::1111", None),
            ("fbff:ffff::", None),
            ("fc00::", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Private)),
            ("fe00::", None),
            ("fe7f:ffff::", None),
            ("fe80::", Some(LinkLocal)),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff00::", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("2001:db9::1", None),
            // IPv4 inside IPv6: judged by the IPv4 address.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:100.64.0.1", Some(SharedAddressSpace)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::192.168.1.1", Some(Private)),
            ("64:ff9b::10.0.0.1", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
        ];
        for (text, expected) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(classify(ip), *expected, "{text}");
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_capped_at_ten_hours() {
        let header = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            h
        };
        assert_eq!(retry_after(&header("0")), Some(Duration::ZERO));
        assert_eq!(
            retry_after(&header(" 120 ")),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&header("36001")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(&header("99999999999999999999999999")),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&header("-5")), None);
        assert_eq!(retry_after(&header("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let guarded = DeliveryClient::new(false).unwrap();
        let open = DeliveryClient::new(true).unwrap();
        let url = |s: &str| Url::parse(s).unwrap();

        assert_eq!(
            guarded.check_url(&url("ftp://example.com/hook")),
            Err(DeliveryError::UnsupportedScheme("ftp".into()))
        );
        assert!(matches!(
            guarded.check_url(&url("http://[::ffff:7f00:1]:8080/")),
            Err(DeliveryError::NotPublic {
                kind: NonPublic::Loopback,
                ..
            })
        ));
        // The url crate reads this decimal form as 127.0.0.1, as browsers do.
        assert!(matches!(
            guarded.check_url(&url("http://2130706433/")),
            Err(DeliveryError::NotPublic {
                kind: NonPublic::Loopback,
                ..
            })
        ));
        assert_eq!(
            guarded.check_url(&url("https://hooks.example.com/x")),
            Ok(())
        );
        assert_eq!(guarded.check_url(&url("https://8.8.8.8/x")), Ok(()));
        assert_eq!(open.check_url(&url("http://127.0.0.1:9/x")), Ok(()));
        assert!(open.check_url(&url("file:///etc/passwd")).is_err());
    }
}

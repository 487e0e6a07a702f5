//! Malformed and hostile HTTP requests for every route of consentry and of its emulator,
//! generated from a seed and sent on raw TCP sockets (so that any byte can be sent: bad
//! percent-encoding, non-UTF-8, NUL, CR and LF, broken request lines and headers), and the
//! checks every answer must pass:
//!
//! - no 5xx, except a 503 that carries `Retry-After` (the documented "busy, try again");
//! - no injected markup reflected unescaped in a `text/html` answer;
//! - no header injected through a CR/LF in an input;
//! - afterwards, both servers still answer (`/health` 200).
//!
//! Shared by `examples/fuzz/main.rs` (`cargo run --release --example fuzz`) and the
//! integration test `tests/api/fuzz.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one exchange may take before it counts as "no answer".
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Markup injected into inputs. Any of these appearing verbatim in an HTML answer means
/// an input was reflected without escaping.
const MARKERS: &[&str] = &[
    "<script>fz1</script>",
    "\"><img src=x onerror=fz2>",
    "'><svg onload=fz3>",
    "</textarea><b>fz4</b>",
];
/// What the checks look for (the active part of each marker).
const MARKER_NEEDLES: &[&str] = &[
    "<script>fz1",
    "<img src=x onerror=fz2",
    "<svg onload=fz3",
    "<b>fz4",
];
/// A header a CR/LF in an input tries to add to the answer.
const INJECTED_HEADER: &str = "x-fuzz-injected";

/// The emulator's seeded Contoso (consented by [`prepare`], so Graph calls get far).
const CONTOSO: &str = "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58";
const FABRIKAM: &str = "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6";

/// splitmix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Which server a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    App,
    Emulator,
}

/// What the generator knows of the running servers, so that some hostile requests carry
/// valid cookies, tokens and states and reach the code behind the checks.
#[derive(Debug, Clone)]
pub struct Context {
    pub app: SocketAddr,
    pub emulator: SocketAddr,
    /// A double-submit token: sent as the `consentry_form` cookie and the `csrf` field.
    pub form_token: String,
    /// An operator's session cookie and the CSRF token of the dashboard's forms.
    pub session: String,
    pub session_csrf: String,
    /// Binding cookies and their states from real sign-ups.
    pub bindings: Vec<(String, String)>,
    /// An access token the emulator issued for Contoso.
    pub access_token: String,
    pub client_id: String,
    pub client_secret: String,
}

/// One generated request: the exact bytes to send, where, and from which loopback address.
#[derive(Debug, Clone)]
pub struct Case {
    pub index: usize,
    pub route: &'static str,
    pub side: Side,
    pub source: Option<Ipv4Addr>,
    pub bytes: Vec<u8>,
}

/// What came back.
#[derive(Debug, Clone)]
pub enum Answer {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The server closed the connection without answering (fine for garbage).
    Closed,
    /// No answer within [`EXCHANGE_TIMEOUT`].
    TimedOut,
    /// Could not connect or send.
    Failed(String),
}

/// A check that failed, with what reproduces it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub index: usize,
    pub route: &'static str,
    pub side: Side,
    pub what: String,
    pub request: String,
}

/// Figures of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub requests: usize,
    /// Per route, the answers it got ("200", "closed", ...).
    pub per_route: BTreeMap<&'static str, BTreeMap<String, usize>>,
    /// "200", "404", ..., "closed", "timed out", "failed".
    pub statuses: BTreeMap<String, usize>,
    pub documented_503: usize,
    /// Panics on the servers' worker threads during the run (the connection is dropped).
    pub panics: Vec<String>,
    pub violations: Vec<Violation>,
    pub app_health_after: Option<u16>,
    pub emulator_alive_after: Option<u16>,
}

impl Report {
    /// Every violation, plus the servers not answering afterwards.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .violations
            .iter()
            .map(|v| {
                format!(
                    "#{} {} ({:?}): {}\n    request: {}",
                    v.index, v.route, v.side, v.what, v.request
                )
            })
            .collect();
        for panic in &self.panics {
            out.push(format!("a server thread panicked: {panic}"));
        }
        if self.app_health_after != Some(200) {
            out.push(format!(
                "consentry's /health afterwards: {:?}",
                self.app_health_after
            ));
        }
        if self.emulator_alive_after != Some(200) {
            out.push(format!(
                "the emulator's /_emulator/ afterwards: {:?}",
                self.emulator_alive_after
            ));
        }
        out
    }

    pub fn print(&self) {
        println!("requests sent: {}", self.requests);
        println!("\nrequests per route:");
        for (route, answers) in &self.per_route {
            let total: usize = answers.values().sum();
            let answers: Vec<String> = answers.iter().map(|(a, n)| format!("{a}:{n}")).collect();
            println!("  {total:>7}  {route:<40} {}", answers.join(" "));
        }
        println!("\nanswers:");
        for (status, n) in &self.statuses {
            println!("  {n:>7}  {status}");
        }
        println!("panics on server threads: {}", self.panics.len());
        println!(
            "\n503 with Retry-After (documented): {}",
            self.documented_503
        );
        println!(
            "consentry /health afterwards: {}",
            self.app_health_after
                .map_or("no answer".to_owned(), |s| s.to_string())
        );
        println!(
            "emulator afterwards: {}",
            self.emulator_alive_after
                .map_or("no answer".to_owned(), |s| s.to_string())
        );
        let failures = self.failures();
        println!("\nviolations: {}", failures.len());
        for f in failures.iter().take(50) {
            println!("  {f}");
        }
        if failures.len() > 50 {
            println!("  ... and {} more", failures.len() - 50);
        }
    }
}

// ----------------------------------------------------------------------------------------
// Raw HTTP/1.1 over TCP.

/// Sends `bytes` from `source` (a loopback address, so rate limits per address can be
/// spread) and reads the answer until the server closes.
pub async fn exchange(to: SocketAddr, source: Option<Ipv4Addr>, bytes: &[u8]) -> Answer {
    match tokio::time::timeout(EXCHANGE_TIMEOUT, exchange_inner(to, source, bytes)).await {
        Ok(answer) => answer,
        Err(_) => Answer::TimedOut,
    }
}

async fn exchange_inner(to: SocketAddr, source: Option<Ipv4Addr>, bytes: &[u8]) -> Answer {
    let socket = match tokio::net::TcpSocket::new_v4() {
        Ok(s) => s,
        Err(e) => return Answer::Failed(format!("socket: {e}")),
    };
    if let Some(ip) = source
        && let Err(e) = socket.bind(SocketAddr::new(IpAddr::V4(ip), 0))
    {
        return Answer::Failed(format!("bind {ip}: {e}"));
    }
    let mut stream = match socket.connect(to).await {
        Ok(s) => s,
        Err(e) => return Answer::Failed(format!("connect: {e}")),
    };
    // The server may answer (413, 400) and close before reading everything: a failed
    // write is not the end, what it answered is still to be read.
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut received = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    parse_response(&received).unwrap_or(Answer::Closed)
}

fn parse_response(mut raw: &[u8]) -> Option<Answer> {
    let mut end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    // Skip interim answers (100 Continue) to the final one.
    while raw.starts_with(b"HTTP/1.1 1") {
        raw = &raw[end + 4..];
        end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    }
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Some(Answer::Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..eol]);
        let Ok(size) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or_default();
    }
    out
}

/// A well-formed request, for setting up and for the checks afterwards.
fn plain_request(
    method: &str,
    path: &str,
    host: SocketAddr,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    match answer {
        Answer::Response { headers, .. } => headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str()),
        _ => None,
    }
}

fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    let Answer::Response { headers, .. } = answer else {
        return None;
    };
    headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .find_map(|(_, v)| {
            let pair = v.split(';').next()?;
            let (n, value) = pair.split_once('=')?;
            (n == name && !value.is_empty()).then(|| value.to_owned())
        })
}

fn status(answer: &Answer) -> Option<u16> {
    match answer {
        Answer::Response { status, .. } => Some(*status),
        _ => None,
    }
}

fn body_text(answer: &Answer) -> String {
    match answer {
        Answer::Response { body, .. } => String::from_utf8_lossy(body).into_owned(),
        _ => String::new(),
    }
}

fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().copied())
        .finish()
}

/// 43 base64url characters, shaped like consentry's random tokens.
fn token_like(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..43).map(|_| ALPHABET[rng.below(64)] as char).collect()
}

// ----------------------------------------------------------------------------------------
// Setting up: real cookies, a session and a token, through the front door.

/// Signs in as `operator`, signs up a few times, and gets an access token for Contoso
/// (consenting it on the emulator first), so that hostile requests can carry valid
/// credentials. Panics with what failed: the servers must allow the normal flow.
pub async fn prepare(
    app: SocketAddr,
    emulator: SocketAddr,
    operator: (&str, &str),
    client: (&str, &str),
    seed: u64,
) -> Context {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let form_token = token_like(&mut rng);
    let form_cookie = format!("consentry_form={form_token}");

    // Operator session.
    let login = plain_request(
        "POST",
        "/admin/login",
        app,
        &[
            ("Cookie", &form_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form(&[
            ("csrf", &form_token),
            ("name", operator.0),
            ("password", operator.1),
        ])
        .as_bytes(),
    );
    let answer = exchange(app, None, &login).await;
    assert_eq!(
        status(&answer),
        Some(303),
        "the operator signs in: {answer:?}"
    );
    let session = set_cookie(&answer, "consentry_session").expect("a session cookie");
    let dashboard = plain_request(
        "GET",
        "/admin",
        app,
        &[("Cookie", &format!("consentry_session={session}"))],
        b"",
    );
    let answer = exchange(app, None, &dashboard).await;
    assert_eq!(status(&answer), Some(200), "the dashboard: {answer:?}");
    let session_csrf = hidden_field(&body_text(&answer), "csrf").expect("the dashboard's csrf");

    // A few sign-ups, each from its own address (sign-ups are rate-limited per address).
    let mut bindings = Vec::new();
    for i in 0..4u8 {
        let signup = plain_request(
            "POST",
            "/signup",
            app,
            &[
                ("Cookie", &form_cookie),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form(&[("csrf", &form_token)]).as_bytes(),
        );
        let answer = exchange(app, Some(Ipv4Addr::new(127, 0, 9, 1 + i)), &signup).await;
        assert_eq!(status(&answer), Some(303), "a sign-up: {answer:?}");
        let binding = set_cookie(&answer, "consentry_binding").expect("a binding cookie");
        let location = header(&answer, "location").expect("a Location").to_owned();
        let state = url::Url::parse(&location)
            .expect("an absolute Location")
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("a state");
        bindings.push((binding, state));
    }

    // Contoso consents, and the app gets a token for it.
    let consent = plain_request(
        "POST",
        &format!("/_emulator/tenants/{CONTOSO}/consent"),
        emulator,
        &[],
        b"",
    );
    let answer = exchange(emulator, None, &consent).await;
    assert_eq!(
        status(&answer),
        Some(200),
        "consent on the emulator: {answer:?}"
    );
    let token = plain_request(
        "POST",
        &format!("/{CONTOSO}/oauth2/v2.0/token"),
        emulator,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client.0),
            ("client_secret", client.1),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .as_bytes(),
    );
    let answer = exchange(emulator, None, &token).await;
    assert_eq!(status(&answer), Some(200), "a token: {answer:?}");
    let json: serde_json::Value = serde_json::from_slice(match &answer {
        Answer::Response { body, .. } => body,
        _ => &[],
    })
    .expect("token JSON");
    let access_token = json["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned();

    Context {
        app,
        emulator,
        form_token,
        session,
        session_csrf,
        bindings,
        access_token,
        client_id: client.0.to_owned(),
        client_secret: client.1.to_owned(),
    }
}

// ----------------------------------------------------------------------------------------
// The generator.

/// Hostile values, as raw bytes (some are not UTF-8).
fn hostile_value(rng: &mut Rng, ctx: &Context) -> Vec<u8> {
    let choice = rng.below(34);
    let v: Vec<u8> = match choice {
        0..=3 => MARKERS[choice].as_bytes().to_vec(),
        4 => b"%".to_vec(),
        5 => b"%zz%4".to_vec(),
        6 => b"%00".to_vec(),
        7 => b"%ff%fe%fd".to_vec(),
        8 => b"%c0%af%ed%a0%80".to_vec(),
        9 => b"\xff\xfe\xc3\x28".to_vec(),
        10 => b"a\0b".to_vec(),
        11 => b"%0d%0aX-Fuzz-Injected:%201".to_vec(),
        12 => b"\r\nX-Fuzz-Injected: 1".to_vec(),
        13 => "A".repeat(1 + rng.below(20_000)).into_bytes(),
        14 => "\u{202e}\u{feff}\u{0301}\u{1F600}ﬀ".as_bytes().to_vec(),
        15 => b"-1".to_vec(),
        16 => b"99999999999999999999999999".to_vec(),
        17 => b"1e309".to_vec(),
        18 => b"NaN".to_vec(),
        19 => CONTOSO.as_bytes().to_vec(),
        20 => CONTOSO.to_ascii_uppercase().into_bytes(),
        21 => format!("{{{FABRIKAM}}}").into_bytes(),
        22 => b"00000000-0000-0000-0000-000000000000".to_vec(),
        23 => b"../../../../etc/passwd".to_vec(),
        24 => b"%2e%2e%2f%2e%2e%2f".to_vec(),
        25 => b"' OR 1=1 --".to_vec(),
        26 => b"\"; drop table tenant; --".to_vec(),
        27 => b"%s%n{}{{7*7}}${jndi:x}".to_vec(),
        28 => b"a@b.co<script>fz1</script>".to_vec(),
        29 => b"".to_vec(),
        30 => ctx.bindings[rng.below(ctx.bindings.len())]
            .1
            .clone()
            .into_bytes(),
        31 => token_like(rng).into_bytes(),
        32 => b"True".to_vec(),
        _ => b"contoso.onmicrosoft.com".to_vec(),
    };
    if rng.chance(10) {
        // Twice over, or with a marker appended.
        let mut twice = v.clone();
        twice.extend_from_slice(MARKERS[rng.below(MARKERS.len())].as_bytes());
        return twice;
    }
    v
}

/// Encodes `value` for a query string or form body: mostly percent-encoded, sometimes raw
/// (bytes as they are, which may break the request line), sometimes half-encoded.
fn encode(rng: &mut Rng, value: &[u8]) -> Vec<u8> {
    match rng.below(50) {
        0..=45 => percent_encoding::percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .into_bytes(),
        46..=47 => value.to_vec(),
        _ => value
            .iter()
            .flat_map(|&b| {
                if b == b' ' || b == b'&' || b == b'#' {
                    format!("%{b:02X}").into_bytes()
                } else {
                    vec![b]
                }
            })
            .collect(),
    }
}

/// `name=value&...` from `names` (each maybe repeated, maybe dropped) and a few strangers.
fn params(rng: &mut Rng, ctx: &Context, names: &[&str]) -> Vec<u8> {
    let mut pairs: Vec<Vec<u8>> = Vec::new();
    for name in names {
        if rng.chance(20) {
            continue;
        }
        let repeats = if rng.chance(8) { 2 + rng.below(3) } else { 1 };
        for _ in 0..repeats {
            let value = hostile_value(rng, ctx);
            let mut pair = name.as_bytes().to_vec();
            if !rng.chance(3) {
                pair.push(b'=');
            }
            pair.extend(encode(rng, &value));
            pairs.push(pair);
        }
    }
    if rng.chance(15) {
        let name = hostile_value(rng, ctx);
        let mut pair = encode(rng, &name);
        pair.push(b'=');
        let value = hostile_value(rng, ctx);
        pair.extend(encode(rng, &value));
        pairs.push(pair);
    }
    if rng.chance(3) {
        // Thousands of empty parameters.
        pairs.push("&".repeat(1 + rng.below(5000)).into_bytes());
    }
    if rng.chance(2) {
        // Thousands of distinct ones, or one name thousands of times.
        let n = 1 + rng.below(3000);
        let distinct = rng.chance(50);
        let many: Vec<String> = (0..n)
            .map(|i| {
                if distinct {
                    format!("p{i}=1")
                } else {
                    "p=1".to_owned()
                }
            })
            .collect();
        pairs.push(many.join("&").into_bytes());
    }
    let mut out = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(p);
    }
    out
}

/// A path segment: hostile, encoded so that it mostly stays one segment.
fn segment(rng: &mut Rng, ctx: &Context) -> Vec<u8> {
    let value = hostile_value(rng, ctx);
    if rng.chance(90) {
        percent_encoding::percent_encode(&value, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .into_bytes()
    } else {
        value
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FOO", "G\0T",
    "get",
];

/// What the request is made of before it becomes bytes.
struct Parts {
    method: String,
    target: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
}

impl Parts {
    fn new(method: &str, path: &[u8], query: Option<Vec<u8>>) -> Parts {
        let mut target = path.to_vec();
        if let Some(q) = query {
            target.push(b'?');
            target.extend(q);
        }
        Parts {
            method: method.to_owned(),
            target,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.headers.push((name.as_bytes().to_vec(), value.into()));
    }

    fn form_body(&mut self, body: Vec<u8>) {
        self.header("Content-Type", "application/x-www-form-urlencoded");
        self.body = body;
    }
}

fn cookie_header(rng: &mut Rng, ctx: &Context, valid: &[String]) -> Vec<u8> {
    let mut cookies: Vec<Vec<u8>> = Vec::new();
    for c in valid {
        if !rng.chance(15) {
            cookies.push(c.clone().into_bytes());
        }
    }
    match rng.below(8) {
        0 => cookies.push([b"consentry_binding=".as_slice(), &hostile_value(rng, ctx)].concat()),
        1 => cookies.push([b"consentry_session=".as_slice(), &hostile_value(rng, ctx)].concat()),
        2 => cookies.push([b"consentry_form=".as_slice(), &hostile_value(rng, ctx)].concat()),
        3 => cookies.push(b"=;=;;; ;a".to_vec()),
        4 => cookies.push(format!("c={}", "x".repeat(rng.below(40_000))).into_bytes()),
        5 => {
            for i in 0..rng.below(300) {
                cookies.push(format!("c{i}=v").into_bytes());
            }
        }
        _ => {}
    }
    cookies.join(b"; ".as_slice())
}

/// One request for a route of consentry or the emulator.
pub fn generate(rng: &mut Rng, ctx: &Context, index: usize) -> Case {
    let form_cookie = format!("consentry_form={}", ctx.form_token);
    let session_cookie = format!("consentry_session={}", ctx.session);
    let (binding, state) = ctx.bindings[rng.below(ctx.bindings.len())].clone();
    let binding_cookie = format!("consentry_binding={binding}");
    let tenant_segment = |rng: &mut Rng| -> Vec<u8> {
        match rng.below(4) {
            0 => CONTOSO.as_bytes().to_vec(),
            1 => b"organizations".to_vec(),
            _ => segment(rng, ctx),
        }
    };

    let roll = rng.below(100);
    let (route, side, mut parts, cookies): (&'static str, Side, Parts, Vec<String>) = match roll {
        // ---- consentry
        0..=4 => {
            let q = params(rng, ctx, &["tenant"]);
            (
                "GET /",
                Side::App,
                Parts::new("GET", b"/", Some(q)),
                vec![form_cookie],
            )
        }
        5..=13 => {
            let mut fields = params(
                rng,
                ctx,
                &["organisation_name", "contact_email", "tenant_domain"],
            );
            if rng.chance(70) {
                fields = [format!("csrf={}&", ctx.form_token).into_bytes(), fields].concat();
            }
            let mut p = Parts::new("POST", b"/signup", None);
            p.form_body(fields);
            ("POST /signup", Side::App, p, vec![form_cookie])
        }
        14..=17 => {
            // Invitation tokens never issued: shaped like ours, or anything at all.
            let token = if rng.chance(50) {
                token_like(rng).into_bytes()
            } else {
                tenant_segment(rng)
            };
            let path = [b"/invite/".as_slice(), &token].concat();
            if rng.chance(50) {
                let q = rng.chance(30).then(|| params(rng, ctx, &["tenant"]));
                (
                    "GET /invite/{token}",
                    Side::App,
                    Parts::new("GET", &path, q),
                    vec![binding_cookie],
                )
            } else {
                let mut fields = params(rng, ctx, &["tenant_domain"]);
                if rng.chance(70) {
                    fields = [format!("csrf={}&", ctx.form_token).into_bytes(), fields].concat();
                }
                let mut p = Parts::new("POST", &path, None);
                p.form_body(fields);
                (
                    "POST /invite/{token}",
                    Side::App,
                    p,
                    vec![form_cookie, binding_cookie],
                )
            }
        }
        18..=29 => {
            let mut q = params(
                rng,
                ctx,
                &[
                    "admin_consent",
                    "tenant",
                    "state",
                    "error",
                    "error_description",
                    "error_uri",
                ],
            );
            if rng.chance(30) {
                // The real state of this browser, so the refusal checks are passed.
                q = [format!("state={state}&").into_bytes(), q].concat();
            }
            (
                "GET /consent/callback",
                Side::App,
                Parts::new("GET", b"/consent/callback", Some(q)),
                vec![binding_cookie],
            )
        }
        30..=32 => {
            let q = rng.chance(30).then(|| params(rng, ctx, &["tenant"]));
            (
                "GET /consent/status",
                Side::App,
                Parts::new("GET", b"/consent/status", q),
                vec![binding_cookie],
            )
        }
        33..=36 => {
            let q = params(rng, ctx, &["status", "q"]);
            (
                "GET /admin",
                Side::App,
                Parts::new("GET", b"/admin", Some(q)),
                vec![session_cookie],
            )
        }
        37..=39 => {
            let mut fields = params(rng, ctx, &["name", "password"]);
            // With a valid CSRF token only now and then: each such attempt costs an
            // Argon2 hash, and the point here is the parsing, not a login flood.
            if rng.chance(10) {
                fields = [format!("csrf={}&", ctx.form_token).into_bytes(), fields].concat();
            }
            let mut p = Parts::new("POST", b"/admin/login", None);
            p.form_body(fields);
            ("POST /admin/login", Side::App, p, vec![form_cookie])
        }
        40 => (
            "GET /admin/login",
            Side::App,
            Parts::new("GET", b"/admin/login", Some(params(rng, ctx, &["next"]))),
            vec![form_cookie],
        ),
        41 => {
            let mut p = Parts::new("POST", b"/admin/logout", None);
            p.form_body(params(rng, ctx, &["csrf"]));
            // Never the real session: logging it out would end the others' access.
            ("POST /admin/logout", Side::App, p, vec![])
        }
        42..=45 => {
            let path = [b"/admin/tenants/".as_slice(), &tenant_segment(rng)].concat();
            (
                "GET /admin/tenants/{id}",
                Side::App,
                Parts::new("GET", &path, None),
                vec![session_cookie],
            )
        }
        46..=47 => {
            let path = [
                b"/admin/tenants/".as_slice(),
                &tenant_segment(rng),
                b"/verify",
            ]
            .concat();
            let mut fields = params(rng, ctx, &["csrf"]);
            if rng.chance(50) {
                fields = [format!("csrf={}&", ctx.session_csrf).into_bytes(), fields].concat();
            }
            let mut p = Parts::new("POST", &path, None);
            p.form_body(fields);
            (
                "POST /admin/tenants/{id}/verify",
                Side::App,
                p,
                vec![session_cookie],
            )
        }
        48 => (
            "GET /health",
            Side::App,
            Parts::new(
                "GET",
                b"/health",
                rng.chance(50).then(|| params(rng, ctx, &["x"])),
            ),
            vec![],
        ),
        49..=50 => {
            let path = if rng.chance(50) {
                b"/static/consentry.css".to_vec()
            } else {
                [b"/static/".as_slice(), &segment(rng, ctx)].concat()
            };
            (
                "GET /static/...",
                Side::App,
                Parts::new("GET", &path, None),
                vec![],
            )
        }
        51..=53 => {
            let path = [
                b"/".as_slice(),
                &segment(rng, ctx),
                b"/",
                &segment(rng, ctx),
            ]
            .concat();
            (
                "unknown path (app)",
                Side::App,
                Parts::new("GET", &path, None),
                vec![],
            )
        }
        // ---- the emulator
        54..=61 => {
            let path = [b"/".as_slice(), &tenant_segment(rng), b"/adminconsent"].concat();
            let mut q = params(
                rng,
                ctx,
                &["client_id", "redirect_uri", "state", "scope", "prompt"],
            );
            if rng.chance(40) {
                let good = form(&[
                    ("client_id", ctx.client_id.as_str()),
                    (
                        "redirect_uri",
                        &format!("http://{}/consent/callback", ctx.app),
                    ),
                ]);
                q = [good.into_bytes(), b"&".to_vec(), q].concat();
            }
            (
                "GET /{tenant}/adminconsent",
                Side::Emulator,
                Parts::new("GET", &path, Some(q)),
                vec![],
            )
        }
        62..=65 => {
            let path = [b"/".as_slice(), &tenant_segment(rng), b"/adminconsent"].concat();
            let request = params(rng, ctx, &["client_id", "redirect_uri", "state"]);
            let mut body = b"request=".to_vec();
            body.extend(
                percent_encoding::percent_encode(&request, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
                    .into_bytes(),
            );
            body.push(b'&');
            body.extend(params(rng, ctx, &["decision", "tenant"]));
            let mut p = Parts::new("POST", &path, None);
            p.form_body(body);
            ("POST /{tenant}/adminconsent", Side::Emulator, p, vec![])
        }
        66..=73 => {
            let v1 = rng.chance(30);
            let path = [
                b"/".as_slice(),
                &tenant_segment(rng),
                if v1 {
                    b"/oauth2/token".as_slice()
                } else {
                    b"/oauth2/v2.0/token"
                },
            ]
            .concat();
            let mut body = params(
                rng,
                ctx,
                &[
                    "grant_type",
                    "client_id",
                    "client_secret",
                    if v1 { "resource" } else { "scope" },
                    "client_assertion",
                    "client_assertion_type",
                ],
            );
            if rng.chance(40) {
                let good = form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", ctx.client_id.as_str()),
                    ("client_secret", ctx.client_secret.as_str()),
                ]);
                body = [good.into_bytes(), b"&".to_vec(), body].concat();
            }
            let mut p = Parts::new("POST", &path, None);
            p.form_body(body);
            (
                if v1 {
                    "POST /{tenant}/oauth2/token"
                } else {
                    "POST /{tenant}/oauth2/v2.0/token"
                },
                Side::Emulator,
                p,
                vec![],
            )
        }
        74..=77 => {
            let suffix: &[u8] = rng.pick::<&[u8]>(&[
                b"/v2.0/.well-known/openid-configuration".as_slice(),
                b"/.well-known/openid-configuration",
                b"/discovery/v2.0/keys",
                b"/discovery/keys",
            ]);
            let path = [b"/".as_slice(), &tenant_segment(rng), suffix].concat();
            let q = rng.chance(30).then(|| params(rng, ctx, &["appid", "p"]));
            (
                "GET /{tenant}/discovery and .well-known",
                Side::Emulator,
                Parts::new("GET", &path, q),
                vec![],
            )
        }
        78..=87 => {
            let path: &[u8] = rng.pick::<&[u8]>(&[
                b"/v1.0/organization".as_slice(),
                b"/v1.0/users",
                b"/v1.0/users/$count",
            ]);
            let q = params(
                rng,
                ctx,
                &["$top", "$select", "$count", "$skiptoken", "top", "$filter"],
            );
            let mut p = Parts::new("GET", path, Some(q));
            match rng.below(4) {
                0 => p.header("Authorization", format!("Bearer {}", ctx.access_token)),
                1 => p.header(
                    "Authorization",
                    [b"Bearer ".as_slice(), &hostile_value(rng, ctx)].concat(),
                ),
                2 => {
                    // A token with its payload swapped: signature no longer matches.
                    let mut parts: Vec<&str> = ctx.access_token.split('.').collect();
                    if parts.len() == 3 {
                        parts[1] = "eyJ0aWQiOiJ4In0";
                    }
                    p.header("Authorization", format!("Bearer {}", parts.join(".")));
                }
                _ => {}
            }
            if rng.chance(50) {
                p.header(
                    "ConsistencyLevel",
                    if rng.chance(50) {
                        b"eventual".to_vec()
                    } else {
                        hostile_value(rng, ctx)
                    },
                );
            }
            ("GET /v1.0/...", Side::Emulator, p, vec![])
        }
        88 => (
            "GET /error",
            Side::Emulator,
            Parts::new("GET", b"/error", Some(params(rng, ctx, &["code"]))),
            vec![],
        ),
        89..=94 => {
            let (method, path): (&str, Vec<u8>) = match rng.below(9) {
                0 => ("POST", b"/_emulator/tenants".to_vec()),
                1 => ("PUT", b"/_emulator/faults".to_vec()),
                2 => (
                    "PUT",
                    [
                        b"/_emulator/tenants/".as_slice(),
                        &segment(rng, ctx),
                        b"/faults",
                    ]
                    .concat(),
                ),
                3 => ("POST", b"/_emulator/app/certificates".to_vec()),
                4 => ("POST", b"/_emulator/app/federated".to_vec()),
                5 => ("POST", b"/_emulator/clock".to_vec()),
                6 => (
                    "PUT",
                    [
                        b"/_emulator/tenants/".as_slice(),
                        &segment(rng, ctx),
                        b"/roles",
                    ]
                    .concat(),
                ),
                7 => (
                    "GET",
                    [b"/_emulator/tenants/".as_slice(), &segment(rng, ctx)].concat(),
                ),
                _ => (
                    "DELETE",
                    [
                        b"/_emulator/tenants/".as_slice(),
                        &segment(rng, ctx),
                        b"/consent",
                    ]
                    .concat(),
                ),
            };
            let mut p = Parts::new(method, &path, None);
            p.header(
                "Content-Type",
                rng.pick(&[
                    "application/json",
                    "text/plain",
                    "application/json; charset=latin1",
                ])
                .to_string(),
            );
            p.body = hostile_json(rng, ctx);
            ("/_emulator/... (control)", Side::Emulator, p, vec![])
        }
        _ => {
            let path = [b"/".as_slice(), &segment(rng, ctx)].concat();
            let side = if rng.chance(50) {
                Side::App
            } else {
                Side::Emulator
            };
            ("unknown path", side, Parts::new("GET", &path, None), vec![])
        }
    };

    // Now break it some more.
    if rng.chance(12) {
        parts.method = rng.pick(METHODS).to_string();
    }
    if !cookies.is_empty() || rng.chance(10) {
        let cookie = cookie_header(rng, ctx, &cookies);
        if !cookie.is_empty() {
            parts.header("Cookie", cookie);
        }
    }
    if rng.chance(10) {
        let ct = rng.pick(&[
            "application/json",
            "multipart/form-data; boundary=x",
            "text/html",
            "application/x-www-form-urlencoded; charset=utf-16",
            "",
            "\u{1}\u{2}",
        ]);
        parts.headers.retain(|(n, _)| n != b"Content-Type");
        parts.header("Content-Type", ct.to_string());
    }
    if rng.chance(8) {
        let name = *rng.pick(&[
            "X-Custom",
            "Accept",
            "Referer",
            "Origin",
            "User-Agent",
            "Authorization",
            "X-Forwarded-For",
        ]);
        let value = hostile_value(rng, ctx);
        parts.header(name, value);
    }

    let source = rng.chance(50).then(|| {
        Ipv4Addr::new(
            127,
            1 + rng.below(2) as u8,
            rng.below(256) as u8,
            1 + rng.below(254) as u8,
        )
    });
    let host = match side {
        Side::App => ctx.app,
        Side::Emulator => ctx.emulator,
    };
    let bytes = if rng.chance(6) {
        raw_garbage(rng, host)
    } else {
        serialize(rng, &parts, host)
    };
    let route = if bytes.starts_with(b"\x16\x03") || !looks_like_http(&bytes) {
        match side {
            Side::App => "garbage on the socket (app)",
            Side::Emulator => "garbage on the socket (emulator)",
        }
    } else {
        route
    };
    Case {
        index,
        route,
        side,
        source,
        bytes,
    }
}

fn looks_like_http(bytes: &[u8]) -> bool {
    bytes.windows(9).take(20_000).any(|w| w == b" HTTP/1.1")
}

/// JSON bodies the control API must refuse or survive: broken syntax, wrong types,
/// absurd numbers and sizes.
fn hostile_json(rng: &mut Rng, ctx: &Context) -> Vec<u8> {
    let value = String::from_utf8_lossy(&hostile_value(rng, ctx)).into_owned();
    let quoted = serde_json::to_string(&value).unwrap_or_default();
    match rng.below(14) {
        0 => b"{".to_vec(),
        1 => b"{\"count\": ".to_vec(),
        2 => format!(
            "{{\"advance_seconds\": {}}}",
            rng.pick(&[
                "-1",
                "1e309",
                "18446744073709551616",
                "4294967296",
                "\"1\"",
                "null",
                "0",
                "315360001"
            ])
        )
        .into_bytes(),
        3 => format!(
            "{{\"count\": {}}}",
            rng.pick(&["-1", "1e12", "100001", "\"x\"", "[]"])
        )
        .into_bytes(),
        4 => format!("{{\"pem\": {quoted}}}").into_bytes(),
        5 => format!("{{\"issuer\": {quoted}, \"subject\": {quoted}, \"pem\": {quoted}}}")
            .into_bytes(),
        6 => format!("[{quoted}, 1, null, {{}}]").into_bytes(),
        7 => format!("{{\"display_name\": {quoted}, \"domain\": {quoted}, \"users\": -5}}")
            .into_bytes(),
        8 => "[".repeat(10_000).into_bytes(),
        9 => format!("{{\"token_errors\": {quoted}, \"latency_ms\": 1e400}}").into_bytes(),
        10 => b"\xff\xfe{\"a\":1}".to_vec(),
        11 => format!("{{\"a\": \"{}\"}}", "x".repeat(rng.below(300_000))).into_bytes(),
        12 => format!("{{\"id\": {quoted}, \"display_name\": \"x\", \"unknown\": 1}}").into_bytes(),
        _ => Vec::new(),
    }
}

/// `parts` as bytes, with the framing itself sometimes wrong.
fn serialize(rng: &mut Rng, parts: &Parts, host: SocketAddr) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(parts.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(&parts.target);
    out.extend_from_slice(match rng.below(40) {
        0 => b" HTTP/1.0\r\n".as_slice(),
        1 => b" HTTP/9.9\r\n",
        2 => b"\n",
        _ => b" HTTP/1.1\r\n",
    });
    match rng.below(30) {
        0 => {}
        1 => out.extend_from_slice(b"Host: \r\n"),
        2 => out.extend_from_slice(b"Host: a\r\nHost: b\r\n"),
        _ => out.extend_from_slice(format!("Host: {host}\r\n").as_bytes()),
    }
    out.extend_from_slice(b"Connection: close\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    let body = &parts.body;
    match rng.below(60) {
        0 => {
            // Chunked, sometimes with broken chunk sizes.
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            if rng.chance(50) {
                out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                out.extend_from_slice(body);
                out.extend_from_slice(b"\r\n0\r\n\r\n");
            } else {
                out.extend_from_slice(b"zz\r\nabc\r\nfffffffffffffffff\r\n");
            }
            return out;
        }
        1 => out.extend_from_slice(
            format!("Content-Length: {}\r\n", body.len() + 1 + rng.below(100)).as_bytes(),
        ),
        2 => out.extend_from_slice(b"Content-Length: -1\r\n"),
        3 => out.extend_from_slice(b"Content-Length: 99999999999999999999\r\n"),
        4 => out.extend_from_slice(
            format!(
                "Content-Length: {0}\r\nContent-Length: {0}1\r\n",
                body.len()
            )
            .as_bytes(),
        ),
        5 => out.extend_from_slice(
            format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                body.len()
            )
            .as_bytes(),
        ),
        6 => out.extend_from_slice(b"Expect: 100-continue\r\n"),
        _ => {
            if !body.is_empty() || parts.method == "POST" {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Bytes that are not HTTP, or barely.
fn raw_garbage(rng: &mut Rng, host: SocketAddr) -> Vec<u8> {
    match rng.below(14) {
        0 => (0..1 + rng.below(4096)).map(|_| rng.next() as u8).collect(),
        1 => b"GET / HTTP/1.1\r\n".to_vec(),
        2 => b"GET /\r\n\r\n".to_vec(),
        3 => b"\r\n\r\n\r\n".to_vec(),
        // A TLS ClientHello's first bytes on the plain-HTTP port.
        4 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        5 => b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        6 => format!(
            "GET / HTTP/1.1\r\nHost: {host}\r\nX: {}\r\n\r\n",
            "a".repeat(70_000)
        )
        .into_bytes(),
        7 => {
            let mut out = format!("GET / HTTP/1.1\r\nHost: {host}\r\n").into_bytes();
            for i in 0..(100 + rng.below(400)) {
                out.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out
        }
        8 => format!("GET / HTTP/1.1\r\nHost: {host}\r\n folded: header\r\n\r\n").into_bytes(),
        9 => format!("GET / HTTP/1.1\r\nHost: {host}\r\nBad Header: x\r\n\r\n").into_bytes(),
        10 => [
            format!("GET /?{} HTTP/1.1\r\nHost: {host}\r\n", "q".repeat(40_000)).into_bytes(),
            b"\r\n".to_vec(),
        ]
        .concat(),
        11 => [
            b"GET /\0 HTTP/1.1\r\nHost: ".to_vec(),
            host.to_string().into_bytes(),
            b"\r\nX: \0\x7f\r\n\r\n".to_vec(),
        ]
        .concat(),
        12 => {
            // A complete request, then garbage pipelined behind it.
            let mut out = plain_request("GET", "/health", host, &[], b"");
            out.extend_from_slice(b"\x00\x01\x02 garbage\r\n\r\n");
            out
        }
        _ => format!("POST /signup HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\nshort")
            .into_bytes(),
    }
}

// ----------------------------------------------------------------------------------------
// Running and checking.

/// The checks on one answer; `None` when it passes.
pub fn check(answer: &Answer) -> Option<String> {
    let Answer::Response {
        status,
        headers,
        body,
    } = answer
    else {
        return None;
    };
    let has = |name: &str| headers.iter().any(|(n, _)| n == name);
    if *status >= 500 && !(*status == 503 && has("retry-after")) {
        return Some(format!(
            "answered {status}{}: {}",
            if *status == 503 {
                " without Retry-After"
            } else {
                ""
            },
            excerpt(body, 300)
        ));
    }
    if has(INJECTED_HEADER) {
        return Some("a header was injected through an input".to_owned());
    }
    // HTML, or no type at all (which a browser may sniff as HTML).
    let content_type = headers.iter().find(|(n, _)| n == "content-type");
    let html = content_type.is_none_or(|(_, v)| v.to_ascii_lowercase().starts_with("text/html"));
    if html {
        let text = String::from_utf8_lossy(body);
        for needle in MARKER_NEEDLES {
            if let Some(at) = text.find(needle) {
                let around: String = text[at..].chars().take(160).collect();
                return Some(format!(
                    "injected markup {needle:?} reflected unescaped in a {status} page: {around}"
                ));
            }
        }
    }
    None
}

fn excerpt(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]);
    format!(
        "{}{}",
        text.escape_debug(),
        if bytes.len() > max { "..." } else { "" }
    )
}

/// Set while [`run`] runs: panics on server threads are recorded then.
static WATCHING: AtomicBool = AtomicBool::new(false);
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A handler that panics drops its connection, which looks like any closed connection
/// from outside; so panics on the servers' threads (actix names them) are counted here.
fn watch_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let server_thread = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("actix-server worker"));
            if server_thread && WATCHING.load(Ordering::SeqCst) {
                PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(info.to_string());
            }
            previous(info);
        }));
    });
}

/// Generates `requests` cases from `seed`, sends them with at most `concurrency` in
/// flight, checks every answer, then checks that both servers still answer.
pub async fn run(ctx: &Context, requests: usize, seed: u64, concurrency: usize) -> Report {
    let report = Arc::new(Mutex::new(Report::default()));
    watch_panics();
    WATCHING.store(true, Ordering::SeqCst);
    let mut rng = Rng::new(seed);
    let cases = (0..requests).map(move |i| generate(&mut rng, ctx, i));
    futures_util::stream::iter(cases)
        .map(|case| {
            let report = report.clone();
            let to = match case.side {
                Side::App => ctx.app,
                Side::Emulator => ctx.emulator,
            };
            async move {
                let answer = exchange(to, case.source, &case.bytes).await;
                let (label, short) = match &answer {
                    Answer::Response {
                        status,
                        headers,
                        body,
                    } => {
                        if *status == 503 && headers.iter().any(|(n, _)| n == "retry-after") {
                            report
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .documented_503 += 1;
                        }
                        // The HTTP parser's own refusal: no type, no body (ours have both).
                        let parser = *status == 400
                            && body.is_empty()
                            && !headers.iter().any(|(n, _)| n == "content-type");
                        if std::env::var_os("FUZZ_SHOW_PARSER_400").is_some() && parser {
                            eprintln!("{}", excerpt(&case.bytes, 400));
                        }
                        let label = if parser {
                            "400 (HTTP parser)".to_owned()
                        } else {
                            status.to_string()
                        };
                        (label.clone(), label)
                    }
                    Answer::Closed => ("closed without an answer".to_owned(), "closed".to_owned()),
                    Answer::TimedOut => {
                        if std::env::var_os("FUZZ_SHOW_PARSER_400").is_some() {
                            eprintln!("TIMEOUT {}", excerpt(&case.bytes, 600));
                        }
                        (
                            format!("no answer within {} s", EXCHANGE_TIMEOUT.as_secs()),
                            "timeout".to_owned(),
                        )
                    }
                    Answer::Failed(e) => (format!("not sent: {e}"), "not-sent".to_owned()),
                };
                let violation = check(&answer);
                let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
                r.requests += 1;
                *r.per_route
                    .entry(case.route)
                    .or_default()
                    .entry(short)
                    .or_default() += 1;
                *r.statuses.entry(label).or_default() += 1;
                if let Some(what) = violation {
                    r.violations.push(Violation {
                        index: case.index,
                        route: case.route,
                        side: case.side,
                        what,
                        request: excerpt(&case.bytes, 600),
                    });
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<()>>()
        .await;

    let health = exchange(
        ctx.app,
        None,
        &plain_request("GET", "/health", ctx.app, &[], b""),
    )
    .await;
    let emulator = exchange(
        ctx.emulator,
        None,
        &plain_request("GET", "/_emulator/", ctx.emulator, &[], b""),
    )
    .await;
    WATCHING.store(false, Ordering::SeqCst);
    let mut report = std::mem::take(&mut *report.lock().unwrap_or_else(|e| e.into_inner()));
    report.panics = std::mem::take(&mut *PANICS.lock().unwrap_or_else(|e| e.into_inner()));
    report.violations.sort_by_key(|v| v.index);
    report.app_health_after = status(&health);
    report.emulator_alive_after = status(&emulator);
    report
}

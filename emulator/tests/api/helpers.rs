//! What the emulator's tests share beyond the crate's control-API client
//! (`consentry_emulator::client`, re-exported here): reading redirects and asserting
//! Microsoft's error shapes.

pub use consentry_emulator::client::*;

/// The crate's client, wrapped so that this suite's modules can add methods of their own
/// (`impl TestEmulator` is not allowed on a type of another crate).
pub struct TestEmulator(pub consentry_emulator::client::TestEmulator);

impl std::ops::Deref for TestEmulator {
    type Target = consentry_emulator::client::TestEmulator;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// [`consentry_emulator::client::spawn_emulator`], wrapped.
pub async fn spawn_emulator() -> TestEmulator {
    TestEmulator(consentry_emulator::client::spawn_emulator().await)
}

/// [`consentry_emulator::client::spawn_emulator_with`], wrapped.
pub async fn spawn_emulator_with(
    adjust: impl FnOnce(&mut consentry_emulator::EmulatorConfig),
) -> TestEmulator {
    TestEmulator(consentry_emulator::client::spawn_emulator_with(adjust).await)
}
use serde_json::Value;

/// The query parameters of a `Location` header, decoded.
pub fn location_params(response: &reqwest::Response) -> (String, Vec<(String, String)>) {
    let location = response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ASCII Location")
        .to_owned();
    let url = url::Url::parse(&location).expect("an absolute Location");
    let params = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (location, params)
}

pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Percent-encodes every byte but RFC 3986's unreserved characters.
pub fn encode_bytes(bytes: &[u8]) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::percent_encode(bytes, SET).to_string()
}

/// The raw bytes of query parameter `name` in `url` (`+` read as a space), without the
/// lossy UTF-8 conversion `Url::query_pairs` does.
pub fn raw_query_param(url: &str, name: &str) -> Option<Vec<u8>> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').find_map(|piece| {
        let (n, v) = piece.split_once('=').unwrap_or((piece, ""));
        (n == name).then(|| {
            let spaced = v.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced).collect()
        })
    })
}

pub fn is_guid(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 36 && uuid::Uuid::try_parse(s).is_ok())
}

/// `YYYY-MM-DD HH:MM:SSZ`, the identity platform's error timestamp.
pub fn is_sts_timestamp(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Asserts a token-endpoint (or discovery) error in Microsoft's full JSON shape and returns it.
pub async fn assert_sts_error(
    response: reqwest::Response,
    status: u16,
    error: &str,
    code: u64,
) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("an error body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], serde_json::json!([code]), "{body}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        description.starts_with(&format!("AADSTS{code}:")),
        "{description}"
    );
    for line in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(description.contains(line), "{description:?} lacks {line:?}");
    }
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    assert!(is_sts_timestamp(timestamp), "{timestamp}");
    assert!(is_guid(&body["trace_id"]), "{body}");
    assert!(is_guid(&body["correlation_id"]), "{body}");
    assert!(
        body["error_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/error?code={code}"))),
        "{body}"
    );
    body
}

/// Asserts a Microsoft Graph error (`{"error":{"code","message","innerError"}}`) and returns it.
pub async fn assert_graph_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.expect("an error body");
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    assert_eq!(actual, status, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let inner = &error["innerError"];
    assert!(
        inner["date"].as_str().is_some_and(|d| d.len() == 19),
        "{body}"
    );
    assert!(is_guid(&inner["request-id"]), "{body}");
    assert!(
        inner["client-request-id"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    body
}

//! The emulator under hostile input: nothing a client sends answers 5xx or stops it, the
//! clock cannot be moved out of range, and invented tenant segments cannot grow its memory.

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{FABRIKAM, REDIRECT_URI, TestEmulator, spawn_emulator};

/// The control API's largest single step (ten years).
const MAX_CLOCK_STEP: u64 = 10 * 365 * 24 * 3600;

impl TestEmulator {
    /// One request of every emulated endpoint, well formed; the statuses they answer.
    async fn every_endpoint(&self, token: &str) -> Vec<(String, u16)> {
        let contoso = self.contoso();
        let consent = format!(
            "/{contoso}/adminconsent?client_id={}&redirect_uri={}&state=s",
            self.client_id,
            crate::helpers::encode_bytes(REDIRECT_URI.as_bytes())
        );
        let gets = [
            consent.as_str(),
            &format!("/{contoso}/v2.0/.well-known/openid-configuration"),
            &format!("/{contoso}/.well-known/openid-configuration"),
            &format!("/{contoso}/discovery/v2.0/keys"),
            &format!("/{contoso}/discovery/keys"),
            "/error?code=90002",
            "/_emulator/",
            "/_emulator/app",
            "/_emulator/tenants",
            "/_emulator/faults",
            "/_emulator/requests",
            "/_emulator/clock",
        ]
        .map(str::to_owned);
        let mut statuses = Vec::new();
        for path in gets {
            let response = self.http.get(self.url(&path)).send().await.unwrap();
            statuses.push((path, response.status().as_u16()));
        }
        let issued = self.token_v2(&contoso, &[]).await;
        statuses.push(("token v2".into(), issued.status().as_u16()));
        for path in ["/v1.0/organization", "/v1.0/users"] {
            let response = self.graph(path, Some(token)).await;
            statuses.push((path.into(), response.status().as_u16()));
        }
        statuses
    }
}

#[tokio::test]
async fn many_large_clock_advances_are_refused_past_the_limit_and_nothing_breaks() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;

    // 850 steps of ten years would take the clock past the year 9999, where dates stop
    // existing; the emulator refuses steps beyond a thousand years instead.
    let mut statuses = Vec::new();
    for _ in 0..850 {
        let (status, _) = emulator
            .control(
                Method::POST,
                "/clock",
                Some(json!({ "advance_seconds": MAX_CLOCK_STEP })),
            )
            .await;
        statuses.push(status);
    }
    let (refused, error) = emulator
        .control(
            Method::POST,
            "/clock",
            Some(json!({ "advance_seconds": MAX_CLOCK_STEP })),
        )
        .await;
    let (_, clock) = emulator.control(Method::GET, "/clock", None).await;
    let token = emulator.access_token(&emulator.contoso()).await;
    let answers = emulator.every_endpoint(&token).await;

    let accepted = statuses.iter().take_while(|s| **s == 200).count();
    assert!(
        accepted >= 100,
        "a thousand years are allowed: {statuses:?}"
    );
    assert!(
        statuses[accepted..].iter().all(|s| *s == 400),
        "{statuses:?}"
    );
    assert_eq!(refused, 400);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("at most")),
        "{error}"
    );
    let year: i32 = clock["now"].as_str().unwrap()[..4].parse().unwrap();
    assert!(year > 2900, "{clock}");
    let wrong: Vec<_> = answers.iter().filter(|(_, s)| *s != 200).collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[tokio::test]
async fn a_flood_of_invented_tenant_segments_keeps_the_request_counts_bounded() {
    let emulator = spawn_emulator().await;

    for batch in 0..12 {
        let requests = (0..100).map(|n| {
            let path = format!("/nobody{batch}x{n}.example/v2.0/.well-known/openid-configuration");
            emulator.http.get(emulator.url(&path)).send()
        });
        for response in join_all(requests).await {
            assert_eq!(response.unwrap().status(), 400);
        }
    }
    let long = format!("/{}.example/oauth2/v2.0/token", "a".repeat(300));
    let long = emulator
        .http
        .post(emulator.url(&long))
        .send()
        .await
        .unwrap();
    let stats = emulator.requests().await;

    assert_eq!(long.status(), 400);
    let tenants = stats["tenants"].as_object().unwrap();
    assert_eq!(
        tenants.len(),
        1001,
        "1,000 segments and the rest: {}",
        tenants.len()
    );
    assert_eq!(stats["tenants"]["nobody0x0.example"]["discovery"], 1);
    assert_eq!(
        stats["tenants"]["(other unknown tenants)"],
        json!({"discovery": 200, "token_v2": 1})
    );
    assert_eq!(stats["total"], 1201);
}

#[tokio::test]
async fn known_tenants_are_counted_by_guid_whatever_the_flood() {
    let emulator = spawn_emulator().await;
    let paths = (0..1_050).map(|n| format!("/nobody{n}.example/discovery/v2.0/keys"));
    for chunk in paths.collect::<Vec<_>>().chunks(150) {
        join_all(
            chunk
                .iter()
                .map(|p| emulator.http.get(emulator.url(p)).send()),
        )
        .await;
    }

    emulator
        .http
        .get(emulator.url("/fabrikam.com/discovery/v2.0/keys"))
        .send()
        .await
        .unwrap();
    let stats = emulator.requests().await;

    assert_eq!(
        stats["tenants"][FABRIKAM]["keys"], 1,
        "{}",
        stats["tenants"][FABRIKAM]
    );
}

/// One generated request: what is sent and whether the server may drop the connection
/// instead of answering (bodies over a limit, which it stops reading).
struct Case {
    method: Method,
    path: String,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Vec<u8>,
    may_drop: bool,
}

/// A small deterministic generator (SplitMix64), so that a failure names a reproducible case.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[(self.next() % from.len() as u64) as usize]
    }
}

/// Every route of the emulator, with `{t}` for a tenant segment and `{id}` for a control-API
/// tenant id.
const ROUTES: &[&str] = &[
    "/{t}/adminconsent",
    "/{t}/oauth2/v2.0/token",
    "/{t}/oauth2/token",
    "/{t}/oauth2/v2.0/authorize",
    "/{t}/login",
    "/{t}/consent",
    "/{t}/v2.0/.well-known/openid-configuration",
    "/{t}/.well-known/openid-configuration",
    "/{t}/discovery/v2.0/keys",
    "/{t}/discovery/keys",
    "/error",
    "/v1.0/organization",
    "/v1.0/users",
    "/v1.0/users/$count",
    "/v1.0/users/{t}",
    "/v1.0/{t}",
    "/_emulator/",
    "/_emulator/static/emulator.css",
    "/_emulator/app",
    "/_emulator/app/certificates",
    "/_emulator/app/federated",
    "/_emulator/faults",
    "/_emulator/tenants",
    "/_emulator/tenants/{id}",
    "/_emulator/tenants/{id}/faults",
    "/_emulator/tenants/{id}/consent",
    "/_emulator/tenants/{id}/roles",
    "/_emulator/app/roles",
    "/_emulator/app/roles/{t}",
    "/_emulator/tenants/{id}/users",
    "/_emulator/tenants/{id}/users/{t}",
    "/_emulator/tenants/{id}/users/{t}/roles",
    "/_emulator/tenants/{id}/user-consent",
    "/_emulator/tenants/{id}/grants",
    "/_emulator/requests",
    "/_emulator/clock",
    "/_emulator/{t}",
    "/{t}",
    "/",
];

const SEGMENTS: &[&str] = &[
    "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58",
    "contoso.onmicrosoft.com",
    "organizations",
    "common",
    "consumers",
    "%FF%FE",
    "a%00b",
    "%C3%28",
    "%",
    "%2e%2e",
    "..",
    "-bad-.com",
    "%E2%80%AE.com",
    "00000000-0000-0000-0000-000000000000",
    "3F2C8A71-5D94-4E0B-A6C3-1B7E9D2F4A58",
    "x.y",
    "%3Cscript%3E",
];

const IDS: &[&str] = &[
    "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58",
    "00000000-0000-0000-0000-000000000001",
    "not-a-guid",
    "%FF",
    "{3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58}",
];

fn queries() -> Vec<String> {
    vec![
        String::new(),
        "a=%FF".into(),
        "%FF=1".into(),
        "%".into(),
        "%%%=%%".into(),
        "a=1&a=2".into(),
        "=&=&&&".into(),
        "$top=99999999999999999999".into(),
        "$top=-1".into(),
        "top=0&$top=5".into(),
        "$select=".into(),
        format!("$select={}", "displayName,".repeat(600)),
        "$select=%FF".into(),
        "$skiptoken=!!!".into(),
        "$skiptoken=dXNlcnM6MDAwOjQyOTQ5NjcyOTU".into(),
        "$count=maybe".into(),
        "$count=true&count=true".into(),
        "$filter=x".into(),
        "code=99999999999999999999".into(),
        "code=%FF".into(),
        format!("state={}", "a".repeat(9000)),
        "client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fconsent%2Fcallback&state=%00%FF".into(),
        "client_id=%FF&redirect_uri=%FF".into(),
        "client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90".into(),
    ]
}

fn bodies() -> Vec<(Vec<u8>, bool)> {
    let form = |s: &str| (s.as_bytes().to_vec(), false);
    vec![
        form(""),
        form("{"),
        form("null"),
        form("[]"),
        form("\"x\""),
        form("{}"),
        form("{\"count\": 1e309}"),
        form("{\"count\": -1}"),
        form("{\"count\": 18446744073709551616}"),
        form("{\"count\": 100001}"),
        form("{\"count\": 2, \"users\": 4294967295}"),
        form("{\"advance_seconds\": 4294967296}"),
        form("{\"advance_seconds\": -5}"),
        form("{\"latency_ms\": 18446744073709551615}"),
        form("{\"error_rate\": NaN}"),
        form("{\"expires_in\": 18446744073709551616}"),
        form("{\"pem\": \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\"}"),
        form("{\"issuer\": \"\", \"subject\": \"s\", \"pem\": \"x\"}"),
        form("[\"User.Read.All\", \"\\u0000\"]"),
        form("{\"display_name\": \"\\ud800\"}"),
        (
            format!("{}1{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            false,
        ),
        (b"\xff\xfe\x00garbage".to_vec(), false),
        form("grant_type=client_credentials&client_id=%FF&client_secret=x&scope=%FF"),
        form(
            "grant_type=client_credentials&client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&client_secret=consentry-emulator-secret&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&scope=x",
        ),
        form(
            "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&grant_type=client_credentials&client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
        ),
        form(
            "client_assertion=....&client_id=6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90&grant_type=client_credentials",
        ),
        form("decision=accept&tenant=%FF&request=%FF"),
        form(
            "decision=accept&request=client_id%3D6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90%26redirect_uri%3Dhttp%253A%252F%252Flocalhost%253A8080%252Fconsent%252Fcallback&tenant=nobody.example",
        ),
        (format!("p={}", "x".repeat(70 * 1024)).into_bytes(), true),
        (
            (0..12_000)
                .map(|n| format!("p{n}=1"))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
            true,
        ),
    ]
}

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=ISO-8859-1"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
    Some("application/json; charset=utf-16"),
    Some("application/json\t; x=\"\u{e9}"),
];

const AUTHORIZATIONS: &[Option<&[u8]>] = &[
    None,
    Some(b"Bearer"),
    Some(b"Bearer "),
    Some(b"Bearer a.b.c"),
    Some(b"Bearer eyJhbGciOiJub25lIn0.eyJ0aWQiOiJ4In0."),
    Some(b"Basic Zm9vOmJhcg=="),
    Some(b"bearer \xff\xfe"),
    Some(b"Bearer ....................................."),
];

fn methods() -> Vec<Method> {
    [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO",
    ]
    .iter()
    .map(|m| Method::from_bytes(m.as_bytes()).unwrap())
    .collect()
}

/// `count` requests drawn from every dimension above, plus every route with every method.
fn generate(count: usize, seed: u64) -> Vec<Case> {
    let (queries, bodies, methods) = (queries(), bodies(), methods());
    let mut draw = Draw(seed);
    let mut cases = Vec::new();
    let fill = |route: &str, draw: &mut Draw| {
        route
            .replace("{t}", draw.pick::<&str>(SEGMENTS))
            .replace("{id}", draw.pick::<&str>(IDS))
    };
    for route in ROUTES {
        for method in &methods {
            cases.push(Case {
                method: method.clone(),
                path: fill(route, &mut draw),
                headers: Vec::new(),
                body: Vec::new(),
                may_drop: false,
            });
        }
    }
    while cases.len() < count {
        let route = draw.pick(ROUTES);
        let mut path = fill(route, &mut draw);
        let query = draw.pick(&queries);
        if !query.is_empty() {
            path = format!("{path}?{query}");
        }
        let mut headers: Vec<(&'static str, Vec<u8>)> = Vec::new();
        if let Some(content_type) = draw.pick(CONTENT_TYPES) {
            headers.push(("content-type", content_type.as_bytes().to_vec()));
        }
        if let Some(authorization) = draw.pick(AUTHORIZATIONS) {
            headers.push(("authorization", authorization.to_vec()));
        }
        if draw.next().is_multiple_of(4) {
            headers.push(("consistencylevel", b"eventual".to_vec()));
            headers.push(("client-request-id", b"\x80not-a-guid".to_vec()));
        }
        let (body, may_drop) = draw.pick(&bodies).clone();
        let method = match draw.next() % 3 {
            0 => Method::GET,
            1 => Method::POST,
            _ => draw.pick(&methods).clone(),
        };
        cases.push(Case {
            method,
            path,
            headers,
            body,
            may_drop,
        });
    }
    cases
}

/// What became of one generated request.
enum Outcome {
    Answered(u16),
    /// The connection broke before a whole answer arrived.
    Dropped(String),
}

async fn send(emulator: &TestEmulator, case: &Case) -> Outcome {
    let mut request = emulator
        .http
        .request(case.method.clone(), emulator.url(&case.path));
    for (name, value) in &case.headers {
        request = request.header(*name, value.clone());
    }
    let response = match request.body(case.body.clone()).send().await {
        Ok(response) => response,
        Err(e) => return Outcome::Dropped(format!("{e:?}")),
    };
    let status = response.status().as_u16();
    // Read the whole body: a handler that panics mid-stream shows up here.
    match response.bytes().await {
        Ok(_) => Outcome::Answered(status),
        Err(e) => Outcome::Dropped(format!("{e:?}")),
    }
}

/// How many generated requests the sweep sends, and from which seed: 3,000 from seed 7 in
/// CI; `EMULATOR_SWEEP_REQUESTS=100000 EMULATOR_SWEEP_SEED=8 cargo test --test api hostile`
/// for a long run.
fn sweep_size_and_seed() -> (usize, u64) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    (
        var("EMULATOR_SWEEP_REQUESTS").map_or(3000, |n: u64| n as usize),
        var("EMULATOR_SWEEP_SEED").unwrap_or(7),
    )
}

#[tokio::test]
async fn hostile_requests_to_every_route_never_answer_5xx_and_the_emulator_lives_on() {
    let emulator = spawn_emulator().await;
    emulator.consent(&emulator.contoso()).await;
    let (size, seed) = sweep_size_and_seed();
    let cases = generate(size, seed);

    let mut failures = Vec::new();
    for chunk in cases.chunks(16) {
        let results = join_all(chunk.iter().map(|case| send(&emulator, case))).await;
        for (case, result) in chunk.iter().zip(results) {
            let what = match result {
                Outcome::Answered(status) if status < 500 => continue,
                Outcome::Dropped(_) if case.may_drop => continue,
                Outcome::Answered(status) => format!("answered {status}"),
                Outcome::Dropped(error) => format!("dropped: {error}"),
            };
            failures.push(format!(
                "{} {} ({} body bytes): {what}",
                case.method,
                case.path.chars().take(120).collect::<String>(),
                case.body.len()
            ));
        }
    }
    let malformed = malformed_http(&emulator).await;
    let (faults_status, faults) = emulator.control(Method::GET, "/faults", None).await;
    emulator.control(Method::DELETE, "/faults", None).await;
    let alive = alive(&emulator).await;

    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        malformed.iter().all(|s| s.is_none_or(|s| s < 500)),
        "{malformed:?}"
    );
    assert_eq!(faults_status, 200, "{faults}");
    assert!(alive, "the emulator serves tokens and Graph afterwards");
}

/// A fresh tenant, consented, gets a token that Graph accepts.
async fn alive(emulator: &TestEmulator) -> bool {
    let (status, created) = emulator
        .control(Method::POST, "/tenants", Some(json!({"consented": true})))
        .await;
    if status != 201 {
        return false;
    }
    let id = created[0]["id"].as_str().unwrap_or_default().to_owned();
    let token = emulator.access_token(&id).await;
    emulator
        .graph("/v1.0/organization", Some(&token))
        .await
        .status()
        == 200
}

/// Requests no HTTP client library would send, over a raw socket: the status of the answer,
/// or `None` when the server closed the connection without one.
async fn malformed_http(emulator: &TestEmulator) -> Vec<Option<u16>> {
    let address = emulator.base.trim_start_matches("http://").to_owned();
    let raw: Vec<Vec<u8>> = vec![
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nno-colon-here\r\n\r\n".to_vec(),
        b"POST /x/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"POST /x/oauth2/v2.0/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n0\r\n\r\n".to_vec(),
        b"POST /_emulator/clock HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"adv".to_vec(),
        format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(70_000)).into_bytes(),
        b"GET /_emulator/clock HTTP/1.1\r\nHost: \xff\xfe\r\nX-Forwarded-Host: <a>\r\nForwarded: host=\"\xff\"\r\n\r\n".to_vec(),
        b"\x16\x03\x01\x00\x05hello".to_vec(),
        b"GET /_emulator/clock HTTP/9.9\r\nHost: x\r\n\r\n".to_vec(),
    ];
    let mut statuses = Vec::new();
    for request in raw {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
            statuses.push(Some(599));
            continue;
        };
        let _ = stream.write_all(&request).await;
        let _ = stream.shutdown().await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        let status = std::str::from_utf8(answer.get(9..12).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok());
        statuses.push(status);
    }
    statuses
}

#[test]
fn the_generator_covers_every_route_and_method_and_repeats_itself() {
    let a = generate(500, 1);
    let b = generate(500, 1);

    assert!(a.len() >= ROUTES.len() * methods().len());
    assert!(
        a.iter()
            .zip(&b)
            .all(|(x, y)| x.path == y.path && x.body == y.body)
    );
    assert!(a.iter().any(|c| c.method.as_str() == "FOO"));
}

#[tokio::test]
async fn every_endpoint_answers_a_fresh_emulator() {
    let emulator = spawn_emulator().await;
    let token = emulator.contoso_token().await;

    let answers = emulator.every_endpoint(&token).await;

    let wrong: Vec<_> = answers.iter().filter(|(_, s)| *s != 200).collect();
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[tokio::test]
async fn paths_it_does_not_serve_answer_not_found_under_a_tenant_as_at_the_root() {
    // Arrange
    let emulator = spawn_emulator().await;
    let contoso = emulator.contoso();
    let unserved = [
        (Method::GET, "/".to_owned()),
        (Method::GET, format!("/{contoso}")),
        (Method::GET, format!("/{contoso}/")),
        (Method::GET, format!("/{contoso}/nothing")),
        (Method::GET, format!("/{contoso}/adminconsent/")),
        (Method::GET, format!("/{contoso}/discovery/keys/")),
        (
            Method::POST,
            format!("/{contoso}/v2.0/.well-known/openid-configuration"),
        ),
        (Method::DELETE, format!("/{contoso}/login")),
        (
            Method::GET,
            "//v2.0/.well-known/openid-configuration".to_owned(),
        ),
        (Method::GET, "/error/90002".to_owned()),
    ];

    // Act
    let mut answers = Vec::new();
    for (method, path) in &unserved {
        let response = emulator
            .http
            .request(method.clone(), emulator.url(path))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        answers.push((format!("{method} {path}"), status, body));
    }
    let wrong_method = emulator
        .http
        .get(emulator.url(&format!("/{contoso}/oauth2/v2.0/token")))
        .send()
        .await
        .unwrap();

    // Assert: each one the default answer, which names the method and path it was asked;
    // a token endpoint asked with GET still answers its own AADSTS900561.
    for (asked, status, body) in &answers {
        assert_eq!(*status, 404, "{asked}");
        assert_eq!(body["error"], "not_found", "{asked}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(
            description.contains(asked.as_str()),
            "{asked}: {description}"
        );
    }
    assert_eq!(wrong_method.status(), 400);
    let body: serde_json::Value = wrong_method.json().await.unwrap();
    assert_eq!(body["error_codes"][0], 900561);
}

/// The number a generated tenant's domain ends with (`brightlakesystems42.onmicrosoft.com`
/// is 42): generated names are numbered in the order requests reserve them.
fn generated_number(created: &serde_json::Value) -> u64 {
    let domain = created[0]["domain"].as_str().expect("a domain");
    let label = domain.trim_end_matches(".onmicrosoft.com");
    let digits = label.trim_start_matches(|c: char| !c.is_ascii_digit());
    digits
        .parse()
        .expect("a generated name ends with its number")
}

#[tokio::test]
async fn other_requests_are_answered_while_100000_tenants_are_created() {
    let emulator = spawn_emulator().await;
    let (_, before) = emulator
        .control(Method::POST, "/tenants", Some(json!({})))
        .await;
    let last_before = generated_number(&before);
    const BULK: u64 = 100_000;

    // The bulk create reserves its block of names first thing; a tenant created after that
    // is named past the block. One so named, and answered while the bulk create has not
    // answered yet, was served while the bulk create was under way.
    let bulk = {
        let (http, url) = (emulator.http.clone(), emulator.url("/_emulator/tenants"));
        tokio::spawn(async move {
            let response = http
                .post(url)
                .json(&json!({"count": BULK, "users": 1}))
                .send()
                .await
                .expect("the bulk create answers");
            response.status().as_u16()
        })
    };
    let mut served_meanwhile = None;
    while !bulk.is_finished() {
        let (status, created) = emulator
            .control(Method::POST, "/tenants", Some(json!({"consented": true})))
            .await;
        assert_eq!(status, 201, "{created}");
        let number = generated_number(&created);
        if number > last_before + BULK && !bulk.is_finished() {
            let id = created[0]["id"].as_str().unwrap().to_owned();
            let token = emulator.access_token(&id).await;
            let organization = emulator.graph("/v1.0/organization", Some(&token)).await;
            served_meanwhile = Some((number, organization.status().as_u16(), bulk.is_finished()));
            break;
        }
    }
    let bulk_status = bulk.await.unwrap();

    assert_eq!(bulk_status, 201);
    let (number, graph, bulk_done) = served_meanwhile
        .expect("a tenant named after the bulk create's block was created before it answered");
    assert!(number > last_before + BULK);
    assert_eq!(graph, 200);
    assert!(
        !bulk_done,
        "a token and a Graph call were answered meanwhile too"
    );
}

#[tokio::test]
async fn tenants_are_created_while_100000_are_listed_and_the_list_is_whole() {
    let emulator = spawn_emulator().await;
    const BULK: usize = 100_000;
    let (status, _) = emulator
        .control(
            Method::POST,
            "/tenants",
            Some(json!({"count": BULK, "users": 1})),
        )
        .await;
    assert_eq!(status, 201);

    // Creating a tenant takes the directory's write lock. The list copies what it needs
    // under the lock and builds its JSON after, so tenants are created while it is being
    // built; the list then holds none of them, as it was taken before they existed.
    let list = {
        let (http, url) = (emulator.http.clone(), emulator.url("/_emulator/tenants"));
        tokio::spawn(async move { http.get(url).send().await.expect("the list answers") })
    };
    let (mut created_meanwhile, mut created_after) = (Vec::new(), 0);
    while !list.is_finished() {
        let (status, created) = emulator
            .control(Method::POST, "/tenants", Some(json!({"users": 1})))
            .await;
        assert_eq!(status, 201, "{created}");
        if list.is_finished() {
            created_after += 1;
        } else {
            created_meanwhile.push(created[0]["id"].as_str().unwrap().to_owned());
        }
    }
    let response = list.await.unwrap();
    assert_eq!(response.status(), 200);
    let listed: Vec<serde_json::Value> = response.json().await.expect("a JSON array");

    let ids: std::collections::HashSet<&str> =
        listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), listed.len(), "each tenant once");
    let after_the_copy = created_meanwhile
        .iter()
        .filter(|id| !ids.contains(id.as_str()))
        .count();
    assert!(
        after_the_copy >= 3,
        "only {after_the_copy} of {} tenants created before the list answered came after its copy",
        created_meanwhile.len()
    );
    // Whole and in creation order: every tenant listed before the list was asked for, and
    // the generated ones numbered one after another.
    let (_, now) = emulator.control(Method::GET, "/tenants", None).await;
    let now = now.as_array().unwrap();
    assert_eq!(now.len(), listed.len() + after_the_copy + created_after);
    assert_eq!(&now[..listed.len()], &listed[..]);
    let numbers: Vec<u64> = listed
        .iter()
        .filter_map(|t| {
            let label = t["domain"].as_str()?.trim_end_matches(".onmicrosoft.com");
            label
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .collect();
    assert!(numbers.len() >= BULK);
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "creation order");
}

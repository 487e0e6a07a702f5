//! Starting servers on port 0 and talking to them over HTTP.

use std::path::PathBuf;
use std::sync::Once;

use consentry::emulator::{CONTOSO, Emulator, EmulatorConfig};
use reqwest::redirect::Policy;
use serde_json::Value;

/// The graph scope every client-credentials request in the tests asks for.
pub const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
pub const REDIRECT_URI: &str = "http://localhost:8080/consent/callback";

/// reqwest is built without a crypto provider; the process uses ring, like the server.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A running emulator and an HTTP client that does not follow redirects.
pub struct TestEmulator {
    pub base: String,
    pub http: reqwest::Client,
    pub client_id: String,
    pub client_secret: String,
    pub ca_pem: Option<PathBuf>,
}

pub async fn spawn_emulator() -> TestEmulator {
    spawn_emulator_with(|_| {}).await
}

/// Starts an emulator on 127.0.0.1:0 with one worker, after `adjust` edits its config.
pub async fn spawn_emulator_with(adjust: impl FnOnce(&mut EmulatorConfig)) -> TestEmulator {
    install_crypto_provider();
    let mut config = EmulatorConfig {
        port: 0,
        workers: Some(1),
        ..EmulatorConfig::default()
    };
    adjust(&mut config);
    let emulator = Emulator::build(config.clone()).expect("the emulator starts");
    let base = emulator.base_url().to_owned();
    let ca_pem = emulator.ca_pem_path().map(PathBuf::from);
    tokio::spawn(emulator.run_until_stopped());

    let mut builder = reqwest::Client::builder().redirect(Policy::none());
    if let Some(ca) = &ca_pem {
        let pem = std::fs::read(ca).expect("ca.pem is readable");
        let cert = reqwest::Certificate::from_pem(&pem).expect("ca.pem parses");
        builder = builder.tls_certs_only([cert]);
    }
    TestEmulator {
        base,
        http: builder.build().expect("the HTTP client builds"),
        client_id: config.client_id.to_string(),
        client_secret: config.client_secret,
        ca_pem,
    }
}

impl TestEmulator {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn contoso(&self) -> String {
        CONTOSO.to_string()
    }

    /// POSTs `form` (sent as given, so tests can omit, repeat or garble fields) to a token
    /// endpoint: `v2` or `v1`.
    pub async fn token_raw(&self, tenant: &str, version: &str, body: String) -> reqwest::Response {
        let path = match version {
            "v1" => format!("/{tenant}/oauth2/token"),
            _ => format!("/{tenant}/oauth2/v2.0/token"),
        };
        self.http
            .post(self.url(&path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("the token endpoint answers")
    }

    /// A well-formed v2 client-credentials request with `overrides` replacing fields
    /// (an empty value removes the field).
    pub async fn token_v2(&self, tenant: &str, overrides: &[(&str, &str)]) -> reqwest::Response {
        let mut fields = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.client_id.clone()),
            ("client_secret", self.client_secret.clone()),
            ("scope", GRAPH_DEFAULT.to_owned()),
        ];
        for (name, value) in overrides {
            fields.retain(|(n, _)| n != name);
            if !value.is_empty() {
                fields.push((name, (*value).to_owned()));
            }
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(n, v)| (*n, v.as_str())))
            .finish();
        self.token_raw(tenant, "v2", body).await
    }

    /// An access token for a consented tenant; panics with the error JSON otherwise.
    pub async fn access_token(&self, tenant: &str) -> String {
        let response = self.token_v2(tenant, &[]).await;
        let status = response.status();
        let body: Value = response.json().await.expect("token JSON");
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    pub async fn control(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.url(&format!("/_emulator{path}")));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the control API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn consent(&self, tenant: &str) -> Value {
        let (status, body) = self
            .control(
                reqwest::Method::POST,
                &format!("/tenants/{tenant}/consent"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn graph(&self, path_and_query: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path_and_query));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("Graph answers")
    }

    /// `GET /_emulator/requests`
    pub async fn requests(&self) -> Value {
        self.control(reqwest::Method::GET, "/requests", None)
            .await
            .1
    }
}

/// The claims of a JWT, without checking its signature (ENTRA.md §5: read, don't validate).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

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

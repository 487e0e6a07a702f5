//! Starting an emulator on port 0 and talking to it over HTTP: its control API
//! (`/_emulator/...`: tenants, consents, roles, the clock, request counts), its token
//! endpoint, Graph and the consent page, as a test of another crate would.
//!
//! A test kit: every method that expects an answer panics with the emulator's answer when
//! it gets another one, as `assert!` does.
//!
//! ```no_run
//! # async fn example() {
//! use consentry_emulator::client::spawn_emulator;
//!
//! let emulator = spawn_emulator().await;
//! emulator.consent(&emulator.contoso()).await; // Contoso's administrator consents
//! let token = emulator.access_token(&emulator.contoso()).await;
//! assert!(!token.is_empty());
//! # }
//! ```
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Once;

use crate::{CONTOSO, Emulator, EmulatorConfig};
use reqwest::redirect::Policy;
use serde_json::Value;

/// The graph scope every client-credentials request in the tests asks for.
pub const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
/// The first of the emulated app's default redirect URIs (`DEFAULT_REDIRECT_URIS`).
pub const REDIRECT_URI: &str = "http://localhost:8080/consent/callback";

/// reqwest is built without a crypto provider; the process uses ring, like the server.
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A running emulator and an HTTP client that does not follow redirects. A clone talks to
/// the same emulator.
#[derive(Clone)]
pub struct TestEmulator {
    /// `http(s)://127.0.0.1:port`: authority host and Graph host.
    pub base: String,
    /// Trusts the emulator's CA with `https`; follows no redirects.
    pub http: reqwest::Client,
    /// The emulated app's client id.
    pub client_id: String,
    /// The emulated app's client secret.
    pub client_secret: String,
    /// The CA certificate to trust, with `https`.
    pub ca_pem: Option<PathBuf>,
}

/// Starts an emulator with the default configuration on 127.0.0.1:0 with one worker.
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
    let emulator = Emulator::start(config.clone())
        .await
        .expect("the emulator starts");
    let base = emulator.base_url().to_owned();
    let ca_pem = emulator.ca_pem_path().map(PathBuf::from);

    // Idle connections are dropped after 2 s, well inside the servers' 5 s keep-alive: a
    // request sent on a connection the server is just closing fails with IncompleteMessage
    // (seen on a loaded machine), a client-side race no server can prevent.
    let mut builder = reqwest::Client::builder()
        .redirect(Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(2));
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
    /// `path` on the emulator.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Contoso's tenant id, the first seeded tenant.
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

    /// `method /_emulator{path}` with a JSON `body`: the status and the JSON answered
    /// (`Null` when the body is not JSON).
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

    /// `POST /_emulator/tenants/{tenant}/consent`: an administrator of `tenant` consents,
    /// as if through the consent page; panics unless it answers 200.
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

    /// `DELETE /_emulator/tenants/{tenant}/consent`: the administrator removes the app.
    pub async fn revoke(&self, tenant: &str) {
        let (status, body) = self
            .control(
                reqwest::Method::DELETE,
                &format!("/tenants/{tenant}/consent"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// `GET path_and_query` on Graph, with `token` as the bearer token when given.
    pub async fn graph(&self, path_and_query: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.url(path_and_query));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("Graph answers")
    }

    /// POSTs the emulated consent page's form for the admin-consent URL `to_microsoft`
    /// (`decision` is "accept" or "cancel", `tenant` the organisation picked) and returns
    /// where it redirects back: the callback URL Microsoft would send the browser to.
    pub async fn decide(&self, to_microsoft: &str, decision: &str, tenant: Option<&str>) -> String {
        let url = url::Url::parse(to_microsoft).expect("absolute");
        let mut form = vec![
            ("request", url.query().unwrap_or_default().to_owned()),
            ("decision", decision.to_owned()),
        ];
        if let Some(t) = tenant {
            form.push(("tenant", t.to_owned()));
        }
        let response = self
            .http
            .post(format!("{}{}", self.base, url.path()))
            .form(&form)
            .send()
            .await
            .expect("the emulator answers");
        assert_eq!(response.status(), 302, "the emulator redirects back");
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }

    /// `GET /_emulator/requests`
    pub async fn requests(&self) -> Value {
        self.control(reqwest::Method::GET, "/requests", None)
            .await
            .1
    }
}

/// The claims of a JWT, without checking its signature (a client reads its access token's
/// claims; it does not validate them).
pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Fabrikam, the second seeded tenant.
pub const FABRIKAM: &str = "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6";
/// Woodgrove Bank: 130 users, more than one default page.
pub const WOODGROVE: &str = "e4b07c3a-92d1-4a85-8f6e-3c1d5b9a7e20";

impl TestEmulator {
    /// `PUT /_emulator/tenants/{tenant}/roles`; panics unless it answers 200.
    pub async fn set_roles(&self, tenant: &str, roles: &[&str]) {
        let (status, body) = self
            .control(
                reqwest::Method::PUT,
                &format!("/tenants/{tenant}/roles"),
                Some(serde_json::json!(roles)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// `GET /_emulator/tenants/{tenant}`
    pub async fn tenant(&self, tenant: &str) -> Value {
        let (status, body) = self
            .control(reqwest::Method::GET, &format!("/tenants/{tenant}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Moves the emulator's clock forward instead of sleeping.
    pub async fn advance_clock(&self, seconds: u64) {
        let (status, body) = self
            .control(
                reqwest::Method::POST,
                "/clock",
                Some(serde_json::json!({ "advance_seconds": seconds })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// Consents Contoso and returns a token for it.
    pub async fn contoso_token(&self) -> String {
        self.consent(&self.contoso()).await;
        self.access_token(&self.contoso()).await
    }

    /// `{tenant}/adminconsent?{raw_query}`, the query sent exactly as given.
    pub async fn consent_page(&self, tenant: &str, raw_query: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/{tenant}/adminconsent?{raw_query}")))
            .send()
            .await
            .expect("the consent page answers")
    }

    /// POSTs a form to the consent page as a browser does: fields in order, form-urlencoded.
    pub async fn consent_decision(
        &self,
        tenant: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().copied())
            .finish();
        self.http
            .post(self.url(&format!("/{tenant}/adminconsent")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("the consent form answers")
    }

    /// The query string of a well-formed admin-consent link for the emulated app.
    pub fn consent_query(&self, state: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", REDIRECT_URI);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
        query.finish()
    }
}

impl TestEmulator {
    /// Signs `username` in through the emulator's pages as a browser would, starting from
    /// the authorize URL an app redirected to: the account picker, then the consent page
    /// (accepted) if it shows. `browser` keeps cookies and follows no redirects. Returns
    /// where the emulator sends the browser back (the app's redirect URI with `code` and
    /// `state`, or `error`).
    pub async fn sign_in_through_pages(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        username: &str,
    ) -> String {
        let url = url::Url::parse(authorize_url).expect("an absolute authorize URL");
        let segment = url
            .path_segments()
            .and_then(|mut s| s.next())
            .expect("a tenant segment")
            .to_owned();
        let page = browser
            .get(authorize_url)
            .send()
            .await
            .expect("the authorize endpoint answers");
        assert_eq!(page.status(), 200, "the sign-in page shows");
        let html = page.text().await.expect("html");
        let flow = hidden_field(&html, "flow").expect("the sign-in page carries its flow");
        let post = |path: String, fields: Vec<(&'static str, String)>| async move {
            browser
                .post(self.url(&path))
                .form(&fields)
                .send()
                .await
                .expect("the emulator answers")
        };
        let mut response = post(
            format!("/{segment}/login"),
            vec![("flow", flow), ("username", username.to_owned())],
        )
        .await;
        if response.status() == 200 {
            let html = response.text().await.expect("html");
            let flow = hidden_field(&html, "flow").expect("the consent page carries its flow");
            response = post(
                format!("/{segment}/consent"),
                vec![("flow", flow), ("decision", "accept".to_owned())],
            )
            .await;
        }
        assert_eq!(
            response.status(),
            302,
            "the emulator sends the browser back"
        );
        response.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_owned()
    }
}

/// Decodes the HTML character references askama writes (`&#34;`, `&amp;`, ...).
pub fn html_unescape(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|end| *end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The (unescaped) `value` of the form field `name="{name}"` in an HTML page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html_unescape(&html[start..end]))
}

//! One outbound HTTP client for Microsoft: a timeout on every call, redirects off, a
//! User-Agent, and nothing secret in any error or log line.

use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::fault::Fault;
use super::wire;
use crate::config::{Settings, TokenVersion};
use crate::domain::TenantId;

/// Every call to Microsoft gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct EntraClient {
    http: reqwest::Client,
    authority: String,
    graph: String,
    /// The Graph resource tokens are asked for: the cloud's, whatever host serves it (the
    /// emulator standing in for a cloud's hosts is asked for that cloud's resource).
    graph_resource: &'static str,
    client_id: Uuid,
    credential: std::sync::Arc<super::Credential>,
    version: TokenVersion,
    /// Counts token requests by outcome, when the service keeps metrics.
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

/// An app-only token for one tenant. The token itself lives only in memory and never
/// prints.
pub struct AppToken {
    access_token: SecretString,
    /// Seconds, clamped at parsing to at most a day (see `wire::MAX_LIFETIME_SECS`).
    pub expires_in: u64,
    /// Seconds after which to refresh proactively, when Microsoft says (ENTRA.md §3);
    /// never more than `expires_in`.
    pub refresh_in: Option<u64>,
    /// How long Microsoft would keep accepting the token during an outage of its own;
    /// clamped like `expires_in`.
    pub ext_expires_in: Option<u64>,
    /// The claims consentry reads for diagnostics (ENTRA.md §5).
    pub tid: Option<String>,
    pub roles: Vec<String>,
    /// The resource the token is for (`aud`): the cloud's Graph.
    pub audience: Option<String>,
}

impl std::fmt::Debug for AppToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppToken")
            .field("expires_in", &self.expires_in)
            .field("tid", &self.tid)
            .field("roles", &self.roles)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Why no token came back.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// Microsoft said no, with an AADSTS code.
    #[error("{headline}")]
    Refused {
        status: u16,
        error: String,
        codes: Vec<u32>,
        headline: String,
    },
    #[error("Microsoft's token endpoint could not be reached ({0})")]
    Unreachable(String),
    #[error("Microsoft's token endpoint answered HTTP {0}")]
    Server(u16),
    /// 429, or 503 with `Retry-After`: no call before `retry_after` has passed (ENTRA.md §6).
    #[error("Microsoft's token endpoint asked to wait {}s (HTTP {status})", retry_after.as_secs())]
    Throttled { status: u16, retry_after: Duration },
    /// Not sent: an earlier `Retry-After` for this tenant has not passed yet.
    #[error("waiting {}s more, as Microsoft asked (Retry-After)", remaining.as_secs())]
    Waiting { remaining: Duration },
    #[error("Microsoft's token response could not be read ({0})")]
    Malformed(String),
    /// Our own credential could not be used (e.g. the federated assertion file is gone).
    #[error("consentry's credential could not be used: {0}")]
    Credential(String),
}

/// Microsoft's `Retry-After` is capped at an hour, as MSAL caps it (ENTRA.md §6).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds (the form Microsoft uses; HTTP dates are not sent by it),
/// clamped to `MAX_RETRY_AFTER` however many digits it has: no arithmetic on it can
/// overflow.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: a value too long for u64 is simply "very long".
    let secs = raw.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

impl TokenError {
    /// Worth one more try after about a second (5xx, timeouts, broken connections), as
    /// MSAL.NET does; throttling is not (its `Retry-After` rules).
    pub fn is_retryable(&self) -> bool {
        matches!(self, TokenError::Server(_) | TokenError::Unreachable(_))
    }

    pub fn fault(&self) -> Fault {
        match self {
            TokenError::Refused { codes, error, .. } => Fault::classify(codes, error),
            TokenError::Credential(_) => Fault::AppCredential,
            TokenError::Unreachable(_)
            | TokenError::Server(_)
            | TokenError::Throttled { .. }
            | TokenError::Waiting { .. }
            | TokenError::Malformed(_) => Fault::Transient,
        }
    }

    /// `AADSTS700016`, or a short name for failures without a code.
    pub fn code(&self) -> String {
        match self {
            TokenError::Refused { codes, error, .. } => codes
                .first()
                .map(|c| format!("AADSTS{c}"))
                .unwrap_or_else(|| error.clone()),
            TokenError::Unreachable(_) => "unreachable".into(),
            TokenError::Server(status) => format!("http_{status}"),
            TokenError::Throttled { status, .. } => format!("http_{status}"),
            TokenError::Waiting { .. } => "retry_after".into(),
            TokenError::Malformed(_) => "malformed_response".into(),
            TokenError::Credential(_) => "credential_unusable".into(),
        }
    }
}

/// The organisation a token's tenant is, per Graph.
#[derive(Debug, Clone)]
pub struct Organization {
    pub id: String,
    pub display_name: Option<String>,
    pub verified_domains: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    #[error("Graph answered HTTP {status}: {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// 429, or 503 with `Retry-After`: no call before `retry_after` has passed (ENTRA.md §7).
    #[error("Graph asked to wait {}s (HTTP {status})", retry_after.as_secs())]
    Throttled { status: u16, retry_after: Duration },
    #[error("Graph could not be reached ({0})")]
    Unreachable(String),
    #[error("Graph's answer could not be read ({0})")]
    Malformed(String),
}

/// A transport error in words, without the URL (which is ours, but long).
pub(crate) fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        "transport error".into()
    }
}

impl EntraClient {
    /// What operators are told about the app's credential.
    pub fn credential_summary(&self) -> super::CredentialSummary {
        self.credential.summary()
    }

    /// The shared outbound client (timeouts, no redirects, User-Agent).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// `https://graph.microsoft.com` (or the configured Graph host), without a slash.
    pub fn graph_host(&self) -> &str {
        &self.graph
    }

    /// The bearer value of a token, for the Graph client only.
    pub(crate) fn bearer(token: &AppToken) -> &str {
        token.access_token.expose_secret()
    }

    pub fn new(settings: &Settings) -> anyhow::Result<EntraClient> {
        // reqwest is built without a default TLS provider (to keep aws-lc's C build out);
        // ring is the process's, installed here so every embedder gets it. Idempotent.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading CONSENTRY_CA_FILE {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
                format!(
                    "CONSENTRY_CA_FILE {} holds no PEM certificate",
                    path.display()
                )
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("consentry/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(EntraClient {
            http,
            authority: settings
                .authority_host
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            graph: settings
                .graph_host
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            graph_resource: settings.cloud.graph_resource(),
            client_id: settings.client_id,
            credential: settings.credential.clone(),
            version: settings.token_version,
            metrics: None,
        })
    }

    /// Counts every token request's outcome in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// `{authority}/{tenant}/adminconsent?client_id&redirect_uri&state` (ENTRA.md §1), with
    /// `organizations` when the admin gave no tenant hint.
    pub fn admin_consent_url(
        &self,
        tenant_hint: Option<&str>,
        redirect_uri: &str,
        state: &str,
    ) -> String {
        // The hint was parsed as a GUID or DNS name at sign-up, so it is path-safe.
        let tenant = tenant_hint.unwrap_or("organizations");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id.to_string())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .finish();
        format!("{}/{tenant}/adminconsent?{query}", self.authority)
    }

    /// A client-credentials token for `tenant` (ENTRA.md §3).
    pub async fn app_token(&self, tenant: TenantId) -> Result<AppToken, TokenError> {
        let answer = self.request_token(tenant).await;
        if let Some(metrics) = &self.metrics {
            metrics.token_request(answer.as_ref().map(|_| ()));
        }
        answer
    }

    async fn request_token(&self, tenant: TenantId) -> Result<AppToken, TokenError> {
        let client_id = self.client_id.to_string();
        let resource = self.graph_resource;
        let (path, target) = match self.version {
            TokenVersion::V2 => (
                "oauth2/v2.0/token",
                ("scope", format!("{resource}/.default")),
            ),
            TokenVersion::V1 => ("oauth2/token", ("resource", resource.to_owned())),
        };
        let url = format!("{}/{tenant}/{path}", self.authority);
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            (target.0, target.1),
        ];
        let credential = self
            .credential
            .form_fields(&client_id, &url, time::OffsetDateTime::now_utc())
            .map_err(|e| TokenError::Credential(format!("{e:#}")))?;
        form.extend(credential);
        let response = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::Unreachable(transport(&e)))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Unreachable(transport(&e)))?;
        match (status.as_u16(), wait) {
            (429, wait) => {
                // No Retry-After on a 429 still means "not now": wait a little.
                let retry_after = wait.unwrap_or(Duration::from_secs(5));
                return Err(TokenError::Throttled {
                    status: 429,
                    retry_after,
                });
            }
            (503, Some(retry_after)) => {
                return Err(TokenError::Throttled {
                    status: 503,
                    retry_after,
                });
            }
            (s, _) if s >= 500 => return Err(TokenError::Server(s)),
            _ => {}
        }
        if status.is_success() {
            let parsed: wire::TokenResponse =
                serde_json::from_slice(&body).map_err(|e| TokenError::Malformed(e.to_string()))?;
            if parsed
                .token_type
                .as_deref()
                .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
            {
                return Err(TokenError::Malformed("token_type is not Bearer".into()));
            }
            let claims = read_claims(&parsed.access_token);
            let refresh_in = parsed.refresh_in();
            return Ok(AppToken {
                access_token: SecretString::from(parsed.access_token),
                expires_in: parsed.expires_in,
                refresh_in,
                ext_expires_in: parsed.ext_expires_in,
                tid: claims.as_ref().and_then(|c| c.tid.clone()),
                audience: claims.as_ref().and_then(|c| c.aud.clone()),
                roles: claims.map(|c| c.roles).unwrap_or_default(),
            });
        }
        match serde_json::from_slice::<wire::ErrorResponse>(&body) {
            Ok(err) => {
                let headline = err
                    .error_description
                    .as_deref()
                    .and_then(|d| d.lines().next())
                    .unwrap_or(err.error.as_str())
                    .to_owned();
                Err(TokenError::Refused {
                    status: status.as_u16(),
                    error: err.error,
                    codes: err.error_codes,
                    headline,
                })
            }
            Err(_) => Err(TokenError::Malformed(format!(
                "HTTP {} without an error body",
                status.as_u16()
            ))),
        }
    }

    /// Graph `GET /v1.0/organization` with an app token.
    pub async fn organization(&self, token: &AppToken) -> Result<Organization, GraphError> {
        let response = self
            .http
            .get(format!("{}/v1.0/organization", self.graph))
            .bearer_auth(token.access_token.expose_secret())
            .send()
            .await
            .map_err(|e| GraphError::Unreachable(transport(&e)))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| GraphError::Unreachable(transport(&e)))?;
        match (status.as_u16(), wait) {
            // Graph's throttling: the caller schedules its next call after the wait.
            (429, wait) => {
                return Err(GraphError::Throttled {
                    status: 429,
                    retry_after: wait.unwrap_or(Duration::from_secs(5)),
                });
            }
            (503, Some(retry_after)) => {
                return Err(GraphError::Throttled {
                    status: 503,
                    retry_after,
                });
            }
            _ => {}
        }
        if !status.is_success() {
            let (code, message) = match serde_json::from_slice::<wire::GraphErrorBody>(&body) {
                Ok(b) => (b.error.code, b.error.message),
                Err(_) => (format!("HTTP {}", status.as_u16()), String::new()),
            };
            return Err(GraphError::Status {
                status: status.as_u16(),
                code,
                message,
            });
        }
        let list: wire::OrganizationList =
            serde_json::from_slice(&body).map_err(|e| GraphError::Malformed(e.to_string()))?;
        let org = list
            .value
            .into_iter()
            .next()
            .ok_or_else(|| GraphError::Malformed("no organization in the answer".into()))?;
        Ok(Organization {
            id: org.id,
            display_name: org.display_name,
            verified_domains: org.verified_domains.into_iter().map(|d| d.name).collect(),
        })
    }
}

/// Decodes (does not validate: ENTRA.md §5) a JWT's payload.
fn read_claims(jwt: &str) -> Option<wire::AccessTokenClaims> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn retry_after_is_clamped_to_an_hour_however_long_it_is() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("86400")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(&headers("99999999999999999999999999999")),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after(&headers("-1")), None);
        assert_eq!(retry_after(&headers("1e9")), None);
        assert_eq!(retry_after(&headers("")), None);
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
    }
}

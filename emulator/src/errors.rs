//! Errors in Microsoft's wire shapes: the identity platform's AADSTS JSON (RFC 6749 §5.2 plus
//! Microsoft's fields) and Microsoft Graph's OData error object.
//!
//! Texts follow what real responses show; clients must branch on `error` and `error_codes`,
//! never on the text (ENTRA.md §3), and the emulator's tests do the same.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use time::OffsetDateTime;
use uuid::Uuid;

use super::assertion::{AssertionError, KeyInfo};
use super::audit::Refusal;
use super::clock::sts_timestamp;

/// `2024-10-02T22:05:03.6755165Z`: how AADSTS700024 writes times.
fn precise_timestamp(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:7]Z"
    );
    t.format(FORMAT).unwrap_or_default()
}

/// `01/28/2019 16:00:00`: how AADSTS700027 writes a key's validity.
fn key_date(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] =
        time::macros::format_description!("[month]/[day]/[year] [hour]:[minute]:[second]");
    t.format(FORMAT).unwrap_or_default()
}

/// The OAuth 2.0 `error` value (RFC 6749 §5.2) that goes with an AADSTS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthError {
    /// RFC 6749 §5.2: missing, repeated or malformed parameter; unknown tenant.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (HTTP 401).
    InvalidClient,
    /// RFC 6749 §5.2: the client may not use this grant here (no service principal).
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the requested scope is invalid.
    InvalidScope,
    /// Microsoft's extension: the resource does not exist in the tenant.
    InvalidResource,
    /// Microsoft's extension, on discovery documents: no such tenant.
    InvalidTenant,
    /// RFC 6749 §4.1.2.1 defines it for the authorization endpoint; Microsoft answers it on
    /// the token endpoint too, with a 5xx or 429, for transient failures (AADSTS90033).
    TemporarilyUnavailable,
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked, replayed, or
    /// was issued to another client or redirect URI.
    InvalidGrant,
    /// RFC 6749 §4.1.2.1: the person or the tenant's policy refused.
    AccessDenied,
    /// RFC 6749 §4.1.2.1: the response type is not enabled for the app.
    UnsupportedResponseType,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and no one is signed in.
    LoginRequired,
    /// OpenID Connect Core §3.1.2.6: `prompt=none` and the person must act (consent).
    InteractionRequired,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::InvalidResource => "invalid_resource",
            OAuthError::InvalidTenant => "invalid_tenant",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::LoginRequired => "login_required",
            OAuthError::InteractionRequired => "interaction_required",
        }
    }
}

/// An identity-platform error: an AADSTS code with its OAuth error and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    pub error: OAuthError,
    pub code: u32,
    pub message: String,
    status: StatusCode,
    /// Seconds for a `Retry-After` header; only transient errors carry one.
    retry_after_secs: Option<u32>,
}

impl StsError {
    /// 401 for client-authentication failures (RFC 6749 §5.2), 400 for the rest.
    pub(super) fn new(error: OAuthError, code: u32, message: impl Into<String>) -> StsError {
        let status = match error {
            OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        StsError {
            error,
            code,
            message: message.into(),
            status,
            retry_after_secs: None,
        }
    }

    /// An injected throttling or server error. Microsoft's 5xx answers from the token
    /// endpoint carry exactly this body (a 503 with `temporarily_unavailable` and
    /// AADSTS90033, as reported in Azure/azure-sdk-for-python#14241). Its 429s are another
    /// matter: MSAL.NET's AzureAD/microsoft-authentication-library-for-dotnet#2855 shows a
    /// 429 with `Retry-After: 60` and the plain-text body "Too Many Requests", which MSAL
    /// could not parse. By default the emulator answers its 429s in the same JSON as the
    /// 5xx, so that clients can branch on `error` and `error_codes` as they do for every
    /// other answer; the fault field `throttle_body: "text"` gives the plain text instead,
    /// to test that clients honour the status and `Retry-After` before the body.
    pub fn transient(status: StatusCode, retry_after_secs: Option<u32>) -> StsError {
        StsError {
            status,
            retry_after_secs,
            ..Self::new(
                OAuthError::TemporarilyUnavailable,
                90033,
                "A transient error has occurred. Please try again.",
            )
        }
    }

    pub fn tenant_not_found(tenant: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub fn invalid_tenant(tenant: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            900023,
            format!(
                "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
            ),
        )
    }

    /// Client credentials sent to `/common` or `/organizations`: no tenant to issue for.
    pub fn no_tenant_information() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            50059,
            "No tenant-identifying information found in either the request or implied by any provided credentials.",
        )
    }

    pub fn missing_parameter(name: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub fn repeated_parameter(name: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            9000411,
            format!("The request is not properly formatted. The parameter '{name}' is duplicated."),
        )
    }

    pub fn too_long() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            50091,
            "Passed query string length exceeds supported limit.",
        )
    }

    /// On the consent page (a browser URL): the query string is over the limit.
    pub fn query_too_long() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            90015,
            "Requested query string is too long.",
        )
    }

    pub fn malformed(detail: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            9002313,
            format!("Invalid request. Request is malformed or invalid. {detail}"),
        )
    }

    pub fn method_not_allowed(method: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            900561,
            format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {method} request."
            ),
        )
    }

    pub fn invalid_client_id(value: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            700038,
            format!("{value} is not a valid application identifier."),
        )
    }

    /// The app has no service principal in the tenant (never consented, or revoked), or the
    /// client id is not registered at all.
    pub fn app_not_found(client_id: &str, directory: &str) -> StsError {
        Self::new(
            OAuthError::UnauthorizedClient,
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub fn invalid_secret(client_id: &str) -> StsError {
        Self::new(
            OAuthError::InvalidClient,
            7000215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    pub fn no_credential() -> StsError {
        Self::new(
            OAuthError::InvalidClient,
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    /// A client assertion the identity platform refused. Codes and texts follow real
    /// responses: 700027 with "The key was not found." (Azure/azure-sdk-for-net#29007) and
    /// "The key used is expired." (microsoft/azure-tools-for-java#2785); 700024
    /// (AzureAD/microsoft-authentication-library-for-java#984); 700021 and 700023 (the Azure
    /// SDK for Java's service-principal troubleshooting page, learn.microsoft.com; and
    /// AzureAD/microsoft-authentication-library-for-dotnet#2746); 50048
    /// (AzureAD/microsoft-authentication-library-for-java#430); 50027 as `invalid_request`
    /// (MSAL.NET's test data; GitLab's docs show it with 400); 5002730
    /// (AzureAD/microsoft-authentication-library-for-dotnet#4712); 70021 as `invalid_request`
    /// (Azure/azure-workload-identity#616). A signature that fails to verify answers 700027
    /// with the reason Microsoft gives for 50013 in the same case
    /// (Azure/azure-sdk-for-java#25109): an approximation.
    pub fn client_assertion(e: &AssertionError, client_id: &str) -> StsError {
        const SEE_KEYS: &str = "Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id";
        const DOCS: &str = "Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .";
        let invalid_signature = |reason: &str, key: &KeyInfo| {
            Self::new(
                OAuthError::InvalidClient,
                700027,
                format!(
                    "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used by client: '{}', Found key 'Start={}, End={}', {SEE_KEYS} '{client_id}'.]",
                    key.thumbprint,
                    key_date(key.start),
                    key_date(key.end)
                ),
            )
        };
        match e {
            AssertionError::Malformed => Self::new(
                OAuthError::InvalidRequest,
                50027,
                "JWT token is invalid or malformed.",
            ),
            AssertionError::UnsupportedAlgorithm => Self::new(
                OAuthError::InvalidRequest,
                5002730,
                "Invalid JWT token. Unsupported key for the signing algorithm.",
            ),
            AssertionError::KeyNotFound { thumbprint } => Self::new(
                OAuthError::InvalidClient,
                700027,
                match thumbprint {
                    Some(t) => format!(
                        "Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{t}', {SEE_KEYS} '{client_id}'.]"
                    ),
                    None => format!(
                        "Client assertion contains an invalid signature. [Reason - The key was not found., {SEE_KEYS} '{client_id}'.]"
                    ),
                },
            ),
            AssertionError::KeyExpired(key) => invalid_signature("The key used is expired.", key),
            AssertionError::BadSignature(key) => invalid_signature(
                "The provided signature value did not match the expected signature value.",
                key,
            ),
            AssertionError::OutsideValidity { now, nbf, exp } => {
                let at = |secs: i64| {
                    OffsetDateTime::from_unix_timestamp(secs)
                        .map(precise_timestamp)
                        .unwrap_or_default()
                };
                Self::new(
                    OAuthError::InvalidClient,
                    700024,
                    format!(
                        "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. {DOCS}",
                        precise_timestamp(*now),
                        at(nbf.unwrap_or(0)),
                        at(*exp)
                    ),
                )
            }
            AssertionError::SubjectNotIssuer => Self::new(
                OAuthError::InvalidClient,
                50048,
                "Subject must match the issuer claim in the client assertion.",
            ),
            AssertionError::WrongClient => Self::new(
                OAuthError::InvalidClient,
                700021,
                format!(
                    "Client assertion application identifier doesn't match 'client_id' parameter. {DOCS}"
                ),
            ),
            AssertionError::WrongAudience => Self::new(
                OAuthError::InvalidClient,
                700023,
                format!("Client assertion audience claim does not match Realm issuer. {DOCS}"),
            ),
            AssertionError::NoFederatedMatch {
                issuer,
                subject,
                audience,
            } => Self::new(
                OAuthError::InvalidRequest,
                70021,
                format!(
                    "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{audience}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
                ),
            ),
        }
    }

    pub fn unsupported_grant_type(grant: &str) -> StsError {
        Self::new(
            OAuthError::UnsupportedGrantType,
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    pub fn invalid_scope(scope: &str) -> StsError {
        Self::new(
            OAuthError::InvalidScope,
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        )
    }

    pub fn several_resources(scope: &str) -> StsError {
        Self::new(
            OAuthError::InvalidScope,
            700022,
            format!(
                "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        )
    }

    pub fn resource_not_found(resource: &str, directory: &str) -> StsError {
        Self::new(
            OAuthError::InvalidResource,
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {directory}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        )
    }

    /// Shown on the consent page, never sent to the app.
    pub fn redirect_uri_mismatch(redirect_uri: &str, client_id: &str) -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."
            ),
        )
    }

    /// Personal accounts have no administrator who could consent for an organisation.
    pub fn consumers_cannot_consent() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            90002,
            "Tenant 'consumers' not found. Admin consent requires a work or school account: use a tenant id, a domain, 'organizations' or 'common'.",
        )
    }

    /// Sent back to the app when the administrator cancels.
    pub fn declined() -> StsError {
        Self::new(
            OAuthError::InvalidRequest,
            65004,
            "User declined to consent to access the app.",
        )
    }

    /// Discovery documents say `invalid_tenant` where the token endpoint says `invalid_request`.
    pub fn on_discovery(mut self) -> StsError {
        if self.error == OAuthError::InvalidRequest {
            self.error = OAuthError::InvalidTenant;
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// `AADSTS{code}: {message}`
    pub fn headline(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.message)
    }

    /// The headline followed by the trace lines Microsoft appends.
    pub fn description(&self, ids: &RequestIds) -> String {
        format!(
            "{}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            self.headline(),
            ids.trace_id,
            ids.correlation_id,
            sts_timestamp(ids.at)
        )
    }

    /// The token endpoint's JSON error response.
    pub fn to_json_response(&self, ids: &RequestIds, base_url: &str) -> HttpResponse {
        let body = serde_json::json!({
            "error": self.error.as_str(),
            "error_description": self.description(ids),
            "error_codes": [self.code],
            "timestamp": sts_timestamp(ids.at),
            "trace_id": ids.trace_id,
            "correlation_id": ids.correlation_id,
            "error_uri": format!("{base_url}/error?code={}", self.code),
        });
        let mut response = HttpResponse::build(self.status());
        response
            .insert_header(("Cache-Control", "no-store, no-cache"))
            .insert_header(("Pragma", "no-cache"))
            .insert_header(("x-ms-request-id", ids.trace_id.to_string()));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        let mut response = response.json(body);
        response.extensions_mut().insert(self.refusal());
        response
    }

    /// Why the request was refused, for the request audit.
    pub fn refusal(&self) -> Refusal {
        Refusal::sts(self.code)
    }
}

/// The ids Microsoft stamps on every response, for correlating with its logs.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub trace_id: Uuid,
    /// The client's `client-request-id` when it sent a GUID (MSAL does), else a new one.
    pub correlation_id: Uuid,
    pub at: OffsetDateTime,
}

impl RequestIds {
    pub fn new(req: &HttpRequest, at: OffsetDateTime) -> RequestIds {
        let correlation_id = req
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::try_parse(v).ok())
            .unwrap_or_else(Uuid::new_v4);
        RequestIds {
            trace_id: Uuid::new_v4(),
            correlation_id,
            at,
        }
    }
}

/// A Microsoft Graph error: `{"error":{"code","message","innerError"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (throttling and 503).
    pub retry_after_secs: Option<u32>,
}

impl GraphError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> GraphError {
        GraphError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// Graph's throttling answer: 429, `TooManyRequests`, a `Retry-After` (ENTRA.md §7;
    /// learn.microsoft.com/graph/throttling).
    pub fn throttled(retry_after_secs: u32) -> GraphError {
        GraphError {
            retry_after_secs: Some(retry_after_secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Too many requests. Please try again later.",
            )
        }
    }

    /// A server-side failure. Graph's documented codes (learn.microsoft.com/graph/errors):
    /// `serviceNotAvailable` for 503, which "may" carry a `Retry-After`, and
    /// `generalException` ("an unspecified error") for the rest; Graph documents no
    /// specific codes for 502 and 504, so those are an approximation.
    pub fn unavailable(status: StatusCode, retry_after_secs: Option<u32>) -> GraphError {
        let error = if status == StatusCode::SERVICE_UNAVAILABLE {
            Self::new(
                status,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Try the request again after a delay.",
            )
        } else {
            Self::new(
                status,
                "generalException",
                "An unspecified error has occurred.",
            )
        };
        GraphError {
            retry_after_secs,
            ..error
        }
    }

    fn unauthenticated(message: impl Into<String>) -> GraphError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    pub fn empty_token() -> GraphError {
        Self::unauthenticated("Access token is empty.")
    }

    pub fn malformed_token() -> GraphError {
        Self::unauthenticated("CompactToken parsing failed with error code: 80049217")
    }

    pub fn bad_signature() -> GraphError {
        Self::unauthenticated("Signature is invalid.")
    }

    pub fn expired() -> GraphError {
        Self::unauthenticated("Lifetime validation failed, the token is expired.")
    }

    pub fn not_yet_valid() -> GraphError {
        Self::unauthenticated("Lifetime validation failed, the token is not yet valid.")
    }

    /// What Graph answers for a token it stopped accepting before its `exp` (an injected
    /// `unauthorized_next`): the wording Graph uses for tokens outside their lifetime.
    pub fn no_longer_accepted() -> GraphError {
        Self::unauthenticated("Access token has expired or is not yet valid.")
    }

    pub fn wrong_audience() -> GraphError {
        Self::unauthenticated("Access token validation failure. Invalid audience.")
    }

    pub fn unknown_tenant() -> GraphError {
        Self::unauthenticated(
            "Access token validation failure. The tenant of the token no longer exists.",
        )
    }

    pub fn insufficient_privileges() -> GraphError {
        Self::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    pub fn bad_page_size(top: &str) -> GraphError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            format!("Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."),
        )
    }

    pub fn unknown_property(property: &str, entity: &str) -> GraphError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!(
                "Could not find a property named '{property}' on type 'microsoft.graph.{entity}'."
            ),
        )
    }

    pub fn unsupported_option(option: &str) -> GraphError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("'{option}' is not supported by the service."),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> GraphError {
        Self::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
    }

    pub fn bad_skiptoken() -> GraphError {
        Self::bad_request(
            "The specified page token value has expired or is not valid and can no longer be included in your request.",
        )
    }

    pub fn no_such_segment(segment: &str) -> GraphError {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    pub fn method_not_allowed() -> GraphError {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    pub fn to_response(
        &self,
        req: &HttpRequest,
        request_id: Uuid,
        at: OffsetDateTime,
    ) -> HttpResponse {
        let client_request_id = req
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| request_id.to_string());
        const DATE: &[time::format_description::FormatItem<'static>] =
            time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "innerError": {
                    "date": at.format(DATE).unwrap_or_default(),
                    "request-id": request_id,
                    "client-request-id": client_request_id,
                }
            }
        });
        let mut response = HttpResponse::build(self.status);
        response.insert_header(("request-id", request_id.to_string()));
        if let Some(secs) = self.retry_after_secs {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                "WWW-Authenticate",
                r#"Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000""#,
            ));
        }
        let mut response = response.json(body);
        // Messages of these codes are fixed texts; the others quote the query or path.
        let reason = match self.code {
            "InvalidAuthenticationToken"
            | "Authorization_RequestDenied"
            | "TooManyRequests"
            | "serviceNotAvailable"
            | "generalException" => self.message.as_str(),
            _ => "the path, query or method is not one Graph serves",
        };
        response
            .extensions_mut()
            .insert(Refusal::new(Some(self.code.to_owned()), reason));
        response
    }
}

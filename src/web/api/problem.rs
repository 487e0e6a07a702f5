//! RFC 9457 problem details: every error of the API is `application/problem+json` with
//! `type`, `title`, `status`, `detail` and the request id that the logs and the
//! `x-request-id` header carry.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, Responder, ResponseError};
use serde::Serialize;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{ToResponse, ToSchema};

use crate::store::StoreError;
use crate::web::error::retry_after_secs;
use crate::web::middleware::{OwnPage, RequestId};

/// An API error, ready to be sent.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    detail: String,
    request_id: String,
    /// `Retry-After`, in seconds (429, 503).
    retry_after: Option<u64>,
    /// `WWW-Authenticate` (RFC 6750 §3) for 401 and 403.
    authenticate: Option<String>,
}

/// An RFC 9457 problem document (`application/problem+json`): what went wrong, and the id
/// of the request, which the logs and the `x-request-id` header carry too.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody<'a> {
    /// Always `about:blank` (RFC 9457 §4.2.1): the status says what kind of problem it is.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: &'static str,
    /// The status's reason phrase.
    #[schema(example = "Not Found")]
    pub title: &'static str,
    /// The HTTP status code, as sent.
    #[schema(example = 404)]
    pub status: u16,
    /// What happened and what to do about it, in plain words.
    #[schema(example = "There is no tenant with this id.")]
    pub detail: &'a str,
    /// The id of the request, to quote when asking the operators.
    #[schema(example = "0193c2a4-6f1e-7c3a-9b2d-5e8f1a2b3c4d")]
    pub request_id: &'a str,
}

/// A problem response component: `description`, an `application/problem+json` body with
/// the [`ProblemBody`] schema, and `headers` (name, description).
fn problem_response(description: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    for (name, about) in headers {
        let schema = ObjectBuilder::new().schema_type(Type::String);
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(schema)
                .description(Some(*about))
                .build(),
        );
    }
    response.build().into()
}

/// The problem responses the routes share, each an OpenAPI response component that a
/// route's `#[utoipa::path(responses(...))]` names, e.g.
/// `(status = 404, response = problem::NotFound)`. A route whose problem needs a
/// description of its own spells it out instead:
/// `(status = 409, description = "...", body = ProblemBody, content_type =
/// "application/problem+json")`.
macro_rules! problem_responses {
    ($($name:ident: $description:literal $(, $header:literal = $about:expr)*;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), problem_response($description, &[$(($header, $about)),*]))
                }
            }
        )*
    };
}

/// The media type of every error of the API.
const PROBLEM_JSON: &str = "application/problem+json";

const AUTHENTICATE_DOC: &str = "`Bearer realm=\"consentry\"`, with `error=\"insufficient_scope\"` and \
    the `scope` needed on a 403 (RFC 6750 §3).";

problem_responses! {
    BadRequest: "The query or the path is malformed; `detail` names the parameter and what it \
        takes.";
    Unauthorized: "No usable API key: missing, malformed, unknown or revoked.",
        "WWW-Authenticate" = AUTHENTICATE_DOC;
    Forbidden: "The API key lacks the scope this route needs; `WWW-Authenticate` names it.",
        "WWW-Authenticate" = AUTHENTICATE_DOC;
    NotFound: "There is no tenant with this id (or the id is not a tenant id).";
    TooManyRequests: "Too many requests with this API key (or too many checks asked of this \
        tenant); `Retry-After` says when to try again.",
        "Retry-After" = "Seconds to wait before the next request.";
    ServiceUnavailable: "Busy: the database, or Microsoft asked to wait. Nothing was changed; \
        try again after `Retry-After`.",
        "Retry-After" = "Seconds to wait before trying again.";
    BadGateway: "Microsoft's answer was an error or could not be read; `detail` names its code.";
    BadJsonBody: "The body is not well-formed JSON, has a field this route does not take, lacks \
        one it needs, or has a value of the wrong type; `detail` says which.";
    PayloadTooLarge: "The body is larger than 8 KB.";
    UnsupportedMediaType: "The body is not `application/json`.";
    EndpointRefused: "A field's value is refused (a URL that is not http(s), carries \
        credentials, is too long or leads to a non-public address; an unknown event type; an \
        empty `event_types`; a description over 500 characters; a `state` other than `enabled` \
        or `paused`); `detail` names the field. Nothing was written.";
    InternalServerError: "Something went wrong on consentry's side; the logs have the cause \
        under the request id.";
}

impl Problem {
    pub fn new(req: &HttpRequest, status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            detail: detail.into(),
            request_id: request_id_of(req),
            retry_after: None,
            authenticate: None,
        }
    }

    /// 400: the request is malformed; `detail` says how.
    pub fn bad_request(req: &HttpRequest, detail: impl Into<String>) -> Problem {
        Problem::new(req, StatusCode::BAD_REQUEST, detail)
    }

    /// 401: no usable API key (missing, malformed, unknown or revoked).
    pub fn unauthorized(req: &HttpRequest, detail: impl Into<String>) -> Problem {
        Problem {
            authenticate: Some("Bearer realm=\"consentry\"".to_owned()),
            ..Problem::new(req, StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 403: the key lacks `scope`.
    pub fn insufficient_scope(request_id: &str, scope: &str) -> Problem {
        Problem {
            status: StatusCode::FORBIDDEN,
            detail: format!("This API key lacks the scope {scope}, which this route needs."),
            request_id: request_id.to_owned(),
            retry_after: None,
            authenticate: Some(format!(
                "Bearer realm=\"consentry\", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
        }
    }

    /// 429: the key's rate limit; `Retry-After` says when the next request is allowed.
    pub fn too_many_requests(req: &HttpRequest, wait: Duration) -> Problem {
        let secs = retry_after_secs(wait);
        Problem {
            retry_after: Some(secs),
            ..Problem::new(
                req,
                StatusCode::TOO_MANY_REQUESTS,
                format!("This API key made too many requests. Try again in {secs} s."),
            )
        }
    }

    /// 429: early checks of this tenant are spaced (`store/early_check.rs`), whoever asked.
    pub fn checks_spaced(req: &HttpRequest, wait: Duration) -> Problem {
        let secs = retry_after_secs(wait);
        Problem {
            retry_after: Some(secs),
            ..Problem::new(
                req,
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "This tenant's checks were asked for too often: at most two at once, then one a minute. Try again in {secs} s."
                ),
            )
        }
    }

    /// 503 for a busy database (try again), 500 for anything else: the cause is logged
    /// with the request id, never sent.
    pub fn from_store(request_id: &str, error: StoreError) -> Problem {
        let (status, detail, retry_after) = match &error {
            StoreError::Unavailable(_) => {
                tracing::warn!(%request_id, %error, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is busy right now. Nothing was changed: try again in a moment.",
                    Some(5),
                )
            }
            StoreError::Other(_) => {
                tracing::error!(%request_id, cause = ?error, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side.",
                    None,
                )
            }
        };
        Problem {
            status,
            detail: detail.to_owned(),
            request_id: request_id.to_owned(),
            retry_after,
            authenticate: None,
        }
    }

    /// The same problem with `Retry-After: secs`.
    pub fn with_retry_after(self, secs: u64) -> Problem {
        Problem {
            retry_after: Some(secs),
            ..self
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// The id the request-id middleware gave this request.
pub fn request_id_of(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default()
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = ProblemBody {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            request_id: &self.request_id,
        };
        let mut response = HttpResponse::build(self.status);
        response.content_type(PROBLEM_JSON);
        if let Some(secs) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(value) = self
            .authenticate
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        let mut response = response.body(serde_json::to_string(&body).unwrap_or_default());
        // The body is the answer: not to be replaced by the HTML error page.
        response.extensions_mut().insert(OwnPage);
        response
    }
}

impl Responder for Problem {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &HttpRequest) -> HttpResponse {
        self.error_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429_is_a_problem_with_retry_after_rounded_up() {
        let req = actix_web::test::TestRequest::default().to_http_request();

        let response =
            Problem::too_many_requests(&req, Duration::from_millis(1500)).error_response();

        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert!(response.extensions().get::<OwnPage>().is_some());
    }

    #[test]
    fn a_403_names_the_missing_scope_in_www_authenticate() {
        let response = Problem::insufficient_scope("rid", "tenants:read").error_response();

        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE).unwrap(),
            "Bearer realm=\"consentry\", error=\"insufficient_scope\", scope=\"tenants:read\""
        );
    }
}

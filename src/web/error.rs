//! The web layer's errors. Each variant documents its status; all render through the one
//! error page, which shows the request id that also appears in the logs.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// 400: the request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// 403: a POST without its CSRF token.
    #[error(
        "This form has expired or did not come from this site. Go back, reload the page and try again."
    )]
    Csrf,
    /// 404: no such page or tenant.
    #[error("There is nothing here.")]
    NotFound,
    /// 429: a rate limit.
    #[error("Too many attempts from your address. Wait a minute and try again.")]
    TooManyRequests,
    /// 503: the database is busy, locked or full. Nothing was written; try again.
    #[error("The service is busy right now. Nothing was lost: please try again in a moment.")]
    Unavailable,
    /// 500: a bug. The cause is logged with the request id, never shown.
    #[error("Something went wrong on our side.")]
    Internal(#[source] anyhow::Error),
}

/// Attached to error responses; the error-page middleware renders it.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub message: String,
    /// For the log only.
    pub cause: Option<String>,
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> WebError {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                WebError::Unavailable
            }
            StoreError::Other(_) => WebError::Internal(anyhow::Error::new(e)),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, WebError::Unavailable | WebError::TooManyRequests) {
            response.insert_header(("Retry-After", "5"));
        }
        let mut response = response.finish();
        let cause = match self {
            WebError::Internal(e) => Some(format!("{e:#}")),
            _ => None,
        };
        response.extensions_mut().insert(ErrorPage {
            message: self.to_string(),
            cause,
        });
        response
    }
}

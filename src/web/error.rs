//! The web layer's errors. Each variant documents its status; all render through the one
//! error page, which shows the request id that also appears in the logs.

use std::time::Duration;

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
    /// 429: a rate limit per client; `Retry-After` is the time until the next request is
    /// allowed, rounded up to a second.
    #[error(
        "Too many requests from your address. Try again in {}.",
        in_words(*retry_after)
    )]
    TooManyRequests { retry_after: Duration },
    /// 429: too many failed sign-ins from this address (or for this name from it); `Retry-After` is
    /// the time until the next attempt is allowed, rounded up to a second.
    #[error(
        "Too many attempts from your address. Try again in {}.",
        in_words(*retry_after)
    )]
    TooManyAttempts { retry_after: Duration },
    /// 503: every password check is busy (they are bounded: each takes 19 MiB);
    /// `Retry-After` says when to try again. Nothing was counted against the attempt.
    #[error("Too many sign-ins are being checked right now. Try again in a few seconds.")]
    LoginBusy { retry_after: Duration },
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

/// `Retry-After` in whole seconds, rounded up (waiting less would be refused again), at
/// least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// "45 seconds", "1 minute", "3 minutes".
fn in_words(wait: Duration) -> String {
    let secs = retry_after_secs(wait);
    match secs {
        1 => "a second".to_owned(),
        2..=90 => format!("{secs} seconds"),
        _ => {
            let minutes = secs.div_ceil(60);
            format!("{minutes} minutes")
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::TooManyRequests { .. } | WebError::TooManyAttempts { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            WebError::LoginBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            WebError::Unavailable => {
                response.insert_header(("Retry-After", "5"));
            }
            WebError::TooManyRequests { retry_after }
            | WebError::TooManyAttempts { retry_after }
            | WebError::LoginBusy { retry_after } => {
                response.insert_header(("Retry-After", retry_after_secs(*retry_after).to_string()));
            }
            _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(59)), 59);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
    }

    #[test]
    fn the_429_says_the_wait_in_words() {
        let error = WebError::TooManyAttempts {
            retry_after: Duration::from_millis(44_200),
        };
        assert_eq!(
            error.to_string(),
            "Too many attempts from your address. Try again in 45 seconds."
        );
        let long = WebError::TooManyAttempts {
            retry_after: Duration::from_secs(150),
        };
        assert!(long.to_string().ends_with("in 3 minutes."), "{long}");
    }
}

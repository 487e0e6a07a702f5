//! CSRF defence for every POST: the session's token on operator forms, a double-submit
//! cookie on anonymous ones (sign-up, login). Compared in constant time.

use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use super::cookies;
use crate::domain::RandomToken;

pub fn matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| {
        !expected.is_empty() && bool::from(p.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// The browser's anonymous-form token, or a new one to set.
pub fn form_token(req: &HttpRequest) -> (String, bool) {
    match req
        .cookie(cookies::FORM)
        .and_then(|c| RandomToken::parse(c.value()))
    {
        Some(token) => (token.expose().to_owned(), false),
        None => (RandomToken::generate().expose().to_owned(), true),
    }
}

/// Whether a submitted anonymous form carries the token of its cookie.
pub fn form_ok(req: &HttpRequest, presented: Option<&str>) -> bool {
    req.cookie(cookies::FORM)
        .is_some_and(|c| matches(c.value(), presented))
}

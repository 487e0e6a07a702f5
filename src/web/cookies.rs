//! Every cookie consentry sets is built here: HttpOnly always, Secure whenever the public
//! URL is https, SameSite and Path chosen per purpose.

use actix_web::cookie::{Cookie, SameSite, time::Duration};

/// Binds a sign-up's `state` to the browser (RFC 9700 §2.1). Lax, because Microsoft's
/// redirect back to the callback is a cross-site top-level navigation.
pub const BINDING: &str = "consentry_binding";
/// An operator's session. Strict: no cross-site request carries it.
pub const SESSION: &str = "consentry_session";
/// The double-submit CSRF token of anonymous forms (sign-up, login).
pub const FORM: &str = "consentry_form";

pub fn binding(value: &str, secure: bool) -> Cookie<'static> {
    build(
        BINDING,
        value,
        "/consent",
        SameSite::Lax,
        secure,
        Duration::days(1),
    )
}

pub fn session(value: &str, secure: bool) -> Cookie<'static> {
    build(
        SESSION,
        value,
        "/admin",
        SameSite::Strict,
        secure,
        Duration::hours(12),
    )
}

pub fn form(value: &str, secure: bool) -> Cookie<'static> {
    build(
        FORM,
        value,
        "/",
        SameSite::Strict,
        secure,
        Duration::hours(2),
    )
}

/// An expired cookie that makes the browser forget `name`.
pub fn removal(name: &'static str, path: &'static str, secure: bool) -> Cookie<'static> {
    build(name, "", path, SameSite::Strict, secure, Duration::ZERO)
}

fn build(
    name: &'static str,
    value: &str,
    path: &'static str,
    same_site: SameSite,
    secure: bool,
    max_age: Duration,
) -> Cookie<'static> {
    Cookie::build(name, value.to_owned())
        .path(path)
        .http_only(true)
        .secure(secure)
        .same_site(same_site)
        .max_age(max_age)
        .finish()
}

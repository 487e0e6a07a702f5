//! Every cookie consentry sets is built here: HttpOnly always, Secure whenever the public
//! URL is https, SameSite and Path chosen per purpose.

use actix_web::cookie::{Cookie, SameSite, time::Duration};

/// Binds a sign-up's `state` to the browser (RFC 9700 §2.1). Lax, because Microsoft's
/// redirect back to the callback is a cross-site top-level navigation. `Path=/`: sign-up,
/// re-consent, callback and status page all see the one binding of this browser, so a
/// second tab or a re-consent link reuses it instead of minting one that orphans the first.
pub const BINDING: &str = "consentry_binding";
/// An operator's session. Strict: no cross-site request carries it.
pub const SESSION: &str = "consentry_session";
/// The double-submit CSRF token of anonymous forms (sign-up, login).
pub const FORM: &str = "consentry_form";

pub fn binding(value: &str, secure: bool) -> Cookie<'static> {
    build(
        BINDING,
        value,
        "/",
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

/// Every binding this browser sent, parsed: normally one, but a browser may still hold one
/// set with an older path, and every flow it started must keep working.
pub fn bindings(req: &actix_web::HttpRequest) -> Vec<crate::domain::RandomToken> {
    req.cookies()
        .map(|cookies| {
            cookies
                .iter()
                .filter(|c| c.name() == BINDING)
                .filter_map(|c| crate::domain::RandomToken::parse(c.value()))
                .take(4)
                .collect()
        })
        .unwrap_or_default()
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

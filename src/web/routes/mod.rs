//! Routes: the public onboarding pages and the operator dashboard under `/admin`.

mod admin;
mod callback;
mod invite;
mod ready;
mod signup;
mod signup_sign_in;
mod status;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use super::middleware::RequestId;

pub use admin::POST_ROUTES as ADMIN_POST_ROUTES;
pub use callback::RefusedCallbacks;

/// Routes go through `web::resource`, not `cfg.route`: the latter moves the method guard
/// onto the resource, so a wrong method would fall through to a 404 instead of a 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").get(signup::landing))
        .service(web::resource("/signup").post(signup::submit))
        .service(web::resource("/signup/microsoft").post(signup_sign_in::start))
        .service(web::resource("/signup/signed-in").get(signup_sign_in::signed_in))
        .service(
            web::resource("/invite/{token}")
                .get(invite::show)
                .post(invite::start),
        )
        .service(web::resource("/consent/callback").get(callback::callback))
        .service(web::resource("/consent/status").get(status::status))
        .service(web::resource("/static/consentry.css").get(stylesheet))
        .service(web::resource("/health").get(|| async { HttpResponse::Ok().body("ok") }))
        .service(web::resource("/readyz").get(ready::readyz))
        .service(
            web::scope("/admin")
                .wrap(actix_web::middleware::from_fn(admin::enforce_roles))
                .configure(admin::configure),
        );
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../static/consentry.css"))
}

/// The id the request-id middleware gave this request.
fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default()
}

/// The client's address, for rate limits (the peer: consentry does not trust forwarding
/// headers it cannot authenticate), as `rate_limit::client_key` names it.
fn client_addr(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| super::rate_limit::client_key(a.ip()))
        .unwrap_or_else(|| "unknown".into())
}

/// The client's network, for bounds that a single address could dodge: an IPv4 address
/// (an attacker rarely holds many), an IPv6 /48 (one site's allocation: 65,536 /64s).
fn client_network(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| super::rate_limit::client_prefix(a.ip(), 48))
        .unwrap_or_else(|| "unknown".into())
}

/// Renders an askama template as a page of its own (not replaced by the error page).
fn page(
    status: actix_web::http::StatusCode,
    rendered: askama::Result<String>,
) -> Result<HttpResponse, super::WebError> {
    let body = rendered.map_err(|e| super::WebError::Internal(anyhow::Error::new(e)))?;
    let mut response = HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body);
    response.extensions_mut().insert(super::middleware::OwnPage);
    Ok(response)
}

#[cfg(test)]
mod stylesheet_tests {
    //! The status colours of `static/consentry.css`: every status has its pair, the badges
    //! use them, the text passes WCAG AA on its background, and no two look alike.

    use crate::domain::TenantStatus;

    const CSS: &str = include_str!("../../../static/consentry.css");

    /// `#rrggbb` of the custom property `name`, as `:root` defines it.
    fn colour(name: &str) -> [u8; 3] {
        let declaration = format!("{name}:");
        let at = CSS
            .find(&declaration)
            .unwrap_or_else(|| panic!("{name} is defined"));
        let value = CSS[at + declaration.len()..]
            .trim_start()
            .split(';')
            .next()
            .expect("a value")
            .trim();
        assert!(
            value.len() == 7 && value.starts_with('#'),
            "{name} is #rrggbb: {value}"
        );
        let channel = |i: usize| u8::from_str_radix(&value[i..i + 2], 16).expect("hex");
        [channel(1), channel(3), channel(5)]
    }

    /// WCAG 2.x relative luminance.
    fn luminance([r, g, b]: [u8; 3]) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    }

    fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    fn distance(a: [u8; 3], b: [u8; 3]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(y)).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    /// Every status, and the "never verified" mark.
    fn names() -> Vec<&'static str> {
        let mut names: Vec<&str> = TenantStatus::ALL.iter().map(|s| s.as_str()).collect();
        names.push("unverified");
        names
    }

    #[test]
    fn the_tests_arithmetic_matches_wcag() {
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 1e-9);
        assert!((contrast([0x76, 0x76, 0x76], [255, 255, 255]) - 4.54).abs() < 0.01);
    }

    #[test]
    fn every_status_badge_has_its_own_colours_and_aa_contrast() {
        for name in names() {
            let (bg, fg) = (
                colour(&format!("--status-{name}-bg")),
                colour(&format!("--status-{name}-fg")),
            );
            let ratio = contrast(bg, fg);
            assert!(ratio >= 4.5, "{name}: {ratio:.2}:1 is below WCAG AA");
            let rule = CSS
                .split(&format!(".badge.{name} {{"))
                .nth(1)
                .and_then(|rest| rest.split('}').next())
                .unwrap_or_else(|| panic!("a .badge.{name} rule"));
            assert!(
                rule.contains(&format!("background: var(--status-{name}-bg)"))
                    && rule.contains(&format!("color: var(--status-{name}-fg)")),
                ".badge.{name} uses its variables: {rule}"
            );
        }
    }

    #[test]
    fn no_two_statuses_look_alike() {
        let names = names();
        for (i, a) in names.iter().enumerate() {
            for b in &names[i + 1..] {
                let (bg_a, bg_b) = (
                    colour(&format!("--status-{a}-bg")),
                    colour(&format!("--status-{b}-bg")),
                );
                // 20 in sRGB: a step two people at one screen both see.
                assert!(
                    distance(bg_a, bg_b) >= 20.0,
                    "{a} and {b} backgrounds are too close"
                );
                assert_ne!(
                    colour(&format!("--status-{a}-fg")),
                    colour(&format!("--status-{b}-fg")),
                    "{a} and {b} share a text colour"
                );
            }
        }
    }
}

//! The JSON API under `/api/v1`, for other systems: authenticated by API key, errors as
//! RFC 9457 problem details.

mod auth;
mod problem;
mod tenants;

use actix_web::{HttpRequest, web};

pub use auth::ApiClient;
pub use problem::Problem;

/// Routes go through `web::resource` with a default service, so that a wrong method or an
/// unknown path under `/api` answers with a problem document, not the HTML error page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            // First: actix tries resources in order and matches each pattern with a
            // `{param}` by regular expression, several microseconds apiece; the token route
            // is the one internal services call on every Graph request
            // (`cargo bench --bench api`). Patterns match whole paths, so the order changes
            // nothing else.
            .service(
                web::resource("/tenants/{id}/token")
                    .post(tenants::token)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/tenants")
                    .get(tenants::list)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}")
                    .get(tenants::show)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}/events")
                    .get(tenants::events)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}/verify")
                    .post(tenants::verify)
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/tenants/{id}/users")
                    .get(tenants::users)
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    );
}

async fn not_found(req: HttpRequest) -> Problem {
    Problem::new(
        &req,
        actix_web::http::StatusCode::NOT_FOUND,
        "There is no such route in this API.",
    )
}

async fn method_not_allowed(req: HttpRequest) -> Problem {
    Problem::new(
        &req,
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("This route does not take {}.", req.method()),
    )
}

//! The JSON API under `/api/v1`, for other systems: authenticated by API key, errors as
//! RFC 9457 problem details, described by an OpenAPI 3.1 document at `/api/openapi.json`
//! that is generated from this code.
//!
//! # Adding a route
//!
//! The router and the document are built from the same annotations, so a route cannot be
//! served undocumented, nor documented at a path or method it is not served at:
//!
//! 1. Annotate the handler with `#[utoipa::path(...)]`: method, full path (`/api/v1/...`),
//!    `params(...)` (path parameters, and the query struct deriving `IntoParams`),
//!    `security(("api_key" = ["<scope>"]))` naming the scope it requires, and every
//!    response: the success body (a struct deriving `ToSchema`, the one the handler
//!    serialises) and each problem it can answer, by the shared components in
//!    [`problem`] (`(status = 404, response = problem::NotFound)`); a JSON request body
//!    as `request_body = NewThing` (the struct the handler deserialises, deriving
//!    `ToSchema`). Take `ApiClient` as the handler's first argument, so that a request
//!    without a key is a 401 before anything else is read. See [`tenants::list`] for a
//!    complete example.
//! 2. Add one line to [`routes`]: `route(module::__path_handler, module::handler)`. The
//!    route is then served at the annotation's path and method, nowhere else.
//! 3. Add the handler to `paths(...)` of [`ApiDoc`] (and any new problem response to
//!    `components(responses(...))`).
//! 4. Exercise it in `tests/api/openapi.rs` (`every_route_answers_as_its_document_says`),
//!    one `r.case(...)` (or `r.case_with_body(...)`) per answer: its success, no key (401), a key with every scope but
//!    the documented ones (403), and its own problems (400, 404, 409...). Each body is
//!    validated against the schema the document gives for its status, with any property
//!    the schema does not declare counted as a mismatch. The test fails while a route of
//!    [`routes`] is missing from the document (or the other way round), or lacks those
//!    cases.

mod auth;
mod problem;
mod tenants;
mod webhooks;

use std::sync::LazyLock;

use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, Handler, HttpRequest, HttpResponse, Responder, web};
use utoipa::openapi::path::HttpMethod;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub use auth::ApiClient;
pub use problem::Problem;
pub(crate) use webhooks::{is_delivery_id, wake_delivery_worker};

/// Where the document is served; it needs no API key (it describes, it reveals nothing).
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// The name of the security scheme (`Authorization: Bearer cst_live_...`) that each
/// route's `security(...)` names with the scope it requires.
pub const SECURITY_SCHEME: &str = "api_key";

/// The OpenAPI document of `/api/v1`. Its paths are the annotated handlers; their
/// schemas (the `ToSchema` structs they serialise) are collected from the annotations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "consentry API",
        description = "Tenants that consented to the application: their status and \
            permissions, their events, a check on request, app-only access tokens for them and \
            their users from Microsoft Graph; webhook endpoints, their deliveries, and the \
            events they deliver as a feed. Authenticate with `Authorization: Bearer \
            <API key>`; each route names the scope it needs. Errors are RFC 9457 problem \
            documents (`application/problem+json`) carrying the request id."
    ),
    paths(
        tenants::list,
        tenants::show,
        tenants::events,
        tenants::verify,
        tenants::token,
        tenants::users,
        webhooks::list_endpoints,
        webhooks::create_endpoint,
        webhooks::show_endpoint,
        webhooks::update_endpoint,
        webhooks::delete_endpoint,
        webhooks::rotate_secret,
        webhooks::deliveries,
        webhooks::resend,
        webhooks::events,
    ),
    components(responses(
        problem::BadRequest,
        problem::Unauthorized,
        problem::Forbidden,
        problem::NotFound,
        problem::TooManyRequests,
        problem::ServiceUnavailable,
        problem::BadGateway,
        problem::InternalServerError,
        problem::BadJsonBody,
        problem::PayloadTooLarge,
        problem::UnsupportedMediaType,
        problem::EndpointRefused,
    )),
    modifiers(&BearerKey),
    tags(
        (name = "tenants", description = "Tenants that consented, and what to do with them."),
        (name = "webhooks", description = "Webhook endpoints, their signing secrets, and their deliveries."),
        (name = "events", description = "What webhooks deliver, as a feed to poll.")
    )
)]
pub struct ApiDoc;

/// The `api_key` security scheme: an HTTP bearer token that is a consentry API key.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("cst_live_...")
            .description(Some(
                "A consentry API key, made on the dashboard or with `consentry api-keys \
                 create`. Its scopes (`tenants:read`, `tokens:issue`, `webhooks:manage`) are \
                 listed in each operation's security requirement.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SECURITY_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// One operation of the API: the method and path its `#[utoipa::path]` annotation names,
/// and its handler.
pub struct ApiRoute {
    pub method: Method,
    /// The full path as the document spells it (`/api/v1/tenants/{id}`), which is also
    /// actix's pattern syntax.
    pub path: String,
    route: actix_web::Route,
}

/// `handler` at the path and with the method(s) of its annotation `P` (the
/// `__path_<handler>` type that `#[utoipa::path]` generates).
fn route<P, F, Args>(_annotation: P, handler: F) -> Vec<ApiRoute>
where
    P: utoipa::Path,
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let path = P::path();
    P::methods()
        .into_iter()
        .map(|method| {
            let method = http_method(method);
            ApiRoute {
                route: web::method(method.clone()).to(handler.clone()),
                method,
                path: path.clone(),
            }
        })
        .collect()
}

fn http_method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Trace => Method::TRACE,
    }
}

/// Every operation of `/api/v1`: the router serves exactly these. Each must also be in
/// `paths(...)` of [`ApiDoc`]; tests/api/openapi.rs checks that the two agree.
pub fn routes() -> Vec<ApiRoute> {
    [
        // First: actix tries resources in order and matches each pattern with a `{param}`
        // by regular expression, several microseconds apiece; the token route is the one
        // internal services call on every Graph request (`cargo bench --bench api`).
        // Patterns match whole paths, so the order changes nothing else.
        route(tenants::__path_token, tenants::token),
        route(tenants::__path_list, tenants::list),
        route(tenants::__path_show, tenants::show),
        route(tenants::__path_events, tenants::events),
        route(tenants::__path_verify, tenants::verify),
        route(tenants::__path_users, tenants::users),
        route(webhooks::__path_list_endpoints, webhooks::list_endpoints),
        route(webhooks::__path_create_endpoint, webhooks::create_endpoint),
        route(webhooks::__path_show_endpoint, webhooks::show_endpoint),
        route(webhooks::__path_update_endpoint, webhooks::update_endpoint),
        route(webhooks::__path_delete_endpoint, webhooks::delete_endpoint),
        route(webhooks::__path_rotate_secret, webhooks::rotate_secret),
        route(webhooks::__path_deliveries, webhooks::deliveries),
        route(webhooks::__path_resend, webhooks::resend),
        route(webhooks::__path_events, webhooks::events),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The document as served, serialised once.
static DOCUMENT: LazyLock<Option<String>> = LazyLock::new(|| ApiDoc::openapi().to_json().ok());

/// Routes go through `web::resource` with a default service, so that a wrong method or an
/// unknown path under `/api/v1` answers with a problem document, not the HTML error page.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(OPENAPI_PATH)
            .get(openapi_json)
            .default_service(web::to(method_not_allowed)),
    );
    // One resource per path, with each method served there, in the order of `routes`.
    let mut by_path: Vec<(String, Vec<actix_web::Route>)> = Vec::new();
    for api_route in routes() {
        match by_path.iter_mut().find(|(path, _)| *path == api_route.path) {
            Some((_, served)) => served.push(api_route.route),
            None => by_path.push((api_route.path, vec![api_route.route])),
        }
    }
    for (path, served) in by_path {
        let resource = served
            .into_iter()
            .fold(web::resource(path), |resource, route| resource.route(route))
            .default_service(web::to(method_not_allowed));
        cfg.service(resource);
    }
    cfg.service(web::scope("/api/v1").default_service(web::to(not_found)));
}

/// `GET /api/openapi.json`.
async fn openapi_json(req: HttpRequest) -> Result<HttpResponse, Problem> {
    let document = DOCUMENT.as_deref().ok_or_else(|| {
        Problem::new(
            &req,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.",
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document))
}

async fn not_found(req: HttpRequest) -> Problem {
    Problem::new(
        &req,
        StatusCode::NOT_FOUND,
        "There is no such route in this API.",
    )
}

async fn method_not_allowed(req: HttpRequest) -> Problem {
    Problem::new(
        &req,
        StatusCode::METHOD_NOT_ALLOWED,
        format!("This route does not take {}.", req.method()),
    )
}

/// A page out of rows fetched with `limit + 1` (the extra row only says whether more
/// follow): the first `limit` rows, and whether there were more.
pub(crate) fn take_page<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let keep = usize::try_from(limit).unwrap_or(0);
    let more = rows.len() > keep;
    rows.truncate(keep);
    (rows, more)
}

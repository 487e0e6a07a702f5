//! OpenID Connect sign-in: `GET /{tenant}/oauth2/v2.0/authorize` (the authorization code
//! flow, RFC 6749 §4.1 with PKCE, RFC 7636), the account picker it shows
//! (`POST /{tenant}/login`) and the consent page for delegated permissions
//! (`POST /{tenant}/consent`).
//!
//! As at Microsoft, a request whose tenant, client or redirect URI cannot be trusted ends on
//! an error page here; every later error goes back to the redirect URI. The request itself
//! is kept server-side (a "flow"); the pages' forms carry only its random id, and a form is
//! accepted only from the browser that opened it (a random cookie, `SameSite=Lax`, so a
//! cross-site POST arrives without it).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{base_url, read_body, sts_param_error};
use crate::EmulatorState;
use crate::audit;
use crate::claims::GRAPH_AUDIENCES;
use crate::directory::{Directory, TenantRef};
use crate::errors::{RequestIds, StsError};
use crate::params::{ParamError, Params, encode_component};
use crate::permissions;
use crate::signin::{Challenge, ChallengeMethod, Code, Flow, Prompt, ResponseMode, random_token};
use crate::users::{Account, Accounts};

/// Microsoft refuses long query strings (AADSTS90015).
const MAX_QUERY: usize = 8 * 1024;
/// The forms carry a flow id, a user name and a decision.
const MAX_FORM: usize = 4 * 1024;
/// The cookie that tells one browser from another.
pub const BROWSER_COOKIE: &str = "emulator_browser";
/// Above this many accounts the picker lists none and asks for a user name.
const MAX_LISTED: usize = 50;
/// The OpenID Connect scopes, which name no resource.
const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Where answers go once the redirect URI is trusted.
#[derive(Debug, Clone)]
struct Target {
    redirect_uri: String,
    mode: ResponseMode,
    state: Option<Vec<u8>>,
}

impl Target {
    fn of(flow: &Flow) -> Target {
        Target {
            redirect_uri: flow.redirect_uri.clone(),
            mode: flow.response_mode,
            state: flow.state.clone(),
        }
    }
}

/// Why an authorize request goes no further.
enum Refusal {
    /// Shown on the emulator's error page: the app cannot be trusted with it.
    Page(StsError),
    /// Sent back to the app.
    Redirect(StsError, Target),
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    headline: String,
    request_id: String,
    correlation_id: String,
    timestamp: String,
}

struct AccountTile {
    username: String,
    display_name: String,
    admin: bool,
    organisation: Option<String>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    app_name: String,
    tenant_name: Option<String>,
    pick_account: bool,
    error: Option<String>,
    accounts: Vec<AccountTile>,
    action: String,
    flow: String,
    hint: String,
}

#[derive(Template)]
#[template(path = "user_consent.html")]
struct ConsentPage {
    username: String,
    app_name: String,
    client_id: String,
    permissions: Vec<(String, String)>,
    admin: bool,
    redirect_host: String,
    action: String,
    flow: String,
}

#[derive(Template)]
#[template(path = "admin_approval.html")]
struct ApprovalPage {
    username: String,
    app_name: String,
    headline: String,
    action: String,
    flow: String,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage {
    action: String,
    fields: Vec<(String, String)>,
}

/// `GET /{tenant}/oauth2/v2.0/authorize`
pub async fn authorize(
    req: HttpRequest,
    segment: web::Path<String>,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let now = state.clock.now();
    let ids = RequestIds::new(&req, now);
    let segment = segment.to_ascii_lowercase();
    // Read again for the audit: `check` refuses a bad query with its own error.
    let client_id = Params::parse(req.query_string().as_bytes(), MAX_QUERY)
        .ok()
        .and_then(|p| p.text("client_id").ok().flatten().map(str::to_owned));
    audit::note(&req, client_id.as_deref(), Some(&segment));
    let (browser, new_browser) = match browser_of(&req) {
        Some(b) => (b, false),
        None => (random_token(), true),
    };
    let checked = {
        let dir = state.directory();
        let accounts = state.accounts();
        check(&dir, &accounts, &segment, req.query_string(), &browser, now)
    };
    let mut response = match checked {
        Err(Refusal::Page(e)) => error_page(&e, &ids),
        Err(Refusal::Redirect(e, target)) => redirect_error(&req, &e, &ids, &target),
        Ok(flow) if flow.prompt == Prompt::None => silent(&req, &state, flow, &ids, now),
        Ok(flow) => {
            let target = Target::of(&flow);
            let flow_id = state.sign_ins.start(flow.clone(), now);
            sign_in_page(&state, &flow, &flow_id, None, &target)
        }
    };
    if new_browser {
        let _ = response.add_cookie(&browser_cookie(&req, browser));
    }
    response
}

/// `prompt=none`: answers at once from the browser's session, or says why it cannot.
fn silent(
    req: &HttpRequest,
    state: &EmulatorState,
    flow: Flow,
    ids: &RequestIds,
    now: OffsetDateTime,
) -> HttpResponse {
    let target = Target::of(&flow);
    let dir = state.directory();
    let accounts = state.accounts();
    let user = state
        .sign_ins
        .session(Some(&flow.browser), now)
        .and_then(|s| accounts.user(s.user))
        .filter(|u| flow.tenant.is_none_or(|t| t == u.tenant))
        .filter(|u| {
            flow.login_hint
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(&u.user_principal_name))
        });
    let Some((user, tenant)) = user.and_then(|u| dir.tenant(u.tenant).map(|t| (u, t))) else {
        return redirect_error(req, &StsError::login_required(), ids, &target);
    };
    let Some(app) = dir.app(flow.client_id) else {
        return error_page(&StsError::flow_expired(), ids);
    };
    if !accounts
        .missing(tenant, app.client_id, user, &flow.scopes)
        .is_empty()
    {
        let e = StsError::consent_required(app.client_id, &app.display_name);
        return redirect_error(req, &e, ids, &target);
    }
    let user = user.id;
    drop(accounts);
    drop(dir);
    issue_code(req, state, &flow, user, now)
}

/// Everything Microsoft checks before showing a page, in its order: the tenant, the client
/// and the redirect URI (failures stay here), then the rest (failures go back to the app).
fn check(
    dir: &Directory,
    accounts: &Accounts,
    segment: &str,
    raw_query: &str,
    browser: &str,
    now: OffsetDateTime,
) -> Result<Flow, Refusal> {
    let page = Refusal::Page;
    let params = Params::parse(raw_query.as_bytes(), MAX_QUERY).map_err(|e| match e {
        ParamError::TooLong { .. } => page(StsError::query_too_long()),
        other => page(sts_param_error(other)),
    })?;
    let text = |name: &str| params.text(name).map_err(sts_param_error);
    let tenant_ref =
        TenantRef::parse(segment).ok_or_else(|| page(StsError::invalid_tenant(segment)))?;
    let tenant = match &tenant_ref {
        TenantRef::Organizations | TenantRef::Common => None,
        TenantRef::Consumers => return Err(page(StsError::tenant_not_found(segment))),
        r => Some(
            dir.resolve(r)
                .ok_or_else(|| page(StsError::tenant_not_found(segment)))?,
        ),
    };
    let directory_name = tenant.map_or("the tenant", |t| t.display_name.as_str());
    let client_id = text("client_id")
        .map_err(page)?
        .ok_or_else(|| page(StsError::missing_parameter("client_id")))?;
    let client =
        Uuid::try_parse(client_id).map_err(|_| page(StsError::invalid_client_id(client_id)))?;
    let app = dir
        .app(client)
        .ok_or_else(|| page(StsError::app_not_found(client_id, directory_name)))?;
    let redirect_uri = text("redirect_uri")
        .map_err(page)?
        .ok_or_else(|| page(StsError::no_reply_address()))?;
    if !app.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(page(StsError::redirect_uri_mismatch(
            redirect_uri,
            client_id,
        )));
    }

    let mut target = Target {
        redirect_uri: redirect_uri.to_owned(),
        mode: ResponseMode::Query,
        state: params
            .bytes("state")
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec),
    };
    let back = |e: StsError, target: &Target| Refusal::Redirect(e, target.clone());
    let text = |name: &str| {
        params
            .text(name)
            .map_err(|e| back(sts_param_error(e), &target))
    };
    target.mode = match text("response_mode")? {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => return Err(back(StsError::unsupported_response_mode(other), &target)),
    };
    let text = |name: &str| {
        params
            .text(name)
            .map_err(|e| back(sts_param_error(e), &target))
    };
    match text("response_type")? {
        None => return Err(back(StsError::missing_parameter("response_type"), &target)),
        Some("code") => {}
        Some(other) => return Err(back(StsError::response_type_not_enabled(other), &target)),
    }
    let scope =
        text("scope")?.ok_or_else(|| back(StsError::missing_parameter("scope"), &target))?;
    let scopes =
        parse_scopes(scope, &accounts.delegated, directory_name).map_err(|e| back(e, &target))?;
    let challenge = match text("code_challenge")? {
        None => None,
        Some(value) => {
            let method = match text("code_challenge_method")? {
                None | Some("plain") => ChallengeMethod::Plain,
                Some("S256") => ChallengeMethod::S256,
                Some(_) => return Err(back(StsError::invalid_challenge_method(), &target)),
            };
            // RFC 7636 §4.1: 43 to 128 unreserved characters.
            let well_formed = (43..=128).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if !well_formed {
                return Err(back(StsError::invalid_challenge_size(), &target));
            }
            Some(Challenge {
                value: value.to_owned(),
                method,
            })
        }
    };
    let prompt = match text("prompt")? {
        None => Prompt::Default,
        Some("login") => Prompt::Login,
        Some("select_account") => Prompt::SelectAccount,
        Some("consent") => Prompt::Consent,
        Some("none") => Prompt::None,
        Some(other) => return Err(back(StsError::invalid_prompt(other), &target)),
    };
    Ok(Flow {
        browser: browser.to_owned(),
        segment: segment.to_owned(),
        tenant: tenant.map(|t| t.id),
        client_id: client,
        redirect_uri: target.redirect_uri.clone(),
        response_mode: target.mode,
        state: target.state.clone(),
        nonce: text("nonce")?.map(str::to_owned),
        scopes,
        challenge,
        prompt,
        login_hint: text("login_hint")?.map(|h| h.trim().to_owned()),
        domain_hint: text("domain_hint")?.map(|h| h.trim().to_ascii_lowercase()),
        created_at: now,
        user: None,
    })
}

/// Normalises `scope`: the OpenID Connect scopes by name, Graph's delegated permissions by
/// their short names (`User.Read`, however the resource was written), `.default` as the
/// app's static permissions. Other resources do not exist here (AADSTS500011).
fn parse_scopes(
    scope: &str,
    delegated: &[String],
    directory: &str,
) -> Result<Vec<String>, StsError> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
            out.push(s.to_owned());
        }
    };
    for item in scope.split(' ').filter(|s| !s.is_empty()) {
        let lower = item.to_ascii_lowercase();
        if OIDC_SCOPES.contains(&lower.as_str()) {
            push(&lower);
            continue;
        }
        let (resource, name) = match item.rsplit_once('/') {
            Some((resource, name)) => (Some(resource.trim_end_matches('/')), name),
            None => (None, item),
        };
        if let Some(resource) = resource
            && !GRAPH_AUDIENCES
                .iter()
                .any(|g| g.eq_ignore_ascii_case(resource))
        {
            return Err(
                if resource.contains("://") || Uuid::try_parse(resource).is_ok() {
                    StsError::resource_not_found(resource, directory)
                } else {
                    StsError::invalid_scope(item)
                },
            );
        }
        if name == ".default" && resource.is_some() {
            for d in delegated {
                push(d);
            }
        } else if permissions::is_well_formed(name) {
            push(name);
        } else {
            return Err(StsError::invalid_scope(item));
        }
    }
    if out.is_empty() {
        return Err(StsError::invalid_scope(scope));
    }
    Ok(out)
}

/// The account picker, with `error` when the last name was refused.
fn sign_in_page(
    state: &EmulatorState,
    flow: &Flow,
    flow_id: &str,
    error: Option<String>,
    target: &Target,
) -> HttpResponse {
    let dir = state.directory();
    let accounts = state.accounts();
    // organizations/common: a domain hint (or the hint's domain) picks the organisation.
    let hinted_domain = flow.domain_hint.clone().or_else(|| {
        flow.login_hint
            .as_deref()
            .and_then(|h| h.rsplit_once('@'))
            .map(|(_, d)| d.to_ascii_lowercase())
    });
    let tenant = flow.tenant.or_else(|| {
        hinted_domain
            .as_deref()
            .and_then(TenantRef::parse)
            .and_then(|r| dir.resolve(&r))
            .map(|t| t.id)
    });
    let listed: Vec<&Account> = match tenant {
        Some(t) => accounts.of_tenant(t),
        None if accounts.count() <= MAX_LISTED => accounts.all(),
        None => Vec::new(),
    };
    let listed = if listed.len() > MAX_LISTED {
        Vec::new()
    } else {
        listed
    };
    let hint = flow.login_hint.clone().unwrap_or_default();
    let mut tiles: Vec<AccountTile> = listed
        .into_iter()
        .filter_map(|a| {
            let t = dir.tenant(a.tenant)?;
            Some(AccountTile {
                username: a.user_principal_name.clone(),
                display_name: a.display_name.clone(),
                admin: a.admin,
                organisation: flow.tenant.is_none().then(|| t.display_name.clone()),
            })
        })
        .collect();
    // The hinted account first, as Microsoft pre-fills it.
    tiles.sort_by_key(|t| !t.username.eq_ignore_ascii_case(&hint));
    let page = SignInPage {
        app_name: dir
            .app(flow.client_id)
            .map(|a| a.display_name.clone())
            .unwrap_or_default(),
        tenant_name: flow
            .tenant
            .and_then(|t| dir.tenant(t))
            .map(|t| t.display_name.clone()),
        pick_account: !tiles.is_empty(),
        error,
        accounts: tiles,
        action: format!("/{}/login", flow.segment),
        flow: flow_id.to_owned(),
        hint,
    };
    let status = if page.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(status, page.render(), Some(&target.redirect_uri))
}

/// The form fields every page posts back, read strictly.
struct PostedForm {
    params: Params,
    flow_id: String,
    flow: Flow,
}

/// Reads a posted form and the flow it names; anything forged, stale or from another
/// browser ends on the error page.
async fn posted(
    req: &HttpRequest,
    segment: &str,
    body: web::Payload,
    state: &EmulatorState,
    now: OffsetDateTime,
) -> Result<PostedForm, StsError> {
    audit::note(req, None, Some(segment));
    let params = read_body(body, MAX_FORM)
        .await
        .and_then(|b| Params::parse(&b, MAX_FORM))
        .map_err(sts_param_error)?;
    let flow_id = params
        .text("flow")
        .map_err(sts_param_error)?
        .ok_or_else(StsError::flow_expired)?
        .to_owned();
    let browser = browser_of(req);
    let flow = state
        .sign_ins
        .flow(&flow_id, browser.as_deref(), now)
        .filter(|f| f.segment == segment)
        .ok_or_else(StsError::flow_expired)?;
    audit::note(req, Some(&flow.client_id.to_string()), Some(segment));
    Ok(PostedForm {
        params,
        flow_id,
        flow,
    })
}

/// `POST /{tenant}/login`: the person picked an account (or typed its name).
pub async fn login(
    req: HttpRequest,
    segment: web::Path<String>,
    body: web::Payload,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let now = state.clock.now();
    let ids = RequestIds::new(&req, now);
    let segment = segment.to_ascii_lowercase();
    let form = match posted(&req, &segment, body, &state, now).await {
        Ok(form) if form.flow.user.is_none() => form,
        Ok(_) => return error_page(&StsError::flow_expired(), &ids),
        Err(e) => return error_page(&e, &ids),
    };
    let target = Target::of(&form.flow);
    let name = match form.params.text("username") {
        Ok(Some(name)) => name.trim().to_owned(),
        Ok(None) => {
            let e = StsError::missing_parameter("username");
            return sign_in_page(
                &state,
                &form.flow,
                &form.flow_id,
                Some(e.headline()),
                &target,
            );
        }
        Err(e) => return error_page(&sts_param_error(e), &ids),
    };
    let found = {
        let dir = state.directory();
        let accounts = state.accounts();
        let directory = form
            .flow
            .tenant
            .and_then(|t| dir.tenant(t))
            .map_or_else(|| "organizations".to_owned(), |t| t.display_name.clone());
        accounts
            .by_name(&name)
            .filter(|u| form.flow.tenant.is_none_or(|t| t == u.tenant))
            .filter(|u| dir.tenant(u.tenant).is_some())
            .map(|u| u.id)
            .ok_or_else(|| StsError::user_not_found(&name, &directory))
    };
    match found {
        Ok(user) => after_sign_in(&req, &state, form, user, now),
        Err(e) => sign_in_page(
            &state,
            &form.flow,
            &form.flow_id,
            Some(e.headline()),
            &target,
        ),
    }
}

/// Signed in: consent if needed (or asked for), else straight back with a code.
fn after_sign_in(
    req: &HttpRequest,
    state: &EmulatorState,
    form: PostedForm,
    user_id: Uuid,
    now: OffsetDateTime,
) -> HttpResponse {
    let flow = form.flow;
    let page = {
        let dir = state.directory();
        let accounts = state.accounts();
        let (Some(user), Some(tenant), Some(app)) = (
            accounts.user(user_id),
            accounts.user(user_id).and_then(|u| dir.tenant(u.tenant)),
            dir.app(flow.client_id),
        ) else {
            return error_page(&StsError::flow_expired(), &RequestIds::new(req, now));
        };
        let missing = accounts.missing(tenant, app.client_id, user, &flow.scopes);
        if missing.is_empty() && flow.prompt != Prompt::Consent {
            None
        } else {
            let asked: Vec<&String> = if missing.is_empty() {
                flow.scopes.iter().collect()
            } else {
                missing
            };
            let action = format!("/{}/consent", flow.segment);
            let rendered = if accounts.may_consent(user, &asked) {
                ConsentPage {
                    username: user.user_principal_name.clone(),
                    app_name: app.display_name.clone(),
                    client_id: app.client_id.to_string(),
                    permissions: asked.iter().map(|s| (s.to_string(), describe(s))).collect(),
                    admin: user.admin,
                    redirect_host: host_of(&flow.redirect_uri),
                    action,
                    flow: form.flow_id.clone(),
                }
                .render()
            } else {
                ApprovalPage {
                    username: user.user_principal_name.clone(),
                    app_name: app.display_name.clone(),
                    headline: StsError::admin_approval_required(
                        &tenant.display_name,
                        &app.display_name,
                    )
                    .headline(),
                    action,
                    flow: form.flow_id.clone(),
                }
                .render()
            };
            Some(rendered)
        }
    };
    match page {
        Some(rendered) => {
            state.sign_ins.choose(&form.flow_id, user_id);
            html(StatusCode::OK, rendered, Some(&flow.redirect_uri))
        }
        None => {
            state.sign_ins.finish(&form.flow_id);
            state.sign_ins.sign_in(&flow.browser, user_id, now);
            issue_code(req, state, &flow, user_id, now)
        }
    }
}

/// `POST /{tenant}/consent`: Accept, Cancel, or (on "Need admin approval") return.
pub async fn consent(
    req: HttpRequest,
    segment: web::Path<String>,
    body: web::Payload,
    state: web::Data<EmulatorState>,
) -> HttpResponse {
    let now = state.clock.now();
    let ids = RequestIds::new(&req, now);
    let segment = segment.to_ascii_lowercase();
    let form = match posted(&req, &segment, body, &state, now).await {
        Ok(form) => form,
        Err(e) => return error_page(&e, &ids),
    };
    let Some(user_id) = form.flow.user else {
        return error_page(&StsError::flow_expired(), &ids);
    };
    let flow = form.flow.clone();
    let target = Target::of(&flow);
    let decision = match form.params.text("decision") {
        Ok(Some(d)) => d.to_owned(),
        Ok(None) => return error_page(&StsError::missing_parameter("decision"), &ids),
        Err(e) => return error_page(&sts_param_error(e), &ids),
    };
    let for_everyone = matches!(form.params.text("for_everyone"), Ok(Some("on")));
    let refusal = {
        let dir = state.directory();
        let mut accounts = state.accounts_mut();
        let user = accounts.user(user_id).cloned();
        let tenant = user.as_ref().and_then(|u| dir.tenant(u.tenant));
        let (Some(user), Some(tenant), Some(app)) = (user, tenant, dir.app(flow.client_id)) else {
            return error_page(&StsError::flow_expired(), &ids);
        };
        let approval =
            || StsError::admin_approval_required(&tenant.display_name, &app.display_name);
        match decision.as_str() {
            "cancel" => Some(StsError::user_declined()),
            "return" => Some(approval()),
            "accept" => {
                let missing: Vec<String> = accounts
                    .missing(tenant, app.client_id, &user, &flow.scopes)
                    .into_iter()
                    .cloned()
                    .collect();
                let asked: Vec<&String> = missing.iter().collect();
                // Only an administrator consents for everyone, and a person only to what
                // the tenant's policy allows: a forged form gets what the page would give.
                if (for_everyone && !user.admin) || !accounts.may_consent(&user, &asked) {
                    Some(approval())
                } else {
                    accounts.grant(&user, app.client_id, &flow.scopes, for_everyone);
                    None
                }
            }
            other => {
                return error_page(
                    &StsError::malformed(&format!("Unknown decision '{other}'.")),
                    &ids,
                );
            }
        }
    };
    state.sign_ins.finish(&form.flow_id);
    match refusal {
        Some(e) => redirect_error(&req, &e, &ids, &target),
        None => {
            state.sign_ins.sign_in(&flow.browser, user_id, now);
            issue_code(&req, &state, &flow, user_id, now)
        }
    }
}

/// Issues the code and sends the browser back with it.
fn issue_code(
    req: &HttpRequest,
    state: &EmulatorState,
    flow: &Flow,
    user_id: Uuid,
    now: OffsetDateTime,
) -> HttpResponse {
    let tenant = {
        let accounts = state.accounts();
        accounts.user(user_id).map(|u| u.tenant)
    };
    let Some(tenant) = tenant else {
        return error_page(&StsError::flow_expired(), &RequestIds::new(req, now));
    };
    let code = state.sign_ins.issue_code(
        Code {
            client_id: flow.client_id,
            redirect_uri: flow.redirect_uri.clone(),
            segment: flow.segment.clone(),
            tenant,
            user: user_id,
            scopes: flow.scopes.clone(),
            nonce: flow.nonce.clone(),
            challenge: flow.challenge.clone(),
            issued_at: now,
            redeemed: false,
            refresh: None,
        },
        now,
    );
    let mut params = vec![("code", code.into_bytes())];
    params.extend(flow.state.clone().map(|s| ("state", s)));
    params.push(("session_state", Uuid::new_v4().to_string().into_bytes()));
    answer(&Target::of(flow), &params)
}

/// An error in the redirect Microsoft sends: `error`, `error_description` (with the
/// AADSTS code and trace lines), `error_uri`, `state`.
fn redirect_error(
    req: &HttpRequest,
    e: &StsError,
    ids: &RequestIds,
    target: &Target,
) -> HttpResponse {
    let mut params = vec![
        ("error", e.error.as_str().as_bytes().to_vec()),
        ("error_description", e.description(ids).into_bytes()),
        (
            "error_uri",
            format!("{}/error?code={}", base_url(req), e.code).into_bytes(),
        ),
    ];
    params.extend(target.state.clone().map(|s| ("state", s)));
    let mut response = answer(target, &params);
    response.extensions_mut().insert(e.refusal());
    response
}

/// Sends `params` to the app the way its `response_mode` asks.
fn answer(target: &Target, params: &[(&str, Vec<u8>)]) -> HttpResponse {
    match target.mode {
        ResponseMode::Query | ResponseMode::Fragment => {
            let separator = match target.mode {
                ResponseMode::Fragment => '#',
                _ if target.redirect_uri.contains('?') => '&',
                _ => '?',
            };
            let mut location = target.redirect_uri.clone();
            for (i, (name, value)) in params.iter().enumerate() {
                location.push(if i == 0 { separator } else { '&' });
                location.push_str(name);
                location.push('=');
                location.push_str(&encode_component(value));
            }
            HttpResponse::Found()
                .insert_header((header::LOCATION, location))
                .insert_header(("Cache-Control", "no-store"))
                .finish()
        }
        ResponseMode::FormPost => {
            let page = FormPostPage {
                action: target.redirect_uri.clone(),
                fields: params
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), String::from_utf8_lossy(v).into_owned()))
                    .collect(),
            };
            html(StatusCode::OK, page.render(), Some(&target.redirect_uri))
        }
    }
}

fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Sign you in".to_owned(),
        "profile" => "View your basic profile".to_owned(),
        "email" => "View your email address".to_owned(),
        "offline_access" => "Maintain access to data you have given it access to".to_owned(),
        "User.Read" => "Sign you in and read your profile".to_owned(),
        other => {
            permissions::describe(other).replace("Application permission", "Delegated permission")
        }
    }
}

fn host_of(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The browser's id, if it sent a well-formed one.
fn browser_of(req: &HttpRequest) -> Option<String> {
    req.cookie(BROWSER_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// HttpOnly, `SameSite=Lax` (sent on the top-level GET from the app, not on a cross-site
/// POST), `Secure` over https.
fn browser_cookie(req: &HttpRequest, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(BROWSER_COOKIE, value);
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(req.connection_info().scheme() == "https");
    cookie
}

fn error_page(e: &StsError, ids: &RequestIds) -> HttpResponse {
    let page = ErrorPage {
        headline: e.headline(),
        request_id: ids.trace_id.to_string(),
        correlation_id: ids.correlation_id.to_string(),
        timestamp: crate::clock::rfc3339_seconds(ids.at),
    };
    let mut response = html(StatusCode::BAD_REQUEST, page.render(), None);
    response.extensions_mut().insert(e.refusal());
    response
}

/// A page with a script-free CSP. `form-action` must also allow where the form's answer
/// redirects to (browsers check redirects after a form submission against it).
fn html(
    status: StatusCode,
    rendered: askama::Result<String>,
    posts_to: Option<&str>,
) -> HttpResponse {
    let origin = posts_to
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'self'; form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    match rendered {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Content-Security-Policy", csp))
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "rendering an emulator page failed");
            HttpResponse::InternalServerError().body("the emulator could not render this page")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delegated() -> Vec<String> {
        crate::users::DEFAULT_DELEGATED
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn scopes_are_normalised_and_other_resources_refused() {
        let d = delegated();
        assert_eq!(
            parse_scopes(
                "openid Profile https://graph.microsoft.com/User.Read user.read",
                &d,
                "x"
            )
            .unwrap(),
            ["openid", "profile", "User.Read"]
        );
        assert_eq!(
            parse_scopes("openid https://graph.microsoft.com/.default", &d, "x").unwrap(),
            ["openid", "profile", "email", "offline_access", "User.Read"]
        );
        assert_eq!(
            parse_scopes("00000003-0000-0000-c000-000000000000/Mail.Read", &d, "x").unwrap(),
            ["Mail.Read"]
        );
        assert_eq!(
            parse_scopes("api://other/read", &d, "x").unwrap_err().code,
            500011
        );
        assert_eq!(parse_scopes("<script>", &d, "x").unwrap_err().code, 70011);
        assert_eq!(parse_scopes("   ", &d, "x").unwrap_err().code, 70011);
    }
}

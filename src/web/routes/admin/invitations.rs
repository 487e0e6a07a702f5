//! `/admin/invitations`: invitations by status (counts that filter, newest first, paged by
//! cursor), a form for a new one (pre-filled for a tenant that has to consent again), each
//! invitation's page with its link, a ready `mailto:` and its sign-ups, and revocation.
//!
//! The link is shown only to operators and owners: it lets whoever holds it connect the
//! organisation and see the outcome, which is more than a read-only viewer may hand out.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use time::OffsetDateTime;

use super::Operator;
use super::login::CsrfForm;
use super::tenants::short;
use crate::domain::invitation::{
    DEFAULT_LIFETIME_DAYS, InvitationRequest, MAX_LIFETIME_DAYS, invitation_token,
};
use crate::domain::{RandomToken, TenantId};
use crate::store::{
    AuditAction, InvitationRow, InvitationSignUp, InvitationStatus, NewInvitation, Outcome, Role,
};
use crate::web::format::relative_ts;
use crate::web::routes::page;
use crate::web::{AppState, WebError};

/// Invitations a list page shows.
const PAGE_SIZE: i64 = 50;

/// An invitation as lists show it.
pub struct InvitationLine {
    pub id: String,
    pub organisation: String,
    pub contact: String,
    /// The tenant id or domain the operator named.
    pub target: Option<String>,
    pub status: InvitationStatus,
    pub created_at: String,
    pub created_ago: String,
    pub created_by: String,
    pub expires_at: String,
    pub expires_in: String,
    /// The tenant verified through it.
    pub connected: Option<String>,
}

pub fn line(row: &InvitationRow, now: OffsetDateTime) -> InvitationLine {
    InvitationLine {
        id: row.id.clone(),
        organisation: row.organisation_name.clone(),
        contact: row.contact_email.clone(),
        target: row.invited_tenant().map(|t| t.segment()),
        status: row.status(now),
        created_at: short(&row.created_at),
        created_ago: relative_ts(&row.created_at, now),
        created_by: row.created_by.clone(),
        expires_at: short(&row.expires_at),
        // A verified or revoked invitation's link is dead whatever its expiry says.
        expires_in: match row.status(now) {
            InvitationStatus::Verified => "used".to_owned(),
            InvitationStatus::Revoked => "revoked".to_owned(),
            _ => relative_ts(&row.expires_at, now),
        },
        connected: row.connected_tenant_id.clone(),
    }
}

/// A count atop the list: a link that filters by it.
pub struct CountLink {
    pub label: &'static str,
    pub class: &'static str,
    pub n: i64,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "admin/invitations.html")]
struct ListPage {
    operator: String,
    csrf: String,
    counts: Vec<CountLink>,
    invitations: Vec<InvitationLine>,
    can_invite: bool,
    next: Option<String>,
    filtered: bool,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    /// The page after this invitation (its id).
    before: Option<String>,
}

fn parse_status(raw: Option<&str>) -> Result<Option<InvitationStatus>, WebError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => InvitationStatus::parse(raw)
            .map(Some)
            .ok_or_else(|| WebError::BadRequest(format!("There is no status '{raw}'."))),
    }
}

fn list_href(status: Option<InvitationStatus>, before: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(s) = status {
        query.append_pair("status", s.as_str());
    }
    if let Some(b) = before {
        query.append_pair("before", b);
    }
    let query = query.finish();
    if query.is_empty() {
        "/admin/invitations".to_owned()
    } else {
        format!("/admin/invitations?{query}")
    }
}

pub async fn list(
    operator: Operator,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let status = parse_status(query.status.as_deref())?;
    // A cursor is an invitation id (UUIDv7); anything else was not given out here.
    let before = match query.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(
            uuid::Uuid::try_parse(b)
                .map_err(|_| {
                    WebError::BadRequest("That page link is not one this list gave out.".into())
                })?
                .to_string(),
        ),
        None => None,
    };
    let now = OffsetDateTime::now_utc();
    let mut rows = state
        .store
        .invitations_page(status, before.as_deref(), PAGE_SIZE + 1, now)
        .await?;
    let more = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|r| list_href(status, Some(&r.id)));
    let counts = state.store.invitation_counts(now).await?;
    let mut count_links = vec![CountLink {
        label: "All",
        class: "all",
        n: counts.iter().map(|(_, n)| n).sum(),
        href: list_href(None, None),
        current: status.is_none(),
    }];
    count_links.extend(counts.iter().map(|(s, n)| CountLink {
        label: s.label(),
        class: s.as_str(),
        n: *n,
        href: list_href(Some(*s), None),
        current: status == Some(*s),
    }));
    let template = ListPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        counts: count_links,
        invitations: rows.iter().map(|r| line(r, now)).collect(),
        can_invite: operator.role >= Role::Operator,
        next,
        filtered: status.is_some() || before.is_some(),
    };
    page(StatusCode::OK, template.render())
}

#[derive(Template)]
#[template(path = "admin/invitation_new.html")]
struct NewPage {
    operator: String,
    csrf: String,
    organisation_name: String,
    contact_email: String,
    tenant: String,
    days: String,
    max_days: i64,
    /// The tenant this invitation is for, when it came from its page.
    for_tenant: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NewQuery {
    /// Pre-fill for this tenant (its page's "Invite to re-consent").
    tenant: Option<String>,
}

/// `GET /admin/invitations/new[?tenant=]`: the form, pre-filled with what is known of the
/// tenant: its name from Graph (or the latest sign-up's claim) and the latest contact a
/// sign-up gave.
pub async fn new_form(
    operator: Operator,
    query: web::Query<NewQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let mut template = NewPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        organisation_name: String::new(),
        contact_email: String::new(),
        tenant: String::new(),
        days: DEFAULT_LIFETIME_DAYS.to_string(),
        max_days: MAX_LIFETIME_DAYS,
        for_tenant: None,
        error: None,
    };
    if let Some(raw) = query.tenant.as_deref().filter(|t| !t.is_empty()) {
        let id = TenantId::parse(raw).ok_or(WebError::NotFound)?;
        let tenant = state.store.tenant(id).await?.ok_or(WebError::NotFound)?;
        let claims = state.store.claims_for(id).await?;
        template.organisation_name = tenant
            .name()
            .map(str::to_owned)
            .or_else(|| claims.iter().find_map(|c| c.organisation_name.clone()))
            .unwrap_or_default();
        template.contact_email = claims
            .iter()
            .find_map(|c| c.contact_email.clone())
            .unwrap_or_default();
        template.tenant = id.to_string();
        template.for_tenant = Some(tenant.name().unwrap_or(&tenant.id).to_owned());
    }
    page(StatusCode::OK, template.render())
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    organisation_name: String,
    #[serde(default)]
    contact_email: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    days: String,
}

/// `POST /admin/invitations`: creates one and shows its page (with the link).
pub async fn create(
    operator: Operator,
    form: web::Form<CreateForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    operator.check_csrf(form.csrf.as_deref())?;
    let request = match InvitationRequest::parse(
        &form.organisation_name,
        &form.contact_email,
        &form.tenant,
        &form.days,
    ) {
        Ok(r) => r,
        Err(why) => {
            // The form again, as typed, with what to fix; nothing was written.
            let template = NewPage {
                operator: operator.name.clone(),
                csrf: operator.csrf.clone(),
                organisation_name: form.organisation_name,
                contact_email: form.contact_email,
                tenant: form.tenant,
                days: form.days,
                max_days: MAX_LIFETIME_DAYS,
                for_tenant: None,
                error: Some(why.to_owned()),
            };
            return page(StatusCode::UNPROCESSABLE_ENTITY, template.render());
        }
    };
    let now = OffsetDateTime::now_utc();
    let salt = RandomToken::generate();
    let token = invitation_token(&state.keyed, salt.expose());
    let id = state
        .store
        .create_invitation(
            &NewInvitation {
                salt: salt.expose(),
                token_hash: &state.keyed.hash("invitation", &token),
                organisation_name: &request.organisation_name,
                contact_email: &request.contact_email,
                tenant: request.tenant.as_ref(),
                expires_at: now + request.lifetime,
                created_by: &operator.name,
            },
            now,
        )
        .await?;
    tracing::info!(operator = %operator.name, invitation = %id, "invitation created");
    operator
        .audit(
            &state,
            AuditAction::InvitationCreate,
            &format!("{id} ({})", request.organisation_name),
            Outcome::Success,
        )
        .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/admin/invitations/{id}"),
        ))
        .finish())
}

/// A step of an invitation's life, for its page.
pub struct Step {
    pub label: &'static str,
    pub at: String,
    pub ago: String,
    pub detail: Option<String>,
}

pub struct SignUpView {
    pub started: String,
    pub outcome: String,
    pub tenant: Option<String>,
    pub client_addr: Option<String>,
}

fn sign_up_view(s: &InvitationSignUp, now: OffsetDateTime) -> SignUpView {
    let outcome = if s.refusals > 0 {
        "its callback was refused".to_owned()
    } else {
        match (&s.consumed_at, &s.tenant_id) {
            (Some(at), Some(_)) => format!("called back {}", short(at)),
            (Some(at), None) => format!("declined on Microsoft's page, {}", short(at)),
            (None, _) => "no callback (yet)".to_owned(),
        }
    };
    SignUpView {
        started: format!(
            "{} ({})",
            short(&s.created_at),
            relative_ts(&s.created_at, now)
        ),
        outcome,
        tenant: s.tenant_id.clone(),
        client_addr: s.client_addr.clone(),
    }
}

#[derive(Template)]
#[template(path = "admin/invitation.html")]
struct InvitationPage {
    operator: String,
    csrf: String,
    invitation: InvitationLine,
    /// The link and a ready `mailto:`, while the link works, for operators and owners.
    link: Option<(String, String)>,
    /// Why the link is not shown.
    no_link: &'static str,
    steps: Vec<Step>,
    failure: Option<(String, String)>,
    sign_ups: Vec<SignUpView>,
    revocable: bool,
    can_act: bool,
}

/// RFC 6068: an address's reserved characters, and every query character but unreserved
/// ones, percent-encoded (a space is `%20`: some mail programs show `+` as it is).
const MAILTO_ADDRESS: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'@')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'+');
const MAILTO_QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// A `mailto:` link with the invitation's subject and body, ready to send.
fn mailto(row: &InvitationRow, link: &str) -> String {
    let subject = format!("Connect {} to our service", row.organisation_name);
    let expires = short(&row.expires_at);
    let body = format!(
        "Hello,\r\n\r\nWe invite {org} to connect to our service. A Microsoft 365 administrator of \
         {org} approves it once, on Microsoft's own page, starting from this link:\r\n\r\n{link}\r\n\r\n\
         The link works until {expires}. Forward it to your administrator if that is not you; \
         please do not share it otherwise.\r\n",
        org = row.organisation_name,
    );
    format!(
        "mailto:{}?subject={}&body={}",
        utf8_percent_encode(&row.contact_email, MAILTO_ADDRESS),
        utf8_percent_encode(&subject, MAILTO_QUERY),
        utf8_percent_encode(&body, MAILTO_QUERY),
    )
}

fn steps(row: &InvitationRow, status: InvitationStatus, now: OffsetDateTime) -> Vec<Step> {
    let step = |label, at: &str, detail: Option<String>| Step {
        label,
        at: short(at),
        ago: relative_ts(at, now),
        detail,
    };
    let mut steps = vec![step(
        "Created",
        &row.created_at,
        Some(format!("by {}", row.created_by)),
    )];
    if let Some(at) = &row.opened_at {
        steps.push(step("Opened", at, None));
    }
    if let Some(at) = &row.consented_at {
        let named = row
            .callback_tenant_id
            .as_ref()
            .map(|t| format!("the callback named tenant {t}"));
        steps.push(step("Consented", at, named));
    }
    if let Some(at) = &row.verified_at {
        let connected = row
            .connected_tenant_id
            .as_ref()
            .map(|t| format!("Microsoft confirmed the consent of tenant {t}"));
        steps.push(step("Verified", at, connected));
    }
    if let Some(at) = &row.revoked_at {
        let by = row.revoked_by.as_ref().map(|b| format!("by {b}"));
        steps.push(step("Revoked", at, by));
    }
    if status == InvitationStatus::Expired {
        steps.push(step("Expired", &row.expires_at, None));
    }
    steps
}

pub async fn show(
    operator: Operator,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    let row = state
        .store
        .invitation(&id)
        .await?
        .ok_or(WebError::NotFound)?;
    let now = OffsetDateTime::now_utc();
    let status = row.status(now);
    let can_act = operator.role >= Role::Operator;
    // A consented invitation's link still lets its own browser try again.
    let live = matches!(
        status,
        InvitationStatus::Created | InvitationStatus::Opened | InvitationStatus::Consented
    ) && row.expires().is_some_and(|at| at > now);
    let (link, no_link) = if !live {
        (None, "The link no longer works.")
    } else if !can_act {
        (None, "Only operators and owners see the link.")
    } else {
        let token = invitation_token(&state.keyed, &row.salt);
        let url = format!(
            "{}/invite/{}",
            state.settings.public_url.as_str().trim_end_matches('/'),
            token.expose()
        );
        let mail = mailto(&row, &url);
        (Some((url, mail)), "")
    };
    let sign_ups = state.store.invitation_sign_ups(&row.id, 50).await?;
    let template = InvitationPage {
        operator: operator.name.clone(),
        csrf: operator.csrf.clone(),
        link,
        no_link,
        steps: steps(&row, status, now),
        failure: row.failure.clone().zip(row.failed_at.as_deref().map(short)),
        sign_ups: sign_ups.iter().map(|s| sign_up_view(s, now)).collect(),
        revocable: status.revocable(),
        can_act,
        invitation: line(&row, now),
    };
    page(StatusCode::OK, template.render())
}

/// `POST /admin/invitations/{id}/revoke`: its link stops working at once.
pub async fn revoke(
    operator: Operator,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, WebError> {
    operator.check_csrf(form.csrf.as_deref())?;
    let row = state
        .store
        .invitation(&id)
        .await?
        .ok_or(WebError::NotFound)?;
    let target = format!("{} ({})", row.id, row.organisation_name);
    if !state
        .store
        .revoke_invitation(&row.id, &operator.name, OffsetDateTime::now_utc())
        .await?
    {
        operator
            .audit(
                &state,
                AuditAction::InvitationRevoke,
                &target,
                Outcome::Failure,
            )
            .await;
        return Err(WebError::BadRequest(
            "This invitation is verified or already revoked: there is nothing to revoke.".into(),
        ));
    }
    tracing::info!(operator = %operator.name, invitation = %row.id, "invitation revoked");
    operator
        .audit(
            &state,
            AuditAction::InvitationRevoke,
            &target,
            Outcome::Success,
        )
        .await;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/admin/invitations/{}", row.id),
        ))
        .finish())
}

/// A tenant's invitations, for its page.
pub async fn for_tenant(
    state: &AppState,
    tenant: TenantId,
) -> Result<Vec<InvitationLine>, WebError> {
    let now = OffsetDateTime::now_utc();
    Ok(state
        .store
        .invitations_for_tenant(tenant, 20)
        .await?
        .iter()
        .map(|r| line(r, now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailto_link_encodes_spaces_and_line_breaks_and_keeps_the_link_whole() {
        let row = InvitationRow {
            id: "i".into(),
            salt: "s".into(),
            organisation_name: "Contoso & Co".into(),
            contact_email: "it+ops@contoso.com".into(),
            tenant_id: None,
            domain: None,
            status: "created".into(),
            expires_at: "2026-12-08T10:00:00.000Z".into(),
            created_by: "ops".into(),
            created_at: "2026-12-01T10:00:00.000Z".into(),
            opened_at: None,
            consented_at: None,
            verified_at: None,
            revoked_at: None,
            revoked_by: None,
            consent_request_id: None,
            callback_tenant_id: None,
            connected_tenant_id: None,
            failure: None,
            failed_at: None,
        };
        let link = "https://consentry.example/invite/abc_-123";
        let m = mailto(&row, link);
        assert!(
            m.starts_with("mailto:it+ops@contoso.com?subject=Connect%20Contoso%20%26%20Co%20"),
            "{m}"
        );
        assert!(m.contains("%0D%0A"), "{m}");
        assert!(!m.contains(' ') && !m.contains('\n'), "{m}");
        assert!(
            m.contains(&utf8_percent_encode(link, MAILTO_QUERY).to_string()),
            "{m}"
        );
    }
}

//! Invitations over HTTP: an operator creates one, a customer's administrator opens it,
//! consents on the emulator, and the check verifies it; expiry, revocation, a re-consent of
//! a revoked tenant ending "connected again", and a hostile stranger against the link.

use consentry::store::Role;

use crate::app_helpers::{
    Browser, TestApp, assert_error_page, callback_url, hidden, random_token, section, spawn_app,
    state_of, ts,
};
use crate::helpers::FABRIKAM;
use crate::operators::signed_in_as;

/// The invitation's status as stored (not the computed "expired").
async fn stored_status(app: &TestApp, id: &str) -> String {
    app.store
        .invitation(id)
        .await
        .expect("store")
        .expect("the invitation")
        .status
}

/// Creates an invitation as the signed-in `operator` with the form's `fields`; returns its
/// id and its link as the invitation page shows it.
pub async fn create_invitation(operator: &Browser, fields: &[(&str, &str)]) -> (String, String) {
    let csrf = operator.csrf_of("/admin/invitations/new").await;
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let created = operator.post_form("/admin/invitations", &form).await;
    assert_eq!(created.status(), 303, "the invitation is created");
    let location = created.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let id = location
        .strip_prefix("/admin/invitations/")
        .expect("its page")
        .to_owned();
    let page = operator.get(&location).await.text().await.expect("html");
    (id, link_of(&page))
}

/// The link in an invitation page's read-only field.
/// An invitation for Contoso, any tenant, its contact it@contoso.com: (id, link).
async fn contoso_invitation(operator: &Browser) -> (String, String) {
    create_invitation(
        operator,
        &[
            ("organisation_name", "Contoso"),
            ("contact_email", "it@contoso.com"),
        ],
    )
    .await
}

fn link_of(page: &str) -> String {
    let field = section(page, r#"<input id="invitation-link""#, ">");
    let start = field.find("value=\"").expect("a value") + "value=\"".len();
    let end = field[start..].find('"').expect("closing quote") + start;
    field[start..end].to_owned()
}

/// Opens the link in `browser` (the page names the organisation), starts the sign-up and
/// returns where consentry sends the browser: Microsoft's admin-consent page.
async fn start_from_link(browser: &Browser, link: &str, organisation: &str) -> String {
    let page = browser.get(link).await;
    assert_eq!(page.status(), 200, "the invitation page");
    let html = page.text().await.expect("html");
    assert!(html.contains(&format!("Connect {organisation}")), "{html}");
    let started = browser
        .post_form(link, &[("csrf", &hidden(&html, "csrf"))])
        .await;
    assert_eq!(started.status(), 303, "off to Microsoft");
    started.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

async fn html(browser: &Browser, path: &str) -> String {
    browser.get(path).await.text().await.expect("html")
}

/// Waits until the invitation's stored status is `status`.
async fn wait_for_status(app: &TestApp, id: &str, status: &str) {
    app.poll(&format!("invitation {status}"), 15, || async {
        (stored_status(app, id).await == status).then_some(())
    })
    .await;
}

/// The page a link that does not work gets, whichever way it does not.
async fn assert_dead(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 404);
    let body = response.text().await.expect("html");
    assert!(body.contains(r#"id="dead-invitation""#), "{body}");
    body
}

#[tokio::test]
async fn an_invitation_goes_from_created_to_verified_and_the_list_shows_each_step() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let contoso = app.emulator.contoso();
    let (id, link) = contoso_invitation(&operator).await;
    let listed = html(&operator, "/admin/invitations?status=created").await;
    assert!(
        listed.contains(&format!("/admin/invitations/{id}")),
        "{listed}"
    );
    let admin = app.browser();

    // The administrator opens the link, consents for Contoso and comes back.
    let to_microsoft = start_from_link(&admin, &link, "Contoso").await;
    assert_eq!(stored_status(&app, &id).await, "opened");
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    let back = admin.get(&callback).await;
    wait_for_status(&app, &id, "verified").await;

    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], "/consent/status");
    assert!(
        to_microsoft.starts_with(&format!(
            "{}/organizations/adminconsent?",
            app.emulator.base
        )),
        "no organisation named, so the administrator picks it: {to_microsoft}"
    );
    let status = html(&admin, "/consent/status").await;
    assert!(status.contains("Contoso Ltd is connected</h1>"), "{status}");
    let row = app.store.invitation(&id).await.unwrap().unwrap();
    assert_eq!(row.connected_tenant_id.as_deref(), Some(contoso.as_str()));
    assert!(row.opened_at.is_some() && row.consented_at.is_some() && row.verified_at.is_some());
    // The sign-up carries the invitation and the operator's words as its claims.
    let db = app.db().await;
    let (invitation_id, organisation): (Option<String>, Option<String>) = sqlx::query_as(
        "select invitation_id, organisation_name from consent_request where tenant_id = $1",
    )
    .bind(&contoso)
    .fetch_one(&db)
    .await
    .expect("the sign-up");
    assert_eq!(invitation_id.as_deref(), Some(id.as_str()));
    assert_eq!(organisation.as_deref(), Some("Contoso"));
    // The dashboard shows it verified, with its history and the tenant it connected.
    let verified = html(&operator, "/admin/invitations?status=verified").await;
    assert!(
        verified.contains(&format!("/admin/invitations/{id}")),
        "{verified}"
    );
    let created = html(&operator, "/admin/invitations?status=created").await;
    assert!(
        !created.contains(&format!("/admin/invitations/{id}")),
        "{created}"
    );
    let page = html(&operator, &format!("/admin/invitations/{id}")).await;
    let steps = section(&page, r#"<ul class="events" id="steps">"#, "</ul>");
    for step in ["Created", "Opened", "Consented", "Verified"] {
        assert!(
            steps.contains(&format!("<strong>{step}</strong>")),
            "{steps}"
        );
    }
    assert!(page.contains(&format!(
        r#"href="/admin/tenants/{contoso}" id="connected""#
    )));
    assert!(page.contains("The link no longer works."), "{page}");
    let tenant = html(&operator, &format!("/admin/tenants/{contoso}")).await;
    let block = section(
        &tenant,
        r#"<section id="tenant-invitations">"#,
        "</section>",
    );
    assert!(
        block.contains(&format!("/admin/invitations/{id}")),
        "{block}"
    );
    let audit = html(&operator, "/admin/audit?action=invitation.create").await;
    assert!(audit.contains(&format!("{id} (Contoso)")), "{audit}");
}

#[tokio::test]
async fn the_invitation_page_offers_the_link_to_copy_and_a_ready_email() {
    let app = spawn_app().await;
    let operator = app.operator().await;

    let (id, link) = create_invitation(
        &operator,
        &[
            ("organisation_name", "Fabrikam"),
            ("contact_email", "admin@fabrikam.example"),
            ("tenant", "fabrikam.example"),
            ("days", "3"),
        ],
    )
    .await;
    let page = html(&operator, &format!("/admin/invitations/{id}")).await;
    let again = html(&operator, &format!("/admin/invitations/{id}")).await;

    assert!(
        link.starts_with(&format!("{}/invite/", app.base)) && link.len() == app.base.len() + 8 + 43,
        "{link}"
    );
    assert_eq!(link_of(&again), link, "shown again, the same link");
    assert!(page.contains(r#"readonly value=""#), "a field to select");
    let start = page.find(r#"href="mailto:"#).expect("a mailto link") + 6;
    let mailto = &page[start..start + page[start..].find('"').expect("its end")];
    assert!(
        mailto.contains("admin@fabrikam.example?subject=Connect%20Fabrikam"),
        "{mailto}"
    );
    assert!(
        mailto.contains(&link.replace(':', "%3A").replace('/', "%2F")),
        "{mailto}"
    );
    let row = app.store.invitation(&id).await.unwrap().unwrap();
    assert_eq!(row.domain.as_deref(), Some("fabrikam.example"));
    let lifetime = consentry::store::parse_ts(&row.expires_at).unwrap()
        - consentry::store::parse_ts(&row.created_at).unwrap();
    assert_eq!(lifetime, time::Duration::days(3));
    // The token itself is not stored: only its hash, and the salt it is derived from.
    let token = link.rsplit('/').next().unwrap().to_owned();
    let db = app.db().await;
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from invitation where token_hash = $1 or salt = $1 or id = $1",
    )
    .bind(&token)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn an_expired_invitation_is_dead_and_listed_as_expired() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, link) = contoso_invitation(&operator).await;
    let admin = app.browser();
    let csrf = admin.csrf_of("/").await;
    // Its week has passed.
    let db = app.db().await;
    sqlx::query("update invitation set expires_at = $1 where id = $2")
        .bind(ts(
            time::OffsetDateTime::now_utc() - time::Duration::minutes(1)
        ))
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();

    let opened = admin.get(&link).await;
    let started = admin.post_form(&link, &[("csrf", &csrf)]).await;

    assert_dead(opened).await;
    assert_dead(started).await;
    assert_eq!(app.count_rows("consent_request").await, 0, "no sign-up");
    assert_eq!(stored_status(&app, &id).await, "created", "not opened");
    let expired = html(&operator, "/admin/invitations?status=expired").await;
    assert!(
        expired.contains(&format!("/admin/invitations/{id}")),
        "{expired}"
    );
    for other in ["created", "opened"] {
        let list = html(&operator, &format!("/admin/invitations?status={other}")).await;
        assert!(
            !list.contains(&format!("/admin/invitations/{id}")),
            "{other}"
        );
    }
    let counts = section(&expired, r#"id="invitation-counts""#, "</nav>");
    assert!(
        counts.contains(r#"<span class="n">1</span> Expired"#),
        "{counts}"
    );
    let page = html(&operator, &format!("/admin/invitations/{id}")).await;
    assert!(page.contains("The link no longer works."), "{page}");
}

#[tokio::test]
async fn a_revoked_invitation_is_dead_at_once_and_the_revocation_is_audited() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let contoso = app.emulator.contoso();
    let (id, link) = contoso_invitation(&operator).await;
    // The administrator started before the operator revoked it.
    let admin = app.browser();
    let to_microsoft = start_from_link(&admin, &link, "Contoso").await;
    let csrf = hidden(
        &html(&operator, &format!("/admin/invitations/{id}")).await,
        "csrf",
    );

    let revoked = operator
        .post_form(
            &format!("/admin/invitations/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    let again = operator
        .post_form(
            &format!("/admin/invitations/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    let dead = assert_dead(app.browser().get(&link).await).await;
    let never_issued = assert_dead(
        app.browser()
            .get(&format!("/invite/{}", random_token()))
            .await,
    )
    .await;
    let same_browser = admin.get(&link).await;
    // The sign-up already under way finishes as an ordinary one.
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    let back = admin.get(&callback).await;

    assert_eq!(revoked.status(), 303);
    assert_eq!(again.status(), 400, "nothing left to revoke");
    assert_eq!(dead, never_issued, "no hint which");
    assert_dead(same_browser).await;
    assert_eq!(back.status(), 303);
    assert_eq!(app.wait_for_outcome(&contoso, 15).await.status, "active");
    assert_eq!(stored_status(&app, &id).await, "revoked");
    let audit = html(&operator, "/admin/audit?action=invitation.revoke").await;
    let rows = section(&audit, r#"<table id="audit">"#, "</table>");
    assert!(
        rows.contains("success") && rows.contains("failure"),
        "{rows}"
    );
    let page = html(&operator, &format!("/admin/invitations/{id}")).await;
    assert!(page.contains(&format!("by {}", crate::app_helpers::OPERATOR)));
    assert!(!page.contains(r#"id="revoke""#), "no button left");
}

#[tokio::test]
async fn re_consent_of_a_revoked_tenant_through_an_invitation_ends_connected_again() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    // Contoso signed up with a contact, was verified, then removed the app.
    let first = app.browser();
    let to_microsoft = first
        .signup(&[
            ("organisation_name", "Contoso"),
            ("contact_email", "it@contoso.com"),
        ])
        .await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    assert_eq!(first.get(&callback).await.status(), 303);
    assert_eq!(app.wait_for_outcome(&contoso, 15).await.status, "active");
    app.emulator.revoke(&contoso).await;
    let operator = app.operator().await;
    let tenant_page = html(&operator, &format!("/admin/tenants/{contoso}")).await;
    let csrf = hidden(&tenant_page, "csrf");
    operator
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    app.poll("the revocation to show", 15, || async {
        app.tenant(&contoso).await.filter(|t| t.status == "revoked")
    })
    .await;

    // The tenant's page offers an invitation, pre-filled with what is known.
    let tenant_page = html(&operator, &format!("/admin/tenants/{contoso}")).await;
    assert!(
        tenant_page.contains(&format!(
            r#"href="/admin/invitations/new?tenant={contoso}""#
        )),
        "{tenant_page}"
    );
    assert!(
        !tenant_page.contains("/reconsent/"),
        "no bare link any more"
    );
    let form = html(
        &operator,
        &format!("/admin/invitations/new?tenant={contoso}"),
    )
    .await;
    assert!(
        form.contains(r#"value="Contoso Ltd""#),
        "Graph's name: {form}"
    );
    assert!(
        form.contains(r#"value="it@contoso.com""#),
        "the claimed contact"
    );
    assert!(
        form.contains(&format!(r#"value="{contoso}""#)),
        "the tenant"
    );
    let (id, link) = create_invitation(
        &operator,
        &[
            ("organisation_name", "Contoso Ltd"),
            ("contact_email", "it@contoso.com"),
            ("tenant", &contoso),
        ],
    )
    .await;

    // Another administrator of Contoso, in a browser of their own, consents again.
    let admin = app.browser();
    let to_microsoft = start_from_link(&admin, &link, "Contoso Ltd").await;
    let callback = app.emulator_decision(&to_microsoft, "accept", None).await;
    let back = admin.get(&callback).await;
    wait_for_status(&app, &id, "verified").await;
    let status = html(&admin, "/consent/status").await;

    assert!(
        to_microsoft.starts_with(&format!("{}/{contoso}/adminconsent?", app.emulator.base)),
        "straight to that tenant: {to_microsoft}"
    );
    assert_eq!(back.status(), 303);
    assert!(
        status.contains("Contoso Ltd is connected again</h1>"),
        "{status}"
    );
    assert!(!status.contains("already connected"), "{status}");
    assert_eq!(app.tenant(&contoso).await.unwrap().status, "active");
    // The first administrator's own page is unchanged by it.
    let first_status = html(&first, "/consent/status").await;
    assert!(
        first_status.contains("Contoso Ltd is connected"),
        "{first_status}"
    );
    // The link now takes its browser to the outcome; anyone else gets nothing.
    let revisit = admin.get(&link).await;
    assert_eq!(revisit.status(), 303);
    assert_eq!(revisit.headers()["location"], "/consent/status");
}

#[tokio::test]
async fn re_consent_that_still_lacks_a_permission_says_what_is_missing() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    // Only User.Read.All remains granted: the organisation can no longer be read.
    app.emulator.set_roles(&contoso, &["User.Read.All"]).await;
    let operator = app.operator().await;
    let csrf = hidden(
        &html(&operator, &format!("/admin/tenants/{contoso}")).await,
        "csrf",
    );
    operator
        .post_form(
            &format!("/admin/tenants/{contoso}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    app.poll("missing permissions", 15, || async {
        app.tenant(&contoso)
            .await
            .filter(|t| t.status == "missing_permissions")
    })
    .await;
    let (id, link) = create_invitation(
        &operator,
        &[
            ("organisation_name", "Contoso Ltd"),
            ("contact_email", "it@contoso.com"),
            ("tenant", &contoso),
        ],
    )
    .await;
    let admin = app.browser();
    let to_microsoft = start_from_link(&admin, &link, "Contoso Ltd").await;
    let callback = app.emulator_decision(&to_microsoft, "accept", None).await;
    // The administrator's consent did not restore the permission (Microsoft's grant is
    // the emulator's roles, set again before the check runs).
    app.emulator.set_roles(&contoso, &["User.Read.All"]).await;

    let back = admin.get(&callback).await;
    wait_for_status(&app, &id, "verified").await;
    let status = html(&admin, "/consent/status").await;

    assert_eq!(back.status(), 303);
    assert!(
        status.contains("is connected again, but permissions are still missing"),
        "{status}"
    );
    let missing = section(&status, r#"<ul class="grants" id="missing">"#, "</ul>");
    assert!(missing.contains("Organization.Read.All"), "{missing}");
    assert!(!status.contains("already connected"), "{status}");
}

#[tokio::test]
async fn a_callback_naming_another_tenant_does_not_consent_an_invitation_for_a_named_one() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let contoso = app.emulator.contoso();
    let (id, link) = create_invitation(
        &operator,
        &[
            ("organisation_name", "Contoso"),
            ("contact_email", "it@contoso.com"),
            ("tenant", &contoso),
        ],
    )
    .await;
    let holder = app.browser();
    let to_microsoft = start_from_link(&holder, &link, "Contoso").await;

    // Whoever holds the link types a callback for Fabrikam with the state Contoso's page got.
    let forged = holder
        .get(&callback_url(&[
            ("admin_consent", "True"),
            ("tenant", FABRIKAM),
            ("state", &state_of(&to_microsoft)),
        ]))
        .await;

    let (_, page) = assert_error_page(forged, 400).await;
    assert!(page.contains("another organisation"), "{page}");
    assert!(app.tenant(FABRIKAM).await.is_none(), "no tenant recorded");
    let row = app.store.invitation(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "opened", "not consented");
    assert!(row.callback_tenant_id.is_none());
    assert!(
        row.failure.as_deref().is_some_and(|f| f.contains(FABRIKAM)),
        "{row:?}"
    );
    assert_eq!(holder.get("/consent/status").await.status(), 404);
    // The link still works for Contoso's real administrator.
    let to_microsoft = start_from_link(&app.browser(), &link, "Contoso").await;
    assert!(to_microsoft.contains(&format!("/{contoso}/adminconsent?")));
}

#[tokio::test]
async fn a_declined_invited_sign_up_is_noted_on_the_invitation_and_the_tenant() {
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let operator = app.operator().await;
    let (id, link) = create_invitation(
        &operator,
        &[
            ("organisation_name", "Contoso Ltd"),
            ("contact_email", "ceo@contoso.com"),
            ("tenant", &contoso),
        ],
    )
    .await;
    let admin = app.browser();
    let to_microsoft = start_from_link(&admin, &link, "Contoso Ltd").await;

    let cancelled = app.emulator_decision(&to_microsoft, "cancel", None).await;
    let page = admin.get(&cancelled).await;

    assert_eq!(page.status(), 200);
    let declined = page.text().await.expect("html");
    assert!(
        declined.contains(r#"id="start-again""#) && !declined.contains(r#"href="/">Start again"#),
        "back to the invitation, not the sign-up page: {declined}"
    );
    let row = app.store.invitation(&id).await.unwrap().unwrap();
    assert_eq!(row.status, "opened", "it may be tried again");
    assert!(
        row.failure
            .as_deref()
            .is_some_and(|f| f.contains("Declined") && f.contains("AADSTS65004")),
        "{row:?}"
    );
    let invitation_page = html(&operator, &format!("/admin/invitations/{id}")).await;
    assert!(
        invitation_page.contains(r#"id="failure""#),
        "{invitation_page}"
    );
    assert!(
        invitation_page.contains("declined on Microsoft"),
        "{invitation_page}"
    );
    let tenant_page = html(&operator, &format!("/admin/tenants/{contoso}")).await;
    let events = section(&tenant_page, r#"<ul class="events" id="events">"#, "</ul>");
    assert!(
        events.contains("consent declined") && events.contains("contact ceo@contoso.com"),
        "{events}"
    );
}

#[tokio::test]
async fn a_declined_sign_up_keeps_what_it_claimed_for_the_operator() {
    let app = spawn_app().await;
    let admin = app.browser();
    let to_microsoft = admin
        .signup(&[
            ("organisation_name", "Northwind"),
            ("contact_email", "it@northwind.example"),
        ])
        .await;

    let cancelled = app.emulator_decision(&to_microsoft, "cancel", None).await;
    assert_eq!(admin.get(&cancelled).await.status(), 200);

    let declined = app
        .events()
        .await
        .into_iter()
        .find(|e| e.kind == "consent_declined")
        .expect("the event");
    assert!(
        declined.detail.contains(r#"organisation "Northwind""#)
            && declined.detail.contains("contact it@northwind.example"),
        "{}",
        declined.detail
    );
    let dashboard = app.dashboard().await;
    assert!(
        dashboard.contains("it@northwind.example"),
        "recent activity"
    );
}

// ---- attacks

#[tokio::test]
async fn a_second_browser_cannot_use_a_link_the_first_one_consented() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let contoso = app.emulator.contoso();
    let (id, link) = create_invitation(
        &operator,
        &[
            ("organisation_name", "Contoso"),
            ("contact_email", "it@contoso.com"),
            ("tenant", &contoso),
        ],
    )
    .await;
    let first = app.browser();
    let to_microsoft = start_from_link(&first, &link, "Contoso").await;
    let callback = app.emulator_decision(&to_microsoft, "accept", None).await;
    assert_eq!(first.get(&callback).await.status(), 303);
    let requests = app.count_rows("consent_request").await;

    let second = app.browser();
    let csrf = second.csrf_of("/").await;
    let opened = second.get(&link).await;
    let started = second.post_form(&link, &[("csrf", &csrf)]).await;

    assert_dead(opened).await;
    assert_dead(started).await;
    assert_eq!(app.count_rows("consent_request").await, requests);
    assert_eq!(second.get("/consent/status").await.status(), 404);
    wait_for_status(&app, &id, "verified").await;
    let status = html(&first, "/consent/status").await;
    assert!(status.contains("is connected"), "{status}");
}

#[tokio::test]
async fn an_invitation_replayed_after_it_was_verified_gets_nobody_anything() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let contoso = app.emulator.contoso();
    let (id, link) = contoso_invitation(&operator).await;
    let admin = app.browser();
    let to_microsoft = start_from_link(&admin, &link, "Contoso").await;
    let callback = app
        .emulator_decision(&to_microsoft, "accept", Some(&contoso))
        .await;
    assert_eq!(admin.get(&callback).await.status(), 303);
    wait_for_status(&app, &id, "verified").await;
    let requests = app.count_rows("consent_request").await;

    // The same callback again, in the same browser and in a stranger's.
    let replayed = admin.get(&callback).await;
    let stranger = app.browser();
    let stolen = stranger.get(&callback).await;
    let csrf = stranger.csrf_of("/").await;
    let opened = stranger.get(&link).await;
    let started = stranger.post_form(&link, &[("csrf", &csrf)]).await;
    let own_browser = admin
        .post_form(&link, &[("csrf", &admin.csrf_of("/").await)])
        .await;

    assert_eq!(replayed.status(), 400);
    assert_eq!(stolen.status(), 400);
    assert_dead(opened).await;
    assert_dead(started).await;
    assert_eq!(own_browser.status(), 303);
    assert_eq!(
        own_browser.headers()["location"],
        "/consent/status",
        "its own browser is shown the outcome, not a new sign-up"
    );
    assert_eq!(app.count_rows("consent_request").await, requests);
    assert_eq!(stored_status(&app, &id).await, "verified");
}

#[tokio::test]
async fn a_stranger_guessing_tokens_gets_the_one_dead_page_and_writes_nothing() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, _link) = contoso_invitation(&operator).await;
    let stranger = app.browser();
    let csrf = stranger.csrf_of("/").await;
    let mut pages = Vec::new();

    for guess in [
        random_token(),
        random_token(),
        "short".to_owned(),
        "..%2F..%2Fadmin".to_owned(),
        "A".repeat(4000),
    ] {
        pages.push(assert_dead(stranger.get(&format!("/invite/{guess}")).await).await);
        pages.push(
            assert_dead(
                stranger
                    .post_form(&format!("/invite/{guess}"), &[("csrf", &csrf)])
                    .await,
            )
            .await,
        );
    }

    assert!(pages.windows(2).all(|w| w[0] == w[1]), "one page for all");
    assert_eq!(app.count_rows("consent_request").await, 0);
    assert_eq!(stored_status(&app, &id).await, "created");
    let response = stranger.get(&format!("/invite/{}", random_token())).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn a_viewer_sees_invitations_but_can_neither_create_nor_revoke_nor_copy_the_link() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, link) = contoso_invitation(&operator).await;
    let viewer = signed_in_as(&app, "vera", Role::Viewer).await;
    let list = html(&viewer, "/admin/invitations").await;
    let csrf = hidden(&list, "csrf");

    let form = viewer.get("/admin/invitations/new").await;
    let created = viewer
        .post_form(
            "/admin/invitations",
            &[
                ("csrf", &csrf),
                ("organisation_name", "Evil"),
                ("contact_email", "a@evil.example"),
            ],
        )
        .await;
    let revoked = viewer
        .post_form(
            &format!("/admin/invitations/{id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    let page = html(&viewer, &format!("/admin/invitations/{id}")).await;

    assert!(
        list.contains(&format!("/admin/invitations/{id}")),
        "viewers read"
    );
    assert!(!list.contains(r#"id="new-invitation""#));
    assert_eq!(form.status(), 403);
    assert_eq!(created.status(), 403);
    assert_eq!(revoked.status(), 403);
    assert!(!page.contains(&link), "the link is for operators: {page}");
    assert!(page.contains("Only operators and owners see the link."));
    assert!(!page.contains(r#"id="revoke""#));
    assert_eq!(app.count_rows("invitation").await, 1);
    assert_eq!(stored_status(&app, &id).await, "created");
    let audit = html(&operator, "/admin/audit?action=forbidden").await;
    assert!(audit.contains("POST /admin/invitations"), "{audit}");
}

#[tokio::test]
async fn invitation_forms_without_their_csrf_token_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (id, link) = contoso_invitation(&operator).await;
    let admin = app.browser();
    assert_eq!(admin.get(&link).await.status(), 200, "form cookie set");

    let created = operator
        .post_form(
            "/admin/invitations",
            &[
                ("organisation_name", "Evil"),
                ("contact_email", "a@evil.example"),
            ],
        )
        .await;
    let revoked = operator
        .post_form(&format!("/admin/invitations/{id}/revoke"), &[])
        .await;
    let wrong = operator
        .post_form(
            &format!("/admin/invitations/{id}/revoke"),
            &[("csrf", &random_token())],
        )
        .await;
    let started = admin.post_form(&link, &[]).await;

    assert_eq!(created.status(), 403);
    assert_eq!(revoked.status(), 403);
    assert_eq!(wrong.status(), 403);
    assert_eq!(started.status(), 403);
    assert_eq!(app.count_rows("invitation").await, 1);
    assert_eq!(stored_status(&app, &id).await, "opened");
    assert_eq!(app.count_rows("consent_request").await, 0);
}

#[tokio::test]
async fn bad_invitation_forms_are_answered_with_what_to_fix_and_write_nothing() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let csrf = operator.csrf_of("/admin/invitations/new").await;

    for (fields, why) in [
        (vec![("contact_email", "a@b.co")], "Name the organisation"),
        (vec![("organisation_name", "C")], "Give the email address"),
        (
            vec![
                ("organisation_name", "C"),
                ("contact_email", "a@b.co"),
                ("tenant", "../../evil"),
            ],
            "tenant domain",
        ),
        (
            vec![
                ("organisation_name", "C"),
                ("contact_email", "a@b.co"),
                ("days", "365"),
            ],
            "1 to 30 days",
        ),
    ] {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        let answer = operator.post_form("/admin/invitations", &form).await;
        assert_eq!(answer.status(), 422);
        let page = answer.text().await.expect("html");
        assert!(page.contains(why), "{why}: {page}");
    }
    assert_eq!(app.count_rows("invitation").await, 0);
    let unknown = operator
        .get("/admin/invitations/new?tenant=not-a-tenant")
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        operator
            .get("/admin/invitations?before=nope")
            .await
            .status(),
        400
    );
    assert_eq!(
        operator
            .get("/admin/invitations?status=nope")
            .await
            .status(),
        400
    );
    assert_eq!(operator.get("/admin/invitations/nope").await.status(), 404);
    assert_eq!(
        app.browser()
            .get(&format!("/reconsent/{}", app.emulator.contoso()))
            .await
            .status(),
        404,
        "bare re-consent links are gone"
    );
}

#[tokio::test]
async fn the_list_pages_by_cursor_newest_first() {
    let app = spawn_app().await;
    let operator = app.operator().await;
    let mut ids = Vec::new();
    for i in 0..55 {
        let salt = format!("salt-{i}");
        let id = app
            .store
            .create_invitation(
                &consentry::store::NewInvitation {
                    salt: &salt,
                    token_hash: &format!("hash-{i}"),
                    organisation_name: &format!("Org {i:02}"),
                    contact_email: "it@example.com",
                    tenant: None,
                    expires_at: time::OffsetDateTime::now_utc() + time::Duration::days(7),
                    created_by: "ops",
                },
                time::OffsetDateTime::now_utc(),
            )
            .await
            .expect("created");
        ids.push(id);
    }

    let first = html(&operator, "/admin/invitations").await;
    let end = first.find(r#"" id="older""#).expect("an Older link");
    let start = first[..end].rfind("href=\"").expect("its href") + "href=\"".len();
    let next_href = first[start..end].replace("&amp;", "&");
    let second = html(&operator, &next_href).await;

    assert!(first.contains(">Org 54<") && first.contains(">Org 05<"));
    assert!(!first.contains(">Org 04<"), "50 a page");
    assert!(second.contains(">Org 04<") && second.contains(">Org 00<"));
    assert!(!second.contains(">Org 05<") && !second.contains(r#"id="older""#));
}

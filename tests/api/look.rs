//! The console as operators see it: "Verify now" shows its check running, then the outcome,
//! and pressing it again and again queues no more checks; an admin error page keeps the
//! navigation; the status sort puts what needs attention first; "All" counts what it lists;
//! ids and permission names wrap at their separators; every table scrolls sideways.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::api_keys::{assert_problem, create_on_dashboard as create_key};
use crate::app_helpers::{
    Browser, TestApp, assert_error_page, hidden, section, spawn_app, spawn_app_against, ts,
};
use crate::helpers::html_unescape;

/// A door between consentry and the emulator. While it is shut, what consentry sends to
/// Microsoft waits at it: a check asked for meanwhile is certainly still running.
struct Door {
    base: String,
    open: watch::Sender<bool>,
    upstream: Arc<Mutex<Option<String>>>,
}

impl Door {
    async fn new() -> Door {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (open, _) = watch::channel(true);
        let upstream: Arc<Mutex<Option<String>>> = Arc::default();
        let (gate, to) = (open.clone(), upstream.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let address = to.lock().expect("lock").clone();
                let Some(address) = address else { continue };
                let mut gate = gate.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&address).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = client.into_split();
                    let (mut from_server, mut to_server) = server.into_split();
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
                    });
                    let mut buffer = [0u8; 8192];
                    loop {
                        let n = match from_client.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        // Held here while the door is shut.
                        if gate.wait_for(|open| *open).await.is_err() {
                            break;
                        }
                        if to_server.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown().await;
                });
            }
        });
        Door {
            base,
            open,
            upstream,
        }
    }

    fn lead_to(&self, emulator_base: &str) {
        *self.upstream.lock().expect("lock") =
            Some(emulator_base.trim_start_matches("http://").to_owned());
    }

    fn shut(&self) {
        self.open.send_replace(false);
    }

    fn open(&self) {
        self.open.send_replace(true);
    }
}

async fn html(browser: &Browser, path: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

/// Presses "Verify now" on the tenant's page; returns where it sends the browser.
async fn press_verify(operator: &Browser, tenant: &str) -> String {
    let page = html(operator, &format!("/admin/tenants/{tenant}")).await;
    let form = section(
        &page,
        r#"<form method="post" action="/admin/tenants/"#,
        "</form>",
    );
    let pressed = operator
        .post_form(
            &format!("/admin/tenants/{tenant}/verify"),
            &[("csrf", hidden(form, "csrf").as_str())],
        )
        .await;
    assert_eq!(pressed.status(), 303);
    pressed.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// The tenant's page once no check runs any more.
async fn page_when_checked(app: &TestApp, operator: &Browser, tenant: &str) -> String {
    let path = format!("/admin/tenants/{tenant}");
    app.poll("the check to finish", 30, || async {
        let page = html(operator, &path).await;
        (!page.contains("Check running")).then_some(page)
    })
    .await
}

const REFRESH: &str = r#"<meta http-equiv="refresh" content="2">"#;

#[tokio::test]
async fn verify_now_shows_the_check_running_then_its_outcome_success_or_failure() {
    // Arrange: Contoso onboarded through a door that can hold consentry's calls.
    let door = Door::new().await;
    let app = spawn_app_against(&door.base).await;
    door.lead_to(&app.emulator.base);
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let operator = app.operator().await;
    let page_path = format!("/admin/tenants/{contoso}");
    let before = html(&operator, &page_path).await;

    // Act: verify now while Microsoft's answer is held, then let it through; then the same
    // once the consent is revoked.
    door.shut();
    let sent_to = press_verify(&operator, &contoso).await;
    let running = html(&operator, &page_path).await;
    door.open();
    let succeeded = page_when_checked(&app, &operator, &contoso).await;

    app.emulator.revoke(&contoso).await;
    door.shut();
    press_verify(&operator, &contoso).await;
    let running_again = html(&operator, &page_path).await;
    door.open();
    let failed = page_when_checked(&app, &operator, &contoso).await;

    // Assert
    assert!(!before.contains(REFRESH), "nothing runs: no refresh");
    assert_eq!(sent_to, page_path);
    for page in [&running, &running_again] {
        let check = section(page, r#"<p class="check running" id="check""#, "</p>");
        assert!(check.contains("Check running since"), "{check}");
        assert!(page.contains(REFRESH), "the running page refreshes itself");
    }
    let check = section(&succeeded, r#"<p class="check ok" id="check""#, "</p>");
    assert!(
        check.contains("<strong>Checked ") && check.contains(" ago: Active</strong>"),
        "{check}"
    );
    assert!(!succeeded.contains(REFRESH), "done: no refresh");
    let check = html_unescape(section(
        &failed,
        r#"<p class="check failed" id="check""#,
        "</p>",
    ));
    assert!(check.contains("failed with AADSTS700016"), "{check}");
    assert!(check.contains("Status now: Consent revoked."), "{check}");
    assert!(
        check.contains("Send them the consent link again")
            && check.contains("Only the customer's administrator can fix this"),
        "what to do: {check}"
    );
    assert!(!failed.contains(REFRESH), "done: no refresh");
    let row = app.tenant(&contoso).await.expect("tenant");
    assert_eq!(row.check_requested_at, None, "nothing left running");
}

#[tokio::test]
async fn pressing_verify_now_again_and_again_queues_at_most_two_checks_shared_with_the_api() {
    // Arrange
    let app = spawn_app().await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let operator = app.operator().await;
    let (key, _) = create_key(&operator, "sync", &["tenants:read"]).await;
    let tokens_before = token_requests(&app, &contoso).await;

    // Act: five presses in a row, then the API asks too.
    let mut sent_to = Vec::new();
    for _ in 0..5 {
        sent_to.push(press_verify(&operator, &contoso).await);
    }
    let refused_page = html(&operator, &sent_to[4]).await;
    let api = reqwest::Client::new()
        .post(format!("{}/api/v1/tenants/{contoso}/verify", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("POST");
    page_when_checked(&app, &operator, &contoso).await;

    // Assert: two checks asked for, the other presses refused and said so.
    let page = format!("/admin/tenants/{contoso}");
    let later = format!("/admin/tenants/{contoso}?verify=later");
    assert_eq!(
        sent_to,
        [&page, &page, &later, &later, &later].map(String::as_str)
    );
    let refused = section(&refused_page, r#"id="verify-refused""#, "</p>");
    assert!(refused.contains("You can ask again in"), "{refused}");
    assert!(refused_page.contains(r#"id="verify-wait""#));
    assert_eq!(api.status(), 429);
    assert!(api.headers().contains_key("retry-after"));
    let detail = assert_problem(api, 429).await;
    assert!(detail.contains("asked for too often"), "{detail}");
    let kinds = app.tenant_event_kinds(&contoso).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "verify_requested").count(),
        2,
        "{kinds:?}"
    );
    // The second request may overtake the first check (which then saves nothing): one
    // or two checks of Microsoft, never five.
    let checks = token_requests(&app, &contoso).await - tokens_before;
    assert!((1..=2).contains(&checks), "{checks} token requests");
    let trail: Vec<String> = sqlx::query_scalar(
        "select outcome from audit_event where action = 'verify_now' order by id",
    )
    .fetch_all(&app.db().await)
    .await
    .expect("trail");
    assert_eq!(
        trail,
        ["success", "success", "failure", "failure", "failure"]
    );
}

async fn token_requests(app: &TestApp, tenant: &str) -> u64 {
    app.emulator.requests().await["tenants"][tenant]["token_v2"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn admin_error_pages_keep_the_navigation_and_anonymous_ones_go_to_sign_in() {
    // Arrange
    let app = spawn_app().await;
    let operator = app.operator().await;
    let anonymous = app.browser();
    let nowhere = "/admin/no-such-page";
    let unknown_tenant = "/admin/tenants/00000000-0000-4000-8000-000000000009";

    // Act
    let missing = operator.get(nowhere).await;
    let missing_tenant = operator.get(unknown_tenant).await;
    let wrong_method = operator
        .get("/admin/tenants/00000000-0000-4000-8000-000000000009/verify")
        .await;
    let anonymous_missing = anonymous.get(nowhere).await;
    let public_missing = anonymous.get("/no-such-page").await;

    // Assert
    for (response, status) in [(missing, 404), (missing_tenant, 404), (wrong_method, 405)] {
        let (_, page) = assert_error_page(response, status).await;
        assert!(page.contains(r#"<nav class="operator">"#), "{page}");
        assert!(page.contains(r#"<a href="/admin/account" id="account">ops</a>"#));
        assert!(
            page.contains(r#"<a class="button secondary" href="/admin" id="back">"#),
            "{page}"
        );
    }
    assert_eq!(anonymous_missing.status(), 303);
    assert_eq!(anonymous_missing.headers()["location"], "/admin/login");
    let (_, page) = assert_error_page(public_missing, 404).await;
    assert!(!page.contains(r#"<nav class="operator">"#), "{page}");
    assert!(page.contains(r#"<a class="button secondary" href="/" id="back">"#));
}

/// Tenants written straight into the database: one per status, those never verified
/// nameless; each granted User.Read.All.
async fn seed_one_per_status(app: &TestApp) -> Vec<(String, &'static str)> {
    let db = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    let statuses = [
        "active",
        "pending",
        "missing_permissions",
        "failed",
        "failing",
        "revoked",
        "gone",
    ];
    let mut seeded = Vec::new();
    for (i, status) in statuses.into_iter().enumerate() {
        let id = format!("0000000{i}-0000-4000-8000-00000000000{i}");
        let verified = !matches!(status, "pending" | "failed");
        let at = ts(now - time::Duration::minutes(i as i64 + 1));
        sqlx::query(
            "insert into tenant (id, status, display_name, granted_roles, consented_at, \
             verified_at, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $5, $5)",
        )
        .bind(&id)
        .bind(status)
        .bind(verified.then(|| format!("Org {i}")))
        .bind(r#"["User.Read.All"]"#)
        .bind(&at)
        .bind(verified.then(|| at.clone()))
        .execute(&db)
        .await
        .expect("a tenant");
        seeded.push((id, status));
    }
    db.close().await;
    seeded
}

/// The statuses of the list's rows, in order.
fn badges(page: &str) -> Vec<String> {
    let table = section(page, r#"<table id="tenants">"#, "</table>");
    table
        .split(r#"<span class="badge "#)
        .skip(1)
        .map(|b| b[..b.find('"').expect("class end")].to_owned())
        .filter(|class| class != "unverified")
        .collect()
}

/// The count of the link with class `class` atop the list, and its href.
fn count(page: &str, class: &str) -> Option<(i64, String)> {
    let counts = section(page, r#"id="counts""#, "</nav>");
    let marker = format!(r#"class="count {class}"#);
    let at = counts.find(&marker)?;
    let tag_start = counts[..at].rfind("<a href=\"")? + 9;
    let href = html_unescape(&counts[tag_start..tag_start + counts[tag_start..].find('"')?]);
    let n = counts[at..].split(r#"<span class="n">"#).nth(1)?;
    Some((n[..n.find('<')?].parse().ok()?, href))
}

#[tokio::test]
async fn the_status_sort_puts_what_needs_attention_first_and_all_counts_what_it_lists() {
    // Arrange
    let app = spawn_app().await;
    let seeded = seed_one_per_status(&app).await;
    let operator = app.operator().await;

    // Act
    let ascending = html(&operator, "/admin?sort=status&dir=asc").await;
    let descending = html(&operator, "/admin?sort=status&dir=desc").await;
    let everything = html(&operator, "/admin?sort=status&dir=asc&all=1").await;
    let attention = html(&operator, "/admin?status=attention&sort=status&dir=asc").await;

    // Assert: severity, not the alphabet.
    let attention_first = [
        "failing",
        "revoked",
        "gone",
        "missing_permissions",
        "active",
    ];
    assert_eq!(badges(&ascending), attention_first);
    let mut reversed = attention_first;
    reversed.reverse();
    assert_eq!(badges(&descending), reversed);
    assert_eq!(badges(&attention), attention_first[..4]);
    assert_eq!(
        badges(&everything),
        [
            "failing",
            "revoked",
            "gone",
            "missing_permissions",
            "failed",
            "pending",
            "active"
        ]
    );
    assert_eq!(
        everything
            .matches(r#"<span class="badge unverified""#)
            .count(),
        2,
        "the tenants never verified are marked"
    );
    // "All" counts the rows it lists; the others are one click away.
    let (all, _) = count(&ascending, "all").expect("All");
    assert_eq!(all, badges(&ascending).len() as i64);
    let (unverified, href) = count(&ascending, "unverified").expect("never verified");
    assert_eq!(unverified, 2);
    assert_eq!(href, "/admin?all=1");
    let (all_included, all_href) = count(&everything, "all").expect("All");
    assert_eq!(all_included, seeded.len() as i64);
    assert_eq!(all_href, "/admin?all=1");
    assert!(count(&everything, "unverified").is_none());
    let by_status: i64 = seeded
        .iter()
        .map(|(_, s)| count(&everything, s).expect("a count per status").0)
        .sum();
    assert_eq!(by_status, all_included);
}

#[tokio::test]
async fn ids_and_permissions_wrap_at_their_separators_and_every_table_scrolls() {
    // Arrange: a webhook endpoint (its deliveries make tables), Contoso onboarded, a key.
    let app = spawn_app().await;
    let operator = app.operator().await;
    let (endpoint, _, _) = crate::webhook_endpoints::create_on_dashboard(
        &operator,
        crate::webhook_endpoints::DEAD_RECEIVER,
        None,
    )
    .await;
    let contoso = app.emulator.contoso();
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    create_key(&operator, "sync", &["tenants:read"]).await;
    let pages = [
        "/admin".to_owned(),
        format!("/admin/tenants/{contoso}"),
        "/admin/audit".to_owned(),
        "/admin/webhooks".to_owned(),
        format!("/admin/webhooks/{endpoint}"),
        "/admin/api-keys".to_owned(),
        "/admin/operators".to_owned(),
        "/admin/account".to_owned(),
    ];

    // Act
    let mut seen = Vec::new();
    for path in &pages {
        seen.push((path, html(&operator, path).await));
    }
    let css = app.browser().get("/static/consentry.css").await;
    let css = css.text().await.expect("css");

    // Assert
    let (_, list) = &seen[0];
    let wrapped_id = contoso.replace('-', "-<wbr>");
    let row = section(list, "<tbody>", "</tbody>");
    assert!(
        row.contains(&format!("<td><code>{wrapped_id}</code></td>")),
        "{row}"
    );
    assert!(
        row.contains(r#"<code class="granted">User.<wbr>Read.<wbr>All</code>"#),
        "{row}"
    );
    let (_, tenant) = &seen[1];
    assert!(tenant.contains(&format!("<dd><code>{wrapped_id}</code></dd>")));
    for (path, page) in &seen {
        let tables = page.matches("<table").count();
        assert!(tables > 0, "{path} has a table");
        assert_eq!(
            page.matches("<div class=\"table-scroll\">\n<table").count(),
            tables,
            "every table of {path} scrolls in its box"
        );
        assert!(
            page.contains(
                r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
            ),
            "{path}"
        );
    }
    let rule = section(&css, ".scroll, .table-scroll {", "}");
    assert!(rule.contains("overflow-x: auto"), "{rule}");
    assert!(rule.contains("radial-gradient"), "the edge shadow: {rule}");
    assert!(
        !css.contains("word-break: break-all"),
        "nothing breaks ids at any letter"
    );
}

//! The audit trail: each operator action writes one row (actor, address, action, target,
//! outcome), rows cannot be changed or deleted, the page filters and pages by cursor, and
//! the CSV export quotes its cells and defuses spreadsheet formulas.

use consentry::store::{AuditAction, NewAuditEvent, Outcome, Role};

use crate::app_helpers::{OPERATOR, OPERATOR_PASSWORD, hidden, spawn_app};
use crate::operators::{between, sign_in_as, signed_in_as};

/// (actor, action, target, outcome) of every row, oldest first.
async fn trail(app: &crate::app_helpers::TestApp) -> Vec<(String, String, String, String)> {
    sqlx::query_as("select actor, action, target, outcome from audit_event order by id")
        .fetch_all(&app.db().await)
        .await
        .expect("audit rows")
}

fn row(actor: &str, action: &str, target: &str, outcome: &str) -> (String, String, String, String) {
    (actor.into(), action.into(), target.into(), outcome.into())
}

#[tokio::test]
async fn each_operator_action_writes_one_row_with_its_actor_and_outcome() {
    let app = spawn_app().await;
    let tenant = app.emulator.contoso();
    let customer = app.browser();
    app.onboard(&customer, &tenant).await;
    let ops = app.browser();

    // Act: a failed and a good sign-in, verify now, a key made and revoked, a webhook
    // endpoint's life, an operator added, and a refusal for a viewer's role.
    assert_eq!(sign_in_as(&ops, OPERATOR, "not the password").await, 401);
    assert_eq!(sign_in_as(&ops, OPERATOR, OPERATOR_PASSWORD).await, 303);
    let csrf = hidden(
        &ops.get("/admin/account").await.text().await.expect("html"),
        "csrf",
    );
    let verify = ops
        .post_form(
            &format!("/admin/tenants/{tenant}/verify"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(verify.status(), 303);
    let key = ops
        .post_form(
            "/admin/api-keys",
            &[
                ("csrf", &csrf),
                ("name", "billing"),
                ("scope", "tenants:read"),
            ],
        )
        .await;
    assert_eq!(key.status(), 200);
    let key_id: String = sqlx::query_scalar("select id from api_key")
        .fetch_one(&app.db().await)
        .await
        .expect("key");
    let revoke = ops
        .post_form(
            &format!("/admin/api-keys/{key_id}/revoke"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoke.status(), 303);
    let created = ops
        .post_form(
            "/admin/webhooks",
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/hook"),
                ("description", "billing"),
                ("types", "all"),
            ],
        )
        .await;
    assert_eq!(created.status(), 200);
    let html = created.text().await.expect("html");
    let endpoint = format!("ep_{}", between(&html, "href=\"/admin/webhooks/ep_", "\""));
    for step in ["rotate", "pause", "enable", "delete"] {
        let answer = ops
            .post_form(
                &format!("/admin/webhooks/{endpoint}/{step}"),
                &[("csrf", &csrf)],
            )
            .await;
        assert!(
            answer.status().is_success() || answer.status() == 303,
            "{step}"
        );
    }
    let added = ops
        .post_form(
            "/admin/operators",
            &[("csrf", &csrf), ("name", "alice"), ("role", "viewer")],
        )
        .await;
    assert_eq!(added.status(), 200);
    let viewer = signed_in_as(&app, "vic", Role::Viewer).await;
    let viewer_csrf = hidden(
        &viewer
            .get("/admin/account")
            .await
            .text()
            .await
            .expect("html"),
        "csrf",
    );
    let denied = viewer
        .post_form(
            &format!("/admin/tenants/{tenant}/verify"),
            &[("csrf", &viewer_csrf)],
        )
        .await;
    assert_eq!(denied.status(), 403);
    let logout = ops.post_form("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(logout.status(), 303);

    // Assert
    let rows = trail(&app).await;
    let expected = [
        row("unknown", "sign_in", OPERATOR, "failure"),
        row(OPERATOR, "sign_in", OPERATOR, "success"),
        row(OPERATOR, "verify_now", &tenant, "success"),
        row(OPERATOR, "api_key.create", "billing", "success"),
        row(OPERATOR, "api_key.revoke", &key_id, "success"),
        row(OPERATOR, "webhook.create", &endpoint, "success"),
        row(OPERATOR, "webhook.rotate", &endpoint, "success"),
        row(OPERATOR, "webhook.pause", &endpoint, "success"),
        row(OPERATOR, "webhook.enable", &endpoint, "success"),
        row(OPERATOR, "webhook.delete", &endpoint, "success"),
        row(OPERATOR, "operator.add", "alice (viewer)", "success"),
        row("vic", "sign_in", "vic", "success"),
        row(
            "vic",
            "forbidden",
            &format!("POST /admin/tenants/{tenant}/verify"),
            "denied",
        ),
        row(OPERATOR, "sign_out", OPERATOR, "success"),
    ];
    assert_eq!(rows, expected);
    let addresses: Vec<String> = sqlx::query_scalar("select distinct address from audit_event")
        .fetch_all(&app.db().await)
        .await
        .expect("addresses");
    assert_eq!(addresses, ["127.0.0.1"]);
}

#[tokio::test]
async fn the_trail_cannot_be_changed_or_deleted() {
    let app = spawn_app().await;
    let ops = app.browser();
    assert_eq!(sign_in_as(&ops, OPERATOR, OPERATOR_PASSWORD).await, 303);
    let db = app.db().await;

    let update = sqlx::query("update audit_event set actor = 'someone else'")
        .execute(&db)
        .await;
    let delete = sqlx::query("delete from audit_event").execute(&db).await;

    assert!(
        update
            .expect_err("refused")
            .to_string()
            .contains("append-only")
    );
    assert!(
        delete
            .expect_err("refused")
            .to_string()
            .contains("append-only")
    );
    assert_eq!(app.count_rows("audit_event").await, 1);
}

#[tokio::test]
async fn the_page_filters_by_actor_action_and_date_and_pages_by_cursor() {
    let app = spawn_app().await;
    let now = time::OffsetDateTime::now_utc();
    for i in 0..120 {
        let actor = if i % 3 == 0 { "amy" } else { "ben" };
        let event = NewAuditEvent {
            actor,
            address: "192.0.2.1",
            action: AuditAction::ApiKeyCreate,
            target: &format!("key {i}"),
            outcome: Outcome::Success,
        };
        app.store.audit(&event, now).await.expect("row");
    }
    let ops = app.operator().await;

    // Every row of ben's, newest first, across pages.
    let mut seen = Vec::new();
    let mut next = Some("/admin/audit?actor=ben&action=api_key.create".to_owned());
    while let Some(path) = next.take() {
        assert!(seen.len() <= 80, "the cursor moves on: {path}");
        let html = ops.get(&path).await.text().await.expect("html");
        let page: Vec<String> = html
            .split("<td>key ")
            .skip(1)
            .map(|rest| rest.split('<').next().unwrap_or_default().to_owned())
            .collect();
        assert!(page.len() <= 50, "a page holds at most 50 rows");
        assert!(!html.contains("<td>amy</td>"), "the actor filter");
        seen.extend(page);
        next = html
            .split("id=\"older\"")
            .next()
            .filter(|_| html.contains("id=\"older\""))
            .and_then(|before| before.rsplit("href=\"").next())
            .map(|href| {
                href.split('"')
                    .next()
                    .unwrap_or_default()
                    .replace("&#38;", "&")
                    .replace("&amp;", "&")
            });
    }
    let expected: Vec<String> = (0..120)
        .rev()
        .filter(|i| i % 3 != 0)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(seen, expected);

    let today = now.date();
    let tomorrow = today.next_day().expect("a tomorrow");
    let from_tomorrow = ops
        .get(&format!("/admin/audit?from={tomorrow}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        !from_tomorrow.contains("<td>key "),
        "nothing from tomorrow on"
    );
    let until_today = ops
        .get(&format!(
            "/admin/audit?actor=amy&from={today}&until={today}"
        ))
        .await
        .text()
        .await
        .expect("html");
    assert!(until_today.contains("<td>key 117</td>"), "today's rows");
    assert_eq!(ops.get("/admin/audit?action=nonsense").await.status(), 400);
}

#[tokio::test]
async fn the_csv_export_quotes_cells_and_defuses_formulas() {
    let app = spawn_app().await;
    let attacker = app.browser().on_address("127.0.0.3".parse().expect("ip"));
    let forged = "=HYPERLINK(\"http://evil.example\",\"x\"),more";
    assert_eq!(sign_in_as(&attacker, forged, "wrong password").await, 401);
    let ops = app.operator().await;

    let export = ops.get("/admin/audit.csv?action=sign_in").await;

    assert_eq!(export.status(), 200);
    assert!(
        export.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    assert!(
        export.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains("attachment")
    );
    let csv = export.text().await.expect("csv");
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "id,time,actor,address,action,target,outcome");
    assert_eq!(
        lines.len(),
        3,
        "a header, the failure and the sign-in: {csv}"
    );
    assert!(
        lines[1].contains(",ops,127.0.0.1,sign_in,ops,success"),
        "{csv}"
    );
    assert!(
        lines[2].ends_with(
            ",unknown,127.0.0.3,sign_in,\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\"),more\",failure"
        ),
        "{csv}"
    );
    let filtered = ops
        .get("/admin/audit.csv?actor=nobody")
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(filtered, "id,time,actor,address,action,target,outcome\r\n");
}

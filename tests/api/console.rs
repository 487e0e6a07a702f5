//! The console's tenant list over a few thousand tenants seeded into the app's database:
//! keyset paging both ways, the four sorts, counts per status that filter when clicked,
//! search by name, domain and id, the needs-attention view, and the CSV exports.

use std::collections::{BTreeMap, HashSet};

use crate::app_helpers::{TestApp, spawn_app, spawn_app_with, ts};
use crate::helpers::html_unescape;

/// Tenants the tests seed.
const SEEDED: usize = 2_400;

/// A seeded tenant, as the tests expect to see it.
#[derive(Debug, Clone)]
struct Seeded {
    id: String,
    name: Option<String>,
    status: &'static str,
    consented_at: String,
    checked_at: String,
}

impl Seeded {
    fn verified(&self) -> bool {
        self.name.is_some()
    }
}

fn seeded_id(i: usize) -> String {
    let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4000-8000-{:012x}",
        mixed >> 32,
        mixed & 0xffff,
        i
    )
}

const STATUSES: [&str; 8] = [
    "active",
    "active",
    "failing",
    "revoked",
    "missing_permissions",
    "gone",
    "pending",
    "failed",
];

/// Seeds `n` tenants in one transaction: statuses in turn (pending and failed ones never
/// verified, so nameless), names that repeat (so the id breaks ties), consent times in
/// groups of three equal ones, and last checks that tie too. The migration's triggers
/// keep the search index and the counts, as for the app's own writes.
async fn seed(app: &TestApp, n: usize) -> Vec<Seeded> {
    let db = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    // The app writes too: take the write lock first (waiting for it), rather than read
    // and then find the snapshot stale.
    let mut tx = db
        .begin_with(crate::app_helpers::begin_write())
        .await
        .expect("a transaction");
    let mut seeded = Vec::new();
    for i in 0..n {
        let status = STATUSES[i % STATUSES.len()];
        let verified = !matches!(status, "pending" | "failed");
        // Some names start with a letter beyond ASCII: SQLite folds only ASCII case.
        let word = if i % 7 == 0 { "Ärzte" } else { "Org" };
        let name = verified.then(|| format!("{word} {:03}", i % 700));
        let consented_at = ts(now - time::Duration::minutes((i / 3) as i64 + 1));
        let checked = ts(now - time::Duration::seconds((i % 97) as i64));
        let (ok, failed) = match (i % 5, verified) {
            (0, _) | (_, false) => (None, None),
            (1 | 2, _) => (Some(checked.clone()), None),
            _ => (None, Some(checked.clone())),
        };
        sqlx::query(
            "insert into tenant (id, status, display_name, verified_domains, consented_at, \
             verified_at, last_token_ok_at, last_failure_at, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $5, $5)",
        )
        .bind(seeded_id(i))
        .bind(status)
        .bind(&name)
        .bind(if verified {
            format!("[\"org{i}.example\"]")
        } else {
            "[]".to_owned()
        })
        .bind(&consented_at)
        .bind(verified.then(|| consented_at.clone()))
        .bind(&ok)
        .bind(&failed)
        .execute(&mut *tx)
        .await
        .expect("a tenant");
        seeded.push(Seeded {
            id: seeded_id(i),
            name,
            status,
            consented_at,
            checked_at: ok.or(failed).unwrap_or_default(),
        });
    }
    tx.commit().await.expect("commit");
    db.close().await;
    seeded
}

/// Tenant ids in the list's table, in order.
pub(crate) fn listed(html: &str) -> Vec<String> {
    let Some(start) = html.find(r#"<table id="tenants">"#) else {
        assert!(html.contains(r#"<p class="empty">"#), "{html}");
        return Vec::new();
    };
    let end = html[start..].find("</table>").expect("table end") + start;
    // Ids wrap at their dashes (`<wbr>`); the text is the id.
    html[start..end]
        .replace("<wbr>", "")
        .split("<td><code>")
        .skip(1)
        .map(|cell| cell.split('<').next().expect("id").to_owned())
        .collect()
}

/// The `href` of the element whose `id` is given, unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind('<')?;
    let tag = &html[tag_start..at + html[at..].find('>')?];
    let start = tag.find("href=\"")? + 6;
    let end = start + tag[start..].find('"')?;
    Some(html_unescape(&tag[start..end]))
}

/// The counts atop the list: class → (count, href).
fn counts(html: &str) -> BTreeMap<String, (i64, String)> {
    let start = html.find(r#"id="counts""#).expect("counts");
    let end = start + html[start..].find("</nav>").expect("end of counts");
    html[start..end]
        .split("<a href=\"")
        .skip(1)
        .map(|a| {
            let href = html_unescape(&a[..a.find('"').expect("href")]);
            let class = a.split("class=\"count ").nth(1).expect("class");
            let class = class[..class.find(['"', ' ']).expect("end")].to_owned();
            let n = a.split("<span class=\"n\">").nth(1).expect("n");
            let n = n[..n.find('<').expect("<")].parse().expect("a number");
            (class, (n, href))
        })
        .collect()
}

pub(crate) async fn page(operator: &crate::app_helpers::Browser, path: &str) -> String {
    let response = operator.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

/// Every tenant of the list from `path`, following "Next" to the end; and the pages'
/// sizes.
async fn walk(operator: &crate::app_helpers::Browser, path: &str) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut pages = vec![path.to_owned()];
    let mut html = page(operator, path).await;
    loop {
        let rows = listed(&html);
        assert!(rows.len() <= 50, "{} rows on a page", rows.len());
        ids.extend(rows);
        match link(&html, "next") {
            Some(next) => {
                html = page(operator, &next).await;
                pages.push(next);
            }
            None => break,
        }
    }
    (ids, pages)
}

/// The order a sort should give (verified tenants only, as the default list).
fn expected(seeded: &[Seeded], sort: &str, descending: bool) -> Vec<String> {
    let mut rows: Vec<(String, String)> = seeded
        .iter()
        .filter(|t| t.verified())
        .map(|t| {
            let key = match sort {
                "consented" => t.consented_at.clone(),
                "name" => t.name.clone().unwrap_or_default().to_ascii_lowercase(),
                // By severity: what needs attention first (migration 20261201000006).
                "status" => consentry::domain::TenantStatus::parse(t.status)
                    .expect("a status")
                    .severity()
                    .to_string(),
                _ => t.checked_at.clone(),
            };
            (key, t.id.clone())
        })
        .collect();
    rows.sort();
    if descending {
        rows.reverse();
    }
    rows.into_iter().map(|(_, id)| id).collect()
}

#[tokio::test]
async fn every_sort_pages_forward_and_back_without_duplicates_or_gaps() {
    let app = spawn_app().await;
    let seeded = seed(&app, SEEDED).await;
    let operator = app.operator().await;

    for sort in ["consented", "name", "status", "checked"] {
        for dir in ["asc", "desc"] {
            let (ids, pages) = walk(&operator, &format!("/admin?sort={sort}&dir={dir}")).await;
            let unique: HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "no duplicates: {sort} {dir}");
            assert_eq!(
                ids,
                expected(&seeded, sort, dir == "desc"),
                "every verified tenant once, in order: {sort} {dir}"
            );
            assert!(pages.iter().all(|p| !p.contains("offset")), "{pages:?}");
        }
    }

    // Back from the last page through "Previous": the same pages, the same rows.
    let (forward, pages) = walk(&operator, "/admin?sort=name&dir=asc").await;
    let mut html = page(&operator, pages.last().expect("a last page")).await;
    let mut backward: Vec<Vec<String>> = vec![listed(&html)];
    while let Some(previous) = link(&html, "previous") {
        html = page(&operator, &previous).await;
        backward.push(listed(&html));
    }
    backward.reverse();
    assert_eq!(backward.len(), pages.len(), "as many pages back as forward");
    assert!(
        backward
            .iter()
            .all(|p| p.len() == 50 || p == backward.last().expect("last"))
    );
    assert_eq!(backward.concat(), forward);
    assert!(
        link(&page(&operator, "/admin").await, "previous").is_none(),
        "the first page has no previous page"
    );

    let forged = operator.get("/admin?after=bm90IGEgY3Vyc29y").await;
    assert_eq!(forged.status(), 400, "a cursor the list never gave out");
    let other_sort = operator
        .get(&format!(
            "/admin?sort=status&{}",
            pages[1]
                .split('?')
                .nth(1)
                .expect("query")
                .replace("sort=name", "")
        ))
        .await;
    assert_eq!(other_sort.status(), 400, "a cursor of another sort");
}

#[tokio::test]
async fn counts_per_status_filter_when_clicked_and_unverified_tenants_can_be_included() {
    let app = spawn_app().await;
    let seeded = seed(&app, SEEDED).await;
    let operator = app.operator().await;
    let html = page(&operator, "/admin").await;
    let counts = counts(&html);

    let mut by_status: BTreeMap<&str, i64> = BTreeMap::new();
    for t in &seeded {
        *by_status.entry(t.status).or_default() += 1;
    }
    for (status, n) in &by_status {
        assert_eq!(counts[*status].0, *n, "{status}");
    }
    // "All" counts what it lists: verified tenants, unless never verified ones are
    // included; the others are a link of their own.
    let verified = seeded.iter().filter(|t| t.verified()).count() as i64;
    assert_eq!(counts["all"].0, verified);
    assert_eq!(counts["unverified"].0, SEEDED as i64 - verified);
    assert_eq!(
        self::counts(&page(&operator, &counts["unverified"].1).await)["all"].0,
        SEEDED as i64
    );
    let attention = ["failing", "revoked", "missing_permissions", "gone"];
    assert_eq!(
        counts["attention"].0,
        attention.iter().map(|s| by_status[s]).sum::<i64>()
    );

    // Clicking a count lists exactly those tenants.
    let (failing, _) = walk(&operator, &counts["failing"].1).await;
    let expected_failing: HashSet<String> = seeded
        .iter()
        .filter(|t| t.status == "failing")
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(
        failing.iter().cloned().collect::<HashSet<_>>(),
        expected_failing
    );
    assert_eq!(failing.len() as i64, counts["failing"].0);
    // A status filter lists never-verified tenants too (they are what "failed" holds).
    let (failed, _) = walk(&operator, &counts["failed"].1).await;
    assert_eq!(failed.len() as i64, by_status["failed"]);

    let (attention_ids, _) = walk(&operator, &counts["attention"].1).await;
    let expected_attention: HashSet<String> = seeded
        .iter()
        .filter(|t| attention.contains(&t.status))
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(attention_ids.len(), expected_attention.len());
    assert_eq!(
        attention_ids.into_iter().collect::<HashSet<_>>(),
        expected_attention
    );
    let attention_page = page(&operator, &counts["attention"].1).await;
    assert!(attention_page.contains(r#"class="count attention current""#));
    assert!(
        !attention_page.contains("badge active"),
        "only tenants needing attention"
    );

    // The default list leaves never-verified tenants out; "all" puts them back.
    let (default, _) = walk(&operator, "/admin").await;
    assert_eq!(
        default.len(),
        seeded.iter().filter(|t| t.verified()).count()
    );
    let (all, _) = walk(&operator, "/admin?all=1").await;
    assert_eq!(all.len(), SEEDED);

    // The counts follow a change of status (the triggers keep them).
    let db = app.db().await;
    sqlx::query("update tenant set status = 'failing' where id = $1")
        .bind(seeded_id(0))
        .execute(&db)
        .await
        .expect("update");
    sqlx::query("delete from tenant where id = $1")
        .bind(seeded_id(1))
        .execute(&db)
        .await
        .expect("delete");
    db.close().await;
    // Made outside this process, as another instance would: the page read a moment ago may
    // be served for up to the console cache's second, then the change shows.
    let after = app
        .poll("the counts to follow the change", 10, || async {
            let counts = self::counts(&page(&operator, "/admin").await);
            (counts["failing"].0 == by_status["failing"] + 1).then_some(counts)
        })
        .await;
    assert_eq!(after["active"].0, by_status["active"] - 2);
    assert_eq!(after["failing"].0, by_status["failing"] + 1);
    assert_eq!(after["all"].0, verified - 1, "a verified tenant went");
}

#[tokio::test]
async fn search_finds_names_domains_and_ids_through_the_index() {
    let app = spawn_app().await;
    let seeded = seed(&app, SEEDED).await;
    let db = app.db().await;
    let northwind = seeded_id(10);
    sqlx::query(
        "update tenant set display_name = 'Northwind Traders', \
         verified_domains = '[\"northwind.example\",\"nwtraders.onmicrosoft.com\"]' where id = $1",
    )
    .bind(&northwind)
    .execute(&db)
    .await
    .expect("rename");
    db.close().await;
    let operator = app.operator().await;
    let search = |q: &str| {
        let operator = &operator;
        let q = q.to_owned();
        async move { listed(&page(operator, &format!("/admin?all=1&q={q}")).await) }
    };

    assert_eq!(search("northwind").await, std::slice::from_ref(&northwind));
    assert_eq!(
        search("NORTH").await,
        std::slice::from_ref(&northwind),
        "a word's beginning, any case"
    );
    assert_eq!(
        search("Northwind%20Traders").await,
        std::slice::from_ref(&northwind)
    );
    assert_eq!(
        search("northwind.example").await,
        std::slice::from_ref(&northwind),
        "by domain"
    );
    assert_eq!(
        search("nwtraders").await,
        std::slice::from_ref(&northwind),
        "by another domain"
    );
    assert_eq!(
        search(&northwind).await,
        std::slice::from_ref(&northwind),
        "by id"
    );
    assert_eq!(
        search(&northwind.to_uppercase()[..13]).await,
        std::slice::from_ref(&northwind),
        "by the beginning of an id"
    );
    assert!(
        search("traders%20northwind").await.is_empty(),
        "words in order"
    );
    assert!(search("%25").await.is_empty());
    assert!(search("%22").await.is_empty(), "a lone quote");
    // The old name left the index with the rename.
    let old = seeded[10].name.clone().expect("a name");
    let with_old_name: Vec<String> = seeded
        .iter()
        .filter(|t| t.name.as_deref() == Some(old.as_str()) && t.id != northwind)
        .map(|t| t.id.clone())
        .collect();
    let mut found = search(&old.replace(' ', "%20")).await;
    found.sort();
    let mut want = with_old_name;
    want.sort();
    assert_eq!(found, want);
    // Search keeps the status filter and pages like the rest.
    let (orgs, _) = walk(&operator, "/admin?q=org&status=active").await;
    assert_eq!(
        orgs.len(),
        seeded.iter().filter(|t| t.status == "active").count(),
        "each active tenant has a domain org<n>.example"
    );
}

#[tokio::test]
async fn the_needs_attention_view_points_at_the_app_credential_alert() {
    let app = spawn_app().await;
    seed(&app, 40).await;
    let db = app.db().await;
    sqlx::query(
        "insert into app_alert (kind, code, headline, message, raised_at) \
         values ('credential', 'AADSTS7000215', 'The app credential is failing', \
         'Microsoft refused the app''s client secret.', $1)",
    )
    .bind(ts(time::OffsetDateTime::now_utc()))
    .execute(&db)
    .await
    .expect("an alert");
    db.close().await;
    // Another instance on the same database takes the alert up at start.
    let database = app.database_url.clone();
    let restarted = spawn_app_with(|raw, _| raw.set("CONSENTRY_DATABASE_URL", database)).await;
    let operator = restarted.operator().await;

    let attention = page(&operator, "/admin?status=attention").await;
    assert!(
        attention.contains(r#"id="attention-credential""#),
        "{attention}"
    );
    assert!(
        attention.contains(r##"href="#credential-alert""##),
        "{attention}"
    );
    assert!(
        attention.contains(r#"id="credential-alert""#),
        "{attention}"
    );
    let plain = page(&operator, "/admin").await;
    assert!(!plain.contains(r#"id="attention-credential""#));
}

/// Parses CSV (RFC 4180) into records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut cell) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    records
}

#[tokio::test]
async fn csv_exports_follow_the_filter_and_neutralise_formulas() {
    let app = spawn_app().await;
    let seeded = seed(&app, SEEDED).await;
    let hostile = seeded_id(8);
    let db = app.db().await;
    sqlx::query("update tenant set display_name = $1 where id = $2")
        .bind("=HYPERLINK(\"https://evil.example\",\"Click\"), Inc")
        .bind(&hostile)
        .execute(&db)
        .await
        .expect("rename");
    for (i, detail) in ["+SUM(1,2)", "plain, with \"quotes\"\nand a line", "@cmd"]
        .iter()
        .enumerate()
    {
        sqlx::query(
            "insert into tenant_event (id, tenant_id, kind, detail, request_id, created_at) \
             values ($1, $2, 'callback_named', $3, '-req', $4)",
        )
        .bind(format!("0190000{i}-0000-7000-8000-000000000000"))
        .bind(&hostile)
        .bind(detail)
        .bind(ts(time::OffsetDateTime::now_utc()))
        .execute(&db)
        .await
        .expect("an event");
    }
    db.close().await;
    let operator = app.operator().await;

    let list = page(&operator, "/admin?status=active&sort=name&dir=asc").await;
    let export = link(&list, "export").expect("an export link");
    assert!(export.starts_with("/admin/tenants.csv?"), "{export}");
    let response = operator.get(&export).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .starts_with("attachment")
    );
    let text = response.text().await.expect("csv");
    let records = parse_csv(&text);
    assert_eq!(records[0][0], "tenant_id");
    let rows = &records[1..];
    let active: Vec<String> = {
        let mut a: Vec<(String, String)> = seeded
            .iter()
            .filter(|t| t.status == "active")
            .map(|t| {
                let name = if t.id == hostile {
                    "=hyperlink(\"https://evil.example\",\"click\"), inc".to_owned()
                } else {
                    t.name.clone().unwrap_or_default().to_ascii_lowercase()
                };
                (name, t.id.clone())
            })
            .collect();
        a.sort();
        a.into_iter().map(|(_, id)| id).collect()
    };
    assert_eq!(
        rows.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        active,
        "every active tenant (more than a page), in the list's order"
    );
    let evil = rows
        .iter()
        .find(|r| r[0] == hostile)
        .expect("the hostile name");
    assert_eq!(
        evil[1], "'=HYPERLINK(\"https://evil.example\",\"Click\"), Inc",
        "quoted, and neutralised"
    );
    assert!(text.contains("\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"Click\"\"), Inc\""));

    let events = operator
        .get(&format!("/admin/tenants/{hostile}/events.csv"))
        .await;
    assert_eq!(events.status(), 200);
    let text = events.text().await.expect("csv");
    let records = parse_csv(&text);
    assert_eq!(records[0], ["time", "kind", "detail", "request_id"]);
    let details: Vec<&str> = records[1..].iter().map(|r| r[2].as_str()).collect();
    assert_eq!(
        details,
        ["'@cmd", "plain, with \"quotes\"\nand a line", "'+SUM(1,2)"],
        "newest first"
    );
    assert!(records[1..].iter().all(|r| r[3] == "'-req"));

    let unknown = operator
        .get("/admin/tenants/ffffffff-0000-4000-8000-000000000000/events.csv")
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_list_and_its_exports_send_a_browser_without_a_session_to_the_login_page() {
    let app = spawn_app().await;
    seed(&app, 3).await;
    let anonymous = app.browser();
    for path in [
        "/admin?status=attention".to_owned(),
        "/admin?sort=name&dir=desc".to_owned(),
        "/admin/tenants.csv".to_owned(),
        format!("/admin/tenants/{}/events.csv", seeded_id(0)),
    ] {
        let response = anonymous.get(&path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(response.headers()["location"], "/admin/login", "{path}");
        let body = response.text().await.expect("body");
        assert!(!body.contains(&seeded_id(0)), "{body}");
    }
}

#[tokio::test]
async fn the_list_shows_relative_times_and_names_in_recent_activity() {
    let app = spawn_app().await;
    let seeded = seed(&app, 3).await;
    let db = app.db().await;
    sqlx::query(
        "insert into tenant_event (id, tenant_id, kind, detail, created_at) \
         values ('01900000-0000-7000-8000-00000000000a', $1, 'verify_requested', 'Asked.', $2)",
    )
    .bind(&seeded[0].id)
    .bind(ts(
        time::OffsetDateTime::now_utc() - time::Duration::minutes(3)
    ))
    .execute(&db)
    .await
    .expect("an event");
    db.close().await;
    let operator = app.operator().await;
    let html = page(&operator, "/admin").await;
    let activity = &html[html.find("Recent activity").expect("activity")..];

    assert!(activity.contains("3 min ago"), "{activity}");
    assert!(
        activity.contains(&format!(
            "<a href=\"/admin/tenants/{}\">{}</a>",
            seeded[0].id,
            seeded[0].name.clone().expect("a name")
        )),
        "{activity}"
    );
    assert!(
        html.contains("1 min ago"),
        "consent times beside their dates"
    );
}

#[tokio::test]
async fn what_this_instance_changes_shows_on_the_next_page_despite_the_cache() {
    let app = spawn_app().await;
    seed(&app, 3).await;
    let operator = app.operator().await;
    let contoso = app.emulator.contoso();
    // The first page, read and kept for the console cache's second.
    let before = page(&operator, "/admin").await;
    assert!(!listed(&before).contains(&contoso), "not connected yet");

    // A sign-up, its callback and the verifier's check, all through this instance: the
    // very next read of the same page shows the tenant, and its events.
    assert_eq!(app.onboard(&app.browser(), &contoso).await.status, "active");
    let after = page(&operator, "/admin").await;
    assert!(listed(&after).contains(&contoso), "{after}");
    let activity = &after[after.find("Recent activity").expect("activity")..];
    assert!(activity.contains(&contoso), "{activity}");
}

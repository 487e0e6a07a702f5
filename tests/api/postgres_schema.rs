//! The PostgreSQL schema (`migrations/postgres/`) against SQLite's (`migrations/`): applied
//! to a real PostgreSQL, it must have the same tables, the same columns in the same order
//! with matching types and nullability, the same indexes (but for search, which each
//! database does its own way), and the same latest migration, so that one store can read
//! both into the same rows. And its rules (the counts per status and per day, search, the
//! append-only audit trail) must do what SQLite's triggers do.
//!
//! Needs a PostgreSQL cluster: `CONSENTRY_TEST_POSTGRES_URL` names a database of it whose
//! user may create databases (`.ci/run` starts a throw-away cluster and sets it); each
//! test creates a database of its own. Without the variable the tests say SKIPPED, except
//! under CI, which must provide it.

use std::collections::{BTreeMap, BTreeSet};

use consentry::store::Store;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

/// Tables left out of the comparison: those of the migrating itself, and those only one
/// database has: SQLite's FTS5 table for search is a virtual table with
/// shadow tables; PostgreSQL keeps a text-search document per tenant instead. Both have a
/// `tenant_search`, compared by name only.
fn only_in_one(table: &str) -> bool {
    // `_sqlx_migrations` and `_consentry_migration_lock` belong to the migrating itself.
    table.starts_with('_') || table.starts_with("sqlite_") || table.starts_with("tenant_search")
}

/// A database of the test cluster, made for one test and dropped by [`TestDatabase::drop`].
struct TestDatabase {
    pool: PgPool,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    async fn drop(self) {
        self.pool.close().await;
        let mut admin = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("connects");
        sqlx::query(&format!("drop database {} with (force)", self.name))
            .execute(&mut admin)
            .await
            .expect("drop database");
    }
}

/// A fresh database on the test cluster, migrated; `None` (after saying SKIPPED) without
/// a cluster outside CI.
async fn migrated_postgres(test: &str) -> Option<TestDatabase> {
    let Ok(url) = std::env::var("CONSENTRY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide PostgreSQL: CONSENTRY_TEST_POSTGRES_URL (see .ci/run)"
        );
        eprintln!("SKIPPED {test}: set CONSENTRY_TEST_POSTGRES_URL to a PostgreSQL database");
        return None;
    };
    let (name, own) = crate::app_helpers::create_postgres_database(&url).await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&own)
        .await
        .expect("the new database");
    sqlx::migrate!("./migrations/postgres")
        .run(&pool)
        .await
        .expect("the PostgreSQL migrations apply");
    Some(TestDatabase {
        pool,
        admin_url: url,
        name,
    })
}

/// A column as both schemas are compared: name, type (`integer` or `text`), nullable.
type Column = (String, &'static str, bool);

async fn sqlite_schema() -> (BTreeMap<String, Vec<Column>>, BTreeSet<String>) {
    let path = std::env::temp_dir().join(format!("consentry-schema-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}", path.display());
    Store::connect(&url).await.expect("migrated").close().await;
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    let mut tables = BTreeMap::new();
    let names: Vec<String> =
        sqlx::query_scalar("select name from sqlite_master where type = 'table' order by name")
            .fetch_all(&pool)
            .await
            .expect("tables");
    for table in names.into_iter().filter(|t| !only_in_one(t)) {
        let rows = sqlx::query(&format!("pragma table_xinfo(\"{table}\")"))
            .fetch_all(&pool)
            .await
            .expect("columns");
        let columns = rows
            .iter()
            .map(|r| {
                let declared: String = r.get("type");
                let kind = match declared.to_ascii_lowercase().as_str() {
                    "integer" => "integer",
                    "text" => "text",
                    other => panic!("{table}: a column of SQLite type {other}"),
                };
                // SQLite lets a text primary key be null; PostgreSQL does not: compare
                // what the schema means.
                let nullable = r.get::<i64, _>("notnull") == 0 && r.get::<i64, _>("pk") == 0;
                (r.get::<String, _>("name"), kind, nullable)
            })
            .collect();
        tables.insert(table, columns);
    }
    let indexes: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'index' and name not like 'sqlite_%'",
    )
    .fetch_all(&pool)
    .await
    .expect("indexes");
    pool.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    (tables, indexes.into_iter().collect())
}

async fn postgres_schema(pool: &PgPool) -> (BTreeMap<String, Vec<Column>>, BTreeSet<String>) {
    let rows = sqlx::query(
        "select table_name::text as t, column_name::text as c, data_type::text as d, \
         is_nullable::text as n from information_schema.columns \
         where table_schema = 'public' order by table_name, ordinal_position",
    )
    .fetch_all(pool)
    .await
    .expect("columns");
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for r in rows {
        let table: String = r.get("t");
        if only_in_one(&table) {
            continue;
        }
        let data_type: String = r.get("d");
        let kind = match data_type.as_str() {
            "bigint" => "integer",
            "text" => "text",
            other => panic!("{table}: a column of type {other}: the store reads i64 and String"),
        };
        tables
            .entry(table)
            .or_default()
            .push((r.get("c"), kind, r.get::<String, _>("n") == "YES"));
    }
    // Indexes made by declaring them, not those behind primary keys and unique
    // constraints (SQLite's are the unnamed sqlite_autoindex_*).
    let indexes: Vec<String> = sqlx::query_scalar(
        "select i.indexname::text from pg_indexes i where i.schemaname = 'public' \
         and not exists (select 1 from pg_constraint c where c.conname = i.indexname)",
    )
    .fetch_all(pool)
    .await
    .expect("indexes");
    (tables, indexes.into_iter().collect())
}

/// The latest version in a folder of migrations.
fn latest_version(folder: &str) -> String {
    std::fs::read_dir(folder)
        .expect("a migrations folder")
        .filter_map(|e| {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            name.strip_suffix(".sql")
                .and_then(|s| s.split_once('_'))
                .map(|(v, _)| v.to_owned())
        })
        .max()
        .expect("a migration")
}

#[tokio::test]
async fn the_postgresql_schema_has_sqlites_tables_columns_and_indexes() {
    let Some(db) =
        migrated_postgres("the_postgresql_schema_has_sqlites_tables_columns_and_indexes").await
    else {
        return;
    };
    let pool = db.pool.clone();

    let (sqlite_tables, sqlite_indexes) = sqlite_schema().await;
    let (postgres_tables, postgres_indexes) = postgres_schema(&pool).await;
    let search: Option<String> =
        sqlx::query_scalar("select to_regclass('public.tenant_search')::text")
            .fetch_one(&pool)
            .await
            .expect("search table");

    assert_eq!(
        sqlite_tables.keys().collect::<Vec<_>>(),
        postgres_tables.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, columns) in &sqlite_tables {
        assert_eq!(
            columns, &postgres_tables[table],
            "{table}: the same columns, in order, of the same types and nullability"
        );
    }
    let search_indexes: BTreeSet<String> = ["tenant_search_document".to_owned()].into();
    assert_eq!(
        sqlite_indexes,
        &postgres_indexes - &search_indexes,
        "the same indexes (PostgreSQL's search index aside)"
    );
    assert_eq!(search.as_deref(), Some("tenant_search"));
    assert_eq!(
        latest_version("migrations"),
        latest_version("migrations/postgres"),
        "every schema change is a migration in both folders, under one version"
    );
    db.drop().await;
}

#[tokio::test]
async fn the_postgresql_rules_count_search_and_keep_the_audit_trail() {
    let Some(db) =
        migrated_postgres("the_postgresql_rules_count_search_and_keep_the_audit_trail").await
    else {
        return;
    };
    let pool = db.pool.clone();
    let day1 = "2026-12-01T10:00:00.000Z";
    let day1_later = "2026-12-01T11:00:00.000Z";
    let day2 = "2026-12-02T10:00:00.000Z";

    // A tenant consents, is verified, fails a check, is revoked, and comes back.
    sqlx::query(
        "insert into tenant (id, status, display_name, verified_domains, consented_at, \
         created_at, updated_at) values ('t1', 'pending', 'Ärzte Contoso', \
         '[\"contoso.com\",\"contoso.onmicrosoft.com\"]', $1, $1, $1)",
    )
    .bind(day1)
    .execute(&pool)
    .await
    .expect("insert");
    for (set, at) in [
        ("status = 'active', verified_at = $1", day1),
        ("last_failure_at = $1", day1),
        ("last_failure_at = $1", day1_later),
        ("status = 'revoked', last_failure_at = $1", day2),
        ("status = 'active'", day2),
    ] {
        sqlx::query(&format!(
            "update tenant set {set}, updated_at = $1 where id = 't1'"
        ))
        .bind(at)
        .execute(&pool)
        .await
        .expect("update");
    }
    let daily: Vec<(String, String, i64)> =
        sqlx::query_as("select kind, day, n from tenant_daily_count order by kind, day")
            .fetch_all(&pool)
            .await
            .expect("daily counts");
    let counts: Vec<(String, i64, i64)> =
        sqlx::query_as("select status, n, verified from tenant_status_count where n > 0")
            .fetch_all(&pool)
            .await
            .expect("status counts");
    let found = |query: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "select tenant_id from tenant_search where document @@ to_tsquery('simple', $1)",
            )
            .bind(query)
            .fetch_all(&pool)
            .await
            .expect("search")
        }
    };
    let by_prefix = found("conto:*").await;
    let without_diacritics = found("arzte").await;
    let by_domain = found("contoso <-> com").await;
    let by_other = found("fabrikam:*").await;
    sqlx::query(
        "insert into audit_event (at, actor, address, action, outcome) \
         values ($1, 'ops', '127.0.0.1', 'sign_in', 'success')",
    )
    .bind(day1)
    .execute(&pool)
    .await
    .expect("an audit event");
    let rewrite = sqlx::query("update audit_event set actor = 'someone else'")
        .execute(&pool)
        .await;
    let erase = sqlx::query("delete from audit_event").execute(&pool).await;
    sqlx::query("delete from tenant where id = 't1'")
        .execute(&pool)
        .await
        .expect("delete");
    let left: i64 = sqlx::query_scalar("select count(*) from tenant_search")
        .fetch_one(&pool)
        .await
        .expect("count");
    let counts_after: i64 =
        sqlx::query_scalar("select coalesce(sum(n), 0)::bigint from tenant_status_count")
            .fetch_one(&pool)
            .await
            .expect("sum");

    let row = |k: &str, d: &str, n: i64| (k.to_owned(), d.to_owned(), n);
    assert_eq!(
        daily,
        vec![
            row("consent", "2026-12-01", 1),
            row("failed_check", "2026-12-01", 1),
            row("failed_check", "2026-12-02", 1),
            row("reconsent", "2026-12-02", 1),
            row("revocation", "2026-12-02", 1),
        ],
        "one consent, one failed check a day however many, the revocation and the return"
    );
    assert_eq!(counts, vec![("active".to_owned(), 1, 1)]);
    assert_eq!(by_prefix, ["t1"]);
    assert_eq!(without_diacritics, ["t1"]);
    assert_eq!(by_domain, ["t1"]);
    assert!(by_other.is_empty());
    assert!(
        rewrite.is_err_and(|e| e.to_string().contains("append-only")),
        "the audit trail cannot be rewritten"
    );
    assert!(erase.is_err(), "nor erased");
    assert_eq!(left, 0, "a deleted tenant leaves no search document");
    assert_eq!(counts_after, 0, "nor a count");
    db.drop().await;
}

/// Every row of `table` in key order, each value as text (integers written out), from
/// SQLite or PostgreSQL alike.
async fn rows_of<'e, DB>(pool: &sqlx::Pool<DB>, table: &str, key: &str) -> Vec<Vec<Option<String>>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
{
    let rows = sqlx::query(&format!("select * from {table} order by {key}"))
        .fetch_all(pool)
        .await
        .expect("rows");
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| match r.try_get::<Option<i64>, _>(i) {
                    Ok(n) => n.map(|n| n.to_string()),
                    Err(_) => r.try_get::<Option<String>, _>(i).expect("text"),
                })
                .collect()
        })
        .collect()
}

/// `consentry db copy`, as a command; its exit status and output.
async fn db_copy(from: &str, to: &str) -> (bool, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["db", "copy", "--from", from, "--to", to, "--batch", "7"])
        .env_remove("CONSENTRY_DATABASE_URL")
        .output()
        .await
        .expect("consentry runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The copied tables and their keys (`src/store/copy.rs` copies these).
const COPIED: &[(&str, &str)] = &[
    ("consent_request", "id"),
    ("invitation", "id"),
    ("sign_in_request", "id"),
    ("tenant", "id"),
    ("tenant_event", "id"),
    ("tenant_daily_count", "kind, day"),
    ("operator", "id"),
    ("operator_session", "id_hash"),
    ("audit_event", "id"),
    ("api_key", "id"),
    ("api_idempotency_key", "api_key_id, idempotency_key"),
    ("webhook_endpoint", "id"),
    ("webhook_event", "id"),
    ("webhook_delivery", "id"),
    ("app_alert", "kind"),
];

#[tokio::test]
async fn db_copy_moves_every_row_of_a_used_database_and_can_run_again() {
    // Arrange: a database used as consentry uses it: an endpoint, an API key, Contoso and
    // Fabrikam onboarded (consents, checks, events, daily counts, webhook deliveries), an
    // operator signed in (a session, the audit trail), a sign-up left pending.
    let Some(db) =
        migrated_postgres("db_copy_moves_every_row_of_a_used_database_and_can_run_again").await
    else {
        return;
    };
    let target = db.pool.clone();
    let mut to = url::Url::parse(&db.admin_url).expect("URL");
    to.set_path(&format!("/{}", db.name));
    let app = crate::app_helpers::spawn_app_on_sqlite().await;
    let receiver = crate::webhook_delivery::Receiver::start(crate::webhook_delivery::answer(
        "204 No Content",
        "",
    ))
    .await;
    crate::webhook_delivery::create_endpoint(
        &app.store,
        &receiver.url(),
        &consentry::domain::webhook::EventFilter::all(),
        "salt",
    )
    .await;
    let key = consentry::domain::api_key::ApiKeySecret::generate();
    app.store
        .create_api_key(
            &consentry::store::NewApiKey {
                name: "copied",
                prefix: &key.shown_prefix(),
                key_hash: &key.hash(),
                scopes: &[consentry::domain::api_key::Scope::TenantsRead],
            },
            time::OffsetDateTime::now_utc(),
        )
        .await
        .expect("key");
    app.onboard(&app.browser(), &app.emulator.contoso()).await;
    app.onboard(&app.browser(), "c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6")
        .await;
    app.operator().await;
    app.browser().signup(&[]).await;
    receiver.wait_for(2, 30).await;
    let source = app.db().await;
    crate::app_helpers::poll("the deliveries recorded", 30, || async {
        let pending: i64 =
            sqlx::query_scalar("select count(*) from webhook_delivery where status <> 'succeeded'")
                .fetch_one(&source)
                .await
                .expect("count");
        (pending == 0).then_some(())
    })
    .await;

    // Act: copy, then copy again.
    let (first_ok, first) = db_copy(&app.database_url, to.as_str()).await;
    let (second_ok, second) = db_copy(&app.database_url, to.as_str()).await;
    let mut tables = Vec::new();
    for (table, key) in COPIED {
        tables.push((
            *table,
            rows_of(&source, table, key).await,
            rows_of(&target, table, key).await,
        ));
    }
    let status_counts = rows_of(&target, "tenant_status_count where n > 0", "status").await;
    let searched: Vec<String> = sqlx::query_scalar(
        "select tenant_id from tenant_search where document @@ to_tsquery('simple', 'contoso:*')",
    )
    .fetch_all(&target)
    .await
    .expect("search");
    let expected_counts = rows_of(&source, "tenant_status_count where n > 0", "status").await;
    // consentry started on the copy lists on its dashboard what the original lists.
    let before =
        crate::console::listed(&crate::console::page(&app.operator().await, "/admin?all=1").await);
    let moved =
        crate::app_helpers::spawn_app_on(crate::app_helpers::TestDatabase::borrowed(to.as_str()))
            .await;
    let after = crate::console::listed(
        &crate::console::page(&moved.operator().await, "/admin?all=1").await,
    );
    let health = moved.browser().get("/readyz").await.status();
    drop(moved);

    // Assert: both runs end well, and every row of every table is in the target as it is
    // in the source, generated columns included; derived tables are built by the target.
    assert!(first_ok, "{first}");
    assert!(second_ok, "{second}");
    assert!(
        first.contains("every table's rows counted on both sides match (15 tables)"),
        "{first}"
    );
    for (table, from, to) in &tables {
        assert_eq!(from, to, "{table}: the same rows");
    }
    let rows = |name: &str| tables.iter().find(|t| t.0 == name).expect("table").1.len();
    assert_eq!(rows("tenant"), 2);
    assert!(rows("tenant_event") >= 2 && rows("webhook_delivery") >= 2);
    assert!(rows("audit_event") >= 1 && rows("operator_session") >= 1 && rows("api_key") == 1);
    assert!(rows("consent_request") >= 3 && rows("tenant_daily_count") >= 1);
    assert_eq!(status_counts, expected_counts, "counts per status");
    assert_eq!(searched, [app.emulator.contoso()], "search");
    assert_eq!(before.len(), 2, "{before:?}");
    assert_eq!(
        after, before,
        "the dashboard on PostgreSQL lists the same tenants"
    );
    assert_eq!(health, 200, "ready on the copy");
    source.close().await;
    db.drop().await;
}

#[tokio::test]
async fn db_copy_refuses_what_it_cannot_copy_and_creates_nothing() {
    let missing =
        std::env::temp_dir().join(format!("consentry-missing-{}.db", uuid::Uuid::new_v4()));
    let missing_url = format!("sqlite://{}", missing.display());
    let pg = "postgres://consentry:hunter2@127.0.0.1:1/consentry";

    let (to_sqlite_ok, to_sqlite) = db_copy(&missing_url, "sqlite://elsewhere.db").await;
    let (no_file_ok, no_file) = db_copy(&missing_url, pg).await;
    let (memory_ok, memory) = db_copy("sqlite::memory:", pg).await;

    assert!(
        !to_sqlite_ok && to_sqlite.contains("is not a PostgreSQL URL"),
        "{to_sqlite}"
    );
    assert!(
        !no_file_ok && no_file.contains("there is no SQLite database at"),
        "{no_file}"
    );
    assert!(
        !memory_ok && memory.contains("not a SQLite database file URL"),
        "{memory}"
    );
    assert!(!missing.exists(), "nothing created");
    for output in [&to_sqlite, &no_file, &memory] {
        assert!(
            !output.contains("hunter2"),
            "the password stays out: {output}"
        );
    }
}

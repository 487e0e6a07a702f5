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

/// Tables only one database has: SQLite's FTS5 table for search is a virtual table with
/// shadow tables; PostgreSQL keeps a text-search document per tenant instead. Both have a
/// `tenant_search`, compared by name only.
fn only_in_one(table: &str) -> bool {
    table == "_sqlx_migrations"
        || table.starts_with("sqlite_")
        || table.starts_with("tenant_search")
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
    let name = format!("consentry_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .expect("CONSENTRY_TEST_POSTGRES_URL connects");
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.expect("close");
    let mut own = url::Url::parse(&url).expect("a URL");
    own.set_path(&format!("/{name}"));
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(own.as_str())
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
    let by_domain = found("contoso.com").await;
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

//! `consentry db copy`: every table of a SQLite database into PostgreSQL, in batches.
//!
//! The target gets the PostgreSQL schema first (`migrations/postgres/`, the same version as
//! SQLite's: `tests/api/postgres_schema.rs` keeps the two equal), then each table in an order
//! that satisfies its foreign keys, a batch at a time in primary-key order (keyset: no
//! offset scans), each batch one `insert ... on conflict (primary key) do update` (so that
//! a second run completes an interrupted one and brings over rows changed since; the audit
//! trail, append-only, is only ever added to). Tables the target derives itself are not
//! copied: search documents and counts per status are kept by its triggers as tenants
//! arrive. Leases are an instance's state of the moment: not copied either. At the end the
//! rows of every copied table are counted on both sides.
//!
//! Nothing is deleted from the target: a row purged from the source since an earlier run
//! stays, and the counts then disagree, which the report says.

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::{Context, bail};
use sqlx::any::AnyRow;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Postgres, QueryBuilder, Row};

use super::{Store, redacted_url};

/// The tables copied, parents before children.
const COPIED: &[&str] = &[
    "consent_request",
    "invitation",
    "sign_in_request",
    "tenant",
    "tenant_event",
    "tenant_daily_count",
    "operator",
    "operator_session",
    "audit_event",
    "api_key",
    "api_idempotency_key",
    "webhook_endpoint",
    "webhook_event",
    "webhook_delivery",
    "app_alert",
];

/// Tables the target keeps itself, or that hold an instance's passing state.
const NOT_COPIED: &[&str] = &["tenant_status_count", "tenant_search", "job_lease"];

/// One value of a copied row, as the two schemas type it (integer or text).
#[derive(Debug, Clone)]
enum Value {
    Integer(Option<i64>),
    Text(Option<String>),
}

/// A copied table's columns and primary key, read from SQLite.
struct Table {
    name: &'static str,
    /// `(name, is integer)`, generated columns left out (the target computes them).
    columns: Vec<(String, bool)>,
    key: Vec<String>,
}

/// What one run did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    /// Rows read from the source and written to the target in this run.
    pub copied: u64,
    pub source_rows: i64,
    pub target_rows: i64,
}

impl CopiedTable {
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows
    }
}

/// How a run goes, for a progress display: a table begins (with its rows in the source),
/// then batches are copied.
pub trait CopyProgress {
    fn table(&self, table: &str, rows: u64);
    fn copied(&self, rows: u64);
    fn table_done(&self);
}

/// Copies every table of the SQLite database at `from` into the PostgreSQL database at
/// `to`, `batch` rows at a time, and counts the rows of both. The source must be at this
/// consentry's latest migration (run `consentry migrate` on it first); the target is
/// migrated to the same.
pub async fn copy_sqlite_to_postgres(
    from: &str,
    to: &str,
    batch: usize,
    progress: &dyn CopyProgress,
) -> anyhow::Result<Vec<CopiedTable>> {
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!(
            "--to '{}' is not a PostgreSQL URL (postgres://user:password@host/database)",
            redacted_url(to)
        );
    }
    let batch = batch.clamp(1, 5_000);
    // Opening would create a missing file: a typo must not leave an empty database behind.
    // The file as sqlx reads the URL (an in-memory database is named `file:...`).
    let file = from
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("sqlite:"))
        .then(|| SqliteConnectOptions::from_str(from).ok())
        .flatten()
        .map(|options| options.get_filename().to_path_buf())
        .filter(|path| {
            let name = path.to_string_lossy();
            !name.is_empty() && name != ":memory:" && !name.starts_with("file:")
        });
    let Some(file) = file else {
        bail!(
            "--from '{}' is not a SQLite database file URL (sqlite://path/to/consentry.db)",
            redacted_url(from)
        );
    };
    if !file.is_file() {
        bail!("--from: there is no SQLite database at {}", file.display());
    }
    let source = Store::open(from, &super::DatabaseOptions::default()).await?;
    let result = copy_from(&source, to, batch, progress).await;
    source.close().await;
    result
}

async fn copy_from(
    source: &Store,
    to: &str,
    batch: usize,
    progress: &dyn CopyProgress,
) -> anyhow::Result<Vec<CopiedTable>> {
    source
        .schema_status()
        .await
        .context("reading the source's applied migrations")?
        .require_current()
        .context("the source database must be at this consentry's schema: run `consentry migrate` on it first")?;
    let tables = tables_of(source).await?;
    let options = PgConnectOptions::from_str(to)
        .with_context(|| format!("--to '{}' is not a valid PostgreSQL URL", redacted_url(to)))?
        // PostgreSQL's notices ("relation ... already exists, skipping" on a second run)
        // are not news to anyone running the copy.
        .options([("client_min_messages", "warning")]);
    let target = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| format!("connecting to {}", redacted_url(to)))?;
    let result = copy_tables(source, &target, &tables, batch, progress).await;
    target.close().await;
    result
}

async fn copy_tables(
    source: &Store,
    target: &PgPool,
    tables: &[Table],
    batch: usize,
    progress: &dyn CopyProgress,
) -> anyhow::Result<Vec<CopiedTable>> {
    super::schema::migrator(super::Dialect::Postgres)
        .run(target)
        .await
        .context("applying the PostgreSQL schema to the target")?;
    let mut report = Vec::new();
    for table in tables {
        let source_rows: i64 = sqlx::query_scalar(&format!("select count(*) from {}", table.name))
            .fetch_one(&source.pool)
            .await?;
        progress.table(table.name, source_rows.max(0) as u64);
        let copied = copy_table(source, target, table, batch, progress)
            .await
            .with_context(|| format!("copying {}", table.name))?;
        progress.table_done();
        let target_rows: i64 = sqlx::query_scalar(&format!("select count(*) from {}", table.name))
            .fetch_one(target)
            .await?;
        report.push(CopiedTable {
            table: table.name,
            copied,
            source_rows,
            target_rows,
        });
    }
    // Identities continue after the copied ids.
    sqlx::query(
        "select setval(pg_get_serial_sequence('audit_event', 'id'), \
         coalesce((select max(id) from audit_event), 0) + 1, false)",
    )
    .execute(target)
    .await
    .context("moving the audit trail's id sequence on")?;
    Ok(report)
}

/// The source's tables with their columns and keys; refuses a table it would not know how
/// to copy (a schema newer than this code).
async fn tables_of(source: &Store) -> anyhow::Result<Vec<Table>> {
    let names: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' \
         and name not like 'sqlite_%' and name not like '\\_%' escape '\\' \
         and name not like 'tenant_search_%'",
    )
    .fetch_all(&source.pool)
    .await?;
    if let Some(unknown) = names
        .iter()
        .find(|n| !COPIED.contains(&n.as_str()) && !NOT_COPIED.contains(&n.as_str()))
    {
        bail!("the source has a table this consentry does not copy: {unknown}");
    }
    let mut tables = Vec::new();
    for &name in COPIED {
        let rows = sqlx::query(&format!("pragma table_xinfo(\"{name}\")"))
            .fetch_all(&source.pool)
            .await?;
        let mut columns = Vec::new();
        let mut key = BTreeMap::new();
        for r in rows {
            let column: String = r.get("name");
            // 0: a stored column; 2 and 3: generated (the target computes its own).
            if r.get::<i64, _>("hidden") != 0 {
                continue;
            }
            let declared: String = r.get("type");
            columns.push((column.clone(), declared.eq_ignore_ascii_case("integer")));
            let pk: i64 = r.get("pk");
            if pk > 0 {
                key.insert(pk, column);
            }
        }
        if key.is_empty() {
            bail!("{name} has no primary key to copy it by");
        }
        tables.push(Table {
            name,
            columns,
            key: key.into_values().collect(),
        });
    }
    Ok(tables)
}

/// Copies one table in key order, `batch` rows a statement; returns the rows copied.
async fn copy_table(
    source: &Store,
    target: &PgPool,
    table: &Table,
    batch: usize,
    progress: &dyn CopyProgress,
) -> anyhow::Result<u64> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| c.as_str()).collect();
    // A statement takes at most 65,535 parameters.
    let batch = batch.min(65_535 / columns.len().max(1));
    let key = table.key.join(", ");
    let params: Vec<String> = (1..=table.key.len()).map(|i| format!("${i}")).collect();
    let select_first = format!(
        "select {} from {} order by {key} limit {batch}",
        columns.join(", "),
        table.name
    );
    let select_next = format!(
        "select {} from {} where ({key}) > ({}) order by {key} limit {batch}",
        columns.join(", "),
        table.name,
        params.join(", ")
    );
    let mut after: Option<Vec<Value>> = None;
    let mut copied = 0u64;
    loop {
        let rows: Vec<AnyRow> = match &after {
            None => sqlx::query(&select_first).fetch_all(&source.pool).await?,
            Some(last) => {
                let mut query = sqlx::query(&select_next);
                for value in last {
                    query = match value {
                        Value::Integer(v) => query.bind(*v),
                        Value::Text(v) => query.bind(v.clone()),
                    };
                }
                query.fetch_all(&source.pool).await?
            }
        };
        if rows.is_empty() {
            return Ok(copied);
        }
        let values: Vec<Vec<Value>> = rows
            .iter()
            .map(|r| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, integer))| {
                        Ok(if *integer {
                            Value::Integer(r.try_get(i)?)
                        } else {
                            Value::Text(r.try_get(i)?)
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
            .collect::<Result<_, _>>()?;
        insert_batch(target, table, &columns, &values).await?;
        copied += values.len() as u64;
        progress.copied(values.len() as u64);
        // The key of the batch's last row: where the next batch starts.
        let last = &values[values.len() - 1];
        after = Some(
            table
                .key
                .iter()
                .filter_map(|k| columns.iter().position(|c| c == k))
                .map(|i| last[i].clone())
                .collect(),
        );
        if values.len() < batch {
            return Ok(copied);
        }
    }
}

/// One `insert ... on conflict` of a batch: new rows are added, rows copied before are
/// brought up to date (the audit trail's are left: it is append-only).
async fn insert_batch(
    target: &PgPool,
    table: &Table,
    columns: &[&str],
    rows: &[Vec<Value>],
) -> anyhow::Result<()> {
    let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "insert into {} ({}) ",
        table.name,
        columns.join(", ")
    ));
    insert.push_values(rows, |mut row, values| {
        for value in values {
            match value {
                Value::Integer(v) => row.push_bind(*v),
                Value::Text(v) => row.push_bind(v.clone()),
            };
        }
    });
    let updated: Vec<String> = columns
        .iter()
        .filter(|c| !table.key.iter().any(|k| k == *c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let key = table.key.join(", ");
    if table.name == "audit_event" || updated.is_empty() {
        insert.push(format!(" on conflict ({key}) do nothing"));
    } else {
        insert.push(format!(
            " on conflict ({key}) do update set {}",
            updated.join(", ")
        ));
    }
    let mut tx = target.begin().await?;
    insert.build().execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

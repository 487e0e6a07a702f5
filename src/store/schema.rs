//! The database's schema against the migrations built into this binary: which are applied,
//! which are pending, and whether the database was migrated by a consentry newer than this
//! one. `consentry migrate`, `serve` at start and `GET /readyz` all ask here, so that they
//! agree on what "current" means.

use std::collections::BTreeMap;
use std::fmt;

use sqlx::AnyConnection;
use sqlx::migrate::{Migrate, MigrateError, Migration, Migrator};

use super::{Dialect, Store, StoreError};

/// The migrations built into this binary for SQLite, from `migrations/`.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");
/// The same schema for PostgreSQL, from `migrations/postgres/`: it starts at SQLite's
/// latest version, and each later migration is written for both (numbered alike), which
/// `tests/api/postgres_schema.rs` checks.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

pub(super) fn migrator(dialect: Dialect) -> &'static Migrator {
    match dialect {
        Dialect::Sqlite => &MIGRATOR,
        Dialect::Postgres => &POSTGRES_MIGRATOR,
    }
}

/// A migration as `migrations/` and `_sqlx_migrations` name it: `20261121000001 initial`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationName {
    pub version: i64,
    pub description: String,
}

impl fmt::Display for MigrationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.version, self.description)
    }
}

impl MigrationName {
    fn of(migration: &Migration) -> MigrationName {
        MigrationName {
            version: migration.version,
            description: migration.description.clone().into_owned(),
        }
    }
}

/// The latest migration this binary knows for `dialect`'s database.
pub fn latest_migration(dialect: Dialect) -> Option<MigrationName> {
    known(migrator(dialect))
        .last()
        .map(|m| MigrationName::of(m))
}

/// This binary's migrations that apply a change (not the `.down.sql` halves), oldest first.
fn known(migrator: &Migrator) -> Vec<&Migration> {
    let mut known: Vec<&Migration> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .collect();
    known.sort_by_key(|m| m.version);
    known
}

/// One row of `_sqlx_migrations`.
#[derive(Debug, Clone)]
struct AppliedRow {
    version: i64,
    description: String,
    checksum: Vec<u8>,
    /// False while a migration runs outside a transaction, and after one that failed there.
    success: bool,
}

/// How the database's schema stands against this binary's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// This binary's migrations the database has not had yet, oldest first.
    pub pending: Vec<MigrationName>,
    /// Applied migrations this binary does not know, oldest first: a later (or another)
    /// build of consentry migrated the database.
    pub unknown: Vec<MigrationName>,
    /// Applied migrations whose SQL differs from this binary's (another checksum).
    pub changed: Vec<MigrationName>,
    /// Migrations recorded as started but never finished.
    pub failed: Vec<MigrationName>,
    /// The latest migration this binary knows (0 if none).
    pub latest: i64,
}

/// Why this binary cannot run on the database's schema as it stands.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// A later consentry migrated the database: running an older one on it could write
    /// rows the newer schema forbids or miss columns it relies on.
    #[error(
        "the database's schema is at version {version}, newer than this consentry knows \
         (latest {latest}): upgrade consentry"
    )]
    Newer { version: i64, latest: i64 },
    /// A migration older than our latest that we do not have: another build's.
    #[error(
        "the database has migration {migration} applied, which this consentry does not know \
         (latest {latest}): another build of consentry migrated it; run that build, or \
         restore the database from before it"
    )]
    Unknown {
        migration: MigrationName,
        latest: i64,
    },
    #[error(
        "migration {0} in the database differs from this consentry's (another checksum): it \
         was changed after it was applied; run the consentry that applied it, or restore the \
         database from a backup"
    )]
    Changed(MigrationName),
    #[error(
        "migration {0} was started but did not finish: repair the schema by hand, delete its \
         row from _sqlx_migrations, then run `consentry migrate`"
    )]
    Failed(MigrationName),
    #[error(
        "the database's schema is behind this consentry: {} pending ({}); run `consentry migrate`",
        plural(.0.len(), "migration is", "migrations are"),
        .0.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
    )]
    Pending(Vec<i64>),
    #[error("reading the database's applied migrations")]
    Read(#[source] StoreError),
    /// Taking or releasing the migration lock, or creating `_sqlx_migrations`.
    #[error("preparing the database for migrations")]
    Prepare(#[source] MigrateError),
    #[error("applying migration {0}")]
    Apply(MigrationName, #[source] MigrateError),
    /// Another instance held the migration lock for longer than anyone waits.
    #[error(
        "another consentry has been migrating this database for {} minutes (or died doing \
         so less than {} minutes ago); try again later",
        MIGRATION_LOCK_WAIT.as_secs() / 60,
        MIGRATION_LOCK_HOLD.as_secs() / 60
    )]
    Locked,
}

/// How long the migration lock is held without being renewed (it is renewed before each
/// migration): an instance that died migrating blocks the others this long at most.
const MIGRATION_LOCK_HOLD: std::time::Duration = std::time::Duration::from_secs(5 * 60);
/// How long an instance waits for another's migrations before giving up.
const MIGRATION_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl SchemaStatus {
    /// Compares the rows of `_sqlx_migrations` with `known`, oldest first.
    fn compare(applied: &[AppliedRow], known: &[&Migration]) -> SchemaStatus {
        let by_version: BTreeMap<i64, &Migration> = known.iter().map(|m| (m.version, *m)).collect();
        let applied_by_version: BTreeMap<i64, &AppliedRow> =
            applied.iter().map(|row| (row.version, row)).collect();
        let name = |row: &AppliedRow| MigrationName {
            version: row.version,
            description: row.description.clone(),
        };
        let mut status = SchemaStatus {
            pending: known
                .iter()
                .filter(|m| !applied_by_version.contains_key(&m.version))
                .map(|m| MigrationName::of(m))
                .collect(),
            unknown: Vec::new(),
            changed: Vec::new(),
            failed: Vec::new(),
            latest: known.last().map_or(0, |m| m.version),
        };
        for row in applied_by_version.values() {
            match by_version.get(&row.version) {
                None => status.unknown.push(name(row)),
                Some(_) if !row.success => status.failed.push(name(row)),
                Some(ours) if *ours.checksum != *row.checksum => status.changed.push(name(row)),
                Some(_) => {}
            }
        }
        status
    }

    /// Why this binary must not run on the schema even after migrating it: a newer or
    /// unknown migration, a changed one, or one that never finished.
    pub fn refusal(&self) -> Option<SchemaError> {
        if let Some(newest) = self.unknown.last() {
            return Some(if newest.version > self.latest {
                SchemaError::Newer {
                    version: newest.version,
                    latest: self.latest,
                }
            } else {
                SchemaError::Unknown {
                    migration: newest.clone(),
                    latest: self.latest,
                }
            });
        }
        if let Some(changed) = self.changed.first() {
            return Some(SchemaError::Changed(changed.clone()));
        }
        self.failed.first().cloned().map(SchemaError::Failed)
    }

    /// Whether this binary can run on the schema as it is: no refusal and nothing pending.
    pub fn require_current(&self) -> Result<(), SchemaError> {
        if let Some(refusal) = self.refusal() {
            return Err(refusal);
        }
        if !self.pending.is_empty() {
            return Err(SchemaError::Pending(
                self.pending.iter().map(|m| m.version).collect(),
            ));
        }
        Ok(())
    }

    pub fn is_current(&self) -> bool {
        self.require_current().is_ok()
    }
}

impl Store {
    /// How the schema stands, read without writing anything (the readiness probe asks
    /// this every few seconds; `serve` with `CONSENTRY_MIGRATE=false` may hold no right to
    /// create tables).
    pub async fn schema_status(&self) -> Result<SchemaStatus, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let applied = applied_migrations(&mut conn).await?;
        Ok(SchemaStatus::compare(
            &applied,
            &known(migrator(self.dialect)),
        ))
    }

    /// Applies this binary's pending migrations, oldest first, and returns those it applied
    /// (none when the schema is current). Refuses, applying nothing, a schema that
    /// [`SchemaStatus::refusal`] refuses. Holds the database's migration lock meanwhile, so
    /// that of instances starting together one migrates and the others find it done.
    pub async fn migrate(&self) -> Result<Vec<MigrationName>, SchemaError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| SchemaError::Read(e.into()))?;
        // sqlx's lock does nothing on SQLite; the lock row below does the work there.
        conn.lock().await.map_err(SchemaError::Prepare)?;
        let holder = uuid::Uuid::new_v4().to_string();
        let migrated = match take_migration_lock(&mut conn, &holder).await {
            Ok(()) => migrate_locked(&mut conn, &holder).await,
            Err(e) => Err(e),
        };
        // Released whatever happened: PostgreSQL's lock belongs to the session, which
        // outlives this call in the pool.
        let released = release_migration_lock(&mut conn, &holder).await;
        let unlocked = conn.unlock().await.map_err(SchemaError::Prepare);
        let applied = migrated?;
        released?;
        unlocked?;
        Ok(applied)
    }
}

/// Takes the migration lock: a row of `_consentry_migration_lock` (outside the migrations,
/// which it guards), held by `holder` until a time it renews. Of instances starting
/// together on a fresh file, one migrates while the others wait for it here, then find
/// nothing pending; without it each would apply the same migration and all but one fail.
/// A holder that died stops renewing, and the lock is taken over once its time has run out.
async fn take_migration_lock(conn: &mut AnyConnection, holder: &str) -> Result<(), SchemaError> {
    sqlx::query(
        "create table if not exists _consentry_migration_lock (\
         id integer primary key check (id = 1), holder text not null, until text not null)",
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| SchemaError::Read(e.into()))?;
    let started = std::time::Instant::now();
    loop {
        let now = time::OffsetDateTime::now_utc();
        let taken = sqlx::query(
            "insert into _consentry_migration_lock (id, holder, until) values (1, $1, $2) \
             on conflict (id) do update set holder = excluded.holder, until = excluded.until \
             where _consentry_migration_lock.until <= $3",
        )
        .bind(holder)
        .bind(super::ts(now + MIGRATION_LOCK_HOLD))
        .bind(super::ts(now))
        .execute(&mut *conn)
        .await
        .map_err(|e| SchemaError::Read(e.into()))?
        .rows_affected();
        if taken == 1 {
            return Ok(());
        }
        if started.elapsed() > MIGRATION_LOCK_WAIT {
            return Err(SchemaError::Locked);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Moves the lock's time on, before each migration.
async fn renew_migration_lock(conn: &mut AnyConnection, holder: &str) -> Result<(), SchemaError> {
    let until = super::ts(time::OffsetDateTime::now_utc() + MIGRATION_LOCK_HOLD);
    sqlx::query("update _consentry_migration_lock set until = $1 where holder = $2")
        .bind(until)
        .bind(holder)
        .execute(&mut *conn)
        .await
        .map_err(|e| SchemaError::Read(e.into()))?;
    Ok(())
}

async fn release_migration_lock(conn: &mut AnyConnection, holder: &str) -> Result<(), SchemaError> {
    sqlx::query("delete from _consentry_migration_lock where holder = $1")
        .bind(holder)
        .execute(&mut *conn)
        .await
        .map_err(|e| SchemaError::Read(e.into()))?;
    Ok(())
}

async fn migrate_locked(
    conn: &mut AnyConnection,
    holder: &str,
) -> Result<Vec<MigrationName>, SchemaError> {
    conn.ensure_migrations_table()
        .await
        .map_err(SchemaError::Prepare)?;
    let applied = applied_migrations(conn).await.map_err(SchemaError::Read)?;
    let ours = known(migrator(Dialect::of(conn)));
    let status = SchemaStatus::compare(&applied, &ours);
    if let Some(refusal) = status.refusal() {
        return Err(refusal);
    }
    let mut done = Vec::new();
    for migration in ours {
        if status
            .pending
            .iter()
            .any(|p| p.version == migration.version)
        {
            let name = MigrationName::of(migration);
            renew_migration_lock(conn, holder).await?;
            conn.apply(migration)
                .await
                .map_err(|e| SchemaError::Apply(name.clone(), e))?;
            done.push(name);
        }
    }
    Ok(done)
}

/// The rows of `_sqlx_migrations`; none before the first migration created it.
async fn applied_migrations(conn: &mut AnyConnection) -> Result<Vec<AppliedRow>, StoreError> {
    let exists: i64 = sqlx::query_scalar(Dialect::of(conn).pick(
        "select count(*) from sqlite_master where type = 'table' and name = '_sqlx_migrations'",
        "select count(*) from pg_catalog.pg_tables \
         where schemaname = current_schema() and tablename = '_sqlx_migrations'",
    ))
    .fetch_one(&mut *conn)
    .await?;
    if exists == 0 {
        return Ok(Vec::new());
    }
    // `success` as a number: SQLite keeps it as one, which `Any` will not read as a bool.
    let rows: Vec<(i64, String, Vec<u8>, i64)> = sqlx::query_as(
        "select version, description, checksum, case when success then 1 else 0 end \
         from _sqlx_migrations order by version",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(version, description, checksum, success)| AppliedRow {
            version,
            description,
            checksum,
            success: success != 0,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::MigrationType;

    use super::*;

    fn migrations(versions: &[(i64, &'static str)]) -> Vec<Migration> {
        versions
            .iter()
            .map(|(version, sql)| {
                Migration::new(
                    *version,
                    Cow::Owned(format!("step {version}")),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect()
    }

    fn compare(applied: &[AppliedRow], ours: &[Migration]) -> SchemaStatus {
        SchemaStatus::compare(applied, &ours.iter().collect::<Vec<_>>())
    }

    fn row(ours: &[Migration], version: i64) -> AppliedRow {
        let ours = ours.iter().find(|m| m.version == version).expect("known");
        AppliedRow {
            version,
            description: ours.description.to_string(),
            checksum: ours.checksum.to_vec(),
            success: true,
        }
    }

    fn foreign(version: i64) -> AppliedRow {
        AppliedRow {
            version,
            description: "from elsewhere".into(),
            checksum: vec![0],
            success: true,
        }
    }

    #[test]
    fn a_fresh_database_has_every_migration_pending() {
        let ours = migrations(&[(1, "select 1"), (2, "select 2")]);

        let status = compare(&[], &ours);

        assert_eq!(
            status.pending.iter().map(|m| m.version).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(status.latest, 2);
        assert!(status.refusal().is_none());
        assert_eq!(
            status.require_current().unwrap_err().to_string(),
            "the database's schema is behind this consentry: 2 migrations are pending (1, 2); \
             run `consentry migrate`"
        );
    }

    #[test]
    fn the_same_migrations_applied_are_current() {
        let ours = migrations(&[(1, "select 1"), (2, "select 2")]);

        let status = compare(&[row(&ours, 1), row(&ours, 2)], &ours);

        assert!(status.is_current(), "{status:?}");
    }

    #[test]
    fn a_later_version_applied_is_refused_as_newer() {
        let ours = migrations(&[(1, "select 1"), (2, "select 2")]);

        let status = compare(
            &[row(&ours, 1), row(&ours, 2), foreign(3), foreign(7)],
            &ours,
        );

        assert_eq!(
            status.refusal().map(|r| r.to_string()).as_deref(),
            Some(
                "the database's schema is at version 7, newer than this consentry knows \
                 (latest 2): upgrade consentry"
            )
        );
    }

    #[test]
    fn an_unknown_older_version_is_refused_without_calling_it_newer() {
        let ours = migrations(&[(1, "select 1"), (3, "select 3")]);

        let status = compare(&[row(&ours, 1), foreign(2), row(&ours, 3)], &ours);

        let refusal = status.refusal().expect("refused").to_string();
        assert!(
            refusal.contains("migration 2 from elsewhere") && !refusal.contains("newer"),
            "{refusal}"
        );
    }

    #[test]
    fn a_changed_checksum_and_an_unfinished_migration_are_refused() {
        let ours = migrations(&[(1, "select 1"), (2, "select 2")]);
        let mut changed = row(&ours, 1);
        changed.checksum = vec![1, 2, 3];
        let mut unfinished = row(&ours, 2);
        unfinished.success = false;

        let edited = compare(&[changed, row(&ours, 2)], &ours);
        let broken = compare(&[row(&ours, 1), unfinished], &ours);

        assert!(matches!(edited.refusal(), Some(SchemaError::Changed(m)) if m.version == 1));
        assert!(matches!(broken.refusal(), Some(SchemaError::Failed(m)) if m.version == 2));
        assert!(broken.pending.is_empty(), "not applied again: {broken:?}");
    }

    #[test]
    fn one_pending_migration_is_named_in_the_singular() {
        let ours = migrations(&[(1, "select 1"), (2, "select 2")]);

        let status = compare(&[row(&ours, 1)], &ours);

        assert!(
            status
                .require_current()
                .unwrap_err()
                .to_string()
                .contains("1 migration is pending (2)")
        );
    }

    #[test]
    fn this_binary_knows_migrations() {
        assert!(latest_migration(Dialect::Sqlite).is_some_and(|m| m.version > 20261121000000));
        // PostgreSQL's schema starts at SQLite's latest version, and keeps pace with it.
        assert_eq!(
            latest_migration(Dialect::Postgres).map(|m| m.version),
            latest_migration(Dialect::Sqlite).map(|m| m.version)
        );
    }
}

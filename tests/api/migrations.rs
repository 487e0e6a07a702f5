//! `consentry migrate`, `CONSENTRY_MIGRATE=false` and the refusal of a schema newer than
//! the binary, with the real binary on real SQLite files.

use std::process::Output;
use std::time::Duration;

use tokio::process::Command;

use crate::crash::{ServeConfig, Served, free_port};
use crate::helpers::spawn_emulator;
use crate::monitoring::ready;

/// A version later than any this binary embeds, as a newer consentry would have applied.
const FUTURE_VERSION: i64 = 29991231000001;

/// `consentry ARGS` configured only by `env` (no inherited `CONSENTRY_*`).
fn consentry(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_consentry"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONSENTRY_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true);
    command
}

/// Runs a command that must end by itself (a refusal, a migration) within a minute.
async fn finished(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("it ends by itself instead of serving")
        .expect("runs")
}

async fn migrate(database_url: &str) -> Output {
    finished(consentry(
        &["migrate"],
        &[("CONSENTRY_DATABASE_URL", database_url)],
    ))
    .await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The migrations in `migrations/`, as `(version, description)`, oldest first.
fn migration_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir("migrations")
        .expect("migrations/")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter_map(|name| {
            let stem = name.strip_suffix(".sql")?;
            let (version, description) = stem.split_once('_')?;
            Some((version.to_owned(), description.replace('_', " ")))
        })
        .collect();
    files.sort();
    files
}

async fn add_future_migration(database_url: &str) {
    let pool = sqlx::SqlitePool::connect(database_url).await.expect("open");
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time) \
         values ($1, 'from the future', true, x'00', 0)",
    )
    .bind(FUTURE_VERSION)
    .execute(&pool)
    .await
    .expect("insert");
    pool.close().await;
}

fn newer_message() -> String {
    let latest = migration_files().last().expect("a migration").0.clone();
    format!(
        "the database's schema is at version {FUTURE_VERSION}, newer than this consentry knows \
         (latest {latest}): upgrade consentry"
    )
}

#[tokio::test]
async fn migrate_applies_every_migration_to_a_fresh_file_then_finds_nothing_pending() {
    // Arrange: a fresh file, named the second time by a TOML file as `serve` reads it.
    let config = ServeConfig::new(free_port(), &spawn_emulator().await);
    let toml = std::env::temp_dir().join(format!("consentry-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(
        &toml,
        format!("database_url = \"{}\"\n", config.database_url),
    )
    .expect("write");
    let files = migration_files();

    // Act
    let first = migrate(&config.database_url).await;
    let second = finished(consentry(
        &["migrate", "--config", &toml.display().to_string()],
        &[],
    ))
    .await;

    // Assert: each migration named once, in order, then nothing to do.
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let applied: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("applied "))
        .collect();
    let expected: Vec<String> = files.iter().map(|(v, d)| format!("{v} {d}")).collect();
    assert_eq!(applied, expected, "{stdout}");
    let (latest, description) = files.last().expect("a migration");
    assert!(
        stdout.contains(&format!(
            "the database's schema is current (latest migration {latest} {description})"
        )),
        "{stdout}"
    );
    let stdout = text(&second.stdout);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        stdout.starts_with("nothing to apply: the database's schema is current"),
        "{stdout}"
    );
    assert!(!stdout.contains("applied "), "{stdout}");
    let pool = sqlx::SqlitePool::connect(&config.database_url)
        .await
        .expect("open");
    let rows: i64 =
        sqlx::query_scalar("select count(*) from _sqlx_migrations where success = true")
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(rows as usize, files.len());
    pool.close().await;
    let _ = std::fs::remove_file(&toml);
    config.remove_database();
}

#[tokio::test]
async fn serve_with_migrate_false_refuses_a_fresh_file_until_consentry_migrate_has_run() {
    // Arrange
    let emulator = spawn_emulator().await;
    let mut config = ServeConfig::new(free_port(), &emulator);
    config
        .env
        .push(("CONSENTRY_MIGRATE".into(), "false".into()));
    let files = migration_files();

    // Act: serve before and after `consentry migrate`.
    let refused = finished(config.serve_command()).await;
    let migrated = migrate(&config.database_url).await;
    let served = Served::start(&config).await;
    let body = ready(&config.base()).await;

    // Assert: the refusal names every pending version and what to run.
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CONSENTRY_MIGRATE=false, so serve applies no migrations itself"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{} migrations are pending", files.len())),
        "{stderr}"
    );
    for (version, _) in &files {
        assert!(stderr.contains(version.as_str()), "{version}: {stderr}");
    }
    assert!(stderr.contains("run `consentry migrate`"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["migrations"], "current", "{body}");
    let output = served.finish().await;
    assert!(
        !output.contains("applied a database migration"),
        "serve migrated nothing itself: {output}"
    );
    config.remove_database();
}

#[tokio::test]
async fn a_schema_newer_than_this_consentry_stops_serve_migrate_and_the_commands() {
    // Arrange: a database a newer consentry migrated further.
    let emulator = spawn_emulator().await;
    let config = ServeConfig::new(free_port(), &emulator);
    let mut told_not_to_migrate = ServeConfig::new(free_port(), &emulator);
    told_not_to_migrate.database_url = config.database_url.clone();
    told_not_to_migrate
        .env
        .push(("CONSENTRY_MIGRATE".into(), "false".into()));
    assert!(migrate(&config.database_url).await.status.success());
    add_future_migration(&config.database_url).await;

    // Act
    let serve = finished(config.serve_command()).await;
    let serve_without_migrating = finished(told_not_to_migrate.serve_command()).await;
    let migrated = migrate(&config.database_url).await;
    let list = finished(consentry(
        &["operators", "list", "--database", &config.database_url],
        &[],
    ))
    .await;

    // Assert: the same words everywhere, exit 1, and the schema left as it was.
    for (what, output) in [
        ("serve", &serve),
        (
            "serve with CONSENTRY_MIGRATE=false",
            &serve_without_migrating,
        ),
        ("migrate", &migrated),
        ("operators list", &list),
    ] {
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains(&newer_message()), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
    let pool = sqlx::SqlitePool::connect(&config.database_url)
        .await
        .expect("open");
    let rows: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(rows as usize, migration_files().len() + 1);
    pool.close().await;
    config.remove_database();
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_named() {
    // Arrange
    let config = ServeConfig::new(free_port(), &spawn_emulator().await);
    assert!(migrate(&config.database_url).await.status.success());
    let (first, description) = migration_files().into_iter().next().expect("one");
    let pool = sqlx::SqlitePool::connect(&config.database_url)
        .await
        .expect("open");
    sqlx::query("update _sqlx_migrations set checksum = x'00' where version = $1")
        .bind(first.parse::<i64>().expect("a version"))
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;

    // Act
    let migrated = migrate(&config.database_url).await;
    let serve = finished(config.serve_command()).await;

    // Assert
    for output in [&migrated, &serve] {
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "migration {first} {description} in the database differs from this consentry's"
            )),
            "{stderr}"
        );
    }
    config.remove_database();
}

#[tokio::test]
async fn bad_database_settings_are_refused_naming_the_key_before_the_file_is_touched() {
    // Arrange
    let emulator = spawn_emulator().await;
    let cases = [
        ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "0"),
        ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "100000"),
        ("CONSENTRY_DATABASE_CONNECT_TIMEOUT", "0s"),
        ("CONSENTRY_DATABASE_BUSY_TIMEOUT", "2d"),
        ("CONSENTRY_MIGRATE", "sometimes"),
    ];

    for (key, value) in cases {
        let mut config = ServeConfig::new(free_port(), &emulator);
        config.env.push((key.into(), value.into()));

        // Act
        let serve = finished(config.serve_command()).await;
        let migrated = finished(consentry(
            &["migrate"],
            &[
                ("CONSENTRY_DATABASE_URL", config.database_url.as_str()),
                (key, value),
            ],
        ))
        .await;

        // Assert
        for output in [&serve, &migrated] {
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{key}={value}: {stderr}");
            assert!(
                stderr.contains(&format!("{key} is invalid")),
                "{key}={value}: {stderr}"
            );
        }
        let path = config.database_url.trim_start_matches("sqlite://");
        assert!(!std::path::Path::new(path).exists(), "{key}={value}");
    }
}

#[tokio::test]
async fn a_database_url_consentry_cannot_use_is_refused_without_its_password() {
    let unreachable = migrate("postgres://consentry:hunter2-secret@db.invalid/consentry").await;
    let foreign = migrate("mysql://consentry:hunter2-secret@localhost/consentry").await;

    for output in [&unreachable, &foreign] {
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    let unreachable = text(&unreachable.stderr);
    assert!(
        unreachable.contains("opening the database postgres://consentry:***@db.invalid/consentry"),
        "{unreachable}"
    );
    let foreign = text(&foreign.stderr);
    assert!(
        foreign.contains("is neither a SQLite URL") && foreign.contains("nor a PostgreSQL one"),
        "{foreign}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_migrating_one_fresh_file_at_once_each_apply_or_wait() {
    // Three rounds of four `consentry migrate` started together on a fresh file, as
    // replicas started together would each migrate at start.
    let files = migration_files();
    for round in 0..3 {
        let config = ServeConfig::new(free_port(), &spawn_emulator().await);

        let outputs =
            futures_util::future::join_all((0..4).map(|_| migrate(&config.database_url))).await;

        // Assert: every one ends well, and between them each migration was applied once.
        let mut applied: Vec<String> = Vec::new();
        for output in &outputs {
            assert!(
                output.status.success(),
                "round {round}: {}",
                text(&output.stderr)
            );
            applied.extend(
                text(&output.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("applied "))
                    .map(str::to_owned),
            );
        }
        applied.sort();
        let expected: Vec<String> = files.iter().map(|(v, d)| format!("{v} {d}")).collect();
        assert_eq!(
            applied, expected,
            "round {round}: each migration applied once"
        );
        config.remove_database();
    }
}

//! `consentry` subcommands. Each parses its flags (and `CONSENTRY_*` variables) into a
//! configuration, then hands over to its module; start-up problems end here as one clear
//! message and a non-zero exit, never a panic.

use std::io::BufRead;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::RawSettings;
use crate::demo::{Demo, DemoOptions};
use crate::domain::api_key::{ApiKeySecret, Scope, parse_key_name};
use crate::domain::password::{MIN_PASSWORD_CHARS, hash_password};
use crate::emulator::cli::EmulatorArgs;
use crate::store::{NewApiKey, Role, Store, TenantFilter, generate_password, valid_operator_name};
use crate::web::Application;

#[derive(Debug, Parser)]
#[command(
    name = "consentry",
    version,
    about = "Onboard Microsoft Entra ID tenants through admin consent, offline-first."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run consentry: configuration from CONSENTRY_* variables and an optional TOML file.
    Serve(ConfigArgs),
    /// Apply the database's pending migrations (CONSENTRY_DATABASE_URL, from the same
    /// variables and TOML file as `serve`), print them, and exit.
    Migrate(ConfigArgs),
    /// Run consentry and the emulator wired together, with an operator to sign in as.
    Demo(DemoArgs),
    /// Run the emulator of the Microsoft identity platform and Microsoft Graph.
    Emulator(EmulatorArgs),
    /// The tenants consentry knows.
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// People who sign in to the dashboard.
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Keys other systems use to call the API.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// The database itself.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Copy every table of a SQLite database into PostgreSQL (migrating it first), in
    /// batches, and compare the row counts; safe to run again.
    Copy {
        /// The SQLite database (sqlite://path/to/consentry.db), at this version's schema.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The PostgreSQL database (postgres://user:password@host:port/database).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Rows a statement.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=5000))]
        batch: u16,
    },
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// A TOML file with the configuration keys (variables override it).
    #[arg(long, env = "CONSENTRY_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Port of consentry.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Port of the emulator.
    #[arg(long, default_value_t = 8081)]
    emulator_port: u16,
    /// Port of the demo's webhook inbox.
    #[arg(long, default_value_t = 8082)]
    inbox_port: u16,
    /// The demo's database.
    #[arg(long, default_value = "sqlite://consentry-demo.db")]
    database: String,
}

#[derive(Debug, Args)]
struct DatabaseArg {
    /// Database URL.
    #[arg(long, env = "CONSENTRY_DATABASE_URL", default_value = crate::config::DEFAULT_DATABASE_URL)]
    database: String,
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// Check tenants now (token plus Graph probe), as the background checks do; needs the
    /// same configuration as `serve`.
    Verify {
        /// Every tenant.
        #[arg(long, conflicts_with = "tenant")]
        all: bool,
        /// One tenant id.
        #[arg(required_unless_present = "all")]
        tenant: Option<String>,
        /// A TOML file with the configuration keys (variables override it).
        #[arg(long, env = "CONSENTRY_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Print the tenants, newest consent first.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorsCommand {
    /// Create an operator, or set a new password for an existing one (which signs out
    /// their sessions). The password comes from CONSENTRY_OPERATOR_PASSWORD, else from the
    /// first line of standard input, unless --generate prints a new one.
    Add {
        /// Letters, digits and . _ @ -
        name: String,
        /// owner, operator or viewer. Default: owner for the first owner of the database,
        /// else operator; an existing operator keeps their role unless this is given.
        #[arg(long)]
        role: Option<String>,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Print the operators: name, role, enabled or disabled, created.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Stop an operator from signing in and end their sessions (never the last owner).
    Disable {
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Let a disabled operator sign in again.
    Enable {
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Remove an operator and their sessions (never the last owner).
    Remove {
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Set a new password for an operator and end their sessions. The password comes from
    /// CONSENTRY_OPERATOR_PASSWORD, else standard input, unless --generate prints one.
    Reset {
        name: String,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

#[derive(Debug, Args)]
struct PasswordArg {
    /// Generate the password and print it once, instead of reading one.
    #[arg(long)]
    generate: bool,
}

#[derive(Debug, Subcommand)]
enum ApiKeysCommand {
    /// Create a key and print it once (only its hash is kept).
    Create {
        /// What the key is for, e.g. the service that holds it.
        name: String,
        /// What the key may do (repeatable): tenants:read, tokens:issue, webhooks:manage.
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Print the keys (never the keys themselves: their first characters), newest first.
    List {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        /// The key's id (from `api-keys list`).
        id: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// Parses the command line, runs the subcommand, and turns failure into exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    // One TLS crypto provider for the whole process (ring: no C toolchain needed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = RawSettings::gather(args.config.as_deref())?.parse()?;
            let listener = TcpListener::bind(settings.listen)
                .with_context(|| format!("binding CONSENTRY_LISTEN {}", settings.listen))?;
            let public_url = settings.public_url.clone();
            let app = Application::build(settings, listener).await?;
            tracing::info!(%public_url, port = app.port(), "consentry is serving");
            app.run_until_stopped().await?;
            Ok(())
        }
        Command::Migrate(args) => migrate(args.config.as_deref()).await,
        Command::Db(DbCommand::Copy { from, to, batch }) => db_copy(&from, &to, batch).await,
        Command::Demo(args) => {
            let demo = Demo::start(DemoOptions {
                port: args.port,
                emulator_port: args.emulator_port,
                inbox_port: args.inbox_port,
                database: args.database,
            })
            .await?;
            println!("{}", demo.banner());
            demo.run_until_stopped().await
        }
        Command::Emulator(args) => crate::emulator::cli::run(args).await,
        Command::Tenants(TenantsCommand::List { json, db }) => {
            list_tenants(&db.database, json).await
        }
        Command::Tenants(TenantsCommand::Verify {
            all,
            tenant,
            config,
        }) => {
            let settings = RawSettings::gather(config.as_deref())?.parse()?;
            verify_tenants(settings, if all { None } else { tenant }).await
        }
        Command::Operators(OperatorsCommand::Add {
            name,
            role,
            password,
            db,
        }) => add_operator(&db.database, &name, role.as_deref(), password.generate).await,
        Command::Operators(OperatorsCommand::List { json, db }) => {
            list_operators(&db.database, json).await
        }
        Command::Operators(OperatorsCommand::Disable { name, db }) => {
            let store = Store::connect(&db.database).await?;
            let done = store
                .disable_operator(&name, time::OffsetDateTime::now_utc())
                .await;
            store.close().await;
            done?;
            println!("disabled operator {name} and ended their sessions");
            Ok(())
        }
        Command::Operators(OperatorsCommand::Enable { name, db }) => {
            let store = Store::connect(&db.database).await?;
            let done = store
                .enable_operator(&name, time::OffsetDateTime::now_utc())
                .await;
            store.close().await;
            done?;
            println!("enabled operator {name}");
            Ok(())
        }
        Command::Operators(OperatorsCommand::Remove { name, db }) => {
            let store = Store::connect(&db.database).await?;
            let done = store.remove_operator(&name).await;
            store.close().await;
            done?;
            println!("removed operator {name}");
            Ok(())
        }
        Command::Operators(OperatorsCommand::Reset { name, password, db }) => {
            reset_operator(&db.database, &name, password.generate).await
        }
        Command::ApiKeys(ApiKeysCommand::Create { name, scopes, db }) => {
            create_api_key(&db.database, &name, &scopes).await
        }
        Command::ApiKeys(ApiKeysCommand::List { json, db }) => {
            list_api_keys(&db.database, json).await
        }
        Command::ApiKeys(ApiKeysCommand::Revoke { id, db }) => {
            revoke_api_key(&db.database, &id).await
        }
    }
}

/// Applies the pending migrations and says which, or that there were none.
async fn migrate(config: Option<&std::path::Path>) -> anyhow::Result<()> {
    let database = RawSettings::gather(config)?.database()?;
    let store = Store::open(&database.url, &database.options).await?;
    let applied = store.migrate().await;
    store.close().await;
    let applied = applied?;
    let latest = crate::store::latest_migration(store.dialect())
        .map_or_else(|| "none".to_owned(), |m| m.to_string());
    if applied.is_empty() {
        println!("nothing to apply: the database's schema is current (latest migration {latest})");
        return Ok(());
    }
    for migration in &applied {
        println!("applied {migration}");
    }
    println!("the database's schema is current (latest migration {latest})");
    Ok(())
}

/// A progress bar per table on stderr (drawn only on a terminal).
struct CopyBars {
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl crate::store::CopyProgress for CopyBars {
    fn table(&self, table: &str, rows: u64) {
        let bar = indicatif::ProgressBar::new(rows).with_message(table.to_owned());
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:24} [{bar:40}] {human_pos}/{human_len} rows ({per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn copied(&self, rows: u64) {
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.inc(rows);
        }
    }

    fn table_done(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish();
        }
    }
}

async fn db_copy(from: &str, to: &str, batch: u16) -> anyhow::Result<()> {
    let bars = CopyBars {
        bar: std::sync::Mutex::new(None),
    };
    let report = crate::store::copy_sqlite_to_postgres(from, to, usize::from(batch), &bars).await?;
    println!(
        "{:<24} {:>12} {:>12} {:>12}",
        "table", "source rows", "target rows", "copied now"
    );
    for t in &report {
        println!(
            "{:<24} {:>12} {:>12} {:>12}{}",
            t.table,
            t.source_rows,
            t.target_rows,
            t.copied,
            if t.matches() { "" } else { "  differs" }
        );
    }
    let differing: Vec<&str> = report
        .iter()
        .filter(|t| !t.matches())
        .map(|t| t.table)
        .collect();
    if !differing.is_empty() {
        anyhow::bail!(
            "the row counts differ for {}: rows deleted from the source since an earlier copy stay in the target, or something writes to either database meanwhile",
            differing.join(", ")
        );
    }
    println!(
        "copied: every table's rows counted on both sides match ({} tables)",
        report.len()
    );
    Ok(())
}

async fn create_api_key(database: &str, name: &str, scopes: &[String]) -> anyhow::Result<()> {
    let name = parse_key_name(name).context("API key names are 1 to 100 characters")?;
    let scopes = scopes
        .iter()
        .map(|raw| {
            Scope::parse(raw).with_context(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("there is no scope '{raw}' (known: {})", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<Scope>>>()?;
    let key = ApiKeySecret::generate();
    let store = Store::connect(database).await?;
    let id = store
        .create_api_key(
            &NewApiKey {
                name: &name,
                prefix: &key.shown_prefix(),
                key_hash: &key.hash(),
                scopes: &scopes,
            },
            time::OffsetDateTime::now_utc(),
        )
        .await?;
    store.close().await;
    eprintln!(
        "created API key {id} ({name}: {}); it is shown only now, copy it:",
        Scope::join(&scopes)
    );
    println!("{}", key.expose());
    Ok(())
}

async fn list_api_keys(database: &str, json: bool) -> anyhow::Result<()> {
    let store = Store::connect(database).await?;
    let keys = store.list_api_keys().await?;
    store.close().await;
    if json {
        let rows: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id,
                    "name": k.name,
                    "prefix": k.prefix,
                    "scopes": k.scopes().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "created_at": k.created_at,
                    "last_used_at": k.last_used_at,
                    "revoked_at": k.revoked_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if keys.is_empty() {
        println!("no API keys yet");
    } else {
        println!(
            "{:<36}  {:<20}  {:<17}  {:<24}  {:<24}  scopes",
            "id", "name", "key", "created at", "last used"
        );
        for k in &keys {
            let used = match (&k.revoked_at, &k.last_used_at) {
                (Some(at), _) => format!("revoked {}", at.get(..16).unwrap_or(at)),
                (None, Some(at)) => at.clone(),
                (None, None) => "never".to_owned(),
            };
            println!(
                "{:<36}  {:<20}  {:<17}  {:<24}  {:<24}  {}",
                k.id,
                k.name.chars().take(20).collect::<String>(),
                k.prefix,
                k.created_at,
                used,
                k.scopes
            );
        }
    }
    Ok(())
}

async fn revoke_api_key(database: &str, id: &str) -> anyhow::Result<()> {
    let store = Store::connect(database).await?;
    let revoked = store
        .revoke_api_key(id, time::OffsetDateTime::now_utc())
        .await?;
    store.close().await;
    if !revoked {
        bail!("no API key {id} that is not already revoked (see `consentry api-keys list`)");
    }
    println!("revoked API key {id}");
    Ok(())
}

async fn list_tenants(database: &str, json: bool) -> anyhow::Result<()> {
    let store = Store::connect(database).await?;
    let tenants = store
        .list_tenants(&TenantFilter {
            limit: i64::MAX,
            ..TenantFilter::default()
        })
        .await?;
    if json {
        let rows: Vec<serde_json::Value> = tenants
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "status": t.status,
                    "display_name": t.display_name,
                    "consented_at": t.consented_at,
                    "verified_at": t.verified_at,
                    "granted_roles": t.granted_roles(),
                    "verified_domains": t.verified_domains(),
                    "last_error_code": t.last_error_code,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if tenants.is_empty() {
        println!("no tenants yet");
    } else {
        println!(
            "{:<36}  {:<19}  {:<24}  {:<24}  granted roles",
            "tenant id", "status", "organisation", "consented at"
        );
        for t in &tenants {
            println!(
                "{:<36}  {:<19}  {:<24}  {:<24}  {}",
                t.id,
                t.status,
                t.name().unwrap_or("-").chars().take(24).collect::<String>(),
                t.consented_at,
                t.granted_roles().join(",")
            );
        }
    }
    store.close().await;
    Ok(())
}

async fn verify_tenants(
    settings: crate::config::Settings,
    only: Option<String>,
) -> anyhow::Result<()> {
    use std::collections::BTreeMap;
    use std::io::{IsTerminal, Write};

    use futures_util::StreamExt;

    let store = Store::connect(&settings.database_url).await?;
    let tenants = match only {
        Some(raw) => {
            let id = crate::domain::TenantId::parse(&raw)
                .with_context(|| format!("'{raw}' is not a tenant id (a GUID)"))?;
            vec![store.tenant(id).await?.with_context(|| {
                format!(
                    "no tenant {id} in {}",
                    crate::store::redacted_url(&settings.database_url)
                )
            })?]
        }
        None => {
            store
                .list_tenants(&TenantFilter {
                    limit: i64::MAX,
                    ..TenantFilter::default()
                })
                .await?
        }
    };
    let verifier = crate::web::verifier_for(&settings, store.clone())?;
    let total = tenants.len();
    let tty = std::io::stderr().is_terminal();
    let mut done = 0usize;
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut stream = futures_util::stream::iter(tenants)
        .map(|t| {
            let verifier = &verifier;
            async move { verifier.verify(&t).await }
        })
        .buffer_unordered(settings.verify_concurrency);
    while let Some(result) = stream.next().await {
        done += 1;
        *by_status.entry(result?.as_str().to_owned()).or_default() += 1;
        let summary: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let line = format!(
            "[{}{}] {done}/{total}  {}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            summary.join("  ")
        );
        // A redrawn line on a terminal; in logs, a line per tenth.
        if tty {
            eprint!("\r{line}");
        } else if total < 10 || done.is_multiple_of((total / 10).max(1)) || done == total {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
    }
    if tty {
        eprintln!();
    }
    for (status, n) in &by_status {
        println!("{status}: {n}");
    }
    store.close().await;
    Ok(())
}

/// The password of an operator being added or reset: generated and printed once, or read
/// from CONSENTRY_OPERATOR_PASSWORD, else the first line of standard input.
fn operator_password(name: &str, generate: bool) -> anyhow::Result<String> {
    if generate {
        return Ok(generate_password());
    }
    let password = match std::env::var("CONSENTRY_OPERATOR_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!("password for {name} (one line on standard input):");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        bail!("the password must be at least {MIN_PASSWORD_CHARS} characters");
    }
    Ok(password)
}

fn show_generated(name: &str, password: &str, generate: bool) {
    if generate {
        eprintln!("the password of {name}; it is shown only now, copy it:");
        println!("{password}");
    }
}

async fn add_operator(
    database: &str,
    name: &str,
    role: Option<&str>,
    generate: bool,
) -> anyhow::Result<()> {
    if !valid_operator_name(name) {
        bail!("operator names are 1 to 100 letters, digits and . _ @ -");
    }
    let role = role
        .map(|raw| {
            Role::parse(raw)
                .with_context(|| format!("there is no role '{raw}' (owner, operator, viewer)"))
        })
        .transpose()?;
    let password = operator_password(name, generate)?;
    let hash = hash_password(&password)?;
    let now = time::OffsetDateTime::now_utc();
    let store = Store::connect(database).await?;
    let outcome = async {
        if store.operator_by_name(name).await?.is_some() {
            store.reset_operator_password(name, &hash, now).await?;
            if let Some(role) = role {
                store.set_operator_role(name, role, now).await?;
            }
            return anyhow::Ok(format!(
                "updated the password of operator {name} and signed out their sessions"
            ));
        }
        let role = match role {
            Some(role) => role,
            // The first operator must be able to manage the others.
            None if !store.has_owner().await? => Role::Owner,
            None => Role::Operator,
        };
        store.add_operator(name, &hash, role, now).await?;
        anyhow::Ok(format!("created operator {name} ({})", role.as_str()))
    }
    .await;
    store.close().await;
    let said = outcome?;
    // With --generate, standard output holds the password alone (for a pipe).
    if generate {
        eprintln!("{said}");
    } else {
        println!("{said}");
    }
    show_generated(name, &password, generate);
    Ok(())
}

async fn reset_operator(database: &str, name: &str, generate: bool) -> anyhow::Result<()> {
    let password = operator_password(name, generate)?;
    let hash = hash_password(&password)?;
    let store = Store::connect(database).await?;
    let done = store
        .reset_operator_password(name, &hash, time::OffsetDateTime::now_utc())
        .await;
    store.close().await;
    done?;
    show_generated(name, &password, generate);
    eprintln!("set a new password for {name} and ended their sessions");
    Ok(())
}

async fn list_operators(database: &str, json: bool) -> anyhow::Result<()> {
    let store = Store::connect(database).await?;
    let operators = store.list_operators().await?;
    store.close().await;
    if json {
        let rows: Vec<serde_json::Value> = operators
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name,
                    "role": o.role,
                    "disabled_at": o.disabled_at,
                    "created_at": o.created_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if operators.is_empty() {
        println!("no operators yet");
    } else {
        println!("{:<30}  {:<8}  {:<34}  created at", "name", "role", "state");
        for o in &operators {
            let state = match &o.disabled_at {
                Some(at) => format!("disabled {at}"),
                None => "enabled".to_owned(),
            };
            println!(
                "{:<30}  {:<8}  {:<34}  {}",
                o.name, o.role, state, o.created_at
            );
        }
    }
    Ok(())
}

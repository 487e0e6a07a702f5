//! The flags of `consentry-emulator` (and of `consentry emulator`, which flattens the same
//! struct): what a person starting the emulator by hand can set.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser};
use uuid::Uuid;

use crate::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS, Emulator, EmulatorConfig,
};

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, env = "CONSENTRY_EMULATOR_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "CONSENTRY_EMULATOR_PORT", default_value_t = 8081)]
    port: u16,
    /// Client id (application id) of the registered app.
    #[arg(long, env = "CONSENTRY_EMULATOR_CLIENT_ID", default_value_t = DEFAULT_CLIENT_ID)]
    client_id: Uuid,
    /// Client secret of the registered app (prefer the variable: flags show in `ps`).
    #[arg(long, env = "CONSENTRY_EMULATOR_CLIENT_SECRET", default_value = DEFAULT_CLIENT_SECRET, hide_default_value = true, hide_env_values = true)]
    client_secret: String,
    /// A redirect URI registered on the app (repeatable) [default: /consent/callback, /signup/signed-in and /admin/signed-in on http://localhost:8080 and http://127.0.0.1:8080].
    #[arg(long = "redirect-uri", value_name = "URI")]
    redirect_uris: Vec<String>,
    /// An application permission the app requests (repeatable or comma-separated).
    #[arg(long = "permission", value_name = "NAME", value_delimiter = ',', default_values_t = ["User.Read.All".to_owned(), "Organization.Read.All".to_owned()])]
    permissions: Vec<String>,
    /// Display name of the app on the consent page.
    #[arg(long, default_value = "consentry")]
    app_name: String,
    /// Serve HTTPS with a certificate signed by a CA made at start (MSAL needs https).
    #[arg(long)]
    https: bool,
    /// Where --https writes ca.pem [default: a new directory under the system temp dir].
    #[arg(long, value_name = "DIR", requires = "https")]
    tls_dir: Option<PathBuf>,
    /// Lifetime of access tokens in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime: u32,
    /// Start without the seeded organisations.
    #[arg(long)]
    no_seed: bool,
    /// Generate this many extra tenants at start.
    #[arg(long, default_value_t = 0)]
    generate_tenants: u32,
    /// Users in each generated tenant.
    #[arg(long, default_value_t = 5)]
    users: u32,
    /// Worker threads [default: one per core].
    #[arg(long)]
    workers: Option<usize>,
    /// A PEM certificate registered on the app, whose key may sign client assertions
    /// (repeatable).
    #[arg(long = "certificate", value_name = "FILE")]
    certificates: Vec<PathBuf>,
    /// A TOML or JSON file declaring the apps, tenants, consents and sign-in users to start
    /// with (and to go back to on POST /_emulator/reset), instead of the app flags and the
    /// seeded tenants.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["client_id", "client_secret", "redirect_uris", "permissions", "app_name", "certificates", "no_seed"])]
    fixture: Option<PathBuf>,
}

impl EmulatorArgs {
    pub fn into_config(self) -> EmulatorConfig {
        let redirect_uris = if self.redirect_uris.is_empty() {
            DEFAULT_REDIRECT_URIS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        } else {
            self.redirect_uris
        };
        EmulatorConfig {
            host: self.host,
            port: self.port,
            client_id: self.client_id,
            client_secret: self.client_secret,
            app_name: self.app_name,
            redirect_uris,
            permissions: self.permissions,
            https: self.https,
            tls_dir: self.tls_dir,
            token_lifetime_secs: self.token_lifetime,
            seed: !self.no_seed,
            generate_tenants: self.generate_tenants,
            users_per_generated_tenant: self.users,
            workers: self.workers,
            certificates: self.certificates,
            fixture: self.fixture,
        }
    }
}

/// Starts the emulator with `args`, prints its banner (URLs, the app registration, the
/// tenants) and serves until stopped. Call inside a tokio runtime.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let emulator = Emulator::build(args.into_config())?;
    println!("{}", emulator.banner());
    emulator.run_until_stopped().await?;
    Ok(())
}

#[derive(Debug, Parser)]
#[command(
    name = "consentry-emulator",
    version,
    about = "An offline emulator of the Microsoft identity platform (admin consent, tokens, discovery, keys) and of Microsoft Graph."
)]
struct Cli {
    #[command(flatten)]
    emulator: EmulatorArgs,
}

/// `consentry-emulator`: parses the command line, serves, and turns failure into exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs to stderr, filtered by RUST_LOG (default `info`): stdout is for the banner.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
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
    match runtime.block_on(run(cli.emulator)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

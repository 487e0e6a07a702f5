//! `consentry` subcommands. Each parses its flags (and `CONSENTRY_*` variables) into a
//! configuration, then hands over to its module; start-up problems end here as one clear
//! message and a non-zero exit, never a panic.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS, Emulator, EmulatorConfig,
};

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
    /// Run the admin-consent flow end to end against the emulator, then keep it running.
    Demo(DemoArgs),
    /// Run the emulator of the Microsoft identity platform and Microsoft Graph.
    Emulator(EmulatorArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Port of the emulator.
    #[arg(long, default_value_t = 8081)]
    emulator_port: u16,
}

#[derive(Debug, Args)]
struct EmulatorArgs {
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
    /// A redirect URI registered on the app (repeatable) [default: http://localhost:8080/consent/callback and http://127.0.0.1:8080/consent/callback].
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
}

impl EmulatorArgs {
    fn into_config(self) -> EmulatorConfig {
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
        }
    }
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
        Command::Demo(args) => {
            crate::demo::run(crate::demo::DemoOptions {
                emulator_port: args.emulator_port,
            })
            .await
        }
        Command::Emulator(args) => {
            let emulator = Emulator::build(args.into_config())?;
            println!("{}", emulator.banner());
            emulator.run_until_stopped().await?;
            Ok(())
        }
    }
}

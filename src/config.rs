//! consentry's configuration: an optional TOML file, then `CONSENTRY_*` environment
//! variables on top. Every key is parsed once here ("parse, don't validate"); a missing or
//! invalid one stops start-up with a message naming it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::entra::{CertificateCredential, Credential};
use crate::store::DatabaseOptions;
use url::Url;
use uuid::Uuid;

/// Which token endpoint to use (ENTRA.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// `/{tenant}/oauth2/v2.0/token` with `scope`.
    V2,
    /// `/{tenant}/oauth2/token` with `resource` (legacy; numbers come back as strings).
    V1,
}

/// Whether "Connect your organisation" signs the person in with Microsoft first
/// (`CONSENTRY_SIGNUP_SIGN_IN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupSignIn {
    /// Admin consent alone: the callback's tenant and the sign-up's fields are claims.
    Off,
    /// Both ways are offered; the page says what signing in adds.
    Optional,
    /// Every sign-up signs in first; the unauthenticated way is refused.
    Required,
}

impl SignupSignIn {
    fn parse(raw: &str) -> Option<SignupSignIn> {
        match raw.to_ascii_lowercase().as_str() {
            "off" => Some(SignupSignIn::Off),
            "optional" => Some(SignupSignIn::Optional),
            "required" => Some(SignupSignIn::Required),
            _ => None,
        }
    }
}

/// Which Microsoft cloud (ENTRA.md "Hosts"): its authority host, its Graph host, and the
/// Graph resource tokens are asked for. A token for one cloud's Graph is not accepted by
/// another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Microsoft's global cloud.
    Public,
    /// US Government L4 (GCC High).
    UsGov,
    /// US Government L5 (DoD).
    UsGovDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    fn parse(raw: &str) -> Option<Cloud> {
        match raw.to_ascii_lowercase().as_str() {
            "public" => Some(Cloud::Public),
            "usgov" => Some(Cloud::UsGov),
            "usgov-dod" => Some(Cloud::UsGovDod),
            "china" => Some(Cloud::China),
            _ => None,
        }
    }

    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::UsGov | Cloud::UsGovDod => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }

    /// Graph's host, which is also the resource its tokens are for.
    pub fn graph_resource(self) -> &'static str {
        match self {
            Cloud::Public => "https://graph.microsoft.com",
            Cloud::UsGov => "https://graph.microsoft.us",
            Cloud::UsGovDod => "https://dod-graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }
}

/// Key material for HMACs of cookies' values: at least 32 bytes.
pub struct SessionKey(SecretBox<Vec<u8>>);

impl SessionKey {
    pub fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// A fresh random key (for the demo).
    pub fn generate() -> SessionKey {
        let mut key = vec![0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key);
        SessionKey(SecretBox::new(Box::new(key)))
    }

    fn parse(raw: &str) -> Result<SessionKey, &'static str> {
        let raw = raw.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
            .map_err(|_| "must be base64 (e.g. the output of `openssl rand -base64 32`)")?;
        if bytes.len() < 32 {
            return Err("must decode to at least 32 bytes");
        }
        Ok(SessionKey(SecretBox::new(Box::new(bytes))))
    }
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

/// Everything `consentry serve` needs.
#[derive(Debug)]
pub struct Settings {
    pub client_id: Uuid,
    /// How consentry proves it is the app: a secret, a certificate or a federated assertion.
    pub credential: Arc<Credential>,
    /// The Microsoft cloud: the default hosts, and always the Graph resource tokens are
    /// asked for (even when the hosts are overridden, e.g. by the emulator).
    pub cloud: Cloud,
    /// `https://login.microsoftonline.com` (the cloud's), or the emulator.
    pub authority_host: Url,
    /// `https://graph.microsoft.com` (the cloud's), or the emulator.
    pub graph_host: Url,
    /// Where browsers reach consentry; the redirect URI is `{public_url}/consent/callback`.
    pub public_url: Url,
    pub database_url: String,
    /// The pool's size and waits (`CONSENTRY_DATABASE_*`).
    pub database: DatabaseOptions,
    /// Whether `serve` applies pending migrations at start (`CONSENTRY_MIGRATE`), or
    /// refuses to start until `consentry migrate` has.
    pub migrate: bool,
    pub listen: SocketAddr,
    /// How long a sign-up's `state` stays usable.
    pub state_lifetime: Duration,
    pub token_version: TokenVersion,
    /// Application permissions a tenant must have granted to count as `active`.
    pub required_permissions: Vec<String>,
    pub session_key: SessionKey,
    /// How long after a callback a missing consent is blamed on propagation (retried)
    /// before the tenant is marked `failed`.
    pub verify_deadline: Duration,
    /// Extra CA certificates (PEM) to trust for Microsoft's hosts besides the system's.
    pub ca_file: Option<PathBuf>,
    /// How often every tenant is re-checked (token plus Graph probe), jittered ±10%.
    pub verify_interval: Duration,
    /// Checks running at once.
    pub verify_concurrency: usize,
    /// How long a claimed check keeps other instances off its tenant; a check whose
    /// instance died is taken over after this (`CONSENTRY_VERIFY_LEASE`).
    pub verify_lease: Duration,
    /// Lets webhook endpoints be loopback, private or link-local addresses
    /// (`CONSENTRY_WEBHOOK_ALLOW_PRIVATE=true`): for the demo and tests, never for
    /// production, where it would let anyone who may add an endpoint probe the internal
    /// network.
    pub webhook_allow_private: bool,
    /// The waits between delivery attempts (`CONSENTRY_WEBHOOK_RETRY_SCHEDULE`).
    pub webhook_retry_schedule: crate::webhooks::RetrySchedule,
    /// How long one delivery attempt may take (`CONSENTRY_WEBHOOK_TIMEOUT`).
    pub webhook_timeout: Duration,
    /// The bearer token `GET /metrics` on the main port asks for
    /// (`CONSENTRY_METRICS_TOKEN`); without it that route is 404.
    pub metrics_token: Option<SecretString>,
    /// A separate address serving `GET /metrics` without a token
    /// (`CONSENTRY_METRICS_LISTEN`), to keep on a private network.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether sign-ups sign in with Microsoft first (`CONSENTRY_SIGNUP_SIGN_IN`).
    pub signup_sign_in: SignupSignIn,
    /// How operators sign in to `/admin`.
    pub operator_sign_in: OperatorSignIn,
}

/// How operators sign in: with a password, with Microsoft through our own tenant, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSignIn {
    /// Our own Entra tenant (`CONSENTRY_OPERATOR_TENANT`): its users may sign in with
    /// Microsoft. None: no "Sign in with Microsoft" on `/admin/login`.
    pub tenant: Option<crate::domain::TenantId>,
    /// An app role a user must hold, from the ID token's `roles`
    /// (`CONSENTRY_OPERATOR_ROLE`).
    pub role: Option<String>,
    /// Whether operators may sign in with a password (`CONSENTRY_OPERATOR_PASSWORDS`).
    pub passwords: bool,
}

/// Why the configuration cannot be used; always names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{key} is invalid: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("cannot read the configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// The keys, as `(file key, environment variable)`.
pub const KEYS: &[(&str, &str)] = &[
    ("client_id", "CONSENTRY_CLIENT_ID"),
    ("client_secret", "CONSENTRY_CLIENT_SECRET"),
    ("client_secret_file", "CONSENTRY_CLIENT_SECRET_FILE"),
    ("client_certificate", "CONSENTRY_CLIENT_CERTIFICATE"),
    ("client_certificate_key", "CONSENTRY_CLIENT_CERTIFICATE_KEY"),
    ("client_assertion_file", "CONSENTRY_CLIENT_ASSERTION_FILE"),
    ("cloud", "CONSENTRY_CLOUD"),
    ("authority_host", "CONSENTRY_AUTHORITY_HOST"),
    ("graph_host", "CONSENTRY_GRAPH_HOST"),
    ("public_url", "CONSENTRY_PUBLIC_URL"),
    ("database_url", "CONSENTRY_DATABASE_URL"),
    (
        "database_max_connections",
        "CONSENTRY_DATABASE_MAX_CONNECTIONS",
    ),
    (
        "database_connect_timeout",
        "CONSENTRY_DATABASE_CONNECT_TIMEOUT",
    ),
    ("database_busy_timeout", "CONSENTRY_DATABASE_BUSY_TIMEOUT"),
    (
        "database_statement_timeout",
        "CONSENTRY_DATABASE_STATEMENT_TIMEOUT",
    ),
    ("migrate", "CONSENTRY_MIGRATE"),
    ("listen", "CONSENTRY_LISTEN"),
    ("state_lifetime", "CONSENTRY_STATE_LIFETIME"),
    ("token_version", "CONSENTRY_TOKEN_VERSION"),
    ("required_permissions", "CONSENTRY_REQUIRED_PERMISSIONS"),
    ("session_key", "CONSENTRY_SESSION_KEY"),
    ("verify_deadline", "CONSENTRY_VERIFY_DEADLINE"),
    ("verify_interval", "CONSENTRY_VERIFY_INTERVAL"),
    ("ca_file", "CONSENTRY_CA_FILE"),
    ("verify_concurrency", "CONSENTRY_VERIFY_CONCURRENCY"),
    ("verify_lease", "CONSENTRY_VERIFY_LEASE"),
    ("webhook_allow_private", "CONSENTRY_WEBHOOK_ALLOW_PRIVATE"),
    ("webhook_retry_schedule", "CONSENTRY_WEBHOOK_RETRY_SCHEDULE"),
    ("webhook_timeout", "CONSENTRY_WEBHOOK_TIMEOUT"),
    ("metrics_token", "CONSENTRY_METRICS_TOKEN"),
    ("metrics_listen", "CONSENTRY_METRICS_LISTEN"),
    ("signup_sign_in", "CONSENTRY_SIGNUP_SIGN_IN"),
    ("operator_tenant", "CONSENTRY_OPERATOR_TENANT"),
    ("operator_role", "CONSENTRY_OPERATOR_ROLE"),
    ("operator_passwords", "CONSENTRY_OPERATOR_PASSWORDS"),
];

/// The environment variable naming the optional TOML file.
pub const CONFIG_FILE_VAR: &str = "CONSENTRY_CONFIG";

pub const DEFAULT_DATABASE_URL: &str = "sqlite://consentry.db";

/// The database keys alone: all `consentry migrate` needs, parsed the same way as for
/// `serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    pub url: String,
    pub options: DatabaseOptions,
    /// `CONSENTRY_MIGRATE`.
    pub migrate: bool,
}

/// Raw values by environment-variable name, before parsing.
#[derive(Debug, Default, Clone)]
pub struct RawSettings(HashMap<&'static str, String>);

impl RawSettings {
    /// The file (when given), then the process environment on top.
    pub fn gather(file: Option<&Path>) -> Result<RawSettings, ConfigError> {
        let mut raw = RawSettings::default();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from));
        if let Some(path) = file {
            raw.merge_toml(&path)?;
        }
        for (_, var) in KEYS {
            if let Ok(value) = std::env::var(var) {
                raw.0.insert(var, value);
            }
        }
        Ok(raw)
    }

    fn merge_toml(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_error = |reason: String| ConfigError::File {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.message().to_owned()))?;
        for (key, value) in table {
            let var = KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .ok_or_else(|| file_error(format!("unknown key '{key}'")))?;
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| file_error(format!("'{key}' must list strings")))
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(file_error(format!("'{key}' must be a string"))),
            };
            self.0.insert(var, value);
        }
        Ok(())
    }

    pub fn set(&mut self, var: &'static str, value: impl Into<String>) {
        self.0.insert(var, value.into());
    }

    fn get(&self, var: &'static str) -> Option<&str> {
        self.0
            .get(var)
            .map(String::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    pub fn parse(&self) -> Result<Settings, ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        let client_id = self
            .get("CONSENTRY_CLIENT_ID")
            .ok_or(ConfigError::Missing("CONSENTRY_CLIENT_ID"))?;
        let client_id = Uuid::try_parse(client_id).map_err(|_| {
            invalid(
                "CONSENTRY_CLIENT_ID",
                "must be the application (client) id, a GUID",
            )
        })?;

        let credential = Arc::new(self.credential()?);

        let host = |var: &'static str, default: &str| -> Result<Url, ConfigError> {
            let raw = self.get(var).unwrap_or(default);
            let url = Url::parse(raw).map_err(|_| invalid(var, "must be an absolute URL"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(invalid(var, "must be an http(s) URL with a host"));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(var, "must not have a query or fragment"));
            }
            Ok(url)
        };
        let cloud = match self.get("CONSENTRY_CLOUD") {
            None => Cloud::Public,
            Some(raw) => Cloud::parse(raw).ok_or_else(|| {
                invalid(
                    "CONSENTRY_CLOUD",
                    "must be public, usgov, usgov-dod or china",
                )
            })?,
        };
        let authority_host = host("CONSENTRY_AUTHORITY_HOST", cloud.authority_host())?;
        let graph_host = host("CONSENTRY_GRAPH_HOST", cloud.graph_resource())?;
        let public_url = host("CONSENTRY_PUBLIC_URL", "http://localhost:8080")?;

        let listen = self.get("CONSENTRY_LISTEN").unwrap_or("127.0.0.1:8080");
        let listen = listen.parse().map_err(|_| {
            invalid(
                "CONSENTRY_LISTEN",
                "must be an address and port, e.g. 127.0.0.1:8080",
            )
        })?;

        let state_lifetime = match self.get("CONSENTRY_STATE_LIFETIME") {
            Some(raw) => parse_duration(raw).map_err(|r| invalid("CONSENTRY_STATE_LIFETIME", r))?,
            None => Duration::from_secs(600),
        };
        if !(Duration::from_secs(30)..=Duration::from_secs(3600)).contains(&state_lifetime) {
            return Err(invalid(
                "CONSENTRY_STATE_LIFETIME",
                "must be between 30s and 1h",
            ));
        }

        let token_version = match self
            .get("CONSENTRY_TOKEN_VERSION")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("v2") | Some("2") => TokenVersion::V2,
            Some("v1") | Some("1") => TokenVersion::V1,
            Some(_) => return Err(invalid("CONSENTRY_TOKEN_VERSION", "must be v2 or v1")),
        };

        let required_permissions: Vec<String> = self
            .get("CONSENTRY_REQUIRED_PERMISSIONS")
            .unwrap_or("User.Read.All,Organization.Read.All")
            .split([',', ' '])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = required_permissions.iter().find(|p| !is_permission_name(p)) {
            return Err(invalid(
                "CONSENTRY_REQUIRED_PERMISSIONS",
                &format!("'{bad}' is not a permission name like User.Read.All"),
            ));
        }

        let session_key = self
            .get("CONSENTRY_SESSION_KEY")
            .ok_or(ConfigError::Missing("CONSENTRY_SESSION_KEY"))?;
        let session_key =
            SessionKey::parse(session_key).map_err(|r| invalid("CONSENTRY_SESSION_KEY", r))?;

        let verify_deadline = match self.get("CONSENTRY_VERIFY_DEADLINE") {
            Some(raw) => {
                parse_duration(raw).map_err(|r| invalid("CONSENTRY_VERIFY_DEADLINE", r))?
            }
            None => Duration::from_secs(600),
        };
        if verify_deadline.is_zero() || verify_deadline > Duration::from_secs(86_400) {
            return Err(invalid(
                "CONSENTRY_VERIFY_DEADLINE",
                "must be between 1s and 1d",
            ));
        }

        let verify_interval = match self.get("CONSENTRY_VERIFY_INTERVAL") {
            Some(raw) => {
                parse_duration(raw).map_err(|r| invalid("CONSENTRY_VERIFY_INTERVAL", r))?
            }
            None => Duration::from_secs(6 * 3600),
        };
        if verify_interval < Duration::from_secs(1)
            || verify_interval > Duration::from_secs(7 * 86_400)
        {
            return Err(invalid(
                "CONSENTRY_VERIFY_INTERVAL",
                "must be between 1s and 7d",
            ));
        }
        let verify_concurrency = match self.get("CONSENTRY_VERIFY_CONCURRENCY") {
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1024).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "CONSENTRY_VERIFY_CONCURRENCY",
                        "must be a number from 1 to 1024",
                    )
                })?,
            None => 16,
        };
        // A check is a token request and one or two Graph requests, each with a 10 s
        // timeout and one retry: under a minute. The lease must outlast it (a check taken
        // over while it runs costs a second check; the revision still lets one outcome be
        // saved), so at least 10 s; at most an hour of delay for a dead instance's tenants.
        let verify_lease = match self.get("CONSENTRY_VERIFY_LEASE") {
            Some(raw) => parse_duration(raw).map_err(|r| invalid("CONSENTRY_VERIFY_LEASE", r))?,
            None => crate::verification::DEFAULT_CHECK_LEASE,
        };
        if verify_lease < Duration::from_secs(10) || verify_lease > Duration::from_secs(3600) {
            return Err(invalid(
                "CONSENTRY_VERIFY_LEASE",
                "must be between 10s and 1h",
            ));
        }

        let ca_file = self.get("CONSENTRY_CA_FILE").map(PathBuf::from);
        if let Some(path) = &ca_file
            && !path.is_file()
        {
            return Err(invalid(
                "CONSENTRY_CA_FILE",
                &format!("{} is not a readable file", path.display()),
            ));
        }

        let webhook_allow_private = match self.get("CONSENTRY_WEBHOOK_ALLOW_PRIVATE") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(
                    "CONSENTRY_WEBHOOK_ALLOW_PRIVATE",
                    &format!("'{other}' is neither true nor false"),
                ));
            }
        };

        let webhook_retry_schedule = match self.get("CONSENTRY_WEBHOOK_RETRY_SCHEDULE") {
            Some(raw) => crate::webhooks::RetrySchedule::parse(raw)
                .map_err(|e| invalid("CONSENTRY_WEBHOOK_RETRY_SCHEDULE", &e.to_string()))?,
            None => crate::webhooks::RetrySchedule::default(),
        };
        let webhook_timeout = match self.get("CONSENTRY_WEBHOOK_TIMEOUT") {
            Some(raw) => {
                parse_duration(raw).map_err(|r| invalid("CONSENTRY_WEBHOOK_TIMEOUT", r))?
            }
            None => crate::webhooks::client::ATTEMPT_TIMEOUT,
        };
        // Standard Webhooks gives an attempt 15 to 30 s; shorter is for tests and receivers
        // on the same network.
        if !(Duration::from_secs(1)..=Duration::from_secs(30)).contains(&webhook_timeout) {
            return Err(invalid(
                "CONSENTRY_WEBHOOK_TIMEOUT",
                "must be between 1s and 30s",
            ));
        }

        let metrics_token = match self.get("CONSENTRY_METRICS_TOKEN") {
            None => None,
            Some(raw) if raw.len() < 16 => {
                return Err(invalid(
                    "CONSENTRY_METRICS_TOKEN",
                    "must be at least 16 characters (e.g. `openssl rand -hex 32`)",
                ));
            }
            Some(raw) if !raw.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(invalid(
                    "CONSENTRY_METRICS_TOKEN",
                    "must be printable ASCII without spaces",
                ));
            }
            Some(raw) => Some(SecretString::from(raw.to_owned())),
        };
        let metrics_listen = match self.get("CONSENTRY_METRICS_LISTEN") {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|_| {
                invalid(
                    "CONSENTRY_METRICS_LISTEN",
                    "must be an address and port, e.g. 127.0.0.1:9090",
                )
            })?),
        };

        let signup_sign_in = match self.get("CONSENTRY_SIGNUP_SIGN_IN") {
            None => SignupSignIn::Optional,
            Some(raw) => SignupSignIn::parse(raw).ok_or_else(|| {
                invalid(
                    "CONSENTRY_SIGNUP_SIGN_IN",
                    "must be off, optional or required",
                )
            })?,
        };

        let operator_sign_in = self.operator_sign_in()?;
        let database = self.database()?;

        Ok(Settings {
            operator_sign_in,
            signup_sign_in,
            metrics_token,
            metrics_listen,
            webhook_allow_private,
            webhook_retry_schedule,
            webhook_timeout,
            ca_file,
            client_id,
            credential,
            cloud,
            authority_host,
            graph_host,
            public_url,
            database_url: database.url,
            database: database.options,
            migrate: database.migrate,
            listen,
            state_lifetime,
            token_version,
            required_permissions,
            session_key,
            verify_deadline,
            verify_interval,
            verify_concurrency,
            verify_lease,
        })
    }
}

impl RawSettings {
    /// `CONSENTRY_DATABASE_*` and `CONSENTRY_MIGRATE`, without the keys only `serve` needs.
    pub fn database(&self) -> Result<DatabaseSettings, ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        let defaults = DatabaseOptions::default();
        // PostgreSQL allows 100 connections for the whole server by default; hundreds from
        // one instance is a typo, not a pool size.
        let max_connections = match self.get("CONSENTRY_DATABASE_MAX_CONNECTIONS") {
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| {
                    invalid(
                        "CONSENTRY_DATABASE_MAX_CONNECTIONS",
                        "must be a number from 1 to 500",
                    )
                })?,
            None => defaults.max_connections,
        };
        // Zero would fail every wait at once; beyond ten minutes a request has long been
        // given up by its client.
        let wait = |key: &'static str, default: Duration| -> Result<Duration, ConfigError> {
            let value = match self.get(key) {
                Some(raw) => parse_duration(raw).map_err(|r| invalid(key, r))?,
                None => default,
            };
            if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&value) {
                return Err(invalid(key, "must be between 1s and 10m"));
            }
            Ok(value)
        };
        let connect_timeout = wait(
            "CONSENTRY_DATABASE_CONNECT_TIMEOUT",
            defaults.connect_timeout,
        )?;
        let busy_timeout = wait("CONSENTRY_DATABASE_BUSY_TIMEOUT", defaults.busy_timeout)?;
        let statement_timeout = wait(
            "CONSENTRY_DATABASE_STATEMENT_TIMEOUT",
            defaults.statement_timeout,
        )?;
        let migrate = match self
            .get("CONSENTRY_MIGRATE")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => return Err(invalid("CONSENTRY_MIGRATE", "must be true or false")),
        };
        Ok(DatabaseSettings {
            url: self
                .get("CONSENTRY_DATABASE_URL")
                .unwrap_or(DEFAULT_DATABASE_URL)
                .to_owned(),
            options: DatabaseOptions {
                max_connections,
                connect_timeout,
                busy_timeout,
                statement_timeout,
            },
            migrate,
        })
    }

    /// `CONSENTRY_OPERATOR_TENANT`, `CONSENTRY_OPERATOR_ROLE` and
    /// `CONSENTRY_OPERATOR_PASSWORDS`, which only make sense together.
    fn operator_sign_in(&self) -> Result<OperatorSignIn, ConfigError> {
        let invalid = |key: &'static str, reason: &str| ConfigError::Invalid {
            key,
            reason: reason.to_owned(),
        };
        // A GUID, not a domain: the ID token's `tid` is compared with it.
        let tenant = match self.get("CONSENTRY_OPERATOR_TENANT") {
            None => None,
            Some(raw) => Some(crate::domain::TenantId::parse(raw).ok_or_else(|| {
                invalid(
                    "CONSENTRY_OPERATOR_TENANT",
                    "must be your tenant's id (a GUID, as the Entra admin center shows it)",
                )
            })?),
        };
        let role = match self.get("CONSENTRY_OPERATOR_ROLE") {
            None => None,
            Some(_) if tenant.is_none() => {
                return Err(invalid(
                    "CONSENTRY_OPERATOR_ROLE",
                    "needs CONSENTRY_OPERATOR_TENANT: the role is read from sign-ins with Microsoft",
                ));
            }
            // Entra's app role values: up to 120 characters, no spaces.
            Some(raw) if raw.len() > 120 || !raw.bytes().all(|b| b.is_ascii_graphic()) => {
                return Err(invalid(
                    "CONSENTRY_OPERATOR_ROLE",
                    "must be an app role's value (up to 120 characters, no spaces), e.g. Consentry.Operator",
                ));
            }
            Some(raw) => Some(raw.to_owned()),
        };
        let passwords = match self
            .get("CONSENTRY_OPERATOR_PASSWORDS")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("true") => true,
            Some("false") => false,
            Some(_) => {
                return Err(invalid(
                    "CONSENTRY_OPERATOR_PASSWORDS",
                    "must be true or false",
                ));
            }
        };
        if !passwords && tenant.is_none() {
            return Err(invalid(
                "CONSENTRY_OPERATOR_PASSWORDS",
                "false needs CONSENTRY_OPERATOR_TENANT, or no operator could sign in",
            ));
        }
        Ok(OperatorSignIn {
            tenant,
            role,
            passwords,
        })
    }

    /// Exactly one credential: a secret (or a file holding it), a certificate with its
    /// key, or a federated assertion file.
    fn credential(&self) -> Result<Credential, ConfigError> {
        let invalid = |key: &'static str, reason: String| ConfigError::Invalid { key, reason };
        let secret = self.get("CONSENTRY_CLIENT_SECRET");
        let secret_file = self.get("CONSENTRY_CLIENT_SECRET_FILE");
        let certificate = self.get("CONSENTRY_CLIENT_CERTIFICATE");
        let key = self.get("CONSENTRY_CLIENT_CERTIFICATE_KEY");
        let assertion = self.get("CONSENTRY_CLIENT_ASSERTION_FILE");
        let kinds = [
            secret.or(secret_file).is_some(),
            certificate.or(key).is_some(),
            assertion.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(invalid(
                "CONSENTRY_CLIENT_SECRET",
                "give one credential: a secret (or CONSENTRY_CLIENT_SECRET_FILE), a certificate (CONSENTRY_CLIENT_CERTIFICATE with CONSENTRY_CLIENT_CERTIFICATE_KEY), or CONSENTRY_CLIENT_ASSERTION_FILE".into(),
            ));
        }
        if let Some(path) = assertion {
            return Ok(Credential::Federated(PathBuf::from(path)));
        }
        if certificate.is_some() || key.is_some() {
            let certificate =
                certificate.ok_or(ConfigError::Missing("CONSENTRY_CLIENT_CERTIFICATE"))?;
            let key = key.ok_or(ConfigError::Missing("CONSENTRY_CLIENT_CERTIFICATE_KEY"))?;
            let loaded = CertificateCredential::load(Path::new(certificate), Path::new(key))
                .map_err(|e| invalid("CONSENTRY_CLIENT_CERTIFICATE", format!("{e:#}")))?;
            return Ok(Credential::Certificate(Box::new(loaded)));
        }
        let secret = match (secret, secret_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "CONSENTRY_CLIENT_SECRET",
                    "set it or CONSENTRY_CLIENT_SECRET_FILE, not both".into(),
                ));
            }
            (Some(secret), None) => secret.to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    invalid(
                        "CONSENTRY_CLIENT_SECRET_FILE",
                        format!("cannot read {path}: {e}"),
                    )
                })?
                .trim()
                .to_owned(),
            (None, None) => return Err(ConfigError::Missing("CONSENTRY_CLIENT_SECRET")),
        };
        if secret.is_empty() {
            return Err(invalid("CONSENTRY_CLIENT_SECRET", "is empty".into()));
        }
        Ok(Credential::Secret(SecretString::from(secret)))
    }
}

impl Settings {
    /// The redirect URI registered on the app: `{public_url}/consent/callback`.
    pub fn redirect_uri(&self) -> String {
        format!(
            "{}/consent/callback",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// The redirect URI of a sign-up's sign-in with Microsoft, registered on the app beside
    /// the consent callback: `{public_url}/signup/signed-in`.
    pub fn signup_sign_in_redirect_uri(&self) -> String {
        format!(
            "{}/signup/signed-in",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// The redirect URI of an operator's sign-in with Microsoft, registered on the app beside
    /// the others: `{public_url}/admin/signed-in`.
    pub fn operator_sign_in_redirect_uri(&self) -> String {
        format!(
            "{}/admin/signed-in",
            self.public_url.as_str().trim_end_matches('/')
        )
    }

    /// Cookies are `Secure` whenever browsers reach us over https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

/// `90s`, `10m`, `6h`, `1d`, or bare seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, &'static str> {
    const ERR: &str = "must be a duration like 30s, 10m, 6h or 1d";
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().map_err(|_| ERR)?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" => n.checked_mul(60).ok_or(ERR)?,
        "h" => n.checked_mul(3600).ok_or(ERR)?,
        "d" => n.checked_mul(86_400).ok_or(ERR)?,
        _ => return Err(ERR),
    };
    Ok(Duration::from_secs(secs))
}

/// Graph application permissions are dot-separated words: `User.Read.All`.
pub fn is_permission_name(name: &str) -> bool {
    name.len() <= 100
        && name.contains('.')
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> RawSettings {
        let mut raw = RawSettings::default();
        raw.set(
            "CONSENTRY_CLIENT_ID",
            "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90",
        );
        raw.set("CONSENTRY_CLIENT_SECRET", "s3cret");
        raw.set(
            "CONSENTRY_SESSION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        );
        raw
    }

    #[test]
    fn defaults_follow_microsofts_public_cloud() {
        let s = minimal().parse().unwrap();
        assert_eq!(
            s.authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert_eq!(s.graph_host.as_str(), "https://graph.microsoft.com/");
        assert_eq!(s.redirect_uri(), "http://localhost:8080/consent/callback");
        assert_eq!(s.state_lifetime, Duration::from_secs(600));
        assert_eq!(s.token_version, TokenVersion::V2);
        assert_eq!(s.database_url, DEFAULT_DATABASE_URL);
        assert!(!s.secure_cookies());
    }

    #[test]
    fn a_cloud_sets_both_hosts_and_the_resource_and_the_hosts_stay_overridable() {
        for (cloud, authority, graph) in [
            (
                "usgov",
                "https://login.microsoftonline.us/",
                "https://graph.microsoft.us/",
            ),
            (
                "usgov-dod",
                "https://login.microsoftonline.us/",
                "https://dod-graph.microsoft.us/",
            ),
            (
                "china",
                "https://login.chinacloudapi.cn/",
                "https://microsoftgraph.chinacloudapi.cn/",
            ),
        ] {
            let mut raw = minimal();
            raw.set("CONSENTRY_CLOUD", cloud);
            let s = raw.parse().unwrap();
            assert_eq!(s.authority_host.as_str(), authority, "{cloud}");
            assert_eq!(s.graph_host.as_str(), graph, "{cloud}");
            assert_eq!(
                format!("{}/", s.cloud.graph_resource()),
                graph,
                "the resource is the cloud's Graph"
            );
        }
        let mut raw = minimal();
        raw.set("CONSENTRY_CLOUD", "china");
        raw.set("CONSENTRY_GRAPH_HOST", "http://127.0.0.1:9999");
        let s = raw.parse().unwrap();
        assert_eq!(s.graph_host.as_str(), "http://127.0.0.1:9999/");
        assert_eq!(
            s.cloud.graph_resource(),
            "https://microsoftgraph.chinacloudapi.cn"
        );
        assert_eq!(minimal().parse().unwrap().cloud, Cloud::Public);
    }

    #[test]
    fn errors_name_the_key() {
        let mut raw = minimal();
        raw.set("CONSENTRY_CLIENT_ID", "");
        assert_eq!(
            raw.parse().unwrap_err(),
            ConfigError::Missing("CONSENTRY_CLIENT_ID")
        );
        for (var, value) in [
            ("CONSENTRY_CLIENT_ID", "nope"),
            ("CONSENTRY_AUTHORITY_HOST", "login.example"),
            ("CONSENTRY_LISTEN", "localhost"),
            ("CONSENTRY_STATE_LIFETIME", "10 parsecs"),
            ("CONSENTRY_STATE_LIFETIME", "5s"),
            ("CONSENTRY_TOKEN_VERSION", "v3"),
            ("CONSENTRY_CLOUD", "mars"),
            ("CONSENTRY_REQUIRED_PERMISSIONS", "User.Read.All,<b>"),
            ("CONSENTRY_SESSION_KEY", "c2hvcnQ="),
            ("CONSENTRY_VERIFY_LEASE", "5s"),
            ("CONSENTRY_VERIFY_LEASE", "2h"),
        ] {
            let mut raw = minimal();
            raw.set(var, value);
            let err = raw.parse().unwrap_err().to_string();
            assert!(err.starts_with(var), "{var}={value}: {err}");
        }
    }

    #[test]
    fn the_secret_can_come_from_a_file_but_never_prints() {
        let path = std::env::temp_dir().join(format!("consentry-secret-{}", Uuid::new_v4()));
        std::fs::write(&path, "from-file\n").unwrap();
        let mut raw = minimal();
        raw.set("CONSENTRY_CLIENT_SECRET", "");
        raw.set("CONSENTRY_CLIENT_SECRET_FILE", path.display().to_string());
        let s = raw.parse().unwrap();
        assert!(
            matches!(&*s.credential, Credential::Secret(secret) if secret.expose_secret() == "from-file")
        );
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("from-file") && !debug.contains("MDEy"),
            "{debug}"
        );
    }

    #[test]
    fn toml_file_is_overridden_by_the_environment_layer() {
        let path = std::env::temp_dir().join(format!("consentry-{}.toml", Uuid::new_v4()));
        std::fs::write(&path, "token_version = \"v1\"\nrequired_permissions = [\"Mail.Read\"]\nlisten = \"0.0.0.0:9000\"\n").unwrap();
        let mut raw = minimal();
        raw.merge_toml(&path).unwrap();
        raw.set("CONSENTRY_LISTEN", "127.0.0.1:9001");
        let s = raw.parse().unwrap();
        assert_eq!(s.token_version, TokenVersion::V1);
        assert_eq!(s.required_permissions, ["Mail.Read"]);
        assert_eq!(s.listen.port(), 9001);
        std::fs::write(&path, "colour = \"blue\"\n").unwrap();
        assert!(matches!(
            minimal().merge_toml(&path),
            Err(ConfigError::File { .. })
        ));
    }

    #[test]
    fn metrics_settings_are_optional_checked_and_the_token_never_prints() {
        let defaults = minimal().parse().unwrap();
        let mut set = minimal();
        set.set("CONSENTRY_METRICS_TOKEN", "scrape-me-0123456789");
        set.set("CONSENTRY_METRICS_LISTEN", "127.0.0.1:9090");
        let set = set.parse().unwrap();
        let refused = |var: &'static str, value: &str| {
            let mut raw = minimal();
            raw.set(var, value);
            raw.parse().unwrap_err().to_string()
        };

        assert!(defaults.metrics_token.is_none() && defaults.metrics_listen.is_none());
        assert_eq!(
            set.metrics_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            Some("scrape-me-0123456789".to_owned())
        );
        assert_eq!(set.metrics_listen.map(|a| a.port()), Some(9090));
        assert!(!format!("{set:?}").contains("scrape-me"));
        for (var, value) in [
            ("CONSENTRY_METRICS_TOKEN", "short"),
            ("CONSENTRY_METRICS_TOKEN", "has spaces in it, sixteen+"),
            ("CONSENTRY_METRICS_LISTEN", "anywhere"),
        ] {
            let error = refused(var, value);
            assert!(error.starts_with(var), "{error}");
            assert!(!error.contains(value), "{error}");
        }
    }

    #[test]
    fn operator_sign_in_settings_hang_together() {
        let defaults = minimal().parse().unwrap().operator_sign_in;
        let mut set = minimal();
        set.set(
            "CONSENTRY_OPERATOR_TENANT",
            "3F2C8A71-5D94-4E0B-A6C3-1B7E9D2F4A58",
        );
        set.set("CONSENTRY_OPERATOR_ROLE", "Consentry.Operator");
        set.set("CONSENTRY_OPERATOR_PASSWORDS", "false");
        let set = set.parse().unwrap();
        let refused = |pairs: &[(&'static str, &str)]| {
            let mut raw = minimal();
            for (var, value) in pairs {
                raw.set(var, *value);
            }
            raw.parse().unwrap_err().to_string()
        };

        assert_eq!(
            defaults,
            OperatorSignIn {
                tenant: None,
                role: None,
                passwords: true
            }
        );
        assert_eq!(
            set.operator_sign_in
                .tenant
                .map(|t| t.to_string())
                .as_deref(),
            Some("3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58")
        );
        assert_eq!(
            set.operator_sign_in.role.as_deref(),
            Some("Consentry.Operator")
        );
        assert!(!set.operator_sign_in.passwords);
        assert_eq!(
            set.operator_sign_in_redirect_uri(),
            "http://localhost:8080/admin/signed-in"
        );
        for (pairs, key) in [
            (
                &[("CONSENTRY_OPERATOR_TENANT", "contoso.onmicrosoft.com")][..],
                "CONSENTRY_OPERATOR_TENANT",
            ),
            (
                &[("CONSENTRY_OPERATOR_ROLE", "Consentry.Operator")][..],
                "CONSENTRY_OPERATOR_ROLE",
            ),
            (
                &[
                    (
                        "CONSENTRY_OPERATOR_TENANT",
                        "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58",
                    ),
                    ("CONSENTRY_OPERATOR_ROLE", "two words"),
                ][..],
                "CONSENTRY_OPERATOR_ROLE",
            ),
            (
                &[("CONSENTRY_OPERATOR_PASSWORDS", "false")][..],
                "CONSENTRY_OPERATOR_PASSWORDS",
            ),
            (
                &[("CONSENTRY_OPERATOR_PASSWORDS", "no")][..],
                "CONSENTRY_OPERATOR_PASSWORDS",
            ),
        ] {
            let error = refused(pairs);
            assert!(error.starts_with(key), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn database_settings_default_to_the_pool_of_before_and_are_checked() {
        // Arrange
        let mut set = minimal();
        set.set("CONSENTRY_DATABASE_MAX_CONNECTIONS", "32");
        set.set("CONSENTRY_DATABASE_CONNECT_TIMEOUT", "30s");
        set.set("CONSENTRY_DATABASE_BUSY_TIMEOUT", "1m");
        set.set("CONSENTRY_DATABASE_STATEMENT_TIMEOUT", "45s");
        set.set("CONSENTRY_MIGRATE", "False");
        let refused = |var: &'static str, value: &str| {
            let mut raw = minimal();
            raw.set(var, value);
            raw.parse().unwrap_err().to_string()
        };

        // Act
        let defaults = minimal().parse().unwrap();
        let set = set.parse().unwrap();

        // Assert
        assert_eq!(
            defaults.database,
            DatabaseOptions {
                max_connections: 8,
                connect_timeout: Duration::from_secs(10),
                busy_timeout: Duration::from_secs(5),
                statement_timeout: Duration::from_secs(30),
            }
        );
        assert!(defaults.migrate);
        assert_eq!(
            set.database,
            DatabaseOptions {
                max_connections: 32,
                connect_timeout: Duration::from_secs(30),
                busy_timeout: Duration::from_secs(60),
                statement_timeout: Duration::from_secs(45),
            }
        );
        assert!(!set.migrate);
        for (var, value) in [
            ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "0"),
            ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "-1"),
            ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "501"),
            ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "99999999999"),
            ("CONSENTRY_DATABASE_MAX_CONNECTIONS", "eight"),
            ("CONSENTRY_DATABASE_CONNECT_TIMEOUT", "0s"),
            ("CONSENTRY_DATABASE_CONNECT_TIMEOUT", "11m"),
            ("CONSENTRY_DATABASE_CONNECT_TIMEOUT", "soon"),
            ("CONSENTRY_DATABASE_BUSY_TIMEOUT", "0"),
            ("CONSENTRY_DATABASE_BUSY_TIMEOUT", "1d"),
            ("CONSENTRY_MIGRATE", "no"),
            ("CONSENTRY_MIGRATE", "1"),
        ] {
            let error = refused(var, value);
            assert!(error.starts_with(var), "{var}={value}: {error}");
        }
    }

    #[test]
    fn the_database_keys_parse_without_the_rest_of_the_configuration() {
        // Arrange: no client id, no session key (`consentry migrate` needs neither).
        let mut raw = RawSettings::default();
        raw.set("CONSENTRY_DATABASE_URL", "sqlite://elsewhere.db");
        raw.set("CONSENTRY_MIGRATE", "false");
        let mut bad = RawSettings::default();
        bad.set("CONSENTRY_DATABASE_BUSY_TIMEOUT", "0s");

        // Act
        let database = raw.database().unwrap();
        let defaults = RawSettings::default().database().unwrap();

        // Assert
        assert_eq!(database.url, "sqlite://elsewhere.db");
        assert!(!database.migrate);
        assert_eq!(defaults.url, DEFAULT_DATABASE_URL);
        assert_eq!(defaults.options, DatabaseOptions::default());
        assert!(defaults.migrate);
        assert!(matches!(
            bad.database(),
            Err(ConfigError::Invalid {
                key: "CONSENTRY_DATABASE_BUSY_TIMEOUT",
                ..
            })
        ));
    }

    #[test]
    fn toml_booleans_and_numbers_are_read_like_the_variables() {
        let path = std::env::temp_dir().join(format!("consentry-{}.toml", Uuid::new_v4()));
        std::fs::write(
            &path,
            "migrate = false\ndatabase_max_connections = 4\ndatabase_busy_timeout = \"2s\"\n",
        )
        .unwrap();
        let mut raw = RawSettings::default();

        raw.merge_toml(&path).unwrap();
        let database = raw.database().unwrap();
        let _ = std::fs::remove_file(&path);

        assert!(!database.migrate);
        assert_eq!(database.options.max_connections, 4);
        assert_eq!(database.options.busy_timeout, Duration::from_secs(2));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn webhook_schedule_and_timeout_default_to_the_specifications_and_are_checked() {
        let defaults = minimal().parse().unwrap();
        let mut short = minimal();
        short.set("CONSENTRY_WEBHOOK_RETRY_SCHEDULE", "1s, 2s");
        short.set("CONSENTRY_WEBHOOK_TIMEOUT", "2s");
        let short = short.parse().unwrap();
        let refused = |var: &'static str, value: &str| {
            let mut raw = minimal();
            raw.set(var, value);
            raw.parse().unwrap_err().to_string()
        };

        assert_eq!(defaults.webhook_retry_schedule.attempts(), 8);
        assert_eq!(defaults.webhook_timeout, Duration::from_secs(15));
        assert_eq!(
            short.webhook_retry_schedule.waits(),
            [Duration::from_secs(1), Duration::from_secs(2)]
        );
        assert_eq!(short.webhook_timeout, Duration::from_secs(2));
        let schedule = refused("CONSENTRY_WEBHOOK_RETRY_SCHEDULE", "5s,later");
        assert!(
            schedule.contains("CONSENTRY_WEBHOOK_RETRY_SCHEDULE"),
            "{schedule}"
        );
        assert!(schedule.contains("'later'"), "{schedule}");
        for timeout in ["0s", "31s", "fast"] {
            let error = refused("CONSENTRY_WEBHOOK_TIMEOUT", timeout);
            assert!(error.contains("CONSENTRY_WEBHOOK_TIMEOUT"), "{error}");
        }
    }
}

//! What `consentry emulator` is told at start: the app registration and the server's options.

use std::net::IpAddr;
use std::path::PathBuf;

use uuid::Uuid;

use super::directory::is_dns_name;
use super::permissions;

/// The emulated app's client id when none is given (documented in the README).
pub const DEFAULT_CLIENT_ID: Uuid = Uuid::from_u128(0x6c0ff3e1_b5a8_4f1e_9d2c_4a7b3e8f5d90);
/// The emulated app's client secret when none is given. Documented, so not a secret: give
/// `--client-secret` to exercise secret handling for real.
pub const DEFAULT_CLIENT_SECRET: &str = "consentry-emulator-secret";
/// Where `consentry serve` listens by default, hence the default redirect URIs: its
/// admin-consent callback, and where its sign-ins with Microsoft (a sign-up's, an
/// operator's) come back.
pub const DEFAULT_REDIRECT_URIS: &[&str] = &[
    "http://localhost:8080/consent/callback",
    "http://127.0.0.1:8080/consent/callback",
    "http://localhost:8080/signup/signed-in",
    "http://127.0.0.1:8080/signup/signed-in",
    "http://localhost:8080/admin/signed-in",
    "http://127.0.0.1:8080/admin/signed-in",
];

/// Everything the emulator needs to start.
#[derive(Clone)]
pub struct EmulatorConfig {
    pub host: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub client_id: Uuid,
    pub client_secret: String,
    pub app_name: String,
    pub redirect_uris: Vec<String>,
    pub permissions: Vec<String>,
    pub https: bool,
    /// Where `--https` writes `ca.pem`; a fresh temporary directory when `None`.
    pub tls_dir: Option<PathBuf>,
    /// Access-token lifetime in seconds (Microsoft's app tokens: 3599).
    pub token_lifetime_secs: u32,
    /// Seed the fictional organisations (Contoso, Fabrikam, ...).
    pub seed: bool,
    /// Extra generated tenants at start, for benchmarks.
    pub generate_tenants: u32,
    pub users_per_generated_tenant: u32,
    /// actix worker threads; the number of cores when `None`.
    pub workers: Option<usize>,
    /// PEM certificate files registered on the app at start (`--certificate`).
    pub certificates: Vec<PathBuf>,
    /// A TOML or JSON file declaring the apps, tenants and consents (`--fixture`). With
    /// one, the app fields above and `seed` are not used; `generate_tenants` still is.
    pub fixture: Option<PathBuf>,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uris", &self.redirect_uris)
            .field("permissions", &self.permissions)
            .field("https", &self.https)
            .field("certificates", &self.certificates)
            .field("fixture", &self.fixture)
            .finish_non_exhaustive()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8081,
            client_id: DEFAULT_CLIENT_ID,
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
            app_name: "consentry".to_owned(),
            redirect_uris: DEFAULT_REDIRECT_URIS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            permissions: permissions::DEFAULT_REQUIRED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            https: false,
            tls_dir: None,
            token_lifetime_secs: 3599,
            seed: true,
            generate_tenants: 0,
            users_per_generated_tenant: 5,
            workers: None,
            certificates: Vec::new(),
            fixture: None,
        }
    }
}

/// A flag the emulator cannot start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("--redirect-uri '{0}': {1}")]
    RedirectUri(String, &'static str),
    #[error("--permission '{0}' is not a permission name (expected e.g. User.Read.All)")]
    Permission(String),
    #[error("--client-secret must not be empty")]
    EmptySecret,
    #[error("--token-lifetime must be between 60 and 86400 seconds")]
    TokenLifetime,
    #[error("--users must be at most 100000 per tenant")]
    Users,
}

impl EmulatorConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for uri in &self.redirect_uris {
            check_redirect_uri(uri).map_err(|why| ConfigError::RedirectUri(uri.clone(), why))?;
        }
        if let Some(bad) = self
            .permissions
            .iter()
            .find(|p| !permissions::is_well_formed(p))
        {
            return Err(ConfigError::Permission(bad.clone()));
        }
        if self.client_secret.is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        if !(60..=86_400).contains(&self.token_lifetime_secs) {
            return Err(ConfigError::TokenLifetime);
        }
        if self.users_per_generated_tenant > 100_000 {
            return Err(ConfigError::Users);
        }
        Ok(())
    }
}

/// Microsoft's rules for a web redirect URI: absolute, no fragment, and https unless the
/// host is the local machine.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let parsed = url::Url::parse(uri).map_err(|_| "not an absolute URL")?;
    if parsed.fragment().is_some() {
        return Err("a redirect URI cannot contain a fragment");
    }
    let local = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("the URL has no host"),
    };
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => return Err("http is allowed only for localhost; use https"),
        _ => return Err("the scheme must be https (or http for localhost)"),
    }
    if let Some(url::Host::Domain(d)) = parsed.host()
        && d != "localhost"
        && !is_dns_name(d)
    {
        return Err("the host is not a valid DNS name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_microsofts_rules() {
        assert!(check_redirect_uri("https://app.example.com/consent/callback").is_ok());
        assert!(check_redirect_uri("http://localhost:8080/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:9/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]:9/cb").is_ok());
        assert!(check_redirect_uri("http://app.example.com/cb").is_err());
        assert!(check_redirect_uri("http://10.0.0.1/cb").is_err());
        assert!(check_redirect_uri("https://a.example.com/cb#frag").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("ftp://a.example.com/").is_err());
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(EmulatorConfig::default().validate(), Ok(()));
        let bad = EmulatorConfig {
            permissions: vec!["nope".into()],
            ..Default::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Permission("nope".into())));
    }
}

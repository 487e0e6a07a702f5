//! Fixtures: the emulated world (app registrations, tenants, the consents between them, and
//! each tenant's sign-in users with their app roles) declared in a TOML or JSON file (`--fixture`), exported in the same shape
//! (`GET /_emulator/fixture`), and restored by `POST /_emulator/reset`.
//!
//! The wire types here are separate from the directory's: every id, URI, permission and
//! certificate is parsed once, with an error naming the field (`apps[1].redirect_uris[0]`).
//! Unknown fields are errors, so a misspelt key never passes silently.
//!
//! Secrets: a fixture may declare an app's secrets in clear (`secrets`) or as their SHA-256
//! (`secret_sha256`); the directory keeps only the hash, and the export writes only the hash.
//! An export then never shows a secret, whoever reads it, and importing it gives an emulator
//! that accepts the same secrets. (A hash of a guessable secret can be guessed: declare
//! random secrets when an export travels.)

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::certificate::ClientCertificate;
use super::clock::rfc3339_seconds;
use super::config::check_redirect_uri;
use super::directory::{
    AppRegistration, AppRole, Directory, DirectoryError, FederatedCredential, MAX_CERTIFICATES,
    MAX_FEDERATED, MAX_FEDERATED_FIELD, MAX_USERS, NewTenant, SecretHash, ServicePrincipal,
    TOKEN_EXCHANGE_AUDIENCE, Tenant, is_dns_name,
};
use super::users::{self, AccountError, Accounts, NewAccount, RoleRef, UserConsentPolicy};
use super::{permissions, seed};

/// Apps one fixture may declare.
const MAX_APPS: usize = 100;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// At least one; the first is the primary app (`/_emulator/app`).
    #[serde(default)]
    pub apps: Vec<FixtureApp>,
    #[serde(default)]
    pub tenants: Vec<FixtureTenant>,
}

/// An app registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureApp {
    pub client_id: String,
    pub display_name: String,
    /// Secrets in clear; never written by the export.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FixtureSecret>,
    /// Secrets as 64 hexadecimal digits of their SHA-256, as the export writes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_sha256: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    /// Application permissions on Microsoft Graph the app requests (granted on consent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<String>,
    /// PEM certificates whose keys sign client assertions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<FixtureAppRole>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated: Vec<FixtureFederated>,
}

/// A secret in clear, which `Debug` does not show.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FixtureSecret(String);

impl std::fmt::Debug for FixtureSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureAppRole {
    pub id: String,
    pub value: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `User`, `Application` or both; `User` when left out.
    #[serde(default = "default_member_types")]
    pub allowed_member_types: Vec<String>,
}

fn default_member_types() -> Vec<String> {
    vec!["User".to_owned()]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFederated {
    pub issuer: String,
    pub subject: String,
    /// `api://AzureADTokenExchange` when left out.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// A PEM certificate for the issuer's signing key.
    pub certificate: String,
}

fn default_audience() -> String {
    TOKEN_EXCHANGE_AUDIENCE.to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureTenant {
    pub id: String,
    pub display_name: String,
    /// The `*.onmicrosoft.com` domain.
    pub domain: String,
    /// Custom domains besides it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified_domains: Vec<String>,
    /// Graph's `countryLetterCode`; `US` when left out.
    #[serde(default = "default_country")]
    pub country: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub city: String,
    /// Graph's user count (generated users no one signs in as; see `users`).
    #[serde(default = "default_user_count")]
    pub user_count: u32,
    /// RFC 3339; the time of loading when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// What users who are not administrators may consent to; `low_impact` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_consent: Option<UserConsentPolicy>,
    /// The apps an administrator of this tenant has consented to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consents: Vec<FixtureConsent>,
    /// The people who can sign in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<FixtureUser>,
}

/// A user who can sign in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureUser {
    /// The object id (`oid`); a new one when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub display_name: String,
    /// On one of the tenant's domains.
    pub user_principal_name: String,
    /// The user principal name when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    /// May consent for the whole organisation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
    /// App roles assigned to the user, by value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<FixtureRoleAssignment>,
}

/// An app role assigned to a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRoleAssignment {
    /// The app declaring the role; the primary app (the first) when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The role's value, e.g. `Reports.Read`.
    pub value: String,
}

fn default_country() -> String {
    "US".to_owned()
}

fn default_user_count() -> u32 {
    25
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureConsent {
    pub client_id: String,
    /// The granted application permissions; the app's `permissions` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The service principal's object id; a new one when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_id: Option<String>,
    /// RFC 3339; the time of loading when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consented_at: Option<String>,
}

/// A field the fixture got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FixtureError {
    /// Where, e.g. `tenants[2].consents[0].client_id`.
    pub field: String,
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> FixtureError {
    FixtureError {
        field: field.into(),
        message: message.into(),
    }
}

/// The formats a fixture is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Format {
    /// From the file name's extension.
    pub fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl Fixture {
    /// Reads, parses and checks a fixture file: the emulator refuses to start on any error.
    pub fn load(path: &Path) -> anyhow::Result<Fixture> {
        let format = Format::of(path).with_context(|| {
            format!(
                "--fixture {}: the file name must end in .toml or .json",
                path.display()
            )
        })?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading --fixture {}", path.display()))?;
        let fixture = Fixture::parse(&text, format)
            .with_context(|| format!("--fixture {}", path.display()))?;
        fixture
            .world(OffsetDateTime::now_utc())
            .with_context(|| format!("--fixture {}", path.display()))?;
        Ok(fixture)
    }

    /// Parses the text of a fixture (checking its shape, not its values).
    pub fn parse(text: &str, format: Format) -> anyhow::Result<Fixture> {
        Ok(match format {
            Format::Toml => toml::from_str(text)?,
            Format::Json => serde_json::from_str(text)?,
        })
    }

    /// The directory and the sign-in users the fixture declares, as they are at `now`.
    pub fn world(&self, now: OffsetDateTime) -> Result<World, FixtureError> {
        let directory = self.directory(now)?;
        let mut accounts = Accounts::new();
        for (i, tenant) in self.tenants.iter().enumerate() {
            let at = format!("tenants[{i}]");
            let id = parse_guid(&format!("{at}.id"), &tenant.id)?;
            let Some(t) = directory.tenant(id) else {
                return Err(bad(format!("{at}.id"), "not in the directory"));
            };
            if let Some(policy) = tenant.user_consent {
                accounts.set_policy(id, policy);
            }
            if tenant.users.len() > users::MAX_USERS_PER_TENANT {
                return Err(bad(
                    format!("{at}.users"),
                    format!("at most {} users", users::MAX_USERS_PER_TENANT),
                ));
            }
            for (j, user) in tenant.users.iter().enumerate() {
                let at = format!("{at}.users[{j}]");
                let new = user.account(&at, &directory, id)?;
                accounts
                    .add(&directory, t, new)
                    .map_err(|e| account_error(&at, e))?;
            }
        }
        Ok(World {
            directory,
            accounts,
        })
    }

    /// The directory the fixture declares, as it is at `now`.
    fn directory(&self, now: OffsetDateTime) -> Result<Directory, FixtureError> {
        if self.apps.is_empty() {
            return Err(bad("apps", "at least one app registration is needed"));
        }
        if self.apps.len() > MAX_APPS {
            return Err(bad("apps", format!("at most {MAX_APPS} apps")));
        }
        let mut apps = Vec::with_capacity(self.apps.len());
        for (i, app) in self.apps.iter().enumerate() {
            let registration = app.registration(&format!("apps[{i}]"))?;
            if apps
                .iter()
                .any(|a: &AppRegistration| a.client_id == registration.client_id)
            {
                return Err(bad(
                    format!("apps[{i}].client_id"),
                    format!("{} is declared twice", registration.client_id),
                ));
            }
            apps.push(registration);
        }
        let mut apps = apps.into_iter();
        let primary = apps.next().ok_or_else(|| bad("apps", "empty"))?;
        let mut directory = Directory::with_apps(primary, apps.collect());
        for (i, tenant) in self.tenants.iter().enumerate() {
            let field = format!("tenants[{i}]");
            let tenant = tenant.tenant(&field, &directory, now)?;
            directory.insert_tenant(tenant).map_err(|e| match e {
                DirectoryError::TenantExists(_) => bad(format!("{field}.id"), e.to_string()),
                _ => bad(&field, e.to_string()),
            })?;
        }
        Ok(directory)
    }

    /// The fixture that declares `apps`, `tenants` and their `accounts` as they are
    /// (tenants in any order: they are written in creation order). Delegated grants are
    /// what users did, not what a fixture declares: they are left out.
    pub fn export(
        apps: &[AppRegistration],
        mut tenants: Vec<Arc<Tenant>>,
        accounts: &Accounts,
    ) -> Fixture {
        tenants.sort_unstable_by_key(|t| t.seq);
        let primary = apps.first().map(|a| a.client_id);
        Fixture {
            apps: apps.iter().map(FixtureApp::of).collect(),
            tenants: tenants
                .iter()
                .map(|t| {
                    let mut tenant = FixtureTenant::of(t);
                    tenant.user_consent = accounts.explicit_policy(t.id);
                    tenant.users = accounts
                        .of_tenant(t.id)
                        .into_iter()
                        .map(|u| FixtureUser::of(u, apps, primary))
                        .collect();
                    tenant
                })
                .collect(),
        }
    }
}

/// What a fixture, or the built-in defaults, make: the directory and who can sign in.
#[derive(Debug)]
pub struct World {
    pub directory: Directory,
    pub accounts: Accounts,
}

impl FixtureUser {
    fn account(
        &self,
        at: &str,
        directory: &Directory,
        tenant: Uuid,
    ) -> Result<NewAccount, FixtureError> {
        // Left out, the id comes from the tenant and the user name: the same at every load
        // and reset, so tests can keep it.
        let id = match self.id.as_deref() {
            Some(id) => parse_guid(&format!("{at}.id"), id)?,
            None => users::fixed_id(
                tenant,
                &self.user_principal_name.trim().to_ascii_lowercase(),
            ),
        };
        let primary = directory.primary_app().client_id;
        let mut roles = Vec::with_capacity(self.app_roles.len());
        for (k, r) in self.app_roles.iter().enumerate() {
            let app = match &r.client_id {
                Some(c) => parse_guid(&format!("{at}.app_roles[{k}].client_id"), c)?,
                None => primary,
            };
            roles.push(RoleRef {
                app,
                role: r.value.clone(),
            });
        }
        Ok(NewAccount {
            id: Some(id),
            display_name: self.display_name.clone(),
            mail: self
                .mail
                .clone()
                .or_else(|| Some(self.user_principal_name.clone())),
            user_principal_name: self.user_principal_name.clone(),
            admin: self.admin,
            roles,
        })
    }

    fn of(u: &users::Account, apps: &[AppRegistration], primary: Option<Uuid>) -> FixtureUser {
        let app_roles = apps
            .iter()
            .flat_map(|app| {
                users::role_values(u, app)
                    .into_iter()
                    .map(move |value| FixtureRoleAssignment {
                        // The primary app's roles are written without it, as declared.
                        client_id: (Some(app.client_id) != primary)
                            .then(|| app.client_id.to_string()),
                        value,
                    })
            })
            .collect();
        FixtureUser {
            id: Some(u.id.to_string()),
            display_name: u.display_name.clone(),
            user_principal_name: u.user_principal_name.clone(),
            mail: u.mail.clone(),
            admin: u.admin,
            app_roles,
        }
    }
}

/// The field of a user an account error is about.
fn account_error(at: &str, e: AccountError) -> FixtureError {
    let field = match e {
        AccountError::UserExists(_) => "id",
        AccountError::NameTaken(_) | AccountError::InvalidName(_) => "user_principal_name",
        AccountError::InvalidDisplayName => "display_name",
        AccountError::NoSuchApp(_) | AccountError::NoSuchRole(_) | AccountError::NotForUsers(_) => {
            "app_roles"
        }
        AccountError::NoSuchUser(_) | AccountError::TooMany(_) => "",
    };
    if field.is_empty() {
        bad(at, e.to_string())
    } else {
        bad(format!("{at}.{field}"), e.to_string())
    }
}

fn parse_guid(field: &str, value: &str) -> Result<Uuid, FixtureError> {
    Uuid::try_parse(value.trim()).map_err(|_| bad(field, format!("'{value}' is not a GUID")))
}

fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, FixtureError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| bad(field, format!("'{value}' is not an RFC 3339 time")))
}

fn check_permission(field: &str, name: &str) -> Result<(), FixtureError> {
    if permissions::is_well_formed(name) {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("'{name}' is not a permission name (expected e.g. User.Read.All)"),
        ))
    }
}

fn certificate(field: &str, pem: &str) -> Result<ClientCertificate, FixtureError> {
    ClientCertificate::from_pem(pem).map_err(|e| bad(field, e.to_string()))
}

impl FixtureApp {
    fn registration(&self, at: &str) -> Result<AppRegistration, FixtureError> {
        let client_id = parse_guid(&format!("{at}.client_id"), &self.client_id)?;
        let display_name = self.display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 256 {
            return Err(bad(
                format!("{at}.display_name"),
                "must be 1 to 256 characters",
            ));
        }
        let mut secrets = Vec::new();
        for (i, secret) in self.secrets.iter().enumerate() {
            // Never echo the secret itself, not even in an error.
            if secret.0.is_empty() || secret.0.len() > 1024 {
                return Err(bad(
                    format!("{at}.secrets[{i}]"),
                    "a secret must be 1 to 1024 bytes",
                ));
            }
            secrets.push(SecretHash::of(&secret.0));
        }
        for (i, hex) in self.secret_sha256.iter().enumerate() {
            secrets.push(SecretHash::from_hex(hex).ok_or_else(|| {
                bad(
                    format!("{at}.secret_sha256[{i}]"),
                    "expected 64 hexadecimal digits (the SHA-256 of a secret)",
                )
            })?);
        }
        for (i, uri) in self.redirect_uris.iter().enumerate() {
            check_redirect_uri(uri).map_err(|why| {
                bad(
                    format!("{at}.redirect_uris[{i}]"),
                    format!("'{uri}': {why}"),
                )
            })?;
        }
        for (i, p) in self.permissions.iter().enumerate() {
            check_permission(&format!("{at}.permissions[{i}]"), p)?;
        }
        if self.certificates.len() > MAX_CERTIFICATES {
            return Err(bad(
                format!("{at}.certificates"),
                format!("at most {MAX_CERTIFICATES} certificates"),
            ));
        }
        let mut certificates: Vec<ClientCertificate> = Vec::new();
        for (i, pem) in self.certificates.iter().enumerate() {
            let field = format!("{at}.certificates[{i}]");
            let c = certificate(&field, pem)?;
            if certificates.iter().any(|o| o.x5t_s256() == c.x5t_s256()) {
                return Err(bad(field, format!("{} is declared twice", c.thumbprint())));
            }
            certificates.push(c);
        }
        let mut app_roles: Vec<AppRole> = Vec::new();
        for (i, role) in self.app_roles.iter().enumerate() {
            let role = role.role(&format!("{at}.app_roles[{i}]"))?;
            if app_roles
                .iter()
                .any(|r| r.id == role.id || r.value == role.value)
            {
                return Err(bad(
                    format!("{at}.app_roles[{i}]"),
                    "another role has the same id or value",
                ));
            }
            app_roles.push(role);
        }
        if self.federated.len() > MAX_FEDERATED {
            return Err(bad(
                format!("{at}.federated"),
                format!("at most {MAX_FEDERATED} federated credentials"),
            ));
        }
        let mut federated: Vec<FederatedCredential> = Vec::new();
        for (i, f) in self.federated.iter().enumerate() {
            let field = format!("{at}.federated[{i}]");
            let credential = f.credential(&field)?;
            // The issuer and subject pair is unique within an app, as in Entra.
            if federated
                .iter()
                .any(|o| o.issuer == credential.issuer && o.subject == credential.subject)
            {
                return Err(bad(
                    field,
                    "another credential has the same issuer and subject",
                ));
            }
            federated.push(credential);
        }
        Ok(AppRegistration {
            client_id,
            display_name: display_name.to_owned(),
            secrets,
            redirect_uris: self.redirect_uris.clone(),
            required_roles: self.permissions.clone(),
            app_roles,
            certificates,
            federated,
        })
    }

    fn of(app: &AppRegistration) -> FixtureApp {
        FixtureApp {
            client_id: app.client_id.to_string(),
            display_name: app.display_name.clone(),
            secrets: Vec::new(),
            secret_sha256: app.secrets.iter().map(SecretHash::to_hex).collect(),
            redirect_uris: app.redirect_uris.clone(),
            permissions: app.required_roles.clone(),
            certificates: app
                .certificates
                .iter()
                .map(ClientCertificate::pem)
                .collect(),
            app_roles: app.app_roles.iter().map(FixtureAppRole::of).collect(),
            federated: app.federated.iter().map(FixtureFederated::of).collect(),
        }
    }
}

impl FixtureAppRole {
    fn role(&self, at: &str) -> Result<AppRole, FixtureError> {
        let id = parse_guid(&format!("{at}.id"), &self.id)?;
        let value = &self.value;
        if !AppRole::is_valid_value(value) {
            return Err(bad(
                format!("{at}.value"),
                format!(
                    "'{value}': 1 to 250 printable characters without spaces, not starting with a dot"
                ),
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err(bad(format!("{at}.display_name"), "must not be empty"));
        }
        if !AppRole::are_valid_member_types(&self.allowed_member_types) {
            return Err(bad(
                format!("{at}.allowed_member_types"),
                "expected \"User\", \"Application\" or both",
            ));
        }
        Ok(AppRole {
            id,
            value: value.clone(),
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            allowed_member_types: self.allowed_member_types.clone(),
        })
    }

    fn of(role: &AppRole) -> FixtureAppRole {
        FixtureAppRole {
            id: role.id.to_string(),
            value: role.value.clone(),
            display_name: role.display_name.clone(),
            description: role.description.clone(),
            allowed_member_types: role.allowed_member_types.clone(),
        }
    }
}

impl FixtureFederated {
    fn credential(&self, at: &str) -> Result<FederatedCredential, FixtureError> {
        for (name, value) in [
            ("issuer", &self.issuer),
            ("subject", &self.subject),
            ("audience", &self.audience),
        ] {
            if value.trim().is_empty() || value.len() > MAX_FEDERATED_FIELD {
                return Err(bad(
                    format!("{at}.{name}"),
                    format!("must be 1 to {MAX_FEDERATED_FIELD} characters"),
                ));
            }
        }
        Ok(FederatedCredential {
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
            audience: self.audience.clone(),
            certificate: certificate(&format!("{at}.certificate"), &self.certificate)?,
        })
    }

    fn of(f: &FederatedCredential) -> FixtureFederated {
        FixtureFederated {
            issuer: f.issuer.clone(),
            subject: f.subject.clone(),
            audience: f.audience.clone(),
            certificate: f.certificate.pem(),
        }
    }
}

impl FixtureTenant {
    fn tenant(
        &self,
        at: &str,
        directory: &Directory,
        now: OffsetDateTime,
    ) -> Result<Tenant, FixtureError> {
        let id = parse_guid(&format!("{at}.id"), &self.id)?;
        let display_name = self.display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 256 {
            return Err(bad(
                format!("{at}.display_name"),
                "must be 1 to 256 characters",
            ));
        }
        let domain = self.domain.trim().to_ascii_lowercase();
        if !domain.ends_with(".onmicrosoft.com") || !is_dns_name(&domain) {
            return Err(bad(
                format!("{at}.domain"),
                format!(
                    "'{domain}' must be a *.onmicrosoft.com name; put custom domains in verified_domains"
                ),
            ));
        }
        let mut custom_domains = Vec::new();
        for (i, d) in self.verified_domains.iter().enumerate() {
            let d = d.trim().to_ascii_lowercase();
            if !is_dns_name(&d) {
                return Err(bad(
                    format!("{at}.verified_domains[{i}]"),
                    format!("'{d}' is not a valid domain name"),
                ));
            }
            custom_domains.push(d);
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(bad(
                format!("{at}.country"),
                format!(
                    "'{}' is not a two-letter country code such as US",
                    self.country
                ),
            ));
        }
        if self.user_count > MAX_USERS {
            return Err(bad(
                format!("{at}.user_count"),
                format!("at most {MAX_USERS}"),
            ));
        }
        let created_at = match &self.created_at {
            Some(t) => parse_time(&format!("{at}.created_at"), t)?,
            None => now,
        };
        let mut consents: Vec<ServicePrincipal> = Vec::new();
        let mut apps_seen = BTreeSet::new();
        for (i, c) in self.consents.iter().enumerate() {
            let field = format!("{at}.consents[{i}]");
            let sp = c.service_principal(&field, directory, now)?;
            if !apps_seen.insert(sp.app_id) {
                return Err(bad(
                    format!("{field}.client_id"),
                    format!("the tenant already consented to {}", sp.app_id),
                ));
            }
            consents.push(sp);
        }
        let mut tenant = Tenant::new(
            NewTenant {
                id,
                display_name: display_name.to_owned(),
                initial_domain: domain,
                custom_domains,
                country_letter_code: self.country.clone(),
                city: self.city.clone(),
                user_count: self.user_count,
            },
            now,
            consents,
        );
        tenant.created_at = created_at;
        Ok(tenant)
    }

    fn of(t: &Tenant) -> FixtureTenant {
        FixtureTenant {
            id: t.id.to_string(),
            display_name: t.display_name.clone(),
            domain: t.initial_domain.clone(),
            verified_domains: t.custom_domains.clone(),
            country: t.country_letter_code.clone(),
            city: t.city.clone(),
            user_count: t.user_count,
            created_at: Some(rfc3339_seconds(t.created_at)),
            user_consent: None,
            consents: t.consents.iter().map(FixtureConsent::of).collect(),
            users: Vec::new(),
        }
    }
}

impl FixtureConsent {
    fn service_principal(
        &self,
        at: &str,
        directory: &Directory,
        now: OffsetDateTime,
    ) -> Result<ServicePrincipal, FixtureError> {
        let field = format!("{at}.client_id");
        let app_id = parse_guid(&field, &self.client_id)?;
        let app = directory
            .app(app_id)
            .ok_or_else(|| bad(&field, format!("no app in apps has client id {app_id}")))?;
        let roles = match &self.roles {
            Some(roles) => {
                for (i, r) in roles.iter().enumerate() {
                    check_permission(&format!("{at}.roles[{i}]"), r)?;
                }
                roles.clone()
            }
            None => app.required_roles.clone(),
        };
        let mut sp = ServicePrincipal::new(app_id, roles, now);
        if let Some(id) = &self.service_principal_id {
            sp.object_id = parse_guid(&format!("{at}.service_principal_id"), id)?;
        }
        if let Some(t) = &self.consented_at {
            sp.consented_at = parse_time(&format!("{at}.consented_at"), t)?;
        }
        Ok(sp)
    }

    fn of(sp: &ServicePrincipal) -> FixtureConsent {
        FixtureConsent {
            client_id: sp.app_id.to_string(),
            roles: Some(sp.roles.iter().cloned().collect()),
            service_principal_id: Some(sp.object_id.to_string()),
            consented_at: Some(rfc3339_seconds(sp.consented_at)),
        }
    }
}

/// What the directory starts from, and what `POST /_emulator/reset` goes back to: a
/// fixture, or the app of the command-line flags with the seeded organisations; then the
/// generated tenants either way.
#[derive(Debug, Clone)]
pub struct Origin {
    pub fixture: Option<Fixture>,
    /// The app the flags describe, when there is no fixture.
    pub default_app: AppRegistration,
    pub seed: bool,
    pub generate_tenants: u32,
    pub users_per_generated_tenant: u32,
}

impl Origin {
    /// A new directory and sign-in users as the emulator started with. Work proportional
    /// to the tenants: call it off the workers.
    pub fn world(&self, now: OffsetDateTime) -> anyhow::Result<World> {
        let World {
            mut directory,
            accounts,
        } = match &self.fixture {
            Some(fixture) => fixture.world(now).context("the fixture")?,
            None => {
                let mut directory = Directory::new(self.default_app.clone());
                let mut accounts = Accounts::new();
                if self.seed {
                    for tenant in seed::seeded_tenants() {
                        let id = directory
                            .insert(tenant, now)
                            .context("seeding the directory")?
                            .id;
                        let tenant = directory.tenant(id).context("seeding the directory")?;
                        for account in users::seeded_accounts(tenant) {
                            accounts
                                .add(&directory, tenant, account)
                                .context("seeding the sign-in users")?;
                        }
                    }
                }
                World {
                    directory,
                    accounts,
                }
            }
        };
        let count = u64::from(self.generate_tenants);
        let first = directory.reserve_numbers(count);
        for n in first..first + count {
            let tenant = seed::generated_tenant(n, self.users_per_generated_tenant);
            directory
                .insert(tenant, now)
                .context("generating tenants")?;
        }
        Ok(World {
            directory,
            accounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "11111111-2222-4333-8444-555555555555";
    const TENANT: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

    fn minimal() -> String {
        format!(
            r#"
[[apps]]
client_id = "{APP}"
display_name = "Reporting"
secrets = ["s3cret"]
permissions = ["User.Read.All"]

[[tenants]]
id = "{TENANT}"
display_name = "Adatum"
domain = "adatum.onmicrosoft.com"

[[tenants.consents]]
client_id = "{APP}"
"#
        )
    }

    fn error_of(text: &str) -> FixtureError {
        Fixture::parse(text, Format::Toml)
            .unwrap()
            .world(OffsetDateTime::now_utc())
            .unwrap_err()
    }

    #[test]
    fn a_minimal_fixture_makes_its_directory() {
        let fixture = Fixture::parse(&minimal(), Format::Toml).unwrap();
        let dir = fixture.directory(OffsetDateTime::now_utc()).unwrap();
        let app = dir.primary_app();
        assert!(app.accepts_secret("s3cret"));
        let tenant = dir.tenant(Uuid::parse_str(TENANT).unwrap()).unwrap();
        assert_eq!(tenant.user_count, 25);
        assert_eq!(tenant.country_letter_code, "US");
        let sp = tenant.consent(app.client_id).unwrap();
        assert_eq!(sp.roles.iter().collect::<Vec<_>>(), ["User.Read.All"]);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (minimal().replace(APP, "nope"), "apps[0].client_id"),
            (
                minimal().replace(
                    "permissions = [\"User.Read.All\"]",
                    "redirect_uris = [\"ftp://x.example/cb\"]",
                ),
                "apps[0].redirect_uris[0]",
            ),
            (
                minimal().replace("adatum.onmicrosoft.com", "adatum.com"),
                "tenants[0].domain",
            ),
            (
                minimal().replace(
                    "[[tenants.consents]]\nclient_id = \"11111111-2222-4333-8444-555555555555\"",
                    "[[tenants.consents]]\nclient_id = \"99999999-2222-4333-8444-555555555555\"",
                ),
                "tenants[0].consents[0].client_id",
            ),
            (
                minimal().replace(
                    "domain = ",
                    "users = [{ display_name = \"A\", user_principal_name = \"a@adatum.com\" }]\ndomain = ",
                ),
                "tenants[0].users[0].user_principal_name",
            ),
            (
                minimal().replace(
                    "domain = ",
                    "users = [{ display_name = \"A\", user_principal_name = \"a@adatum.onmicrosoft.com\", app_roles = [{ value = \"Nope\" }] }]\ndomain = ",
                ),
                "tenants[0].users[0].app_roles",
            ),
            (
                minimal().replace("secrets = [\"s3cret\"]", "secret_sha256 = [\"abc\"]"),
                "apps[0].secret_sha256[0]",
            ),
        ];
        for (text, field) in cases {
            assert_eq!(error_of(&text).field, field, "{text}");
        }
        let twice = format!(
            "{}\n{}",
            minimal(),
            minimal().split("[[tenants]]").next().unwrap()
        );
        assert_eq!(error_of(&twice).field, "apps[1].client_id");
        let no_apps = minimal().split("[[apps]]").next().unwrap().to_owned();
        assert_eq!(error_of(&no_apps).field, "apps");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = Fixture::parse(&minimal().replace("secrets", "secretz"), Format::Toml)
            .unwrap_err()
            .to_string();
        assert!(err.contains("secretz"), "{err}");
        let json = r#"{"apps": [], "tenant": []}"#;
        let err = Fixture::parse(json, Format::Json).unwrap_err().to_string();
        assert!(err.contains("tenant"), "{err}");
    }

    #[test]
    fn an_export_carries_hashes_not_secrets_and_loads_back_the_same() {
        let now = OffsetDateTime::now_utc();
        let dir = Fixture::parse(&minimal(), Format::Toml)
            .unwrap()
            .directory(now)
            .unwrap();
        let exported = Fixture::export(dir.apps(), dir.snapshot(), &Accounts::new());
        let toml_text = toml::to_string(&exported).unwrap();
        let json_text = serde_json::to_string(&exported).unwrap();
        assert!(!toml_text.contains("s3cret") && !json_text.contains("s3cret"));
        assert!(toml_text.contains(&SecretHash::of("s3cret").to_hex()));

        for back in [
            Fixture::parse(&toml_text, Format::Toml).unwrap(),
            Fixture::parse(&json_text, Format::Json).unwrap(),
        ] {
            let again = back.directory(now).unwrap();
            assert!(again.primary_app().accepts_secret("s3cret"));
            let exported_again = Fixture::export(again.apps(), again.snapshot(), &Accounts::new());
            assert_eq!(
                serde_json::to_value(&exported_again).unwrap(),
                serde_json::to_value(&exported).unwrap()
            );
        }
    }

    #[test]
    fn users_with_roles_and_a_policy_round_trip() {
        let text = minimal()
            .replace(
                "[[tenants]]",
                r#"[[apps.app_roles]]
id = "7d3b1f0e-2c4a-4e8b-9f6d-5a1c3e7b9d20"
value = "Reports.Read"
display_name = "Read reports"

[[tenants]]"#,
            )
            .replace(
                "domain = \"adatum.onmicrosoft.com\"",
                r#"domain = "adatum.onmicrosoft.com"
user_consent = "none"

[[tenants.users]]
display_name = "Megan Bowen"
user_principal_name = "Megan@adatum.onmicrosoft.com"
admin = true
app_roles = [{ value = "Reports.Read" }]
"#,
            );
        let now = OffsetDateTime::now_utc();
        let world = Fixture::parse(&text, Format::Toml)
            .unwrap()
            .world(now)
            .unwrap();
        let megan = world
            .accounts
            .by_name("megan@adatum.onmicrosoft.com")
            .unwrap();
        assert!(megan.admin);
        assert_eq!(
            users::role_values(megan, world.directory.primary_app()),
            ["Reports.Read"]
        );
        let tenant = Uuid::parse_str(TENANT).unwrap();
        assert_eq!(world.accounts.policy(tenant), UserConsentPolicy::None);

        let exported = Fixture::export(
            world.directory.apps(),
            world.directory.snapshot(),
            &world.accounts,
        );
        let toml_text = toml::to_string(&exported).unwrap();
        let again = Fixture::parse(&toml_text, Format::Toml)
            .unwrap()
            .world(now)
            .unwrap();
        let back = Fixture::export(
            again.directory.apps(),
            again.directory.snapshot(),
            &again.accounts,
        );
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&exported).unwrap()
        );
        assert_eq!(exported.tenants[0].users[0].id, Some(megan.id.to_string()));
    }
}

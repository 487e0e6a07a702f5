//! The emulated directory: the app registration, the tenants, and the service principal the
//! app has in each tenant once an administrator consents.
//!
//! Everything here is plain data and pure methods; locking and HTTP live in the routes.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::certificate::ClientCertificate;
use super::permissions;
use super::stats::TenantKey;

/// Users a tenant may have.
pub const MAX_USERS: u32 = 100_000;
/// Enough certificates for any rotation scenario; bounded like everything else here.
pub const MAX_CERTIFICATES: usize = 100;
/// Entra's limit of federated identity credentials per application
/// (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations).
pub const MAX_FEDERATED: usize = 20;
/// The audience Entra suggests for federated credentials, and the default here.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Entra's limit on a federated credential's issuer, subject and audience (Graph's
/// federatedIdentityCredential resource type).
pub const MAX_FEDERATED_FIELD: usize = 600;

/// A multi-tenant application registered in the emulator. The first is the one the
/// command-line flags describe and `/_emulator/app` shows; a fixture may declare more.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    pub client_id: Uuid,
    pub display_name: String,
    /// Client secrets, kept as their SHA-256 only: what the fixture export shows.
    pub secrets: Vec<SecretHash>,
    pub redirect_uris: Vec<String>,
    /// The application permissions the app requests, granted on admin consent.
    pub required_roles: Vec<String>,
    /// The roles the app defines (its manifest's `appRoles`), for users and other apps.
    pub app_roles: Vec<AppRole>,
    /// Certificates whose keys may sign client assertions; the secret keeps working
    /// beside them, as on a real app registration.
    pub certificates: Vec<ClientCertificate>,
    /// External identity providers whose tokens the app accepts as client assertions.
    pub federated: Vec<FederatedCredential>,
}

impl AppRegistration {
    /// Whether `presented` is one of the app's secrets. Every hash is compared, each in
    /// constant time, so response timing does not reveal which or how much matched.
    pub fn accepts_secret(&self, presented: &str) -> bool {
        let presented = SecretHash::of(presented);
        self.secrets
            .iter()
            .fold(false, |found, s| found | s.matches(&presented))
    }

    /// The declared role whose value (case-sensitive, as in the manifest) or id is `key`.
    pub fn role(&self, key: &str) -> Option<&AppRole> {
        let id = Uuid::try_parse(key).ok();
        self.app_roles
            .iter()
            .find(|r| r.value == key || Some(r.id) == id)
    }
}

/// The SHA-256 of a client secret. Secrets are long random strings (Entra makes 40
/// characters), so an unsalted hash is enough to keep them out of exports and listings.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> SecretHash {
        let mut out = [0u8; 32];
        out.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA256, secret.as_bytes()).as_ref(),
        );
        SecretHash(out)
    }

    /// From 64 hexadecimal digits, as the fixture export writes them.
    pub fn from_hex(hex: &str) -> Option<SecretHash> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(SecretHash(out))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn matches(&self, other: &SecretHash) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// App roles per app registration (Entra allows 1,200 in the manifest).
pub const MAX_APP_ROLES: usize = 1200;

/// A role an app defines (Microsoft Graph's `appRole`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRole {
    pub id: Uuid,
    /// What tokens carry in `roles`, e.g. `Tasks.Admin`.
    pub value: String,
    pub display_name: String,
    pub description: String,
    /// `User`, `Application`, or both.
    pub allowed_member_types: Vec<String>,
}

impl AppRole {
    /// Entra's rule for a role's value: 1 to 250 printable characters without spaces, not
    /// starting with a dot.
    pub fn is_valid_value(value: &str) -> bool {
        !value.is_empty()
            && value.len() <= 250
            && !value.starts_with('.')
            && value.bytes().all(|b| b.is_ascii_graphic())
    }

    /// Whether `types` is `User`, `Application` or both.
    pub fn are_valid_member_types(types: &[String]) -> bool {
        !types.is_empty() && types.iter().all(|t| t == "User" || t == "Application")
    }
}

/// A federated identity credential: tokens with exactly this issuer, subject and audience,
/// signed by the key of `certificate`, authenticate the app. (Entra fetches the issuer's
/// keys from its discovery document; the emulator is offline, so it is given the key.)
#[derive(Debug, Clone)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub certificate: ClientCertificate,
}

/// One organisation (a Microsoft Entra tenant).
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    /// The `*.onmicrosoft.com` domain every tenant has.
    pub initial_domain: String,
    /// Custom domains the organisation verified, e.g. `contoso.com`.
    pub custom_domains: Vec<String>,
    pub country_letter_code: String,
    pub city: String,
    pub created_at: OffsetDateTime,
    /// Users are generated on demand from the tenant id and an index, so that 100,000
    /// tenants cost memory for their counts only.
    pub user_count: u32,
    /// The service principals of the apps an administrator consented to, one per app.
    pub consents: Vec<ServicePrincipal>,
    /// Creation order, for stable listings.
    pub seq: u64,
}

/// An app's footprint in one tenant after admin consent.
#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    /// The client id of the app it stands for (Graph's `appId`).
    pub app_id: Uuid,
    pub object_id: Uuid,
    /// Granted application permissions; empty when an administrator removed them but kept
    /// the service principal (tokens are then issued without a `roles` claim).
    pub roles: BTreeSet<String>,
    pub consented_at: OffsetDateTime,
}

impl ServicePrincipal {
    /// The service principal of app `app_id` as a consent creates it, holding `roles`.
    pub fn new(
        app_id: Uuid,
        roles: impl IntoIterator<Item = String>,
        now: OffsetDateTime,
    ) -> ServicePrincipal {
        ServicePrincipal {
            app_id,
            object_id: Uuid::new_v4(),
            roles: roles.into_iter().collect(),
            consented_at: now,
        }
    }
}

impl Tenant {
    /// A tenant ready for [`Directory::insert_tenant`], built without touching the directory
    /// (and so without its lock); `consents` are the service principals it has already.
    pub fn new(new: NewTenant, now: OffsetDateTime, consents: Vec<ServicePrincipal>) -> Tenant {
        Tenant {
            id: new.id,
            display_name: new.display_name,
            initial_domain: new.initial_domain,
            custom_domains: new.custom_domains,
            country_letter_code: new.country_letter_code,
            city: new.city,
            created_at: now,
            user_count: new.user_count,
            consents,
            seq: 0,
        }
    }

    /// The service principal of app `app_id`, if an administrator consented to it.
    pub fn consent(&self, app_id: Uuid) -> Option<&ServicePrincipal> {
        self.consents.iter().find(|sp| sp.app_id == app_id)
    }

    /// The initial domain first, then the custom ones.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.initial_domain.as_str())
            .chain(self.custom_domains.iter().map(|d| d.as_str()))
    }

    /// Where the tenant's users' mail goes: the first custom domain, else the initial one.
    pub fn default_domain(&self) -> &str {
        self.custom_domains.first().unwrap_or(&self.initial_domain)
    }
}

/// The `{tenant}` segment of an identity-platform URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRef {
    Id(Uuid),
    Domain(String),
    /// `organizations`: any work or school account; the admin says which tenant.
    Organizations,
    /// `common`: any account, personal ones included.
    Common,
    /// `consumers`: personal Microsoft accounts only, which have no admin to consent.
    Consumers,
}

impl TenantRef {
    /// Parses a path segment; `None` when it is neither a GUID nor a DNS name
    /// (Microsoft answers AADSTS900023).
    pub fn parse(segment: &str) -> Option<TenantRef> {
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            "organizations" => return Some(TenantRef::Organizations),
            "common" => return Some(TenantRef::Common),
            "consumers" => return Some(TenantRef::Consumers),
            _ => {}
        }
        if let Ok(id) = Uuid::try_parse(&lower) {
            return Some(TenantRef::Id(id));
        }
        is_dns_name(&lower).then_some(TenantRef::Domain(lower))
    }
}

/// A DNS name of at least two labels of letters, digits and inner hyphens.
pub fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Why a change to the directory was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("a tenant with id {0} already exists")]
    TenantExists(Uuid),
    #[error("the domain {0} is already verified by another tenant")]
    DomainTaken(String),
    #[error("'{0}' is not a valid domain name")]
    InvalidDomain(String),
    #[error("no tenant with id {0}")]
    NoSuchTenant(Uuid),
    #[error("the app has not been consented to in tenant {0}")]
    NotConsented(Uuid),
    #[error("'{0}' is not a permission name (expected e.g. User.Read.All)")]
    InvalidPermission(String),
    #[error("no app with client id {0} is registered")]
    NoSuchApp(Uuid),
    #[error("the app declares no role '{0}'")]
    NoSuchRole(String),
    #[error("the app already declares a role with value or id '{0}'")]
    RoleExists(String),
    #[error(
        "app role: {0} (a value of 1 to 250 printable characters without spaces, not starting with a dot; a display name; allowed_member_types \"User\", \"Application\" or both)"
    )]
    InvalidRole(String),
    #[error("an app declares at most {MAX_APP_ROLES} roles")]
    TooManyRoles,
}

/// What the directory needs to create a tenant; the seed module fills in the gaps.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub id: Uuid,
    pub display_name: String,
    pub initial_domain: String,
    pub custom_domains: Vec<String>,
    pub country_letter_code: String,
    pub city: String,
    pub user_count: u32,
}

/// The whole emulated world.
#[derive(Debug)]
pub struct Directory {
    /// Never empty: the first is the primary app (see [`AppRegistration`]).
    apps: Vec<AppRegistration>,
    /// Shared, so that [`Directory::snapshot`] copies pointers, not tenants; a change to a
    /// tenant that a snapshot still holds copies that one tenant ([`Arc::make_mut`]).
    tenants: HashMap<Uuid, Arc<Tenant>>,
    /// Lower-case domain → tenant, for `/{domain}/...` URLs.
    by_domain: HashMap<String, Uuid>,
    next_seq: u64,
}

impl Directory {
    pub fn new(app: AppRegistration) -> Directory {
        Directory::with_apps(app, Vec::new())
    }

    /// A directory with a primary app and `others` beside it.
    pub fn with_apps(primary: AppRegistration, others: Vec<AppRegistration>) -> Directory {
        let mut apps = Vec::with_capacity(1 + others.len());
        apps.push(primary);
        apps.extend(others);
        Directory {
            apps,
            tenants: HashMap::new(),
            by_domain: HashMap::new(),
            next_seq: 0,
        }
    }

    /// The app the command-line flags describe and `/_emulator/app` shows.
    pub fn primary_app(&self) -> &AppRegistration {
        &self.apps[0]
    }

    pub fn primary_app_mut(&mut self) -> &mut AppRegistration {
        &mut self.apps[0]
    }

    /// Every registered app, the primary first.
    pub fn apps(&self) -> &[AppRegistration] {
        &self.apps
    }

    pub fn app(&self, client_id: Uuid) -> Option<&AppRegistration> {
        self.apps.iter().find(|a| a.client_id == client_id)
    }

    /// Declares a role on app `app_id` (its manifest's `appRoles`).
    pub fn declare_role(
        &mut self,
        app_id: Uuid,
        role: AppRole,
    ) -> Result<&AppRole, DirectoryError> {
        if !AppRole::is_valid_value(&role.value) {
            return Err(DirectoryError::InvalidRole(format!(
                "value '{}'",
                role.value
            )));
        }
        if role.display_name.trim().is_empty() || role.display_name.chars().count() > 256 {
            return Err(DirectoryError::InvalidRole("display_name".into()));
        }
        if !AppRole::are_valid_member_types(&role.allowed_member_types) {
            return Err(DirectoryError::InvalidRole("allowed_member_types".into()));
        }
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.client_id == app_id)
            .ok_or(DirectoryError::NoSuchApp(app_id))?;
        if app
            .app_roles
            .iter()
            .any(|r| r.value == role.value || r.id == role.id)
        {
            return Err(DirectoryError::RoleExists(role.value));
        }
        if app.app_roles.len() >= MAX_APP_ROLES {
            return Err(DirectoryError::TooManyRoles);
        }
        app.app_roles.push(role);
        Ok(&app.app_roles[app.app_roles.len() - 1])
    }

    /// Removes app `app_id`'s role whose value or id is `key`; its assignments are the
    /// accounts' to forget.
    pub fn remove_role(&mut self, app_id: Uuid, key: &str) -> Result<AppRole, DirectoryError> {
        let app = self
            .apps
            .iter_mut()
            .find(|a| a.client_id == app_id)
            .ok_or(DirectoryError::NoSuchApp(app_id))?;
        let role = app
            .role(key)
            .cloned()
            .ok_or_else(|| DirectoryError::NoSuchRole(key.to_owned()))?;
        app.app_roles.retain(|r| r.id != role.id);
        Ok(role)
    }

    pub fn tenant(&self, id: Uuid) -> Option<&Tenant> {
        self.tenants.get(&id).map(|t| &**t)
    }

    /// The tenant a GUID or domain names; `None` for unknown ones and for the
    /// multi-tenant aliases.
    pub fn resolve(&self, tenant: &TenantRef) -> Option<&Tenant> {
        match tenant {
            TenantRef::Id(id) => self.tenant(*id),
            TenantRef::Domain(d) => self.by_domain.get(d).and_then(|id| self.tenant(*id)),
            _ => None,
        }
    }

    /// The id of the tenant a `{tenant}` segment names, if it names a known one.
    pub fn tenant_id(&self, segment: &str) -> Option<Uuid> {
        TenantRef::parse(segment)
            .and_then(|r| self.resolve(&r))
            .map(|t| t.id)
    }

    /// How request counts name the tenant of a `{tenant}` segment: its GUID when the
    /// segment names a known tenant, else the segment itself, in lower case.
    pub fn stats_key(&self, segment: &str) -> TenantKey {
        match self.tenant_id(segment) {
            Some(id) => TenantKey::Known(id.to_string()),
            None => TenantKey::Unknown(segment.to_ascii_lowercase()),
        }
    }

    /// Reserves `count` numbers no other tenant will be named with, for generated tenants
    /// built outside the lock, and makes room for that many tenants. Returns the first.
    pub fn reserve_numbers(&mut self, count: u64) -> u64 {
        let first = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(count);
        let room = usize::try_from(count).unwrap_or(0);
        self.tenants.reserve(room);
        self.by_domain.reserve(room);
        first
    }

    /// Tenants in the order they were created. Work proportional to all of them: under
    /// a lock every request takes, use [`Directory::snapshot`] or check
    /// [`Directory::tenant_count`] first.
    pub fn tenants(&self) -> Vec<&Tenant> {
        let mut all: Vec<&Tenant> = self.tenants.values().map(|t| &**t).collect();
        all.sort_by_key(|t| t.seq);
        all
    }

    pub fn tenant_count(&self) -> usize {
        self.tenants.len()
    }

    /// Every tenant as it is now, in no particular order, for work done after the lock is
    /// released (sort by `seq` for creation order): one pointer copied per tenant.
    pub fn snapshot(&self) -> Vec<Arc<Tenant>> {
        self.tenants.values().cloned().collect()
    }

    /// Checks a new tenant against the directory (and its own domains against each other)
    /// without changing anything.
    pub fn check_new(&self, tenant: &Tenant) -> Result<(), DirectoryError> {
        if self.tenants.contains_key(&tenant.id) {
            return Err(DirectoryError::TenantExists(tenant.id));
        }
        let mut seen = BTreeSet::new();
        for domain in tenant.domains() {
            if !is_dns_name(domain) {
                return Err(DirectoryError::InvalidDomain(domain.to_owned()));
            }
            if self.by_domain.contains_key(domain) || !seen.insert(domain) {
                return Err(DirectoryError::DomainTaken(domain.to_owned()));
            }
        }
        Ok(())
    }

    pub fn insert(
        &mut self,
        new: NewTenant,
        now: OffsetDateTime,
    ) -> Result<&Tenant, DirectoryError> {
        self.insert_tenant(Tenant::new(new, now, Vec::new()))
    }

    /// Adds a tenant built with [`Tenant::new`], after the checks of [`Directory::check_new`].
    pub fn insert_tenant(&mut self, mut tenant: Tenant) -> Result<&Tenant, DirectoryError> {
        self.check_new(&tenant)?;
        for domain in tenant.domains() {
            self.by_domain.insert(domain.to_owned(), tenant.id);
        }
        tenant.seq = self.next_seq;
        self.next_seq += 1;
        Ok(&**self.tenants.entry(tenant.id).or_insert(Arc::new(tenant)))
    }

    /// A tenant to change in place (copied first if a snapshot still holds it).
    fn tenant_mut(&mut self, id: Uuid) -> Result<&mut Tenant, DirectoryError> {
        self.tenants
            .get_mut(&id)
            .map(Arc::make_mut)
            .ok_or(DirectoryError::NoSuchTenant(id))
    }

    /// Deletes a tenant, as when an organisation leaves Microsoft Entra.
    pub fn remove(&mut self, id: Uuid) -> Result<Tenant, DirectoryError> {
        let tenant = self
            .tenants
            .remove(&id)
            .ok_or(DirectoryError::NoSuchTenant(id))?;
        for domain in tenant.domains() {
            self.by_domain.remove(domain);
        }
        Ok(Arc::unwrap_or_clone(tenant))
    }

    /// What "Accept" on the consent page does: creates app `app_id`'s service principal if
    /// needed and grants every permission the app currently requests (earlier grants are
    /// kept, as Microsoft keeps them).
    pub fn grant_consent(
        &mut self,
        id: Uuid,
        app_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<&Tenant, DirectoryError> {
        let required = self
            .app(app_id)
            .ok_or(DirectoryError::NoSuchApp(app_id))?
            .required_roles
            .clone();
        let tenant = self.tenant_mut(id)?;
        let at = match tenant.consents.iter().position(|sp| sp.app_id == app_id) {
            Some(at) => at,
            None => {
                tenant.consents.push(ServicePrincipal::new(app_id, [], now));
                tenant.consents.len() - 1
            }
        };
        let sp = &mut tenant.consents[at];
        sp.roles.extend(required);
        sp.consented_at = now;
        Ok(tenant)
    }

    /// Deletes app `app_id`'s service principal: its tokens for this tenant answer
    /// AADSTS700016 again.
    pub fn revoke_consent(&mut self, id: Uuid, app_id: Uuid) -> Result<&Tenant, DirectoryError> {
        self.app(app_id).ok_or(DirectoryError::NoSuchApp(app_id))?;
        let tenant = self.tenant_mut(id)?;
        tenant.consents.retain(|sp| sp.app_id != app_id);
        Ok(tenant)
    }

    /// Replaces the roles granted to app `app_id`; its service principal must exist.
    pub fn set_roles(
        &mut self,
        id: Uuid,
        app_id: Uuid,
        roles: Vec<String>,
    ) -> Result<&Tenant, DirectoryError> {
        if let Some(bad) = roles.iter().find(|r| !permissions::is_well_formed(r)) {
            return Err(DirectoryError::InvalidPermission(bad.clone()));
        }
        self.app(app_id).ok_or(DirectoryError::NoSuchApp(app_id))?;
        let tenant = self.tenant_mut(id)?;
        let sp = tenant
            .consents
            .iter_mut()
            .find(|sp| sp.app_id == app_id)
            .ok_or(DirectoryError::NotConsented(id))?;
        sp.roles = roles.into_iter().collect();
        Ok(tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        Directory::new(AppRegistration {
            client_id: Uuid::new_v4(),
            display_name: "app".into(),
            secrets: vec![SecretHash::of("s")],
            redirect_uris: vec![],
            required_roles: vec!["User.Read.All".into()],
            app_roles: vec![],
            certificates: vec![],
            federated: vec![],
        })
    }

    fn new_tenant(domain: &str) -> NewTenant {
        NewTenant {
            id: Uuid::new_v4(),
            display_name: "T".into(),
            initial_domain: domain.into(),
            custom_domains: vec![],
            country_letter_code: "US".into(),
            city: "Redmond".into(),
            user_count: 3,
        }
    }

    #[test]
    fn parses_tenant_segments() {
        let id = Uuid::new_v4();
        assert_eq!(
            TenantRef::parse(&id.to_string().to_uppercase()),
            Some(TenantRef::Id(id))
        );
        assert_eq!(
            TenantRef::parse("Contoso.onmicrosoft.com"),
            Some(TenantRef::Domain("contoso.onmicrosoft.com".into()))
        );
        assert_eq!(
            TenantRef::parse("organizations"),
            Some(TenantRef::Organizations)
        );
        assert_eq!(TenantRef::parse("COMMON"), Some(TenantRef::Common));
        assert_eq!(TenantRef::parse("not a tenant"), None);
        assert_eq!(TenantRef::parse("nodot"), None);
        assert_eq!(TenantRef::parse("-bad.com"), None);
    }

    #[test]
    fn resolves_by_id_and_domain_and_forgets_removed_tenants() {
        let mut dir = directory();
        let now = OffsetDateTime::now_utc();
        let id = dir.insert(new_tenant("a.onmicrosoft.com"), now).unwrap().id;
        assert!(dir.resolve(&TenantRef::Id(id)).is_some());
        assert!(
            dir.resolve(&TenantRef::Domain("a.onmicrosoft.com".into()))
                .is_some()
        );
        assert_eq!(
            dir.insert(new_tenant("a.onmicrosoft.com"), now)
                .unwrap_err(),
            DirectoryError::DomainTaken("a.onmicrosoft.com".into())
        );
        dir.remove(id).unwrap();
        assert!(
            dir.resolve(&TenantRef::Domain("a.onmicrosoft.com".into()))
                .is_none()
        );
    }

    #[test]
    fn consent_grants_required_roles_and_keeps_earlier_grants() {
        let mut dir = directory();
        let now = OffsetDateTime::now_utc();
        let id = dir.insert(new_tenant("a.onmicrosoft.com"), now).unwrap().id;
        let app = dir.primary_app().client_id;
        assert_eq!(
            dir.set_roles(id, app, vec![]).unwrap_err(),
            DirectoryError::NotConsented(id)
        );
        dir.grant_consent(id, app, now).unwrap();
        dir.set_roles(id, app, vec!["Mail.Read".into()]).unwrap();
        let roles = &dir
            .grant_consent(id, app, now)
            .unwrap()
            .consent(app)
            .unwrap()
            .roles;
        assert_eq!(
            roles.iter().collect::<Vec<_>>(),
            ["Mail.Read", "User.Read.All"]
        );
        let stranger = Uuid::new_v4();
        assert_eq!(
            dir.grant_consent(id, stranger, now).unwrap_err(),
            DirectoryError::NoSuchApp(stranger)
        );
        assert!(dir.revoke_consent(id, app).unwrap().consent(app).is_none());
    }

    #[test]
    fn secrets_are_kept_as_hashes_and_any_of_them_is_accepted() {
        let mut dir = directory();
        dir.primary_app_mut().secrets.push(SecretHash::of("second"));
        let app = dir.primary_app();
        assert!(app.accepts_secret("s") && app.accepts_secret("second"));
        assert!(!app.accepts_secret("S") && !app.accepts_secret(""));
        let hex = SecretHash::of("s").to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(SecretHash::from_hex(&hex), Some(SecretHash::of("s")));
        assert_eq!(SecretHash::from_hex("zz"), None);
        assert_eq!(format!("{:?}", SecretHash::of("s")), "SecretHash(..)");
    }

    #[test]
    fn a_snapshot_keeps_what_it_saw_while_the_directory_changes() {
        let mut dir = directory();
        let now = OffsetDateTime::now_utc();
        let a = dir.insert(new_tenant("a.onmicrosoft.com"), now).unwrap().id;
        let b = dir.insert(new_tenant("b.onmicrosoft.com"), now).unwrap().id;
        let snapshot = dir.snapshot();
        let app = dir.primary_app().client_id;

        dir.grant_consent(a, app, now).unwrap();
        dir.remove(b).unwrap();
        dir.insert(new_tenant("c.onmicrosoft.com"), now).unwrap();

        let mut seen: Vec<_> = snapshot
            .iter()
            .map(|t| (t.seq, t.id, t.consent(app).is_some()))
            .collect();
        seen.sort();
        assert_eq!(seen, [(0, a, false), (1, b, false)]);
        assert!(dir.tenant(a).unwrap().consent(app).is_some());
        assert!(dir.tenant(b).is_none());
        assert_eq!(dir.tenant_count(), 2);
    }
}

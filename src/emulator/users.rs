//! The people who can sign in: user accounts per tenant (administrator or not), the app roles
//! the app registration declares and their assignments to users, and the delegated
//! permissions users and administrators granted the app.
//!
//! Graph's `GET /users` lists generated users that no one signs in as; these accounts are
//! few, named, and kept apart so that a directory of 100,000 tenants costs nothing more.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ring::digest;
use uuid::Uuid;

use super::directory::{Tenant, is_dns_name};

/// An app role declared on the app registration (`appRoles` in its manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRole {
    pub id: Uuid,
    /// What the `roles` claim carries, e.g. `Consentry.Operator`.
    pub value: String,
    pub display_name: String,
}

/// A user account of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The object id: the `oid` claim.
    pub id: Uuid,
    pub tenant: Uuid,
    pub display_name: String,
    /// The sign-in name: `preferred_username`.
    pub user_principal_name: String,
    pub mail: Option<String>,
    /// Holds an administrator role that may consent for the whole organisation
    /// (Global, Privileged Role or Cloud Application Administrator).
    pub admin: bool,
    /// Ids of the app roles assigned to this user.
    pub app_roles: BTreeSet<Uuid>,
}

/// What users who are not administrators may consent to on their own (the tenant's
/// "User consent for applications" setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserConsentPolicy {
    /// "Do not allow user consent": an administrator must consent to everything.
    None,
    /// "Allow user consent for ... selected permissions": the permissions Microsoft
    /// classifies as low impact ([`LOW_IMPACT`]). The emulator's default.
    LowImpact,
    /// Users may consent to any delegated permission.
    All,
}

/// The OpenID Connect scopes and `User.Read`, which Microsoft suggests classifying as low
/// impact (learn.microsoft.com, "Configure permission classifications").
pub const LOW_IMPACT: &[&str] = &["openid", "profile", "email", "offline_access", "User.Read"];

/// The delegated permissions the app registration lists (its static permissions), which an
/// admin consent through `/adminconsent` grants for every user of the tenant.
pub const DEFAULT_DELEGATED: &[&str] =
    &["openid", "profile", "email", "offline_access", "User.Read"];

/// Why a change to the accounts was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("a user with id {0} already exists")]
    UserExists(Uuid),
    #[error("the user name {0} is already taken")]
    NameTaken(String),
    #[error(
        "'{0}' is not a user principal name (expected name@domain, with a domain of the tenant)"
    )]
    InvalidName(String),
    #[error("no user {0} in this tenant")]
    NoSuchUser(String),
    #[error("the app declares no role '{0}'")]
    NoSuchRole(String),
    #[error("the app already declares a role with value or id '{0}'")]
    RoleExists(String),
    #[error("'{0}' is not an app role value (letters, digits and . _ - :, at most 120)")]
    InvalidRole(String),
    #[error("display_name must be 1 to 256 characters")]
    InvalidDisplayName,
    #[error("a tenant holds at most {0} sign-in users")]
    TooMany(usize),
}

/// Sign-in users per tenant: enough for any test, bounded like everything else.
pub const MAX_USERS_PER_TENANT: usize = 1000;
/// App roles per app registration (Entra allows 1,200 in the manifest).
pub const MAX_APP_ROLES: usize = 1200;

/// A new account, as the control API describes it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: Option<Uuid>,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub admin: bool,
    pub roles: Vec<String>,
}

/// Everyone who can sign in, and what they consented to.
#[derive(Debug, Default)]
pub struct Accounts {
    pub app_roles: Vec<AppRole>,
    /// The app's static delegated permissions.
    pub delegated: Vec<String>,
    users: HashMap<Uuid, Account>,
    /// Lower-case user principal name → user id.
    by_name: HashMap<String, Uuid>,
    /// Delegated permissions one user granted the app (consentType `Principal`).
    user_grants: HashMap<(Uuid, Uuid), BTreeSet<String>>,
    /// Delegated permissions an administrator granted for everyone (`AllPrincipals`).
    org_grants: HashMap<Uuid, BTreeSet<String>>,
    policies: HashMap<Uuid, UserConsentPolicy>,
}

impl Accounts {
    pub fn new() -> Accounts {
        Accounts {
            delegated: DEFAULT_DELEGATED.iter().map(|s| (*s).to_owned()).collect(),
            ..Accounts::default()
        }
    }

    pub fn user(&self, id: Uuid) -> Option<&Account> {
        self.users.get(&id)
    }

    /// The account signing in with `name` (case-insensitive), of any tenant.
    pub fn by_name(&self, name: &str) -> Option<&Account> {
        self.by_name
            .get(&name.trim().to_ascii_lowercase())
            .and_then(|id| self.users.get(id))
    }

    /// A tenant's users, by user principal name.
    pub fn of_tenant(&self, tenant: Uuid) -> Vec<&Account> {
        let mut users: Vec<&Account> = self.users.values().filter(|u| u.tenant == tenant).collect();
        users.sort_by(|a, b| a.user_principal_name.cmp(&b.user_principal_name));
        users
    }

    /// Every user, by tenant then name.
    pub fn all(&self) -> Vec<&Account> {
        let mut users: Vec<&Account> = self.users.values().collect();
        users.sort_by(|a, b| {
            (a.tenant, &a.user_principal_name).cmp(&(b.tenant, &b.user_principal_name))
        });
        users
    }

    pub fn count(&self) -> usize {
        self.users.len()
    }

    /// Creates an account in `tenant`; its user principal name must be on one of the
    /// tenant's domains.
    pub fn add(&mut self, tenant: &Tenant, new: NewAccount) -> Result<&Account, AccountError> {
        let name = new.user_principal_name.trim().to_ascii_lowercase();
        let domain_ok = name.split_once('@').is_some_and(|(local, domain)| {
            is_local_part(local) && is_dns_name(domain) && tenant.domains().any(|d| d == domain)
        });
        if !domain_ok {
            return Err(AccountError::InvalidName(new.user_principal_name));
        }
        let display_name = new.display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 256 {
            return Err(AccountError::InvalidDisplayName);
        }
        if let Some(mail) = &new.mail
            && !mail
                .split_once('@')
                .is_some_and(|(l, d)| is_local_part(l) && is_dns_name(&d.to_ascii_lowercase()))
        {
            return Err(AccountError::InvalidName(mail.clone()));
        }
        if self.by_name.contains_key(&name) {
            return Err(AccountError::NameTaken(name));
        }
        let id = new.id.unwrap_or_else(Uuid::new_v4);
        if self.users.contains_key(&id) {
            return Err(AccountError::UserExists(id));
        }
        if self
            .users
            .values()
            .filter(|u| u.tenant == tenant.id)
            .count()
            >= MAX_USERS_PER_TENANT
        {
            return Err(AccountError::TooMany(MAX_USERS_PER_TENANT));
        }
        let app_roles = self.role_ids(&new.roles)?;
        self.by_name.insert(name.clone(), id);
        Ok(self.users.entry(id).or_insert(Account {
            id,
            tenant: tenant.id,
            display_name: display_name.to_owned(),
            user_principal_name: name,
            mail: new.mail.map(|m| m.to_ascii_lowercase()),
            admin: new.admin,
            app_roles,
        }))
    }

    /// Deletes a user of `tenant`, with the consents they gave.
    pub fn remove(&mut self, tenant: Uuid, id: Uuid) -> Result<Account, AccountError> {
        match self.users.get(&id) {
            Some(u) if u.tenant == tenant => {}
            _ => return Err(AccountError::NoSuchUser(id.to_string())),
        }
        let user = self
            .users
            .remove(&id)
            .ok_or_else(|| AccountError::NoSuchUser(id.to_string()))?;
        self.by_name.remove(&user.user_principal_name);
        self.user_grants.remove(&(tenant, id));
        Ok(user)
    }

    /// Forgets a deleted tenant's users and grants.
    pub fn remove_tenant(&mut self, tenant: Uuid) {
        let gone: Vec<Uuid> = self
            .users
            .values()
            .filter(|u| u.tenant == tenant)
            .map(|u| u.id)
            .collect();
        for id in gone {
            let _ = self.remove(tenant, id);
        }
        self.forget_grants(tenant);
        self.policies.remove(&tenant);
    }

    /// What deleting the app's service principal does to delegated grants: all go.
    pub fn forget_grants(&mut self, tenant: Uuid) {
        self.org_grants.remove(&tenant);
        self.user_grants.retain(|(t, _), _| *t != tenant);
    }

    /// Replaces a user's app role assignments (by role value or id).
    pub fn assign_roles(
        &mut self,
        tenant: Uuid,
        id: Uuid,
        roles: &[String],
    ) -> Result<&Account, AccountError> {
        let ids = self.role_ids(roles)?;
        match self.users.get_mut(&id) {
            Some(u) if u.tenant == tenant => {
                u.app_roles = ids;
                Ok(u)
            }
            _ => Err(AccountError::NoSuchUser(id.to_string())),
        }
    }

    fn role_ids(&self, roles: &[String]) -> Result<BTreeSet<Uuid>, AccountError> {
        roles
            .iter()
            .map(|r| {
                self.role(r)
                    .map(|role| role.id)
                    .ok_or_else(|| AccountError::NoSuchRole(r.clone()))
            })
            .collect()
    }

    /// The declared role whose value (case-sensitive, as in the manifest) or id is `key`.
    pub fn role(&self, key: &str) -> Option<&AppRole> {
        let id = Uuid::try_parse(key).ok();
        self.app_roles
            .iter()
            .find(|r| r.value == key || Some(r.id) == id)
    }

    pub fn declare_role(
        &mut self,
        value: String,
        display_name: Option<String>,
        id: Option<Uuid>,
    ) -> Result<&AppRole, AccountError> {
        let well_formed = !value.is_empty()
            && value.len() <= 120
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
        if !well_formed {
            return Err(AccountError::InvalidRole(value));
        }
        let id = id.unwrap_or_else(Uuid::new_v4);
        if self
            .app_roles
            .iter()
            .any(|r| r.value == value || r.id == id)
        {
            return Err(AccountError::RoleExists(value));
        }
        if self.app_roles.len() >= MAX_APP_ROLES {
            return Err(AccountError::TooMany(MAX_APP_ROLES));
        }
        let display_name = display_name
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty() && d.chars().count() <= 256)
            .unwrap_or_else(|| value.clone());
        self.app_roles.push(AppRole {
            id,
            value,
            display_name,
        });
        Ok(&self.app_roles[self.app_roles.len() - 1])
    }

    /// Removes a declared role and every assignment of it.
    pub fn remove_role(&mut self, key: &str) -> Result<AppRole, AccountError> {
        let role = self
            .role(key)
            .cloned()
            .ok_or_else(|| AccountError::NoSuchRole(key.to_owned()))?;
        self.app_roles.retain(|r| r.id != role.id);
        for user in self.users.values_mut() {
            user.app_roles.remove(&role.id);
        }
        Ok(role)
    }

    /// The values of the roles assigned to `user`, as the `roles` claim lists them.
    pub fn role_values(&self, user: &Account) -> Vec<String> {
        self.app_roles
            .iter()
            .filter(|r| user.app_roles.contains(&r.id))
            .map(|r| r.value.clone())
            .collect()
    }

    pub fn policy(&self, tenant: Uuid) -> UserConsentPolicy {
        self.policies
            .get(&tenant)
            .copied()
            .unwrap_or(UserConsentPolicy::LowImpact)
    }

    pub fn set_policy(&mut self, tenant: Uuid, policy: UserConsentPolicy) {
        self.policies.insert(tenant, policy);
    }

    /// The scopes of `wanted` that `user` has not been granted yet. An admin consent through
    /// `/adminconsent` (the service principal exists) grants the static permissions to all.
    pub fn missing<'a>(
        &self,
        tenant: &Tenant,
        user: &Account,
        wanted: &'a [String],
    ) -> Vec<&'a String> {
        let org = self.org_grants.get(&tenant.id);
        let own = self.user_grants.get(&(tenant.id, user.id));
        wanted
            .iter()
            .filter(|scope| {
                let by_admin = tenant.consent.is_some()
                    && self.delegated.iter().any(|d| d.eq_ignore_ascii_case(scope));
                let held = |set: Option<&BTreeSet<String>>| {
                    set.is_some_and(|s| s.iter().any(|g| g.eq_ignore_ascii_case(scope)))
                };
                !(by_admin || held(org) || held(own))
            })
            .collect()
    }

    /// Whether `user` may consent to all of `scopes` without an administrator.
    pub fn may_consent(&self, user: &Account, scopes: &[&String]) -> bool {
        if user.admin {
            return true;
        }
        match self.policy(user.tenant) {
            UserConsentPolicy::None => false,
            UserConsentPolicy::All => true,
            UserConsentPolicy::LowImpact => scopes
                .iter()
                .all(|s| LOW_IMPACT.iter().any(|l| l.eq_ignore_ascii_case(s))),
        }
    }

    /// Records a consent: for the user alone, or (an administrator's choice) for everyone.
    pub fn grant(&mut self, user: &Account, scopes: &[String], for_everyone: bool) {
        let set = if for_everyone {
            self.org_grants.entry(user.tenant).or_default()
        } else {
            self.user_grants.entry((user.tenant, user.id)).or_default()
        };
        set.extend(scopes.iter().cloned());
    }

    /// What the control API shows: each grant holder and its scopes.
    pub fn grants_of(&self, tenant: Uuid) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        if let Some(org) = self.org_grants.get(&tenant) {
            out.insert("all_principals".to_owned(), org.iter().cloned().collect());
        }
        for ((t, user), scopes) in &self.user_grants {
            if *t == tenant {
                out.insert(user.to_string(), scopes.iter().cloned().collect());
            }
        }
        out
    }

    /// The user's own consents, for the control API.
    pub fn user_grant(&self, user: &Account) -> Vec<String> {
        self.user_grants
            .get(&(user.tenant, user.id))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Letters, digits and `. _ - ' +` (what Entra allows before the `@`), at most 64.
fn is_local_part(local: &str) -> bool {
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'\'' | b'+'))
}

/// The non-administrator every seeded organisation has, after its administrator.
const SEEDED_MEMBERS: &[(&str, &str, &str)] = &[
    ("contoso", "Adele", "Vance"),
    ("fabrikam", "Diego", "Siciliani"),
    ("northwindtraders", "Isaiah", "Langer"),
    ("woodgrovebank", "Lidia", "Holloway"),
    ("tailspintoys", "Grady", "Archie"),
];

/// A user id that is the same in every run: documentation and tests can name it.
fn fixed_id(tenant: Uuid, who: &str) -> Uuid {
    let mut input = tenant.as_bytes().to_vec();
    input.extend_from_slice(who.as_bytes());
    let hash = digest::digest(&digest::SHA256, &input);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The accounts of a seeded organisation: `admin@{initial domain}`, an administrator, and
/// one member on the organisation's own domain who is not.
pub fn seeded_accounts(tenant: &Tenant) -> Vec<NewAccount> {
    let label = tenant
        .initial_domain
        .strip_suffix(".onmicrosoft.com")
        .unwrap_or_default();
    let admin_name = format!("admin@{}", tenant.initial_domain);
    let mut accounts = vec![NewAccount {
        id: Some(fixed_id(tenant.id, "admin")),
        display_name: format!("{} Administrator", tenant.display_name),
        user_principal_name: admin_name.clone(),
        mail: Some(admin_name),
        admin: true,
        roles: Vec::new(),
    }];
    if let Some((_, first, last)) = SEEDED_MEMBERS.iter().find(|(l, _, _)| *l == label) {
        let name = format!("{first}.{last}@{}", tenant.default_domain()).to_ascii_lowercase();
        accounts.push(NewAccount {
            id: Some(fixed_id(tenant.id, "member")),
            display_name: format!("{first} {last}"),
            user_principal_name: name.clone(),
            mail: Some(name),
            admin: false,
            roles: Vec::new(),
        });
    }
    accounts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::directory::{NewTenant, ServicePrincipal};

    fn contoso(consented: bool) -> Tenant {
        let now = time::OffsetDateTime::now_utc();
        let seed = crate::emulator::seed::seeded_tenants().remove(0);
        let consent = consented.then(|| ServicePrincipal::new(Vec::new(), now));
        Tenant::new(seed, now, consent)
    }

    fn other() -> Tenant {
        let now = time::OffsetDateTime::now_utc();
        Tenant::new(
            NewTenant {
                id: Uuid::new_v4(),
                display_name: "Other".into(),
                initial_domain: "other.onmicrosoft.com".into(),
                custom_domains: vec![],
                country_letter_code: "US".into(),
                city: "X".into(),
                user_count: 1,
            },
            now,
            None,
        )
    }

    fn seeded(tenant: &Tenant) -> Accounts {
        let mut accounts = Accounts::new();
        for a in seeded_accounts(tenant) {
            accounts.add(tenant, a).unwrap();
        }
        accounts
    }

    #[test]
    fn seeded_organisations_have_an_administrator_and_a_member() {
        let t = contoso(false);
        let accounts = seeded(&t);
        let admin = accounts.by_name("ADMIN@contoso.onmicrosoft.com").unwrap();
        let member = accounts.by_name("adele.vance@contoso.com").unwrap();
        assert!(admin.admin);
        assert!(!member.admin);
        assert_eq!(
            seeded(&t).by_name("adele.vance@contoso.com").unwrap().id,
            member.id
        );
    }

    #[test]
    fn names_must_be_on_the_tenants_domains_and_unique() {
        let t = contoso(false);
        let mut accounts = seeded(&t);
        let new = |name: &str| NewAccount {
            id: None,
            display_name: "X".into(),
            user_principal_name: name.into(),
            mail: None,
            admin: false,
            roles: vec![],
        };
        assert!(accounts.add(&t, new("x@contoso.com")).is_ok());
        assert!(matches!(
            accounts.add(&t, new("x@fabrikam.com")),
            Err(AccountError::InvalidName(_))
        ));
        assert!(matches!(
            accounts.add(&t, new("<b>@contoso.com")),
            Err(AccountError::InvalidName(_))
        ));
        assert!(matches!(
            accounts.add(&t, new("X@Contoso.com")),
            Err(AccountError::NameTaken(_))
        ));
        assert!(matches!(
            accounts.add(&other(), new("y@contoso.com")),
            Err(AccountError::InvalidName(_))
        ));
    }

    #[test]
    fn consent_needs_an_administrator_beyond_the_policy() {
        let t = contoso(false);
        let mut accounts = seeded(&t);
        let member = accounts.by_name("adele.vance@contoso.com").unwrap().clone();
        let admin = accounts
            .by_name("admin@contoso.onmicrosoft.com")
            .unwrap()
            .clone();
        let wanted: Vec<String> = vec!["openid".into(), "Mail.Read".into()];

        let missing = accounts.missing(&t, &member, &wanted);
        assert_eq!(missing.len(), 2);
        assert!(!accounts.may_consent(&member, &missing));
        assert!(accounts.may_consent(&member, &missing[..1]));
        assert!(accounts.may_consent(&admin, &missing));

        accounts.grant(&admin, &wanted, true);
        assert!(accounts.missing(&t, &member, &wanted).is_empty());
        accounts.forget_grants(t.id);
        assert_eq!(accounts.missing(&t, &member, &wanted).len(), 2);

        accounts.set_policy(t.id, UserConsentPolicy::None);
        assert!(!accounts.may_consent(&member, &missing[..1]));
    }

    #[test]
    fn an_admin_consent_grants_the_static_permissions_only() {
        let t = contoso(true);
        let accounts = seeded(&t);
        let member = accounts.by_name("adele.vance@contoso.com").unwrap();
        let wanted: Vec<String> = vec!["openid".into(), "user.read".into(), "Mail.Read".into()];
        assert_eq!(accounts.missing(&t, member, &wanted), vec![&wanted[2]]);
    }

    #[test]
    fn roles_are_assigned_by_value_or_id_and_removed_with_their_declaration() {
        let t = contoso(false);
        let mut accounts = seeded(&t);
        let id = accounts
            .declare_role("Operator".into(), None, None)
            .unwrap()
            .id;
        assert!(
            accounts
                .declare_role("Operator".into(), None, None)
                .is_err()
        );
        assert!(
            accounts
                .declare_role("bad role".into(), None, None)
                .is_err()
        );
        let member = accounts.by_name("adele.vance@contoso.com").unwrap().id;
        accounts
            .assign_roles(t.id, member, &["Operator".into()])
            .unwrap();
        let user = accounts.user(member).unwrap().clone();
        assert_eq!(accounts.role_values(&user), vec!["Operator".to_owned()]);
        assert!(
            accounts
                .assign_roles(t.id, member, &["Nope".into()])
                .is_err()
        );
        accounts.remove_role(&id.to_string()).unwrap();
        assert!(accounts.user(member).unwrap().app_roles.is_empty());
    }
}

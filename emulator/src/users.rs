//! The people who can sign in: user accounts per tenant (administrator or not), their
//! assignments to the app roles the app registrations declare, each tenant's user-consent
//! policy, and the delegated permissions users and administrators granted each app.
//!
//! Graph's `GET /users` lists generated users that no one signs in as; these accounts are
//! few, named, and kept apart so that a directory of 100,000 tenants costs nothing more.
//! App roles themselves belong to the app registrations ([`AppRole`]); an account holds
//! only which roles of which app it was assigned.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ring::digest;
use uuid::Uuid;

use super::directory::{AppRegistration, AppRole, Directory, Tenant, is_dns_name};

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
    /// The app roles assigned to this user: (the app's client id, the role's id).
    pub app_roles: BTreeSet<(Uuid, Uuid)>,
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

/// The delegated permissions every app registration lists (its static permissions), which
/// an admin consent through `/adminconsent` grants for every user of the tenant.
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
    #[error("no app with client id {0} is registered")]
    NoSuchApp(Uuid),
    #[error("the app declares no role '{0}'")]
    NoSuchRole(String),
    #[error("the app role '{0}' is not for users (its allowed_member_types lack \"User\")")]
    NotForUsers(String),
    #[error("display_name must be 1 to 256 characters")]
    InvalidDisplayName,
    #[error("a tenant holds at most {0} sign-in users")]
    TooMany(usize),
}

/// Sign-in users per tenant: enough for any test, bounded like everything else.
pub const MAX_USERS_PER_TENANT: usize = 1000;

/// An app role to assign: the app's client id, and the role's value or id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRef {
    pub app: Uuid,
    pub role: String,
}

/// A new account, as the control API and fixtures describe it.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: Option<Uuid>,
    pub display_name: String,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub admin: bool,
    pub roles: Vec<RoleRef>,
}

/// Everyone who can sign in, and what they consented to.
#[derive(Debug, Default, Clone)]
pub struct Accounts {
    /// The apps' static delegated permissions.
    pub delegated: Vec<String>,
    users: HashMap<Uuid, Account>,
    /// Lower-case user principal name → user id.
    by_name: HashMap<String, Uuid>,
    /// Delegated permissions one user granted an app (consentType `Principal`):
    /// (tenant, app, user).
    user_grants: HashMap<(Uuid, Uuid, Uuid), BTreeSet<String>>,
    /// Delegated permissions an administrator granted an app for everyone
    /// (`AllPrincipals`): (tenant, app).
    org_grants: HashMap<(Uuid, Uuid), BTreeSet<String>>,
    /// Set explicitly; the others have [`UserConsentPolicy::LowImpact`].
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
    /// tenant's domains, and its roles declared by apps of `dir` for users.
    pub fn add(
        &mut self,
        dir: &Directory,
        tenant: &Tenant,
        new: NewAccount,
    ) -> Result<&Account, AccountError> {
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
        let app_roles = role_ids(dir, &new.roles)?;
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
        self.user_grants
            .retain(|(t, _, u), _| !(*t == tenant && *u == id));
        Ok(user)
    }

    /// Forgets a deleted tenant's users, grants and policy.
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
        self.org_grants.retain(|(t, _), _| *t != tenant);
        self.user_grants.retain(|(t, _, _), _| *t != tenant);
        self.policies.remove(&tenant);
    }

    /// What deleting app `app`'s service principal does to its delegated grants: all go.
    pub fn forget_grants(&mut self, tenant: Uuid, app: Uuid) {
        self.org_grants.remove(&(tenant, app));
        self.user_grants
            .retain(|(t, a, _), _| !(*t == tenant && *a == app));
    }

    /// Replaces a user's assignments to app `app`'s roles (by role value or id); the
    /// assignments to other apps' roles stay.
    pub fn assign_roles(
        &mut self,
        dir: &Directory,
        tenant: Uuid,
        id: Uuid,
        app: Uuid,
        roles: &[String],
    ) -> Result<&Account, AccountError> {
        let refs: Vec<RoleRef> = roles
            .iter()
            .map(|r| RoleRef {
                app,
                role: r.clone(),
            })
            .collect();
        dir.app(app).ok_or(AccountError::NoSuchApp(app))?;
        let ids = role_ids(dir, &refs)?;
        match self.users.get_mut(&id) {
            Some(u) if u.tenant == tenant => {
                u.app_roles.retain(|(a, _)| *a != app);
                u.app_roles.extend(ids);
                Ok(u)
            }
            _ => Err(AccountError::NoSuchUser(id.to_string())),
        }
    }

    /// What removing a role from its app does to the users it was assigned to.
    pub fn unassign_role(&mut self, app: Uuid, role: Uuid) {
        for user in self.users.values_mut() {
            user.app_roles.remove(&(app, role));
        }
    }

    pub fn policy(&self, tenant: Uuid) -> UserConsentPolicy {
        self.explicit_policy(tenant)
            .unwrap_or(UserConsentPolicy::LowImpact)
    }

    /// The policy set for `tenant` by the control API or a fixture, if any.
    pub fn explicit_policy(&self, tenant: Uuid) -> Option<UserConsentPolicy> {
        self.policies.get(&tenant).copied()
    }

    pub fn set_policy(&mut self, tenant: Uuid, policy: UserConsentPolicy) {
        self.policies.insert(tenant, policy);
    }

    /// The scopes of `wanted` that `user` has not granted app `app` yet. An admin consent
    /// through `/adminconsent` (the app's service principal exists) grants the static
    /// permissions to all.
    pub fn missing<'a>(
        &self,
        tenant: &Tenant,
        app: Uuid,
        user: &Account,
        wanted: &'a [String],
    ) -> Vec<&'a String> {
        let org = self.org_grants.get(&(tenant.id, app));
        let own = self.user_grants.get(&(tenant.id, app, user.id));
        let consented = tenant.consent(app).is_some();
        wanted
            .iter()
            .filter(|scope| {
                let by_admin =
                    consented && self.delegated.iter().any(|d| d.eq_ignore_ascii_case(scope));
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

    /// Records a consent to app `app`: for the user alone, or (an administrator's choice)
    /// for everyone.
    pub fn grant(&mut self, user: &Account, app: Uuid, scopes: &[String], for_everyone: bool) {
        let set = if for_everyone {
            self.org_grants.entry((user.tenant, app)).or_default()
        } else {
            self.user_grants
                .entry((user.tenant, app, user.id))
                .or_default()
        };
        set.extend(scopes.iter().cloned());
    }

    /// What the control API shows of app `app`'s grants: each grant holder and its scopes.
    pub fn grants_of(&self, tenant: Uuid, app: Uuid) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        if let Some(org) = self.org_grants.get(&(tenant, app)) {
            out.insert("all_principals".to_owned(), org.iter().cloned().collect());
        }
        for ((t, a, user), scopes) in &self.user_grants {
            if *t == tenant && *a == app {
                out.insert(user.to_string(), scopes.iter().cloned().collect());
            }
        }
        out
    }

    /// The user's own consents to app `app`, for the control API.
    pub fn user_grant(&self, user: &Account, app: Uuid) -> Vec<String> {
        self.user_grants
            .get(&(user.tenant, app, user.id))
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The values of app `app`'s roles assigned to `user`, as the `roles` claim lists them.
pub fn role_values(user: &Account, app: &AppRegistration) -> Vec<String> {
    app.app_roles
        .iter()
        .filter(|r| user.app_roles.contains(&(app.client_id, r.id)))
        .map(|r| r.value.clone())
        .collect()
}

/// The (app, role id) pairs `roles` name; each role must be declared for users.
fn role_ids(dir: &Directory, roles: &[RoleRef]) -> Result<BTreeSet<(Uuid, Uuid)>, AccountError> {
    roles
        .iter()
        .map(|r| {
            let app = dir.app(r.app).ok_or(AccountError::NoSuchApp(r.app))?;
            let role: &AppRole = app
                .role(&r.role)
                .ok_or_else(|| AccountError::NoSuchRole(r.role.clone()))?;
            if !role.allowed_member_types.iter().any(|t| t == "User") {
                return Err(AccountError::NotForUsers(role.value.clone()));
            }
            Ok((app.client_id, role.id))
        })
        .collect()
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
pub fn fixed_id(tenant: Uuid, who: &str) -> Uuid {
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
    use crate::directory::{NewTenant, SecretHash, ServicePrincipal};

    const APP: Uuid = Uuid::from_u128(0x11111111_2222_4333_8444_555555555555);
    const OTHER_APP: Uuid = Uuid::from_u128(0x99999999_2222_4333_8444_555555555555);

    fn app(client_id: Uuid) -> AppRegistration {
        AppRegistration {
            client_id,
            display_name: "app".into(),
            secrets: vec![SecretHash::of("s")],
            redirect_uris: vec![],
            required_roles: vec![],
            app_roles: vec![],
            certificates: vec![],
            federated: vec![],
        }
    }

    /// Contoso, consented to [`APP`] or not, in a directory of two apps.
    fn contoso(consented: bool) -> (Directory, Uuid) {
        let now = time::OffsetDateTime::now_utc();
        let mut dir = Directory::with_apps(app(APP), vec![app(OTHER_APP)]);
        let seed = crate::seed::seeded_tenants().remove(0);
        let consents = if consented {
            vec![ServicePrincipal::new(APP, Vec::new(), now)]
        } else {
            Vec::new()
        };
        let id = dir
            .insert_tenant(Tenant::new(seed, now, consents))
            .unwrap()
            .id;
        (dir, id)
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
            Vec::new(),
        )
    }

    fn seeded(dir: &Directory, tenant: Uuid) -> Accounts {
        let tenant = dir.tenant(tenant).unwrap();
        let mut accounts = Accounts::new();
        for a in seeded_accounts(tenant) {
            accounts.add(dir, tenant, a).unwrap();
        }
        accounts
    }

    fn role(value: &str, types: &[&str]) -> AppRole {
        AppRole {
            id: Uuid::new_v4(),
            value: value.into(),
            display_name: value.into(),
            description: String::new(),
            allowed_member_types: types.iter().map(|t| (*t).to_owned()).collect(),
        }
    }

    #[test]
    fn seeded_organisations_have_an_administrator_and_a_member() {
        let (dir, t) = contoso(false);
        let accounts = seeded(&dir, t);
        let admin = accounts.by_name("ADMIN@contoso.onmicrosoft.com").unwrap();
        let member = accounts.by_name("adele.vance@contoso.com").unwrap();
        assert!(admin.admin);
        assert!(!member.admin);
        assert_eq!(
            seeded(&dir, t)
                .by_name("adele.vance@contoso.com")
                .unwrap()
                .id,
            member.id
        );
    }

    #[test]
    fn names_must_be_on_the_tenants_domains_and_unique() {
        let (dir, t) = contoso(false);
        let mut accounts = seeded(&dir, t);
        let t = dir.tenant(t).unwrap();
        let new = |name: &str| NewAccount {
            id: None,
            display_name: "X".into(),
            user_principal_name: name.into(),
            mail: None,
            admin: false,
            roles: vec![],
        };
        assert!(accounts.add(&dir, t, new("x@contoso.com")).is_ok());
        assert!(matches!(
            accounts.add(&dir, t, new("x@fabrikam.com")),
            Err(AccountError::InvalidName(_))
        ));
        assert!(matches!(
            accounts.add(&dir, t, new("<b>@contoso.com")),
            Err(AccountError::InvalidName(_))
        ));
        assert!(matches!(
            accounts.add(&dir, t, new("X@Contoso.com")),
            Err(AccountError::NameTaken(_))
        ));
        assert!(matches!(
            accounts.add(&dir, &other(), new("y@contoso.com")),
            Err(AccountError::InvalidName(_))
        ));
    }

    #[test]
    fn consent_needs_an_administrator_beyond_the_policy_and_is_per_app() {
        let (dir, t) = contoso(false);
        let mut accounts = seeded(&dir, t);
        let t = dir.tenant(t).unwrap();
        let member = accounts.by_name("adele.vance@contoso.com").unwrap().clone();
        let admin = accounts
            .by_name("admin@contoso.onmicrosoft.com")
            .unwrap()
            .clone();
        let wanted: Vec<String> = vec!["openid".into(), "Mail.Read".into()];

        let missing = accounts.missing(t, APP, &member, &wanted);
        assert_eq!(missing.len(), 2);
        assert!(!accounts.may_consent(&member, &missing));
        assert!(accounts.may_consent(&member, &missing[..1]));
        assert!(accounts.may_consent(&admin, &missing));

        accounts.grant(&admin, APP, &wanted, true);
        assert!(accounts.missing(t, APP, &member, &wanted).is_empty());
        assert_eq!(accounts.missing(t, OTHER_APP, &member, &wanted).len(), 2);
        accounts.forget_grants(t.id, APP);
        assert_eq!(accounts.missing(t, APP, &member, &wanted).len(), 2);

        accounts.set_policy(t.id, UserConsentPolicy::None);
        assert!(!accounts.may_consent(&member, &missing[..1]));
    }

    #[test]
    fn an_admin_consent_grants_the_static_permissions_to_its_app_only() {
        let (dir, t) = contoso(true);
        let accounts = seeded(&dir, t);
        let t = dir.tenant(t).unwrap();
        let member = accounts.by_name("adele.vance@contoso.com").unwrap();
        let wanted: Vec<String> = vec!["openid".into(), "user.read".into(), "Mail.Read".into()];
        assert_eq!(accounts.missing(t, APP, member, &wanted), vec![&wanted[2]]);
        assert_eq!(accounts.missing(t, OTHER_APP, member, &wanted).len(), 3);
    }

    #[test]
    fn roles_are_the_apps_assigned_per_app_and_removed_with_their_declaration() {
        let (mut dir, t) = contoso(false);
        let id = dir
            .declare_role(APP, role("Operator", &["User"]))
            .unwrap()
            .id;
        dir.declare_role(OTHER_APP, role("Operator", &["User"]))
            .unwrap();
        dir.declare_role(APP, role("Daemon", &["Application"]))
            .unwrap();
        assert!(dir.declare_role(APP, role("Operator", &["User"])).is_err());
        assert!(dir.declare_role(APP, role("bad role", &["User"])).is_err());
        let mut accounts = seeded(&dir, t);
        let member = accounts.by_name("adele.vance@contoso.com").unwrap().id;

        accounts
            .assign_roles(&dir, t, member, APP, &["Operator".into()])
            .unwrap();
        accounts
            .assign_roles(&dir, t, member, OTHER_APP, &["Operator".into()])
            .unwrap();
        let user = accounts.user(member).unwrap().clone();
        assert_eq!(role_values(&user, dir.app(APP).unwrap()), ["Operator"]);
        assert_eq!(user.app_roles.len(), 2, "one per app");
        assert!(matches!(
            accounts.assign_roles(&dir, t, member, APP, &["Nope".into()]),
            Err(AccountError::NoSuchRole(_))
        ));
        assert!(matches!(
            accounts.assign_roles(&dir, t, member, APP, &["Daemon".into()]),
            Err(AccountError::NotForUsers(_))
        ));

        dir.remove_role(APP, &id.to_string()).unwrap();
        accounts.unassign_role(APP, id);
        let user = accounts.user(member).unwrap();
        assert!(role_values(user, dir.app(APP).unwrap()).is_empty());
        assert_eq!(role_values(user, dir.app(OTHER_APP).unwrap()), ["Operator"]);
    }
}

//! The claims of tokens issued to a signed-in person: the v2.0 ID token
//! (learn.microsoft.com, "ID token claims reference") and the delegated access token for
//! Microsoft Graph (a v1.0 token with `scp` where app-only tokens have `roles`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::claims::{BACKDATE_SECS, GRAPH_APP_ID, random_id, region_scope};
use super::directory::{AppRegistration, Tenant};
use super::signing::TokenClaims;
use super::users::Account;

/// The role template ids Microsoft puts in `wids`: Global Administrator, and User.
const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const USER_ROLE: &str = "b79fbf4d-3ef9-4689-8143-76b194e85509";

/// Microsoft's `sub` is pairwise: the same person has a different subject in each app
/// (and the same one across the app's tenants' sign-ins), 43 base64url characters.
pub fn pairwise_subject(user: Uuid, audience: &str) -> String {
    let mut input = user.as_bytes().to_vec();
    input.extend_from_slice(audience.as_bytes());
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &input))
}

#[derive(Debug, Clone, Serialize)]
pub struct IdTokenClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub aio: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    pub rh: String,
    /// The app roles assigned to the person; absent when none are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    pub sub: String,
    pub tid: String,
    pub uti: String,
    pub ver: &'static str,
}

impl IdTokenClaims {
    /// `issuer` is `{authority host}/{tid}/v2.0`; `scopes` decide which profile claims
    /// appear (`profile`: name, username, oid; `email`: email).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: String,
        app: &AppRegistration,
        tenant: &Tenant,
        user: &Account,
        roles: Vec<String>,
        scopes: &[String],
        nonce: Option<String>,
        now: OffsetDateTime,
        lifetime_secs: u32,
    ) -> IdTokenClaims {
        let has = |s: &str| scopes.iter().any(|x| x == s);
        let issued = now.unix_timestamp() - BACKDATE_SECS;
        let client_id = app.client_id.to_string();
        IdTokenClaims {
            sub: pairwise_subject(user.id, &client_id),
            aud: client_id,
            iss: issuer,
            iat: issued,
            nbf: issued,
            exp: now.unix_timestamp() + i64::from(lifetime_secs),
            aio: random_id(48),
            email: has("email").then(|| user.mail.clone()).flatten(),
            name: has("profile").then(|| user.display_name.clone()),
            nonce,
            oid: has("profile").then(|| user.id.to_string()),
            preferred_username: has("profile").then(|| user.user_principal_name.clone()),
            rh: format!("1.{}.", random_id(32)),
            roles: (!roles.is_empty()).then_some(roles),
            tid: tenant.id.to_string(),
            uti: random_id(16),
            ver: "2.0",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DelegatedAccessTokenClaims {
    pub aud: &'static str,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub acct: u8,
    pub acr: &'static str,
    pub aio: String,
    pub amr: Vec<&'static str>,
    pub app_displayname: String,
    pub appid: String,
    pub appidacr: &'static str,
    pub idtyp: &'static str,
    pub name: String,
    pub oid: String,
    pub rh: String,
    /// The delegated permissions, space-separated (`openid profile email User.Read`).
    pub scp: String,
    pub sub: String,
    pub tenant_region_scope: String,
    pub tid: String,
    pub unique_name: String,
    pub upn: String,
    pub uti: String,
    pub ver: &'static str,
    pub wids: Vec<&'static str>,
    pub xms_tcdt: i64,
}

impl DelegatedAccessTokenClaims {
    /// `appidacr`: "1" for a secret, "2" for an assertion, as on app-only tokens.
    pub fn new(
        app: &AppRegistration,
        tenant: &Tenant,
        user: &Account,
        scopes: &[String],
        appidacr: &'static str,
        now: OffsetDateTime,
        lifetime_secs: u32,
    ) -> DelegatedAccessTokenClaims {
        let issued = now.unix_timestamp() - BACKDATE_SECS;
        DelegatedAccessTokenClaims {
            aud: GRAPH_APP_ID,
            iss: format!("https://sts.windows.net/{}/", tenant.id),
            iat: issued,
            nbf: issued,
            exp: now.unix_timestamp() + i64::from(lifetime_secs),
            acct: 0,
            acr: "1",
            aio: random_id(48),
            amr: vec!["pwd"],
            app_displayname: app.display_name.clone(),
            appid: app.client_id.to_string(),
            appidacr,
            idtyp: "user",
            name: user.display_name.clone(),
            oid: user.id.to_string(),
            rh: format!("1.{}.", random_id(32)),
            scp: scopes
                .iter()
                .filter(|s| s.as_str() != "offline_access")
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
            sub: pairwise_subject(user.id, GRAPH_APP_ID),
            tenant_region_scope: region_scope(&tenant.country_letter_code).to_owned(),
            tid: tenant.id.to_string(),
            unique_name: user.user_principal_name.clone(),
            upn: user.user_principal_name.clone(),
            uti: random_id(16),
            ver: "1.0",
            wids: vec![if user.admin {
                GLOBAL_ADMINISTRATOR
            } else {
                USER_ROLE
            }],
            xms_tcdt: tenant.created_at.unix_timestamp(),
        }
    }
}

impl TokenClaims for IdTokenClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

impl TokenClaims for DelegatedAccessTokenClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_pairwise_per_app() {
        let user = Uuid::new_v4();
        let a = pairwise_subject(user, "app-a");
        assert_eq!(a, pairwise_subject(user, "app-a"));
        assert_ne!(a, pairwise_subject(user, "app-b"));
        assert_ne!(a, pairwise_subject(Uuid::new_v4(), "app-a"));
        assert_eq!(a.len(), 43);
    }
}

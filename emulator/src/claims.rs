//! The claims of an app-only access token for Microsoft Graph (ENTRA.md §5), minted by the
//! token endpoint and checked by the Graph endpoints.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::directory::{AppRegistration, ServicePrincipal, Tenant};

/// Audiences Graph accepts: its resource URIs in the public, US Government (L4 and L5) and
/// China clouds (ENTRA.md, Hosts), and its app id. Microsoft's Graph of one cloud refuses
/// the others' tokens; the emulator's one Graph stands in for all of them.
pub const GRAPH_AUDIENCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    GRAPH_APP_ID,
];

/// Microsoft Graph's well-known application id.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// How the client authenticated, Microsoft's `appidacr` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// "1": a client secret.
    Secret,
    /// "2": a client assertion (a certificate, or a federated credential).
    Assertion,
}

impl ClientAuthentication {
    fn appidacr(self) -> &'static str {
        match self {
            ClientAuthentication::Secret => "1",
            ClientAuthentication::Assertion => "2",
        }
    }
}

/// Microsoft backdates `iat`/`nbf` by five minutes to absorb clock skew; so do we.
pub(super) const BACKDATE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub aio: String,
    pub app_displayname: String,
    pub appid: String,
    pub appidacr: String,
    pub idp: String,
    pub idtyp: String,
    pub oid: String,
    pub rh: String,
    /// Absent, not empty, when the service principal holds no roles (ENTRA.md §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    pub sub: String,
    pub tenant_region_scope: String,
    pub tid: String,
    pub uti: String,
    pub ver: String,
    pub wids: Vec<String>,
    pub xms_tcdt: i64,
}

/// The "Directory Readers"-like well-known id Microsoft puts in app tokens' `wids`.
const APP_TOKEN_WID: &str = "0997a1d0-0d1d-4acb-b408-d5ca73121e90";

impl AccessTokenClaims {
    pub fn new(
        app: &AppRegistration,
        tenant: &Tenant,
        sp: &ServicePrincipal,
        audience: &str,
        authentication: ClientAuthentication,
        now: OffsetDateTime,
        lifetime_secs: u32,
    ) -> AccessTokenClaims {
        let issued = now.unix_timestamp() - BACKDATE_SECS;
        let issuer = format!("https://sts.windows.net/{}/", tenant.id);
        let roles: Vec<String> = sp.roles.iter().cloned().collect();
        AccessTokenClaims {
            aud: audience.to_owned(),
            iss: issuer.clone(),
            iat: issued,
            nbf: issued,
            exp: now.unix_timestamp() + i64::from(lifetime_secs),
            aio: random_id(48),
            app_displayname: app.display_name.clone(),
            appid: app.client_id.to_string(),
            appidacr: authentication.appidacr().to_owned(),
            idp: issuer,
            idtyp: "app".to_owned(),
            oid: sp.object_id.to_string(),
            rh: format!("1.{}.", random_id(32)),
            roles: (!roles.is_empty()).then_some(roles),
            sub: sp.object_id.to_string(),
            tenant_region_scope: region_scope(&tenant.country_letter_code).to_owned(),
            tid: tenant.id.to_string(),
            uti: random_id(16),
            ver: "1.0".to_owned(),
            wids: vec![APP_TOKEN_WID.to_owned()],
            xms_tcdt: tenant.created_at.unix_timestamp(),
        }
    }

    pub fn has_any_role(&self, accepted: &[&str]) -> bool {
        self.roles.as_ref().is_some_and(|roles| {
            roles
                .iter()
                .any(|r| accepted.iter().any(|a| a.eq_ignore_ascii_case(r)))
        })
    }
}

impl super::signing::TokenClaims for AccessTokenClaims {
    fn expires_at(&self) -> i64 {
        self.exp
    }
}

/// Microsoft's `tenant_region_scope`: NA, EU, AS, OC, SA, AF.
pub(super) fn region_scope(country: &str) -> &'static str {
    match country {
        "US" | "CA" | "MX" => "NA",
        "AU" | "NZ" => "OC",
        "JP" | "IN" | "CN" | "SG" | "KR" => "AS",
        "BR" | "AR" | "CL" => "SA",
        "ZA" | "NG" | "KE" => "AF",
        _ => "EU",
    }
}

/// `bytes` random bytes, base64url: the shape of `uti`, `aio` and `rh`.
pub(super) fn random_id(bytes: usize) -> String {
    let mut out = Vec::with_capacity(bytes);
    while out.len() < bytes {
        out.extend_from_slice(Uuid::new_v4().as_bytes());
    }
    out.truncate(bytes);
    URL_SAFE_NO_PAD.encode(out)
}

//! Signing people in with Microsoft, as an OpenID Connect relying party: discovery per
//! authority and tenant segment, the authorize URL (code flow, PKCE S256, a nonce, our own
//! `state`), the code's redemption with the app's own credential, and the ID token's
//! validation (OpenID Connect Core §3.1.3.7) under Microsoft's multi-tenant issuer rule.
//!
//! The sign-up's verified sign-in and the operators' sign-in both stand on this module:
//! what differs between them (which tenant may sign in, what a role means) is the caller's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use time::OffsetDateTime;
use uuid::Uuid;

use super::client::transport;
use super::{Credential, wire};
use crate::domain::TenantId;

/// The only scopes a sign-in asks for: who the person is, nothing of their data.
pub const SCOPES: &str = "openid profile email";
/// How far a token's times may be off our clock: Microsoft's hosts and ours disagree by
/// seconds, not minutes.
pub const CLOCK_SKEW_SECS: i64 = 120;
/// A discovery document is read again after this long (Microsoft changes endpoints rarely).
const DISCOVERY_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Published keys are read again after this long even when every `kid` is known.
const KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// An unknown `kid` reloads the keys at most this often: Microsoft publishes a new key
/// well before it signs with it, so a second unknown `kid` within minutes is not a
/// rotation, and a flood of forged ones must not become a flood of requests to Microsoft.
pub const KEYS_MIN_REFRESH: Duration = Duration::from_secs(300);
/// Microsoft's built-in directory roles that may grant tenant-wide consent to Microsoft
/// Graph's application permissions: Global Administrator and Privileged Role
/// Administrator (Cloud Application and Application Administrators may not grant Graph's
/// app roles). Their template ids, as `wids` carries them.
const CONSENTING_ROLES: [&str; 2] = [
    "62e90394-69f5-4237-9190-012177145e10",
    "e8611ab8-c189-46e8-94e1-60213ab1f814",
];

/// Microsoft's endpoints for one tenant segment (`organizations`, or a tenant id).
#[derive(Debug, Clone)]
pub struct Provider {
    /// The issuer with `{tenantid}` where the tenant goes.
    issuer_template: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

impl Provider {
    /// The one issuer a token of tenant `tid` may carry (Microsoft's multi-tenant rule:
    /// `iss` is the tenant-specific issuer of the token's own `tid`).
    pub fn issuer_for(&self, tid: &str) -> String {
        self.issuer_template.replace("{tenantid}", tid)
    }
}

/// Turns a discovery document's `issuer` into a template: `organizations` and `common`
/// documents carry Microsoft's `{tenantid}` placeholder; a tenant's own document names its
/// tenant id, which becomes the placeholder so that one rule checks both.
fn issuer_template(issuer: &str) -> String {
    if issuer.contains("{tenantid}") {
        return issuer.to_owned();
    }
    issuer
        .split('/')
        .map(|part| {
            if Uuid::try_parse(part).is_ok() {
                "{tenantid}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What the authorize request carries besides the constants.
#[derive(Debug)]
pub struct AuthorizeRequest<'a> {
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    /// The PKCE verifier; only its S256 challenge leaves consentry here.
    pub code_verifier: &'a str,
    /// `select_account`, so a browser signed in to several accounts picks one.
    pub prompt: Option<&'a str>,
}

/// A person Microsoft vouched for: the claims of a validated ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInPerson {
    pub tenant: TenantId,
    /// `oid`: the person's id in their tenant (`sub` when `oid` is absent).
    pub object_id: String,
    pub name: Option<String>,
    /// `preferred_username`: what the person signs in with (mutable, for display only).
    pub username: Option<String>,
    pub email: Option<String>,
    /// The app roles assigned to the person in our app registration.
    pub roles: Vec<String>,
}

impl SignedInPerson {
    /// How to name the person: the username, else the name, else the object id.
    pub fn label(&self) -> &str {
        self.username
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(&self.object_id)
    }
}

/// Whether the person may grant admin consent, as far as the sign-in says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAuthority {
    /// Holds a role that can grant Graph's application permissions.
    Administrator,
    /// Their directory roles are known, and none of them can.
    NotAdministrator,
    /// Microsoft did not say (no `wids`): the consent page will decide.
    Unknown,
}

/// A redeemed code: the validated person and what the sign-in says of their roles.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub person: SignedInPerson,
    pub authority: ConsentAuthority,
}

/// Why an ID token was refused. Each is a reason in an event and a clear page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is not a signed JWT")]
    Malformed,
    /// `alg` other than RS256, `none` included (RFC 8725 §3.1: the algorithm is ours to
    /// choose, not the token's).
    #[error("the ID token is signed with {0}, not RS256")]
    Algorithm(String),
    #[error("the ID token names a signing key Microsoft does not publish")]
    UnknownKey,
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token names no tenant (tid)")]
    NoTenant,
    #[error("the ID token's issuer is not its tenant's")]
    Issuer,
    #[error("the ID token is for another application (aud)")]
    Audience,
    #[error("the ID token's nonce is not this sign-in's")]
    Nonce,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is not valid yet")]
    NotYetValid,
    #[error("Microsoft's signing keys could not be read")]
    KeysUnavailable,
}

impl IdTokenError {
    /// A short name for events and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdTokenError::Malformed => "malformed_id_token",
            IdTokenError::Algorithm(_) => "id_token_algorithm",
            IdTokenError::UnknownKey => "unknown_signing_key",
            IdTokenError::BadSignature => "bad_signature",
            IdTokenError::NoTenant => "no_tenant",
            IdTokenError::Issuer => "wrong_issuer",
            IdTokenError::Audience => "wrong_audience",
            IdTokenError::Nonce => "wrong_nonce",
            IdTokenError::Expired => "expired_id_token",
            IdTokenError::NotYetValid => "id_token_not_yet_valid",
            IdTokenError::KeysUnavailable => "signing_keys_unavailable",
        }
    }
}

/// Why a sign-in did not produce a person.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignInError {
    #[error("Microsoft's sign-in metadata could not be read ({0})")]
    Discovery(String),
    /// The token endpoint refused the code (replayed, expired, wrong verifier...).
    #[error("Microsoft refused the sign-in code ({error})")]
    Refused { error: String, codes: Vec<u32> },
    #[error("Microsoft's token endpoint could not be reached ({0})")]
    Unreachable(String),
    #[error("Microsoft's token response could not be read ({0})")]
    Malformed(String),
    #[error("consentry's credential could not be used: {0}")]
    Credential(String),
    #[error("{0}")]
    IdToken(#[from] IdTokenError),
}

impl SignInError {
    /// A short name for events and logs.
    pub fn reason(&self) -> String {
        match self {
            SignInError::Discovery(_) => "discovery_unavailable".into(),
            SignInError::Refused { codes, error } => codes
                .first()
                .map(|c| format!("code_refused_AADSTS{c}"))
                .unwrap_or_else(|| format!("code_refused_{error}")),
            SignInError::Unreachable(_) => "token_endpoint_unreachable".into(),
            SignInError::Malformed(_) => "malformed_token_response".into(),
            SignInError::Credential(_) => "credential_unusable".into(),
            SignInError::IdToken(e) => e.as_str().into(),
        }
    }
}

/// Keys read from one `jwks_uri`.
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Instant,
    /// When an unknown `kid` last made us read the keys again.
    refreshed_for_unknown_at: Option<Instant>,
}

/// The relying party. One per service; its caches are shared by every sign-in.
pub struct OidcClient {
    http: reqwest::Client,
    authority: String,
    client_id: Uuid,
    credential: Arc<Credential>,
    providers: std::sync::Mutex<HashMap<String, (Provider, Instant)>>,
    /// Held across a key fetch: concurrent sign-ins with an unknown `kid` wait for one
    /// fetch instead of each making their own.
    keys: tokio::sync::Mutex<HashMap<String, KeySet>>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("authority", &self.authority)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

impl OidcClient {
    /// `http` is the shared outbound client (timeouts, no redirects).
    pub fn new(
        http: reqwest::Client,
        authority: &str,
        client_id: Uuid,
        credential: Arc<Credential>,
    ) -> OidcClient {
        OidcClient {
            http,
            authority: authority.trim_end_matches('/').to_owned(),
            client_id,
            credential,
            providers: std::sync::Mutex::new(HashMap::new()),
            keys: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The endpoints for `segment` (`organizations`, or a tenant id), from its discovery
    /// document, cached for a day. `segment` is ours (a constant or configuration), never
    /// a visitor's.
    pub async fn provider(&self, segment: &str) -> Result<Provider, SignInError> {
        if let Some((provider, at)) = self
            .providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(segment)
            && at.elapsed() < DISCOVERY_MAX_AGE
        {
            return Ok(provider.clone());
        }
        let url = format!(
            "{}/{segment}/v2.0/.well-known/openid-configuration",
            self.authority
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| SignInError::Discovery(transport(&e)))?;
        if !response.status().is_success() {
            return Err(SignInError::Discovery(format!(
                "HTTP {}",
                response.status().as_u16()
            )));
        }
        let doc: wire::DiscoveryDocument = response
            .json()
            .await
            .map_err(|_| SignInError::Discovery("not a discovery document".into()))?;
        // Every endpoint must be the authority's own: a document that sent our credential
        // or our users elsewhere is refused, whoever served it. (Not the issuer: China's
        // names another host than its authority.)
        let own = format!("{}/", self.authority);
        for endpoint in [
            &doc.authorization_endpoint,
            &doc.token_endpoint,
            &doc.jwks_uri,
        ] {
            if !endpoint.starts_with(&own) {
                return Err(SignInError::Discovery(
                    "an endpoint outside the authority host".into(),
                ));
            }
        }
        let provider = Provider {
            issuer_template: issuer_template(&doc.issuer),
            authorization_endpoint: doc.authorization_endpoint,
            token_endpoint: doc.token_endpoint,
            jwks_uri: doc.jwks_uri,
        };
        self.providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(segment.to_owned(), (provider.clone(), Instant::now()));
        Ok(provider)
    }

    /// Where to send the browser: the code flow with PKCE (S256), a nonce, our state, and
    /// the OpenID scopes only.
    pub fn authorize_url(&self, provider: &Provider, request: &AuthorizeRequest<'_>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("client_id", &self.client_id.to_string())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", request.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", SCOPES)
            .append_pair("state", request.state)
            .append_pair("nonce", request.nonce)
            .append_pair("code_challenge", &pkce_challenge(request.code_verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(prompt) = request.prompt {
            query.append_pair("prompt", prompt);
        }
        let separator = if provider.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}{}",
            provider.authorization_endpoint,
            query.finish()
        )
    }

    /// Redeems `code` with the PKCE verifier and the app's credential, and validates the
    /// ID token that comes back against `nonce`.
    pub async fn redeem(
        &self,
        provider: &Provider,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<SignIn, SignInError> {
        let client_id = self.client_id.to_string();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("client_id", client_id.clone()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
            ("code_verifier", code_verifier.to_owned()),
            ("scope", SCOPES.to_owned()),
        ];
        form.extend(
            self.credential
                .form_fields(&client_id, &provider.token_endpoint, now)
                .map_err(|e| SignInError::Credential(format!("{e:#}")))?,
        );
        let response = self
            .http
            .post(&provider.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| SignInError::Unreachable(transport(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| SignInError::Unreachable(transport(&e)))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<wire::ErrorResponse>(&body) {
                Ok(err) => SignInError::Refused {
                    error: err.error.chars().take(64).collect(),
                    codes: err.error_codes,
                },
                Err(_) => SignInError::Malformed(format!("HTTP {}", status.as_u16())),
            });
        }
        let tokens: wire::CodeTokenResponse = serde_json::from_slice(&body)
            .map_err(|_| SignInError::Malformed("not a token response".into()))?;
        if tokens
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
        {
            return Err(SignInError::Malformed("token_type is not Bearer".into()));
        }
        let id_token = tokens
            .id_token
            .ok_or_else(|| SignInError::Malformed("no id_token".into()))?;
        let person = self
            .validate_id_token(provider, &id_token, nonce, now)
            .await?;
        let authority = consent_authority(tokens.access_token.as_deref(), person.tenant);
        Ok(SignIn { person, authority })
    }

    /// OpenID Connect Core §3.1.3.7: the signature by a key the issuer publishes (RS256
    /// only), then the claims ([`check_claims`]).
    pub async fn validate_id_token(
        &self,
        provider: &Provider,
        token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<SignedInPerson, IdTokenError> {
        let header = token.split('.').next().ok_or(IdTokenError::Malformed)?;
        let header: wire::JwtHeader = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(IdTokenError::Malformed)?;
        match header.alg.as_deref() {
            Some("RS256") => {}
            Some(other) => {
                return Err(IdTokenError::Algorithm(
                    other.chars().take(16).filter(|c| !c.is_control()).collect(),
                ));
            }
            None => return Err(IdTokenError::Malformed),
        }
        let kid = header.kid.ok_or(IdTokenError::UnknownKey)?;
        let key = self.key(&provider.jwks_uri, &kid).await?;
        // The library checks the signature and the algorithm; the claims are checked by
        // `check_claims` against a clock we pass in, which the library cannot take.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data =
            jsonwebtoken::decode::<wire::IdTokenClaims>(token, &key, &validation).map_err(|e| {
                match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        IdTokenError::Algorithm("another algorithm".into())
                    }
                    _ => IdTokenError::Malformed,
                }
            })?;
        check_claims(
            &data.claims,
            &Expected {
                provider,
                client_id: &self.client_id.to_string(),
                nonce,
            },
            now,
        )
    }

    /// The key `kid` of `jwks_uri`: from the cache, or read again when the cache is a day
    /// old, or once per [`KEYS_MIN_REFRESH`] when the `kid` is unknown (a rotation).
    async fn key(&self, jwks_uri: &str, kid: &str) -> Result<DecodingKey, IdTokenError> {
        let mut cache = self.keys.lock().await;
        let stale = cache
            .get(jwks_uri)
            .is_none_or(|set| set.fetched_at.elapsed() >= KEYS_MAX_AGE);
        if stale {
            match self.fetch_keys(jwks_uri).await {
                Ok(keys) => {
                    let forced = cache
                        .get(jwks_uri)
                        .and_then(|set| set.refreshed_for_unknown_at);
                    cache.insert(
                        jwks_uri.to_owned(),
                        KeySet {
                            keys,
                            fetched_at: Instant::now(),
                            refreshed_for_unknown_at: forced,
                        },
                    );
                }
                // Yesterday's keys still verify today's tokens, mostly: keep them.
                Err(e) if !cache.contains_key(jwks_uri) => return Err(e),
                Err(_) => tracing::warn!("Microsoft's signing keys could not be re-read"),
            }
        }
        let Some(set) = cache.get_mut(jwks_uri) else {
            return Err(IdTokenError::KeysUnavailable);
        };
        if let Some(key) = set.keys.get(kid) {
            return Ok(key.clone());
        }
        let may_refresh = !stale
            && set
                .refreshed_for_unknown_at
                .is_none_or(|at| at.elapsed() >= KEYS_MIN_REFRESH);
        if !may_refresh {
            return Err(IdTokenError::UnknownKey);
        }
        set.refreshed_for_unknown_at = Some(Instant::now());
        let keys = self.fetch_keys(jwks_uri).await?;
        set.keys = keys;
        set.fetched_at = Instant::now();
        set.keys.get(kid).cloned().ok_or(IdTokenError::UnknownKey)
    }

    async fn fetch_keys(
        &self,
        jwks_uri: &str,
    ) -> Result<HashMap<String, DecodingKey>, IdTokenError> {
        let response = self.http.get(jwks_uri).send().await.map_err(|e| {
            tracing::warn!(error = %transport(&e), "reading Microsoft's signing keys");
            IdTokenError::KeysUnavailable
        })?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "reading Microsoft's signing keys"
            );
            return Err(IdTokenError::KeysUnavailable);
        }
        let set: wire::JwkSet = response
            .json()
            .await
            .map_err(|_| IdTokenError::KeysUnavailable)?;
        Ok(set
            .keys
            .into_iter()
            .filter(|k| k.kty == "RSA" && k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let key =
                    DecodingKey::from_rsa_components(k.n.as_deref()?, k.e.as_deref()?).ok()?;
                Some((k.kid?, key))
            })
            .collect())
    }
}

/// What the claims of an ID token must match.
struct Expected<'a> {
    provider: &'a Provider,
    client_id: &'a str,
    nonce: &'a str,
}

/// The claims' checks of OpenID Connect Core §3.1.3.7, with Microsoft's issuer rule: `iss`
/// must be the issuer of the token's own `tid` (a multi-tenant app accepts every tenant's
/// issuer, and so must tie each to its tenant).
fn check_claims(
    claims: &wire::IdTokenClaims,
    expected: &Expected<'_>,
    now: OffsetDateTime,
) -> Result<SignedInPerson, IdTokenError> {
    let tenant = claims
        .tid
        .as_deref()
        .and_then(TenantId::parse)
        .ok_or(IdTokenError::NoTenant)?;
    if claims.iss.as_deref() != Some(expected.provider.issuer_for(&tenant.to_string()).as_str()) {
        return Err(IdTokenError::Issuer);
    }
    if !claims
        .aud
        .as_ref()
        .is_some_and(|aud| aud.contains(expected.client_id))
    {
        return Err(IdTokenError::Audience);
    }
    let nonce_matches = claims.nonce.as_deref().is_some_and(|n| {
        use subtle::ConstantTimeEq;
        bool::from(n.as_bytes().ct_eq(expected.nonce.as_bytes()))
    });
    if !nonce_matches {
        return Err(IdTokenError::Nonce);
    }
    let now = now.unix_timestamp();
    match claims.exp {
        Some(exp) if now <= exp.saturating_add(CLOCK_SKEW_SECS) => {}
        _ => return Err(IdTokenError::Expired),
    }
    for not_before in [claims.nbf, claims.iat].into_iter().flatten() {
        if not_before > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(IdTokenError::NotYetValid);
        }
    }
    if claims.iat.is_none() {
        return Err(IdTokenError::Malformed);
    }
    let text = |v: &Option<String>, max: usize| {
        v.as_deref()
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(max)
                    .collect::<String>()
            })
            .filter(|s| !s.trim().is_empty())
    };
    let object_id = text(&claims.oid, 64)
        .or_else(|| text(&claims.sub, 64))
        .ok_or(IdTokenError::Malformed)?;
    Ok(SignedInPerson {
        tenant,
        object_id,
        name: text(&claims.name, 200),
        username: text(&claims.preferred_username, 254),
        email: text(&claims.email, 254),
        roles: claims
            .roles
            .iter()
            .filter(|r| r.len() <= 250)
            .take(100)
            .cloned()
            .collect(),
    })
}

/// Reads `wids` from the delegated access token that came with the ID token, straight
/// from the token endpoint over TLS (OpenID Connect Core §3.1.3.7, item 6, lets a client
/// rely on TLS for what the token endpoint tells it). Only to tell a person early that
/// they cannot consent; the consent page decides in the end.
fn consent_authority(access_token: Option<&str>, tenant: TenantId) -> ConsentAuthority {
    let claims: Option<wire::DelegatedClaims> = access_token
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice(&p).ok());
    let Some(claims) = claims else {
        return ConsentAuthority::Unknown;
    };
    if claims.tid.as_deref().and_then(TenantId::parse) != Some(tenant) {
        return ConsentAuthority::Unknown;
    }
    match claims.wids {
        None => ConsentAuthority::Unknown,
        Some(wids) if wids.iter().any(|w| CONSENTING_ROLES.contains(&w.as_str())) => {
            ConsentAuthority::Administrator
        }
        Some(_) => ConsentAuthority::NotAdministrator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: &str = "3f2c8a71-5d94-4e0b-a6c3-1b7e9d2f4a58";
    const CLIENT: &str = "6c0ff3e1-b5a8-4f1e-9d2c-4a7b3e8f5d90";

    fn provider() -> Provider {
        Provider {
            issuer_template: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
            authorization_endpoint:
                "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize".into(),
            token_endpoint: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
                .into(),
            jwks_uri: "https://login.microsoftonline.com/organizations/discovery/v2.0/keys".into(),
        }
    }

    fn claims(now: i64) -> wire::IdTokenClaims {
        serde_json::from_value(serde_json::json!({
            "iss": format!("https://login.microsoftonline.com/{TID}/v2.0"),
            "aud": CLIENT,
            "tid": TID,
            "oid": "00000000-0000-0000-0000-000000000001",
            "sub": "pairwise",
            "nonce": "n-1",
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + 3600,
            "name": "Alice",
            "preferred_username": "alice@contoso.com",
        }))
        .unwrap()
    }

    fn check(c: &wire::IdTokenClaims, now: i64) -> Result<SignedInPerson, IdTokenError> {
        let p = provider();
        check_claims(
            c,
            &Expected {
                provider: &p,
                client_id: CLIENT,
                nonce: "n-1",
            },
            OffsetDateTime::from_unix_timestamp(now).unwrap(),
        )
    }

    #[test]
    fn a_good_token_names_its_person_and_tenant() {
        let now = 1_800_000_000;
        let person = check(&claims(now), now).unwrap();
        assert_eq!(person.tenant.to_string(), TID);
        assert_eq!(person.label(), "alice@contoso.com");
        assert_eq!(person.object_id, "00000000-0000-0000-0000-000000000001");
    }

    #[test]
    fn the_issuer_must_be_the_tokens_own_tenants() {
        let now = 1_800_000_000;
        let mut other_iss = claims(now);
        other_iss.iss = Some(
            "https://login.microsoftonline.com/c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6/v2.0".into(),
        );
        assert_eq!(check(&other_iss, now), Err(IdTokenError::Issuer));
        // The tid moved while iss stayed: the pair no longer matches.
        let mut other_tid = claims(now);
        other_tid.tid = Some("c6e1b9d4-8a2f-4b73-9e05-72d4a1f8c3b6".into());
        assert_eq!(check(&other_tid, now), Err(IdTokenError::Issuer));
        let mut template = claims(now);
        template.iss = Some("https://login.microsoftonline.com/{tenantid}/v2.0".into());
        assert_eq!(check(&template, now), Err(IdTokenError::Issuer));
        let mut no_tid = claims(now);
        no_tid.tid = None;
        assert_eq!(check(&no_tid, now), Err(IdTokenError::NoTenant));
    }

    #[test]
    fn audience_and_nonce_must_be_ours() {
        let now = 1_800_000_000;
        let mut aud = claims(now);
        aud.aud = Some(wire::Audience::One(Uuid::new_v4().to_string()));
        assert_eq!(check(&aud, now), Err(IdTokenError::Audience));
        let mut many = claims(now);
        many.aud = Some(wire::Audience::Many(vec!["x".into(), CLIENT.into()]));
        assert!(check(&many, now).is_ok());
        let mut nonce = claims(now);
        nonce.nonce = Some("n-2".into());
        assert_eq!(check(&nonce, now), Err(IdTokenError::Nonce));
        nonce.nonce = None;
        assert_eq!(check(&nonce, now), Err(IdTokenError::Nonce));
    }

    #[test]
    fn lifetimes_allow_a_small_skew_only() {
        let now = 1_800_000_000;
        let c = claims(now);
        assert!(check(&c, now + 3600 + CLOCK_SKEW_SECS).is_ok());
        assert_eq!(
            check(&c, now + 3600 + CLOCK_SKEW_SECS + 1),
            Err(IdTokenError::Expired)
        );
        assert!(check(&c, now - 5 - CLOCK_SKEW_SECS).is_ok());
        assert_eq!(
            check(&c, now - 6 - CLOCK_SKEW_SECS),
            Err(IdTokenError::NotYetValid)
        );
        let mut no_exp = claims(now);
        no_exp.exp = None;
        assert_eq!(check(&no_exp, now), Err(IdTokenError::Expired));
    }

    #[test]
    fn issuer_templates_come_from_either_kind_of_document() {
        assert_eq!(
            issuer_template("https://login.microsoftonline.com/{tenantid}/v2.0"),
            "https://login.microsoftonline.com/{tenantid}/v2.0"
        );
        assert_eq!(
            issuer_template(&format!("https://login.microsoftonline.com/{TID}/v2.0")),
            "https://login.microsoftonline.com/{tenantid}/v2.0"
        );
    }

    #[test]
    fn pkce_follows_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn directory_roles_say_who_may_consent() {
        let tenant = TenantId::parse(TID).unwrap();
        let token = |claims: serde_json::Value| {
            format!("h.{}.s", URL_SAFE_NO_PAD.encode(claims.to_string()))
        };
        let admin = token(serde_json::json!({"tid": TID, "wids": [CONSENTING_ROLES[0]]}));
        assert_eq!(
            consent_authority(Some(&admin), tenant),
            ConsentAuthority::Administrator
        );
        let member = token(
            serde_json::json!({"tid": TID, "wids": ["b79fbf4d-3ef9-4689-8143-76b194e85509"]}),
        );
        assert_eq!(
            consent_authority(Some(&member), tenant),
            ConsentAuthority::NotAdministrator
        );
        let other = token(serde_json::json!({"tid": Uuid::new_v4(), "wids": []}));
        assert_eq!(
            consent_authority(Some(&other), tenant),
            ConsentAuthority::Unknown
        );
        assert_eq!(consent_authority(None, tenant), ConsentAuthority::Unknown);
    }
}

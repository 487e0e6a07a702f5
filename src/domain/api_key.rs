//! API keys: `cst_live_` and 256 random bits, shown once, stored only as a hash, each with
//! the scopes it may use.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use super::RandomToken;

/// What every consentry API key starts with, so that secret scanners and people recognise
/// one in a log or a repository.
pub const API_KEY_PREFIX: &str = "cst_live_";

/// How many characters of a key (the prefix included) are kept to tell keys apart.
const SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 8;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Read tenants and their events, and ask for a check (`/api/v1/tenants/...`).
    TenantsRead,
    /// Get app-only access tokens for tenants.
    TokensIssue,
    /// Create, change and delete webhook endpoints.
    WebhooksManage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [
        Scope::TenantsRead,
        Scope::TokensIssue,
        Scope::WebhooksManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TenantsRead => "tenants:read",
            Scope::TokensIssue => "tokens:issue",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// A stored space-separated list; names this version does not know are skipped.
    pub fn parse_list(raw: &str) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = raw.split_whitespace().filter_map(Scope::parse).collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The stored form of `scopes`: sorted, space-separated, no repeats.
    pub fn join(scopes: &[Scope]) -> String {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole API key, as handed to its holder once and presented on every request.
#[derive(Clone)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    pub fn generate() -> ApiKeySecret {
        ApiKeySecret(format!(
            "{API_KEY_PREFIX}{}",
            RandomToken::generate().expose()
        ))
    }

    /// A key presented by a client: the prefix and 43 base64url characters, or nothing.
    pub fn parse(raw: &str) -> Option<ApiKeySecret> {
        let random = raw.strip_prefix(API_KEY_PREFIX)?;
        RandomToken::parse(random).map(|_| ApiKeySecret(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The first characters, for people to tell keys apart (`cst_live_AbCdEfGh`): 48 of the
    /// 256 random bits, leaving 208 unknown.
    pub fn shown_prefix(&self) -> String {
        self.0.chars().take(SHOWN_CHARS).collect()
    }

    /// SHA-256 of the key, base64url: what the database keeps and lookups match on.
    ///
    /// A plain hash, not HMAC under the session key nor a password hash: the key carries 256
    /// random bits, so no dictionary or brute force can invert its digest and a slow hash
    /// would only slow every API request; and without a server secret in the hash, the
    /// `api-keys` commands need only the database, and rotating the session key (which
    /// signs everyone out) does not also break every integration.
    pub fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            self.0.as_bytes(),
        ))
    }

    /// Whether `stored` is this key's hash, compared in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        bool::from(self.hash().as_bytes().ct_eq(stored.as_bytes()))
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret([redacted])")
    }
}

/// An operator's name for a key: 1 to 100 characters, no control characters, trimmed.
pub fn parse_key_name(raw: &str) -> Option<String> {
    let name = raw.trim();
    (!name.is_empty() && name.chars().count() <= 100 && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_parseable_and_hidden_from_debug() {
        let key = ApiKeySecret::generate();
        assert!(key.expose().starts_with("cst_live_"));
        assert_eq!(key.expose().len(), 9 + 43);
        assert!(ApiKeySecret::parse(key.expose()).is_some());
        assert!(ApiKeySecret::parse(&key.expose()[9..]).is_none());
        assert!(ApiKeySecret::parse("cst_live_short").is_none());
        assert_eq!(format!("{key:?}"), "ApiKeySecret([redacted])");
        assert_eq!(key.shown_prefix().len(), 17);
    }

    #[test]
    fn the_hash_matches_only_its_key() {
        let key = ApiKeySecret::generate();
        assert!(key.matches(&key.hash()));
        assert!(!ApiKeySecret::generate().matches(&key.hash()));
        assert!(!key.hash().contains(&key.expose()[9..]));
    }

    #[test]
    fn scopes_round_trip_sorted_without_repeats() {
        let joined = Scope::join(&[
            Scope::WebhooksManage,
            Scope::TenantsRead,
            Scope::TenantsRead,
        ]);
        assert_eq!(joined, "tenants:read webhooks:manage");
        assert_eq!(
            Scope::parse_list(&joined),
            vec![Scope::TenantsRead, Scope::WebhooksManage]
        );
        assert_eq!(Scope::parse("tenants:write"), None);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_key_name("  billing "), Some("billing".to_owned()));
        assert_eq!(parse_key_name(" "), None);
        assert_eq!(parse_key_name("a\nb"), None);
        assert_eq!(parse_key_name(&"x".repeat(101)), None);
    }
}

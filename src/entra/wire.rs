//! What Microsoft sends, as Microsoft sends it.

use serde::{Deserialize, Deserializer};

/// The longest token lifetime believed from the wire: a day. Microsoft issues 60 to 90
/// minutes (24 hours at most with a token-lifetime policy); anything longer is a broken
/// answer, and taking it at its word once overflowed the clock arithmetic.
pub const MAX_LIFETIME_SECS: u64 = 86_400;

/// A token response from v2 (numbers) or v1 (numbers as strings, seed 000).
///
/// Lifetimes are clamped here, at the edge, to `0..=MAX_LIFETIME_SECS` (and `refresh_in`
/// to at most `expires_in`): whatever number Microsoft (or anything in between) sends,
/// no arithmetic on it can overflow later.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(deserialize_with = "lifetime")]
    pub expires_in: u64,
    #[serde(default, deserialize_with = "optional_lifetime")]
    pub refresh_in: Option<u64>,
    #[serde(default, deserialize_with = "optional_lifetime")]
    pub ext_expires_in: Option<u64>,
}

/// The identity platform's error body (ENTRA.md §3). Branch on `error` and `error_codes`,
/// never on the description.
#[derive(Debug, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u32>,
}

/// The claims consentry reads from an access token, for diagnostics only (ENTRA.md §5).
#[derive(Debug, Deserialize)]
pub struct AccessTokenClaims {
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A string for Graph's tokens (an array is allowed by RFC 7519 and then not read).
    #[serde(default, deserialize_with = "optional_string")]
    pub aud: Option<String>,
}

fn optional_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

#[derive(Debug, Deserialize)]
pub struct OrganizationList {
    pub value: Vec<OrganizationEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationEntry {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub verified_domains: Vec<VerifiedDomain>,
}

#[derive(Debug, Deserialize)]
pub struct VerifiedDomain {
    pub name: String,
}

/// Graph's `{"error":{"code","message"}}`.
#[derive(Debug, Deserialize)]
pub struct GraphErrorBody {
    pub error: GraphErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct GraphErrorDetail {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// Seconds as a JSON number (v2) or a string of digits (v1), of any size or sign, clamped
/// to `0..=MAX_LIFETIME_SECS`. Fractions are cut; text that is not a number is an error.
fn lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(serde_json::Number),
        Text(String),
    }
    let seconds: f64 = match N::deserialize(d)? {
        N::Number(n) => n.as_f64().unwrap_or(f64::MAX),
        N::Text(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| !f.is_nan())
            .ok_or_else(|| serde::de::Error::custom("a lifetime that is not a number"))?,
    };
    // `as` saturates (and takes NaN to 0): no panic, whatever the value.
    Ok((seconds.clamp(0.0, MAX_LIFETIME_SECS as f64)) as u64)
}

fn optional_lifetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lifetime(d).map(Some)
}

impl TokenResponse {
    /// `refresh_in` after `expires_in` means nothing: refresh at expiry at the latest.
    pub fn refresh_in(&self) -> Option<u64> {
        self.refresh_in.map(|r| r.min(self.expires_in))
    }
}

/// The answer to an authorization-code redemption (OpenID Connect Core §3.1.3.3). Only what
/// consentry reads: the refresh token, when one comes, is dropped unread.
#[derive(Deserialize)]
pub struct CodeTokenResponse {
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
}

/// The fields of a discovery document (`/.well-known/openid-configuration`) consentry uses.
#[derive(Debug, Deserialize)]
pub struct DiscoveryDocument {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// A JSON Web Key Set (RFC 7517 §5).
#[derive(Debug, Deserialize)]
pub struct JwkSet {
    #[serde(default)]
    pub keys: Vec<Jwk>,
}

/// One key (RFC 7517 §4; RSA parameters per RFC 7518 §6.3.1), as Microsoft publishes them.
#[derive(Debug, Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub kty: String,
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

/// A JWT's header, read before any key is chosen: `alg` as text, so that `none` or an
/// algorithm nobody supports is named in the refusal rather than failing to parse.
#[derive(Debug, Deserialize)]
pub struct JwtHeader {
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
}

/// The claims of a v2.0 ID token consentry checks or keeps.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenClaims {
    #[serde(default)]
    pub iss: Option<String>,
    /// A string, or (RFC 7519 §4.1.3) an array of them.
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub oid: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Audience::One(a) => a == value,
            Audience::Many(all) => all.iter().any(|a| a == value),
        }
    }
}

/// What consentry reads from the delegated access token of a sign-in: the directory roles
/// (`wids`) of the person, to tell them early whether they can consent for the tenant.
#[derive(Debug, Default, Deserialize)]
pub struct DelegatedClaims {
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub wids: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v2_numbers_and_v1_strings() {
        let v2: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"a"}"#,
        )
        .unwrap();
        assert_eq!(v2.expires_in, 3599);
        assert_eq!(v2.refresh_in, None);
        let v1: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":"3599","expires_on":"1449685363","resource":"https://graph.microsoft.com","access_token":"b","refresh_in":"1800"}"#,
        )
        .unwrap();
        assert_eq!(v1.expires_in, 3599);
        assert_eq!(v1.refresh_in, Some(1800));
        assert!(
            serde_json::from_str::<TokenResponse>(r#"{"expires_in":"soon","access_token":"c"}"#)
                .is_err()
        );
    }

    #[test]
    fn lifetimes_from_the_wire_are_clamped_to_a_day() {
        for (raw, expected) in [
            ("1000000000000000", MAX_LIFETIME_SECS),
            ("\"1000000000000000\"", MAX_LIFETIME_SECS),
            ("18446744073709551615", MAX_LIFETIME_SECS),
            ("1e300", MAX_LIFETIME_SECS),
            ("\"99999999999999999999999999\"", MAX_LIFETIME_SECS),
            ("-5", 0),
            ("\"-5\"", 0),
            ("3599.9", 3599),
        ] {
            let parsed: TokenResponse = serde_json::from_str(&format!(
                r#"{{"expires_in":{raw},"ext_expires_in":{raw},"refresh_in":{raw},"access_token":"a"}}"#
            ))
            .unwrap();
            assert_eq!(parsed.expires_in, expected, "{raw}");
            assert_eq!(parsed.ext_expires_in, Some(expected), "{raw}");
            assert_eq!(parsed.refresh_in(), Some(expected), "{raw}");
        }
        let late: TokenResponse =
            serde_json::from_str(r#"{"expires_in":3599,"refresh_in":90000,"access_token":"a"}"#)
                .unwrap();
        assert_eq!(late.refresh_in(), Some(3599));
    }
}

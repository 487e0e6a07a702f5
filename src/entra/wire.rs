//! What Microsoft sends, as Microsoft sends it.

use serde::{Deserialize, Deserializer};

/// A token response from v2 (numbers) or v1 (numbers as strings, seed 000).
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(deserialize_with = "number_or_string")]
    pub expires_in: u64,
    #[serde(default, deserialize_with = "optional_number_or_string")]
    pub refresh_in: Option<u64>,
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

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(u64),
        Text(String),
    }
    match N::deserialize(d)? {
        N::Number(n) => Ok(n),
        N::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn optional_number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    number_or_string(d).map(Some)
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
}

//! Standard Webhooks signatures: `whsec_` secrets and the `webhook-signature` header.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`, the MAC is
//! HMAC-SHA256 keyed with the secret's decoded bytes, and the header carries `v1,<base64>`
//! once per secret, space-separated, so that a receiver holding either the old or the new
//! secret verifies during a rotation.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretSlice, SecretString};

/// The prefix that makes a secret recognisable wherever it is pasted.
pub const SECRET_PREFIX: &str = "whsec_";

/// Bytes in a secret we generate: the HMAC-SHA256 block size is 64, and 32 is what the
/// reference libraries generate.
const GENERATED_LEN: usize = 32;

/// The lengths the specification allows for a secret's decoded bytes.
const MIN_LEN: usize = 24;
const MAX_LEN: usize = 64;

/// Standard base64 as the reference libraries write it; padding is accepted but not
/// required on input, because secrets are pasted by hand and some senders drop it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A webhook signing secret. Its bytes stay behind `secrecy`: `Debug` shows only the
/// prefix, and there is no `Display`.
pub struct WebhookSecret(SecretSlice<u8>);

/// Why a string is not a `whsec_` secret. Never carries the string itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretParseError {
    #[error("a webhook secret starts with \"whsec_\"")]
    MissingPrefix,
    #[error("a webhook secret is \"whsec_\" followed by standard base64")]
    NotBase64,
    #[error("a webhook secret decodes to 24 to 64 bytes, not {0}")]
    WrongLength(usize),
}

/// The system has no randomness to draw a secret from.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("no randomness for a webhook secret")]
pub struct NoRandomness;

impl WebhookSecret {
    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Result<WebhookSecret, NoRandomness> {
        let mut bytes = vec![0u8; GENERATED_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NoRandomness)?;
        Ok(WebhookSecret(SecretSlice::from(bytes)))
    }

    /// An endpoint's secret: derived under the session key from the random salt the store
    /// keeps (`webhook_endpoint.secret_salt`), so the database never holds a secret. A new
    /// session key therefore gives every endpoint a new secret: rotate them all.
    pub fn derive(keyed: &crate::domain::Keyed, salt: &str) -> WebhookSecret {
        WebhookSecret(SecretSlice::from(keyed.derive("webhook-secret", salt)))
    }

    /// Parses the `whsec_<base64>` form (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<WebhookSecret, SecretParseError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretParseError::MissingPrefix)?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| SecretParseError::NotBase64)?;
        if !(MIN_LEN..=MAX_LEN).contains(&bytes.len()) {
            return Err(SecretParseError::WrongLength(bytes.len()));
        }
        Ok(WebhookSecret(SecretSlice::from(bytes)))
    }

    /// The `whsec_<base64>` form, to show once to the operator who creates the endpoint.
    pub fn expose_encoded(&self) -> SecretString {
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.0.expose_secret());
        SecretString::from(format!("{SECRET_PREFIX}{encoded}"))
    }

    fn mac(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.expose_secret());
        let mut context = hmac::Context::with_key(&key);
        context.update(msg_id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        context.sign()
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecret({SECRET_PREFIX}[redacted])")
    }
}

/// The `webhook-signature` header value for a message: `v1,<base64 HMAC>` per secret,
/// space-separated (more than one during a rotation's overlap), in the order given.
pub fn sign(msg_id: &str, timestamp: i64, body: &[u8], secrets: &[&WebhookSecret]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let tag = secret.mac(msg_id, timestamp, body);
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three Standard Webhooks headers for a message: `webhook-id`, `webhook-timestamp`
/// (Unix seconds) and `webhook-signature`.
pub fn headers(
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&WebhookSecret],
) -> [(&'static str, String); 3] {
    [
        ("webhook-id", msg_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", sign(msg_id, timestamp, body, secrets)),
    ]
}

/// Why a received message does not verify (the receiver's side, as the demo's inbox and
/// any Rust receiver check deliveries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the webhook-timestamp header is not Unix seconds")]
    BadTimestamp,
    #[error("the webhook-timestamp is more than the tolerance away from now (a replay?)")]
    StaleTimestamp,
    #[error("no signature in webhook-signature matches the secret")]
    NoMatch,
}

/// Receivers reject messages older or newer than this (the specification's usual value).
pub const TIMESTAMP_TOLERANCE_SECS: i64 = 300;

/// Verifies a received message: the timestamp within [`TIMESTAMP_TOLERANCE_SECS`] of
/// `now` (Unix seconds), and at least one `v1,` signature of the header made with `secret`
/// (compared in constant time by `ring`).
pub fn verify(
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    secret: &WebhookSecret,
    now: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(VerifyError::StaleTimestamp);
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.0.expose_secret());
    let message = format!("{msg_id}.{ts}.");
    let mut signed = message.into_bytes();
    signed.extend_from_slice(body);
    let matches = signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok())
        .any(|tag| hmac::verify(&key, &signed, &tag).is_ok());
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_secrets_depend_on_the_session_key_and_the_salt_and_parse_back() {
        let key = crate::domain::Keyed::new(&[1; 32]);
        let a = WebhookSecret::derive(&key, "salt-a");
        let encoded = a.expose_encoded();
        let again = WebhookSecret::derive(&key, "salt-a").expose_encoded();
        let other_salt = WebhookSecret::derive(&key, "salt-b").expose_encoded();
        let other_key =
            WebhookSecret::derive(&crate::domain::Keyed::new(&[2; 32]), "salt-a").expose_encoded();

        assert_eq!(encoded.expose_secret(), again.expose_secret());
        assert_ne!(encoded.expose_secret(), other_salt.expose_secret());
        assert_ne!(encoded.expose_secret(), other_key.expose_secret());
        let parsed = WebhookSecret::parse(encoded.expose_secret()).expect("a whsec_ secret");
        assert_eq!(sign("m", 1, b"x", &[&parsed]), sign("m", 1, b"x", &[&a]));
    }

    #[test]
    fn verify_accepts_either_secret_of_a_rotation_and_refuses_tampering_and_replays() {
        let (old, new) = (
            WebhookSecret::generate().unwrap(),
            WebhookSecret::generate().unwrap(),
        );
        let stranger = WebhookSecret::generate().unwrap();
        let header = sign("msg_1", 1_000, b"{}", &[&new, &old]);

        assert_eq!(verify("msg_1", "1000", &header, b"{}", &old, 1_010), Ok(()));
        assert_eq!(verify("msg_1", "1000", &header, b"{}", &new, 990), Ok(()));
        assert_eq!(
            verify("msg_1", "1000", &header, b"{}", &stranger, 1_000),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify("msg_1", "1000", &header, b"{ }", &new, 1_000),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify("msg_2", "1000", &header, b"{}", &new, 1_000),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify("msg_1", "1000", &header, b"{}", &new, 1_000 + 301),
            Err(VerifyError::StaleTimestamp)
        );
        assert_eq!(
            verify("msg_1", "soon", &header, b"{}", &new, 1_000),
            Err(VerifyError::BadTimestamp)
        );
    }

    /// The example of the Standard Webhooks specification's test suites.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TIMESTAMP: i64 = 1614265330;
    const SPEC_BODY: &str = r#"{"test": 2432232314}"#;
    const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_the_specifications_example() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();

        let signature = sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY.as_bytes(), &[&secret]);

        assert_eq!(signature, SPEC_SIGNATURE);
    }

    #[test]
    fn signs_the_documented_string_with_the_decoded_key() {
        // Arrange: the key and the MAC computed here from the documented recipe.
        let key_bytes: Vec<u8> = (0u8..32).collect();
        let encoded = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&key_bytes)
        );
        let secret = WebhookSecret::parse(&encoded).unwrap();
        let body = br#"{"type":"tenant.connected","data":{}}"#;
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &key_bytes),
            b"msg_1.1700000000.{\"type\":\"tenant.connected\",\"data\":{}}",
        );

        // Act
        let signature = sign("msg_1", 1_700_000_000, body, &[&secret]);

        // Assert
        assert_eq!(
            signature,
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(expected.as_ref())
            )
        );
        assert_eq!(secret.expose_encoded().expose_secret(), encoded);
    }

    #[test]
    fn several_secrets_give_one_signature_each_space_separated_in_order() {
        let old = WebhookSecret::generate().unwrap();
        let new = WebhookSecret::generate().unwrap();

        let both = sign("msg_2", 42, b"{}", &[&old, &new]);

        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign("msg_2", 42, b"{}", &[&old]));
        assert_eq!(parts[1], sign("msg_2", 42, b"{}", &[&new]));
        assert_ne!(parts[0], parts[1]);
        assert_eq!(sign("msg_2", 42, b"{}", &[]), "");
    }

    #[test]
    fn generated_secrets_round_trip_and_differ() {
        let a = WebhookSecret::generate().unwrap();
        let b = WebhookSecret::generate().unwrap();

        let encoded = a.expose_encoded();
        let parsed = WebhookSecret::parse(encoded.expose_secret()).unwrap();

        assert!(encoded.expose_secret().starts_with("whsec_"));
        assert_eq!(encoded.expose_secret().len(), "whsec_".len() + 44);
        assert_eq!(sign("m", 1, b"x", &[&a]), sign("m", 1, b"x", &[&parsed]));
        assert_ne!(sign("m", 1, b"x", &[&a]), sign("m", 1, b"x", &[&b]));
    }

    #[test]
    fn malformed_secrets_are_refused_with_a_reason() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![7u8; n]);
        let cases: Vec<(String, Result<(), SecretParseError>)> = vec![
            (b64(32), Err(SecretParseError::MissingPrefix)),
            (
                format!("WHSEC_{}", b64(32)),
                Err(SecretParseError::MissingPrefix),
            ),
            ("whsec_not base64!".into(), Err(SecretParseError::NotBase64)),
            ("whsec_".into(), Err(SecretParseError::WrongLength(0))),
            (
                format!("whsec_{}", b64(23)),
                Err(SecretParseError::WrongLength(23)),
            ),
            (format!("whsec_{}", b64(24)), Ok(())),
            (format!("whsec_{}", b64(64)), Ok(())),
            (
                format!("whsec_{}", b64(65)),
                Err(SecretParseError::WrongLength(65)),
            ),
            // Unpadded base64 of 32 bytes, and surrounding whitespace from a paste.
            (
                format!(" whsec_{} \n", b64(32).trim_end_matches('=')),
                Ok(()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                WebhookSecret::parse(&input).map(|_| ()),
                expected,
                "{input:?}"
            );
        }
    }

    #[test]
    fn debug_and_errors_never_show_the_secret() {
        let secret = WebhookSecret::parse(SPEC_SECRET).unwrap();
        let wrong = WebhookSecret::parse("whsec_MfKQ9r8G").unwrap_err();

        let shown = format!("{secret:?} {wrong} {wrong:?}");

        assert!(!shown.contains("MfKQ9r8G"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}

//! The emulator's token signing: RS256 JWTs, and the JWKS that publishes the keys.
//!
//! Every JWT the emulator issues (app-only access tokens, ID tokens, delegated access
//! tokens) goes through [`TokenSigner::sign`], which knows its kind: it signs with the
//! current key of the [`KeyRing`] (rotated through the control API) and, when a hostile
//! mode asks for it, hands the token to the [`TokenForge`] to come out wrong.
//!
//! Keys are RSA-2048 like Microsoft's, made fresh at every start (so no client can come to
//! depend on one) by the pure-Rust `rsa` crate, and then used through `ring`, whose signing
//! is several times faster: token issuance is the emulator's hot path.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

use super::hostile::{self, TokenForge};
use super::keys::KeyRing;

/// The kinds of JWT the emulator issues, which hostile modes choose among.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
// The names are the control API's (`app_access_token`, `id_token`, ...), as the protocols
// name these tokens.
#[allow(clippy::enum_variant_names)]
pub enum TokenKind {
    /// The client-credentials grant's token (`idtyp: app`).
    AppAccessToken,
    /// OpenID Connect's ID token.
    IdToken,
    /// An access token issued to an app on behalf of a signed-in user.
    DelegatedAccessToken,
}

impl TokenKind {
    pub const ALL: [TokenKind; 3] = [
        TokenKind::AppAccessToken,
        TokenKind::IdToken,
        TokenKind::DelegatedAccessToken,
    ];
}

/// Claims the emulator signs.
pub trait TokenClaims: Serialize {
    /// `exp`: a retired key stays published until the last token it signed has expired.
    fn expires_at(&self) -> i64;
}

impl TokenClaims for serde_json::Value {
    fn expires_at(&self) -> i64 {
        self["exp"].as_i64().unwrap_or(0)
    }
}

/// Signs the emulator's tokens and verifies the ones it issued.
#[derive(Debug)]
pub struct TokenSigner {
    keys: KeyRing,
    forge: TokenForge,
}

impl TokenSigner {
    pub fn generate(now: OffsetDateTime) -> anyhow::Result<TokenSigner> {
        Ok(TokenSigner {
            keys: KeyRing::new(SigningKey::generate()?, now),
            forge: TokenForge::default(),
        })
    }

    /// The one place every JWT is minted: a compact JWS (`header.payload.signature`) over
    /// `claims`, by the current key, or forged as a hostile mode asks for `kind`.
    pub fn sign(&self, kind: TokenKind, claims: &impl TokenClaims) -> anyhow::Result<String> {
        let key = self.keys.current();
        key.note_expiry(claims.expires_at());
        match self.forge.take(kind) {
            None => key.sign(claims),
            Some(tamper) => hostile::forge(tamper, &key, claims),
        }
    }

    /// Checks the signature of a token this emulator issued, by whichever published key
    /// signed it, and returns its claims. Lifetime, audience and tenant are the caller's.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenRejection> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRejection::Malformed);
        };
        // A key is found by the exact header it writes: any other header, `alg: none` or an
        // unknown `kid` among them, is not one of ours.
        self.keys
            .by_header(header)
            .ok_or(TokenRejection::BadSignature)?
            .verify(token, payload, signature)
    }

    /// The JSON Web Key Set, in the shape of Microsoft's `discovery/v2.0/keys`: the current
    /// key, then the retired ones still published.
    pub fn jwks(&self, issuer: &str, now: OffsetDateTime) -> serde_json::Value {
        serde_json::json!({ "keys": self.keys.published(now).iter().map(|k| k.jwk(issuer)).collect::<Vec<_>>() })
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn forge(&self) -> &TokenForge {
        &self.forge
    }
}

/// One RSA signing key with its certificate.
pub struct SigningKey {
    key_pair: RsaKeyPair,
    rng: ring::rand::SystemRandom,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
    /// base64url SHA-1 of the certificate, Microsoft's `kid` and `x5t`.
    kid: String,
    /// A self-signed certificate for the key, base64 DER, as in Microsoft's `x5c`.
    certificate: String,
    /// The JWT header, already encoded: it never changes.
    encoded_header: String,
    /// The latest `exp` of the tokens it signed.
    latest_exp: AtomicI64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the token is not a JWT in compact serialisation")]
    Malformed,
    #[error("the token's signature is invalid")]
    BadSignature,
}

impl SigningKey {
    /// A new key and its self-signed certificate: about a tenth of a second of CPU, so
    /// callers on a worker run it on the blocking pool.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
            .context("generating the RSA token-signing key")?;
        let pkcs8 = private
            .to_pkcs8_der()
            .context("encoding the token-signing key")?;
        let key_pair = RsaKeyPair::from_pkcs8(pkcs8.as_bytes())
            .map_err(|e| anyhow::anyhow!("loading the token-signing key: {e}"))?;

        let rcgen_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .context("preparing the token-signing certificate")?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "consentry emulator token signing",
        );
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(365);
        let cert = params
            .self_signed(&rcgen_key)
            .context("self-signing the token certificate")?;
        let der = cert.der().as_ref();
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            der,
        ));
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": kid, "kid": kid});
        Ok(SigningKey {
            key_pair,
            rng: ring::rand::SystemRandom::new(),
            modulus: private.n().to_bytes_be(),
            exponent: private.e().to_bytes_be(),
            certificate: STANDARD.encode(der),
            encoded_header: URL_SAFE_NO_PAD.encode(header.to_string()),
            kid,
            latest_exp: AtomicI64::new(i64::MIN),
        })
    }

    /// Microsoft's `kid` (and `x5t`) for this key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The header every token it signs carries, base64url.
    pub fn encoded_header(&self) -> &str {
        &self.encoded_header
    }

    /// Remembers that a token valid until `exp` is being signed.
    pub fn note_expiry(&self, exp: i64) {
        self.latest_exp.fetch_max(exp, Ordering::Relaxed);
    }

    /// The latest `exp` of the tokens it signed, if it signed any.
    pub fn latest_exp(&self) -> Option<i64> {
        Some(self.latest_exp.load(Ordering::Relaxed)).filter(|e| *e != i64::MIN)
    }

    /// A compact JWS (`header.payload.signature`) over `claims`.
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let payload = serde_json::to_vec(claims)?;
        self.sign_parts(&self.encoded_header, &payload)
    }

    /// A compact JWS of `payload` under `encoded_header` (which hostile modes may change).
    pub fn sign_parts(&self, encoded_header: &str, payload: &[u8]) -> anyhow::Result<String> {
        let mut token = String::with_capacity(encoded_header.len() + payload.len() * 4 / 3 + 350);
        token.push_str(encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut sig = vec![0u8; self.key_pair.public().modulus_len()];
        self.key_pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut sig,
            )
            .map_err(|_| anyhow::anyhow!("RSA signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&sig, &mut token);
        Ok(token)
    }

    /// Checks the signature of `token`, split into its parts by [`TokenSigner::verify`] (a
    /// Graph request's token is a kilobyte, scanned once), and returns its claims.
    /// Lifetime, audience and tenant are the caller's to check.
    fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        payload: &str,
        sig: &str,
    ) -> Result<C, TokenRejection> {
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenRejection::Malformed)?;
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRejection::Malformed)?;
        // The header and the payload with the dot between them: what precedes the signature.
        let signed = &token[..token.len() - sig.len() - 1];
        RsaPublicKeyComponents {
            n: &self.modulus,
            e: &self.exponent,
        }
        .verify(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        )
        .map_err(|_| TokenRejection::BadSignature)?;
        serde_json::from_slice(&payload_bytes).map_err(|_| TokenRejection::Malformed)
    }

    /// The key as one entry of Microsoft's `discovery/v2.0/keys`.
    pub fn jwk(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.modulus),
            "e": URL_SAFE_NO_PAD.encode(&self.exponent),
            "x5c": [self.certificate],
            "issuer": issuer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_tokens_it_can_verify_and_rejects_tampering() {
        let signer = TokenSigner::generate(OffsetDateTime::now_utc()).unwrap();
        let token = signer
            .sign(
                TokenKind::AppAccessToken,
                &serde_json::json!({"tid": "t", "n": 1}),
            )
            .unwrap();
        let claims: serde_json::Value = signer.verify(&token).unwrap();
        assert_eq!(claims["tid"], "t");

        let (head, rest) = token.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"tid":"other","n":1}"#);
        let forged = format!("{head}.{forged_payload}.{sig}");
        assert_eq!(
            signer.verify::<serde_json::Value>(&forged).unwrap_err(),
            TokenRejection::BadSignature
        );
        assert_eq!(
            signer.verify::<serde_json::Value>("abc").unwrap_err(),
            TokenRejection::Malformed
        );

        let other = TokenSigner::generate(OffsetDateTime::now_utc()).unwrap();
        assert_eq!(
            other.verify::<serde_json::Value>(&token).unwrap_err(),
            TokenRejection::BadSignature
        );
    }

    #[test]
    fn jwks_publishes_the_key_with_its_kid() {
        let now = OffsetDateTime::now_utc();
        let signer = TokenSigner::generate(now).unwrap();
        let jwks = signer.jwks("https://example/", now);
        let token = signer
            .sign(TokenKind::IdToken, &serde_json::json!({}))
            .unwrap();
        let header = URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
        assert_eq!(jwks["keys"][0]["e"], "AQAB");
        let n = URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["n"].as_str().unwrap())
            .unwrap();
        assert_eq!(n.len(), 256);
    }
}

//! The emulator's token-signing key: RS256 JWTs, and the JWKS that publishes the key.
//!
//! The key is RSA-2048 like Microsoft's, made fresh at every start (so no client can come to
//! depend on it) by the pure-Rust `rsa` crate, and then used through `ring`, whose signing is
//! several times faster: token issuance is the emulator's hot path.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{self, RsaKeyPair, RsaPublicKeyComponents};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Signs and verifies the emulator's own tokens.
pub struct TokenSigner {
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
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
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

impl TokenSigner {
    pub fn generate() -> anyhow::Result<TokenSigner> {
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
        Ok(TokenSigner {
            key_pair,
            rng: ring::rand::SystemRandom::new(),
            modulus: private.n().to_bytes_be(),
            exponent: private.e().to_bytes_be(),
            certificate: STANDARD.encode(der),
            encoded_header: URL_SAFE_NO_PAD.encode(header.to_string()),
            kid,
        })
    }

    /// A compact JWS (`header.payload.signature`) over `claims`.
    pub fn sign(&self, claims: &impl Serialize) -> anyhow::Result<String> {
        let payload = serde_json::to_vec(claims)?;
        let mut token =
            String::with_capacity(self.encoded_header.len() + payload.len() * 4 / 3 + 350);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
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

    /// Checks the signature of a token this emulator issued and returns its claims.
    /// Lifetime, audience and tenant are the caller's to check.
    pub fn verify<C: DeserializeOwned>(&self, token: &str) -> Result<C, TokenRejection> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRejection::Malformed);
        };
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| TokenRejection::Malformed)?;
        let payload_bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenRejection::Malformed)?;
        let signed = &token[..header.len() + 1 + payload.len()];
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

    /// The JSON Web Key Set, in the shape of Microsoft's `discovery/v2.0/keys`.
    pub fn jwks(&self, issuer: &str) -> serde_json::Value {
        serde_json::json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "kid": self.kid,
                "x5t": self.kid,
                "n": URL_SAFE_NO_PAD.encode(&self.modulus),
                "e": URL_SAFE_NO_PAD.encode(&self.exponent),
                "x5c": [self.certificate],
                "issuer": issuer,
            }]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_tokens_it_can_verify_and_rejects_tampering() {
        let signer = TokenSigner::generate().unwrap();
        let token = signer
            .sign(&serde_json::json!({"tid": "t", "n": 1}))
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

        let other = TokenSigner::generate().unwrap();
        assert_eq!(
            other.verify::<serde_json::Value>(&token).unwrap_err(),
            TokenRejection::BadSignature
        );
    }

    #[test]
    fn jwks_publishes_the_key_with_its_kid() {
        let signer = TokenSigner::generate().unwrap();
        let jwks = signer.jwks("https://example/");
        let token = signer.sign(&serde_json::json!({})).unwrap();
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

//! How consentry proves it is the app (ENTRA.md §3): a client secret, a certificate (a
//! client assertion signed PS256 and named by `x5t#S256`), or a federated assertion read
//! from a file on every request (workload identity tokens rotate under our feet).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

/// RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Assertions live ten minutes, as MSAL's do.
const ASSERTION_LIFETIME_SECS: i64 = 600;

pub enum Credential {
    Secret(SecretString),
    Certificate(Box<CertificateCredential>),
    /// A file holding an assertion from another identity provider (e.g. a Kubernetes
    /// service-account token), trusted by the app registration's federated credential.
    Federated(PathBuf),
}

/// Shows the kind and expiry, never the secret or the key.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let summary = self.summary();
        f.debug_struct("Credential")
            .field("kind", &summary.kind)
            .field("expires_at", &summary.expires_at)
            .finish()
    }
}

pub struct CertificateCredential {
    key: RsaKeyPair,
    rng: ring::rand::SystemRandom,
    /// base64url SHA-256 of the certificate's DER: the `x5t#S256` header.
    thumbprint: String,
    pub not_after: Option<OffsetDateTime>,
}

/// What operators are told about the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSummary {
    pub kind: &'static str,
    /// Where known: a certificate's `notAfter`. Microsoft does not reveal a secret's expiry
    /// to its holder.
    pub expires_at: Option<OffsetDateTime>,
}

impl Credential {
    pub fn summary(&self) -> CredentialSummary {
        match self {
            Credential::Secret(_) => CredentialSummary {
                kind: "client secret",
                expires_at: None,
            },
            Credential::Certificate(c) => CredentialSummary {
                kind: "certificate",
                expires_at: c.not_after,
            },
            Credential::Federated(_) => CredentialSummary {
                kind: "federated assertion",
                expires_at: None,
            },
        }
    }

    /// The form fields that authenticate a token request to `token_url`.
    pub fn form_fields(
        &self,
        client_id: &str,
        token_url: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        Ok(match self {
            Credential::Secret(secret) => {
                vec![("client_secret", secret.expose_secret().to_owned())]
            }
            Credential::Certificate(cert) => vec![
                ("client_assertion_type", JWT_BEARER.to_owned()),
                (
                    "client_assertion",
                    cert.assertion(client_id, token_url, now)?,
                ),
            ],
            Credential::Federated(path) => {
                let assertion = std::fs::read_to_string(path).with_context(|| {
                    format!("reading the federated assertion {}", path.display())
                })?;
                vec![
                    ("client_assertion_type", JWT_BEARER.to_owned()),
                    ("client_assertion", assertion.trim().to_owned()),
                ]
            }
        })
    }
}

impl CertificateCredential {
    /// From PEM files: the certificate, and its RSA private key (PKCS#8 or PKCS#1).
    pub fn load(certificate: &Path, key: &Path) -> anyhow::Result<CertificateCredential> {
        let cert = CertificateDer::from_pem_file(certificate)
            .with_context(|| format!("reading the certificate {}", certificate.display()))?;
        let key_der = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the private key {}", key.display()))?;
        let key = match &key_der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => bail!(
                "the private key {} must be RSA (PKCS#8 or PKCS#1)",
                key.display()
            ),
        }
        .map_err(|e| {
            anyhow::anyhow!(
                "the private key {} is not a usable RSA key: {e}",
                key.display()
            )
        })?;
        Ok(CertificateCredential::new(key, cert.as_ref()))
    }

    pub fn new(key: RsaKeyPair, certificate_der: &[u8]) -> CertificateCredential {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate_der);
        CertificateCredential {
            key,
            rng: ring::rand::SystemRandom::new(),
            thumbprint: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            not_after: not_after(certificate_der),
        }
    }

    /// A client assertion (ENTRA.md §3): PS256, `x5t#S256`, `aud` the token endpoint,
    /// `iss` = `sub` = the client id, a unique `jti`, ten minutes of life.
    pub fn assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: OffsetDateTime,
    ) -> anyhow::Result<String> {
        let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let t = now.unix_timestamp();
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": Uuid::new_v4(),
            "nbf": t,
            "iat": t,
            "exp": t + ASSERTION_LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| anyhow::anyhow!("signing the client assertion failed"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// The `notAfter` of an X.509 certificate: Certificate → TBSCertificate → (version?,
/// serial, signature, issuer, validity{notBefore, notAfter}). A few DER steps instead of a
/// whole X.509 parser; `None` if anything is not where RFC 5280 §4.1 puts it.
fn not_after(der: &[u8]) -> Option<OffsetDateTime> {
    let (_, cert, _) = read_tlv(der)?;
    let (_, mut tbs, _) = read_tlv(cert)?;
    let (tag, _, rest) = read_tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest; // explicit [0] version
    }
    for _ in 0..3 {
        tbs = read_tlv(tbs)?.2; // serial, signature algorithm, issuer
    }
    let (_, validity, _) = read_tlv(tbs)?;
    let (_, _, rest) = read_tlv(validity)?;
    let (tag, time, _) = read_tlv(rest)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime YYMMDDHHMMSSZ: years 50..99 are 19xx (RFC 5280 §4.1.2.5.1).
        0x17 => format!("{}{text}", if text.get(..2)? >= "50" { "19" } else { "20" }),
        0x18 => text.to_owned(),
        _ => return None,
    };
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]Z");
    time::PrimitiveDateTime::parse(&full, format)
        .ok()
        .map(|t| t.assume_utc())
}

/// One DER tag-length-value: (tag, value, the rest).
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePrivateKey;

    fn credential(days: i64) -> (CertificateCredential, rsa::RsaPublicKey, OffsetDateTime) {
        let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let pkcs8 = private.to_pkcs8_der().unwrap();
        let rc_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let not_after =
            time::macros::datetime!(2027-03-04 05:06:07 UTC) + time::Duration::days(days);
        params.not_after = not_after;
        let cert = params.self_signed(&rc_key).unwrap();
        let key = RsaKeyPair::from_pkcs8(pkcs8.as_bytes()).unwrap();
        (
            CertificateCredential::new(key, cert.der()),
            private.to_public_key(),
            not_after,
        )
    }

    #[test]
    fn reads_the_certificates_expiry() {
        let (c, _, not_after) = credential(0);
        assert_eq!(c.not_after, Some(not_after));
        let (c, _, not_after) = credential(30_000); // past 2049: GeneralizedTime
        assert_eq!(c.not_after, Some(not_after));
        assert_eq!(not_after_of_garbage(), None);
    }

    fn not_after_of_garbage() -> Option<OffsetDateTime> {
        not_after(&[0x30, 0x03, 0x02, 0x01])
    }

    #[test]
    fn assertions_are_ps256_with_the_thumbprint_and_verify() {
        use rsa::traits::PublicKeyParts;
        let (c, public, _) = credential(0);
        let now = time::macros::datetime!(2026-11-21 05:00:00 UTC);
        let jwt = c
            .assertion("client", "https://login.example/t/oauth2/v2.0/token", now)
            .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["x5t#S256"], c.thumbprint.as_str());
        assert_eq!(claims["iss"], "client");
        assert_eq!(claims["sub"], "client");
        assert_eq!(claims["aud"], "https://login.example/t/oauth2/v2.0/token");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(),
            600
        );
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let key = ring::signature::RsaPublicKeyComponents {
            n: public.n().to_bytes_be(),
            e: public.e().to_bytes_be(),
        };
        key.verify(
            &ring::signature::RSA_PSS_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &signature,
        )
        .unwrap();
    }
}

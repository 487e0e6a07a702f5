//! X.509 certificates registered as app credentials (ENTRA.md §3): their thumbprints, their
//! validity, and RSA signatures checked with their public key.
//!
//! The emulator reads only the handful of certificate fields the identity platform uses, with
//! the `der` crate (already a dependency of `rsa`) instead of a full X.509 library; `ring`
//! verifies the signatures. Nothing here checks a chain: Microsoft does not either, the
//! registered certificate itself is the trust anchor (self-signed ones are the norm).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, UtcTime};
use der::{Decode, Reader, Tag, Tagged};
use ring::signature::{self, UnparsedPublicKey};
use time::OffsetDateTime;

/// `rsaEncryption`, 1.2.840.113549.1.1.1 (RFC 8017 Appendix C), as DER content octets.
const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `commonName`, 2.5.4.3 (RFC 5280 §4.1.2.4).
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// ring's RSA verification takes moduli of 2048 to 8192 bits; the identity platform asks
/// for at least 2048 too.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// Why a certificate cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a PEM certificate: expected a -----BEGIN CERTIFICATE----- block")]
    NotPem,
    #[error("the PEM block is a {0}, not a CERTIFICATE: register the certificate, never a key")]
    WrongLabel(String),
    #[error("the CERTIFICATE block is not a DER-encoded X.509 certificate")]
    NotX509,
    #[error(
        "the certificate's key is not RSA: the identity platform verifies RS256 and PS256 assertions"
    )]
    NotRsa,
    #[error(
        "the certificate's RSA key has {0} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
    )]
    KeySize(usize),
}

/// The two RSA signature schemes client assertions use (ENTRA.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaScheme {
    /// `PS256`: RSASSA-PSS with SHA-256, what current MSAL versions send.
    Pss,
    /// `RS256`: RSASSA-PKCS1-v1_5 with SHA-256, the older form.
    Pkcs1,
}

/// A registered certificate, reduced to what verification needs.
#[derive(Clone)]
pub struct ClientCertificate {
    sha1: [u8; 20],
    sha256: [u8; 32],
    /// The `RSAPublicKey` (RFC 8017 §A.1.1) from the certificate, as ring takes it.
    public_key: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// The subject's common name, to tell certificates apart in listings.
    pub common_name: Option<String>,
    /// The certificate itself, for the fixture export.
    der: Vec<u8>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("thumbprint", &self.thumbprint())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// The first `CERTIFICATE` block of `pem` (a leaf comes first in a chain). Line breaks
    /// and indentation inside the block are ignored, as certificates pasted into JSON lose
    /// them.
    pub fn from_pem(pem: &str) -> Result<ClientCertificate, CertificateError> {
        const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
        const END: &str = "-----END CERTIFICATE-----";
        let Some(start) = pem.find(BEGIN) else {
            return Err(match pem_label(pem) {
                Some(label) => CertificateError::WrongLabel(label.to_owned()),
                None => CertificateError::NotPem,
            });
        };
        let body = &pem[start + BEGIN.len()..];
        let end = body.find(END).ok_or(CertificateError::NotPem)?;
        let base64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| CertificateError::NotPem)?;
        Self::from_der(&der)
    }

    pub fn from_der(der: &[u8]) -> Result<ClientCertificate, CertificateError> {
        let fields = parse(der).map_err(|_| CertificateError::NotX509)?;
        if fields.algorithm != RSA_ENCRYPTION {
            return Err(CertificateError::NotRsa);
        }
        let bits = rsa_modulus_bits(fields.public_key).ok_or(CertificateError::NotX509)?;
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(CertificateError::KeySize(bits));
        }
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(
            ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref(),
        );
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        Ok(ClientCertificate {
            sha1,
            sha256,
            public_key: fields.public_key.to_vec(),
            not_before: fields.not_before,
            not_after: fields.not_after,
            common_name: fields.common_name,
            der: der.to_vec(),
        })
    }

    /// The certificate as PEM, 64 characters a line.
    pub fn pem(&self) -> String {
        let base64 = STANDARD.encode(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in base64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// `x5t`: base64url SHA-1 of the DER certificate (RFC 7515 §4.1.7).
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1)
    }

    /// `x5t#S256`: base64url SHA-256 of the DER certificate (RFC 7515 §4.1.8).
    pub fn x5t_s256(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha256)
    }

    /// The SHA-1 thumbprint in upper-case hex, as the Azure portal and AADSTS messages show it.
    pub fn thumbprint(&self) -> String {
        hex_upper(&self.sha1)
    }

    /// Whether `thumbprint` (decoded from an `x5t` or `x5t#S256` header) names this
    /// certificate.
    pub fn has_thumbprint(&self, thumbprint: &[u8]) -> bool {
        thumbprint == self.sha1 || thumbprint == self.sha256
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now > self.not_after
    }

    /// Checks an RSA signature over `message` with this certificate's key.
    pub fn verify(&self, scheme: RsaScheme, message: &[u8], signature: &[u8]) -> bool {
        let algorithm: &'static signature::RsaParameters = match scheme {
            RsaScheme::Pss => &signature::RSA_PSS_2048_8192_SHA256,
            RsaScheme::Pkcs1 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(algorithm, &self.public_key)
            .verify(message, signature)
            .is_ok()
    }
}

pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The label of the first PEM block in `text`, if any (`PRIVATE KEY`, `PUBLIC KEY`, ...).
fn pem_label(text: &str) -> Option<&str> {
    let rest = &text[text.find("-----BEGIN ")? + "-----BEGIN ".len()..];
    let label = &rest[..rest.find("-----")?];
    (!label.is_empty() && label.len() <= 40).then_some(label)
}

/// The certificate fields the emulator uses.
struct Fields<'a> {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    common_name: Option<String>,
    /// The content octets of the key's algorithm OID.
    algorithm: &'a [u8],
    /// The subjectPublicKey bits.
    public_key: &'a [u8],
}

/// Walks `Certificate` and `TBSCertificate` (RFC 5280 §4.1) far enough to reach the
/// validity, the subject and the subject public key; everything else is skipped unread.
fn parse(der: &[u8]) -> der::Result<Fields<'_>> {
    AnyRef::from_der(der)?.sequence(|certificate| {
        let tbs: AnyRef<'_> = certificate.decode()?;
        let _signature_algorithm: AnyRef<'_> = certificate.decode()?;
        let _signature: BitStringRef<'_> = certificate.decode()?;
        tbs.sequence(|tbs| {
            // version [0] EXPLICIT, absent from v1 certificates.
            if tbs.peek_byte() == Some(0xa0) {
                let _version: AnyRef<'_> = tbs.decode()?;
            }
            let _serial_number: AnyRef<'_> = tbs.decode()?;
            let _signature: AnyRef<'_> = tbs.decode()?;
            let _issuer: AnyRef<'_> = tbs.decode()?;
            let (not_before, not_after) = tbs.decode::<AnyRef<'_>>()?.sequence(|validity| {
                let not_before = time(validity.decode()?)?;
                let not_after = time(validity.decode()?)?;
                Ok((not_before, not_after))
            })?;
            let common_name = common_name(tbs.decode()?)?;
            let (algorithm, public_key) = tbs.decode::<AnyRef<'_>>()?.sequence(|spki| {
                let algorithm = spki.decode::<AnyRef<'_>>()?.sequence(|identifier| {
                    let oid: AnyRef<'_> = identifier.decode()?;
                    oid.tag().assert_eq(Tag::ObjectIdentifier)?;
                    skip_rest(identifier)?;
                    Ok(oid.value())
                })?;
                let key: BitStringRef<'_> = spki.decode()?;
                Ok((algorithm, key.raw_bytes()))
            })?;
            // issuerUniqueID, subjectUniqueID, extensions.
            skip_rest(tbs)?;
            Ok(Fields {
                not_before,
                not_after,
                common_name,
                algorithm,
                public_key,
            })
        })
    })
}

fn skip_rest<'a>(reader: &mut der::SliceReader<'a>) -> der::Result<()> {
    while !reader.is_finished() {
        let _: AnyRef<'a> = reader.decode()?;
    }
    Ok(())
}

/// `Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }` (RFC 5280 §4.1.2.5).
fn time(value: AnyRef<'_>) -> der::Result<OffsetDateTime> {
    let since_epoch = match value.tag() {
        Tag::UtcTime => value.decode_as::<UtcTime>()?.to_unix_duration(),
        _ => value.decode_as::<GeneralizedTime>()?.to_unix_duration(),
    };
    let secs = i64::try_from(since_epoch.as_secs()).map_err(|_| Tag::UtcTime.value_error())?;
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| Tag::UtcTime.value_error())
}

/// The first `CN` of a `Name` (a SEQUENCE of SETs of type-and-value SEQUENCEs).
fn common_name(name: AnyRef<'_>) -> der::Result<Option<String>> {
    name.sequence(|rdns| {
        let mut found = None;
        while !rdns.is_finished() {
            let rdn: AnyRef<'_> = rdns.decode()?;
            let mut rdn_reader = der::SliceReader::new(rdn.value())?;
            while !rdn_reader.is_finished() {
                let attribute: AnyRef<'_> = rdn_reader.decode()?;
                attribute.sequence(|pair| {
                    let kind: AnyRef<'_> = pair.decode()?;
                    let value: AnyRef<'_> = pair.decode()?;
                    if found.is_none() && kind.value() == COMMON_NAME {
                        found = std::str::from_utf8(value.value()).ok().map(str::to_owned);
                    }
                    Ok(())
                })?;
            }
        }
        Ok(found)
    })
}

/// The size of the modulus of a DER `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`.
fn rsa_modulus_bits(public_key: &[u8]) -> Option<usize> {
    let modulus = AnyRef::from_der(public_key)
        .and_then(|key| {
            key.sequence(|fields| {
                let modulus: AnyRef<'_> = fields.decode()?;
                let _exponent: AnyRef<'_> = fields.decode()?;
                Ok(modulus)
            })
        })
        .ok()?;
    if modulus.tag() != Tag::Integer {
        return None;
    }
    let bytes = modulus.value();
    let first = bytes.iter().position(|b| *b != 0)?;
    let significant = &bytes[first..];
    Some(significant.len() * 8 - significant[0].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePrivateKey;

    /// A self-signed certificate for a fresh RSA key, as PEM, and its PKCS#8 key.
    fn self_signed(bits: usize, days: i64) -> (String, Vec<u8>) {
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, bits).unwrap();
        let pkcs8 = key.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_slice().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "consentry test");
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(2);
        params.not_after = now + time::Duration::days(days);
        (params.self_signed(&key_pair).unwrap().pem(), pkcs8)
    }

    /// ring refuses to sign with keys under 2048 bits, so a 1024-bit key is certified by
    /// a 2048-bit one.
    fn rsa_1024_certificate() -> String {
        use rsa::pkcs1::EncodeRsaPublicKey;
        struct Rsa1024(Vec<u8>);
        impl rcgen::PublicKeyData for Rsa1024 {
            fn der_bytes(&self) -> &[u8] {
                &self.0
            }
            fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
                &rcgen::PKCS_RSA_SHA256
            }
        }
        let small = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).unwrap();
        let public = Rsa1024(small.to_public_key().to_pkcs1_der().unwrap().into_vec());
        let issuer_key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
        let pkcs8 = issuer_key.to_pkcs8_der().unwrap();
        let issuer_key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &pkcs8.as_bytes().into(),
            &rcgen::PKCS_RSA_SHA256,
        )
        .unwrap();
        let issuer_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let issuer = rcgen::Issuer::from_params(&issuer_params, &issuer_key);
        rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&public, &issuer)
            .unwrap()
            .pem()
    }

    #[test]
    fn reads_thumbprints_validity_and_name_and_verifies_signatures() {
        let (pem, pkcs8) = self_signed(2048, 30);
        let cert = ClientCertificate::from_pem(&format!("  {pem}\n")).unwrap();

        let der = STANDARD
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        assert_eq!(cert.x5t(), URL_SAFE_NO_PAD.encode(sha1));
        assert!(cert.has_thumbprint(sha1.as_ref()));
        assert_eq!(cert.thumbprint().len(), 40);
        assert_eq!(cert.common_name.as_deref(), Some("consentry test"));
        assert!(!cert.is_expired(OffsetDateTime::now_utc()));
        assert!(cert.is_expired(OffsetDateTime::now_utc() + time::Duration::days(31)));

        let key = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let mut sig = vec![0u8; key.public().modulus_len()];
        key.sign(&ring::signature::RSA_PSS_SHA256, &rng, b"hello", &mut sig)
            .unwrap();
        assert!(cert.verify(RsaScheme::Pss, b"hello", &sig));
        assert!(!cert.verify(RsaScheme::Pss, b"hellp", &sig));
        assert!(!cert.verify(RsaScheme::Pkcs1, b"hello", &sig));
    }

    #[test]
    fn one_line_pem_from_json_is_read() {
        let (pem, _) = self_signed(2048, 1);
        let squashed = pem.replace('\n', "");
        assert!(ClientCertificate::from_pem(&squashed).is_ok());
    }

    #[test]
    fn refuses_what_is_not_an_rsa_certificate() {
        assert_eq!(
            ClientCertificate::from_pem("hello").unwrap_err(),
            CertificateError::NotPem
        );
        assert_eq!(
            ClientCertificate::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            )
            .unwrap_err(),
            CertificateError::WrongLabel("PRIVATE KEY".into())
        );
        assert_eq!(
            ClientCertificate::from_pem(
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
            )
            .unwrap_err(),
            CertificateError::NotX509
        );
        let ecdsa = rcgen::generate_simple_self_signed(vec!["x.example".into()]).unwrap();
        assert_eq!(
            ClientCertificate::from_pem(&ecdsa.cert.pem()).unwrap_err(),
            CertificateError::NotRsa
        );
        assert_eq!(
            ClientCertificate::from_pem(&rsa_1024_certificate()).unwrap_err(),
            CertificateError::KeySize(1024)
        );
    }
}

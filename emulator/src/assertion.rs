//! Client assertions (RFC 7523 §2.2, `private_key_jwt`) as the identity platform checks them:
//! signed by a certificate registered on the app (ENTRA.md §3), or issued by an external
//! identity provider the app trusts through a federated credential (workload identity).
//!
//! The rules and the AADSTS codes they end in are in [`AssertionError`]; `errors` words them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use time::OffsetDateTime;

use super::certificate::{ClientCertificate, RsaScheme};
use super::directory::{AppRegistration, FederatedCredential};

/// The identity platform accepts assertions five minutes either side of its clock, as it does
/// for tokens (Microsoft.IdentityModel's default skew).
const CLOCK_SKEW_SECS: i64 = 300;

/// Why an assertion was refused; each variant names the AADSTS code it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionError {
    /// AADSTS50027: not three base64url parts of JSON, or a required claim (`exp`, `jti`)
    /// missing, or an `aud` array (Microsoft refuses those: panva/openid-client#348).
    Malformed,
    /// AADSTS5002730: an `alg` other than RS256 or PS256.
    UnsupportedAlgorithm,
    /// AADSTS700027: no registered certificate has the header's thumbprint.
    KeyNotFound { thumbprint: Option<String> },
    /// AADSTS700027: the certificate's `not_after` has passed.
    KeyExpired(KeyInfo),
    /// AADSTS700027: the signature does not verify with the certificate's key.
    BadSignature(KeyInfo),
    /// AADSTS700024: `exp` has passed or `nbf` is yet to come, beyond the skew.
    OutsideValidity {
        now: OffsetDateTime,
        nbf: Option<i64>,
        exp: i64,
    },
    /// AADSTS50048: `sub` differs from `iss`.
    SubjectNotIssuer,
    /// AADSTS700021: `iss` and `sub` are not the `client_id` of the request.
    WrongClient,
    /// AADSTS700023: `aud` is not the token endpoint the client called.
    WrongAudience,
    /// AADSTS70021: no federated credential matches the assertion's issuer, subject and
    /// audience.
    NoFederatedMatch {
        issuer: String,
        subject: String,
        audience: String,
    },
}

/// The key an assertion named, for the `Found key 'Start=..., End=...'` part of AADSTS700027.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub thumbprint: String,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl KeyInfo {
    fn of(certificate: &ClientCertificate) -> KeyInfo {
        KeyInfo {
            thumbprint: certificate.thumbprint(),
            start: certificate.not_before,
            end: certificate.not_after,
        }
    }
}

/// What the request says the assertion must match.
pub struct Expected<'e> {
    pub client_id: &'e str,
    pub now: OffsetDateTime,
    /// Whether an `aud` names the token endpoint of the tenant the client called.
    pub is_token_endpoint: &'e dyn Fn(&str) -> bool,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: Option<String>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    /// Workload-identity tokens (Kubernetes') carry an array; certificate assertions may not.
    Many(Vec<String>),
}

/// Claims are optional here so that a missing one is reported by the rule that needs it,
/// after the signature has been checked.
#[derive(Debug, Deserialize)]
struct Claims {
    aud: Option<Audience>,
    iss: Option<String>,
    sub: Option<String>,
    /// NumericDate (RFC 7519 §2) may have a fraction.
    exp: Option<f64>,
    nbf: Option<f64>,
    jti: Option<String>,
}

/// A parsed, not yet verified assertion.
struct ClientAssertion<'a> {
    header: Header,
    claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    signed: &'a [u8],
    signature: Vec<u8>,
}

impl<'a> ClientAssertion<'a> {
    fn parse(jwt: &'a str) -> Result<ClientAssertion<'a>, AssertionError> {
        let mut parts = jwt.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AssertionError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| AssertionError::Malformed)
        };
        let signed = &jwt.as_bytes()[..header.len() + 1 + payload.len()];
        Ok(ClientAssertion {
            header: serde_json::from_slice(&decode(header)?)
                .map_err(|_| AssertionError::Malformed)?,
            claims: serde_json::from_slice(&decode(payload)?)
                .map_err(|_| AssertionError::Malformed)?,
            signed,
            signature: decode(signature)?,
        })
    }

    fn scheme(&self) -> Result<RsaScheme, AssertionError> {
        match self.header.alg.as_deref() {
            Some("PS256") => Ok(RsaScheme::Pss),
            Some("RS256") => Ok(RsaScheme::Pkcs1),
            _ => Err(AssertionError::UnsupportedAlgorithm),
        }
    }

    /// The thumbprint the header names: `x5t#S256` when present, else `x5t`.
    fn thumbprint(&self) -> Option<Vec<u8>> {
        let encoded = self
            .header
            .x5t_s256
            .as_deref()
            .or(self.header.x5t.as_deref())?;
        // Some libraries pad their base64url; the thumbprint is the same.
        URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).ok()
    }

    fn check_lifetime(&self, now: OffsetDateTime) -> Result<(), AssertionError> {
        let exp = self.claims.exp.ok_or(AssertionError::Malformed)? as i64;
        let nbf = self.claims.nbf.map(|n| n as i64);
        let t = now.unix_timestamp();
        if t > exp.saturating_add(CLOCK_SKEW_SECS)
            || nbf.is_some_and(|nbf| t.saturating_add(CLOCK_SKEW_SECS) < nbf)
        {
            return Err(AssertionError::OutsideValidity { now, nbf, exp });
        }
        Ok(())
    }
}

/// Verifies `jwt` as a credential of `app`. An assertion whose header names one of the app's
/// certificates is checked as a certificate credential; one from another issuer as a
/// federated credential; anything else ends in "key not found".
pub fn verify(
    jwt: &str,
    app: &AppRegistration,
    expected: &Expected<'_>,
) -> Result<(), AssertionError> {
    let assertion = ClientAssertion::parse(jwt)?;
    let thumbprint = assertion.thumbprint();
    let certificate = thumbprint
        .as_deref()
        .and_then(|t| app.certificates.iter().find(|c| c.has_thumbprint(t)));
    match (certificate, assertion.claims.iss.as_deref()) {
        (Some(certificate), _) => verify_certificate(&assertion, certificate, expected),
        (None, Some(iss)) if iss != expected.client_id => {
            verify_federated(&assertion, &app.federated, expected.now)
        }
        (None, _) => Err(AssertionError::KeyNotFound {
            thumbprint: thumbprint.map(|t| super::certificate::hex_upper(&t)),
        }),
    }
}

/// ENTRA.md §3: signed by the certificate, `iss` = `sub` = client id, `aud` = the token
/// endpoint, within its lifetime, with a `jti`.
fn verify_certificate(
    assertion: &ClientAssertion<'_>,
    certificate: &ClientCertificate,
    expected: &Expected<'_>,
) -> Result<(), AssertionError> {
    let scheme = assertion.scheme()?;
    if certificate.is_expired(expected.now) {
        return Err(AssertionError::KeyExpired(KeyInfo::of(certificate)));
    }
    if !certificate.verify(scheme, assertion.signed, &assertion.signature) {
        return Err(AssertionError::BadSignature(KeyInfo::of(certificate)));
    }
    assertion.check_lifetime(expected.now)?;
    let claims = &assertion.claims;
    if claims.sub != claims.iss {
        return Err(AssertionError::SubjectNotIssuer);
    }
    if claims.iss.as_deref() != Some(expected.client_id) {
        return Err(AssertionError::WrongClient);
    }
    match &claims.aud {
        Some(Audience::One(aud)) if (expected.is_token_endpoint)(aud) => {}
        Some(Audience::Many(_)) => return Err(AssertionError::Malformed),
        _ => return Err(AssertionError::WrongAudience),
    }
    if claims.jti.as_deref().is_none_or(str::is_empty) {
        return Err(AssertionError::Malformed);
    }
    Ok(())
}

/// Workload identity federation: an external issuer's token whose `iss`, `sub` and `aud`
/// match a federated credential exactly (Entra compares case-sensitively), signed by the key
/// registered with that credential.
fn verify_federated(
    assertion: &ClientAssertion<'_>,
    credentials: &[FederatedCredential],
    now: OffsetDateTime,
) -> Result<(), AssertionError> {
    let claims = &assertion.claims;
    let audiences: Vec<&str> = match &claims.aud {
        Some(Audience::One(aud)) => vec![aud.as_str()],
        Some(Audience::Many(list)) => list.iter().map(String::as_str).collect(),
        None => vec![],
    };
    let found = credentials.iter().find(|c| {
        claims.iss.as_deref() == Some(c.issuer.as_str())
            && claims.sub.as_deref() == Some(c.subject.as_str())
            && audiences.contains(&c.audience.as_str())
    });
    let Some(credential) = found else {
        return Err(AssertionError::NoFederatedMatch {
            issuer: claims.iss.clone().unwrap_or_default(),
            subject: claims.sub.clone().unwrap_or_default(),
            audience: audiences.join(","),
        });
    };
    // Workload-identity issuers (Kubernetes, GitHub Actions) sign RS256.
    if assertion.header.alg.as_deref() != Some("RS256") {
        return Err(AssertionError::UnsupportedAlgorithm);
    }
    let key = &credential.certificate;
    if !key.verify(RsaScheme::Pkcs1, assertion.signed, &assertion.signature) {
        return Err(AssertionError::BadSignature(KeyInfo::of(key)));
    }
    assertion.check_lifetime(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_refuses_what_is_not_a_compact_jws_of_json() {
        for jwt in ["", "a.b", "a.b.c.d", "!!.e30.c2ln", "e30.bm90IGpzb24.c2ln"] {
            assert_eq!(
                ClientAssertion::parse(jwt).err(),
                Some(AssertionError::Malformed),
                "{jwt}"
            );
        }
        let parsed = ClientAssertion::parse("eyJhbGciOiJQUzI1NiJ9.e30.c2ln").unwrap();
        assert_eq!(parsed.scheme(), Ok(RsaScheme::Pss));
        assert_eq!(parsed.signed, b"eyJhbGciOiJQUzI1NiJ9.e30");
    }

    #[test]
    fn lifetime_allows_five_minutes_of_skew() {
        let now = OffsetDateTime::now_utc();
        let t = now.unix_timestamp();
        let at = |exp: i64, nbf: Option<i64>| ClientAssertion {
            header: Header {
                alg: None,
                x5t: None,
                x5t_s256: None,
            },
            claims: Claims {
                aud: None,
                iss: None,
                sub: None,
                exp: Some(exp as f64),
                nbf: nbf.map(|n| n as f64),
                jti: None,
            },
            signed: b"",
            signature: vec![],
        };
        assert!(at(t - 299, None).check_lifetime(now).is_ok());
        assert!(at(t - 301, None).check_lifetime(now).is_err());
        assert!(at(t + 600, Some(t + 299)).check_lifetime(now).is_ok());
        assert!(at(t + 600, Some(t + 301)).check_lifetime(now).is_err());
    }
}

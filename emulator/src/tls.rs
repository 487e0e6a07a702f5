//! `--https`: a throwaway certificate authority and a server certificate it signs.
//!
//! MSAL refuses plain-http authorities, so real clients need TLS. The emulator makes a CA at
//! each start and writes only its certificate (`ca.pem`) for clients to trust; the keys stay
//! in memory. The certificates follow the stricter X.509 profile newer Python and Go
//! verifiers enforce (CA key usage, authority key identifier, SANs only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The server's TLS configuration and where the CA certificate was written.
pub struct TlsMaterial {
    pub server_config: rustls::ServerConfig,
    pub ca_pem_path: PathBuf,
}

/// Names the server certificate covers: what clients on this machine connect to.
const SERVER_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

pub fn generate(dir: &Path, extra_host: Option<&str>) -> anyhow::Result<TlsMaterial> {
    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "consentry emulator CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + time::Duration::days(30);
    let ca_cert = ca.self_signed(&ca_key).context("self-signing the CA")?;

    let mut names: Vec<String> = SERVER_NAMES.iter().map(|s| (*s).to_owned()).collect();
    if let Some(host) = extra_host.filter(|h| !names.iter().any(|n| n == h)) {
        names.push(host.to_owned());
    }
    let server_key = KeyPair::generate().context("generating the server key")?;
    let mut server = CertificateParams::new(names)?;
    server
        .distinguished_name
        .push(DnType::CommonName, "consentry emulator");
    server.use_authority_key_identifier_extension = true;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = ca.not_before;
    server.not_after = ca.not_after;
    let issuer = Issuer::from_params(&ca, &ca_key);
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .context("signing the server certificate")?;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_pem_path = dir.join("ca.pem");
    std::fs::write(&ca_pem_path, ca_cert.pem())
        .with_context(|| format!("writing {}", ca_pem_path.display()))?;

    let chain: Vec<CertificateDer<'static>> =
        vec![server_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("choosing TLS versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("loading the server certificate")?;
    Ok(TlsMaterial {
        server_config,
        ca_pem_path,
    })
}

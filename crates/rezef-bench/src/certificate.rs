//! A certificate for a bench server on loopback, made at run time (rcgen) so that TLS is
//! measured with a real chain (a CA and a leaf for `127.0.0.1`, ECDSA P-256, what rcgen and
//! most ACME issuers give) and no key is kept in the repository.

use std::path::Path;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rezef_server::TlsSettings;

/// Writes a CA and a server certificate it signed into `dir`: the server's `[tls]`
/// settings, and the CA's PEM for its clients.
pub fn loopback(dir: &Path) -> Result<(TlsSettings, Vec<u8>)> {
    let ca_key = KeyPair::generate().context("a CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rezef-bench CA");
    let ca = ca.self_signed(&ca_key).context("the CA certificate")?;
    let key = KeyPair::generate().context("a server key")?;
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let leaf = (CertificateParams::new(names).context("server parameters")?)
        .signed_by(&key, &ca, &ca_key)
        .context("the server certificate")?;
    let cert_file = dir.join("tls.crt");
    let key_file = dir.join("tls.key");
    std::fs::write(&cert_file, leaf.pem()).context("writing the certificate")?;
    std::fs::write(&key_file, key.serialize_pem()).context("writing the key")?;
    let settings = TlsSettings {
        cert_file: Some(cert_file),
        key_file: Some(key_file),
        ..TlsSettings::default()
    };
    Ok((settings, ca.pem().into_bytes()))
}

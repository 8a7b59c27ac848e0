//! Certificates for the TLS tests, made by rcgen: a certificate authority and the leaves it
//! signs, and PEM files written as a server would want them.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A certificate authority for the test.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).expect("a CA");
        Ca { cert, key }
    }

    /// A leaf certificate for `names`, for a server or a client; its PEM and its key's.
    pub fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![purpose];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }

    /// The CA's own certificate, in PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA's own certificate, in DER.
    pub fn der(&self) -> tokio_rustls::rustls::pki_types::CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// The CA's certificate written to `dir/name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        write(dir, name, &self.pem())
    }
}

/// `text` written to `dir/name`, then renamed in place: a server reading it never sees half
/// a file.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let partial = dir.join(format!("{name}.partial"));
    std::fs::write(&partial, text).expect("write");
    std::fs::rename(&partial, &path).expect("rename");
    path
}

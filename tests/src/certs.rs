//! Certificates made by the scenarios themselves (rcgen), so that TLS is tested with real
//! X.509 chains and no key material is committed: a CA per test, server certificates for
//! `127.0.0.1` and `localhost`, client certificates for mTLS, written to PEM files the way
//! an operator (or cert-manager) would put them in place.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// The names every server certificate of the scenarios carries: servers listen on loopback.
pub const LOOPBACK: [&str; 2] = ["127.0.0.1", "localhost"];

/// A certificate authority made for one test.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Never prints the CA's key.
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
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

    /// The CA's own certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for [`LOOPBACK`].
    pub fn server(&self) -> Leaf {
        self.issue(&LOOPBACK, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate naming `who`, for mTLS.
    pub fn client(&self, who: &str) -> Leaf {
        self.issue(&[who], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().expect("a key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![purpose];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Writes `text` to `dir/name` whole: written beside it, then renamed over it, so a server
/// reading it never sees half a file (as `kubectl`'s secret volumes and cert-manager do).
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let partial = dir.join(format!(".{name}.partial"));
    std::fs::write(&partial, text).expect("write");
    std::fs::rename(&partial, &path).expect("rename");
    path
}

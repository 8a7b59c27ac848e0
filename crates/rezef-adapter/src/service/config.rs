//! An adapter binary's settings, layered as the server's are: defaults → a TOML file
//! (`--config`) → environment variables with the adapter's prefix (`REZEF_TWILIO_`), nested
//! keys joined by `__` (`REZEF_TWILIO_SPOOL__MAX_BYTES=1000000`). Every adapter has the
//! sections here ([`RezefSettings`] as `[rezef]`, [`SpoolSettings`] as `[spool]`,
//! [`HttpSettings`] as `[http]`) beside its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::spool::SpoolLimits;
use crate::{Client, Error, PublisherConfig, TlsOptions};

/// `[rezef]`: the server the adapter publishes to, and how it proves itself there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RezefSettings {
    /// `http://host:port`, or `https://host:port` for TLS.
    pub address: String,
    /// An API key (`rzf_…`, from `rezef keys create`) for a server that wants one.
    pub api_key: Option<String>,
    /// PEM CA certificates that signed the server's certificate (TLS); unset: the public
    /// web's roots.
    pub ca_file: Option<PathBuf>,
    /// This adapter's PEM certificate and key, for a server that asks for one (mTLS).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// The name the server's certificate must carry, when not the address's host.
    pub tls_domain: Option<String>,
}

impl Default for RezefSettings {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:50051".into(),
            api_key: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            tls_domain: None,
        }
    }
}

impl RezefSettings {
    /// A client that connects on its first call (the adapter starts while Rezef is down).
    pub fn client(&self) -> Result<Client, Error> {
        let tls = self.tls()?;
        let client = Client::connect_lazy(self.address.clone(), tls)?;
        match &self.api_key {
            Some(key) => client.with_token(key.clone()),
            None => Ok(client),
        }
    }

    /// TLS for an `https://` address, from the files named.
    fn tls(&self) -> Result<Option<TlsOptions>, Error> {
        if !self.address.starts_with("https://") {
            return Ok(None);
        }
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| Error::Config(format!("rezef: cannot read {}: {e}", path.display())))
        };
        let identity_pem = match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => {
                return Err(Error::Config(
                    "rezef: client_cert_file and client_key_file go together".into(),
                ));
            }
        };
        Ok(Some(TlsOptions {
            ca_pem: self.ca_file.as_deref().map(read).transpose()?,
            identity_pem,
            domain: self.tls_domain.clone(),
        }))
    }
}

/// `[spool]`: where accepted events wait for the server (docs/adapters.md, "The spool").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolSettings {
    pub dir: PathBuf,
    /// Bytes of events waiting for the server at most; past it new events are refused.
    pub max_bytes: u64,
}

impl Default for SpoolSettings {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("spool"),
            max_bytes: SpoolLimits::default().max_bytes,
        }
    }
}

impl SpoolSettings {
    pub fn publisher_config(&self) -> PublisherConfig {
        let mut config = PublisherConfig::new(&self.dir);
        config.spool.max_bytes = self.max_bytes;
        config
    }
}

/// `[http]`: where the adapter's webhooks, health and metrics are served.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    pub listen: SocketAddr,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
        }
    }
}

/// Settings taken from their variables as they are: figment reads an environment value as
/// TOML-like data (`0123` would be the number 123), which would change a secret made of
/// digits. As the server's `VERBATIM` list (crates/rezef/src/config.rs).
const VERBATIM: &[&str] = &["rezef.api_key"];

/// `T` from its defaults, then `file` (which must exist, when given), then the variables
/// starting with `env_prefix` (the [`VERBATIM`] ones as they are).
pub fn load<T>(file: Option<&Path>, env_prefix: &str) -> Result<T, Error>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment = figment.merge(Env::prefixed(env_prefix).split("__"));
    for key in VERBATIM {
        let var = format!(
            "{env_prefix}{}",
            key.replace('.', "__").to_ascii_uppercase()
        );
        if let Ok(value) = std::env::var(&var) {
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    figment.extract().map_err(|e| Error::Config(e.to_string()))
}

/// A duration as whole milliseconds, for settings named `…_ms`
/// (`#[serde(with = "rezef_adapter::service::millis")]`).
pub mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
// figment's test jail returns its large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Adapter {
        rezef: RezefSettings,
        spool: SpoolSettings,
        http: HttpSettings,
    }

    #[test]
    fn a_file_overrides_the_defaults_and_the_environment_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "adapter.toml",
                "[rezef]\naddress = \"http://rezef:50051\"\n[spool]\nmax_bytes = 1000\n",
            )?;
            jail.set_env("REZEF_TEST_SPOOL__MAX_BYTES", "2000");
            let loaded: Adapter =
                load(Some(Path::new("adapter.toml")), "REZEF_TEST_").map_err(|e| e.to_string())?;
            assert_eq!(loaded.rezef.address, "http://rezef:50051");
            assert_eq!(loaded.spool.max_bytes, 2000);
            assert_eq!(loaded.http.listen, HttpSettings::default().listen);
            Ok(())
        });
    }

    #[test]
    fn an_api_key_of_digits_is_taken_as_it_is() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REZEF_TEST_REZEF__API_KEY", "0123e4");
            let loaded: Adapter = load(None, "REZEF_TEST_").map_err(|e| e.to_string())?;
            assert_eq!(loaded.rezef.api_key.as_deref(), Some("0123e4"));
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_or_a_missing_file_is_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("adapter.toml", "[spool]\nmax_byte = 1000\n")?;
            let unknown = load::<Adapter>(Some(Path::new("adapter.toml")), "REZEF_TEST_");
            assert!(unknown.is_err_and(|e| e.to_string().contains("max_byte")));
            let missing = load::<Adapter>(Some(Path::new("none.toml")), "REZEF_TEST_");
            assert!(missing.is_err());
            Ok(())
        });
    }
}

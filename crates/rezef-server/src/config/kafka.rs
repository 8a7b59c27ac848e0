//! How Rezef reaches a Kafka cluster that asks for TLS or SASL: the typed `[log.kafka]`
//! settings (`security_protocol`, `ssl_*`, `sasl_*`), the `[log.kafka.librdkafka]` table for
//! any other librdkafka property, and the one translation of both into librdkafka's
//! properties, which every client of the log (producer, consumers, group member, admin) gets.
//!
//! Typed settings exist for what most deployments need, so that a typo or a missing password
//! fails at start naming the key instead of at the first connection; the table is the way to
//! everything else librdkafka knows. A property is set one way only: a table entry that a
//! typed setting owns is refused. Secrets (`sasl_password`, `ssl_key_password`, and table
//! entries that look like one) never appear in `Debug` output, so not in logs either.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::KafkaSettings;

/// What stands in for a secret in `Debug` output.
const REDACTED: &str = "<redacted>";

/// `log.kafka.security_protocol`: librdkafka's `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS (with a client certificate: mutual TLS).
    Ssl,
    /// SASL authentication over a plain connection.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name, which is also the configuration's.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `log.kafka.sasl_mechanism`: librdkafka's `sasl.mechanisms`, those built into librdkafka
/// (Kerberos would need cyrus-sasl, which Rezef does not build).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// A password: its `Debug` form says only that there is one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the one place that hands it to librdkafka.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `[log.kafka.librdkafka]`: further librdkafka properties, name to value, applied after the
/// typed settings. Values of properties that hold secrets are redacted in `Debug` output.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Librdkafka(pub BTreeMap<String, String>);

impl fmt::Debug for Librdkafka {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.iter().map(|(key, value)| {
            let value = if is_secret(key) { REDACTED } else { value };
            (key, value)
        });
        f.debug_map().entries(shown).finish()
    }
}

/// Whether a librdkafka property holds a secret (a password, a private key, a client secret).
pub fn is_secret(property: &str) -> bool {
    let property = property.to_ascii_lowercase();
    ["password", "secret", ".pem", "sasl.oauthbearer.config"]
        .iter()
        .any(|marker| property.contains(marker))
}

/// The typed settings and the librdkafka properties they own. `sasl.mechanism` is
/// librdkafka's alias of `sasl.mechanisms`.
const OWNED: &[(&str, &[&str])] = &[
    ("security_protocol", &["security.protocol"]),
    ("ssl_ca_file", &["ssl.ca.location"]),
    ("ssl_cert_file", &["ssl.certificate.location"]),
    ("ssl_key_file", &["ssl.key.location"]),
    ("ssl_key_password", &["ssl.key.password"]),
    ("sasl_mechanism", &["sasl.mechanisms", "sasl.mechanism"]),
    ("sasl_username", &["sasl.username"]),
    ("sasl_password", &["sasl.password"]),
];

impl KafkaSettings {
    /// The librdkafka properties every client of the log gets: the typed settings, then the
    /// `[log.kafka.librdkafka]` table.
    pub fn librdkafka_properties(&self) -> BTreeMap<String, String> {
        let path = |file: &Option<PathBuf>| file.as_ref().map(|f| f.display().to_string());
        let typed = [
            (
                "security.protocol",
                Some(self.security_protocol.as_str().to_owned()),
            ),
            ("ssl.ca.location", path(&self.ssl_ca_file)),
            ("ssl.certificate.location", path(&self.ssl_cert_file)),
            ("ssl.key.location", path(&self.ssl_key_file)),
            (
                "ssl.key.password",
                self.ssl_key_password
                    .as_ref()
                    .map(|s| s.expose().to_owned()),
            ),
            (
                "sasl.mechanisms",
                self.sasl_mechanism.map(|m| m.as_str().to_owned()),
            ),
            ("sasl.username", self.sasl_username.clone()),
            (
                "sasl.password",
                self.sasl_password.as_ref().map(|s| s.expose().to_owned()),
            ),
        ];
        let typed = typed
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_owned(), value?)));
        let table = self
            .librdkafka
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()));
        typed.chain(table).collect()
    }

    /// What is wrong with the TLS and SASL settings, naming the key; `None` when nothing.
    pub(super) fn security_problem(&self) -> Option<String> {
        let protocol = self.security_protocol;
        let named = format!("log.kafka.security_protocol = \"{}\"", protocol.as_str());
        for key in self.librdkafka.0.keys() {
            let normalized = key.trim().to_ascii_lowercase();
            let owner = OWNED
                .iter()
                .find(|(_, properties)| properties.contains(&normalized.as_str()));
            if let Some((setting, _)) = owner {
                return Some(format!(
                    "log.kafka.librdkafka.\"{key}\" duplicates log.kafka.{setting}: set that instead"
                ));
            }
        }
        let tls_files = [
            ("ssl_ca_file", self.ssl_ca_file.is_some()),
            ("ssl_cert_file", self.ssl_cert_file.is_some()),
            ("ssl_key_file", self.ssl_key_file.is_some()),
            ("ssl_key_password", self.ssl_key_password.is_some()),
        ];
        if let Some((key, _)) = tls_files.iter().find(|(_, set)| *set && !protocol.tls()) {
            return Some(format!(
                "log.kafka.{key} needs log.kafka.security_protocol = \"ssl\" or \"sasl_ssl\", \
                 not {named}"
            ));
        }
        if self.ssl_cert_file.is_some() != self.ssl_key_file.is_some() {
            return Some("log.kafka.ssl_cert_file and log.kafka.ssl_key_file go together".into());
        }
        if self.ssl_key_password.is_some() && self.ssl_key_file.is_none() {
            return Some("log.kafka.ssl_key_password needs log.kafka.ssl_key_file".into());
        }
        let sasl = [
            ("sasl_mechanism", self.sasl_mechanism.is_some()),
            ("sasl_username", self.sasl_username.is_some()),
            ("sasl_password", self.sasl_password.is_some()),
        ];
        if protocol.sasl() {
            let missing = sasl.iter().find(|(_, set)| !*set);
            if let Some((key, _)) = missing {
                return Some(format!("log.kafka.{key} is required with {named}"));
            }
            if self.sasl_username.as_deref().is_some_and(str::is_empty) {
                return Some("log.kafka.sasl_username must not be empty".into());
            }
        } else if let Some((key, _)) = sasl.iter().find(|(_, set)| *set) {
            return Some(format!(
                "log.kafka.{key} needs log.kafka.security_protocol = \"sasl_plaintext\" or \
                 \"sasl_ssl\", not {named}"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_ssl() -> KafkaSettings {
        KafkaSettings {
            security_protocol: SecurityProtocol::SaslSsl,
            ssl_ca_file: Some("/etc/rezef/kafka-ca.pem".into()),
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            sasl_username: Some("rezef".into()),
            sasl_password: Some(Secret::new("hunter2")),
            ..KafkaSettings::default()
        }
    }

    #[test]
    fn typed_settings_become_librdkafka_properties_and_the_table_follows() {
        let mut settings = sasl_ssl();
        settings.librdkafka.0.insert(
            "ssl.endpoint.identification.algorithm".into(),
            "none".into(),
        );
        assert_eq!(settings.security_problem(), None);
        let properties = settings.librdkafka_properties();
        let get = |key: &str| properties.get(key).map(String::as_str);
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("ssl.ca.location"), Some("/etc/rezef/kafka-ca.pem"));
        assert_eq!(get("sasl.mechanisms"), Some("SCRAM-SHA-512"));
        assert_eq!(get("sasl.username"), Some("rezef"));
        assert_eq!(get("sasl.password"), Some("hunter2"));
        assert_eq!(get("ssl.endpoint.identification.algorithm"), Some("none"));
        assert_eq!(get("ssl.certificate.location"), None);
        assert_eq!(
            KafkaSettings::default().librdkafka_properties(),
            BTreeMap::from([("security.protocol".to_owned(), "plaintext".to_owned())])
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut settings = sasl_ssl();
        settings.ssl_key_password = Some(Secret::new("key-secret"));
        let table = &mut settings.librdkafka.0;
        table.insert("sasl.oauthbearer.client.secret".into(), "s3cr3t".into());
        table.insert("ssl.key.pem".into(), "-----BEGIN PRIVATE KEY-----".into());
        table.insert("linger.ms".into(), "5".into());
        let shown = format!("{settings:?}");
        for secret in ["hunter2", "key-secret", "s3cr3t", "BEGIN PRIVATE KEY"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("\"linger.ms\": \"5\""), "{shown}");
        assert!(
            shown.contains("rezef"),
            "the user name is no secret: {shown}"
        );
    }

    fn problem(change: impl FnOnce(&mut KafkaSettings)) -> String {
        let mut settings = sasl_ssl();
        change(&mut settings);
        settings.security_problem().unwrap_or_default()
    }

    #[test]
    fn a_table_entry_owned_by_a_typed_setting_is_refused_naming_both() {
        let said = problem(|s| {
            s.librdkafka
                .0
                .insert("sasl.password".into(), "other".into());
        });
        assert_eq!(
            said,
            "log.kafka.librdkafka.\"sasl.password\" duplicates log.kafka.sasl_password: set that instead"
        );
        let said = problem(|s| {
            s.librdkafka
                .0
                .insert("SASL.Mechanism".into(), "PLAIN".into());
        });
        assert!(said.contains("log.kafka.sasl_mechanism"), "{said}");
        let said = problem(|s| {
            s.librdkafka
                .0
                .insert("security.protocol".into(), "ssl".into());
        });
        assert!(said.contains("log.kafka.security_protocol"), "{said}");
    }

    #[test]
    fn sasl_needs_a_mechanism_a_user_and_a_password() {
        assert_eq!(
            problem(|s| s.sasl_username = None),
            "log.kafka.sasl_username is required with log.kafka.security_protocol = \"sasl_ssl\""
        );
        assert!(problem(|s| s.sasl_password = None).contains("log.kafka.sasl_password"));
        assert!(problem(|s| s.sasl_mechanism = None).contains("log.kafka.sasl_mechanism"));
        assert!(problem(|s| s.sasl_username = Some(String::new())).contains("sasl_username"));
        let said = problem(|s| s.security_protocol = SecurityProtocol::Ssl);
        assert!(
            said.starts_with("log.kafka.sasl_mechanism needs log.kafka.security_protocol"),
            "credentials that would go unused: {said}"
        );
    }

    #[test]
    fn tls_files_need_a_tls_protocol_and_a_certificate_needs_its_key() {
        let said = problem(|s| s.security_protocol = SecurityProtocol::SaslPlaintext);
        assert!(said.starts_with("log.kafka.ssl_ca_file needs"), "{said}");
        assert!(said.contains("\"sasl_plaintext\""), "{said}");
        let said = problem(|s| s.ssl_cert_file = Some("client.pem".into()));
        assert_eq!(
            said,
            "log.kafka.ssl_cert_file and log.kafka.ssl_key_file go together"
        );
        let said = problem(|s| {
            s.ssl_cert_file = Some("client.pem".into());
            s.ssl_key_file = Some("client.key".into());
        });
        assert_eq!(said, "");
    }
}

//! Layered configuration: defaults → a TOML file → `REZEF_` environment variables → flags,
//! then validation. Nested keys use `__` in the environment
//! (`REZEF_LIMITS__MAX_BATCH_EVENTS=500`).
//!
//! figment reads an environment value as TOML-like data (`0123` is the number 123, `true` a
//! boolean), which would change a password or a user name made of digits; those few settings
//! ([`VERBATIM`]) are taken from their variables as they are.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use rezef_server::LogBackend;
use rezef_server::ServerConfig;
use serde::Serialize;

/// Settings given as flags; only those given override the layers below.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<PathBuf>,
    #[serde(skip_serializing_if = "LogOverrides::is_empty")]
    pub log: LogOverrides,
    #[serde(skip_serializing_if = "ClusterOverrides::is_empty")]
    pub cluster: ClusterOverrides,
    #[serde(skip_serializing_if = "AuthOverrides::is_empty")]
    pub auth: AuthOverrides,
    #[serde(skip_serializing_if = "ListenerOverrides::is_empty")]
    pub metrics: ListenerOverrides,
    #[serde(skip_serializing_if = "ListenerOverrides::is_empty")]
    pub dashboard: ListenerOverrides,
}

/// `[metrics]` or `[dashboard]` given as a flag: `--metrics-listen` or `--dashboard-listen`
/// sets the address and turns the listener on.
#[derive(Debug, Default, Serialize)]
pub struct ListenerOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl ListenerOverrides {
    /// Served at `listen`, if given.
    pub fn listen(listen: Option<SocketAddr>) -> Self {
        Self {
            enabled: listen.map(|_| true),
            listen,
        }
    }

    fn is_empty(&self) -> bool {
        self.enabled.is_none() && self.listen.is_none()
    }
}

/// `[auth]` settings given as flags.
#[derive(Debug, Default, Serialize)]
pub struct AuthOverrides {
    /// Only `true` is a flag (`--insecure`); absent leaves the file and environment's say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
}

impl AuthOverrides {
    fn is_empty(&self) -> bool {
        self.insecure.is_none()
    }
}

/// `[cluster]` settings given as flags.
#[derive(Debug, Default, Serialize)]
pub struct ClusterOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standby_replicas: Option<u32>,
}

impl ClusterOverrides {
    fn is_empty(&self) -> bool {
        self.node_id.is_none() && self.advertise_url.is_none() && self.standby_replicas.is_none()
    }
}

/// `[log]` settings given as flags.
#[derive(Debug, Default, Serialize)]
pub struct LogOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<LogBackend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    #[serde(skip_serializing_if = "KafkaOverrides::is_empty")]
    pub kafka: KafkaOverrides,
}

#[derive(Debug, Default, Serialize)]
pub struct KafkaOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_ms: Option<i64>,
}

/// `--log`: where events are kept.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFlag {
    /// In segment files under the data directory.
    Embedded,
    /// In a Kafka topic (`--kafka-brokers`).
    Kafka,
}

impl From<LogFlag> for LogBackend {
    fn from(flag: LogFlag) -> Self {
        match flag {
            LogFlag::Embedded => Self::Embedded,
            LogFlag::Kafka => Self::Kafka,
        }
    }
}

/// The log flags of `serve` and `rebuild`.
#[derive(Debug, Default, clap::Args)]
pub struct LogArgs {
    /// Where events are kept.
    #[arg(long, value_enum)]
    log: Option<LogFlag>,
    /// Partitions of the embedded log, each folded on a core of its own [default: 1]; fixed
    /// once events are logged.
    #[arg(long)]
    partitions: Option<u32>,
    /// Kafka bootstrap brokers, `host:port[,host:port...]` (with `--log kafka`).
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// The Kafka topic [default: rezef.events].
    #[arg(long)]
    kafka_topic: Option<String>,
    /// Partitions of the Kafka topic when it is created [default: 12].
    #[arg(long)]
    kafka_partitions: Option<u32>,
    /// The consumer group the nodes share the partitions through [default: rezef].
    #[arg(long)]
    kafka_group: Option<String>,
    /// How long a topic Rezef creates keeps events, in ms [default: -1, forever].
    #[arg(long, allow_negative_numbers = true)]
    kafka_retention_ms: Option<i64>,
}

impl From<LogArgs> for LogOverrides {
    fn from(args: LogArgs) -> Self {
        Self {
            backend: args.log.map(LogBackend::from),
            partitions: args.partitions,
            kafka: KafkaOverrides {
                brokers: args.kafka_brokers,
                topic: args.kafka_topic,
                partitions: args.kafka_partitions,
                group: args.kafka_group,
                retention_ms: args.kafka_retention_ms,
            },
        }
    }
}

impl LogOverrides {
    fn is_empty(&self) -> bool {
        self.backend.is_none() && self.partitions.is_none() && self.kafka.is_empty()
    }
}

impl KafkaOverrides {
    fn is_empty(&self) -> bool {
        self.brokers.is_none()
            && self.topic.is_none()
            && self.partitions.is_none()
            && self.group.is_none()
            && self.retention_ms.is_none()
    }
}

/// Settings whose `REZEF_` variables are read as plain strings, never as numbers or booleans.
const VERBATIM: &[&str] = &[
    "log.kafka.sasl_username",
    "log.kafka.sasl_password",
    "log.kafka.ssl_key_password",
];

/// The [`VERBATIM`] settings set in the environment, over what `Env` made of them.
fn verbatim_env(mut figment: Figment) -> Figment {
    for key in VERBATIM {
        let var = format!("REZEF_{}", key.replace('.', "__").to_ascii_uppercase());
        if let Ok(value) = std::env::var(&var) {
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    figment
}

/// Builds the server configuration. `file` is read if given (and must then exist).
pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<ServerConfig> {
    let mut figment = Figment::from(Serialized::defaults(ServerConfig::default()));
    if let Some(file) = file {
        anyhow::ensure!(
            file.exists(),
            "config file {} does not exist",
            file.display()
        );
        figment = figment.merge(Toml::file(file));
    }
    let figment = figment.merge(
        Env::prefixed("REZEF_")
            .split("__")
            // The client commands' variables, not the server's configuration.
            .ignore(&["config", "server", "tenant", "token"]),
    );
    let config: ServerConfig = verbatim_env(figment)
        .merge(Serialized::defaults(overrides))
        .extract()
        .context("invalid configuration")?;
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
// figment's test jail returns its large error type by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use rezef_server::{SaslMechanism, Secret, SecurityProtocol};

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "rezef.toml",
                "listen = \"127.0.0.1:6000\"\ndata_dir = \"from-file\"\n[limits]\nmax_batch_events = 7\n",
            )?;
            let file = Some(Path::new("rezef.toml"));
            let config = load(file, Overrides::default()).expect("file");
            assert_eq!(config.listen.port(), 6000);
            assert_eq!(config.limits.max_batch_events, 7);

            jail.set_env("REZEF_DATA_DIR", "from-env");
            jail.set_env("REZEF_LIMITS__MAX_BATCH_EVENTS", "9");
            let config = load(file, Overrides::default()).expect("env");
            assert_eq!(config.data_dir, PathBuf::from("from-env"));
            assert_eq!(config.limits.max_batch_events, 9);

            let flags = Overrides {
                data_dir: Some("from-flag".into()),
                ..Overrides::default()
            };
            let config = load(file, flags).expect("flags");
            assert_eq!(config.data_dir, PathBuf::from("from-flag"));
            assert_eq!(config.listen.port(), 6000);
            Ok(())
        });
    }

    #[test]
    fn kafka_flags_set_the_log_and_need_brokers() {
        figment::Jail::expect_with(|_| {
            let kafka = |brokers: Option<&str>| Overrides {
                log: LogOverrides {
                    backend: Some(LogBackend::Kafka),
                    partitions: None,
                    kafka: KafkaOverrides {
                        brokers: brokers.map(str::to_owned),
                        topic: Some("events".into()),
                        partitions: None,
                        group: None,
                        retention_ms: None,
                    },
                },
                ..Overrides::default()
            };
            let config = load(None, kafka(Some("127.0.0.1:9092"))).expect("kafka");
            assert_eq!(config.log.backend, LogBackend::Kafka);
            assert_eq!(
                (
                    config.log.kafka.brokers.as_str(),
                    config.log.kafka.topic.as_str()
                ),
                ("127.0.0.1:9092", "events")
            );
            let error = load(None, kafka(None)).expect_err("no brokers");
            assert!(
                format!("{error:#}").contains("log.kafka.brokers"),
                "{error:#}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_client_commands_variables_are_not_server_configuration() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REZEF_TOKEN", "rzf_ab12_cd34");
            jail.set_env("REZEF_SERVER", "http://127.0.0.1:1");
            jail.set_env("REZEF_AUTH__KEYS_FILE", "elsewhere/keys.json");
            let config = load(None, Overrides::default()).expect("loads");
            assert_eq!(
                config.auth.keys_file(&config.data_dir),
                PathBuf::from("elsewhere/keys.json")
            );
            Ok(())
        });
    }

    #[test]
    fn no_configuration_gives_the_defaults() {
        figment::Jail::expect_with(|_| {
            let config = load(None, Overrides::default()).expect("defaults");
            assert_eq!(config, ServerConfig::default());
            Ok(())
        });
    }

    #[test]
    fn the_deploy_example_is_the_defaults_and_tenants_override_continuity() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/rezef.toml");
        // Inside the jail: the other tests' jails set `REZEF_` variables, and jails take
        // turns, while a load outside one would read them mid-test.
        figment::Jail::expect_with(|jail| {
            let config = load(Some(&example), Overrides::default()).expect("the example parses");
            assert_eq!(config, ServerConfig::default());
            jail.create_file(
                "bank.toml",
                "[continuity]\ncontinuation_window = \"24h\"\n\
                 [continuity.channel_required_assurance]\nbranch = \"high\"\n\
                 [continuity.tenants.bank]\nmerge_min_assurance = \"high\"\n",
            )?;
            let config = load(Some(Path::new("bank.toml")), Overrides::default()).expect("parses");
            let rules = &config.continuity;
            assert_eq!(rules.default.continuation_window.as_secs(), 24 * 3600);
            let bank = rules.tenants.get("bank").expect("the tenant's rules");
            assert_ne!(bank, &rules.default, "the tenant has rules of its own");
            assert_eq!(
                bank.continuation_window.as_secs(),
                72 * 3600,
                "built-in defaults"
            );
            jail.create_file("typo.toml", "[continuity]\ncontinuation_windw = \"1h\"\n")?;
            assert!(load(Some(Path::new("typo.toml")), Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "listne = \"127.0.0.1:1\"\n")?;
            assert!(load(Some(Path::new("typo.toml")), Overrides::default()).is_err());
            jail.create_file("zero.toml", "[limits]\nmax_batch_events = 0\n")?;
            let error =
                load(Some(Path::new("zero.toml")), Overrides::default()).expect_err("zero events");
            assert!(format!("{error:#}").contains("max_batch_events"));
            Ok(())
        });
    }

    #[test]
    fn metrics_are_off_until_turned_on_and_a_bad_address_is_refused_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            let config = load(None, Overrides::default()).expect("defaults");
            assert!(!config.metrics.enabled);

            let flag = Overrides {
                metrics: ListenerOverrides::listen(Some("127.0.0.1:9500".parse().expect("addr"))),
                ..Overrides::default()
            };
            let config = load(None, flag).expect("--metrics-listen");
            assert!(config.metrics.enabled);
            assert_eq!(config.metrics.listen.port(), 9500);

            jail.set_env("REZEF_METRICS__ENABLED", "true");
            let config = load(None, Overrides::default()).expect("env");
            assert!(config.metrics.enabled);
            assert_eq!(config.metrics.listen.port(), 9464);

            jail.create_file("host.toml", "[metrics]\nlisten = \"localhost:9464\"\n")?;
            let error = load(Some(Path::new("host.toml")), Overrides::default())
                .expect_err("a name, not an address");
            let said = format!("{error:#}");
            assert!(said.contains("metrics.listen"), "{said}");
            assert!(said.contains("socket address"), "{said}");

            jail.create_file("same.toml", "[metrics]\nlisten = \"127.0.0.1:50051\"\n")?;
            let error = load(Some(Path::new("same.toml")), Overrides::default())
                .expect_err("the gRPC port");
            let said = format!("{error:#}");
            assert!(
                said.contains("metrics.listen must be another port"),
                "{said}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_dashboard_is_on_at_8080_until_moved_or_turned_off() {
        figment::Jail::expect_with(|jail| {
            let config = load(None, Overrides::default()).expect("defaults");
            assert!(config.dashboard.enabled);
            assert_eq!(
                config.dashboard.listen,
                "127.0.0.1:8080".parse().expect("addr")
            );

            let flag = Overrides {
                dashboard: ListenerOverrides::listen(Some("127.0.0.1:0".parse().expect("addr"))),
                ..Overrides::default()
            };
            assert_eq!(load(None, flag).expect("flag").dashboard.listen.port(), 0);

            jail.set_env("REZEF_DASHBOARD__ENABLED", "false");
            assert!(
                !load(None, Overrides::default())
                    .expect("env")
                    .dashboard
                    .enabled
            );

            jail.create_file("same.toml", "[dashboard]\nlisten = \"127.0.0.1:50051\"\n")?;
            jail.set_env("REZEF_DASHBOARD__ENABLED", "true");
            let error = load(Some(Path::new("same.toml")), Overrides::default())
                .expect_err("the gRPC port");
            let said = format!("{error:#}");
            assert!(
                said.contains("dashboard.listen must be another port"),
                "{said}"
            );
            Ok(())
        });
    }

    #[test]
    fn kafka_security_settings_come_from_the_environment_verbatim() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("REZEF_LOG__KAFKA__SECURITY_PROTOCOL", "sasl_ssl");
            jail.set_env("REZEF_LOG__KAFKA__SSL_CA_FILE", "/etc/rezef/kafka-ca.pem");
            jail.set_env("REZEF_LOG__KAFKA__SASL_MECHANISM", "SCRAM-SHA-256");
            jail.set_env("REZEF_LOG__KAFKA__SASL_USERNAME", "0042");
            jail.set_env("REZEF_LOG__KAFKA__SASL_PASSWORD", "0123");
            let config = load(None, Overrides::default()).expect("loads");
            let kafka = &config.log.kafka;
            assert_eq!(kafka.security_protocol, SecurityProtocol::SaslSsl);
            assert_eq!(kafka.sasl_mechanism, Some(SaslMechanism::ScramSha256));
            assert_eq!(kafka.sasl_username.as_deref(), Some("0042"));
            let password = kafka.sasl_password.as_ref().map(Secret::expose);
            assert_eq!(password, Some("0123"), "not the number 123");
            let properties = kafka.librdkafka_properties();
            assert_eq!(
                properties.get("ssl.ca.location").map(String::as_str),
                Some("/etc/rezef/kafka-ca.pem")
            );
            assert!(
                !format!("{config:?}").contains("0123"),
                "the password is redacted"
            );

            jail.set_env("REZEF_LOG__KAFKA__SASL_PASSWORD", "true");
            let config = load(None, Overrides::default()).expect("loads");
            let password = config.log.kafka.sasl_password.as_ref().map(Secret::expose);
            assert_eq!(password, Some("true"), "not a boolean");
            Ok(())
        });
    }

    #[test]
    fn bad_kafka_security_settings_are_refused_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            let refusal = |name: &str, toml: &str| {
                std::fs::write(name, toml).expect("write");
                let error = load(Some(Path::new(name)), Overrides::default()).expect_err("refused");
                format!("{error:#}")
            };
            let said = refusal(
                "protocol.toml",
                "[log.kafka]\nsecurity_protocol = \"tls\"\n",
            );
            assert!(said.contains("security_protocol"), "{said}");
            let said = refusal(
                "mechanism.toml",
                "[log.kafka]\nsecurity_protocol = \"sasl_plaintext\"\nsasl_mechanism = \"GSSAPI\"\n",
            );
            assert!(said.contains("sasl_mechanism"), "{said}");
            let said = refusal(
                "no-user.toml",
                "[log.kafka]\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"PLAIN\"\n\
                 sasl_password = \"pw\"\n",
            );
            assert!(
                said.contains("log.kafka.sasl_username is required"),
                "{said}"
            );
            let said = refusal(
                "duplicate.toml",
                "[log.kafka]\nsecurity_protocol = \"ssl\"\n\
                 [log.kafka.librdkafka]\n\"ssl.ca.location\" = \"/ca.pem\"\n",
            );
            assert!(
                said.contains(
                    "log.kafka.librdkafka.\"ssl.ca.location\" duplicates log.kafka.ssl_ca_file"
                ),
                "{said}"
            );
            let said = refusal("typo.toml", "[log.kafka]\nsasl_pasword = \"pw\"\n");
            assert!(said.contains("sasl_pasword"), "{said}");

            jail.create_file(
                "tuned.toml",
                "[log.kafka]\nsecurity_protocol = \"ssl\"\nssl_ca_file = \"/ca.pem\"\n\
                 [log.kafka.librdkafka]\n\"ssl.endpoint.identification.algorithm\" = \"none\"\n",
            )?;
            let config = load(Some(Path::new("tuned.toml")), Overrides::default()).expect("loads");
            let properties = config.log.kafka.librdkafka_properties();
            let get = |key: &str| properties.get(key).map(String::as_str);
            assert_eq!(get("security.protocol"), Some("ssl"));
            assert_eq!(get("ssl.endpoint.identification.algorithm"), Some("none"));
            Ok(())
        });
    }

    #[test]
    fn phone_rules_are_read_and_checked_at_start() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "il.toml",
                "[continuity]\ndefault_region = \"IL\"\nnon_identifying_numbers = [\"03-555-0000\"]\n\
                 [continuity.source_regions]\nlondon-pbx = \"GB\"\n",
            )?;
            let config = load(Some(Path::new("il.toml")), Overrides::default()).expect("loads");
            let rules = &config.continuity.default;
            assert_eq!(
                rules.region(Some("london-pbx")).map(|r| r.to_string()),
                Some("GB".into())
            );
            jail.create_file("region.toml", "[continuity]\ndefault_region = \"Israel\"\n")?;
            assert!(load(Some(Path::new("region.toml")), Overrides::default()).is_err());
            jail.create_file(
                "national.toml",
                "[continuity.tenants.hotel]\nnon_identifying_numbers = [\"03-555-0000\"]\n",
            )?;
            let error = load(Some(Path::new("national.toml")), Overrides::default())
                .expect_err("no region for a national number");
            let said = format!("{error:#}");
            assert!(
                said.contains("continuity.tenants.hotel.non_identifying_numbers[0]"),
                "{said}"
            );
            Ok(())
        });
    }

    #[test]
    fn measurement_rules_by_tenant_and_a_bad_value_named_at_start() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "measure.toml",
                "[measure.default]\nshort_abandon_seconds = 3\n\
                 [measure.tenants.bank.target_seconds]\nvoice = 30\n",
            )?;
            let config =
                load(Some(Path::new("measure.toml")), Overrides::default()).expect("parses");
            assert_eq!(config.measure.default.short_abandon_seconds, 3);
            let bank = config
                .measure
                .tenants
                .get("bank")
                .expect("the tenant's rules");
            assert_eq!(bank.short_abandon_seconds, 5, "built-in defaults");
            assert!(config.measure.enabled, "measured unless turned off");
            jail.create_file("off.toml", "[measure]\nenabled = false\n")?;
            let off = load(Some(Path::new("off.toml")), Overrides::default()).expect("parses");
            assert!(!off.measure.enabled);
            assert_eq!(
                off.measure.default.fcr_window_days, 7,
                "rules keep their defaults"
            );
            jail.set_env("REZEF_MEASURE__ENABLED", "false");
            let by_env = load(None, Overrides::default()).expect("parses");
            assert!(!by_env.measure.enabled);
            jail.clear_env();
            jail.create_file("bad.toml", "[measure.tenants.bank]\nfcr_window_days = 0\n")?;
            let error =
                load(Some(Path::new("bad.toml")), Overrides::default()).expect_err("no window");
            let said = format!("{error:#}");
            assert!(
                said.contains("measure.tenants.bank: fcr_window_days must be between 1 and 90"),
                "{said}"
            );
            Ok(())
        });
    }
}

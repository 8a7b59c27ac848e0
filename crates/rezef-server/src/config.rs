//! The server's settings, with defaults that make `rezef serve` work with no configuration.
//! Layering (file, `REZEF_` environment, flags) happens in the CLI; this type validates.
//! The Kafka log's TLS and SASL settings are in `config/kafka.rs`.

mod kafka;

use std::net::SocketAddr;
use std::path::PathBuf;

use rezef_events::policy::Policies;
use rezef_measure::MeasureRules;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use kafka::{Librdkafka, SaslMechanism, Secret, SecurityProtocol};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen for gRPC.
    pub listen: SocketAddr,
    /// Where the log (`log/`) and the journey store (`store/`) live.
    pub data_dir: PathBuf,
    pub limits: Limits,
    pub log: LogSettings,
    /// Continuity rules: conversation windows, merge evidence, verification policy
    /// (`[continuity]`, with per-tenant sections `[continuity.tenants.<tenant>]`).
    pub continuity: Policies,
    /// A routing configuration (TOML, see `deploy/routing.toml`) every tenant starts with;
    /// `Routing/SetRoutingConfig` replaces it per tenant. Unset: routing needs that call.
    pub routing_config: Option<PathBuf>,
    /// Before API keys (`[auth]`): keys that may see sensitive context values
    /// (`authorization: Bearer <key>` with `reveal_sensitive`), honoured only while the server
    /// has no key file. With one, the `auditor` role does this (docs/security.md).
    pub reveal_keys: Vec<String>,
    /// Who may call: API keys with roles, and whether a server without them may listen
    /// beyond loopback (docs/security.md).
    pub auth: AuthSettings,
    /// TLS on the gRPC port (`[tls]`; docs/security.md).
    pub tls: TlsSettings,
    /// This node among others sharing a Kafka log.
    pub cluster: ClusterSettings,
    /// How the projection uses memory and how often it checkpoints to the store.
    pub projection: ProjectionSettings,
    /// Prometheus's `/metrics` on a port of its own (`[metrics]`).
    pub metrics: MetricsSettings,
    /// The live web dashboard on a port of its own (`[dashboard]`; docs/dashboard.md).
    pub dashboard: DashboardSettings,
    /// How service is measured (`[measure.default]`, with per-tenant sections
    /// `[measure.tenants.<tenant>]`; docs/measurement.md).
    pub measure: MeasureRules,
}

/// `[metrics]`: the operational metrics in Prometheus's text format, at `/metrics` over
/// HTTP on a port of their own (`crate::metrics`). Off by default: a fixed port would stop
/// a second node on the same machine (Compose, tests, `rezef demo`) from starting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// Where (port 0 picks a free one). Loopback by default: the figures name tenants and
    /// queues, so expose the port only to the scraper.
    pub listen: SocketAddr,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

/// `[dashboard]`: the live web dashboard (`crate::dashboard`), over HTTP on a port of its
/// own. On by default, on loopback: `rezef serve` with no configuration shows it at
/// <http://127.0.0.1:8080/>. A second node on the same machine needs another port (or
/// `enabled = false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardSettings {
    /// Serve the dashboard.
    pub enabled: bool,
    /// Where (port 0 picks a free one). Beyond loopback only with API keys, as `listen`.
    pub listen: SocketAddr,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

/// `[auth]`: API keys. With a key file, every `rezef.v1` and `rezef.cluster.v1` call needs a
/// key (`authorization: Bearer rzf_…`) whose roles and tenant allow it; without one, the
/// server lets every caller in and so listens only on loopback unless `insecure`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// The key file `rezef keys` writes (default: `<data_dir>/keys.json`); re-read when it
    /// changes, so a revocation takes effect without a restart.
    pub keys_file: Option<PathBuf>,
    /// Serve without keys on a non-loopback address (development only).
    pub insecure: bool,
    /// The key this node sends to other nodes (`rezef.cluster.v1`): a key of all tenants
    /// with the `node` role. Unset: only calls forwarded for a client, with its key.
    pub node_key: Option<String>,
    /// What each key may ask of this node, unless the key has limits of its own
    /// (`[auth.limits]`: `calls_per_second`, `burst`, `streams`).
    pub limits: rezef_auth::Limits,
}

impl AuthSettings {
    /// Where the key file is, for a server whose data lives in `data_dir`.
    pub fn keys_file(&self, data_dir: &std::path::Path) -> PathBuf {
        (self.keys_file.clone()).unwrap_or_else(|| data_dir.join("keys.json"))
    }
}

/// `[tls]`: with a certificate and its key, the gRPC port speaks TLS only (rustls), and with a
/// client CA it asks every client for a certificate that CA signed (mTLS). The files are PEM,
/// read again when they change or on SIGHUP, so a renewed certificate needs no restart.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain the server presents, leaf first.
    pub cert_file: Option<PathBuf>,
    /// The certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// CA certificates whose client certificates are accepted; unset: no client certificate
    /// is asked for.
    pub client_ca_file: Option<PathBuf>,
    /// CA certificates that signed the other nodes' certificates, for calls to nodes whose
    /// `advertise_url` is `https://` (this node shows its own certificate to them); unset:
    /// the public web's roots. Read at start.
    pub peer_ca_file: Option<PathBuf>,
}

/// The projection in memory (`[projection]`; docs/architecture.md, "The projection").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectionSettings {
    /// MiB of journeys and identity links kept in memory besides the changed ones, for the
    /// whole node (all the partitions it folds share it; estimated sizes; a quarter is kept
    /// for identity links).
    pub cache_mib: u64,
    /// The longest time between checkpoints while anything changed, in ms. A crash makes
    /// the projector fold again what came since the last one.
    pub checkpoint_interval_ms: u64,
    /// A checkpoint starts sooner once the changed journeys reach about this many MiB.
    pub checkpoint_dirty_mib: u64,
    /// How many of the latest applied event ids are remembered: a copy of an event arriving
    /// while its id is among them is not applied again (about 50 bytes of memory each).
    pub dedup_window: u64,
    /// MiB of sled's own page cache, for each store (a Kafka node has one per partition it
    /// folds, standby copies included).
    pub store_cache_mib: u64,
    /// Whether a store opened over data warms the cache in the background, identity links
    /// first, then journeys, until each share is nine-tenths full (`rezef_store::warm`).
    pub warm_cache: bool,
}

impl Default for ProjectionSettings {
    fn default() -> Self {
        let defaults = rezef_store::ProjectionConfig::default();
        Self {
            cache_mib: defaults.cache_bytes >> 20,
            checkpoint_interval_ms: defaults.checkpoint_interval.as_millis() as u64,
            checkpoint_dirty_mib: defaults.checkpoint_dirty_bytes >> 20,
            dedup_window: defaults.dedup_window as u64,
            store_cache_mib: defaults.store_cache_bytes >> 20,
            warm_cache: true,
        }
    }
}

impl ProjectionSettings {
    pub fn store_config(&self) -> rezef_store::ProjectionConfig {
        rezef_store::ProjectionConfig {
            cache_bytes: self.cache_mib << 20,
            checkpoint_interval: std::time::Duration::from_millis(self.checkpoint_interval_ms),
            checkpoint_dirty_bytes: self.checkpoint_dirty_mib << 20,
            dedup_window: usize::try_from(self.dedup_window).unwrap_or(usize::MAX),
            store_cache_bytes: self.store_cache_mib << 20,
            measure: rezef_measure::MeasureRules::default(),
        }
    }
}

/// How a node on a Kafka log is known to the others (docs/scale-out.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Unique among the nodes. Empty: `<hostname>-<listen port>`.
    pub node_id: String,
    /// Where the other nodes send calls for this node's partitions, e.g.
    /// `http://rezef-0.rezef-headless:50051`. Empty: `http://` and the listen address (the
    /// hostname when listening on all interfaces).
    pub advertise_url: String,
    /// How many other nodes keep a standby copy of each partition (the next ones after its
    /// owner, in node-id order), so that when the owner fails the partition answers again
    /// after folding only the tail of the log. The group's assignor, not Rezef, picks the
    /// new owner: only `nodes - 1` copies make sure it has one. 0: none. Each copy costs a
    /// store and a fold of the partition.
    pub standby_replicas: u32,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            node_id: String::new(),
            advertise_url: String::new(),
            standby_replicas: 1,
        }
    }
}

/// Request limits: beyond them a call gets `RESOURCE_EXHAUSTED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Events in one publish batch.
    pub max_batch_events: usize,
    /// Bytes of one request message.
    pub max_message_bytes: usize,
    /// Bytes of one event as sent (its protobuf encoding, and the format byte).
    pub max_event_bytes: usize,
    /// Longest wait for `min_offset`, for the projection in audit calls and before a routing
    /// decision, in ms.
    pub max_wait_ms: u64,
    /// How far ahead of the server's clock an event's `occurred_at` may be, in ms: an
    /// adapter's clock may run a little fast, an event dated later is refused
    /// (`INVALID_ARGUMENT` naming `events[i].occurred_at`).
    pub max_clock_skew_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Where events are kept: `embedded` (files under `data_dir/log`) or `kafka`.
    pub backend: LogBackend,
    /// Size at which an embedded log segment is closed and a new one started.
    pub segment_bytes: u64,
    /// Partitions of the embedded log, each folded on a core of its own, customers spread
    /// over them as over a Kafka topic's (1: `data_dir/log` and `data_dir/store`; more:
    /// `data_dir/log/p<N>` and `data_dir/store/p<N>`). Fixed once events are logged:
    /// changing it would re-home customers.
    pub partitions: u32,
    /// The Kafka log (`backend = "kafka"`).
    pub kafka: KafkaSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogBackend {
    #[default]
    Embedded,
    Kafka,
}

/// The Kafka log: a topic whose partitions the nodes share through a consumer group
/// (docs/scale-out.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic, created at start if missing (retention unlimited: the log is the record).
    pub topic: String,
    /// Partitions of the topic when Rezef creates it. An existing topic must have at least
    /// this many and keeps its own count: changing it re-homes customers, an offline
    /// migration.
    pub partitions: u32,
    /// Replicas of the topic's partitions when Rezef creates it.
    pub replication: i32,
    /// How long the topic keeps events when Rezef creates it, in ms; -1 (the default) keeps
    /// them forever: the log is the record. Tiered storage is the broker's business.
    pub retention_ms: i64,
    /// How long a broker operation may take before it fails as unavailable, in ms.
    pub request_timeout_ms: u64,
    /// The consumer group through which the nodes share the partitions.
    pub group: String,
    /// How long a node that stopped answering keeps its partitions, in ms.
    pub session_timeout_ms: u64,
    /// How the clients talk to the brokers: `plaintext` (the default), `ssl`,
    /// `sasl_plaintext` or `sasl_ssl` (librdkafka's `security.protocol`).
    pub security_protocol: SecurityProtocol,
    /// CA certificates (PEM) that signed the brokers' certificates; unset: the system's.
    pub ssl_ca_file: Option<PathBuf>,
    /// The client certificate (PEM) for brokers that ask for one (mutual TLS).
    pub ssl_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub ssl_key_file: Option<PathBuf>,
    /// The password of an encrypted `ssl_key_file`.
    pub ssl_key_password: Option<Secret>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, with a `sasl_*` protocol.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// The SASL user (read verbatim from `REZEF_LOG__KAFKA__SASL_USERNAME`).
    pub sasl_username: Option<String>,
    /// Never logged; better given as `REZEF_LOG__KAFKA__SASL_PASSWORD` than in a file.
    pub sasl_password: Option<Secret>,
    /// Any other librdkafka property, `"name" = "value"` (`[log.kafka.librdkafka]`), applied
    /// after the settings above, which it may not repeat.
    pub librdkafka: Librdkafka,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topic: "rezef.events".to_owned(),
            partitions: 12,
            replication: 1,
            retention_ms: -1,
            request_timeout_ms: 30_000,
            group: "rezef".to_owned(),
            session_timeout_ms: 6_000,
            security_protocol: SecurityProtocol::Plaintext,
            ssl_ca_file: None,
            ssl_cert_file: None,
            ssl_key_file: None,
            ssl_key_password: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            librdkafka: Librdkafka::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("rezef-data"),
            limits: Limits::default(),
            log: LogSettings::default(),
            continuity: Policies::default(),
            routing_config: None,
            reveal_keys: Vec::new(),
            auth: AuthSettings::default(),
            tls: TlsSettings::default(),
            cluster: ClusterSettings::default(),
            projection: ProjectionSettings::default(),
            metrics: MetricsSettings::default(),
            dashboard: DashboardSettings::default(),
            measure: MeasureRules::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_batch_events: 10_000,
            max_message_bytes: 16 * 1024 * 1024,
            max_event_bytes: 256 * 1024,
            max_wait_ms: 10_000,
            max_clock_skew_ms: 300_000,
        }
    }
}

impl Limits {
    /// How far ahead of the server's clock an event may be dated.
    pub fn clock_skew(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max_clock_skew_ms)
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            backend: LogBackend::Embedded,
            segment_bytes: 128 * 1024 * 1024,
            partitions: 1,
            kafka: KafkaSettings::default(),
        }
    }
}

impl ServerConfig {
    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        let limits = &self.limits;
        let problems = [
            (
                limits.max_batch_events == 0,
                "limits.max_batch_events must be at least 1",
            ),
            (
                limits.max_message_bytes < 1024,
                "limits.max_message_bytes must be at least 1024",
            ),
            (
                limits.max_event_bytes < 1024,
                "limits.max_event_bytes must be at least 1024",
            ),
            (
                limits.max_clock_skew_ms > 86_400_000,
                "limits.max_clock_skew_ms must be at most 86400000 (a day)",
            ),
            (
                self.log.segment_bytes < 4096,
                "log.segment_bytes must be at least 4096",
            ),
            (
                self.data_dir.as_os_str().is_empty(),
                "data_dir must not be empty",
            ),
            (
                self.log.backend == LogBackend::Kafka && self.log.kafka.brokers.trim().is_empty(),
                "log.kafka.brokers is required with log.backend = \"kafka\"",
            ),
            (
                self.log.partitions == 0 || self.log.partitions > 256,
                "log.partitions must be between 1 and 256",
            ),
            (
                self.log.kafka.partitions == 0 || self.log.kafka.partitions > 10_000,
                "log.kafka.partitions must be between 1 and 10000",
            ),
            (
                self.log.kafka.retention_ms == 0 || self.log.kafka.retention_ms < -1,
                "log.kafka.retention_ms must be -1 (forever) or positive",
            ),
            (
                self.log.kafka.group.trim().is_empty(),
                "log.kafka.group must not be empty",
            ),
            (
                !(1_000..=300_000).contains(&self.log.kafka.session_timeout_ms),
                "log.kafka.session_timeout_ms must be between 1000 and 300000",
            ),
            (
                self.projection.checkpoint_interval_ms == 0
                    || self.projection.checkpoint_interval_ms > 3_600_000,
                "projection.checkpoint_interval_ms must be between 1 and 3600000",
            ),
            (
                self.projection.checkpoint_dirty_mib == 0,
                "projection.checkpoint_dirty_mib must be at least 1",
            ),
            (
                self.projection.dedup_window < 1_000,
                "projection.dedup_window must be at least 1000",
            ),
            (
                !self.cluster.advertise_url.is_empty()
                    && !self.cluster.advertise_url.starts_with("http://")
                    && !self.cluster.advertise_url.starts_with("https://"),
                "cluster.advertise_url must start with http:// or https://",
            ),
            (
                (self.auth.node_key.as_deref())
                    .is_some_and(|key| key.parse::<rezef_auth::Token>().is_err()),
                "auth.node_key must be a key made by `rezef keys create` (rzf_…)",
            ),
            (
                self.tls.cert_file.is_some() != self.tls.key_file.is_some(),
                "tls.cert_file and tls.key_file go together",
            ),
            (
                self.tls.client_ca_file.is_some() && self.tls.cert_file.is_none(),
                "tls.client_ca_file needs tls.cert_file and tls.key_file",
            ),
            (
                self.metrics.enabled && same_port(self.metrics.listen, self.listen),
                "metrics.listen must be another port than listen (gRPC)",
            ),
            (
                self.dashboard.enabled
                    && (same_port(self.dashboard.listen, self.listen)
                        || (self.metrics.enabled
                            && same_port(self.dashboard.listen, self.metrics.listen))),
                "dashboard.listen must be another port than listen (gRPC) and metrics.listen",
            ),
        ];
        if let Some((_, problem)) = problems.iter().find(|(bad, _)| *bad) {
            return Err(Error::Config((*problem).to_owned()));
        }
        if let Some(problem) = self.log.kafka.security_problem() {
            return Err(Error::Config(problem));
        }
        let continuity = self.continuity.problems().into_iter().next();
        match continuity.or_else(|| self.measure.problem()) {
            Some(problem) => Err(Error::Config(problem)),
            None => Ok(()),
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }

    /// The journey store of one partition of a Kafka log, or of an embedded log of several.
    pub fn partition_store_dir(&self, partition: u32) -> PathBuf {
        self.store_dir().join(format!("p{partition}"))
    }

    /// The directory of one partition of the embedded log (the log's own when it has one).
    pub fn partition_log_dir(&self, partition: u32) -> PathBuf {
        match self.log.partitions {
            1 => self.log_dir(),
            _ => self.log_dir().join(format!("p{partition}")),
        }
    }

    /// The key store of the embedded log's sealed records (`data_dir/data-keys`): the keys
    /// forgetting a customer destroys. Not a projection: never rebuilt, kept with the log.
    pub fn data_keys_dir(&self) -> PathBuf {
        self.data_dir.join("data-keys")
    }

    /// The journey store of one partition of the embedded log.
    pub fn embedded_store_dir(&self, partition: u32) -> PathBuf {
        match self.log.partitions {
            1 => self.store_dir(),
            _ => self.partition_store_dir(partition),
        }
    }

    /// This node's id: the configured one, or `<hostname>-<listen port>`.
    pub fn node_id(&self) -> String {
        match self.cluster.node_id.trim() {
            "" => format!("{}-{}", hostname(), self.listen.port()),
            id => id.to_owned(),
        }
    }

    /// Where other nodes reach this one: the configured URL, or one made of the listen
    /// address (`port` is the port actually bound).
    pub fn advertise_url(&self, port: u16) -> String {
        match self.cluster.advertise_url.trim() {
            "" if self.listen.ip().is_unspecified() => format!("http://{}:{port}", hostname()),
            "" => format!("http://{}", SocketAddr::new(self.listen.ip(), port)),
            url => url.trim_end_matches('/').to_owned(),
        }
    }
}

/// The machine's name (`HOSTNAME`, else `/etc/hostname`, else `localhost`).
/// `a` would take the port `b` listens on (port 0 picks a free one, never a taken one).
fn same_port(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

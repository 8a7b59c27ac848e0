//! The server's settings, with defaults that make `rezef serve` work with no configuration.
//! Layering (file, `REZEF_` environment, flags) happens in the CLI; this type validates.

use std::net::SocketAddr;
use std::path::PathBuf;

use rezef_events::policy::Policies;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

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
    /// Keys that may see sensitive context values (`authorization: Bearer <key>` with
    /// `reveal_sensitive`). Empty: nobody may.
    pub reveal_keys: Vec<String>,
}

/// Request limits: beyond them a call gets `RESOURCE_EXHAUSTED`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Events in one publish batch.
    pub max_batch_events: usize,
    /// Bytes of one request message.
    pub max_message_bytes: usize,
    /// Bytes of one event as stored.
    pub max_event_bytes: usize,
    /// Longest wait for `min_offset` and for the projection in audit calls, in ms.
    pub max_wait_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Where events are kept: `embedded` (files under `data_dir/log`) or `kafka`.
    pub backend: LogBackend,
    /// Size at which an embedded log segment is closed and a new one started.
    pub segment_bytes: u64,
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

/// One node on a Kafka topic of one partition (the partitioned scale-out is docs/scale-out.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic, created at start if missing (retention unlimited: the log is the record).
    pub topic: String,
    /// Replicas of the topic's partition when Rezef creates it.
    pub replication: i32,
    /// How long a broker operation may take before it fails as unavailable, in ms.
    pub request_timeout_ms: u64,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: String::new(),
            topic: "rezef.events".to_owned(),
            replication: 1,
            request_timeout_ms: 30_000,
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
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            backend: LogBackend::Embedded,
            segment_bytes: 128 * 1024 * 1024,
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
        ];
        match problems.iter().find(|(bad, _)| *bad) {
            Some((_, problem)) => Err(Error::Config((*problem).to_owned())),
            None => Ok(()),
        }
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("log")
    }

    pub fn store_dir(&self) -> PathBuf {
        self.data_dir.join("store")
    }
}

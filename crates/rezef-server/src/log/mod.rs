//! How the server opens its log: the embedded one under the data directory, or the
//! partitions of a Kafka topic (created if missing, `kafka.rs`), for serving and for
//! `rezef rebuild`.

#[cfg(feature = "kafka")]
pub mod kafka;

use std::path::PathBuf;
use std::sync::Arc;

use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_store::Partitioning;

use crate::Result;
use crate::config::{LogBackend, ServerConfig};

/// The embedded log under the data directory.
pub fn embedded(config: &ServerConfig) -> Result<Arc<dyn Log>> {
    Ok(EmbeddedLog::open(EmbeddedLogConfig {
        segment_bytes: config.log.segment_bytes,
        ..EmbeddedLogConfig::new(config.log_dir())
    })?)
}

/// One partition of the log, for `rezef rebuild`.
#[derive(Debug)]
pub struct LogPartition {
    pub log: Arc<dyn Log>,
    /// Where its journey store lives.
    pub store_dir: PathBuf,
    /// Its place among the partitions of a Kafka topic (`None`: the embedded log).
    pub partitioning: Option<Partitioning>,
}

/// Every partition of the configured log: the embedded log is one; a Kafka topic has as
/// many as it was created with (created here if missing).
pub async fn open_partitions(config: &ServerConfig) -> Result<Vec<LogPartition>> {
    match config.log.backend {
        LogBackend::Embedded => Ok(vec![LogPartition {
            log: embedded(config)?,
            store_dir: config.store_dir(),
            partitioning: None,
        }]),
        #[cfg(feature = "kafka")]
        LogBackend::Kafka => kafka::partitions(config).await,
        #[cfg(not(feature = "kafka"))]
        LogBackend::Kafka => Err(no_kafka()),
    }
}

/// What a node built without the `kafka` feature answers a Kafka configuration with.
#[cfg(not(feature = "kafka"))]
pub fn no_kafka() -> crate::Error {
    crate::Error::Config(
        "log.backend = \"kafka\", but this build of Rezef has no Kafka support: build it with \
         `--features kafka` (the `rezef` binary has it by default)"
            .into(),
    )
}

#[cfg(all(test, not(feature = "kafka")))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_kafka_log_in_a_build_without_kafka_is_refused_saying_how_to_get_it() {
        let mut config = ServerConfig::default();
        config.log.backend = LogBackend::Kafka;
        config.log.kafka.brokers = "127.0.0.1:9092".into();
        let refused = open_partitions(&config).await.expect_err("no Kafka here");
        assert!(matches!(refused, crate::Error::Config(_)), "{refused:?}");
        assert!(
            refused.to_string().contains("--features kafka"),
            "{refused}"
        );
    }
}

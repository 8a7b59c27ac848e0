//! How the server opens its log: the embedded one under the data directory (`embedded.rs`),
//! or the partitions of a Kafka topic (created if missing, `kafka.rs`), for serving and for
//! `rezef rebuild`.

pub mod embedded;
#[cfg(feature = "kafka")]
pub mod kafka;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

use rezef_events::partition::Partitioner;
use rezef_log::Log;
use rezef_record::sealed::Sealing;
use rezef_store::{AlreadySent, Partitioning};

use crate::Result;
use crate::config::{LogBackend, ServerConfig};

/// One partition of the log, for `rezef rebuild`.
#[derive(Debug)]
pub struct LogPartition {
    pub log: Arc<dyn Log>,
    /// Where its journey store lives.
    pub store_dir: PathBuf,
    /// Its place among the log's partitions (`None`: the embedded log's only one).
    pub partitioning: Option<Partitioning>,
    /// The keys its records' personal values are sealed under.
    pub sealing: Sealing,
}

/// Every partition of the configured log: the embedded log's (`log.partitions`); a Kafka
/// topic's, as many as it was created with (created here if missing).
pub async fn open_partitions(config: &ServerConfig) -> Result<Vec<LogPartition>> {
    match config.log.backend {
        LogBackend::Embedded => {
            let logs = embedded::open(config)?;
            let sealing = embedded::sealing(config)?;
            let partitioner = NonZeroU32::new(config.log.partitions)
                .filter(|count| count.get() > 1)
                .map(Partitioner::new);
            Ok((0..config.log.partitions)
                .zip(logs)
                .map(|(partition, log)| LogPartition {
                    log,
                    store_dir: config.embedded_store_dir(partition),
                    sealing: sealing.clone(),
                    partitioning: partitioner.map(|partitioner| Partitioning {
                        partitioner,
                        partition,
                        relay: Arc::new(AlreadySent),
                    }),
                })
                .collect())
        }
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

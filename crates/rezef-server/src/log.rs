//! How the server opens its log: the embedded one under the data directory, or the
//! partitions of a Kafka topic (created if missing), for serving and for `rezef rebuild`.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rezef_events::partition::Partitioner;
use rezef_log::kafka::{KafkaConfig, KafkaLog, TopicStatus, ensure_topic};
use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log};
use rezef_store::Partitioning;

use crate::cluster::AlreadySent;
use crate::config::{LogBackend, ServerConfig};
use crate::{Error, Result};

/// The embedded log under the data directory.
pub fn embedded(config: &ServerConfig) -> Result<Arc<dyn Log>> {
    Ok(EmbeddedLog::open(EmbeddedLogConfig {
        segment_bytes: config.log.segment_bytes,
        ..EmbeddedLogConfig::new(config.log_dir())
    })?)
}

/// The configured Kafka topic's client settings (partition 0).
pub fn kafka_config(config: &ServerConfig) -> KafkaConfig {
    let settings = &config.log.kafka;
    let mut kafka = KafkaConfig::new(&settings.brokers, &settings.topic, 0);
    kafka.request_timeout = Duration::from_millis(settings.request_timeout_ms);
    kafka
}

/// How many partitions the topic has, creating it with the configured ones if missing.
pub async fn topic_partitions(config: &ServerConfig, kafka: &KafkaConfig) -> Result<NonZeroU32> {
    let topic = config.topic_settings();
    let partitions = match ensure_topic(kafka, &topic).await? {
        TopicStatus::Created => topic.partitions,
        TopicStatus::Existed { partitions } => partitions,
    };
    (u32::try_from(partitions).ok())
        .and_then(NonZeroU32::new)
        .ok_or_else(|| Error::Config(format!("topic {} has no partitions", kafka.topic)))
}

/// One partition of the topic.
pub async fn kafka_partition(kafka: &KafkaConfig, partition: u32) -> Result<Arc<dyn Log>> {
    let mut kafka = kafka.clone();
    kafka.partition = i32::try_from(partition).unwrap_or(i32::MAX);
    Ok(KafkaLog::open(kafka).await?)
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
        LogBackend::Kafka => {
            let kafka = kafka_config(config);
            let count = topic_partitions(config, &kafka).await?;
            let mut opened = Vec::new();
            for partition in 0..count.get() {
                opened.push(LogPartition {
                    log: kafka_partition(&kafka, partition).await?,
                    store_dir: config.partition_store_dir(partition),
                    partitioning: Some(Partitioning {
                        partitioner: Partitioner::new(count),
                        partition,
                        relay: Arc::new(AlreadySent),
                    }),
                });
            }
            Ok(opened)
        }
    }
}

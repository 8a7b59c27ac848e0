//! The Kafka log: the configured topic's partitions, the topic created if missing (feature
//! `kafka`, which builds librdkafka).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use rezef_events::partition::Partitioner;
use rezef_keys::KafkaKeyStore;
use rezef_log::Log;
use rezef_log::kafka::{KafkaConfig, KafkaLog, TopicSettings, TopicStatus, ensure_topic};
use rezef_record::sealed::Sealing;
use rezef_store::{AlreadySent, Partitioning};

use super::LogPartition;
use crate::config::ServerConfig;
use crate::{Error, Result};

/// The configured topic's client settings (partition 0), TLS and SASL included: every
/// client of the log (producer, readers, follower, group member, admin) is made from these.
pub fn config(config: &ServerConfig) -> KafkaConfig {
    let settings = &config.log.kafka;
    let mut kafka = KafkaConfig::new(&settings.brokers, &settings.topic, 0);
    kafka.request_timeout = Duration::from_millis(settings.request_timeout_ms);
    kafka.extra = settings.librdkafka_properties();
    kafka
}

/// How the events topic is created.
fn topic_settings(config: &ServerConfig) -> TopicSettings {
    let kafka = &config.log.kafka;
    let partitions = i32::try_from(kafka.partitions).unwrap_or(i32::MAX);
    let mut settings = TopicSettings::new(partitions, kafka.replication);
    settings.retention = u64::try_from(kafka.retention_ms)
        .ok()
        .map(Duration::from_millis);
    settings
}

/// How many partitions the topic has, creating it with the configured ones if missing.
pub async fn topic_partitions(config: &ServerConfig, kafka: &KafkaConfig) -> Result<NonZeroU32> {
    let topic = topic_settings(config);
    let partitions = match ensure_topic(kafka, &topic).await? {
        TopicStatus::Created => topic.partitions,
        TopicStatus::Existed { partitions } => partitions,
    };
    (u32::try_from(partitions).ok())
        .and_then(NonZeroU32::new)
        .ok_or_else(|| Error::Config(format!("topic {} has no partitions", kafka.topic)))
}

/// One partition of the topic.
pub async fn partition(kafka: &KafkaConfig, partition: u32) -> Result<Arc<dyn Log>> {
    let mut kafka = kafka.clone();
    kafka.partition = i32::try_from(partition).unwrap_or(i32::MAX);
    Ok(KafkaLog::open(kafka).await?)
}

/// The keys the topic's records are sealed under: the cluster's key topic `<topic>.keys`,
/// for the node and for `rezef rebuild --log kafka`.
pub async fn sealing(config: &ServerConfig, kafka: &KafkaConfig) -> Result<Sealing> {
    let mut keys = kafka.clone();
    keys.topic = format!("{}.keys", config.log.kafka.topic);
    let keys = KafkaKeyStore::open(keys, config.log.kafka.replication)
        .await
        .map_err(|e| Error::Sealing(rezef_record::Error::Keys(e)))?;
    Ok(Sealing::under(Arc::new(keys)))
}

/// Every partition of the topic, for `rezef rebuild`.
pub async fn partitions(config: &ServerConfig) -> Result<Vec<LogPartition>> {
    let kafka = self::config(config);
    let count = topic_partitions(config, &kafka).await?;
    let sealing = sealing(config, &kafka).await?;
    let mut opened = Vec::new();
    for partition in 0..count.get() {
        opened.push(LogPartition {
            log: self::partition(&kafka, partition).await?,
            store_dir: config.partition_store_dir(partition),
            sealing: sealing.clone(),
            partitioning: Some(Partitioning {
                partitioner: Partitioner::new(count),
                partition,
                relay: Arc::new(AlreadySent),
            }),
        });
    }
    Ok(opened)
}

//! Creating the log's topic: [`ensure_topic`].
//!
//! Nodes call it at start, concurrently and repeatedly, so it is idempotent: an existing topic
//! is accepted as it is when it has at least the partitions asked for (partitions can be added
//! later, never removed, and a topic with fewer would leave some partitions' logs without a
//! home), and losing a creation race to another node counts as "exists". The settings the log
//! relies on are not negotiable: `cleanup.policy=delete` (compaction would leave gaps in the
//! offsets) and `message.timestamp.type=CreateTime` (the log stamps each append itself; see the
//! module docs of [`kafka`](super)). A topic that is not a log, whose records are the latest
//! value of their key (the key store of `rezef-keys`), asks for `cleanup.policy=compact`
//! instead ([`TopicSettings::compacted`]). A replication factor above the number of brokers is
//! refused here, naming both numbers, rather than as the broker's bare error code.
//!
//! An existing topic's configuration is not compared with the settings asked for: that would
//! need DescribeConfigs, and changing it is an operator's decision.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::config::KafkaConfig;
use super::failure::{classify, is_refusal};
use super::witness::{self, Witness};
use crate::error::{Error, Result};

/// Topic settings the log sets itself; `extra` may not contain them.
const FIXED: &[&str] = &["cleanup.policy", "message.timestamp.type", "retention.ms"];

/// How often a newly created topic is looked up until every partition has a leader.
const VISIBLE_POLL: Duration = Duration::from_millis(50);

/// How the log's topic should be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSettings {
    /// Number of partitions (at least 1).
    pub partitions: i32,
    /// Replicas of each partition (at least 1, at most the number of brokers).
    pub replication: i32,
    /// How long records are kept; `None` keeps them forever (`retention.ms=-1`), which is what
    /// an event-sourced log usually wants: the log is the record.
    pub retention: Option<Duration>,
    /// `cleanup.policy=compact` instead of `delete`: the broker keeps the latest record of
    /// each key and, after `delete.retention.ms`, drops a key whose latest record is a
    /// tombstone. Never for a [`KafkaLog`](super::KafkaLog)'s topic (compaction leaves gaps in
    /// its offsets); default false.
    pub compacted: bool,
    /// Further topic-level settings (`min.insync.replicas`, `segment.bytes`, ...).
    pub extra: BTreeMap<String, String>,
}

impl TopicSettings {
    /// `partitions` partitions with `replication` replicas each, kept forever.
    pub fn new(partitions: i32, replication: i32) -> Self {
        TopicSettings {
            partitions,
            replication,
            retention: None,
            compacted: false,
            extra: BTreeMap::new(),
        }
    }

    fn validate(&self) -> Result<()> {
        if self.partitions < 1 {
            return Err(Error::Config(format!(
                "a topic needs at least 1 partition, not {}",
                self.partitions
            )));
        }
        if self.replication < 1 {
            return Err(Error::Config(format!(
                "replication must be at least 1, not {}",
                self.replication
            )));
        }
        if let Some(key) = self.extra.keys().find(|k| FIXED.contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "topic setting `{key}` is fixed by the log (retention has its own field)"
            )));
        }
        Ok(())
    }

    fn cleanup_policy(&self) -> &'static str {
        if self.compacted { "compact" } else { "delete" }
    }

    fn retention_ms(&self) -> String {
        self.retention
            .map_or_else(|| "-1".to_owned(), |d| d.as_millis().to_string())
    }
}

/// What [`ensure_topic`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicStatus {
    /// The topic was created with the settings asked for.
    Created,
    /// The topic already existed (made by an earlier run or another node) with at least the
    /// partitions asked for; its configuration was left as it is.
    Existed {
        /// Its number of partitions.
        partitions: i32,
    },
}

/// Makes sure `config.topic` exists with at least `settings.partitions` partitions, creating it
/// if it is missing, and returns once every partition has a leader (so that a [`KafkaLog`]
/// can open it at once). Connects with `config`'s brokers, client id, timeout and `extra`
/// (its `partition` is not used).
///
/// Errors: [`Error::Refused`] naming the refusal (an existing topic with fewer partitions, a
/// replication factor above the broker count, a setting the brokers reject, no permission);
/// [`Error::Unavailable`] when the brokers cannot be reached within `request_timeout`;
/// [`Error::Config`] for settings that cannot be right.
///
/// [`KafkaLog`]: super::KafkaLog
pub async fn ensure_topic(config: &KafkaConfig, settings: &TopicSettings) -> Result<TopicStatus> {
    config.validate_connection()?;
    if config.topic.is_empty() {
        return Err(Error::Config("topic is empty".to_owned()));
    }
    settings.validate()?;
    let admin: AdminClient<DefaultClientContext> = config
        .admin()
        .create()
        .map_err(|e| classify("create the Kafka admin client", &e))?;
    // Metadata comes from a consumer whose failures say why (`witness.rs`).
    let lookup = Arc::new(witness::lookup(config)?);
    let found = describe(&lookup, config).await?;
    if let Some(partitions) = found.partitions {
        return existing(config, settings, partitions);
    }
    if settings.replication > found.brokers {
        return Err(Error::Refused(format!(
            "cannot create topic {} with replication {}: the cluster has {} broker(s)",
            config.topic, settings.replication, found.brokers
        )));
    }
    let retention = settings.retention_ms();
    let mut topic = NewTopic::new(
        &config.topic,
        settings.partitions,
        TopicReplication::Fixed(settings.replication),
    )
    .set("cleanup.policy", settings.cleanup_policy())
    .set("message.timestamp.type", "CreateTime")
    .set("retention.ms", &retention);
    for (key, value) in &settings.extra {
        topic = topic.set(key, value);
    }
    let options = AdminOptions::new()
        .request_timeout(Some(config.request_timeout))
        .operation_timeout(Some(config.request_timeout));
    let what = format!(
        "create topic {} ({} partition(s), replication {})",
        config.topic, settings.partitions, settings.replication
    );
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| classify(&what, &e))?;
    match results.into_iter().next() {
        Some(Ok(_)) => {
            wait_until_led(&lookup, config, settings.partitions).await?;
            tracing::info!(
                topic = %config.topic,
                partitions = settings.partitions,
                replication = settings.replication,
                retention_ms = %retention,
                cleanup_policy = settings.cleanup_policy(),
                "created Kafka topic"
            );
            Ok(TopicStatus::Created)
        }
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => {
            // Another node created it between our look-up and our request.
            wait_until_led(&lookup, config, 1).await?;
            let partitions = describe(&lookup, config).await?.partitions.unwrap_or(0);
            existing(config, settings, partitions)
        }
        Some(Err((_, code))) if is_refusal(code) => Err(Error::Refused(format!(
            "the brokers refused to {what}: {code}"
        ))),
        Some(Err((_, code))) => Err(Error::Unavailable(format!("{what}: {code}"))),
        None => Err(Error::Unavailable(format!(
            "{what}: no answer for the topic"
        ))),
    }
}

fn existing(
    config: &KafkaConfig,
    settings: &TopicSettings,
    partitions: i32,
) -> Result<TopicStatus> {
    if partitions < settings.partitions {
        return Err(Error::Refused(format!(
            "topic {} exists with {partitions} partition(s), fewer than the {} asked for; \
             add partitions to it (kafka-topics --alter --partitions) or ask for fewer",
            config.topic, settings.partitions
        )));
    }
    Ok(TopicStatus::Existed { partitions })
}

/// What the cluster says about the topic.
struct Found {
    brokers: i32,
    /// `None` when the topic does not exist.
    partitions: Option<i32>,
    /// Whether every partition has a leader.
    led: bool,
}

async fn describe(lookup: &Arc<BaseConsumer<Witness>>, config: &KafkaConfig) -> Result<Found> {
    let lookup = Arc::clone(lookup);
    let topic = config.topic.clone();
    let timeout = config.request_timeout;
    let what = format!("look up topic {topic}");
    let metadata = {
        let what = what.clone();
        crate::blocking(move || {
            lookup
                .fetch_metadata(Some(&topic), timeout)
                .map_err(|e| witness::explained(&lookup, classify(&what, &e)))
        })
        .await?
    };
    let brokers = i32::try_from(metadata.brokers().len()).unwrap_or(i32::MAX);
    let Some(found) = metadata.topics().iter().find(|t| t.name() == config.topic) else {
        return Ok(Found {
            brokers,
            partitions: None,
            led: false,
        });
    };
    match found.error().map(RDKafkaErrorCode::from) {
        None => {
            let partitions = found.partitions();
            Ok(Found {
                brokers,
                partitions: Some(i32::try_from(partitions.len()).unwrap_or(i32::MAX)),
                led: partitions
                    .iter()
                    .all(|p| p.leader() >= 0 && p.error().is_none()),
            })
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(Found {
            brokers,
            partitions: None,
            led: false,
        }),
        Some(code) => Err(classify(&what, &KafkaError::MetadataFetch(code))),
    }
}

/// Waits until the topic is visible with at least `partitions` partitions, all led: metadata
/// reaches the brokers a moment after a creation is acknowledged.
async fn wait_until_led(
    lookup: &Arc<BaseConsumer<Witness>>,
    config: &KafkaConfig,
    partitions: i32,
) -> Result<()> {
    let deadline = Instant::now() + config.request_timeout;
    loop {
        let found = describe(lookup, config).await?;
        if found.led && found.partitions.is_some_and(|n| n >= partitions) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::Unavailable(format!(
                "topic {} was created but its partitions have no leader after {:?}",
                config.topic, config.request_timeout
            )));
        }
        tokio::time::sleep(VISIBLE_POLL).await;
    }
}

//! Scenarios on a Kafka log run against the broker `scripts/kafka-broker` starts (`.ci/run`
//! exports its address as `KAFKA_BROKERS`) and are skipped without one. Each run takes a
//! topic of its own, so runs never see each other's events.

/// Ten years, in ms: retention for the test topics (tansu 0.6 deletes the records of a
/// topic kept forever, -1: docs/kafka-testing.md).
const TEN_YEARS_MS: &str = "315360000000";

/// A fresh topic on the test broker.
#[derive(Debug, Clone)]
pub struct KafkaTopic {
    pub brokers: String,
    pub topic: String,
}

impl KafkaTopic {
    /// A topic named after `what` and the time, on the broker in `KAFKA_BROKERS`; `None`
    /// without one.
    pub fn fresh(what: &str) -> Option<Self> {
        let brokers = std::env::var("KAFKA_BROKERS")
            .ok()
            .filter(|b| !b.is_empty())?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let topic = format!("rezef-{what}-{nanos}");
        Some(Self { brokers, topic })
    }

    /// The `rezef serve` flags for this topic with `partitions`, its own consumer group.
    pub fn flags(&self, partitions: u32) -> Vec<String> {
        [
            "--log",
            "kafka",
            "--kafka-brokers",
            &self.brokers,
            "--kafka-topic",
            &self.topic,
            "--kafka-partitions",
            &partitions.to_string(),
            "--kafka-group",
            &self.topic,
            "--kafka-retention-ms",
            TEN_YEARS_MS,
        ]
        .map(String::from)
        .to_vec()
    }
}

//! The `Log` conformance suite run against `KafkaLog` on a real Kafka-protocol broker, plus
//! what librdkafka's mock cluster cannot show: topics created through the admin API
//! (CreateTopics), the broker's own time index behind `offset_for_time`, and partitions of
//! one topic as independent logs.
//!
//! The broker is the one `scripts/kafka-broker` installs and starts (tansu; see
//! docs/kafka-testing.md); `.ci/run` starts it and exports its address as
//! `KAFKA_BROKERS`. Without that variable these tests say they are skipped and pass,
//! so that `cargo test --workspace` works on a machine without the broker.
#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rezef_log::kafka::{KafkaConfig, KafkaLog, TopicSettings, TopicStatus, ensure_topic};
use rezef_log::{Error, Log};

fn brokers() -> Option<String> {
    let brokers = std::env::var("KAFKA_BROKERS").ok()?;
    (!brokers.trim().is_empty()).then_some(brokers)
}

/// A topic name no earlier run used (the broker may outlive a test run).
fn topic_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("rezef-{what}-{nanos}")
}

fn config(brokers: &str, topic: &str, partition: i32) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers, topic, partition);
    config.request_timeout = Duration::from_secs(15);
    config
}

/// A new topic with `partitions` partitions, created through the admin API.
async fn topic(brokers: &str, what: &str, partitions: i32) -> String {
    let name = topic_name(what);
    let status = ensure_topic(
        &config(brokers, &name, 0),
        &TopicSettings::new(partitions, 1),
    )
    .await
    .expect("the broker creates the topic");
    assert_eq!(status, TopicStatus::Created);
    name
}

rezef_log::conformance_tests!(async {
    let brokers = brokers()?;
    let topic = topic(&brokers, "conformance", 1).await;
    let log = KafkaLog::open(config(&brokers, &topic, 0))
        .await
        .expect("open the log");
    Some(((), log as Arc<dyn Log>))
});

fn payloads(tag: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{tag}-{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_once_and_never_shrunk() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let name = topic(&brokers, "admin", 3).await;
    let again = ensure_topic(&config(&brokers, &name, 0), &TopicSettings::new(3, 1))
        .await
        .expect("an existing topic is fine");
    assert_eq!(again, TopicStatus::Existed { partitions: 3 });
    let more = ensure_topic(&config(&brokers, &name, 0), &TopicSettings::new(6, 1)).await;
    let error = more.expect_err("a topic with fewer partitions than asked is refused");
    assert!(error.to_string().contains('3'), "{error}");
    let replicated = ensure_topic(
        &config(&brokers, &topic_name("replicated"), 0),
        &TopicSettings::new(1, 3),
    )
    .await;
    let error = replicated.expect_err("one broker cannot hold three replicas");
    assert!(error.to_string().contains('3'), "{error}");
}

/// Each partition of a topic is a log of its own: offsets from 0, its own records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_one_topic_are_independent_logs() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let name = topic(&brokers, "partitions", 2).await;
    let zero = KafkaLog::open(config(&brokers, &name, 0))
        .await
        .expect("p0");
    let one = KafkaLog::open(config(&brokers, &name, 1))
        .await
        .expect("p1");
    let a = zero.append(payloads("zero", 3)).await.expect("append p0");
    let b = one.append(payloads("one", 2)).await.expect("append p1");
    assert_eq!((a.first_offset, b.first_offset), (0, 0));
    assert_eq!((zero.end_offset(), one.end_offset()), (3, 2));
    let read = one.read(0, 10).await.expect("read p1");
    assert_eq!(
        read.into_iter().map(|r| r.payload).collect::<Vec<_>>(),
        payloads("one", 2)
    );
    zero.close().await;
    one.close().await;
}

/// What one node appends, another node's log of the same partition sees and continues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_sees_the_first_nodes_appends() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let name = topic(&brokers, "two-nodes", 1).await;
    let a = KafkaLog::open(config(&brokers, &name, 0)).await.expect("a");
    let b = KafkaLog::open(config(&brokers, &name, 0)).await.expect("b");
    let first = a.append(payloads("a", 4)).await.expect("append via a");
    tokio::time::timeout(Duration::from_secs(15), b.wait_for(first.end_offset() - 1))
        .await
        .expect("b sees a's records")
        .expect("wait_for");
    assert_eq!(b.read(0, 10).await.expect("read via b").len(), 4);
    let second = b.append(payloads("b", 1)).await.expect("append via b");
    assert_eq!(second.first_offset, 4);
    assert!(second.timestamp_ms >= first.timestamp_ms);
    a.close().await;
    b.close().await;
    assert!(matches!(a.wait_for(100).await, Err(Error::Closed)));
}

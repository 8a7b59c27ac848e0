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

mod ownership {
    use std::collections::BTreeSet;

    use rezef_log::kafka::{GroupSettings, Membership, Owned};
    use tokio::sync::watch;

    use super::*;

    fn join(brokers: &str, topic: &str, group: &str, member: &str) -> Membership {
        let settings = GroupSettings {
            group: group.to_owned(),
            member: member.to_owned(),
            session_timeout: Duration::from_secs(6),
        };
        Membership::join(&config(brokers, topic, 0), &settings).expect("join the group")
    }

    /// Waits until every member owns some partitions, none twice, all of `0..partitions`.
    async fn settled(members: &[watch::Receiver<Owned>], partitions: i32) -> Vec<BTreeSet<i32>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let sets: Vec<BTreeSet<i32>> = members
                .iter()
                .map(|m| m.borrow().partitions.clone())
                .collect();
            let total: usize = sets.iter().map(BTreeSet::len).sum();
            let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
            let everyone = sets.iter().all(|s| !s.is_empty());
            if everyone && total == union.len() && union == (0..partitions).collect() {
                return sets;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group did not settle: {sets:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn members_share_partitions_and_take_over_from_those_that_leave() {
        let Some(brokers) = brokers() else {
            eprintln!("skipped: KAFKA_BROKERS is not set");
            return;
        };
        let topic = topic(&brokers, "ownership", 6).await;
        let group = format!("{topic}-owners");
        let a = join(&brokers, &topic, &group, "a");
        let b = join(&brokers, &topic, &group, "b");
        let c = join(&brokers, &topic, &group, "c");
        let sets = settled(&[a.owned(), b.owned(), c.owned()], 6).await;
        assert!(sets.iter().all(|s| s.len() == 2), "even shares: {sets:?}");

        // A member that leaves hands its partitions over at once.
        let started = std::time::Instant::now();
        c.leave().await;
        let sets = settled(&[a.owned(), b.owned()], 6).await;
        assert!(sets.iter().all(|s| s.len() == 3), "{sets:?}");
        let handover = started.elapsed();

        // Dropping a member leaves too (a process killed outright is tests/tests/cluster.rs).
        drop(b);
        let sets = settled(&[a.owned()], 6).await;
        assert_eq!(sets[0].len(), 6);
        eprintln!("a leaving member's partitions moved in {handover:?}");
        a.leave().await;
    }
}

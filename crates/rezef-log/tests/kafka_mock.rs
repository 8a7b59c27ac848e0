//! The `Log` conformance suite run against `KafkaLog` on librdkafka's in-process mock cluster,
//! plus the Kafka-only behaviours: two logs on one partition, the timestamp floor, topic
//! administration, closing, and brokers that are down.
//!
//! The mock cluster speaks the Kafka protocol on loopback ports, so the log's real clients run
//! unchanged; each test gets its own cluster and topic. It does not implement CreateTopics
//! (topics are made with `MockCluster::create_topic`) nor time lookups (every
//! `offsets_for_times` answers "none", so `offset_for_time` takes its search path here).
#![cfg(feature = "kafka")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rezef_log::kafka::{KafkaConfig, KafkaLog, TopicSettings, TopicStatus, ensure_topic};
use rezef_log::{Error, Log};

type Mock = MockCluster<'static, DefaultProducerContext>;

fn mock(brokers: i32) -> Mock {
    MockCluster::new(brokers).expect("start a mock cluster")
}

fn topic_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("rezef-test-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn config(mock: &Mock, topic: &str, partition: i32) -> KafkaConfig {
    let mut config = KafkaConfig::new(mock.bootstrap_servers(), topic, partition);
    config.request_timeout = Duration::from_secs(10);
    config
}

/// A new topic with one partition on `mock`, and a log on it.
async fn fresh(mock: &Mock) -> (String, Arc<KafkaLog>) {
    let topic = topic_name();
    mock.create_topic(&topic, 1, 1).expect("create topic");
    let log = KafkaLog::open(config(mock, &topic, 0))
        .await
        .expect("open the log");
    (topic, log)
}

fn payloads(tag: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{tag}-{i}"))).collect()
}

rezef_log::conformance_tests!(async {
    let mock = mock(1);
    let (_topic, log) = fresh(&mock).await;
    Some((mock, log as Arc<dyn Log>))
});

/// Two nodes on one partition: what one appends, the other's `wait_for` and `read` see, with
/// the same offsets, payloads and timestamps; and the other's next append continues after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logs_on_one_partition_see_each_others_appends() {
    let mock = mock(1);
    let (topic, a) = fresh(&mock).await;
    let b = KafkaLog::open(config(&mock, &topic, 0))
        .await
        .expect("open the second log");

    let waiter = {
        let b = Arc::clone(&b);
        tokio::spawn(async move { b.wait_for(1).await })
    };
    let first = a.append(payloads("a", 2)).await.expect("append via a");
    assert_eq!((first.first_offset, first.count), (0, 2));
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("b's wait_for saw a's append")
        .expect("join")
        .expect("wait_for");
    assert_eq!(b.end_offset(), 2);
    let seen = b.read(0, 10).await.expect("read via b");
    assert_eq!(seen, a.read(0, 10).await.expect("read via a"));
    assert_eq!(
        seen.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(),
        payloads("a", 2)
    );
    assert!(seen.iter().all(|r| r.timestamp_ms == first.timestamp_ms));

    let second = b.append(payloads("b", 1)).await.expect("append via b");
    assert_eq!(second.first_offset, 2);
    assert!(second.timestamp_ms >= first.timestamp_ms);
    tokio::time::timeout(Duration::from_secs(10), a.wait_for(2))
        .await
        .expect("a's wait_for saw b's append")
        .expect("wait_for");
    let back = a.read(2, 10).await.expect("read via a");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].payload, payloads("b", 1)[0]);
    a.close().await;
    b.close().await;
}

/// Records other writers stamped ahead of our clock raise the floor of our timestamps: the
/// last record at open, and records the follower sees later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_never_fall_below_other_writers() {
    let mock = mock(1);
    let topic = topic_name();
    mock.create_topic(&topic, 1, 1).expect("create topic");
    let foreign: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .create()
        .expect("foreign producer");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ahead = now + 3_600_000;
    let produce = |ts: i64| {
        foreign.send(
            FutureRecord::<(), [u8]>::to(&topic)
                .partition(0)
                .payload(b"foreign")
                .timestamp(ts),
            Duration::from_secs(5),
        )
    };
    produce(ahead).await.expect("foreign record");

    let log = KafkaLog::open(config(&mock, &topic, 0))
        .await
        .expect("open");
    let appended = log.append(payloads("x", 1)).await.expect("append");
    assert_eq!(appended.first_offset, 1);
    assert!(
        appended.timestamp_ms >= ahead,
        "stamped below the last record"
    );

    let further = ahead + 3_600_000;
    produce(further).await.expect("second foreign record");
    tokio::time::timeout(Duration::from_secs(10), log.wait_for(2))
        .await
        .expect("the follower saw the foreign record")
        .expect("wait_for");
    let appended = log.append(payloads("y", 1)).await.expect("append");
    assert_eq!(appended.first_offset, 3);
    assert!(
        appended.timestamp_ms >= further,
        "stamped below a followed record"
    );
    let records = log.read(0, 10).await.expect("read");
    assert!(
        records
            .windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    );
    log.close().await;
}

/// A record over `message.max.bytes` is refused before anything of its batch is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_records_are_refused_whole() {
    let mock = mock(1);
    let topic = topic_name();
    mock.create_topic(&topic, 1, 1).expect("create topic");
    let mut config = config(&mock, &topic, 0);
    config
        .extra
        .insert("message.max.bytes".into(), "2000".into());
    let log = KafkaLog::open(config).await.expect("open");
    let batch = vec![Bytes::from(vec![1u8; 100]), Bytes::from(vec![2u8; 1965])];
    match log.append(batch).await {
        Err(Error::BatchTooLarge { bytes, limit }) => assert_eq!((bytes, limit), (2001, 2000)),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    assert_eq!(log.end_offset(), 0);
    let fits = log
        .append(vec![Bytes::from(vec![3u8; 1964])])
        .await
        .expect("a record at the limit");
    assert_eq!(fits.first_offset, 0, "the refused batch wrote nothing");
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_missing_topic_or_partition_is_refused() {
    let mock = mock(1);
    match KafkaLog::open(config(&mock, "no-such-topic", 0)).await {
        Err(Error::Refused(message)) => {
            assert!(
                message.contains("no-such-topic") && message.contains("does not exist"),
                "{message}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    let topic = topic_name();
    mock.create_topic(&topic, 2, 1).expect("create topic");
    match KafkaLog::open(config(&mock, &topic, 5)).await {
        Err(Error::Refused(message)) => {
            assert!(
                message.contains("2 partition(s); partition 5 does not exist"),
                "{message}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// With every broker down, an append fails as unavailable once the request timeout has
/// passed instead of hanging, and so does a read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_unavailable_when_the_brokers_are_down() {
    let mock = mock(1);
    let topic = topic_name();
    mock.create_topic(&topic, 1, 1).expect("create topic");
    let mut config = config(&mock, &topic, 0);
    config.request_timeout = Duration::from_secs(2);
    let log = KafkaLog::open(config).await.expect("open");
    log.append(payloads("up", 1))
        .await
        .expect("append while up");

    mock.broker_down(-1).expect("take the brokers down");
    let started = Instant::now();
    match log.append(payloads("down", 2)).await {
        Err(Error::Unavailable(message)) => assert!(message.contains(&topic), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // request_timeout plus the one-second grace, with room for a loaded machine.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "append took {took:?}");
    let started = Instant::now();
    assert!(matches!(log.read(0, 1).await, Err(Error::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(5));
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_without_a_reachable_broker_fails_unavailable() {
    let mut config = KafkaConfig::new("127.0.0.1:1", "events", 0);
    config.request_timeout = Duration::from_secs(1);
    let started = Instant::now();
    match KafkaLog::open(config).await {
        Err(Error::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// An existing topic is accepted, however often `ensure_topic` runs, as long as it has the
/// partitions asked for; fewer partitions are refused, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_topic_accepts_existing_topics_idempotently() {
    let mock = mock(1);
    let topic = topic_name();
    mock.create_topic(&topic, 3, 1).expect("create topic");
    let config = config(&mock, &topic, 0);
    for _ in 0..2 {
        let status = ensure_topic(&config, &TopicSettings::new(3, 1))
            .await
            .expect("ensure an existing topic");
        assert_eq!(status, TopicStatus::Existed { partitions: 3 });
    }
    let status = ensure_topic(&config, &TopicSettings::new(2, 1))
        .await
        .expect("fewer partitions asked for");
    assert_eq!(status, TopicStatus::Existed { partitions: 3 });
    match ensure_topic(&config, &TopicSettings::new(4, 1)).await {
        Err(Error::Refused(message)) => assert!(
            message.contains("exists with 3 partition(s), fewer than the 4 asked for"),
            "{message}"
        ),
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// Settings that cannot work are refused with a message naming the problem: replication above
/// the broker count, fixed topic settings, impossible counts. The mock cluster never answers
/// CreateTopics, so creating a missing topic runs into the request timeout there, as it would
/// on a cluster without a reachable controller (creation itself needs a real broker and is not
/// tested here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_topic_refuses_what_cannot_work() {
    let mock = mock(3);
    let config = config(&mock, &topic_name(), 0);
    match ensure_topic(&config, &TopicSettings::new(1, 5)).await {
        Err(Error::Refused(message)) => {
            assert!(
                message.contains("replication 5: the cluster has 3 broker(s)"),
                "{message}"
            );
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    let mut compacted = TopicSettings::new(1, 1);
    compacted
        .extra
        .insert("cleanup.policy".into(), "compact".into());
    assert!(matches!(
        ensure_topic(&config, &compacted).await,
        Err(Error::Config(m)) if m.contains("cleanup.policy")
    ));
    assert!(matches!(
        ensure_topic(&config, &TopicSettings::new(0, 1)).await,
        Err(Error::Config(_))
    ));
    let mut impatient = config.clone();
    impatient.request_timeout = Duration::from_secs(1);
    let started = Instant::now();
    match ensure_topic(&impatient, &TopicSettings::new(1, 3)).await {
        Err(Error::Unavailable(message)) => {
            assert!(message.contains(&config.topic), "{message}");
        }
        other => panic!("the mock cluster cannot create topics; got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

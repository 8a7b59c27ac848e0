//! [`KafkaKeyStore`] on a real Kafka-protocol broker: the conformance suite, then what only a
//! topic shared by several nodes shows: one node's keys found by another's lookups (which
//! catch up), one node's destroys erasing on the others, two nodes making a subject's first key
//! at once, misses answered without waiting out the bound, and a topic that is not a key
//! topic refused.
//!
//! The broker is the one `scripts/kafka-broker` installs and starts (tansu; see
//! docs/kafka-testing.md); `.ci/run` starts it and exports its address as `KAFKA_BROKERS`.
//! Without that variable these tests say they are skipped and pass, so that `cargo test`
//! works on a machine without the broker. Nothing here relies on the broker compacting
//! (tansu 0.6.0 does not): only on tombstones being read back.
#![cfg(feature = "kafka")]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rezef_keys::kafka::CATCH_UP_WAIT;
use rezef_keys::{Error, KafkaKeyStore, KeyId, KeyStore, Subject};
use rezef_log::kafka::KafkaConfig;

fn brokers() -> Option<String> {
    let brokers = std::env::var("KAFKA_BROKERS").ok()?;
    (!brokers.trim().is_empty()).then_some(brokers)
}

/// A topic name no earlier run used (the broker may outlive a test run).
fn topic_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("rezef-{what}-{nanos}.keys")
}

fn config(brokers: &str, topic: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers, topic, 0);
    config.request_timeout = Duration::from_secs(15);
    config
}

fn try_open(brokers: &str, topic: &str) -> rezef_keys::Result<KafkaKeyStore> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(KafkaKeyStore::open(config(brokers, topic), 1))
}

/// A node's store on `topic`.
fn open(brokers: &str, topic: &str) -> KafkaKeyStore {
    try_open(brokers, topic).expect("open the key store")
}

rezef_keys::conformance_tests!({
    let Some(brokers) = brokers() else {
        eprintln!("skipped: KAFKA_BROKERS is not set");
        return;
    };
    let topic = topic_name("conformance");
    ((), move || open(&brokers, &topic))
});

fn dana() -> Subject {
    Subject::identity("acme", "email", "dana.levi@example.com")
}

/// Waits (at most 15 s) until `done` holds, saying `what` if it never does.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 15 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_key_one_node_made_is_found_by_another() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let topic = topic_name("two-nodes");
    let (a, b) = (open(&brokers, &topic), open(&brokers, &topic));
    let made = a.keys_for(&[dana()]).expect("a makes a key");
    let (id, key) = &made[0];
    // At once, whether or not b's follower has read it yet: the lookup catches up.
    let found = b.key(id).expect("b finds a's key");
    assert_eq!(found.as_bytes(), key.as_bytes());
    assert_eq!(b.find(&dana()), [*id]);
    let again = b.keys_for(&[dana()]).expect("b's keys_for");
    assert_eq!(again[0].0, *id, "b hands out a's key");
}

#[test]
fn a_key_one_node_destroyed_is_gone_on_the_others() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let topic = topic_name("destroy");
    let (a, b) = (open(&brokers, &topic), open(&brokers, &topic));
    let id = a.keys_for(&[dana()]).expect("a makes a key")[0].0;
    assert!(b.key(&id).is_some(), "b has the key");
    a.destroy(&[id]).expect("a destroys it");
    // find catches up first: at once.
    assert!(b.find(&dana()).is_empty(), "b's find after a's destroy");
    // b's memory drops it when its follower reads the tombstone.
    eventually("b's key after a's destroy", || b.key(&id).is_none());
    let new = b.keys_for(&[dana()]).expect("b makes a new key")[0].0;
    assert_ne!(new, id);
    // A node that opens later reads the tombstone with the rest.
    let c = open(&brokers, &topic);
    assert!(c.key(&id).is_none(), "a node opened after the destroy");
    assert_eq!(c.find(&dana()), [new]);
}

/// Two nodes making a subject's first key at the same moment both succeed: both keys open,
/// everywhere, and find names both, so that forgetting destroys both.
#[test]
fn two_nodes_making_a_first_key_at_once_both_keys_open_and_are_destroyed() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let topic = topic_name("race");
    let stores = Arc::new([open(&brokers, &topic), open(&brokers, &topic)]);
    let mut raced = 0;
    for n in 0..10 {
        let subject = Subject::customer("acme", &format!("c-{n}"));
        let start = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|s| {
                let (stores, subject, start) = (stores.clone(), subject, start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let made = stores[s].keys_for(&[subject]).expect("keys_for");
                    (made[0].0, *made[0].1.as_bytes())
                })
            })
            .collect();
        let made: Vec<(KeyId, [u8; 32])> = threads
            .into_iter()
            .map(|t| t.join().expect("a keys_for thread"))
            .collect();
        if made[0].0 == made[1].0 {
            continue;
        }
        raced += 1;
        for store in stores.iter() {
            for (id, key) in &made {
                let found = store.key(id).map(|k| *k.as_bytes());
                assert_eq!(found.as_ref(), Some(key), "both keys open on both nodes");
            }
            let mut found = store.find(&subject);
            found.sort_unstable();
            let mut both = vec![made[0].0, made[1].0];
            both.sort_unstable();
            assert_eq!(found, both, "find names both keys");
        }
        // Both nodes hand out the same one once they have read both.
        let first = |store: &KafkaKeyStore| {
            store
                .keys_for(std::slice::from_ref(&subject))
                .expect("again")[0]
                .0
        };
        assert_eq!(first(&stores[0]), first(&stores[1]));
        stores[0]
            .destroy(&stores[0].find(&subject))
            .expect("forget the subject");
        assert!(stores[1].find(&subject).is_empty());
        for (id, _) in &made {
            assert!(stores[0].key(id).is_none());
            eventually("the other node's keys", || stores[1].key(id).is_none());
        }
    }
    assert!(raced > 0, "no attempt out of 10 made two keys at once");
}

/// A key id the topic never held is missing once the node has caught up: the lookup does not
/// wait out its bound, and the next one asks nobody.
#[test]
fn a_miss_is_answered_once_caught_up() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let topic = topic_name("miss");
    let store = open(&brokers, &topic);
    store
        .keys_for(&[dana()])
        .expect("a key, so that the topic is not empty");
    let never = KeyId([0xee; 16]);
    let started = Instant::now();
    assert!(store.key(&never).is_none());
    let first = started.elapsed();
    assert!(first < CATCH_UP_WAIT / 2, "the first miss took {first:?}");
    let started = Instant::now();
    assert!(store.key(&never).is_none());
    let second = started.elapsed();
    assert!(
        second < Duration::from_millis(5),
        "the second miss took {second:?}"
    );
}

/// A topic holding records that are not keys (say, the log's topic named by mistake) is
/// refused at open, naming the offset.
#[test]
fn a_topic_of_other_records_is_refused() {
    let Some(brokers) = brokers() else {
        return eprintln!("skipped: KAFKA_BROKERS is not set");
    };
    let topic = topic_name("not-keys");
    drop(open(&brokers, &topic));
    let producer: BaseProducer = config(&brokers, &topic)
        .producer()
        .create()
        .expect("a producer");
    producer
        .send(
            BaseRecord::<[u8], [u8]>::to(&topic)
                .partition(0)
                .payload(b"an event"),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    producer
        .flush(Duration::from_secs(15))
        .expect("the record is written");
    match try_open(&brokers, &topic) {
        Err(Error::Kafka(message)) => {
            assert!(message.contains("offset 0"), "{message}");
            assert!(message.contains("key id"), "{message}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("a topic of other records opened"),
    }
}

//! Partition ownership through Kafka's consumer-group protocol.
//!
//! Rezef nodes share a topic's partitions the way Kafka Streams instances do: each node is a
//! member of one consumer group subscribed to the topic, and the group hands every partition
//! to exactly one live member. A [`Membership`] is that member. It only takes part in the
//! protocol: the partitions it is given are paused at once (their records are read through
//! each partition's own [`KafkaLog`](super::KafkaLog)) and it never commits an offset,
//! because the node's store, not the group, knows how far each partition is folded.
//!
//! A member that stops heartbeating (a `kill -9`) loses its partitions after the group's
//! session timeout; one that leaves cleanly ([`Membership::leave`]) hands them over at once.
//!
//! The owned set changes only when the group *assigns*: the eager protocol revokes every
//! partition of every member at the start of each rebalance, and a partition that comes back to
//! the same member should not be closed and reopened in between. Some brokers (tansu 0.6) never
//! expire a dead member's session by themselves but do evict it from a rebalance it does not
//! rejoin; [`Membership::rejoin`] starts one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use tokio::sync::watch;

use super::config::KafkaConfig;
use super::failure::classify;
use crate::error::{Error, Result};

/// Longest single poll: how quickly an assignment change (or a stop) is noticed.
const POLL: Duration = Duration::from_millis(100);

/// How a node joins the ownership group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSettings {
    /// The consumer group every node of one deployment joins.
    pub group: String,
    /// This node's name, sent as the client id (it appears in the group's member list).
    pub member: String,
    /// How long a member that stops heartbeating keeps its partitions.
    pub session_timeout: Duration,
}

/// The partitions this member owns, and how many times the set changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// Bumped on every change, starting from 0 (nothing owned yet).
    pub generation: u64,
    /// The partitions of the topic this member owns.
    pub partitions: BTreeSet<i32>,
}

/// A running member of the ownership group.
#[derive(Debug)]
pub struct Membership {
    owned: watch::Receiver<Owned>,
    stop: Arc<AtomicBool>,
    rejoin: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Publishes each assignment the group makes, and pauses its partitions.
struct Assignments {
    sender: watch::Sender<Owned>,
}

impl ClientContext for Assignments {}

impl ConsumerContext for Assignments {
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(assignment) => {
                // Their records are read through each partition's own log, not here.
                if let Err(e) = consumer.pause(assignment) {
                    tracing::debug!(error = %e, "could not pause the assigned partitions");
                }
                let partitions: BTreeSet<i32> = assignment
                    .elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect();
                tracing::info!(?partitions, "assigned");
                self.sender.send_if_modified(|owned| {
                    let changed = owned.partitions != partitions;
                    if changed {
                        owned.generation += 1;
                        owned.partitions = partitions;
                    }
                    changed
                });
            }
            // The next assignment says what stays ours.
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

impl Membership {
    /// Joins `settings.group` for `config.topic` (`config.partition` is not used).
    pub fn join(config: &KafkaConfig, settings: &GroupSettings) -> Result<Membership> {
        config.validate_connection()?;
        if settings.group.trim().is_empty() {
            return Err(Error::Config("the ownership group name is empty".into()));
        }
        let session_ms = settings.session_timeout.as_millis().to_string();
        let heartbeat_ms = (settings.session_timeout.as_millis() / 4)
            .max(100)
            .to_string();
        let mut client = config.membership();
        client
            .set("group.id", &settings.group)
            .set("client.id", &settings.member)
            .set("session.timeout.ms", &session_ms)
            .set("heartbeat.interval.ms", &heartbeat_ms);
        let (sender, owned) = watch::channel(Owned::default());
        let consumer: BaseConsumer<Assignments> = client
            .create_with_context(Assignments { sender })
            .map_err(|e| classify("create the ownership consumer", &e))?;
        let topic = config.topic.clone();
        consumer
            .subscribe(&[topic.as_str()])
            .map_err(|e| classify(&format!("join group {}", settings.group), &e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let rejoin = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, rejoin) = (Arc::clone(&stop), Arc::clone(&rejoin));
            let group = settings.group.clone();
            std::thread::Builder::new()
                .name("rezef-kafka-group".into())
                .spawn(move || member(&consumer, &group, &topic, &stop, &rejoin))
                .map_err(|e| Error::Unavailable(format!("spawn the group thread: {e}")))?
        };
        Ok(Membership {
            owned,
            stop,
            rejoin,
            thread: Some(thread),
        })
    }

    /// Leaves the group and joins again, which starts a rebalance: the members that do not
    /// rejoin (dead ones) are evicted from it. What this member owns stays owned meanwhile
    /// unless the new assignment says otherwise.
    pub fn rejoin(&self) {
        self.rejoin.store(true, Ordering::Release);
    }

    /// The partitions owned now, and every change from here on.
    pub fn owned(&self) -> watch::Receiver<Owned> {
        self.owned.clone()
    }

    /// Leaves the group, handing the partitions over at once; waits for the thread.
    pub async fn leave(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let joined = tokio::task::spawn_blocking(move || thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the Kafka group thread panicked");
            }
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Not joined here, so that dropping never blocks a runtime thread.
        self.stop.store(true, Ordering::Release);
    }
}

fn member(
    consumer: &BaseConsumer<Assignments>,
    group: &str,
    topic: &str,
    stop: &AtomicBool,
    rejoin: &AtomicBool,
) {
    let span = tracing::info_span!("kafka_group", %group);
    let _entered = span.enter();
    let mut failing = false;
    while !stop.load(Ordering::Acquire) {
        if rejoin.swap(false, Ordering::AcqRel) {
            tracing::info!("rejoining the group to start a rebalance");
            consumer.unsubscribe();
            if let Err(e) = consumer.subscribe(&[topic]) {
                tracing::warn!(error = %e, "could not rejoin the group");
            }
        }
        // Rebalances run inside poll (the context publishes them); records of a partition
        // between its assignment and its pause are not ours to read.
        match consumer.poll(POLL) {
            None | Some(Ok(_)) => failing = false,
            Some(Err(e)) => {
                if !failing {
                    tracing::warn!(error = %e, "the ownership group failed; retrying");
                }
                failing = true;
            }
        }
    }
    // Dropping the consumer then closes it, which leaves the group: the revocation hands
    // the partitions over at once rather than after the session timeout.
    consumer.context().sender.send_modify(|owned| {
        if !owned.partitions.is_empty() {
            owned.generation += 1;
            owned.partitions.clear();
        }
    });
}

//! The follower: reads the key topic from its beginning into memory, then keeps reading it.
//!
//! At open it reads up to the high watermark the store saw first (or to the first
//! end-of-partition, which a fetch made after that look-up reports only once past it), and
//! the store opens once that is done. Then it goes on, applying other nodes' keys and
//! tombstones as they come. After each run of records it publishes how far it has read
//! ([`Progress`]), which a lookup that missed waits on.
//!
//! It runs on its own thread because librdkafka's poll blocks; dropping the store sets a flag
//! the thread sees within one poll.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rezef_log::kafka::{ConsumerRole, KafkaConfig};
use tokio::sync::oneshot;

use super::Shared;
use super::produce::{PARTITION, kafka};
use super::record;
use crate::{Error, Result};

/// Longest single poll: how long the thread takes to see it should stop.
const POLL: Duration = Duration::from_millis(100);
/// Most records applied before progress is published.
const MAX_RUN: usize = 10_000;

/// How far the follower has read: every record below `next` is applied.
#[derive(Debug, Default)]
pub(super) struct Progress {
    next: Mutex<u64>,
    moved: Condvar,
}

impl Progress {
    fn advance(&self, next: u64) {
        let mut at = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if next > *at {
            *at = next;
            self.moved.notify_all();
        }
    }

    /// Waits until every record below `end` is applied, or `deadline`; whether it was.
    pub(super) fn wait_for(&self, end: u64, deadline: Instant) -> bool {
        let mut at = self.next.lock().unwrap_or_else(|p| p.into_inner());
        while *at < end {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            at = match self.moved.wait_timeout(at, left) {
                Ok((at, _)) => at,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }
}

/// The follower thread: stopped when dropped.
#[derive(Debug)]
pub(super) struct Follower {
    stop: Arc<AtomicBool>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Follower {
    /// Starts reading the topic from its beginning; the receiver says when every record below
    /// `loaded` is applied, or why it could not be (a record that is not a key, no progress
    /// within `request_timeout`).
    pub(super) fn start(
        config: &KafkaConfig,
        shared: Arc<Shared>,
        loaded: u64,
    ) -> Result<(Follower, oneshot::Receiver<Result<()>>)> {
        let topic = config.topic.clone();
        let mut client = config.consumer(ConsumerRole::Follower);
        // Earliest: should the start ever move past us, skip no key.
        client
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "true");
        let consumer: BaseConsumer = client
            .create()
            .map_err(|e| kafka(&format!("create the reader of {topic}"), &e))?;
        let mut assignment = TopicPartitionList::with_capacity(1);
        assignment
            .add_partition_offset(&topic, PARTITION, Offset::Beginning)
            .and_then(|()| consumer.assign(&assignment))
            .map_err(|e| kafka(&format!("read {topic}"), &e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (done, opened) = oneshot::channel();
        let reader = Reader {
            topic,
            consumer,
            shared,
            stop: stop.clone(),
            stall: config.request_timeout,
        };
        std::thread::Builder::new()
            .name("rezef-keys-follow".into())
            .spawn(move || reader.run(loaded, done))
            .map_err(|e| Error::Kafka(format!("spawn the key topic's reader: {e}")))?;
        Ok((Follower { stop }, opened))
    }
}

/// What the thread owns.
struct Reader {
    topic: String,
    consumer: BaseConsumer,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    /// How long loading may go without a record before open fails.
    stall: Duration,
}

impl Reader {
    fn run(self, loaded: u64, done: oneshot::Sender<Result<()>>) {
        let span = tracing::info_span!("key_topic", topic = %self.topic);
        let _entered = span.enter();
        let mut opening = Some(done);
        let mut next = 0;
        let mut last_record = Instant::now();
        let mut failing = false;
        while !self.stop.load(Ordering::Acquire) {
            if next >= loaded
                && let Some(done) = opening.take()
            {
                let _ = done.send(Ok(()));
            }
            let mut entries = Vec::new();
            let mut timeout = POLL;
            let mut at_end = false;
            while entries.len() < MAX_RUN {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Ok(message)) => {
                        let offset = u64::try_from(message.offset()).unwrap_or(0);
                        next = next.max(offset + 1);
                        failing = false;
                        timeout = Duration::ZERO;
                        match record::read(message.key(), message.payload()) {
                            Ok(entry) => entries.push((offset, entry)),
                            Err(wrong) => {
                                let error = format!("{} at offset {offset}: {wrong}", self.topic);
                                if let Some(done) = opening.take() {
                                    let _ = done.send(Err(Error::Kafka(error)));
                                    return;
                                }
                                tracing::error!(
                                    offset,
                                    wrong,
                                    "passing over a record of the key topic that is not a key"
                                );
                            }
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {
                        at_end = true;
                        break;
                    }
                    Some(Err(e)) => {
                        // librdkafka retries by itself; say so once per outage, not per poll.
                        if !failing {
                            tracing::warn!(error = %e, "reading the key topic failed; retrying");
                        }
                        failing = true;
                        break;
                    }
                }
            }
            if !entries.is_empty() {
                last_record = Instant::now();
                let mut live = self.shared.live_mut();
                for (offset, entry) in entries {
                    live.apply(offset, entry);
                }
            }
            self.shared.progress.advance(next);
            // An end reached by a fetch made after open's look-up: everything below
            // `loaded` is read, even if compaction left no record at `loaded - 1`.
            if at_end && let Some(done) = opening.take() {
                let _ = done.send(Ok(()));
            }
            if opening.is_some() && last_record.elapsed() >= self.stall {
                let error = format!(
                    "{}: read to offset {next} of {loaded}, then nothing for {:?}",
                    self.topic, self.stall
                );
                if let Some(done) = opening.take() {
                    let _ = done.send(Err(Error::Kafka(error)));
                }
                return;
            }
        }
        tracing::debug!("stopped reading the key topic");
    }
}

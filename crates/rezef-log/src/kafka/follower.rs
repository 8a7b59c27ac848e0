//! The background follower: keeps the log's cached offsets current with what other writers do.
//!
//! `end_offset()` and `start_offset()` are synchronous and cheap, so they answer from cached
//! values. Our own appends raise the end as they are acknowledged; records that other
//! processes append to the same partition are only learnt about by watching it. The follower
//! is a consumer tailing the partition from the end offset seen at open: each record it
//! receives is below the high watermark (acknowledged), so it raises the cached end past it
//! (which wakes `wait_for` callers) and the timestamp floor for our next append to the
//! record's timestamp. It publishes once per fetched run of records, not per record, so that
//! a batch that arrived in one produce request becomes visible as a whole. Kafka's long-polling fetch answers as soon as a record arrives, so
//! another node's append reaches the waiters here within a round trip, and an idle partition
//! costs one fetch per `fetch.wait.max.ms`. Every [`REFRESH`] it also asks for the
//! partition's watermarks: the start offset only moves by retention, which no record reports.
//!
//! It runs on its own thread because librdkafka's poll blocks; closing the log sets a flag
//! the thread sees within one poll interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::Offset as KafkaOffset;

use super::Shared;
use super::config::{ConsumerRole, KafkaConfig};
use super::failure::classify;
use super::reader::to_offset;
use crate::Offset;
use crate::error::{Error, Result};

/// How often the watermarks are refreshed.
const REFRESH: Duration = Duration::from_secs(5);
/// Longest single poll: how long closing may wait for the thread.
const POLL: Duration = Duration::from_millis(100);
/// Most records taken before the end is published, so that a busy partition still moves it.
const MAX_RUN: usize = 10_000;
/// Longest wait for the watermarks, so that an outage does not hold up closing.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(1);

/// The running follower thread.
#[derive(Debug)]
pub(super) struct Follower {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Follower {
    /// Starts following the partition from `from` (the end offset when the log opened).
    pub(super) fn start(
        config: &KafkaConfig,
        from: Offset,
        shared: Arc<Shared>,
    ) -> Result<Follower> {
        let name = format!("{}/{}", config.topic, config.partition);
        let consumer: BaseConsumer = config
            .consumer(ConsumerRole::Follower)
            .create()
            .map_err(|e| classify(&format!("create the follower of {name}"), &e))?;
        let mut assignment = TopicPartitionList::with_capacity(1);
        assignment
            .add_partition_offset(
                &config.topic,
                config.partition,
                KafkaOffset::Offset(i64::try_from(from).unwrap_or(i64::MAX)),
            )
            .and_then(|()| consumer.assign(&assignment))
            .map_err(|e| classify(&format!("follow {name}"), &e))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let tail = Tail {
                name,
                topic: config.topic.clone(),
                partition: config.partition,
                consumer,
            };
            std::thread::Builder::new()
                .name("rezef-kafka-follow".into())
                .spawn(move || tail.follow(&shared, &stop))
                .map_err(|e| Error::Unavailable(format!("spawn the follower thread: {e}")))?
        };
        Ok(Follower { stop, thread })
    }

    /// Asks the thread to stop; it does within one poll interval.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Stops the thread and waits for it.
    pub(super) fn join(self) {
        self.stop();
        if self.thread.join().is_err() {
            tracing::error!("the Kafka follower thread panicked");
        }
    }
}

/// What the thread owns.
struct Tail {
    name: String,
    topic: String,
    partition: i32,
    consumer: BaseConsumer,
}

impl Tail {
    fn follow(&self, shared: &Shared, stop: &AtomicBool) {
        let span = tracing::info_span!("kafka_follower", partition = %self.name);
        let _entered = span.enter();
        tracing::debug!("following");
        let mut refreshed = Instant::now();
        let mut failing = false;
        while !stop.load(Ordering::Acquire) {
            // Take everything already fetched before publishing the new end, so that the
            // records of one produce request (which arrive together) appear together.
            let mut timeout = POLL;
            let mut seen: Option<(Offset, Option<i64>)> = None;
            for _ in 0..MAX_RUN {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Ok(message)) => {
                        let ts = message.timestamp().to_millis();
                        let (end, latest) = seen.get_or_insert((0, None));
                        *end = (*end).max(to_offset(message.offset()) + 1);
                        *latest = (*latest).max(ts);
                        failing = false;
                        timeout = Duration::ZERO;
                    }
                    Some(Err(e)) => {
                        // librdkafka retries by itself; say so once per outage, not per poll.
                        if !failing {
                            tracing::warn!(error = %e, "following the partition failed; retrying");
                        }
                        failing = true;
                        break;
                    }
                }
            }
            if let Some((end, latest)) = seen {
                if let Some(ts) = latest {
                    shared.observe_timestamp(ts);
                }
                shared.advance_end(end);
            }
            if refreshed.elapsed() >= REFRESH {
                refreshed = Instant::now();
                self.refresh(shared);
            }
        }
        tracing::debug!("stopped following");
    }

    fn refresh(&self, shared: &Shared) {
        match self
            .consumer
            .fetch_watermarks(&self.topic, self.partition, REFRESH_TIMEOUT)
        {
            Ok((low, high)) => {
                shared.set_start(to_offset(low));
                shared.advance_end(to_offset(high));
            }
            Err(e) => tracing::debug!(error = %e, "could not refresh the watermarks"),
        }
    }
}

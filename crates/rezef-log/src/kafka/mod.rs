//! Apache Kafka as a [`Log`]: one partition of one topic (feature `kafka`).
//!
//! A [`KafkaLog`] is the embedded log's stand-in when several Rezef nodes share one log: the
//! partition is the sequence of records and its Kafka offsets are the log's offsets. They are
//! contiguous because the log never uses transactions (whose markers take offsets) and its
//! topics are never compacted ([`ensure_topic`] sets `cleanup.policy=delete`).
//!
//! How the contract of [`Log`] maps onto Kafka, and where it cannot:
//!
//! - **Acknowledged means replicated.** `append` returns once every record's delivery is
//!   acknowledged by the partition leader with `acks=all`, i.e. by every in-sync replica; the
//!   producer is idempotent, so librdkafka's retries neither duplicate nor reorder records.
//!   (Durability against power loss is then the brokers' replication and `min.insync.replicas`,
//!   not an fsync.)
//! - **Batches are contiguous but not atomic.** Kafka makes several records atomic only with
//!   transactions, which would put control records between them and leave gaps in the offsets.
//!   So the records of one append are queued together (one append at a time hands its records
//!   to the producer) and, with a few milliseconds of linger, travel in one produce request;
//!   but an append that fails can leave some of its records (normally a prefix) written.
//!   Rezef's publish path tolerates that by design: events carry ids, the projector applies
//!   each id once, and a client retries an unacknowledged publish, so the effect is exactly
//!   once. If another process appends to the same partition and a batch happened to be split
//!   between produce requests, its records may come back non-contiguous; that append fails
//!   with [`Error::Interleaved`] instead of claiming a contiguous batch.
//! - **Timestamps are the appender's, never decreasing.** Each append is stamped once, before
//!   it is sent, with `max(now, the latest timestamp seen)`, and every record carries that
//!   stamp (`CreateTime`, set explicitly by [`ensure_topic`]). The broker's `LogAppendTime` was
//!   the alternative and is not used: a broker stamps each produce request separately (an
//!   append split across two would get two times), its clock can step back, and a new leader
//!   after a failover has its own clock. "Seen" includes the last record at open and every
//!   record the follower observes from other writers, so a restarted or lagging node does not
//!   stamp below the log; two nodes appending at the same moment with skewed clocks can still
//!   interleave slightly out of order, which is one reason each partition should have one
//!   writer (see below).
//! - **Readers see only acknowledged records.** Kafka consumers only receive records below
//!   the high watermark, and reads stop at the log's known end offset.
//! - **`end_offset()` and `start_offset()` are cached** (they are synchronous): our appends
//!   raise the end as they are acknowledged, and a background follower (a consumer tailing the
//!   partition, plus a periodic watermark query for the start) raises it for other writers'
//!   records and wakes `wait_for`. So another node's record is readable here a fetch round trip
//!   after it is acknowledged, not at once.
//! - **`offset_for_time`** asks the broker's time index and checks its answer against the
//!   records around it, falling back to a binary search by reads (see `reader.rs`).
//! - **Errors**: unreachable brokers and timeouts are [`Error::Unavailable`] (retry), broker
//!   refusals [`Error::Refused`], bad settings [`Error::Config`]; a record above
//!   `message.max.bytes` is [`Error::BatchTooLarge`] before anything is sent.
//!
//! One writer per partition is the intended deployment: with a single appender, batches are
//! always contiguous and timestamps never decrease, whatever the clocks of other nodes do.

mod admin;
mod config;
mod failure;
mod follower;
mod group;
mod reader;
mod witness;
mod writer;

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

pub use admin::{TopicSettings, TopicStatus, ensure_topic};
pub use config::{ConsumerRole, KafkaConfig};
pub use group::{GroupSettings, Membership, Owned};

use crate::error::{Error, Result};
use crate::{Appended, ChainCheck, Log, Offset, Record, blocking};
use follower::Follower;
use reader::Reader;
use writer::Writer;

/// What readers may rely on: records `start..end` exist and are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marks {
    start: Offset,
    end: Offset,
    closed: bool,
}

/// State shared by the log handle and the follower thread.
#[derive(Debug)]
struct Shared {
    marks: watch::Sender<Marks>,
    /// The latest timestamp assigned or seen on the partition: the floor for the next append.
    last_ts: AtomicI64,
}

impl Shared {
    fn marks(&self) -> Marks {
        *self.marks.borrow()
    }

    /// Raises the end offset (never lowers it), waking waiters when it moves.
    fn advance_end(&self, end: Offset) {
        self.marks.send_if_modified(|m| {
            let moved = end > m.end;
            m.end = m.end.max(end);
            moved
        });
    }

    /// Records the partition's first offset (retention only raises it).
    fn set_start(&self, start: Offset) {
        self.marks.send_if_modified(|m| {
            let moved = start > m.start;
            m.start = m.start.max(start);
            moved
        });
    }

    fn observe_timestamp(&self, timestamp_ms: i64) {
        self.last_ts.fetch_max(timestamp_ms, Ordering::AcqRel);
    }

    /// The next append's timestamp: `max(now, latest seen)`. Called with the enqueue lock
    /// held, so that our appends reach the partition in timestamp order.
    fn next_timestamp(&self) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let ts = now.max(self.last_ts.load(Ordering::Acquire));
        self.observe_timestamp(ts);
        ts
    }
}

/// One partition of a Kafka topic as a [`Log`]. See the [module docs](self) for how the log's
/// contract maps onto Kafka.
///
/// Holds three librdkafka clients: an idempotent producer, a consumer for random-access reads
/// and a consumer that follows the partition on a background thread. Call
/// [`KafkaLog::close`] before dropping it: dropping discards what the producer has not yet
/// delivered.
pub struct KafkaLog {
    config: KafkaConfig,
    writer: Writer,
    reader: Arc<Reader>,
    shared: Arc<Shared>,
    follower: Mutex<Option<Follower>>,
}

impl fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.shared.marks();
        f.debug_struct("KafkaLog")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .field("partition", &self.config.partition)
            .field("start_offset", &m.start)
            .field("end_offset", &m.end)
            .field("closed", &m.closed)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the partition: checks that the topic and partition exist, reads the
    /// partition's offsets and last timestamp, and starts following it. Fails with
    /// [`Error::Refused`] for a missing topic or partition and [`Error::Unavailable`] when no
    /// broker answers within `request_timeout`.
    pub async fn open(config: KafkaConfig) -> Result<Arc<KafkaLog>> {
        config.validate()?;
        let writer = Writer::new(&config)?;
        let reader = Arc::new(Reader::new(&config)?);
        let (start, end, last_ts) = blocking({
            let reader = Arc::clone(&reader);
            move || {
                reader.check_partition()?;
                let (start, end) = reader.watermarks()?;
                let last = match end.checked_sub(1).filter(|&last| last >= start) {
                    Some(last) => reader.read(last, 1, end)?.first().map(|r| r.timestamp_ms),
                    None => None,
                };
                Ok((start, end, last))
            }
        })
        .await?;
        let (marks, _) = watch::channel(Marks {
            start,
            end,
            closed: false,
        });
        let shared = Arc::new(Shared {
            marks,
            last_ts: AtomicI64::new(last_ts.unwrap_or(i64::MIN)),
        });
        let follower = Follower::start(&config, end, Arc::clone(&shared))?;
        tracing::info!(
            brokers = %config.brokers,
            topic = %config.topic,
            partition = config.partition,
            start_offset = start,
            end_offset = end,
            "opened Kafka log"
        );
        Ok(Arc::new(KafkaLog {
            config,
            writer,
            reader,
            shared,
            follower: Mutex::new(Some(follower)),
        }))
    }

    /// Stops accepting appends, waits (up to `request_timeout`) for the deliveries in flight,
    /// and stops following the partition. Afterwards `append` fails and pending/new
    /// `wait_for` calls resolve with [`Error::Closed`]; reads keep working. Idempotent.
    pub async fn close(&self) {
        self.shared.marks.send_modify(|m| m.closed = true);
        self.writer.flush().await;
        let follower = lock(&self.follower).take();
        if let Some(follower) = follower {
            let joined = tokio::task::spawn_blocking(move || follower.join()).await;
            if let Err(e) = joined {
                tracing::error!(error = %e, "stopping the Kafka follower failed");
            }
        }
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        self.shared.marks.send_modify(|m| m.closed = true);
        // The thread sees the flag within one poll; it is not joined here, so that dropping
        // never blocks a runtime thread.
        if let Some(follower) = lock(&self.follower).take() {
            follower.stop();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait::async_trait]
impl Log for KafkaLog {
    async fn close(&self) {
        KafkaLog::close(self).await;
    }

    async fn append(&self, payloads: Vec<Bytes>) -> Result<Appended> {
        self.writer.append(&self.shared, payloads).await
    }

    async fn read(&self, from: Offset, max_records: usize) -> Result<Vec<Record>> {
        let marks = self.shared.marks();
        if from < marks.start {
            return Err(Error::OffsetOutOfRange {
                requested: from,
                start: marks.start,
                end: marks.end,
            });
        }
        if from >= marks.end || max_records == 0 {
            return Ok(Vec::new());
        }
        let reader = Arc::clone(&self.reader);
        let result = blocking(move || reader.read(from, max_records, marks.end)).await;
        if let Err(Error::OffsetOutOfRange { start, .. }) = &result {
            // Retention removed records since the start offset was last refreshed.
            self.shared.set_start(*start);
        }
        result
    }

    fn end_offset(&self) -> Offset {
        self.shared.marks().end
    }

    fn start_offset(&self) -> Offset {
        self.shared.marks().start
    }

    async fn wait_for(&self, offset: Offset) -> Result<()> {
        let mut rx = self.shared.marks.subscribe();
        match rx.wait_for(|m| m.end > offset || m.closed).await {
            Ok(m) if m.end > offset => Ok(()),
            _ => Err(Error::Closed),
        }
    }

    async fn offset_for_time(&self, timestamp_ms: i64) -> Result<Offset> {
        let marks = self.shared.marks();
        let reader = Arc::clone(&self.reader);
        blocking(move || reader.offset_for_time(timestamp_ms, marks.start, marks.end)).await
    }

    fn verify_chain(&self) -> Result<ChainCheck> {
        Err(Error::Refused(
            "a Kafka log carries no hash chain: Kafka checks each record batch by its CRC only \
             (docs/audit.md, \"Tamper evidence\")"
                .into(),
        ))
    }
}

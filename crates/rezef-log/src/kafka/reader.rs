//! Random-access reads of the partition, and the offset queries.
//!
//! Kafka has no "read records `from..from+n`" request: a consumer is positioned and then
//! fetches onwards. The reader keeps one consumer for the log's lifetime (connecting per read
//! would cost a handshake and a metadata round trip each time) and, per read, assigns it the
//! partition at `from`, polls until it has the records asked for, and unassigns it again so
//! that an idle reader does not keep fetching. Reads therefore take turns on the consumer;
//! every call here blocks and runs on tokio's blocking pool.
//!
//! Reads never go past the `bound` the caller passes (the log's known end offset): everything
//! a Kafka consumer receives is below the partition's high watermark, i.e. acknowledged by the
//! in-sync replicas, and stopping at the bound means a read never waits for records that do not
//! exist yet.
//!
//! `offset_for_time` asks the broker's time index first and then checks the answer against the
//! records on either side of it, searching the partition by timestamp when the check fails.
//! The check makes the answer exact on any broker: one whose time index cannot answer (the
//! librdkafka mock cluster answers "none" to every time query), or a topic where an earlier
//! writer's clock ran ahead, still gets the first record at or after the time.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::Offset as KafkaOffset;

use super::config::{ConsumerRole, KafkaConfig};
use super::failure::classify;
use super::witness::{self, Witness};
use crate::error::{Error, Result};
use crate::{Offset, Record};

/// A consumer for random-access reads of one partition, and the partition's offset queries.
pub(super) struct Reader {
    /// Its context keeps the latest connection failure, for the error of the look-up that
    /// `KafkaLog::open` makes first ([`Reader::check_partition`]).
    consumer: BaseConsumer<Witness>,
    /// Held while the consumer is assigned: one read at a time.
    turn: Mutex<()>,
    topic: String,
    partition: i32,
    timeout: Duration,
}

impl Reader {
    pub(super) fn new(config: &KafkaConfig) -> Result<Reader> {
        let consumer: BaseConsumer<Witness> = config
            .consumer(ConsumerRole::Reader)
            .create_with_context(Witness::default())
            .map_err(|e| classify("create the Kafka reader", &e))?;
        Ok(Reader {
            consumer,
            turn: Mutex::new(()),
            topic: config.topic.clone(),
            partition: config.partition,
            timeout: config.request_timeout,
        })
    }

    fn name(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }

    fn turn(&self) -> MutexGuard<'_, ()> {
        // The guard protects no data, only the consumer's assignment: poisoning is harmless.
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails unless the topic exists and has the partition. Called before any read (nothing
    /// is assigned), so that a failure can say why the brokers did not answer.
    pub(super) fn check_partition(&self) -> Result<()> {
        let what = format!("look up {}", self.name());
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), self.timeout)
            .map_err(|e| witness::explained(&self.consumer, classify(&what, &e)))?;
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == self.topic) else {
            return Err(Error::Refused(format!(
                "{what}: the brokers did not describe the topic"
            )));
        };
        if let Some(code) = topic.error().map(RDKafkaErrorCode::from) {
            let error = classify(&what, &KafkaError::MetadataFetch(code));
            return Err(match code {
                RDKafkaErrorCode::UnknownTopicOrPartition => Error::Refused(format!(
                    "topic {} does not exist (create it with ensure_topic)",
                    self.topic
                )),
                _ => error,
            });
        }
        let partitions = topic.partitions().len();
        if !topic.partitions().iter().any(|p| p.id() == self.partition) {
            return Err(Error::Refused(format!(
                "topic {} has {partitions} partition(s); partition {} does not exist",
                self.topic, self.partition
            )));
        }
        Ok(())
    }

    /// The partition's (low, high) watermarks: its start and end offsets, from the leader.
    pub(super) fn watermarks(&self) -> Result<(Offset, Offset)> {
        let (low, high) = self
            .consumer
            .fetch_watermarks(&self.topic, self.partition, self.timeout)
            .map_err(|e| {
                let error = classify(&format!("query the offsets of {}", self.name()), &e);
                self.consumer.context().explain(error)
            })?;
        Ok((to_offset(low), to_offset(high)))
    }

    /// The records `from..` below `bound`, at most `max` of them.
    pub(super) fn read(&self, from: Offset, max: usize, bound: Offset) -> Result<Vec<Record>> {
        let bound = bound.min(from.saturating_add(max as u64));
        if from >= bound {
            return Ok(Vec::new());
        }
        let _turn = self.turn();
        let result = self.read_assigned(from, bound);
        if let Err(e) = self.consumer.unassign() {
            tracing::warn!(partition = %self.name(), error = %e, "could not unassign the reader");
        }
        result
    }

    fn read_assigned(&self, from: Offset, bound: Offset) -> Result<Vec<Record>> {
        let what = || format!("read {} from offset {from}", self.name());
        let mut assignment = TopicPartitionList::with_capacity(1);
        assignment
            .add_partition_offset(&self.topic, self.partition, KafkaOffset::Offset(raw(from)))
            .and_then(|()| self.consumer.assign(&assignment))
            .map_err(|e| classify(&what(), &e))?;
        let capacity = usize::try_from(bound - from).map_or(1024, |n| n.min(1024));
        let mut records = Vec::with_capacity(capacity);
        let mut next = from;
        let deadline = Instant::now() + self.timeout;
        let mut last_error = None;
        while next < bound {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let cause = last_error.map_or_else(String::new, |e: KafkaError| format!(": {e}"));
                return Err(Error::Unavailable(format!(
                    "{}: no record at offset {next} within {:?}{cause}",
                    what(),
                    self.timeout
                )));
            }
            match self.consumer.poll(left) {
                None => {}
                Some(Ok(message)) => {
                    let Ok(offset) = Offset::try_from(message.offset()) else {
                        continue;
                    };
                    if offset < next {
                        continue; // left over from an earlier position
                    }
                    if offset >= bound {
                        break;
                    }
                    records.push(Record {
                        offset,
                        // Records without a timestamp (pre-0.10 formats) read as the epoch.
                        timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
                        payload: Bytes::copy_from_slice(message.payload().unwrap_or_default()),
                    });
                    next = offset + 1;
                }
                // The end of the partition: nothing more to read below the bound (only offsets
                // without records, such as transaction markers, were left).
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(e)) if is_out_of_range(&e) => {
                    let (start, end) = self.watermarks()?;
                    return Err(Error::OffsetOutOfRange {
                        requested: from,
                        start,
                        end,
                    });
                }
                // Transport errors and the like are reported while librdkafka retries; only
                // the deadline decides that the read failed.
                Some(Err(e)) => last_error = Some(e),
            }
        }
        Ok(records)
    }

    /// The timestamp of the record at `offset` (below `bound`).
    fn timestamp_at(&self, offset: Offset, bound: Offset) -> Result<i64> {
        match self.read(offset, 1, bound)?.first() {
            Some(record) => Ok(record.timestamp_ms),
            None => Err(Error::Unavailable(format!(
                "read {}: no record at offset {offset}",
                self.name()
            ))),
        }
    }

    /// First offset in `start..end` whose record's timestamp is `>= timestamp_ms`, or `end`.
    /// Assumes timestamps never decrease along the partition (the log's contract).
    pub(super) fn offset_for_time(
        &self,
        timestamp_ms: i64,
        start: Offset,
        end: Offset,
    ) -> Result<Offset> {
        if start >= end {
            return Ok(end);
        }
        let hint = self.broker_offset_for_time(timestamp_ms)?.clamp(start, end);
        if self.is_first_at_or_after(hint, timestamp_ms, start, end)? {
            return Ok(hint);
        }
        let (mut lo, mut hi) = (start, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.timestamp_at(mid, end)? < timestamp_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// What the broker's time index says (`u64::MAX` for "no such record", clamped by the
    /// caller). Kafka reads negative timestamps as special positions, so times before the
    /// epoch are asked as 0.
    fn broker_offset_for_time(&self, timestamp_ms: i64) -> Result<Offset> {
        let what = format!("look up time {timestamp_ms} in {}", self.name());
        let mut query = TopicPartitionList::with_capacity(1);
        query
            .add_partition_offset(
                &self.topic,
                self.partition,
                KafkaOffset::Offset(timestamp_ms.max(0)),
            )
            .map_err(|e| classify(&what, &e))?;
        let answer = self
            .consumer
            .offsets_for_times(query, self.timeout)
            .map_err(|e| classify(&what, &e))?;
        let found = answer
            .find_partition(&self.topic, self.partition)
            .map(|element| element.offset());
        Ok(match found {
            Some(KafkaOffset::Offset(offset)) => to_offset(offset),
            _ => Offset::MAX,
        })
    }

    /// Whether `candidate` is the first offset at or after the time: the record before it (if
    /// any) is earlier, and the record at it (if any) is not.
    fn is_first_at_or_after(
        &self,
        candidate: Offset,
        timestamp_ms: i64,
        start: Offset,
        end: Offset,
    ) -> Result<bool> {
        let from = candidate.saturating_sub(1).max(start);
        let records = self.read(from, 2, end)?;
        let before_ok = candidate == start
            || records
                .iter()
                .find(|r| r.offset + 1 == candidate)
                .is_some_and(|r| r.timestamp_ms < timestamp_ms);
        let at_ok = candidate == end
            || records
                .iter()
                .find(|r| r.offset == candidate)
                .is_some_and(|r| r.timestamp_ms >= timestamp_ms);
        Ok(before_ok && at_ok)
    }
}

fn is_out_of_range(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange)
    )
}

/// A Kafka offset as the log's; librdkafka uses negative values for "unknown".
pub(super) fn to_offset(raw: i64) -> Offset {
    Offset::try_from(raw).unwrap_or(0)
}

/// The log's offset as Kafka's. Offsets come from the partition, so they fit.
fn raw(offset: Offset) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

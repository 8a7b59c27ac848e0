//! The append path: one idempotent producer, one append handing over its records at a time.
//!
//! librdkafka batches whatever is queued for a partition into produce requests. Handing an
//! append's records over under a lock keeps them together in that queue (no other append of
//! this process can slip between them) and keeps appends in the order of their timestamps,
//! which are assigned under the same lock. The lock is held only while records are queued,
//! not while they are delivered, so concurrent appends still share produce requests. An
//! append then waits for every record's acknowledgement, bounded by `request_timeout` plus a
//! little grace whatever librdkafka does, and checks that its records got contiguous offsets.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};

use super::Shared;
use super::config::KafkaConfig;
use super::failure::classify;
use super::reader::to_offset;
use crate::error::{Error, Result};
use crate::{Appended, Offset};

/// librdkafka's framing allowance per record (`RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`): a payload
/// may be at most `message.max.bytes` minus this, or librdkafka refuses it.
const RECORD_OVERHEAD: usize = 36;
/// Pause before retrying when librdkafka's send queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);
/// How long past `request_timeout` an append waits for its acknowledgements. librdkafka
/// times out queued records after `message.timeout.ms` (checked once a second), but a record
/// already in a request to a broker that went away waits for that request to time out first;
/// this bounds an append whatever librdkafka does.
const DELIVERY_GRACE: Duration = Duration::from_secs(1);

/// The log's producer and the lock appends take turns on.
pub(super) struct Writer {
    producer: FutureProducer,
    /// Held while an append hands its records to the producer.
    enqueue: tokio::sync::Mutex<()>,
    topic: String,
    partition: i32,
    timeout: Duration,
    /// Largest payload librdkafka accepts.
    max_payload: usize,
}

impl Writer {
    pub(super) fn new(config: &KafkaConfig) -> Result<Writer> {
        let producer = config
            .producer()
            .create()
            .map_err(|e| classify("create the Kafka producer", &e))?;
        Ok(Writer {
            producer,
            enqueue: tokio::sync::Mutex::new(()),
            topic: config.topic.clone(),
            partition: config.partition,
            timeout: config.request_timeout,
            max_payload: config.message_max_bytes()?.saturating_sub(RECORD_OVERHEAD),
        })
    }

    fn what(&self) -> String {
        format!("append to {}/{}", self.topic, self.partition)
    }

    /// [`Log::append`](crate::Log::append): appends the payloads, raising `shared`'s end
    /// offset past what was delivered.
    pub(super) async fn append(&self, shared: &Shared, payloads: Vec<Bytes>) -> Result<Appended> {
        if payloads.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if let Some(big) = payloads.iter().find(|p| p.len() > self.max_payload) {
            return Err(Error::BatchTooLarge {
                bytes: (big.len() + RECORD_OVERHEAD) as u64,
                limit: (self.max_payload + RECORD_OVERHEAD) as u64,
            });
        }
        let Ok(count) = u32::try_from(payloads.len()) else {
            return Err(Error::Refused(format!(
                "a batch of {} records is more than one append can take",
                payloads.len()
            )));
        };
        let (timestamp_ms, deliveries) = {
            let _enqueue = self.enqueue.lock().await;
            if shared.marks().closed {
                return Err(Error::Closed);
            }
            let timestamp_ms = shared.next_timestamp();
            let mut deliveries = Vec::with_capacity(payloads.len());
            for payload in &payloads {
                deliveries.push(self.send(payload, timestamp_ms).await?);
            }
            (timestamp_ms, deliveries)
        };
        let offsets = self.delivered(shared, deliveries).await?;
        let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
            return Err(Error::Unavailable(format!("{}: no delivery", self.what())));
        };
        if !offsets
            .iter()
            .zip(first..)
            .all(|(&o, expected)| o == expected)
        {
            return Err(Error::Interleaved {
                count,
                first: offsets.iter().copied().min().unwrap_or(first),
                last: offsets.iter().copied().max().unwrap_or(last),
            });
        }
        Ok(Appended {
            first_offset: first,
            count,
            timestamp_ms,
        })
    }

    /// Hands one record to the producer, waiting (up to the request timeout) while its queue
    /// is full.
    async fn send(&self, payload: &[u8], timestamp_ms: i64) -> Result<DeliveryFuture> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let record = FutureRecord::<(), [u8]>::to(&self.topic)
                .partition(self.partition)
                .payload(payload)
                .timestamp(timestamp_ms);
            match self.producer.send_result(record) {
                Ok(delivery) => return Ok(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err((e, _)) => return Err(classify(&self.what(), &e)),
            }
        }
    }

    /// The offsets the records were delivered at, in the order they were sent. Waits for
    /// every delivery, failed or not: the delivered records are readable whatever happened to
    /// the others, so the end offset moves past them either way.
    async fn delivered(
        &self,
        shared: &Shared,
        deliveries: Vec<DeliveryFuture>,
    ) -> Result<Vec<Offset>> {
        let deadline = tokio::time::Instant::now() + self.timeout + DELIVERY_GRACE;
        let mut offsets = Vec::with_capacity(deliveries.len());
        let mut failure = None;
        for delivery in deliveries {
            match tokio::time::timeout_at(deadline, delivery).await {
                Ok(Ok(Ok(delivered))) => offsets.push(to_offset(delivered.offset)),
                Ok(Ok(Err((e, _)))) => {
                    failure.get_or_insert_with(|| classify(&self.what(), &e));
                }
                // The producer went away with the record.
                Ok(Err(_)) => {
                    failure.get_or_insert(Error::Closed);
                }
                Err(_) => {
                    failure.get_or_insert_with(|| {
                        Error::Unavailable(format!(
                            "{}: not acknowledged within {:?}",
                            self.what(),
                            self.timeout
                        ))
                    });
                }
            }
        }
        if let Some(last) = offsets.iter().max() {
            shared.advance_end(last + 1);
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(offsets),
        }
    }

    /// Waits for an append that is handing over its records, then (up to `request_timeout`)
    /// for the deliveries in flight. Call after marking the log closed.
    pub(super) async fn flush(&self) {
        drop(self.enqueue.lock().await);
        let producer = self.producer.clone();
        let timeout = self.timeout;
        match tokio::task::spawn_blocking(move || producer.flush(timeout)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "closing the Kafka log: deliveries still pending")
            }
            Err(e) => tracing::error!(error = %e, "closing the Kafka log: flush failed"),
        }
    }
}

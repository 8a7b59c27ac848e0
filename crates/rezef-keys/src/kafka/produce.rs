//! Writing the key topic: keys and tombstones, each call waiting for every record's
//! acknowledgement.
//!
//! The producer is `rezef-log`'s (idempotent, `acks=all`, deliveries that fail after
//! `request_timeout`): an acknowledged key is on every in-sync replica, below the high
//! watermark, before any record is sealed under it. Each record carries a channel its delivery
//! report goes to, so a call waits for its own records only, bounded by `request_timeout`
//! plus a little grace whatever librdkafka does.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rezef_log::kafka::KafkaConfig;

use crate::{Error, KeyId, Result};

/// The key topic has one partition.
pub(super) const PARTITION: i32 = 0;
/// Pause before retrying when librdkafka's send queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(5);
/// How long past `request_timeout` a call waits for its acknowledgements.
const DELIVERY_GRACE: Duration = Duration::from_secs(1);

/// Where a record's delivery report goes: its place in the call, and its offset or why not.
type Report = (usize, Result<i64, String>);

/// Sends each record's delivery report to the channel it carries.
#[derive(Debug)]
struct Reports;

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<(usize, mpsc::Sender<Report>)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (at, reports) = *opaque;
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((error, _)) => Err(error.to_string()),
        };
        // The call may have given up waiting: nobody to tell.
        let _ = reports.send((at, outcome));
    }
}

/// The key topic's producer.
pub(super) struct Writer {
    producer: ThreadedProducer<Reports>,
    topic: String,
    timeout: Duration,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl Writer {
    pub(super) fn new(config: &KafkaConfig) -> Result<Writer> {
        let producer = config
            .producer()
            .create_with_context(Reports)
            .map_err(|e| kafka(&format!("create the producer of {}", config.topic), &e))?;
        Ok(Writer {
            producer,
            topic: config.topic.clone(),
            timeout: config.request_timeout,
        })
    }

    /// Writes the records (a key's value, or `None`: a tombstone) and waits until every one
    /// is acknowledged; their offsets, in order.
    pub(super) fn write(&self, records: &[(KeyId, Option<&[u8]>)]) -> Result<Vec<u64>> {
        let what = format!("write {} record(s) to {}", records.len(), self.topic);
        let deadline = Instant::now() + self.timeout;
        let (reports, received) = mpsc::channel();
        for (at, (id, value)) in records.iter().enumerate() {
            self.send(id, *value, Box::new((at, reports.clone())), deadline)
                .map_err(|e| kafka(&what, &e))?;
        }
        drop(reports);
        let mut offsets = vec![None; records.len()];
        let until = deadline + DELIVERY_GRACE;
        for _ in 0..records.len() {
            let wait = until.saturating_duration_since(Instant::now());
            let (at, outcome) = received.recv_timeout(wait).map_err(|_| {
                Error::Kafka(format!(
                    "{what}: not acknowledged within {:?}",
                    self.timeout
                ))
            })?;
            let offset = outcome.map_err(|e| Error::Kafka(format!("{what}: {e}")))?;
            offsets[at] = u64::try_from(offset).ok();
        }
        offsets
            .into_iter()
            .map(|offset| offset.ok_or_else(|| Error::Kafka(format!("{what}: no offset"))))
            .collect()
    }

    /// Hands one record to the producer, waiting (until `deadline`) while its queue is full.
    fn send(
        &self,
        id: &KeyId,
        value: Option<&[u8]>,
        mut opaque: Box<(usize, mpsc::Sender<Report>)>,
        deadline: Instant,
    ) -> Result<(), KafkaError> {
        loop {
            let record = BaseRecord::<[u8], [u8], _>::with_opaque_to(&self.topic, opaque)
                .partition(PARTITION)
                .key(id.as_bytes());
            let record = match value {
                Some(value) => record.payload(value),
                None => record,
            };
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record))
                    if Instant::now() < deadline =>
                {
                    opaque = record.delivery_opaque;
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// The key topic's high watermark: every acknowledged record is below it.
    pub(super) fn high_watermark(&self, timeout: Duration) -> Result<u64> {
        let (_, high) = (self.producer.client())
            .fetch_watermarks(&self.topic, PARTITION, timeout)
            .map_err(|e| kafka(&format!("ask {} for its high watermark", self.topic), &e))?;
        Ok(u64::try_from(high).unwrap_or(0))
    }
}

/// A librdkafka error, saying what was being done.
pub(super) fn kafka(what: &str, error: &KafkaError) -> Error {
    Error::Kafka(format!("{what}: {error}"))
}

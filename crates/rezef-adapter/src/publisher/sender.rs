//! The spool to the server: one batch at a time from the spool's head (events of one tenant,
//! as a `Publish` takes), sent again after failures the server or the network caused, until
//! the server acknowledges it; then the head moves past it.
//!
//! A batch the server refuses for good is sent again one event at a time, so that one bad
//! event does not take its batch-mates down with it: each that is refused alone is reported
//! ([`crate::Rejection`]) and dropped from the spool; the others go through. A refused event
//! is thus sent twice at most (in its batch, then alone), never retried.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use prost::Message;
use rezef_proto::v1;
use tokio::sync::watch;
use tracing::warn;

use super::{PublisherConfig, REACHED, Shared, UNREACHED};
use crate::retry::{Backoff, Verdict, verdict};
use crate::spool::Cursor;
use crate::{Client, Error, Rejection};

/// How a batch's sending ended.
enum Sent {
    Acknowledged,
    Refused(tonic::Status),
    /// The publisher is closing.
    Stopped,
}

pub(super) struct Sender {
    client: Client,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    max_batch_events: usize,
    max_batch_bytes: usize,
    linger: Duration,
    backoff: Backoff,
    request_timeout: Duration,
}

impl Sender {
    pub(super) fn new(
        client: Client,
        config: &PublisherConfig,
        shared: Arc<Shared>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            client,
            shared,
            stop,
            max_batch_events: config.max_batch_events.max(1),
            max_batch_bytes: config.max_batch_bytes,
            linger: config.linger,
            backoff: config.backoff,
            request_timeout: config.request_timeout,
        }
    }

    /// Sends until the publisher closes; a spool that fails stops the publisher.
    pub(super) async fn run(mut self) {
        if let Err(error) = self.send_all().await {
            warn!(%error, "the publisher stopped");
            let mut failed = (self.shared.failed.lock()).unwrap_or_else(PoisonError::into_inner);
            *failed = Some(error.to_string());
            drop(failed);
            // Wake whoever waits on a flush.
            self.shared.acknowledged.send_modify(|_| {});
        }
    }

    /// Resolves when the publisher closes.
    fn stopped(&self) -> impl Future<Output = ()> + use<> {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }

    async fn send_all(&mut self) -> Result<(), Error> {
        let mut written = self.shared.written.subscribe();
        // Whether the spool was empty before the events now there: they have not waited yet.
        let mut idle = true;
        loop {
            let head = self.shared.spool().head();
            let available = written.borrow_and_update().saturating_sub(head.seq);
            if available == 0 {
                tokio::select! {
                    changed = written.changed() => if changed.is_err() { return Ok(()) },
                    () = self.stopped() => return Ok(()),
                }
                idle = true;
                continue;
            }
            // Events that gathered while the last batch was in flight have lingered already.
            if std::mem::take(&mut idle)
                && available < self.max_batch_events as u64
                && !self.linger.is_zero()
            {
                // Let the batch fill.
                tokio::select! {
                    () = tokio::time::sleep(self.linger) => {}
                    () = self.stopped() => return Ok(()),
                }
            }
            let (records, events, end) = self.next_batch(head).await?;
            let delivered = match self.send(&records, Some(events)).await? {
                Sent::Acknowledged => true,
                Sent::Stopped => false,
                Sent::Refused(status) if records.len() == 1 => {
                    self.reject(&records[0], status, head.seq)?;
                    true
                }
                Sent::Refused(_) => self.send_one_by_one(&records, head.seq).await?,
            };
            if !delivered {
                return Ok(());
            }
            let shared = self.shared.clone();
            tokio::task::spawn_blocking(move || shared.spool().acknowledge(end))
                .await
                .map_err(|e| Error::Stopped(e.to_string()))??;
            self.shared.acknowledged.send_replace(end.seq);
        }
    }

    /// The batch at `head`: its spooled records, their events (all of the first one's
    /// tenant), and the cursor after it.
    async fn next_batch(
        &self,
        head: Cursor,
    ) -> Result<(Vec<Vec<u8>>, Vec<v1::Event>, Cursor), Error> {
        let (shared, count, bytes) = (
            self.shared.clone(),
            self.max_batch_events,
            self.max_batch_bytes,
        );
        let read = tokio::task::spawn_blocking(move || shared.spool().read(head, count, bytes))
            .await
            .map_err(|e| Error::Stopped(e.to_string()))??;
        let mut records = Vec::with_capacity(read.len());
        let mut events: Vec<v1::Event> = Vec::with_capacity(read.len());
        let mut end = head;
        for (seq, (record, after)) in (head.seq..).zip(read) {
            let event = decode(&record, seq)?;
            if events
                .first()
                .is_some_and(|first| first.tenant_id != event.tenant_id)
            {
                break;
            }
            events.push(event);
            records.push(record);
            end = after;
        }
        Ok((records, events, end))
    }

    /// Sends `records` (`events`, decoded, for the first attempt) until the server
    /// acknowledges or refuses them for good.
    async fn send(
        &mut self,
        records: &[Vec<u8>],
        mut events: Option<Vec<v1::Event>>,
    ) -> Result<Sent, Error> {
        for attempt in 0u32.. {
            let events = match events.take() {
                Some(events) => events,
                None => (records.iter())
                    .map(|record| decode(record, 0))
                    .collect::<Result<_, _>>()?,
            };
            let stopped = self.stopped();
            let call = tokio::time::timeout(self.request_timeout, self.client.publish(events));
            let error = tokio::select! {
                answer = call => match answer {
                    Ok(Ok(_)) => {
                        self.shared.reached.store(REACHED, Ordering::Relaxed);
                        return Ok(Sent::Acknowledged);
                    }
                    Ok(Err(error)) => error,
                    Err(_) => Error::Status(tonic::Status::deadline_exceeded("no answer in time")),
                },
                () = stopped => return Ok(Sent::Stopped),
            };
            let retry_after = match verdict(&error) {
                Verdict::Retry { retry_after } => {
                    self.shared.reached.store(UNREACHED, Ordering::Relaxed);
                    self.shared.retries.fetch_add(1, Ordering::Relaxed);
                    retry_after
                }
                Verdict::Permanent => {
                    // The server answered.
                    self.shared.reached.store(REACHED, Ordering::Relaxed);
                    return Ok(Sent::Refused(match error {
                        Error::Status(status) => status,
                        other => tonic::Status::unknown(other.to_string()),
                    }));
                }
            };
            let delay = self.backoff.next_delay(attempt, retry_after);
            let code = match &error {
                Error::Status(status) => status.code(),
                _ => tonic::Code::Unavailable,
            };
            warn!(
                ?code,
                attempt,
                delay_ms = delay.as_millis() as u64,
                events = records.len(),
                "publish failed; retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.stopped() => return Ok(Sent::Stopped),
            }
        }
        Ok(Sent::Stopped)
    }

    /// Sends a refused batch's events alone; whether all were dealt with (not stopped).
    async fn send_one_by_one(
        &mut self,
        records: &[Vec<u8>],
        first_seq: u64,
    ) -> Result<bool, Error> {
        for (seq, record) in (first_seq..).zip(records) {
            match self.send(std::slice::from_ref(record), None).await? {
                Sent::Acknowledged => {}
                Sent::Refused(status) => self.reject(record, status, seq)?,
                // The head stays before the batch: the next run sends it again, the events
                // acknowledged here as duplicates.
                Sent::Stopped => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Reports `record`'s event as refused.
    fn reject(&self, record: &[u8], status: tonic::Status, seq: u64) -> Result<(), Error> {
        let event_id = decode(record, seq)?.event_id;
        warn!(%event_id, code = ?status.code(), "the server refused an event; not retried");
        let mut rejections =
            (self.shared.rejections.lock()).unwrap_or_else(PoisonError::into_inner);
        rejections.push(Rejection { event_id, status });
        self.shared.refused.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn decode(record: &[u8], seq: u64) -> Result<v1::Event, Error> {
    v1::Event::decode(record).map_err(|source| Error::SpoolDecode { seq, source })
}

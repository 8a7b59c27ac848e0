//! [`Publisher`]: how an adapter hands events to Rezef and forgets them, without losing one.
//!
//! `publish(event)` returns once the event is on local disk (the spool, fsynced); from there
//! a background task sends the spooled events in order, in batches (up to
//! [`PublisherConfig::max_batch_events`], waiting [`PublisherConfig::linger`] for a batch
//! to fill), one batch at a time so that order holds, and removes them from the spool once
//! the server has acknowledged them. Failures the server or the network cause are retried
//! with backoff (`retry.rs`) for as long as it takes, from the spool, across restarts of the
//! adapter; failures the caller caused are not (see [`Publisher::flush`]).
//!
//! Guarantees: every accepted event reaches the server at least once, in the order accepted;
//! its id (given by the caller or the factory, else set here before it is accepted) makes
//! every copy after the first a duplicate that the server records but does not apply. So the
//! effect is exactly once, within the server's deduplication window (`[projection]
//! dedup_window`, a million events a partition by default).
//!
//! Layout: `writer.rs` (the queue to the spool, an fsync per group of events), `sender.rs`
//! (the spool to the server).

mod sender;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rezef_proto::v1;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::retry::Backoff;
use crate::spool::{Spool, SpoolLimits};
use crate::{Client, Error, Rejection, new_event_id};

/// How a [`Publisher`] batches, retries and spools.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// The spool's directory, the publisher's own (locked while it runs). Events spooled
    /// there by an earlier run are sent first.
    pub spool_dir: PathBuf,
    pub spool: SpoolLimits,
    /// Events in one `Publish` at most (the server takes up to `limits.max_batch_events`,
    /// 10,000 by default).
    pub max_batch_events: usize,
    /// Bytes of events in one `Publish` at most (under the server's
    /// `limits.max_message_bytes`, 16 MiB by default).
    pub max_batch_bytes: usize,
    /// How long a batch waits to fill before it goes.
    pub linger: Duration,
    /// Events waiting to be spooled at most: past it `publish` waits and `try_publish`
    /// answers [`Error::QueueFull`].
    pub queue_events: usize,
    pub backoff: Backoff,
    /// How long one `Publish` may take before it is abandoned and retried.
    pub request_timeout: Duration,
}

impl PublisherConfig {
    /// Defaults: batches of up to 500 events or 4 MiB lingering 5 ms, a queue of 10,000
    /// events, a spool of 1 GiB, backoff from 50 ms to 10 s, 30 s a request.
    pub fn new(spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            spool_dir: spool_dir.into(),
            spool: SpoolLimits::default(),
            max_batch_events: 500,
            max_batch_bytes: 4 << 20,
            linger: Duration::from_millis(5),
            queue_events: 10_000,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What the publisher's tasks share.
#[derive(Debug)]
struct Shared {
    spool: Mutex<Spool>,
    /// The sequence number after the last event spooled.
    written: watch::Sender<u64>,
    /// The sequence number of the first event the server has not acknowledged.
    acknowledged: watch::Sender<u64>,
    /// Refused events not yet reported by [`Publisher::flush`].
    rejections: Mutex<Vec<Rejection>>,
    /// Set: the sender stopped for good, and why.
    failed: Mutex<Option<String>>,
    /// `Publish` attempts that failed and were retried.
    retries: AtomicU64,
    /// Events the server refused for good.
    refused: AtomicU64,
    /// How the last `Publish` went: [`REACHED`], [`UNREACHED`], or [`UNTRIED`] yet.
    reached: AtomicU8,
    /// The spool's head and end when the publisher started.
    started: (u64, u64),
}

const UNTRIED: u8 = 0;
const REACHED: u8 = 1;
const UNREACHED: u8 = 2;

impl Shared {
    fn spool(&self) -> std::sync::MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(&self) -> Option<Error> {
        let failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        failed.clone().map(Error::Stopped)
    }
}

/// Where the writer says whether events were spooled.
type Reply = oneshot::Receiver<Result<(), Error>>;

/// Events on their way to the spool, and who waits for them to be there.
#[derive(Debug)]
struct Intake {
    events: Vec<v1::Event>,
    reply: oneshot::Sender<Result<(), Error>>,
    /// Their places in the queue, given back once they are spooled.
    _permits: tokio::sync::OwnedSemaphorePermit,
}

/// What [`Publisher::close`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    /// Accepted events the server had not acknowledged by then: still in the spool, sent by
    /// the next publisher on it.
    pub unsent: u64,
}

/// What a publisher has done since it started, for health and metrics
/// ([`Publisher::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublisherStats {
    /// Events accepted (spooled) since the start.
    pub accepted: u64,
    /// Events the server acknowledged since the start (the spool's earlier ones too).
    pub acknowledged: u64,
    /// Events the server refused for good since the start.
    pub refused: u64,
    /// `Publish` attempts that failed and were retried.
    pub retries: u64,
    /// Accepted events waiting for the server, and their bytes in the spool.
    pub unsent: u64,
    pub spool_bytes: u64,
    /// Whether the last `Publish` was answered for good (acknowledged or refused); `None`
    /// before the first.
    pub server_reachable: Option<bool>,
    /// The publisher stopped for good (its spool failed); nothing more is delivered.
    pub stopped: bool,
}

/// An event taken by [`Publisher::try_publish`], on its way to the spool.
#[derive(Debug)]
pub struct Acceptance {
    event_id: String,
    reply: Reply,
}

impl Acceptance {
    /// The event's id once it is spooled (accepted); else why not.
    pub async fn accepted(self) -> Result<String, Error> {
        self.reply.await.map_err(|_| Error::Closed)??;
        Ok(self.event_id)
    }
}

/// Publishes events through a local spool: see the module documentation. Cheap to share
/// (`&self` everywhere); one per spool directory.
#[derive(Debug)]
pub struct Publisher {
    intake: mpsc::UnboundedSender<Intake>,
    queue: Arc<Semaphore>,
    capacity: usize,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    writer: JoinHandle<()>,
    sender: JoinHandle<()>,
}

impl Publisher {
    /// Opens the spool and starts sending what it holds through `client` (its API key and
    /// TLS settings are the publisher's; [`Client::connect_lazy`] lets it start while the
    /// server is down).
    pub async fn start(client: Client, config: PublisherConfig) -> Result<Self, Error> {
        let (dir, limits) = (config.spool_dir.clone(), config.spool);
        let spool = tokio::task::spawn_blocking(move || Spool::open(&dir, limits))
            .await
            .map_err(|e| Error::Stopped(e.to_string()))??;
        let (head, end) = (spool.head().seq, spool.end().seq);
        let shared = Arc::new(Shared {
            spool: Mutex::new(spool),
            written: watch::Sender::new(end),
            acknowledged: watch::Sender::new(head),
            rejections: Mutex::default(),
            failed: Mutex::default(),
            retries: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            reached: AtomicU8::new(UNTRIED),
            started: (head, end),
        });
        let (intake, queued) = mpsc::unbounded_channel();
        let stop = watch::Sender::new(false);
        let writer = tokio::spawn(writer::run(shared.clone(), queued));
        let sender = sender::Sender::new(client, &config, shared.clone(), stop.subscribe());
        let sender = tokio::spawn(sender.run());
        Ok(Self {
            intake,
            queue: Arc::new(Semaphore::new(config.queue_events)),
            capacity: config.queue_events,
            shared,
            stop,
            writer,
            sender,
        })
    }

    /// Accepts `event`: returns its id once it is on disk, waiting for room in the queue.
    /// An event without an id gets one first. [`Error::SpoolFull`]: not accepted.
    pub async fn publish(&self, event: v1::Event) -> Result<String, Error> {
        let mut ids = self.publish_all(vec![event]).await?;
        ids.pop().ok_or(Error::Closed)
    }

    /// Accepts `events` together (all or none), in order; their ids.
    pub async fn publish_all(&self, events: Vec<v1::Event>) -> Result<Vec<String>, Error> {
        let count = u32::try_from(events.len())
            .ok()
            .filter(|&n| n as usize <= self.capacity)
            .ok_or(Error::QueueFull {
                capacity: self.capacity,
            })?;
        let permits =
            (self.queue.clone().acquire_many_owned(count).await).map_err(|_| Error::Closed)?;
        let (ids, reply) = self.enqueue(events, permits)?;
        reply.await.map_err(|_| Error::Closed)??;
        Ok(ids)
    }

    /// Takes `event` if the queue has room ([`Error::QueueFull`] if not), without waiting;
    /// [`Acceptance::accepted`] says when it is on disk.
    pub fn try_publish(&self, event: v1::Event) -> Result<Acceptance, Error> {
        let full = || Error::QueueFull {
            capacity: self.capacity,
        };
        let permit = self.queue.clone().try_acquire_owned().map_err(|_| full())?;
        let (mut ids, reply) = self.enqueue(vec![event], permit)?;
        let event_id = ids.pop().ok_or(Error::Closed)?;
        Ok(Acceptance { event_id, reply })
    }

    fn enqueue(
        &self,
        mut events: Vec<v1::Event>,
        permits: tokio::sync::OwnedSemaphorePermit,
    ) -> Result<(Vec<String>, Reply), Error> {
        for event in &mut events {
            if event.event_id.is_empty() {
                event.event_id = new_event_id();
            }
        }
        let ids = events.iter().map(|e| e.event_id.clone()).collect();
        let (reply, accepted) = oneshot::channel();
        let intake = Intake {
            events,
            reply,
            _permits: permits,
        };
        self.intake.send(intake).map_err(|_| Error::Closed)?;
        Ok((ids, accepted))
    }

    /// Waits until the server has acknowledged every event accepted before this call, or
    /// refused it: [`Error::Rejected`] names the events refused since the last flush (they
    /// were not retried and are no longer spooled). Waits as long as the server is out of
    /// reach: wrap it in a timeout to bound it.
    pub async fn flush(&self) -> Result<(), Error> {
        let target = self.shared.spool().end().seq;
        let mut acknowledged = self.shared.acknowledged.subscribe();
        let reached = acknowledged.wait_for(|&head| head >= target || self.failed());
        reached.await.map_err(|_| Error::Closed)?;
        if let Some(failure) = self.shared.failure() {
            return Err(failure);
        }
        let mut rejections =
            (self.shared.rejections.lock()).unwrap_or_else(PoisonError::into_inner);
        match std::mem::take(&mut *rejections) {
            refused if refused.is_empty() => Ok(()),
            refused => Err(Error::Rejected(refused)),
        }
    }

    fn failed(&self) -> bool {
        (self.shared.failed.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Stops taking events, waits up to `grace` for the server to acknowledge the accepted
    /// ones, then stops. What is left stays in the spool for the next start. Refusals not yet
    /// reported come back as [`Error::Rejected`].
    pub async fn close(self, grace: Duration) -> Result<Closed, Error> {
        let Self {
            intake,
            shared,
            stop,
            writer,
            sender,
            ..
        } = self;
        drop(intake);
        writer.await.map_err(|e| Error::Stopped(e.to_string()))?;
        let target = shared.spool().end().seq;
        let mut acknowledged = shared.acknowledged.subscribe();
        let done = acknowledged.wait_for(|&head| head >= target);
        let _ = tokio::time::timeout(grace, done).await;
        stop.send_replace(true);
        sender.await.map_err(|e| Error::Stopped(e.to_string()))?;
        if let Some(failure) = shared.failure() {
            return Err(failure);
        }
        let spool = shared.spool();
        let unsent = spool.end().seq - spool.head().seq;
        drop(spool);
        let refused = std::mem::take(
            &mut *(shared.rejections.lock()).unwrap_or_else(PoisonError::into_inner),
        );
        if refused.is_empty() {
            Ok(Closed { unsent })
        } else {
            Err(Error::Rejected(refused))
        }
    }

    /// Counts since the start, and the spool now.
    pub fn stats(&self) -> PublisherStats {
        let shared = &self.shared;
        let (head, end, spool_bytes) = {
            let spool = shared.spool();
            (spool.head().seq, spool.end().seq, spool.pending_bytes())
        };
        let refused = shared.refused.load(Ordering::Relaxed);
        PublisherStats {
            accepted: end - shared.started.1,
            acknowledged: (head - shared.started.0).saturating_sub(refused),
            refused,
            retries: shared.retries.load(Ordering::Relaxed),
            unsent: end - head,
            spool_bytes,
            server_reachable: match shared.reached.load(Ordering::Relaxed) {
                REACHED => Some(true),
                UNREACHED => Some(false),
                _ => None,
            },
            stopped: self.failed(),
        }
    }

    /// Accepted events the server has not acknowledged yet.
    pub fn unsent(&self) -> u64 {
        let spool = self.shared.spool();
        spool.end().seq - spool.head().seq
    }
}

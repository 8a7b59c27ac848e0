//! The durable, ordered log at the bottom of Rezef.
//!
//! Everything Rezef knows is an event in this log; every other store (the sled projection, the
//! search indexes, ...) is derived from it and can be rebuilt by replaying it. That makes this
//! crate the one place that carries durability, so its contract is strict:
//!
//! - **An acknowledged append is never lost**, even under `kill -9` or power loss: `append`
//!   returns only after the batch has been `fdatasync`ed.
//! - **Batches are atomic**: after a crash a batch is either entirely present or entirely
//!   absent.
//! - **Readers only ever see acknowledged records**, in offset order, with no gaps.
//!
//! Records are opaque bytes: the log assigns each an [`Offset`] and an append timestamp and
//! knows nothing else about them. The [`Log`] trait is deliberately free of file-system
//! notions so that the Kafka-backed `kafka::KafkaLog` (feature `kafka`) can stand in for
//! [`EmbeddedLog`]; the `conformance` feature exposes the test suite every implementation must
//! pass.
//!
//! **The Kafka difference**: Kafka makes a batch of records atomic only with transactions,
//! which would leave gaps in the offsets, so `KafkaLog` keeps a batch's records contiguous but
//! a failed append may leave some of them (normally a prefix) written; "acknowledged" means
//! replicated to the in-sync replicas rather than fsynced. Rezef's publish path is idempotent
//! by event id (a retried publish does not apply twice), so the effect stays exactly once.
//!
//! # Layout
//! - [`Log`] and its records (here), [`error`], `frame.rs` (one batch on disk, checksummed;
//!   the format is in `FORMAT.md`), `chain.rs` (the hash chain over frames), `verify.rs`
//!   ([`verify`]: an audit of a whole log directory), `tail.rs` (following a log as it
//!   grows).
//! - `embedded/`: [`EmbeddedLog`]: `segment.rs` (one file, its index and scans),
//!   `writer.rs` (the writer thread and its group commit).
//! - `kafka/` (feature `kafka`): one partition of a topic as a `Log` (`writer.rs`,
//!   `reader.rs`, `follower.rs`), its topic (`admin.rs`), the consumer group that shares
//!   partitions between nodes (`group.rs`), librdkafka's settings and errors (`config.rs`,
//!   `failure.rs`, and `witness.rs`: why a connection failed).
//! - `conformance` (feature `conformance`): the suite every implementation passes;
//!   `small_disk` (same feature): a tmpfs of a few MiB for tests of a full disk.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use rezef_log::{EmbeddedLog, EmbeddedLogConfig, Log, tail};
//!
//! # #[tokio::main] async fn main() -> rezef_log::Result<()> {
//! let dir = tempfile::tempdir().expect("temp dir");
//! let log = EmbeddedLog::open(EmbeddedLogConfig::new(dir.path()))?;
//!
//! // One atomic, durable batch of two records.
//! let appended = log
//!     .append(vec![Bytes::from_static(b"created"), Bytes::from_static(b"assigned")])
//!     .await?;
//! assert_eq!((appended.first_offset, appended.count), (0, 2));
//! assert_eq!(log.end_offset(), 2);
//!
//! // Random access...
//! let records = log.read(1, 10).await?;
//! assert_eq!(records[0].payload, Bytes::from_static(b"assigned"));
//!
//! // ...and following the log live, as projections do.
//! let mut follower = tail(log.clone(), 0, 100);
//! assert_eq!(follower.next_batch().await?.len(), 2);
//! log.append(vec![Bytes::from_static(b"closed")]).await?;
//! assert_eq!(follower.next_batch().await?[0].offset, 2);
//!
//! log.close().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod chain;
mod embedded;
pub mod error;
mod frame;
mod tail;
mod verify;

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod small_disk;

#[cfg(feature = "kafka")]
pub mod kafka;

use bytes::Bytes;

pub use chain::ChainHash;
pub use embedded::in_use;
pub use embedded::{EmbeddedLog, EmbeddedLogConfig, LogStats};
pub use error::{Corruption, Error, Result};
pub use tail::{Tail, tail};
pub use verify::{BreakKind, Broken, Verdict, Verified, verify};

/// Position of a record in the log: 0 for the first record ever appended, then contiguous.
pub type Offset = u64;

/// The end of the offsets: no record of a log has an offset at or past it, so an end offset
/// is at most this. Kafka's offsets are an `i64`; the embedded log keeps the same bound and
/// refuses a segment whose name or frames reach past it as corrupt.
pub const OFFSET_LIMIT: Offset = i64::MAX as Offset;

/// One record as read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's position.
    pub offset: Offset,
    /// When its batch was appended (ms since the Unix epoch); never decreases along the log.
    pub timestamp_ms: i64,
    /// The bytes that were appended.
    pub payload: Bytes,
}

/// What an acknowledged [`Log::append`] assigned: offsets `first_offset..first_offset + count`,
/// all with `timestamp_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the batch's first record.
    pub first_offset: Offset,
    /// Number of records in the batch.
    pub count: u32,
    /// The batch's append timestamp (ms since the Unix epoch).
    pub timestamp_ms: i64,
}

impl Appended {
    /// Offset one past the batch's last record.
    pub fn end_offset(&self) -> Offset {
        self.first_offset + u64::from(self.count)
    }
}

/// Whether a log can take appends, as its writer last found out: what a server's health
/// reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteHealth {
    /// The last write (or probe) succeeded.
    Writable,
    /// The last write failed and no write or probe has succeeded since: appends are tried
    /// again, and fail with the same kind of error while the cause lasts.
    Failing {
        /// The disk (or the quota) is full ([`Error::NoSpace`]).
        no_space: bool,
        /// What failed, for operators (it may name the log's files).
        reason: String,
    },
}

impl WriteHealth {
    /// Whether appends are expected to succeed.
    pub fn is_writable(&self) -> bool {
        matches!(self, WriteHealth::Writable)
    }
}

/// A durable, totally ordered, append-only sequence of opaque records.
///
/// Implementations: [`EmbeddedLog`] (files on local disk) and, with the `kafka` feature,
/// `kafka::KafkaLog` (one partition of a Kafka topic). All methods may be called concurrently
/// from many tasks.
#[async_trait::async_trait]
pub trait Log: Send + Sync + std::fmt::Debug + 'static {
    /// Appends the payloads as one atomic batch (all or nothing, also across crashes) and returns
    /// once the batch is durable. The log assigns offsets and the append timestamp (ms since the
    /// Unix epoch, never decreasing across batches: max(now, previous)). Empty batch ->
    /// [`Error::EmptyBatch`].
    ///
    /// If the returned future is dropped before it completes, the batch may or may not be
    /// appended. An error does not prove the batch was not written.
    async fn append(&self, payloads: Vec<Bytes>) -> Result<Appended>;

    /// Up to `max_records` durable records starting at `from`, in order. Empty when
    /// `from >= end_offset()`. `from < start_offset()` -> [`Error::OffsetOutOfRange`]. Only
    /// acknowledged (durable) records are ever visible to readers.
    async fn read(&self, from: Offset, max_records: usize) -> Result<Vec<Record>>;

    /// Offset one past the last durable record (the "high watermark").
    fn end_offset(&self) -> Offset;

    /// First readable offset (0 for the embedded log; retention may raise it later).
    fn start_offset(&self) -> Offset;

    /// Resolves once `end_offset() > offset` (i.e. record `offset` is readable), or with
    /// [`Error::Closed`] when the log shuts down first.
    async fn wait_for(&self, offset: Offset) -> Result<()>;

    /// First offset whose record timestamp is `>= timestamp_ms` (`end_offset()` if none). Used
    /// by time-range audit replay.
    async fn offset_for_time(&self, timestamp_ms: i64) -> Result<Offset>;

    /// Whether appends can be written now, as it changes. A log whose failures are per request
    /// only (Kafka's: a broker out of reach fails that append with [`Error::Unavailable`],
    /// and the next may succeed) keeps the default, always [`WriteHealth::Writable`].
    fn write_health(&self) -> tokio::sync::watch::Receiver<WriteHealth> {
        tokio::sync::watch::channel(WriteHealth::Writable).1
    }

    /// Starts checking the hash chain (and every frame's checksum and offsets) over the records
    /// below `end_offset()` at the call, from the first, as [`verify`] does, while appends go
    /// on; the returned future is the verdict. A log that carries no chain refuses at once
    /// with [`Error::Refused`] (Kafka's: docs/audit.md, "Tamper evidence").
    fn verify_chain(&self) -> Result<ChainCheck>;

    /// Stops the log: appends in flight finish, later appends and unsatisfied waits fail with
    /// [`Error::Closed`], reads still work. Closing again does nothing.
    async fn close(&self);
}

/// A verification under way ([`Log::verify_chain`]): resolves to its verdict.
pub type ChainCheck = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Verdict>> + Send>>;

/// Runs blocking work off the async runtime, re-raising a panic from it.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Closed),
    }
}

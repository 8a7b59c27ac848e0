//! Errors of the log.
//!
//! The variants are structured (rather than strings) so that callers can react to them:
//! a server maps [`Error::OffsetOutOfRange`] to a client error, [`Error::Closed`] to "shutting
//! down", and treats [`Error::Io`] / [`Error::Corrupt`] as operator-visible failures. A remote
//! backend (Kafka) adds [`Error::Unavailable`] (retry: "not acknowledged") apart from
//! [`Error::Refused`] and [`Error::Config`] (retrying does not help).

use std::io;
use std::path::PathBuf;

use crate::Offset;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a [`Log`](crate::Log).
///
/// Exhaustive on purpose: the server maps each variant to a gRPC status by name, so a new
/// variant fails to compile there until someone decides its status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation on the log's files failed.
    ///
    /// An `Io` error from `append` means the batch was not acknowledged. The embedded log cuts
    /// what it wrote of the failed group off the segment and tries the disk again on the next
    /// append (and, while no append comes, with a probe that backs off): see
    /// [`WriteHealth`](crate::WriteHealth). Nothing acknowledged is touched.
    #[error("log I/O failed: {op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"open segment"`, `"fdatasync"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The disk (or the quota) holding the log is full: `ENOSPC` or `EDQUOT`. As for
    /// [`Error::Io`], the batch was not acknowledged, and appends work again once space is
    /// freed, without a restart.
    #[error("the log's disk is full: {op} {}: {source}", path.display())]
    NoSpace {
        /// What was being done (`"write segment"`, `"create segment"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Data that should be intact is not: a sealed (non-last) segment failed validation, or a
    /// checksummed frame is structurally inconsistent. The log refuses to guess; it never
    /// silently drops acknowledged data.
    #[error("log corrupt in {} at byte {position}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the offending frame within the file.
        position: u64,
        /// What exactly is wrong.
        reason: Corruption,
    },

    /// The encoded batch is larger than the configured `max_batch_bytes`.
    #[error("batch of {bytes} bytes exceeds the limit of {limit} bytes")]
    BatchTooLarge {
        /// Encoded size of the rejected batch (frame header + per-record overhead + payloads).
        bytes: u64,
        /// The configured limit.
        limit: u64,
    },

    /// `append` was called with no payloads.
    #[error("cannot append an empty batch")]
    EmptyBatch,

    /// A read asked for an offset below the first readable offset.
    #[error("offset {requested} out of range (log holds [{start}, {end}))")]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: Offset,
        /// First readable offset at the time of the call.
        start: Offset,
        /// End offset (high watermark) at the time of the call.
        end: Offset,
    },

    /// The log has been closed.
    #[error("log is closed")]
    Closed,

    /// The log's backend could not be reached, or did not answer within its timeout (for the
    /// Kafka log: no broker reachable, a delivery or request timed out, no partition leader). Nothing proves the request was not carried out: an append
    /// may have been written, wholly or in part. Retrying is the remedy.
    #[error("log unavailable: {0}")]
    Unavailable(String),

    /// The log's backend answered and refused the request: an unknown topic or partition, a
    /// setting the brokers do not accept, missing authorization, an unsupported operation.
    /// Retrying the same request does not help; the message names the refusal.
    #[error("log backend refused: {0}")]
    Refused(String),

    /// The log's client configuration is unusable (an unknown or conflicting setting, a
    /// setting the log's guarantees depend on overridden). Nothing was sent.
    #[error("invalid log configuration: {0}")]
    Config(String),

    /// Every record of the batch was written, but not at contiguous offsets: another writer's
    /// records landed between them (only possible when several processes append to one Kafka
    /// partition and a batch was split across produce requests). The records are durable and
    /// readable where they are; the batch is not acknowledged as a contiguous one.
    #[error(
        "batch of {count} records was interleaved with other writers' records between offsets {first} and {last}"
    )]
    Interleaved {
        /// Records in the batch.
        count: u32,
        /// Offset of its first record.
        first: Offset,
        /// Offset of its last record.
        last: Offset,
    },

    /// Another process has the log directory open. Two writers would corrupt each other
    /// (recovery truncates a tail the other may be writing), so the second one is refused.
    #[error("the log in {} is in use by another process (lock file {})", dir.display(), lock.display())]
    Locked {
        /// The log directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
}

/// The specific inconsistency behind an [`Error::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// The frame does not start with the format's magic bytes.
    #[error("bad frame magic")]
    BadMagic,
    /// A checksummed frame carries a format version this build does not understand.
    #[error("unsupported frame format version {0}")]
    UnsupportedVersion(u8),
    /// The frame length field is smaller than a header or runs past the end of the segment.
    #[error("bad frame length {len} (segment has {available} bytes left)")]
    BadFrameLength {
        /// The stored frame length.
        len: u64,
        /// Bytes left in the segment from the frame's position.
        available: u64,
    },
    /// The stored CRC32C does not match the frame's contents.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes read.
        computed: u32,
    },
    /// A checksummed frame is structurally invalid: record lengths do not add up to the frame
    /// length, the record count is zero, or reserved header bytes are set.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
    /// A frame's base offset is not the one that follows the previous frame (or the segment's
    /// base offset).
    #[error("frame base offset {found}, expected {expected}")]
    OffsetMismatch {
        /// The offset the log expected.
        expected: Offset,
        /// The offset stored in the frame.
        found: Offset,
    },
    /// A frame's timestamp is below the previous frame's.
    #[error("frame timestamp {found} ms is below the previous frame's {previous} ms")]
    TimestampRegression {
        /// Previous frame's timestamp.
        previous: i64,
        /// This frame's timestamp.
        found: i64,
    },
    /// A segment's base offset, or a frame's records, reach past [`crate::OFFSET_LIMIT`].
    #[error("offsets from {base} for {count} records reach past the last a log holds")]
    PastOffsetLimit {
        /// The segment's or the frame's base offset.
        base: Offset,
        /// The frame's record count (0 for a segment).
        count: u32,
    },
    /// A sealed segment does not end where the next segment begins.
    #[error("segment ends at offset {found}, but the next segment starts at {expected}")]
    SegmentGap {
        /// Base offset of the next segment.
        expected: Offset,
        /// Offset one past the segment's last record.
        found: Offset,
    },
}

impl Error {
    /// An I/O failure: [`Error::NoSpace`] when the disk or the quota is full, else
    /// [`Error::Io`].
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                Error::NoSpace { op, path, source }
            }
            _ => Error::Io { op, path, source },
        }
    }

    /// Whether this is [`Error::NoSpace`].
    pub fn is_no_space(&self) -> bool {
        matches!(self, Error::NoSpace { .. })
    }

    /// A copy of this error for fanning out one failure to several waiters (`io::Error` is not
    /// `Clone`, so the source is re-created from its kind and message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Error::Io { op, path, source } => Error::Io {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::NoSpace { op, path, source } => Error::NoSpace {
                op,
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            Error::Corrupt {
                path,
                position,
                reason,
            } => Error::Corrupt {
                path: path.clone(),
                position: *position,
                reason: reason.clone(),
            },
            Error::BatchTooLarge { bytes, limit } => Error::BatchTooLarge {
                bytes: *bytes,
                limit: *limit,
            },
            Error::EmptyBatch => Error::EmptyBatch,
            Error::OffsetOutOfRange {
                requested,
                start,
                end,
            } => Error::OffsetOutOfRange {
                requested: *requested,
                start: *start,
                end: *end,
            },
            Error::Closed => Error::Closed,
            Error::Unavailable(reason) => Error::Unavailable(reason.clone()),
            Error::Refused(reason) => Error::Refused(reason.clone()),
            Error::Config(reason) => Error::Config(reason.clone()),
            Error::Interleaved { count, first, last } => Error::Interleaved {
                count: *count,
                first: *first,
                last: *last,
            },
            Error::Locked { dir, lock } => Error::Locked {
                dir: dir.clone(),
                lock: lock.clone(),
            },
        }
    }
}

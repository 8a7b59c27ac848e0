//! The embedded, file-based [`Log`]: segmented append-only files in one directory, made
//! durable with group-committed `fdatasync`.
//!
//! Why this shape:
//! - **Segments** (one file per ~`segment_bytes`, named by base offset) keep recovery cheap:
//!   only the last segment can have a torn tail, so only it is scanned at open; retention can
//!   later drop whole files.
//! - **One frame per batch** with a CRC32C makes a batch atomic across crashes: recovery keeps
//!   whole valid frames and cuts the rest.
//! - **One writer thread with group commit** turns N concurrent appends into one write and one
//!   fsync, and gives a single place that assigns offsets and timestamps.
//! - **Readers never block the writer**: they use positional reads on their own handles and see
//!   only offsets below the published durable end (a `tokio::sync::watch`), so they can run
//!   concurrently with appends and never observe an unacknowledged record.
//!
//! The on-disk format is specified in `FORMAT.md` next to this crate's `Cargo.toml`.

pub(crate) mod segment;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::frame::{self, MAX_FRAME_LEN};
use crate::{Appended, ChainCheck, Log, Offset, Record, WriteHealth, blocking, verify};
use segment::{Segment, parse_segment_file_name, recover_last, segment_file_name};
use writer::{AppendRequest, Writer, create_segment_file};

/// How many append requests may wait for the writer before `append` itself waits.
const QUEUE_DEPTH: usize = 1024;

/// Configuration of an [`EmbeddedLog`]. Build it with [`EmbeddedLogConfig::new`] and adjust
/// the public fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedLogConfig {
    /// Directory holding the segment files (created if missing). One log per directory.
    pub dir: PathBuf,
    /// A new segment is started once the active one reaches this many bytes (a single batch
    /// larger than this still goes whole into one segment). Default 128 MiB.
    pub segment_bytes: u64,
    /// Largest accepted batch, measured as its encoded frame size (100-byte header plus 4
    /// bytes per record plus payloads). Larger appends fail with [`Error::BatchTooLarge`]. Default
    /// 64 MiB; values above `u32::MAX` are capped there (the frame length field is 32 bits).
    pub max_batch_bytes: usize,
    /// `fdatasync` every group commit (and fsync the directory on segment creation). Default
    /// `true`. **`false` voids the durability contract**; it exists only as a benchmark
    /// baseline.
    pub fsync: bool,
}

impl EmbeddedLogConfig {
    /// Default segment size: 128 MiB.
    pub const DEFAULT_SEGMENT_BYTES: u64 = 128 * 1024 * 1024;
    /// Default batch size limit: 64 MiB.
    pub const DEFAULT_MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

    /// The default configuration for a log in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddedLogConfig {
            dir: dir.into(),
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            max_batch_bytes: Self::DEFAULT_MAX_BATCH_BYTES,
            fsync: true,
        }
    }
}

/// Counters of the embedded log's work since it was opened (cheap to read; for metrics and
/// tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Acknowledged `append` calls (batches).
    pub appends: u64,
    /// Records in those batches.
    pub records: u64,
    /// Encoded frame bytes written for them.
    pub bytes: u64,
    /// `fdatasync` calls on segment data (0 with `fsync: false`).
    pub syncs: u64,
    /// Group commits performed (each acknowledges one or more appends).
    pub groups: u64,
}

#[derive(Debug, Default)]
struct Counters {
    appends: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    syncs: AtomicU64,
    groups: AtomicU64,
}

/// What readers may see: everything below `end` is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watermark {
    end: Offset,
    closed: bool,
}

/// State shared by the log handle, the writer thread and blocking read tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    segments: RwLock<BTreeMap<Offset, Arc<Segment>>>,
    watermark: watch::Sender<Watermark>,
    /// Whether the writer's last write succeeded.
    health: watch::Sender<WriteHealth>,
    stats: Counters,
}

impl Shared {
    fn segments(&self) -> RwLockReadGuard<'_, BTreeMap<Offset, Arc<Segment>>> {
        // The map is only ever replaced by single `insert`s; a poisoned lock still holds a
        // consistent map.
        self.segments.read().unwrap_or_else(|p| p.into_inner())
    }

    fn segments_mut(&self) -> RwLockWriteGuard<'_, BTreeMap<Offset, Arc<Segment>>> {
        self.segments.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The segment holding `offset` and the base of the one after it.
    fn segment_for(&self, offset: Offset) -> Option<(Arc<Segment>, Option<Offset>)> {
        let segments = self.segments();
        let (&base, segment) = segments.range(..=offset).next_back()?;
        let next = segments
            .range(base.saturating_add(1)..)
            .next()
            .map(|(&b, _)| b)
            .filter(|&b| b > base);
        Some((Arc::clone(segment), next))
    }

    fn start_offset(&self) -> Offset {
        self.segments().keys().next().copied().unwrap_or(0)
    }

    fn read_blocking(&self, from: Offset, max: usize, end: Offset) -> Result<Vec<Record>> {
        let mut out = Vec::with_capacity(
            max.min(1024)
                .min(usize::try_from(end.saturating_sub(from)).unwrap_or(usize::MAX)),
        );
        let mut cur = from;
        while cur < end && out.len() < max {
            let Some((segment, next_base)) = self.segment_for(cur) else {
                break;
            };
            let advanced = segment.read_into(cur, end, max, next_base, &mut out)?;
            if advanced == cur {
                // The segment that should hold `cur` does not: a gap between segments that a
                // sealed segment's validation did not catch. Report rather than spin.
                let (position, found) = {
                    let index = segment.index();
                    (index.end_pos(), index.end_offset())
                };
                return Err(Error::Corrupt {
                    path: segment.path().to_path_buf(),
                    position,
                    reason: crate::error::Corruption::SegmentGap {
                        expected: cur,
                        found,
                    },
                });
            }
            cur = advanced;
        }
        Ok(out)
    }

    fn offset_for_time_blocking(&self, timestamp_ms: i64, end: Offset) -> Result<Offset> {
        let segments: Vec<Arc<Segment>> = self.segments().values().cloned().collect();
        // Timestamps never decrease along the log, so "first timestamp of the segment is below
        // `timestamp_ms`" holds for a prefix of the segments. Binary-search that prefix using
        // one header read per probe; only the segment where the answer lies gets indexed.
        let (mut lo, mut hi) = (0, segments.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = segments[mid]
                .first_timestamp()?
                .is_some_and(|ts| ts < timestamp_ms);
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        // Segments before `lo` start below the target; the answer is in segment `lo - 1` or
        // is the first record of segment `lo` (or the end).
        if let Some(candidate) = lo.checked_sub(1).map(|i| &segments[i]) {
            let next_base = segments.get(lo).map(|s| s.base());
            if let Some(offset) = candidate.offset_for_time(timestamp_ms, next_base)? {
                return Ok(offset.min(end));
            }
        }
        Ok(segments.get(lo).map_or(end, |s| s.base()).min(end))
    }
}

/// Takes the directory's advisory lock, so a second process cannot open the same log.
fn lock_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join("LOCK");
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
            lock: path,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock log directory", &path, e)),
    }
}

/// Whether a process holds the log in `dir` open (its `LOCK`), without taking the lock: a
/// verification may run beside it, and then sees the log as it was while it read.
pub fn in_use(dir: &Path) -> Result<bool> {
    let path = dir.join("LOCK");
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("open lock file", &path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io("probe log lock", &path, e)),
    }
}

/// The embedded, file-based log: segment files in one directory, one CRC32C-checked frame per
/// batch, chained to the one before by a BLAKE3 hash ([`crate::verify`]), and a single writer thread that group-commits appends with one `fdatasync` per group.
/// The on-disk format and the recovery rules are specified in the crate's `FORMAT.md`.
///
/// Dropping the last handle stops the writer after it has committed what was already queued;
/// prefer [`EmbeddedLog::close`] in async code, which does the same without blocking a runtime
/// thread.
pub struct EmbeddedLog {
    /// Held (locked) for the log's lifetime: one process per log directory.
    _lock: std::fs::File,
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    max_batch_bytes: u64,
}

impl fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = *self.shared.watermark.borrow();
        f.debug_struct("EmbeddedLog")
            .field("dir", &self.shared.dir)
            .field("start_offset", &self.shared.start_offset())
            .field("end_offset", &w.end)
            .field("closed", &w.closed)
            .finish_non_exhaustive()
    }
}

impl EmbeddedLog {
    /// Opens (or creates) the log in `config.dir`, recovering from any crash: the last
    /// segment is scanned and a torn tail truncated (logged as a warning). Sealed segments are
    /// validated lazily, on first read; see [`Error::Corrupt`].
    ///
    /// This does blocking file I/O and starts the writer thread; from async code, call it via
    /// `tokio::task::spawn_blocking` if recovery of a large last segment must not stall the
    /// runtime.
    pub fn open(config: EmbeddedLogConfig) -> Result<Arc<EmbeddedLog>> {
        let dir = config.dir.clone();
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io("create log directory", &dir, e))?;
            // Make the new directory's own name durable.
            if config.fsync
                && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
            {
                writer::sync_dir(parent)?;
            }
        }
        let lock = lock_dir(&dir)?;
        let mut found = list_segments(&dir)?;
        if found.is_empty() {
            let path = dir.join(segment_file_name(0));
            drop(create_segment_file(&path, &dir, config.fsync)?);
            tracing::info!(dir = %dir.display(), "created new log");
            found.insert(0, path);
        }
        let Some((&last_base, last_path)) = found.iter().next_back() else {
            return Err(Error::io(
                "list segments",
                &dir,
                std::io::Error::other("no segment after creating one"),
            ));
        };
        let last_path = last_path.clone();
        let recovered = recover_last(last_base, &last_path, config.fsync)?;

        let mut segments = BTreeMap::new();
        for (&base, path) in found.range(..last_base) {
            segments.insert(base, Arc::new(Segment::sealed(base, path.clone())));
        }
        let end = recovered.index.end_offset();
        let pos = recovered.index.end_pos();
        let mut last_ts = recovered.index.last_ts();
        let mut chain = recovered.index.last_chain();
        if last_ts.is_none() {
            // An empty last segment: the timestamp floor and the chain hash to continue from
            // come from the previous segment, which also proves that segment ends where the
            // empty one begins.
            if let Some(prev) = segments.values().next_back() {
                let index = prev.ensure_index(Some(last_base))?;
                last_ts = index.last_ts();
                chain = index.last_chain();
            }
        }
        let reader = recovered
            .file
            .try_clone()
            .map_err(|e| Error::io("clone segment handle", &last_path, e))?;
        let active = Arc::new(Segment::with_index(
            last_base,
            last_path.clone(),
            reader,
            recovered.index,
        ));
        segments.insert(last_base, Arc::clone(&active));

        let (watermark, _) = watch::channel(Watermark { end, closed: false });
        let shared = Arc::new(Shared {
            dir: dir.clone(),
            segments: RwLock::new(segments),
            watermark,
            health: watch::Sender::new(WriteHealth::Writable),
            stats: Counters::default(),
        });
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let writer = Writer {
            shared: Arc::clone(&shared),
            active,
            file: recovered.file,
            pos,
            next_offset: end,
            last_ts: last_ts.unwrap_or(i64::MIN),
            chain,
            segment_bytes: config.segment_bytes,
            fsync: config.fsync,
            buf: Vec::new(),
            dirty: false,
            failing: None,
        };
        let handle = std::thread::Builder::new()
            .name("rezef-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io("spawn writer thread", &dir, e))?;
        tracing::info!(
            dir = %dir.display(),
            start_offset = shared.start_offset(),
            end_offset = end,
            segments = found.len(),
            dropped_bytes = recovered.dropped_bytes,
            "opened log"
        );
        Ok(Arc::new(EmbeddedLog {
            _lock: lock,
            shared,
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            max_batch_bytes: (config.max_batch_bytes as u64).min(MAX_FRAME_LEN),
        }))
    }

    /// Stops accepting appends, lets the writer commit what is already queued, and waits for
    /// it to exit. Afterwards `append` fails and pending/new `wait_for` calls resolve with
    /// [`Error::Closed`]; reads keep working. Idempotent.
    pub async fn close(&self) {
        let handle = self.begin_close();
        if let Some(handle) = handle {
            // Joining blocks (until the queue is drained); keep it off the runtime threads.
            match tokio::task::spawn_blocking(move || handle.join()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::error!("log writer thread panicked"),
                Err(e) => tracing::error!(error = %e, "could not join the log writer"),
            }
        }
        self.shared.watermark.send_modify(|w| w.closed = true);
    }

    fn begin_close(&self) -> Option<JoinHandle<()>> {
        drop(lock(&self.sender).take());
        lock(&self.writer).take()
    }

    /// Counters since open.
    pub fn stats(&self) -> LogStats {
        let c = &self.shared.stats;
        LogStats {
            appends: c.appends.load(Ordering::Relaxed),
            records: c.records.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            groups: c.groups.load(Ordering::Relaxed),
        }
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.shared.segments().len()
    }
}

/// Marks the log closed when dropped, so that waiters are released even if the writer thread
/// ends by panicking.
pub(crate) struct CloseOnDrop(pub Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.watermark.send_modify(|w| w.closed = true);
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        if let Some(handle) = self.begin_close()
            && handle.join().is_err()
        {
            tracing::error!("log writer thread panicked");
        }
        self.shared.watermark.send_modify(|w| w.closed = true);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Segment files in `dir` by base offset. Other files are ignored (with a warning for
/// `.log` files whose names are not 20-digit offsets).
pub(crate) fn list_segments(dir: &Path) -> Result<BTreeMap<Offset, PathBuf>> {
    let mut found = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list log directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list log directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match parse_segment_file_name(name) {
            Some(base) => {
                found.insert(base, entry.path());
            }
            None if name.ends_with(".log") => {
                tracing::warn!(file = %entry.path().display(), "ignoring misnamed .log file in log directory");
            }
            None => {}
        }
    }
    Ok(found)
}

#[async_trait::async_trait]
impl Log for EmbeddedLog {
    async fn close(&self) {
        EmbeddedLog::close(self).await;
    }

    async fn append(&self, payloads: Vec<Bytes>) -> Result<Appended> {
        if payloads.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let frame_len = frame::encoded_len(&payloads);
        if frame_len > self.max_batch_bytes {
            return Err(Error::BatchTooLarge {
                bytes: frame_len,
                limit: self.max_batch_bytes,
            });
        }
        let sender = lock(&self.sender).clone().ok_or(Error::Closed)?;
        let (reply, rx) = oneshot::channel();
        sender
            .send(AppendRequest {
                payloads,
                frame_len,
                reply,
            })
            .await
            .map_err(|_| Error::Closed)?;
        drop(sender);
        rx.await.map_err(|_| Error::Closed)?
    }

    async fn read(&self, from: Offset, max_records: usize) -> Result<Vec<Record>> {
        let end = self.end_offset();
        let start = self.shared.start_offset();
        if from < start {
            return Err(Error::OffsetOutOfRange {
                requested: from,
                start,
                end,
            });
        }
        if from >= end || max_records == 0 {
            return Ok(Vec::new());
        }
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.read_blocking(from, max_records, end)).await
    }

    fn end_offset(&self) -> Offset {
        self.shared.watermark.borrow().end
    }

    fn start_offset(&self) -> Offset {
        self.shared.start_offset()
    }

    async fn wait_for(&self, offset: Offset) -> Result<()> {
        let mut rx = self.shared.watermark.subscribe();
        match rx.wait_for(|w| w.end > offset || w.closed).await {
            Ok(w) if w.end > offset => Ok(()),
            _ => Err(Error::Closed),
        }
    }

    fn write_health(&self) -> watch::Receiver<WriteHealth> {
        self.shared.health.subscribe()
    }

    async fn offset_for_time(&self, timestamp_ms: i64) -> Result<Offset> {
        let end = self.end_offset();
        let shared = Arc::clone(&self.shared);
        blocking(move || shared.offset_for_time_blocking(timestamp_ms, end)).await
    }

    fn verify_chain(&self) -> Result<ChainCheck> {
        let (dir, end) = (self.shared.dir.clone(), self.end_offset());
        Ok(Box::pin(blocking(move || verify::verify_below(&dir, end))))
    }
}
